//! In-memory fakes of the ports, for unit tests of the core and of the function handlers. They
//! follow the same contracts as the real adapters (which are tested against the local stack);
//! each file tests its fakes against those contracts.

mod crm;
mod crm_state;
mod mailbox;
mod store;

pub use crm::MemoryCrm;
pub use crm_state::{CrmState, LinkedEmail};
pub use mailbox::{FakeFault, FakeFolder, FakeMailbox, FakeSession, FakeStage};
pub use store::{FakeSecretBox, MemoryBlobs, MemoryQueue, MemoryStore};

use chrono::{DateTime, Utc};

use crate::model::{Account, AccountKind, ImapSettings, SealedSecret, Security};

/// A group account for tests: `<name>@example.test` on `imap.example.test:993`, its secret
/// sealed by [`FakeSecretBox`] with password `pw`. Change fields on the result as needed.
pub fn test_account(name: &str, created_at: DateTime<Utc>) -> Account {
    let mut a = Account::new(
        name,
        AccountKind::Group,
        ImapSettings {
            host: "imap.example.test".into(),
            port: 993,
            user: name.into(),
            security: Security::ImplicitTls,
        },
        SealedSecret {
            key_id: "fake".into(),
            nonce: name.into(),
            ciphertext: "wp".into(),
        },
        created_at,
    );
    a.address = Some(format!("{name}@example.test"));
    a
}
