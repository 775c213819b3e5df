//! The [`Mailer`] port on SES v2: raw sends (`SendEmail` with raw content, up to 40 MB, every
//! header ours) and sending identities (`CreateEmailIdentity`, `GetEmailIdentity`).
//!
//! Errors go through [`crate::errors`]: a message or an account SES refuses (rejected content,
//! an unverified sender, a suspended or paused account, a bad request) is permanent, with SES's
//! own words in the error; throttling, 5xx and the network are transient.

use aws_sdk_sesv2::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sesv2::primitives::Blob;
use aws_sdk_sesv2::types::{Destination, EmailContent, RawMessage, VerificationStatus};
use mailroom_core::error::{ErrorClass, StoreError, StoreResult};
use mailroom_core::ports::{IdentityStatus, Mailer, OutgoingMail, MAX_RAW_MAIL_BYTES};
use mailroom_core::types::EmailAddress;

use crate::errors::{of_class, sdk_error};

/// The region SES falls back to when the SDK configuration names none.
const DEFAULT_REGION: &str = "us-east-1";

#[derive(Clone, Debug)]
pub struct SesMailer {
    client: aws_sdk_sesv2::Client,
    region: String,
    /// Sends through this configuration set, whose event destination publishes bounces and
    /// complaints to the feedback topic (R-A4); none locally.
    configuration_set: Option<String>,
}

impl SesMailer {
    /// Sends through `name` (`MAILROOM_SES_CONFIGURATION_SET`).
    pub fn with_configuration_set(mut self, name: Option<String>) -> Self {
        self.configuration_set = name;
        self
    }

    /// Sends in the client's region (whose name is in the Message-IDs SES assigns).
    pub fn new(client: aws_sdk_sesv2::Client) -> Self {
        let region = client
            .config()
            .region()
            .map(|r| r.as_ref().to_string())
            .unwrap_or_else(|| DEFAULT_REGION.to_string());
        SesMailer {
            client,
            region,
            configuration_set: None,
        }
    }
}

/// An SDK error as a [`StoreError`] whose message carries SES's code and words (an operator
/// reads "MessageRejected: Email address is not verified", not "service error").
fn ses_error<E>(
    doing: &str,
    e: SdkError<E, aws_sdk_sesv2::config::http::HttpResponse>,
) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let said = match &e {
        SdkError::ServiceError(s) => {
            let err = s.err();
            match (err.code(), err.message()) {
                (Some(code), Some(message)) => format!(": SES says {code}: {message}"),
                (Some(code), None) => format!(": SES says {code}"),
                (None, Some(message)) => format!(": SES says {message}"),
                (None, None) => String::new(),
            }
        }
        _ => String::new(),
    };
    sdk_error(format!("{doing}{said}"), e)
}

/// An identity's status from SES's answer.
fn status(
    address: &EmailAddress,
    verified: bool,
    verification: Option<&VerificationStatus>,
) -> StoreResult<IdentityStatus> {
    match verification {
        _ if verified => Ok(IdentityStatus::Verified),
        Some(VerificationStatus::Success) => Ok(IdentityStatus::Verified),
        Some(VerificationStatus::Failed) => Err(of_class(
            ErrorClass::Permanent,
            format!("SES failed to verify {address}"),
            "the verification link expired or was refused: delete the identity in SES and \
             add the address again",
        )),
        _ => Ok(IdentityStatus::Pending),
    }
}

impl Mailer for SesMailer {
    async fn send_raw(&self, mail: &OutgoingMail) -> StoreResult<String> {
        if mail.raw.len() > MAX_RAW_MAIL_BYTES {
            return Err(of_class(
                ErrorClass::Permanent,
                format!("send email from {}", mail.from),
                format!(
                    "the message has {} bytes, SES takes at most {MAX_RAW_MAIL_BYTES}",
                    mail.raw.len()
                ),
            ));
        }
        let raw = RawMessage::builder()
            .data(Blob::new(mail.raw.clone()))
            .build()
            .map_err(|e| StoreError::permanent("build the raw message", e))?;
        // The envelope: who receives it. The raw To/Cc headers say who it is shown to.
        let destination = Destination::builder()
            .set_to_addresses(Some(
                mail.destinations
                    .iter()
                    .map(|a| a.as_str().to_string())
                    .collect(),
            ))
            .build();
        let out = self
            .client
            .send_email()
            .from_email_address(mail.from.as_str())
            .destination(destination)
            .content(EmailContent::builder().raw(raw).build())
            .set_configuration_set_name(self.configuration_set.clone())
            .send()
            .await
            .map_err(|e| ses_error(&format!("send email from {}", mail.from), e))?;
        out.message_id().map(str::to_string).ok_or_else(|| {
            // Sent, but without the id nothing can thread replies to it: a retry would send
            // twice, so this is not transient.
            StoreError::permanent(
                format!("send email from {}", mail.from),
                "SES answered without a message id",
            )
        })
    }

