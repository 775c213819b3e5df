//! SES's own bounce and complaint notifications (R-A4): SES publishes them to an SNS topic,
//! an SQS queue subscribed to it feeds dispatch, and each record's body is the SNS envelope
//! with SES's JSON in `Message`. Both the identity-notification form (`notificationType`) and
//! the configuration-set event form (`eventType`) are read.

use serde::Deserialize;

use crate::error::Invalid;
use crate::types::EmailAddress;

/// What a feedback notification says: these addresses are not to be mailed for a while.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Feedback {
    pub addresses: Vec<String>,
    /// `bounce (Permanent/General)`, `complaint (abuse)`: shown on the failing address.
    pub reason: String,
    /// SES's id of the message it is about.
    pub ses_message_id: Option<String>,
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "Type")]
    kind: String,
    #[serde(rename = "Message")]
    message: String,
}

#[derive(Deserialize)]
struct Notice {
    #[serde(rename = "notificationType", alias = "eventType")]
    kind: String,
    #[serde(default)]
    bounce: Option<Bounce>,
    #[serde(default)]
    complaint: Option<Complaint>,
    #[serde(default)]
    mail: Option<Mail>,
}

#[derive(Deserialize)]
struct Bounce {
    #[serde(rename = "bounceType", default)]
    bounce_type: String,
    #[serde(rename = "bounceSubType", default)]
    sub_type: String,
    #[serde(rename = "bouncedRecipients", default)]
    recipients: Vec<Recipient>,
}

#[derive(Deserialize)]
struct Complaint {
    #[serde(rename = "complaintFeedbackType", default)]
    feedback_type: Option<String>,
    #[serde(rename = "complainedRecipients", default)]
    recipients: Vec<Recipient>,
}

#[derive(Deserialize)]
struct Recipient {
    #[serde(rename = "emailAddress")]
    address: String,
}

#[derive(Deserialize)]
struct Mail {
    #[serde(rename = "messageId", default)]
    message_id: Option<String>,
}

/// Whether a queue body is an SNS envelope (as opposed to one of our own events).
pub fn is_sns_envelope(body: &str) -> bool {
    serde_json::from_str::<Envelope>(body).is_ok()
}

/// `Ok(None)`: a notification that marks nobody (a transient bounce, a delivery, the
/// subscription confirmation). Transient bounces (mailbox full, greylisting) would stop mail
/// to an address that works again in minutes, so only permanent bounces and complaints count.
pub fn parse_feedback(body: &str) -> Result<Option<Feedback>, Invalid> {
    let envelope: Envelope = serde_json::from_str(body)
        .map_err(|e| Invalid::new("body", format!("not an SNS envelope: {e}")))?;
    if envelope.kind != "Notification" {
        return Ok(None);
    }
    let notice: Notice = serde_json::from_str(&envelope.message)
        .map_err(|e| Invalid::new("Message", format!("not an SES notification: {e}")))?;
    let (recipients, reason) = match notice.kind.as_str() {
        "Bounce" => {
            let Some(b) = notice.bounce else {
                return Ok(None);
            };
            if b.bounce_type != "Permanent" {
                return Ok(None);
            }
            let reason = format!("bounce ({}/{})", b.bounce_type, b.sub_type);
            (b.recipients, reason)
        }
        "Complaint" => {
            let Some(c) = notice.complaint else {
                return Ok(None);
            };
            let reason = format!(
                "complaint ({})",
                c.feedback_type.as_deref().unwrap_or("unspecified")
            );
            (c.recipients, reason)
        }
        _ => return Ok(None),
    };
    let mut addresses: Vec<String> = recipients
        .iter()
        .filter_map(|r| EmailAddress::parse(&r.address).ok())
        .map(String::from)
        .collect();
    addresses.sort();
    addresses.dedup();
    // SES lists at most 50 recipients per message; more is not SES.
    addresses.truncate(50);
    if addresses.is_empty() {
        return Ok(None);
    }
    Ok(Some(Feedback {
        addresses,
        reason,
        ses_message_id: notice.mail.and_then(|m| m.message_id),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(message: serde_json::Value) -> String {
        serde_json::json!({
            "Type": "Notification",
            "MessageId": "sns-1",
            "TopicArn": "arn:aws:sns:eu-west-1:123456789012:mailroom-ses-feedback",
            "Message": message.to_string(),
        })
        .to_string()
    }

    #[test]
    fn permanent_bounces_and_complaints_mark_their_recipients() {
        let bounce = envelope(serde_json::json!({
            "notificationType": "Bounce",
            "bounce": {"bounceType": "Permanent", "bounceSubType": "General",
                       "bouncedRecipients": [{"emailAddress": "Gone@Customer.example"},
                                             {"emailAddress": "gone@customer.example"}]},
            "mail": {"messageId": "0102018f-abc"}
        }));
        assert!(is_sns_envelope(&bounce));
        let f = parse_feedback(&bounce).unwrap().unwrap();
        assert_eq!(f.addresses, ["gone@customer.example"]);
        assert_eq!(f.reason, "bounce (Permanent/General)");
        assert_eq!(f.ses_message_id.as_deref(), Some("0102018f-abc"));
        let complaint = envelope(serde_json::json!({
            "eventType": "Complaint",
            "complaint": {"complainedRecipients": [{"emailAddress": "angry@customer.example"}],
                          "complaintFeedbackType": "abuse"}
        }));
        let f = parse_feedback(&complaint).unwrap().unwrap();
        assert_eq!(f.addresses, ["angry@customer.example"]);
        assert_eq!(f.reason, "complaint (abuse)");
    }

    #[test]
    fn transient_bounces_deliveries_and_confirmations_mark_nobody() {
        let transient = envelope(serde_json::json!({
            "notificationType": "Bounce",
            "bounce": {"bounceType": "Transient", "bounceSubType": "MailboxFull",
                       "bouncedRecipients": [{"emailAddress": "full@customer.example"}]}
        }));
        assert_eq!(parse_feedback(&transient).unwrap(), None);
        let delivery = envelope(serde_json::json!({"notificationType": "Delivery"}));
        assert_eq!(parse_feedback(&delivery).unwrap(), None);
        let confirm = serde_json::json!({"Type": "SubscriptionConfirmation", "Message": "x"});
        assert_eq!(parse_feedback(&confirm.to_string()).unwrap(), None);
        let ours = r#"{"v":1,"id":"email.linked:e:a","kind":"email.linked"}"#;
        assert!(!is_sns_envelope(ours));
        let err = parse_feedback(&envelope(serde_json::json!("not an object"))).unwrap_err();
        assert_eq!(err.field, "Message");
    }
}
