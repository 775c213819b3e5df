//! The reading side of the API over HTTP against the local stack: who may read which email
//! (R-P4, both ways), the lists that leave out what the caller may not read, attachments
//! through pre-signed URLs that really download from the emulator, cursor pages, and case
//! changes allowed and refused (nothing stored on a refusal).
//!
//! One scene serves the R-P4 tests: teams `l1` and `l2`; `support` (group, team l1, no cases)
//! and `desk` (group, team l2, cases round-robin to l2); `owner-mail`, the personal account of
//! `owner`. Users: `root` (admin), `ann` (l1), `bob` (l2), `owner`, `fred` (follows the contact
//! Carol), `eve` (no team).

use mailroom::cycle;
use mailroom_core::admin::NewRecord;
use mailroom_core::model::{AccountKind, Secret, Security};
use mailroom_core::ports::{EmailStore, Followers};
use mailroom_core::records::{Contact, RecordRef};
use mailroom_core::schedule::Selection;
use serde_json::{json, Value};

use crate::api_support::ApiServer;
use crate::cases::{mail, rr, simple, Mail};
use crate::harness::*;

const CAROL: &str = "carol@customer.example";

struct Scene {
    env: TestEnv,
    support: TestMailbox,
    desk: TestMailbox,
    personal: TestMailbox,
}

async fn scene(tag: &str) -> Scene {
    let env = env(tag).await;
    let ctx = &env.ctx;
    let store = &ctx.adapters().store;
    store.add_team("l1").await.unwrap();
    store.add_team("l2").await.unwrap();
    let users: [(&str, &[&str], bool); 6] = [
        ("root", &[], true),
        ("ann", &["l1"], false),
        ("bob", &["l2"], false),
        ("owner", &[], false),
        ("fred", &[], false),
        ("eve", &[], false),
    ];
    for (name, teams, admin) in users {
        let emails = [format!("{name}@corp.example")];
        let teams: Vec<String> = teams.iter().map(|t| t.to_string()).collect();
        mailroom::records::add_user_as(ctx, name, &emails, &teams, true, admin, None)
            .await
            .unwrap();
    }
    let (support, desk, personal) = (mailbox(tag), mailbox(tag), mailbox(tag));
    for (name, mb, team) in [("support", &support, "l1"), ("desk", &desk, "l2")] {
        let mut new = env.new_account(name, mb, stack().imaps_port, Security::ImplicitTls);
        new.teams = vec![team.into()];
        mailroom::accounts::add_group(ctx, new, Secret::new(&mb.password))
            .await
            .unwrap();
    }
    store.set_case_settings("desk", &rr("l2")).await.unwrap();
    let mut new = env.new_account(
        "owner-mail",
        &personal,
        stack().imaps_port,
        Security::ImplicitTls,
    );
    new.kind = AccountKind::Personal;
    new.owner = Some("owner".into());
    mailroom::accounts::add(ctx, new, Secret::new(&personal.password))
        .await
        .unwrap();
    let carol = NewRecord::Contact(Contact {
        v: 1,
        name: "Carol".into(),
        email: CAROL.into(),
        account: None,
    });
    store.add_record(&carol).await.unwrap();
    store.follow("fred", &carol.reference()).await.unwrap();
    Scene {
        env,
        support,
        desk,
        personal,
    }
}

impl Scene {
    async fn receive(&self, mb: &TestMailbox, account: &str, messages: &[Vec<u8>]) {
        deliver(mb, messages).await;
        let totals = cycle::run(&self.env.ctx, Selection::Named(vec![account.into()]))
            .await
            .unwrap();
        assert!(totals.iter().all(|t| t.errors == 0), "{totals:?}");
    }

    /// The stored email with this Message-ID.
    async fn email_id(&self, message_id: &str) -> String {
        self.env
            .ctx
            .adapters()
            .store
            .list_emails()
            .await
            .unwrap()
            .into_iter()
            .find(|e| e.message_id == message_id)
            .unwrap_or_else(|| panic!("{message_id} was stored"))
            .email_id
    }
}

/// The ids of every email `user` is listed, walking the pages.
async fn listed(api: &ApiServer, user: &str, query: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..100 {
        let mut path = format!("/v1/emails?{query}");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let (status, body) = api.call(user, "GET", &path, None).await;
        assert_eq!(status, 200, "{path}: {body}");
        for item in body["items"].as_array().unwrap() {
            out.push(item["id"].as_str().unwrap().to_string());
        }
        match body["next"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return out,
        }
    }
    panic!("more than 100 pages");
}