    async fn verify_identity(&self, address: &EmailAddress) -> StoreResult<IdentityStatus> {
        let doing = format!("verify {address} with SES");
        match self
            .client
            .create_email_identity()
            .email_identity(address.as_str())
            .send()
            .await
        {
            Ok(out) if out.verified_for_sending_status() => Ok(IdentityStatus::Verified),
            // Created but not yet verified for sending, or asked for before: GetEmailIdentity
            // says where its verification stands (moto answers the create with "not verified"
            // and the get with SUCCESS, and lets it send).
            Ok(_) => self.current_status(address, &doing).await,
            Err(SdkError::ServiceError(s)) if s.err().is_already_exists_exception() => {
                self.current_status(address, &doing).await
            }
            Err(e) => Err(ses_error(&doing, e)),
        }
    }

    fn delivered_message_id(&self, service_id: &str) -> String {
        delivered_message_id(&self.region, service_id)
    }
}

impl SesMailer {
    async fn current_status(
        &self,
        address: &EmailAddress,
        doing: &str,
    ) -> StoreResult<IdentityStatus> {
        let got = self
            .client
            .get_email_identity()
            .email_identity(address.as_str())
            .send()
            .await
            .map_err(|e| ses_error(doing, e))?;
        status(
            address,
            got.verified_for_sending_status(),
            got.verification_status(),
        )
    }
}

/// The Message-ID SES gives a sent message, without brackets.
pub fn delivered_message_id(region: &str, service_id: &str) -> String {
    if region == "us-east-1" {
        format!("{service_id}@email.amazonses.com")
    } else {
        format!("{service_id}@{region}.amazonses.com")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_s3::primitives::SdkBody;
    use aws_sdk_sesv2::config::http::HttpResponse;
    use aws_sdk_sesv2::error::ErrorMetadata;
    use aws_sdk_sesv2::operation::send_email::SendEmailError;

    fn refused(code: &str, status: u16) -> StoreError {
        let err = SendEmailError::generic(
            ErrorMetadata::builder()
                .code(code)
                .message("Email address is not verified.")
                .build(),
        );
        let raw = HttpResponse::new(status.try_into().unwrap(), SdkBody::empty());
        ses_error(
            "send email from a@b.example",
            SdkError::service_error(err, raw),
        )
    }

    #[test]
    fn refusals_are_permanent_with_ses_words_and_load_is_transient() {
        for code in [
            "MessageRejected",
            "MailFromDomainNotVerifiedException",
            "AccountSuspendedException",
            "SendingPausedException",
            "BadRequestException",
        ] {
            let e = refused(code, 400);
            assert!(!e.is_retryable(), "{code}");
            assert_eq!(
                e.to_string(),
                format!(
                    "send email from a@b.example: SES says {code}: Email address is not verified."
                )
            );
        }
        for (code, status) in [
            ("TooManyRequestsException", 429),
            ("TooManyRequestsException", 400),
            ("LimitExceededException", 400),
            ("InternalFailure", 500),
            ("ServiceUnavailable", 503),
        ] {
            assert!(refused(code, status).is_retryable(), "{code} {status}");
        }
        let network: SdkError<SendEmailError, HttpResponse> =
            SdkError::dispatch_failure(aws_sdk_dynamodb::error::ConnectorError::io("reset".into()));
        assert!(ses_error("send", network).is_retryable());
    }

    #[test]
    fn delivered_ids_name_the_region() {
        assert_eq!(
            delivered_message_id("us-east-1", "0100abc"),
            "0100abc@email.amazonses.com"
        );
        assert_eq!(
            delivered_message_id("eu-west-1", "0100abc"),
            "0100abc@eu-west-1.amazonses.com"
        );
    }

    #[test]
    fn a_failed_verification_is_an_error_not_pending() {
        let a = EmailAddress::parse("help@support.example").unwrap();
        assert_eq!(status(&a, true, None).unwrap(), IdentityStatus::Verified);
        assert_eq!(
            status(&a, false, Some(&VerificationStatus::Success)).unwrap(),
            IdentityStatus::Verified
        );
        assert_eq!(
            status(&a, false, Some(&VerificationStatus::Pending)).unwrap(),
            IdentityStatus::Pending
        );
        let e = status(&a, false, Some(&VerificationStatus::Failed)).unwrap_err();
        assert!(!e.is_retryable());
        assert!(e.to_string().contains("help@support.example"));
    }
}
