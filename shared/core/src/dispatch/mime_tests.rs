use super::*;
use crate::model::MailAddr;
use crate::parse::parse;
use chrono::TimeZone;

fn addr(s: &str) -> EmailAddress {
    EmailAddress::parse(s).unwrap()
}

fn id(s: &str) -> MessageId {
    MessageId::parse(s).unwrap()
}

fn draft() -> Draft {
    Draft {
        from: Mailbox::new("Zoë's Support", addr("help@support.example")),
        to: vec![
            Mailbox::new("Smith, John", addr("john@cust.example")),
            Mailbox::new("Ann", addr("ann@cust.example")),
        ],
        cc: vec![Mailbox::bare(addr("boss@cust.example"))],
        bcc: Vec::new(),
        attachments: Vec::new(),
        reply_to: vec![Mailbox::new("Support", addr("help@support.example"))],
        subject: "Ré: commande n° 4711 — l'imprimante du deuxième étage ne marche plus [#42]"
            .into(),
        text: "Bonjour John,\n\nwe received your message = thanks.   \nA long line: ".to_string()
            + &"0123456789 ".repeat(12)
            + "\n-- \nSupport",
        html: Some("<p>Здравствуйте, <b>Джон</b>!</p>\n<p>Мы получили ваше письмо.</p>".into()),
        message_id: message_id("email-1/auto-reply", &addr("help@support.example")),
        in_reply_to: Some(id("orig-1@cust.example")),
        references: vec![id("root@cust.example"), id("orig-1@cust.example")],
        date: Utc.with_ymd_and_hms(2026, 12, 1, 22, 30, 5).unwrap(),
        headers: vec![
            ExtraHeader::AutoSubmitted(AutoSubmitted::AutoReplied),
            ExtraHeader::AutoResponseSuppressAll,
            ExtraHeader::MailroomId("sent:abc-123".into()),
            ExtraHeader::Precedence(Precedence::AutoReply),
        ],
    }
}

fn named(name: &str, address: &str) -> MailAddr {
    MailAddr {
        name: Some(name.into()),
        address: address.into(),
    }
}

/// The header section, as lines (continuations kept as their own lines).
fn header_lines(raw: &[u8]) -> Vec<String> {
    let text = std::str::from_utf8(raw).expect("the message is ASCII");
    let end = text.find("\r\n\r\n").expect("a header section");
    text[..end].split("\r\n").map(str::to_string).collect()
}

/// The names of the header fields, in order.
fn field_names(raw: &[u8]) -> Vec<String> {
    header_lines(raw)
        .iter()
        .filter(|l| !l.starts_with(' ') && !l.starts_with('\t'))
        .map(|l| l.split(':').next().unwrap().to_string())
        .collect()
}

fn raw_header(raw: &[u8], name: &str) -> Option<String> {
    let m = mail_parser::MessageParser::default().parse(raw).unwrap();
    m.header_raw(name).map(|v| v.trim().to_string())
}

