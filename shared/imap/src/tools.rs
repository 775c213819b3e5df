//! Operator and test tooling that writes to a mailbox (APPEND). Never used by the poller,
//! which stays read-only; the CLI uses it to deliver demo mail into the local Dovecot.

use mailroom_core::model::{ImapSettings, Secret};
use mailroom_core::ports::{Mailbox, MailboxError};

use crate::ImapConnector;

/// Appends raw messages to `folder` over one connection; returns how many were appended.
pub async fn append(
    connector: &ImapConnector,
    settings: &ImapSettings,
    password: &Secret,
    folder: &str,
    messages: &[Vec<u8>],
) -> Result<usize, MailboxError> {
    let mut session = connector.connect(settings, password).await?;
    for raw in messages {
        session
            .session
            .append(folder, None, None, raw)
            .await
            .map_err(|e| crate::protocol("APPEND", e))?;
    }
    let _ = session.session.logout().await;
    Ok(messages.len())
}
