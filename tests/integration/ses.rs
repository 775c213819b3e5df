//! The SES adapter against moto: identities are verified (twice is fine), a raw message built
//! by `dispatch::mime` goes out byte for byte, and an unverified sender is a permanent error
//! in SES's words. What moto "sent" is read from `/moto-api/data.json` (`ses.RawMessage[]`),
//! on an emulator of the test's own ([`OwnMoto`]).

use std::collections::BTreeSet;

use chrono::{TimeZone, Utc};
use mailroom_core::dispatch::mime::{self, AutoSubmitted, Draft, ExtraHeader, Mailbox};
use mailroom_core::ports::{IdentityStatus, Mailer, OutgoingMail};
use mailroom_core::types::{EmailAddress, MessageId};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::*;

/// One message moto's SES recorded.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct SentRaw {
    pub id: String,
    pub source: String,
    /// The envelope recipients, then moto's copies of the To/Cc/Bcc headers
    /// (`"Name" <address>` forms), so each address appears more than once.
    pub destinations: Vec<String>,
    pub raw_data: String,
}

impl SentRaw {
    /// The distinct addresses of `destinations`.
    pub fn addresses(&self) -> BTreeSet<String> {
        self.destinations
            .iter()
            .map(|d| {
                let inner = match (d.rfind('<'), d.rfind('>')) {
                    (Some(a), Some(b)) if a < b => &d[a + 1..b],
                    _ => d.as_str(),
                };
                inner.trim().to_lowercase()
            })
            .collect()
    }
}

/// Every raw message the moto at `endpoint` holds for SES. `data.json` serialises all of
/// moto's state (every S3 body too) under its request lock, so every other client waits while
/// it runs (40 s for 17 MB on the busy shared server): the test uses an emulator of its own.
/// A bound turns a wedged server into a clear failure instead of a hung test.
pub async fn sent_raw_messages(endpoint: &str) -> Vec<SentRaw> {
    tokio::time::timeout(
        std::time::Duration::from_secs(180),
        read_sent_raw_messages(endpoint),
    )
    .await
    .expect("moto's /moto-api/data.json answered within 180 s")
}