#[test]
fn every_header_and_both_bodies_round_trip_through_the_parser() {
    let d = draft();
    let raw = compose(&d).unwrap();
    assert!(raw.is_ascii(), "7-bit on the wire");
    let p = parse(&raw).unwrap();

    assert_eq!(p.subject.as_deref(), Some(d.subject.as_str()));
    assert_eq!(p.from, Some(named("Zoë's Support", "help@support.example")));
    assert_eq!(
        p.to,
        vec![
            named("Smith, John", "john@cust.example"),
            named("Ann", "ann@cust.example")
        ]
    );
    assert_eq!(
        p.cc,
        vec![MailAddr {
            name: None,
            address: "boss@cust.example".into()
        }]
    );
    assert_eq!(p.reply_to, vec![named("Support", "help@support.example")]);
    assert_eq!(p.date, Some(d.date));
    assert_eq!(p.message_id, d.message_id.as_str());
    assert!(!p.synthetic_id);
    assert_eq!(p.in_reply_to, vec!["orig-1@cust.example".to_string()]);
    assert_eq!(
        p.references,
        vec![
            "root@cust.example".to_string(),
            "orig-1@cust.example".to_string()
        ]
    );
    assert_eq!(p.text, crlf(&d.text));
    assert_eq!(
        p.html.as_deref(),
        Some(crlf(d.html.as_deref().unwrap()).as_str())
    );
    assert!(p.attachments.is_empty());
    // Our auto-reply is one the loop rules never answer (R-A2).
    assert!(p.auto_submitted);

    assert_eq!(
        raw_header(&raw, "Auto-Submitted").as_deref(),
        Some("auto-replied")
    );
    assert_eq!(
        raw_header(&raw, "X-Auto-Response-Suppress").as_deref(),
        Some("All")
    );
    assert_eq!(
        raw_header(&raw, "X-Mailroom-Id").as_deref(),
        Some("sent:abc-123")
    );
    assert_eq!(
        raw_header(&raw, "Precedence").as_deref(),
        Some("auto_reply")
    );
    assert_eq!(
        field_names(&raw),
        [
            "Date",
            "From",
            "Reply-To",
            "To",
            "Cc",
            "Subject",
            "Message-ID",
            "In-Reply-To",
            "References",
            "Auto-Submitted",
            "X-Auto-Response-Suppress",
            "X-Mailroom-Id",
            "Precedence",
            "MIME-Version",
            "Content-Type",
        ]
    );
    let text = String::from_utf8(raw.clone()).unwrap();
    assert!(text.contains("Content-Type: multipart/alternative; boundary=\"=_mr_"));
    // ASCII text goes quoted-printable, Cyrillic HTML base64.
    assert!(text.contains(
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable"
    ));
    assert!(text
        .contains("Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64"));
    // The non-ASCII subject and name are encoded-words; every line is short.
    assert!(text.contains("Subject: =?UTF-8?B?"));
    for line in text.split("\r\n") {
        assert!(line.len() <= 78, "{line:?}");
    }
}

#[test]
fn plain_subjects_fold_at_spaces_and_keep_every_space() {
    let mut d = draft();
    d.html = None;
    d.subject = "An ASCII subject,  with two spaces, that is long enough to be folded over \
                 at least one line break [#42]"
        .into();
    let raw = compose(&d).unwrap();
    let lines = header_lines(&raw);
    let at = lines
        .iter()
        .position(|l| l.starts_with("Subject:"))
        .unwrap();
    assert!(lines[at + 1].starts_with(' '), "folded: {lines:?}");
    assert!(!lines[at].contains("=?"), "not encoded: {lines:?}");
    assert_eq!(
        parse(&raw).unwrap().subject.as_deref(),
        Some(d.subject.as_str())
    );
    assert_eq!(
        field_names(&raw).last().unwrap(),
        "Content-Transfer-Encoding"
    );
}

#[test]
fn text_only_is_one_part_and_long_lines_survive() {
    let mut d = draft();
    d.html = None;
    d.text = format!("{}\r\nend = done\t\nlast line  ", "x".repeat(300));
    let raw = compose(&d).unwrap();
    let text = String::from_utf8(raw.clone()).unwrap();
    assert!(!text.contains("multipart"));
    assert!(text.contains("Content-Type: text/plain; charset=utf-8\r\n"));
    assert!(text.split("\r\n").all(|l| l.len() <= 78));
    let p = parse(&raw).unwrap();
    assert_eq!(p.text, crlf(&d.text));
    assert_eq!(p.html, None);
}

#[test]
fn mostly_non_ascii_text_goes_base64_and_round_trips() {
    let mut d = draft();
    d.html = None;
    d.text =
        "こんにちは。お問い合わせありがとうございます。\n担当者から折り返しご連絡します。".into();
    let raw = compose(&d).unwrap();
    assert!(String::from_utf8(raw.clone())
        .unwrap()
        .contains("Content-Transfer-Encoding: base64"));
    assert_eq!(parse(&raw).unwrap().text, crlf(&d.text));
}

