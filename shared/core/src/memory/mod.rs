//! In-memory fakes of the ports, for unit tests of the core and of the function handlers. They
//! follow the same contracts as the real adapters (which are tested against the local stack);
//! each file tests its fakes against those contracts.

pub mod builders;
mod crm;
mod crm_state;
mod dispatch;
mod mailbox;
mod mailer;
mod store;

pub use builders::test_account;
pub use crm::MemoryCrm;
pub use crm_state::{CrmState, LinkedEmail};
pub use dispatch::{Allowance, MemoryDispatch};
pub use mailbox::{FakeFault, FakeFolder, FakeMailbox, FakeSession, FakeStage};
pub use mailer::FakeMailer;
pub use store::{FakeSecretBox, MemoryBlobs, MemoryQueue, MemoryStore};
