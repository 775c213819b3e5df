//! Hostile mail, APPENDed with a real IMAP client between good messages, against the local
//! stack: after one poll every message is one email or one quarantine entry with a reason, the
//! poll reports no errors, and nothing is left to retry (issue "nothing lost, nothing blocked").

use mailroom_core::ports::EmailStore;

use crate::cases::{case_env, rr, simple};

/// One hostile message: a name for the failure message, and its bytes.
fn hostile() -> Vec<(&'static str, Vec<u8>)> {
    let head = |extra: &str| {
        format!("From: Mallory <mallory@attacker.example>\r\nTo: support@example.test\r\n{extra}")
    };
    let mut out: Vec<(&'static str, Vec<u8>)> = Vec::new();
    // A Date at the edge of the calendar: the lenient fallback must not overflow.
    out.push((
        "date-at-calendar-edge",
        format!(
            "{}Subject: far future\r\nMessage-ID: <edge@attacker.example>\r\nDate: Fri, 31 Dec 262142 23:59 EST\r\n\r\nhi\r\n",
            head("")
        )
        .into_bytes(),
    ));
    // A 400 KB Subject: above DynamoDB's item size if stored whole.
    out.push((
        "subject-400kb",
        format!(
            "{}Subject: {}\r\nMessage-ID: <bigsubject@attacker.example>\r\nDate: Tue, 3 Mar 2026 10:00:00 +0000\r\n\r\nhi\r\n",
            head(""),
            "S".repeat(400 * 1024)
        )
        .into_bytes(),
    ));
    // 1,500 attachments with long non-ASCII names (S3 keys of over 1,024 bytes if encoded whole).
    let mut m = format!(
        "{}Subject: many parts\r\nMessage-ID: <parts@attacker.example>\r\nDate: Tue, 3 Mar 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n",
        head("")
    );
    for i in 0..1500 {
        let name = format!("{i}-{}", "Ünïcødé-名前-".repeat(12));
        m.push_str(&format!(
            "--b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename*=utf-8''{}\r\n\r\nx\r\n",
            name.bytes().map(|b| format!("%{b:02X}")).collect::<String>()
        ));
    }
    m.push_str("--b--\r\n");
    out.push(("attachments-1500", m.into_bytes()));
    // A Message-ID of 3,000 bytes: a DynamoDB key derived from it would pass 2,048 bytes.
    out.push((
        "message-id-3kb",
        format!(
            "{}Subject: long id\r\nMessage-ID: <{}@attacker.example>\r\nDate: Tue, 3 Mar 2026 10:00:00 +0000\r\n\r\nhi\r\n",
            head(""),
            "i".repeat(3000)
        )
        .into_bytes(),
    ));
    // A References root of 3,000 bytes (the thread key) and 2,000 further ids.
    let refs: Vec<String> = std::iter::once(format!("<{}@root.example>", "r".repeat(3000)))
        .chain((0..2000).map(|i| format!("<ref{i}@attacker.example>")))
        .collect();
    out.push((
        "references-huge",
        format!(
            "{}Subject: Re: thread\r\nMessage-ID: <refs@attacker.example>\r\nIn-Reply-To: <ref1999@attacker.example>\r\nReferences: {}\r\nDate: Tue, 3 Mar 2026 10:00:00 +0000\r\n\r\nhi\r\n",
            head(""),
            refs.join("\r\n ")
        )
        .into_bytes(),
    ));
    // 3,000 recipients, the same ones many times over (sets must not hold duplicates).
    let to: Vec<String> = (0..3000)
        .map(|i| format!("user{}@victim.example", i % 700))
        .collect();
    out.push((
        "recipients-3000-with-duplicates",
        format!(
            "From: Mallory <mallory@attacker.example>\r\nTo: {}\r\nCc: {}\r\nSubject: everyone\r\nMessage-ID: <many@attacker.example>\r\nDate: Tue, 3 Mar 2026 10:00:00 +0000\r\n\r\nhi\r\n",
            to.join(",\r\n "),
            to.join(",\r\n ")
        )
        .into_bytes(),
    ));
    // Multipart nested 2,000 levels deep.
    let mut nested = format!(
        "{}Subject: nested\r\nMessage-ID: <nested@attacker.example>\r\nDate: Tue, 3 Mar 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"n0\"\r\n\r\n",
        head("")
    );
    for i in 0..2000 {
        nested.push_str(&format!(
            "--n{i}\r\nContent-Type: multipart/mixed; boundary=\"n{}\"\r\n\r\n",
            i + 1
        ));
    }
    nested.push_str("--n2000\r\nContent-Type: text/plain\r\n\r\ndeep\r\n");
    out.push(("nested-2000", nested.into_bytes()));
    // NUL bytes and binary garbage in header values.
    let mut garbage = head("Subject: bin\0ary \u{7}\r\n").into_bytes();
    garbage.extend_from_slice(
        b"X-Junk: \xff\xfe\x00\x01\r\nMessage-ID: <bin\x00@attacker.example>\r\n\r\nbody\r\n",
    );
    out.push(("binary-headers", garbage));
    // One header line of 1 MB and no body.
    out.push((
        "header-line-1mb",
        format!(
            "{}Subject: x\r\nX-Long: {}\r\nMessage-ID: <longline@attacker.example>\r\n",
            head(""),
            "a".repeat(1024 * 1024)
        )
        .into_bytes(),
    ));
    // A tag for a case that does not exist, and a Reply-To of 500 addresses.
    let reply_to: Vec<String> = (0..500).map(|i| format!("r{i}@attacker.example")).collect();
    out.push((
        "tag-and-reply-to-500",
        format!(
            "{}Reply-To: {}\r\nSubject: [#999999999999] hello\r\nMessage-ID: <tag@attacker.example>\r\nDate: Tue, 3 Mar 2026 10:00:00 +0000\r\n\r\nhi\r\n",
            head(""),
            reply_to.join(", ")
        )
        .into_bytes(),
    ));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_messages_between_good_ones_become_emails_or_quarantine_entries_in_one_poll() {
    let c = case_env("hostile", &["ann", "ben"], rr("l1")).await;
    let hostile = hostile();
    assert_eq!(hostile.len(), 10);
    let mut all = Vec::new();
    for (i, (_, raw)) in hostile.iter().enumerate() {
        all.push(simple(
            &format!("good-{i}@customer.example"),
            "Customer <c@customer.example>",
            &format!("good {i}"),
        ));
        all.push(raw.clone());
    }
    all.push(simple(
        "good-last@customer.example",
        "Customer <c@customer.example>",
        "good last",
    ));
    let totals = c.receive(&all).await;
    let t = crate::harness::totals_for(&totals, "support");
    let store = &c.env.ctx.adapters().store;
    let emails = store.list_emails().await.unwrap();
    let quarantined = store.list_quarantine().await.unwrap();
    let found = |id: &str| emails.iter().any(|e| e.message_id.starts_with(id));
    for i in 0..10 {
        assert!(
            found(&format!("good-{i}@")),
            "good message {i} was not imported"
        );
    }
    assert!(found("good-last@"));
    assert_eq!(t.fetched as usize, all.len(), "{t:?}");
    assert_eq!(
        t.errors, 0,
        "no message may end in retries: {t:?}; quarantine: {quarantined:?}"
    );
    assert_eq!(
        emails.len() + quarantined.len(),
        all.len(),
        "every message is one email or one quarantine entry: {} emails, {quarantined:?}",
        emails.len()
    );
    assert!(quarantined.iter().all(|q| !q.reason.trim().is_empty()));
    // A second poll finds nothing new and nothing to retry.
    let again = c.receive(&[]).await;
    let t = crate::harness::totals_for(&again, "support");
    assert_eq!((t.fetched, t.errors), (0, 0), "{t:?}");
}