#[test]
fn a_body_that_imitates_the_boundary_cannot_close_its_part() {
    let mut d = draft();
    let raw = compose(&d).unwrap();
    let text = String::from_utf8(raw).unwrap();
    let at = text.find("boundary=\"").unwrap() + 10;
    let boundary = &text[at..at + text[at..].find('"').unwrap()];
    d.text = format!("before\n--{boundary}\nContent-Type: text/html\n\nfake\n--{boundary}--\n");
    d.html = Some(format!("<p>--{boundary}--</p>"));
    let raw = compose(&d).unwrap();
    let p = parse(&raw).unwrap();
    assert_eq!(p.text, crlf(&d.text));
    assert_eq!(p.html.as_deref(), d.html.as_deref());
}

#[test]
fn references_keep_the_root_and_the_latest_within_the_bound() {
    let mut d = draft();
    let ids: Vec<MessageId> = (0..200)
        .map(|i| id(&format!("{i:03}.{}@thread.example", "r".repeat(40))))
        .collect();
    d.references = ids.clone();
    let raw = compose(&d).unwrap();
    let refs = parse(&raw).unwrap().references;
    let bytes: usize = refs.iter().map(|r| r.len() + 3).sum();
    assert!(bytes <= MAX_REFERENCES_BYTES, "{bytes}");
    assert!(refs.len() > 10 && refs.len() < 200, "{}", refs.len());
    assert_eq!(refs[0], ids[0].as_str());
    let tail = &ids[ids.len() - (refs.len() - 1)..];
    assert_eq!(
        &refs[1..],
        tail.iter()
            .map(|i| i.as_str().to_string())
            .collect::<Vec<_>>()
    );
    // A short thread is kept whole.
    d.references = ids[..5].to_vec();
    assert_eq!(parse(&compose(&d).unwrap()).unwrap().references.len(), 5);
}

#[test]
fn refused_drafts_name_their_field() {
    let mut d = draft();
    d.to.clear();
    d.cc.clear();
    assert_eq!(compose(&d).unwrap_err().field, "to");

    let mut d = draft();
    d.cc.push(Mailbox::bare(addr("josé@exämple.com")));
    assert_eq!(compose(&d).unwrap_err().field, "cc");

    let mut d = draft();
    d.message_id = id("has space@x.example");
    assert_eq!(compose(&d).unwrap_err().field, "message_id");

    let mut d = draft();
    d.headers = vec![ExtraHeader::MailroomId("x\r\nBcc: evil@x.example".into())];
    assert_eq!(compose(&d).unwrap_err().field, "mailroom_id");
}

#[test]
fn other_peoples_unsafe_ids_are_left_out() {
    let mut d = draft();
    d.in_reply_to = Some(id("a>b@x.example"));
    d.references = vec![
        id("root@x.example"),
        id(&format!("{}@x.example", "l".repeat(MAX_HEADER_ID_BYTES))),
        id("ok@x.example"),
    ];
    let raw = compose(&d).unwrap();
    assert!(!field_names(&raw).contains(&"In-Reply-To".to_string()));
    assert_eq!(
        parse(&raw).unwrap().references,
        vec!["root@x.example".to_string(), "ok@x.example".to_string()]
    );
}

#[test]
fn message_ids_are_ours_stable_and_in_the_senders_domain() {
    let from = addr("help@support.example");
    let a = message_id("email-1/auto-reply", &from);
    assert_eq!(a, message_id("email-1/auto-reply", &from));
    assert_ne!(a, message_id("email-2/auto-reply", &from));
    assert!(a.as_str().ends_with("@support.example"), "{a}");
    assert!(header_safe_id(a.as_str()));
}

#[test]
fn recipients_are_to_then_cc_each_once() {
    let mut d = draft();
    d.cc.push(Mailbox::new("again", addr("ann@cust.example")));
    let out = d.outgoing().unwrap();
    assert_eq!(out.from, addr("help@support.example"));
    assert_eq!(
        out.destinations,
        vec![
            addr("john@cust.example"),
            addr("ann@cust.example"),
            addr("boss@cust.example")
        ]
    );
    assert_eq!(out.raw, compose(&d).unwrap());
}

/// A small deterministic generator (no extra dependency): xorshift over a seed.
struct Gen(u64);
impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn text(&mut self, alphabet: &[&str], max: usize) -> String {
        let n = (self.next() % (max as u64 + 1)) as usize;
        (0..n)
            .map(|_| alphabet[(self.next() % alphabet.len() as u64) as usize])
            .collect()
    }
}

