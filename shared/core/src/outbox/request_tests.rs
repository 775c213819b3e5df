use super::*;
use serde_json::json;

fn request(extra: serde_json::Value) -> SendRequest {
    let mut body = json!({
        "account": "support", "to": ["carol@customer.example"],
        "subject": "Your order", "text": "Hello"
    });
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    serde_json::from_value(body).unwrap()
}

fn refused(extra: serde_json::Value) -> Invalid {
    request(extra).message().unwrap_err()
}

#[test]
fn a_plain_message_and_named_recipients_are_accepted() {
    let m = request(json!({
        "to": ["Carol Customer <carol@customer.example>", "\"Smith, Bob\" <Bob@Customer.example>"],
        "cc": ["dave@customer.example"], "bcc": ["audit@corp.example"],
        "subject": "  Your order  "
    }))
    .message()
    .unwrap();
    assert_eq!(m.to[0].name, "Carol Customer");
    assert_eq!(m.to[1].name, "Smith, Bob");
    assert_eq!(m.to[1].address.as_str(), "bob@customer.example");
    assert_eq!(m.cc.len() + m.bcc.len(), 2);
    assert_eq!(m.subject, "Your order");
}

#[test]
fn every_refusal_names_its_field() {
    let cases = [
        (json!({"to": []}), "to"),
        (
            json!({"to": ["carol@customer.example", "not-an-address"]}),
            "to[1]",
        ),
        (
            json!({"cc": ["a@b.example\r\nBcc: x@evil.example"]}),
            "cc[0]",
        ),
        (
            json!({"to": ["Carol\r\nBcc: x@evil.example <carol@customer.example>"]}),
            "to[0]",
        ),
        (
            json!({"to": ["Carol\u{0} <carol@customer.example>"]}),
            "to[0]",
        ),
        (json!({"bcc": ["carol@customer.example\n"]}), "bcc[0]"),
        (json!({"to": ["carol@customer..example"]}), "to[0]"),
        (json!({"to": ["carol@localhost"]}), "to[0]"),
        (json!({"to": ["ca rol@customer.example"]}), "to[0]"),
        (json!({"to": ["carol@-customer.example"]}), "to[0]"),
        (json!({"to": ["zoë@customer.example"]}), "to[0]"),
        (
            json!({"to": [format!("{}@customer.example", "a".repeat(65))]}),
            "to[0]",
        ),
        (
            json!({"to": [format!("{} <c@customer.example>", "n".repeat(101))]}),
            "to[0]",
        ),
        (
            json!({"subject": "Hello\r\nBcc: x@evil.example"}),
            "subject",
        ),
        (json!({"subject": "tab\there"}), "subject"),
        (json!({"subject": "   "}), "subject"),
        (
            json!({"subject": "s".repeat(MAX_SUBJECT_CHARS + 1)}),
            "subject",
        ),
        (json!({"text": "x".repeat(MAX_BODY_BYTES + 1)}), "text"),
        (json!({"html": "x".repeat(MAX_BODY_BYTES + 1)}), "html"),
    ];
    for (extra, field) in cases {
        let e = refused(extra.clone());
        assert_eq!(e.field, field, "{extra}: {e}");
        assert!(!e.message.is_empty());
    }
}

#[test]
fn at_most_fifty_recipients_in_all() {
    let list = |n: usize, tag: &str| -> Vec<String> {
        (0..n)
            .map(|i| format!("{tag}{i}@customer.example"))
            .collect()
    };
    let ok = request(json!({"to": list(30, "t"), "cc": list(10, "c"), "bcc": list(10, "b")}));
    assert_eq!(ok.message().unwrap().bcc.len(), 10);
    let e = refused(json!({"to": list(30, "t"), "cc": list(10, "c"), "bcc": list(11, "b")}));
    assert_eq!(e.field, "bcc");
}

fn file(name: &str, content_type: &str, bytes: usize) -> serde_json::Value {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(vec![7u8; bytes]);
    json!({"filename": name, "content_type": content_type, "content_base64": b64})
}