async fn read_sent_raw_messages(endpoint: &str) -> Vec<SentRaw> {
    let host = endpoint
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let mut conn = tokio::net::TcpStream::connect(&host)
        .await
        .expect("moto answers");
    // HTTP/1.0: the whole body, no chunking, closed at the end.
    conn.write_all(
        format!("GET /moto-api/data.json HTTP/1.0\r\nHost: {host}\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    )
    .await
    .unwrap();
    let mut response = Vec::new();
    conn.read_to_end(&mut response).await.unwrap();
    let at = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an HTTP response (moto closed the connection without one)");
    assert!(
        response.starts_with(b"HTTP/1.0 200") || response.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&response[..at])
    );
    let data: serde_json::Value = serde_json::from_slice(&response[at + 4..]).unwrap();
    serde_json::from_value(data["ses"]["RawMessage"].clone()).unwrap_or_default()
}

fn addr(s: &str) -> EmailAddress {
    EmailAddress::parse(s).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_raw_message_goes_out_as_composed_and_an_unverified_sender_is_refused() {
    // An emulator of its own: reading back what SES recorded serialises all of its state.
    let moto = OwnMoto::start();
    let env = moto.env("ses").await;
    let mailer = &env.ctx.adapters().mailer;
    let tag = unique("ses").to_lowercase();
    let from = addr(&format!("help-{tag}@support.example"));

    // Verifying is idempotent: the second call finds the identity and reports its status.
    assert_eq!(
        mailer.verify_identity(&from).await.unwrap(),
        IdentityStatus::Verified
    );
    assert_eq!(
        mailer.verify_identity(&from).await.unwrap(),
        IdentityStatus::Verified
    );

    let to = addr(&format!("ann-{tag}@cust.example"));
    let cc = addr(&format!("bob-{tag}@cust.example"));
    let draft = Draft {
        from: Mailbox::new("Zoë's Support", from.clone()),
        to: vec![Mailbox::new("Ann Müller", to.clone())],
        cc: vec![Mailbox::new("Smith, Bob", cc.clone())],
        bcc: Vec::new(),
        attachments: Vec::new(),
        reply_to: vec![Mailbox::new("Support", from.clone())],
        subject: "Ré: votre commande n° 4711 est arrivée [#42]".into(),
        text: "Bonjour Ann,\n\nnous avons bien reçu votre message.\n-- \nSupport".into(),
        html: Some("<p>Bonjour <b>Ann</b>,</p><p>nous avons bien reçu votre message.</p>".into()),
        message_id: mime::message_id(&format!("{tag}/auto-reply"), &from),
        in_reply_to: Some(MessageId::parse(&format!("orig-{tag}@cust.example")).unwrap()),
        references: vec![
            MessageId::parse(&format!("root-{tag}@cust.example")).unwrap(),
            MessageId::parse(&format!("orig-{tag}@cust.example")).unwrap(),
        ],
        date: Utc.with_ymd_and_hms(2026, 12, 1, 22, 30, 5).unwrap(),
        headers: vec![
            ExtraHeader::AutoSubmitted(AutoSubmitted::AutoReplied),
            ExtraHeader::AutoResponseSuppressAll,
            ExtraHeader::MailroomId(tag.clone()),
        ],
    };
    let mail = draft.outgoing().unwrap();
    let ses_id = mailer.send_raw(&mail).await.unwrap();
    assert!(!ses_id.is_empty());
    let delivered = mailer.delivered_message_id(&ses_id);
    assert!(
        delivered.starts_with(&format!("{ses_id}@")) && delivered.ends_with("amazonses.com"),
        "{delivered}"
    );

    // An address nobody verified: SES's refusal, permanent, in its own words.
    let stranger = addr(&format!("nobody-{tag}@unverified-{tag}.example"));
    let err = mailer
        .send_raw(&OutgoingMail {
            from: stranger.clone(),
            ..mail.clone()
        })
        .await
        .unwrap_err();
    assert!(!err.is_retryable(), "{err:?}");
    let said = err.to_string();
    assert!(
        said.contains("MessageRejected") && said.contains(stranger.as_str()),
        "{said}"
    );

    let sent = sent_raw_messages(&moto.endpoint).await;
    let marker = format!("X-Mailroom-Id: {tag}\r\n");
    let ours: Vec<&SentRaw> = sent
        .iter()
        .filter(|m| m.raw_data.contains(&marker))
        .collect();
    assert_eq!(ours.len(), 1, "exactly one send recorded: {ours:#?}");
    let m = ours[0];
    assert_eq!(m.id, ses_id);
    assert_eq!(m.source, from.as_str());
    assert_eq!(
        m.addresses(),
        BTreeSet::from([to.as_str().to_string(), cc.as_str().to_string()])
    );
    // Byte for byte what was composed: SES v2 raw content leaves every header ours.
    assert_eq!(m.raw_data.as_bytes(), mail.raw.as_slice());

    let p = mailroom_core::parse::parse(m.raw_data.as_bytes()).unwrap();
    assert_eq!(p.subject.as_deref(), Some(draft.subject.as_str()));
    assert_eq!(p.message_id, draft.message_id.as_str());
    assert_eq!(p.in_reply_to, vec![format!("orig-{tag}@cust.example")]);
    assert_eq!(
        p.references,
        vec![
            format!("root-{tag}@cust.example"),
            format!("orig-{tag}@cust.example")
        ]
    );
    let from_seen = p.from.unwrap();
    assert_eq!(
        (from_seen.name.as_deref(), from_seen.address.as_str()),
        (Some("Zoë's Support"), from.as_str())
    );
    assert_eq!(p.to[0].name.as_deref(), Some("Ann Müller"));
    assert_eq!(p.cc[0].name.as_deref(), Some("Smith, Bob"));
    assert_eq!(p.date, Some(draft.date));
    assert!(p.auto_submitted, "Auto-Submitted: auto-replied");
    assert_eq!(p.text, draft.text.replace('\n', "\r\n"));
    assert_eq!(p.html.as_deref(), draft.html.as_deref());
    // The refused send left nothing behind.
    assert!(!sent.iter().any(|m| m.source == stranger.as_str()));
}