const HOSTILE: &[&str] = &[
    "a",
    "Z",
    "0",
    " ",
    "  ",
    "\t",
    "\r",
    "\n",
    "\r\n",
    "\r\n ",
    "\0",
    ":",
    "Bcc: x@evil.example",
    "\r\nBcc: x@evil.example",
    "\nX-Injected: 1",
    "<",
    ">",
    "\"",
    "\\",
    ",",
    ";",
    "=?",
    "?=",
    "=?UTF-8?B?QmNjOg==?=",
    "é",
    "Ж",
    "😀",
    "\u{85}",
    "\u{2028}",
    "--",
    "=_mr_",
    ".",
    "@",
];

#[test]
fn hostile_names_subjects_and_ids_never_add_a_header_line() {
    let mut g = Gen(0x2545_f491_4f6c_dd1d);
    let mut composed = 0;
    for _ in 0..3_000 {
        let mut d = draft();
        d.from.name = g.text(HOSTILE, 12);
        d.to[0].name = g.text(HOSTILE, 30);
        d.reply_to[0].name = g.text(HOSTILE, 6);
        d.subject = g.text(HOSTILE, 60);
        d.text = g.text(HOSTILE, 40);
        d.html = (g.next() % 2 == 0).then(|| g.text(HOSTILE, 40));
        let raw_id = format!("{}@x.example", g.text(HOSTILE, 8));
        d.in_reply_to = MessageId::parse(&raw_id).ok();
        d.references = (0..3)
            .filter_map(|_| MessageId::parse(&g.text(HOSTILE, 10)).ok())
            .collect();
        d.headers = vec![
            ExtraHeader::AutoSubmitted(AutoSubmitted::AutoReplied),
            ExtraHeader::MailroomId(format!("id-{}", g.text(&["a", "1", ".", "-"], 10))),
        ];
        let raw = compose(&d).expect("every generated draft is accepted");
        composed += 1;

        let text = std::str::from_utf8(&raw).unwrap();
        assert!(raw.is_ascii(), "{d:?}");
        let head = &text[..text.find("\r\n\r\n").unwrap() + 2];
        // Every line break of the header section is CRLF.
        assert_eq!(
            head.matches('\n').count(),
            head.matches("\r\n").count(),
            "{d:?}"
        );
        assert_eq!(
            head.matches('\r').count(),
            head.matches("\r\n").count(),
            "{d:?}"
        );
        assert!(!head.contains('\0'));
        for line in header_lines(&raw) {
            assert!(line.len() <= 998, "{line:?}");
            assert!(!line.trim().is_empty(), "blank line in {head:?}");
        }
        let mut expected = vec![
            "Date",
            "From",
            "Reply-To",
            "To",
            "Cc",
            "Subject",
            "Message-ID",
        ];
        if d.in_reply_to
            .as_ref()
            .is_some_and(|i| header_safe_id(i.as_str()))
        {
            expected.push("In-Reply-To");
        }
        if d.references.iter().any(|i| header_safe_id(i.as_str())) {
            expected.push("References");
        }
        expected.extend([
            "Auto-Submitted",
            "X-Mailroom-Id",
            "MIME-Version",
            "Content-Type",
        ]);
        if d.html.is_none() {
            expected.push("Content-Transfer-Encoding");
        }
        assert_eq!(field_names(&raw), expected, "{d:?}\n{head}");

        // And what a reader sees is what was meant, on one line.
        let p = parse(&raw).unwrap();
        assert_eq!(
            p.subject.clone().unwrap_or_default(),
            one_line(&d.subject),
            "{head}"
        );
        let shown = |n: &str| one_line(n).split_whitespace().collect::<Vec<_>>().join(" ");
        assert_eq!(
            p.from.unwrap().name.unwrap_or_default(),
            shown(&d.from.name),
            "{head}"
        );
        assert_eq!(
            p.to[0].name.clone().unwrap_or_default(),
            shown(&d.to[0].name)
        );
        assert_eq!(p.to.len(), 2, "{head}");
        assert_eq!(p.cc.len(), 1, "{head}");
    }
    assert_eq!(composed, 3_000);
}

