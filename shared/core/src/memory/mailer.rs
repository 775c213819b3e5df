//! [`FakeMailer`]: the [`Mailer`] port in memory, as SES keeps it (moto's tests hold the
//! adapter to the same contract): only verified identities send, each send gets a new id.

use std::collections::BTreeSet;
use std::sync::Mutex;

use crate::error::StoreError;
use crate::ports::{IdentityStatus, Mailer, OutgoingMail, StoreResult};
use crate::types::EmailAddress;

#[derive(Debug, Default)]
pub struct FakeMailer {
    pub verified: Mutex<BTreeSet<EmailAddress>>,
    pub sent: Mutex<Vec<OutgoingMail>>,
}

impl Mailer for FakeMailer {
    async fn send_raw(&self, mail: &OutgoingMail) -> StoreResult<String> {
        if !self.verified.lock().unwrap().contains(&mail.from) {
            return Err(StoreError::permanent(
                format!("send email from {}", mail.from),
                "MessageRejected: Email address is not verified.",
            ));
        }
        let mut sent = self.sent.lock().unwrap();
        sent.push(mail.clone());
        Ok(format!("fake-{:06}", sent.len()))
    }

    async fn verify_identity(&self, address: &EmailAddress) -> StoreResult<IdentityStatus> {
        self.verified.lock().unwrap().insert(address.clone());
        Ok(IdentityStatus::Verified)
    }

    fn delivered_message_id(&self, service_id: &str) -> String {
        format!("{service_id}@email.amazonses.com")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_verified_identities_send() {
        let m = FakeMailer::default();
        let from = EmailAddress::parse("support@example.test").unwrap();
        let mail = OutgoingMail {
            from: from.clone(),
            destinations: vec![EmailAddress::parse("c@customer.example").unwrap()],
            raw: b"Subject: x\r\n\r\nbody\r\n".to_vec(),
        };
        let err = m.send_raw(&mail).await.unwrap_err();
        assert!(!err.is_retryable());
        m.verify_identity(&from).await.unwrap();
        let id = m.send_raw(&mail).await.unwrap();
        assert_eq!(
            m.delivered_message_id(&id),
            format!("{id}@email.amazonses.com")
        );
        assert_eq!(m.sent.lock().unwrap().len(), 1);
    }
}