/// Whether `user` may open the email: 200, or 404 (never 403) when not.
async fn opens(api: &ApiServer, user: &str, id: &str) -> bool {
    let (status, body) = api
        .call(user, "GET", &format!("/v1/emails/{id}"), None)
        .await;
    match status {
        200 => {
            assert_eq!(body["id"], id);
            true
        }
        404 => {
            assert_eq!(body["error"]["code"], "not_found", "{body}");
            false
        }
        other => panic!("GET /v1/emails/{id} as {user}: {other} {body}"),
    }
}

/// Asserts who may read `id`, both ways, through GET and through the list.
async fn readers(api: &ApiServer, id: &str, allowed: &[&str], refused: &[&str]) {
    for user in allowed {
        assert!(opens(api, user, id).await, "{user} reads {id}");
        assert!(
            listed(api, user, "limit=100")
                .await
                .contains(&id.to_string()),
            "{user} is listed {id}"
        );
    }
    for user in refused {
        assert!(!opens(api, user, id).await, "{user} may not read {id}");
        assert!(
            !listed(api, user, "limit=100")
                .await
                .contains(&id.to_string()),
            "{user} is not listed {id}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_mail_is_read_by_admins_its_teams_and_readers_of_its_parent() {
    let s = scene("apig").await;
    let api = ApiServer::start(&s.env).await;
    s.receive(
        &s.support,
        "support",
        &[
            simple("apig-1@nobody.example", "x@nobody.example", "No parent"),
            simple("apig-2@customer.example", CAROL, "From Carol"),
        ],
    )
    .await;
    let orphan = s.email_id("apig-1@nobody.example").await;
    let filed = s.email_id("apig-2@customer.example").await;
    // No parent: the admin and team l1 only.
    readers(&api, &orphan, &["root", "ann"], &["bob", "eve", "owner"]).await;
    // Filed under Carol's contact: every active user reads the record, so the mail too.
    readers(&api, &filed, &["root", "ann", "bob", "eve"], &[]).await;
    let (_, body) = api
        .call("bob", "GET", &format!("/v1/emails/{filed}"), None)
        .await;
    assert_eq!(body["parent"]["type"], "contact");
    assert_eq!(body["parent"]["id"], CAROL);
    assert_eq!(body["from"], CAROL);
    assert_eq!(body["accounts"], json!(["support"]));
    assert!(
        body["text"].as_str().unwrap().contains("please help"),
        "{body}"
    );
    // Filters narrow the list.
    let by_parent = listed(&api, "root", &format!("parent=contact:{CAROL}")).await;
    assert_eq!(by_parent, std::slice::from_ref(&filed));
    let by_account = listed(&api, "root", "account=support").await;
    assert_eq!(by_account.len(), 2);
    assert!(listed(&api, "root", "account=desk").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn personal_mail_is_its_owners_until_it_joins_a_case() {
    let s = scene("apip").await;
    let api = ApiServer::start(&s.env).await;
    s.receive(
        &s.personal,
        "owner-mail",
        &[simple("apip-1@customer.example", CAROL, "Private")],
    )
    .await;
    let private = s.email_id("apip-1@customer.example").await;
    // Linked to Carol by its sender, followed by fred, readable (the record) by all: still
    // only its owner's. Not the admin's either.
    let (_, email) = api
        .call("owner", "GET", &format!("/v1/emails/{private}"), None)
        .await;
    assert_eq!(email["parent"]["id"], CAROL, "linked by its sender");
    readers(
        &api,
        &private,
        &["owner"],
        &["root", "fred", "bob", "ann", "eve"],
    )
    .await;
    // Carol's stream shows it to the owner and leaves it out for everyone else.
    let stream = |user: &'static str| {
        let api = &api;
        async move {
            let (status, body) = api
                .call(
                    user,
                    "GET",
                    &format!("/v1/records/contact/{CAROL}/stream"),
                    None,
                )
                .await;
            assert_eq!(status, 200, "{body}");
            body["items"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|e| e["email_id"].as_str().map(str::to_string))
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(stream("owner").await, std::slice::from_ref(&private));
    assert!(stream("fred").await.is_empty());
    assert!(stream("root").await.is_empty());

    // A customer writes to the desk (case, team l2); the owner's copy of the thread, a reply
    // to it, arrives in the personal mailbox and joins the case.
    s.receive(
        &s.desk,
        "desk",
        &[simple("apip-2@dave.example", "dave@dave.example", "Broken")],
    )
    .await;
    let case_mail = s.email_id("apip-2@dave.example").await;
    s.receive(
        &s.personal,
        "owner-mail",
        &[mail(Mail {
            id: "apip-3@dave.example",
            from: "dave@dave.example",
            subject: "Re: Broken",
            refs: &["apip-2@dave.example"],
            extra: "",
        })],
    )
    .await;
    let joined = s.email_id("apip-3@dave.example").await;
    let (_, email) = api
        .call("owner", "GET", &format!("/v1/emails/{joined}"), None)
        .await;
    let case = email["case"].as_u64().expect("the reply joined the case");
    assert_eq!(email["parent"]["type"], "case", "{email}");
    // Now the case's team reads it; the admin, outside the case's teams, still does not.
    readers(
        &api,
        &joined,
        &["owner", "bob"],
        &["root", "ann", "fred", "eve"],
    )
    .await;
    readers(&api, &case_mail, &["root", "bob", "eve"], &[]).await;
    let by_case = listed(&api, "bob", &format!("case={case}")).await;
    assert_eq!(by_case.len(), 2, "{by_case:?}");
    // The private one stays private.
    assert!(!opens(&api, "bob", &private).await);
}

/// A message with one attachment.
fn with_attachment(id: &str, from: &str, bytes: &[u8]) -> Vec<u8> {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
    format!(
        "From: {from}\r\nTo: support@example.test\r\nSubject: Invoice\r\nMessage-ID: <{id}>\r\n\
         Date: Tue, 3 Mar 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n\
         --b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nSee attached.\r\n\
         --b1\r\nContent-Type: application/pdf\r\n\
         Content-Disposition: attachment; filename=\"invoice 7.pdf\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{b64}\r\n--b1--\r\n"
    )
    .into_bytes()
}

/// A plain HTTP/1.1 GET (the pre-signed URL points at the emulator on loopback).
async fn download(url: &str) -> (u16, Vec<u8>) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let rest = url.strip_prefix("http://").expect("a loopback http URL");
    let (host, path) = rest.split_once('/').unwrap();
    let mut conn = tokio::net::TcpStream::connect(host).await.unwrap();
    let req = format!("GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    conn.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    conn.read_to_end(&mut raw).await.unwrap();
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..end]).to_string();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    assert!(
        !head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "{head}"
    );
    (status, raw[end + 4..].to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attachments_are_handed_out_as_urls_to_readers_only() {
    let s = scene("apia").await;
    let api = ApiServer::start(&s.env).await;
    let pdf: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
    s.receive(
        &s.support,
        "support",
        &[with_attachment(
            "apia-1@nobody.example",
            "x@nobody.example",
            &pdf,
        )],
    )
    .await;
    let id = s.email_id("apia-1@nobody.example").await;
    let (status, email) = api
        .call("ann", "GET", &format!("/v1/emails/{id}"), None)
        .await;
    assert_eq!(status, 200, "{email}");
    assert_eq!(email["attachments"][0]["filename"], "invoice 7.pdf");
    assert_eq!(email["attachments"][0]["index"], 0);
    let path = format!("/v1/emails/{id}/attachments/0");
    let (status, link) = api.call("ann", "GET", &path, None).await;
    assert_eq!(status, 200, "{link}");
    assert_eq!(link["filename"], "invoice 7.pdf");
    assert_eq!(link["content_type"], "application/pdf");
    assert_eq!(link["size"], pdf.len());
    assert!(link["expires_at"].as_str().is_some());
    let (status, bytes) = download(link["url"].as_str().unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(bytes, pdf, "the URL downloads the attachment's bytes");
    // bob (team l2) may not read the email: no URL, and the same 404 as for no email at all.
    let (status, body) = api.call("bob", "GET", &path, None).await;
    assert_eq!(status, 404, "{body}");
    let (status, _) = api
        .call(
            "ann",
            "GET",
            &format!("/v1/emails/{id}/attachments/1"),
            None,
        )
        .await;
    assert_eq!(status, 404, "no second attachment");
    let (status, _) = api
        .call("ann", "GET", "/v1/emails/no-such-email/attachments/0", None)
        .await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_walk_every_email_and_bad_cursors_and_limits_name_their_field() {
    let s = scene("apin").await;
    let api = ApiServer::start(&s.env).await;
    let messages: Vec<Vec<u8>> = (0..5)
        .map(|i| {
            simple(
                &format!("apin-{i}@nobody.example"),
                "x@nobody.example",
                "Page",
            )
        })
        .collect();
    s.receive(&s.support, "support", &messages).await;
    let all = listed(&api, "root", "limit=100").await;
    assert_eq!(all.len(), 5);
    let one_by_one = listed(&api, "root", "limit=1").await;
    assert_eq!(one_by_one, all, "limit=1 walks every email once, in order");
    let (_, first) = api.call("root", "GET", "/v1/emails?limit=2", None).await;
    assert_eq!(first["items"].as_array().unwrap().len(), 2);
    assert!(first["next"].is_string());
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=x", "limit"),
        ("cursor=%%%", "cursor"),
        ("cursor=not-base64!", "cursor"),
        ("case=abc", "case"),
        ("parent=nothing", "parent"),
    ] {
        let (status, body) = api
            .call("root", "GET", &format!("/v1/emails?{query}"), None)
            .await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(body["error"]["field"], field, "{query}: {body}");
    }
    // Cases and notifications page the same way.
    let (status, body) = api.call("root", "GET", "/v1/cases?limit=0", None).await;
    assert_eq!(
        (status, body["error"]["field"].clone()),
        (400, json!("limit"))
    );
    let (status, body) = api
        .call("root", "GET", "/v1/notifications?unread=maybe", None)
        .await;
    assert_eq!(
        (status, body["error"]["field"].clone()),
        (400, json!("unread"))
    );
}

/// The case's status, assignee and the users' open counts as stored.
async fn case_state(env: &TestEnv, n: u64) -> (Value, u64, u64) {
    let store = &env.ctx.adapters().store;
    let c = store
        .list_cases()
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.number.get() == n)
        .unwrap();
    (
        json!([format!("{:?}", c.status), c.assigned_user]),
        store.open_load("bob").await.unwrap(),
        store.open_load("ann").await.unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cases_change_for_admins_their_teams_and_their_assignee_and_nobody_else() {
    let s = scene("apic").await;
    let api = ApiServer::start(&s.env).await;
    s.receive(
        &s.desk,
        "desk",
        &[simple("apic-1@dave.example", "dave@dave.example", "Broken")],
    )
    .await;
    let (_, list) = api.call("eve", "GET", "/v1/cases", None).await;
    let case = &list["items"][0];
    let n = case["number"].as_u64().unwrap();
    assert_eq!(case["assigned_user"], "bob", "round-robin in l2");
    assert_eq!(case["emails"], json!(["apic-1@dave.example"]));
    let path = format!("/v1/cases/{n}");
    let before = case_state(&s.env, n).await;
    assert_eq!(before, (json!(["Assigned", "bob"]), 1, 0));

    // ann (l1) and eve (no team) are neither the case's team nor its assignee.
    for user in ["ann", "eve"] {
        let (status, body) = api
            .call(user, "PATCH", &path, Some(&json!({"status": "Closed"})))
            .await;
        assert_eq!(status, 403, "{user}: {body}");
        assert_eq!(case_state(&s.env, n).await, before, "nothing stored");
    }
    // A bad value is refused with its field, and nothing is stored.
    let bad = [
        (json!({"status": "Done"}), 422, "status"),
        (json!({"assigned_user": "nobody"}), 422, "assigned_user"),
        (json!({"colour": "red"}), 422, "colour"),
        (json!({}), 422, "body"),
    ];
    for (body, status, field) in bad {
        let (got, reply) = api.call("bob", "PATCH", &path, Some(&body)).await;
        assert_eq!(
            (got, reply["error"]["field"].clone()),
            (status, json!(field)),
            "{body}"
        );
        assert_eq!(case_state(&s.env, n).await, before);
    }
    // bob (l2, the assignee) sets it pending; the admin hands it to ann, whose count it
    // joins; ann, now its assignee though outside l2, closes it.
    let (status, body) = api
        .call("bob", "PATCH", &path, Some(&json!({"status": "Pending"})))
        .await;
    assert_eq!((status, body["status"].clone()), (200, json!("Pending")));
    let (status, body) = api
        .call(
            "root",
            "PATCH",
            &path,
            Some(&json!({"assigned_user": "ann"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        case_state(&s.env, n).await,
        (json!(["Pending", "ann"]), 0, 1)
    );
    let (status, _) = api
        .call("ann", "PATCH", &path, Some(&json!({"status": "Closed"})))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        case_state(&s.env, n).await,
        (json!(["Closed", "ann"]), 0, 0)
    );
    // Filters on the list.
    let (_, closed) = api
        .call(
            "eve",
            "GET",
            "/v1/cases?status=Closed&assigned_user=ann",
            None,
        )
        .await;
    assert_eq!(closed["items"].as_array().unwrap().len(), 1);
    let (_, open) = api.call("eve", "GET", "/v1/cases?status=New", None).await;
    assert!(open["items"].as_array().unwrap().is_empty());
    let (status, _) = api.call("eve", "GET", "/v1/cases/999999", None).await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_followers_and_notifications_over_http() {
    let s = scene("apir").await;
    let api = ApiServer::start(&s.env).await;
    // Create: validated as the CLI validates, references included.
    let (status, body) = api
        .call(
            "eve",
            "POST",
            "/v1/records/contact",
            Some(&json!({"name": "Zed", "email": "not an address"})),
        )
        .await;
    assert_eq!(
        (status, body["error"]["field"].clone()),
        (422, json!("email"))
    );
    let (status, body) = api
        .call(
            "eve",
            "POST",
            "/v1/records/contact",
            Some(&json!({"name": "Zed", "email": "Zed@Z.example", "account": "Nope"})),
        )
        .await;
    assert_eq!(
        (status, body["error"]["field"].clone()),
        (422, json!("account"))
    );
    let (status, body) = api
        .call(
            "eve",
            "POST",
            "/v1/records/contact",
            Some(&json!({"name": "Zed", "email": "Zed@Z.example"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["id"], "zed@z.example");
    let again = api
        .call(
            "eve",
            "POST",
            "/v1/records/contact",
            Some(&json!({"name": "Zed", "email": "zed@z.example"})),
        )
        .await;
    assert_eq!(again.0, 409);
    let (_, list) = api.call("bob", "GET", "/v1/records/contact", None).await;
    let ids: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [CAROL, "zed@z.example"]);
    let (status, _) = api.call("bob", "GET", "/v1/records/thing", None).await;
    assert_eq!(status, 404);

    // Followers: oneself, admins for anyone.
    let f = "/v1/records/contact/zed@z.example/followers";
    let (status, _) = api.call("eve", "PUT", &format!("{f}/bob"), None).await;
    assert_eq!(status, 403);
    let store = &s.env.ctx.adapters().store;
    let zed = RecordRef::new(mailroom_core::records::RecordKind::Contact, "zed@z.example");
    assert!(
        store.followers(&zed).await.unwrap().is_empty(),
        "nothing stored"
    );
    assert_eq!(
        api.call("eve", "PUT", &format!("{f}/eve"), None).await.0,
        200
    );
    assert_eq!(
        api.call("root", "PUT", &format!("{f}/bob"), None).await.0,
        200
    );
    let (status, _) = api.call("root", "PUT", &format!("{f}/ghost"), None).await;
    assert_eq!(status, 422, "only active users follow");
    let (_, body) = api.call("bob", "GET", f, None).await;
    assert_eq!(body["items"], json!([{"user": "bob"}, {"user": "eve"}]));
    assert_eq!(
        api.call("eve", "DELETE", &format!("{f}/bob"), None).await.0,
        403
    );
    assert_eq!(
        api.call("bob", "DELETE", &format!("{f}/bob"), None).await.0,
        200
    );
    assert_eq!(store.followers(&zed).await.unwrap(), ["eve"]);

    // Notifications: group mail from Carol tells fred (her follower) and team l1.
    s.receive(
        &s.support,
        "support",
        &[simple("apir-1@customer.example", CAROL, "Hello")],
    )
    .await;
    let (_, mine) = api.call("fred", "GET", "/v1/notifications", None).await;
    let items = mine["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{mine}");
    let key = items[0]["key"].as_str().unwrap().to_string();
    assert_eq!(items[0]["read"], false);
    // Another user's key is not found, and marks nothing.
    let read = format!("/v1/notifications/{key}/read");
    assert_eq!(api.call("eve", "POST", &read, None).await.0, 404);
    let (_, unread) = api
        .call("fred", "GET", "/v1/notifications?unread=true", None)
        .await;
    assert_eq!(unread["items"].as_array().unwrap().len(), 1);
    assert_eq!(api.call("fred", "POST", &read, None).await.0, 200);
    let (_, unread) = api
        .call("fred", "GET", "/v1/notifications?unread=true", None)
        .await;
    assert!(unread["items"].as_array().unwrap().is_empty());
    let (_, all) = api.call("fred", "GET", "/v1/notifications", None).await;
    assert_eq!(all["items"][0]["read"], true);
}
