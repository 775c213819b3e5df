//! Sending through the HTTP API against the local stack (R-S1..R-S5, R-L1): a customer's
//! mail makes a case, an agent answers it over HTTP, the answer is read back from what SES
//! recorded (group From, `[#N]`, the thread headers, our Message-ID, SES's id as the 201
//! said), and the customer's untagged answer to it, delivered to Dovecot and polled, joins
//! the case. Bad input and denied senders get a 4xx naming the field, and nothing is sent or
//! stored. Reply-all never copies Mailroom's own addresses or the agent's.
//!
//! Every test runs on an emulator of its own ([`OwnMoto`]): reading back what SES sent
//! serialises the emulator's whole state.

use mail_parser::{HeaderValue, MessageParser, MimeHeaders};
use mailroom::cycle;
use mailroom_core::access::{GroupAccountPermission, Role};
use mailroom_core::model::{AccountKind, Secret, Security};
use mailroom_core::outbox::request::MAX_ATTACHMENT_BYTES;
use mailroom_core::ports::{DispatchStore, EmailStore};
use mailroom_core::records::{RecordRef, StreamKind};
use mailroom_core::schedule::Selection;
use serde_json::{json, Value};

use crate::api_support::ApiServer;
use crate::cases::rr;
use crate::harness::*;

/// A group account `support` (team l1, email-to-case round-robin to l1) and `sales` (team
/// l2), each on its own mailbox and verified with SES; ann's personal account; users ann (l1),
/// bob (l2), both with a role of `team`; carl with a role of `no`; the API on top.
struct SendEnv {
    env: TestEnv,
    mb: TestMailbox,
    sales: TestMailbox,
    personal: String,
    customer: String,
    api: ApiServer,
}

async fn send_env(moto: &OwnMoto, tag: &str) -> SendEnv {
    let env = moto.env(tag).await;
    let ctx = &env.ctx;
    let store = &ctx.adapters().store;
    for team in ["l1", "l2"] {
        store.add_team(team).await.unwrap();
    }
    for (name, p) in [
        ("agent", GroupAccountPermission::Team),
        ("nobody", GroupAccountPermission::No),
    ] {
        let role = Role {
            v: 1,
            name: name.into(),
            group_account_permission: p,
        };
        store.add_role(&role).await.unwrap();
    }
    for (user, team, role) in [
        ("ann", "l1", "agent"),
        ("bob", "l2", "agent"),
        ("carl", "l1", "nobody"),
    ] {
        let emails = [format!("{user}@corp.example")];
        mailroom::records::add_user_as(
            ctx,
            user,
            &emails,
            &[team.to_string()],
            true,
            false,
            Some(role),
        )
        .await
        .unwrap();
    }
    let mb = mailbox(tag);
    let sales = mailbox(&format!("{tag}s"));
    for (name, m, team) in [("support", &mb, "l1"), ("sales", &sales, "l2")] {
        let mut new = env.new_account(name, m, stack().imaps_port, Security::ImplicitTls);
        new.teams = vec![team.into()];
        mailroom::accounts::add_group(ctx, new, Secret::new(&m.password))
            .await
            .expect("group account added");
    }
    store.set_case_settings("support", &rr("l1")).await.unwrap();
    // Ann's own mailbox: its address is Mailroom's too.
    let own = mailbox(&format!("{tag}p"));
    let mut new = env.new_account("ann-mail", &own, stack().imaps_port, Security::ImplicitTls);
    new.kind = AccountKind::Personal;
    new.owner = Some("ann".into());
    mailroom::accounts::add(ctx, new, Secret::new(&own.password))
        .await
        .expect("personal account added");
    let api = ApiServer::start(&env).await;
    SendEnv {
        customer: format!("carol-{}@customer.example", unique(tag).to_lowercase()),
        env,
        mb,
        sales,
        personal: own.user,
        api,
    }
}

impl SendEnv {
    async fn receive(&self, raw: Vec<u8>) -> cycle::AccountCycle {
        deliver(&self.mb, &[raw]).await;
        let totals = cycle::run(&self.env.ctx, Selection::Named(vec!["support".into()]))
            .await
            .unwrap();
        totals_for(&totals, "support").clone()
    }

