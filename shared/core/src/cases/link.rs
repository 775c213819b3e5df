//! The pure rules of linking (R-L): case tags, thread keys, who sent an email.

use crate::model::EmailRecord;
use crate::records::normalize_address;
use crate::types::CaseNumber;

/// The first `[#N]` in a subject that names a case number.
pub fn case_tag(subject: &str) -> Option<CaseNumber> {
    case_tags(subject).first().map(|(_, n)| *n)
}

/// Every `[#N]` in a subject that names a case number, with its byte range, in order. The one
/// reading of tags: `dispatch::template::tag_subject` writes subjects by it too.
pub fn case_tags(subject: &str) -> Vec<(std::ops::Range<usize>, CaseNumber)> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(i) = subject[from..].find("[#") {
        let inner = from + i + 2;
        if let Some(end) = subject[inner..].find(']') {
            if let Ok(n) = subject[inner..inner + end].parse::<CaseNumber>() {
                out.push((from + i..inner + end + 1, n));
            }
        }
        from = inner;
    }
    out
}

/// The thread an email belongs to: the root of its References, else what it replies to,
/// else itself. Every email of a thread computes the same key in any arrival order.
pub fn thread_key(email: &EmailRecord) -> String {
    email
        .references
        .first()
        .or(email.in_reply_to.first())
        .cloned()
        .unwrap_or_else(|| email.message_id.clone())
}

fn is_noreply(address: &str) -> bool {
    let local = address.split('@').next().unwrap_or("").to_ascii_lowercase();
    matches!(
        local.replace(['-', '_', '.'], "").as_str(),
        "noreply" | "donotreply" | "mailerdaemon" | "postmaster"
    )
}

/// Who sent it, for linking: From, then Reply-To (a no-reply From with a Reply-To counts as
/// sent by the Reply-To, R-C5); for mail we sent ourselves, its recipients (R-L3).
pub fn sender_candidates(email: &EmailRecord, our_addresses: &[String]) -> Vec<String> {
    let from = email.from.as_ref().map(|f| normalize_address(&f.address));
    let reply_to: Vec<String> = email
        .reply_to
        .iter()
        .map(|a| normalize_address(&a.address))
        .collect();
    let mut out = Vec::new();
    match &from {
        Some(f) if is_noreply(f) && !reply_to.is_empty() => out.extend(reply_to.iter().cloned()),
        Some(f) => {
            out.push(f.clone());
            out.extend(reply_to.iter().cloned());
        }
        None => out.extend(reply_to.iter().cloned()),
    }
    if from.as_ref().is_some_and(|f| our_addresses.contains(f)) {
        out.extend(
            email
                .to
                .iter()
                .chain(&email.cc)
                .map(|a| normalize_address(&a.address)),
        );
    }
    out.retain(|a| !our_addresses.contains(a));
    out.dedup();
    out
}

/// The one address that may prove participation in a case for `[#N]` (R-L2): From, which
/// DMARC authenticates (the caller checks that no failure was recorded). Not Reply-To, which
/// anyone may set to a participant's address, and not a no-reply From's Reply-To (that one
/// only stands in for the sender when linking to records, R-C5, R-L3). Not our own addresses:
/// they are on every case, so they would let anyone who forges them into every case.
pub fn tag_sender(email: &EmailRecord, our_addresses: &[String]) -> Option<String> {
    email
        .from
        .as_ref()
        .map(|f| normalize_address(&f.address))
        .filter(|f| !our_addresses.contains(f))
}

/// Addresses on an email, added to its case's participants (who may use `[#N]`, R-L2) when it
/// creates the case or joins it as a reply (R-L1); a join by tag adds none.
pub fn participants(email: &EmailRecord) -> Vec<String> {
    let mut out: Vec<String> = email
        .from
        .iter()
        .chain(&email.reply_to)
        .chain(&email.to)
        .chain(&email.cc)
        .map(|a| normalize_address(&a.address))
        .collect();
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_tags() {
        let tag = |s| case_tag(s).map(CaseNumber::get);
        assert_eq!(tag("Re: [#42] printer"), Some(42));
        assert_eq!(tag("[#x] [#7]"), Some(7));
        assert_eq!(case_tag("no tag #42"), None);
    }

    #[test]
    fn noreply_senders_count_as_their_reply_to() {
        use crate::model::MailAddr;
        let mut e: EmailRecord = serde_json::from_value(serde_json::json!({
            "email_id": "e", "message_id": "m", "synthetic_id": false,
            "auto_submitted": false, "list": false, "bounce": false, "size": 1,
            "attachments_skipped": false, "raw_key": "k", "received_at": "2026-01-01T00:00:00Z"
        }))
        .unwrap();
        e.from = Some(MailAddr {
            name: None,
            address: "No-Reply@shop.example".into(),
        });
        e.reply_to = vec![MailAddr {
            name: None,
            address: "Help@Shop.example".into(),
        }];
        assert_eq!(sender_candidates(&e, &[]), vec!["help@shop.example"]);
        e.from = Some(MailAddr {
            name: None,
            address: "ann@example.com".into(),
        });
        assert_eq!(
            sender_candidates(&e, &[]),
            vec!["ann@example.com", "help@shop.example"]
        );
        // Only From may prove participation; never Reply-To, nor our own address.
        assert_eq!(tag_sender(&e, &[]).as_deref(), Some("ann@example.com"));
        assert_eq!(tag_sender(&e, &["ann@example.com".into()]), None);
        e.from = Some(MailAddr {
            name: None,
            address: "No-Reply@shop.example".into(),
        });
        assert_eq!(
            tag_sender(&e, &[]).as_deref(),
            Some("no-reply@shop.example")
        );
        e.from = None;
        assert_eq!(tag_sender(&e, &[]), None);
        assert_eq!(sender_candidates(&e, &[]), vec!["help@shop.example"]);
    }
}