#[test]
fn bcc_recipients_are_envelope_only() {
    let mut d = draft();
    d.bcc = vec![
        Mailbox::new("Audit", addr("audit@corp.example")),
        Mailbox::bare(addr("ann@cust.example")),
    ];
    let out = d.outgoing().unwrap();
    assert_eq!(
        out.destinations.last(),
        Some(&addr("audit@corp.example")),
        "after To and Cc, each once"
    );
    assert_eq!(out.destinations.len(), 4);
    let text = String::from_utf8(out.raw).unwrap();
    assert!(!text.to_lowercase().contains("bcc"), "{text}");
    assert!(!text.contains("audit@corp.example"));
    // Bcc alone is a recipient; a non-ASCII Bcc address is refused by name.
    let mut only = draft();
    only.to.clear();
    only.cc.clear();
    only.bcc = vec![Mailbox::bare(addr("audit@corp.example"))];
    assert!(compose(&only).is_ok());
    only.bcc = vec![Mailbox::bare(addr("zoë@corp.example"))];
    assert_eq!(compose(&only).unwrap_err().field, "bcc");
}

#[test]
fn attachments_go_in_a_mixed_message_and_round_trip() {
    use mail_parser::MimeHeaders;
    let mut d = draft();
    let pdf: Vec<u8> = (0..=255u8).cycle().take(5000).collect();
    let long_name = format!("Überweisung für die Bestellung {} .pdf", "x".repeat(70));
    d.attachments = vec![
        Attachment {
            filename: "invoice 4711.pdf".into(),
            content_type: "application/pdf".into(),
            content: pdf.clone(),
        },
        Attachment {
            filename: long_name.clone(),
            content_type: "text/plain".into(),
            content: b"plain --=_mr_ words\r\n".to_vec(),
        },
    ];
    let raw = compose(&d).unwrap();
    let text = std::str::from_utf8(&raw).unwrap();
    assert!(text.contains("Content-Type: multipart/mixed;"), "{text}");
    for line in text.split("\r\n") {
        assert!(line.len() <= 998, "{line:?}");
    }
    let m = mail_parser::MessageParser::default().parse(&raw).unwrap();
    assert_eq!(m.attachment_count(), 2);
    let a = m.attachment(0).unwrap();
    assert_eq!(a.attachment_name(), Some("invoice 4711.pdf"));
    assert_eq!(a.contents(), pdf.as_slice());
    let b = m.attachment(1).unwrap();
    assert_eq!(b.attachment_name(), Some(long_name.as_str()));
    assert_eq!(b.contents(), b"plain --=_mr_ words\r\n");
    // The bodies are still both there, and the headers as they were.
    assert!(m.body_text(0).unwrap().starts_with("Bonjour John"));
    assert!(m.body_html(0).unwrap().contains("Джон"));
    assert_eq!(
        m.subject(),
        parse(&compose(&draft()).unwrap())
            .unwrap()
            .subject
            .as_deref()
    );

    // A content type with parameters (or a line break) is refused by name.
    d.attachments[1].content_type = "text/plain\r\nBcc: x@evil.example".into();
    assert_eq!(
        compose(&d).unwrap_err().field,
        "attachments[1].content_type"
    );
}

#[test]
fn hostile_file_names_never_add_a_header_line() {
    let mut g = Gen(0x9e37_79b9_7f4a_7c15);
    for _ in 0..500 {
        let mut d = draft();
        d.html = None;
        d.attachments = vec![Attachment {
            filename: g.text(HOSTILE, 20),
            content_type: "application/octet-stream".into(),
            content: vec![1, 2, 3],
        }];
        let raw = compose(&d).unwrap();
        let text = std::str::from_utf8(&raw).unwrap();
        let part = &text[text.find("Content-Disposition").unwrap()..];
        let head = &part[..part.find("\r\n\r\n").unwrap()];
        for line in head.split("\r\n").skip(1) {
            assert!(
                line.starts_with(' ') || line.starts_with("Content-Transfer-Encoding:"),
                "{head:?}"
            );
        }
        let m = mail_parser::MessageParser::default().parse(&raw).unwrap();
        assert_eq!(m.attachment_count(), 1, "{head}");
    }
}