    /// A customer's message to the support address; `refs` become In-Reply-To (the last)
    /// and References.
    fn customer_mail(&self, id: &str, subject: &str, refs: &[&str], cc: &[&str]) -> Vec<u8> {
        let mut m = format!(
            "From: Carol <{}>\r\nTo: Support <{}>\r\nSubject: {subject}\r\nMessage-ID: <{id}>\r\n\
             Date: {}\r\n",
            self.customer,
            self.mb.user,
            chrono::Utc::now().to_rfc2822()
        );
        if !cc.is_empty() {
            m.push_str(&format!("Cc: {}\r\n", cc.join(", ")));
        }
        if let Some(last) = refs.last() {
            m.push_str(&format!("In-Reply-To: <{last}>\r\n"));
            let all: Vec<String> = refs.iter().map(|r| format!("<{r}>")).collect();
            m.push_str(&format!("References: {}\r\n", all.join(" ")));
        }
        m.push_str("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n");
        m.push_str("The printer is on fire.\r\n");
        m.into_bytes()
    }

    async fn sent_records(&self) -> usize {
        self.env
            .ctx
            .adapters()
            .store
            .list_sent()
            .await
            .unwrap()
            .len()
    }

    /// The only case, made from the customer's first mail.
    async fn case_number(&self) -> u64 {
        let cases = self.env.ctx.adapters().store.list_cases().await.unwrap();
        assert_eq!(cases.len(), 1, "{cases:?}");
        cases[0].number.get()
    }
}

fn header(m: &mail_parser::Message<'_>, name: &str) -> Option<String> {
    m.header(name).map(|h| match h {
        HeaderValue::Text(t) => t.to_string(),
        HeaderValue::TextList(l) => l.join(" "),
        other => format!("{other:?}"),
    })
}

/// Every address a header of `raw` shows in To and Cc (and Bcc, which must be none).
fn shown(raw: &str, field: &str) -> Vec<String> {
    let m = MessageParser::default().parse(raw.as_bytes()).unwrap();
    let list = match field {
        "To" => m.to(),
        "Cc" => m.cc(),
        _ => m.bcc(),
    };
    list.map(|a| {
        a.iter()
            .filter_map(|x| x.address())
            .map(|x| x.to_lowercase())
            .collect()
    })
    .unwrap_or_default()
}