#[test]
fn attachments_are_checked_and_sized() {
    let m = request(json!({"attachments": [file("Rechnung März.pdf", "Application/PDF", 10)]}))
        .message()
        .unwrap();
    let a = &m.content.attachments[0];
    assert_eq!(
        (
            a.filename.as_str(),
            a.content_type.as_str(),
            a.content.len()
        ),
        ("Rechnung März.pdf", "application/pdf", 10)
    );
    let cases = [
        (
            vec![file("a\r\nb.pdf", "application/pdf", 1)],
            "attachments[0].filename",
        ),
        (
            vec![file("../etc/passwd", "text/plain", 1)],
            "attachments[0].filename",
        ),
        (
            vec![file("a\"b", "text/plain", 1)],
            "attachments[0].filename",
        ),
        (vec![file("", "text/plain", 1)], "attachments[0].filename"),
        (
            vec![file("a.txt", "text/plain; x=\"\r\n\"", 1)],
            "attachments[0].content_type",
        ),
        (
            vec![file("a.txt", "text", 1)],
            "attachments[0].content_type",
        ),
        (
            vec![
                file("a.txt", "text/plain", 1),
                file(
                    "b.bin",
                    "application/octet-stream",
                    MAX_ATTACHMENT_BYTES + 1,
                ),
            ],
            "attachments[1].content_base64",
        ),
        (
            vec![
                file(
                    "a.bin",
                    "application/octet-stream",
                    MAX_ATTACHMENTS_BYTES / 2 + 1,
                ),
                file(
                    "b.bin",
                    "application/octet-stream",
                    MAX_ATTACHMENTS_BYTES / 2 + 1,
                ),
            ],
            "attachments[1].content_base64",
        ),
        (
            vec![json!({"filename": "a", "content_type": "text/plain", "content_base64": "%%%"})],
            "attachments[0].content_base64",
        ),
        (
            vec![file("a", "text/plain", 1); MAX_ATTACHMENTS + 1],
            "attachments",
        ),
    ];
    for (files, field) in cases {
        let e = refused(json!({ "attachments": files }));
        assert_eq!(e.field, field, "{e}");
    }
    // Exactly at the limit is accepted.
    let m = request(
        json!({"attachments": [file("big.bin", "application/octet-stream", MAX_ATTACHMENT_BYTES)]}),
    );
    assert_eq!(
        m.message().unwrap().content.attachments[0].content.len(),
        MAX_ATTACHMENT_BYTES
    );
}

#[test]
fn parents_name_their_fields() {
    let parent = |v: serde_json::Value| -> Result<RecordRef, Invalid> {
        serde_json::from_value::<ParentIn>(v).unwrap().record()
    };
    assert_eq!(
        parent(json!({"type": "case", "number": 4})).unwrap(),
        RecordRef::case(4)
    );
    assert_eq!(
        parent(json!({"type": "contact", "id": "Carol@Customer.example"})).unwrap(),
        RecordRef::new(RecordKind::Contact, "carol@customer.example")
    );
    assert_eq!(
        parent(json!({"type": "case"})).unwrap_err().field,
        "parent.number"
    );
    assert_eq!(
        parent(json!({"type": "case", "number": 0}))
            .unwrap_err()
            .field,
        "parent.number"
    );
    assert_eq!(
        parent(json!({"type": "ticket", "id": "1"}))
            .unwrap_err()
            .field,
        "parent.type"
    );
    assert_eq!(
        parent(json!({"type": "account"})).unwrap_err().field,
        "parent.id"
    );
    // Unknown fields are refused by the body's shape, before any of this.
    assert!(
        serde_json::from_value::<ParentIn>(json!({"type": "case", "number": 1, "x": 1})).is_err()
    );
    assert!(serde_json::from_value::<SendRequest>(json!({
        "account": "a", "to": [], "subject": "s", "text": "t", "headers": {"Bcc": "x"}
    }))
    .is_err());
}