/// What SES recorded for the message whose Message-ID is `message_id`.
async fn raw_of(moto: &OwnMoto, message_id: &str) -> crate::ses::SentRaw {
    crate::ses::sent_raw_messages(&moto.endpoint)
        .await
        .into_iter()
        .find(|r| {
            MessageParser::default()
                .parse(r.raw_data.as_bytes())
                .and_then(|m| m.message_id().map(str::to_string))
                .as_deref()
                == Some(message_id)
        })
        .unwrap_or_else(|| panic!("SES recorded no message {message_id}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agents_reply_threads_and_the_customers_untagged_answer_joins_the_case() {
    let moto = OwnMoto::start();
    let s = send_env(&moto, "apisend").await;
    let store = &s.env.ctx.adapters().store;
    let first = format!("first-{}@customer.example", unique("m").to_lowercase());
    let t = s
        .receive(s.customer_mail(&first, "Printer on fire", &[], &[]))
        .await;
    assert_eq!((t.imported, t.cases_created), (1, 1), "{t:?}");
    let n = s.case_number().await;

    let body = json!({
        "account": "support",
        "to": [format!("Carol <{}>", s.customer)],
        "subject": "Re: Printer on fire",
        "text": "We are sending a technician.",
        "html": "<p>We are sending a technician.</p>",
        "parent": {"type": "case", "number": n}
    });
    let (status, sent) = s.api.call("ann", "POST", "/v1/emails", Some(&body)).await;
    assert_eq!(status, 201, "{sent}");
    let tag = format!("[#{n}]");
    assert_eq!(sent["subject"], format!("Re: {tag} Printer on fire"));
    assert_eq!(sent["from"], s.mb.user.as_str());
    let message_id = sent["message_id"].as_str().unwrap().to_string();
    let ses_id = sent["ses_message_id"].as_str().unwrap().to_string();
    assert!(!ses_id.contains('<') && !ses_id.contains('>'), "{ses_id}");
    // The id it answered reads the sent message back.
    let id = sent["id"].as_str().unwrap();
    let (status, read) = s
        .api
        .call("ann", "GET", &format!("/v1/emails/{id}"), None)
        .await;
    assert_eq!(status, 200, "{read}");
    assert_eq!(
        (&read["kind"], &read["ses_message_id"]),
        (&json!("sent"), &json!(ses_id))
    );

    // What SES was handed: the group From and Reply-To, the tag, the thread, our id.
    let raw = raw_of(&moto, &message_id).await;
    let m = MessageParser::default()
        .parse(raw.raw_data.as_bytes())
        .unwrap();
    let from = m.from().and_then(|f| f.first()).unwrap();
    assert_eq!(from.address(), Some(s.mb.user.as_str()));
    assert_eq!(
        shown(&raw.raw_data, "To"),
        std::slice::from_ref(&s.customer)
    );
    let reply_to = m
        .reply_to()
        .and_then(|r| r.first())
        .and_then(|a| a.address());
    assert_eq!(reply_to, Some(s.mb.user.as_str()));
    assert!(m.subject().unwrap().contains(&tag), "{:?}", m.subject());
    assert_eq!(m.in_reply_to().as_text(), Some(first.as_str()));
    assert_eq!(m.references().as_text(), Some(first.as_str()));
    assert_eq!(m.message_id(), Some(message_id.as_str()));
    assert_eq!(header(&m, "X-Mailroom-Id").as_deref(), sent["id"].as_str());
    // The id SES gave the delivered mail is the one the 201 answered, in the form the
    // recipient's Message-ID header carries.
    assert!(
        ses_id.starts_with(&format!("{}@", raw.id)) && ses_id.ends_with(".amazonses.com"),
        "{ses_id} for SES id {}",
        raw.id
    );
    // Stored, and in the case's stream.
    let records = store.list_sent().await.unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].ses_message_id, ses_id);
    assert_eq!(records[0].user.as_deref(), Some("ann"));
    let stream = store.stream(&RecordRef::case(n)).await.unwrap();
    assert!(
        stream
            .iter()
            .any(|e| e.kind == StreamKind::EmailSent
                && e.message_id.as_deref() == Some(ses_id.as_str())),
        "{stream:?}"
    );

    // The customer answers from a client that keeps only the id it saw: no tag, no first id.
    let answer = format!("answer-{}@customer.example", unique("m").to_lowercase());
    let t = s
        .receive(s.customer_mail(&answer, "Re: Printer on fire", &[&ses_id], &[]))
        .await;
    assert_eq!((t.imported, t.cases_created), (1, 0), "{t:?}");
    let email = store
        .list_emails()
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.message_id == answer)
        .expect("the answer is stored");
    assert_eq!(email.case.map(|c| c.get()), Some(n), "{email:?}");
    // As `mailroom cases` and the API show it: the case's emails hold both of the customer's.
    let (status, case) = s
        .api
        .call("ann", "GET", &format!("/v1/cases/{n}"), None)
        .await;
    assert_eq!(status, 200, "{case}");
    let emails: Vec<&str> = case["emails"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        emails.contains(&first.as_str()) && emails.contains(&answer.as_str()),
        "{case}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_a_4xx_naming_the_field_and_nothing_is_sent_or_stored() {
    use base64::Engine;
    let moto = OwnMoto::start();
    let s = send_env(&moto, "apibad").await;
    let first = format!("first-{}@customer.example", unique("m").to_lowercase());
    s.receive(s.customer_mail(&first, "Help", &[], &[])).await;
    let n = s.case_number().await;
    let before = crate::ses::sent_raw_messages(&moto.endpoint).await.len();

    let good = json!({
        "account": "support", "to": [s.customer.clone()], "subject": "Hello", "text": "Hi",
        "parent": {"type": "case", "number": n},
        "attachments": [{"filename": "Rechnung März.pdf", "content_type": "application/pdf",
                         "content_base64": base64::engine::general_purpose::STANDARD.encode(b"%PDF-1.4 tiny")}]
    });
    let with = |patch: Value| -> Value {
        let mut b = good.clone();
        for (k, v) in patch.as_object().unwrap() {
            match v {
                Value::Null => {
                    b.as_object_mut().unwrap().remove(k);
                }
                v => {
                    b[k] = v.clone();
                }
            }
        }
        b
    };
    let big =
        base64::engine::general_purpose::STANDARD.encode(vec![b'x'; MAX_ATTACHMENT_BYTES + 1]);
    let cases = [
        (with(json!({"to": null})), 422, "to"),
        (with(json!({"to": []})), 422, "to"),
        (with(json!({"to": ["not-an-address"]})), 422, "to[0]"),
        (
            with(json!({"to": [s.customer.clone(), "carol@@customer.example"]})),
            422,
            "to[1]",
        ),
        (
            with(json!({"subject": "Hello\r\nBcc: victim@evil.example"})),
            422,
            "subject",
        ),
        (
            with(json!({"subject": "Hello\nX-Injected: yes"})),
            422,
            "subject",
        ),
        (
            with(json!({"to": [format!("Carol\r\nBcc: victim@evil.example <{}>", s.customer)]})),
            422,
            "to[0]",
        ),
        (
            with(json!({"cc": ["carol@customer.example\r\nBcc: victim@evil.example"]})),
            422,
            "cc[0]",
        ),
        (
            with(json!({"bcc": ["victim@evil.example\r\n"]})),
            422,
            "bcc[0]",
        ),
        (
            with(
                json!({"attachments": [{"filename": "big.bin", "content_type": "application/octet-stream", "content_base64": big}]}),
            ),
            422,
            "attachments[0].content_base64",
        ),
        (
            with(
                json!({"attachments": [{"filename": "a\r\nb.txt", "content_type": "text/plain", "content_base64": "aGk="}]}),
            ),
            422,
            "attachments[0].filename",
        ),
        (
            with(json!({"parent": {"type": "case", "number": 99999}})),
            404,
            "parent",
        ),
        (with(json!({"account": "no-such-account"})), 422, "account"),
        (
            with(json!({"headers": {"Bcc": "victim@evil.example"}})),
            422,
            "headers",
        ),
        (with(json!({"subject": 7})), 422, "subject"),
    ];
    for (body, status, field) in cases {
        let (got, answer) = s.api.call("ann", "POST", "/v1/emails", Some(&body)).await;
        assert_eq!(got, status, "{field}: {answer}");
        assert_eq!(answer["error"]["field"], field, "{answer}");
        assert!(!answer["error"]["message"].as_str().unwrap_or("").is_empty());
    }
    // Replies: an unknown email, a CR/LF in an added Cc.
    let (got, answer) = s
        .api
        .call(
            "ann",
            "POST",
            "/v1/emails/no-such-email/reply",
            Some(&json!({"text": "x"})),
        )
        .await;
    assert_eq!(got, 404, "{answer}");
    let email_id = s.env.ctx.adapters().store.list_emails().await.unwrap()[0]
        .email_id
        .clone();
    let (got, answer) = s
        .api
        .call(
            "ann",
            "POST",
            &format!("/v1/emails/{email_id}/reply"),
            Some(&json!({"text": "x", "cc": ["a@b.example\r\nBcc: victim@evil.example"]})),
        )
        .await;
    assert_eq!(
        (got, answer["error"]["field"].as_str()),
        (422, Some("cc[0]")),
        "{answer}"
    );

    assert_eq!(
        crate::ses::sent_raw_messages(&moto.endpoint).await.len(),
        before
    );
    assert_eq!(s.sent_records().await, 0);
    // The same request made well is sent: the refusals above were the fields'.
    let (got, answer) = s.api.call("ann", "POST", "/v1/emails", Some(&good)).await;
    assert_eq!(got, 201, "{answer}");
    // With its attachment, as SES was handed it.
    let raw = raw_of(&moto, answer["message_id"].as_str().unwrap()).await;
    let m = MessageParser::default()
        .parse(raw.raw_data.as_bytes())
        .unwrap();
    let file = m.attachment(0).expect("the attachment went out");
    assert_eq!(file.attachment_name(), Some("Rechnung März.pdf"));
    assert_eq!(file.contents(), b"%PDF-1.4 tiny");
    assert_eq!(
        crate::ses::sent_raw_messages(&moto.endpoint).await.len(),
        before + 1
    );
    assert_eq!(s.sent_records().await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn who_may_not_send_from_the_account_gets_403_first_and_nothing_goes() {
    let moto = OwnMoto::start();
    let s = send_env(&moto, "apideny").await;
    let first = format!("first-{}@customer.example", unique("m").to_lowercase());
    s.receive(s.customer_mail(&first, "Help", &[], &[])).await;
    let n = s.case_number().await;
    let before = crate::ses::sent_raw_messages(&moto.endpoint).await.len();
    let body = |parent: u64, subject: &str| {
        json!({
            "account": "support", "to": [s.customer.clone()], "subject": subject, "text": "Hi",
            "parent": {"type": "case", "number": parent}
        })
    };
    // bob's team is l2 (support is l1's); carl is in l1 but his role says no.
    for user in ["bob", "carl"] {
        for b in [
            body(n, "Hello"),
            body(99999, "Hello"),
            body(99999, "Hello\r\nBcc: victim@evil.example"),
        ] {
            let (got, answer) = s.api.call(user, "POST", "/v1/emails", Some(&b)).await;
            assert_eq!(got, 403, "{user}: {answer}");
            assert_eq!(answer["error"]["code"], "forbidden");
        }
        let email_id = s.env.ctx.adapters().store.list_emails().await.unwrap()[0]
            .email_id
            .clone();
        let path = format!("/v1/emails/{email_id}/reply");
        let (got, answer) = s
            .api
            .call(user, "POST", &path, Some(&json!({"text": "x"})))
            .await;
        assert_eq!(got, 403, "{user}: {answer}");
    }
    // Nobody but ann sends from ann's personal account.
    let personal =
        json!({"account": "ann-mail", "to": [s.customer.clone()], "subject": "Hi", "text": "Hi"});
    let (got, _) = s
        .api
        .call("bob", "POST", "/v1/emails", Some(&personal))
        .await;
    assert_eq!(got, 403);
    assert_eq!(
        crate::ses::sent_raw_messages(&moto.endpoint).await.len(),
        before
    );
    assert_eq!(s.sent_records().await, 0);
    // bob may send from his own team's account.
    let sales =
        json!({"account": "sales", "to": [s.customer.clone()], "subject": "Hi", "text": "Hi"});
    let (got, answer) = s.api.call("bob", "POST", "/v1/emails", Some(&sales)).await;
    assert_eq!(got, 201, "{answer}");
    assert_eq!(answer["from"], s.sales.user.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reply_all_never_copies_mailroom_addresses_or_the_agents_own() {
    let moto = OwnMoto::start();
    let s = send_env(&moto, "apiall").await;
    let first = format!("first-{}@customer.example", unique("m").to_lowercase());
    let cc = [
        format!("Sales <{}>", s.sales.user),
        format!("Ann <{}>", "ann@corp.example"),
        format!("Ann at home <{}>", s.personal),
        "Dave <dave@customer.example>".to_string(),
        format!("Support again <{}>", s.mb.user.to_uppercase()),
        "DAVE@customer.example".to_string(),
    ];
    let cc: Vec<&str> = cc.iter().map(String::as_str).collect();
    s.receive(s.customer_mail(&first, "Printer", &[], &cc))
        .await;
    let email_id = s.env.ctx.adapters().store.list_emails().await.unwrap()[0]
        .email_id
        .clone();

    let path = format!("/v1/emails/{email_id}/reply-draft?all=true");
    let (got, draft) = s.api.call("ann", "GET", &path, None).await;
    assert_eq!(got, 200, "{draft}");
    assert_eq!(draft["to"], json!([s.customer.clone()]));
    assert_eq!(draft["cc"], json!(["dave@customer.example"]));
    assert_eq!(draft["account"], "support");
    assert_eq!(draft["in_reply_to"], first.as_str());
    let n = s.case_number().await;
    assert_eq!(draft["subject"], format!("Re: [#{n}] Printer"));
    assert_eq!(s.sent_records().await, 0, "a draft sends nothing");

    let path = format!("/v1/emails/{email_id}/reply");
    let body = json!({"all": true, "text": "On it.", "cc": ["eve@partner.example"]});
    let (got, sent) = s.api.call("ann", "POST", &path, Some(&body)).await;
    assert_eq!(got, 201, "{sent}");
    let raw = raw_of(&moto, sent["message_id"].as_str().unwrap()).await;
    assert_eq!(
        shown(&raw.raw_data, "To"),
        std::slice::from_ref(&s.customer)
    );
    assert_eq!(
        shown(&raw.raw_data, "Cc"),
        ["dave@customer.example", "eve@partner.example"]
    );
    assert!(shown(&raw.raw_data, "Bcc").is_empty());
    let never = [
        s.mb.user.to_lowercase(),
        s.sales.user.to_lowercase(),
        s.personal.to_lowercase(),
        "ann@corp.example".to_string(),
    ];
    for a in raw.addresses() {
        assert!(!never.contains(&a), "{a} in {:?}", raw.destinations);
    }
    // A plain reply copies nobody.
    let (_, plain) = s
        .api
        .call(
            "ann",
            "GET",
            &format!("/v1/emails/{email_id}/reply-draft"),
            None,
        )
        .await;
    assert_eq!(plain["cc"], json!([]));
}
