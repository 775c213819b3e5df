//! The management resources of the API over HTTP (R-P1, R-P2, R-X3, R-F9): an authorization
//! matrix that runs every endpoint as an admin, as users inside and outside the group
//! account's team under each `group_account_permission`, and as the owner and a stranger of a
//! personal account and of filters — every allow and every deny asserted by status, and after
//! each deny the store read again to show nothing was written. Then credentials (sealed,
//! never answered), the personal-account limit, and bad input naming its field.

use mailroom_core::access::{GroupAccountPermission, Role};
use mailroom_core::filters::Scope;
use mailroom_core::model::{AccountKind, Secret, Security};
use mailroom_core::ports::{AccountStore, FilterStore};
use serde_json::{json, Value};

use crate::api_support::ApiServer;
use crate::harness::{env, mailbox, stack, TestEnv, TestMailbox};

/// Everyone the matrix calls as. `in-*` share team `l1` with the group account `support`,
/// `out-*` are in `l2`; the suffix is their role's `group_account_permission`. `ann` owns the
/// personal account `ann-mail`; `bob` is a stranger to it (neither has a role).
const ROOT: &str = "root";
const ANN: &str = "ann";
const BOB: &str = "bob";
const IN: [&str; 3] = ["in-no", "in-team", "in-all"];
const OUT: [&str; 3] = ["out-no", "out-team", "out-all"];

fn everyone() -> Vec<&'static str> {
    let mut all = vec![ROOT];
    all.extend(IN);
    all.extend(OUT);
    all.extend([ANN, BOB]);
    all
}

/// Only these get the allowed status; everyone else the denied one.
fn only(allowed: &[&str], yes: u16, no: u16) -> Vec<(&'static str, u16)> {
    everyone()
        .into_iter()
        .map(|u| (u, if allowed.contains(&u) { yes } else { no }))
        .collect()
}

struct World {
    env: TestEnv,
    api: ApiServer,
    /// The group account's and the personal account's mailboxes.
    group_mb: TestMailbox,
    personal_mb: TestMailbox,
}

impl World {
    fn store(&self) -> &mailroom_aws::DynamoStore {
        &self.env.ctx.adapters().store
    }

    async fn call(
        &self,
        user: &str,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> (u16, Value) {
        self.api.call(user, method, path, body).await
    }

    /// Calls and asserts the status, showing the body when it is not the one expected.
    async fn expect(
        &self,
        user: &str,
        method: &str,
        path: &str,
        body: Option<&Value>,
        status: u16,
    ) -> Value {
        let (got, answer) = self.call(user, method, path, body).await;
        assert_eq!(got, status, "{user}: {method} {path} answered {answer}");
        answer
    }
}

async fn world(tag: &str) -> World {
    let env = env(tag).await;
    let ctx = &env.ctx;
    let store = &ctx.adapters().store;
    for t in ["l1", "l2"] {
        store.add_team(t).await.unwrap();
    }
    for p in [
        GroupAccountPermission::No,
        GroupAccountPermission::Team,
        GroupAccountPermission::All,
    ] {
        store
            .add_role(&Role {
                v: mailroom_core::SCHEMA_VERSION,
                name: format!("r-{}", p.as_str()),
                group_account_permission: p,
            })
            .await
            .unwrap();
    }
    let add = |name: &'static str,
               team: Option<&'static str>,
               admin: bool,
               role: Option<String>| async move {
        let teams: Vec<String> = team.into_iter().map(str::to_string).collect();
        mailroom::records::add_user_as(
            ctx,
            name,
            &[format!("{name}@corp.example")],
            &teams,
            true,
            admin,
            role.as_deref(),
        )
        .await
        .unwrap();
    };
    add(ROOT, None, true, None).await;
    for (i, p) in ["no", "team", "all"].iter().enumerate() {
        add(IN[i], Some("l1"), false, Some(format!("r-{p}"))).await;
        add(OUT[i], Some("l2"), false, Some(format!("r-{p}"))).await;
    }
    add(ANN, None, false, None).await;
    add(BOB, None, false, None).await;

    let group_mb = mailbox("apig");
    let mut group = env.new_account(
        "support",
        &group_mb,
        stack().imaps_port,
        Security::ImplicitTls,
    );
    group.teams = vec!["l1".into()];
    mailroom::accounts::add_group(ctx, group, Secret::new(&group_mb.password))
        .await
        .unwrap();
    let personal_mb = mailbox("apip");
    let mut personal = env.new_account(
        "ann-mail",
        &personal_mb,
        stack().imaps_port,
        Security::ImplicitTls,
    );
    personal.kind = AccountKind::Personal;
    personal.owner = Some(ANN.into());
    mailroom::accounts::add(ctx, personal, Secret::new(&personal_mb.password))
        .await
        .unwrap();
    let api = ApiServer::start(&env).await;
    World {
        env,
        api,
        group_mb,
        personal_mb,
    }
}

fn names(list: &Value) -> Vec<String> {
    let mut n: Vec<String> = list["items"]
        .as_array()
        .unwrap_or_else(|| panic!("a list body: {list}"))
        .iter()
        .map(|i| i["name"].as_str().unwrap().to_string())
        .collect();
    n.sort();
    n
}

/// A personal account body as the contract gives it, on the local Dovecot.
fn personal_body(name: &str, mb: &TestMailbox) -> Value {
    json!({
        "name": name,
        "address": mb.user,
        "imap_host": "127.0.0.1",
        "imap_port": stack().imaps_port,
        "imap_user": mb.user,
        "password": mb.password,
        "security": "implicit-tls",
        "folders": ["INBOX"],
        "fetch_since": "2024-01-01",
    })
}

fn error_field(body: &Value) -> &str {
    body["error"]["field"]
        .as_str()
        .unwrap_or_else(|| panic!("an error naming its field: {body}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_are_listed_and_read_by_who_may_see_them_and_never_with_a_password() {
    let w = world("apiacc").await;
    // support: admins; its team (whatever their permission); `all` outside it.
    let sees_support = [ROOT, "in-no", "in-team", "in-all", "out-all"];
    let sees_personal = [ROOT, ANN];
    for user in everyone() {
        let list = w.expect(user, "GET", "/v1/accounts", None, 200).await;
        let mut want: Vec<String> = vec![];
        if sees_personal.contains(&user) {
            want.push("ann-mail".into());
        }
        if sees_support.contains(&user) {
            want.push("support".into());
        }
        assert_eq!(names(&list), want, "{user}");
        let text = list.to_string();
        for secret in [&w.group_mb.password, &w.personal_mb.password] {
            assert!(!text.contains(secret.as_str()), "{user}: {text}");
        }
        assert!(!text.contains("ciphertext"), "{text}");
    }
    for (user, status) in only(&sees_support, 200, 404) {
        let a = w
            .expect(user, "GET", "/v1/accounts/support", None, status)
            .await;
        if status == 200 {
            assert_eq!(a["kind"], "group");
            assert_eq!(a["teams"], json!(["l1"]));
            assert!(
                a.get("secret").is_none() && a.get("password").is_none(),
                "{a}"
            );
        }
    }
    for (user, status) in only(&sees_personal, 200, 404) {
        w.expect(user, "GET", "/v1/accounts/ann-mail", None, status)
            .await;
    }
    w.expect(ROOT, "GET", "/v1/accounts/nope", None, 404).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn personal_accounts_are_added_by_their_owner_or_an_admin_with_the_password_sealed() {
    let w = world("apipers").await;
    let store = w.store();
    let mb = mailbox("apinew");
    // A stranger (any role, any team) may not add one for ann; nothing is stored.
    for user in IN.iter().chain(OUT.iter()).chain([&BOB]) {
        let mut body = personal_body(&format!("x-{user}"), &mb);
        body["owner"] = json!(ANN);
        let (status, answer) = w
            .call(user, "POST", "/v1/accounts/personal", Some(&body))
            .await;
        assert_eq!(status, 403, "{user}: {answer}");
        assert_eq!(error_field(&answer), "owner");
        assert!(store
            .get_account(&format!("x-{user}"))
            .await
            .unwrap()
            .is_none());
    }
    // Every user adds their own, whatever their role and team (R-P2).
    for user in IN.iter().chain(OUT.iter()) {
        let body = personal_body(&format!("own-{user}"), &mb);
        let a = w
            .expect(user, "POST", "/v1/accounts/personal", Some(&body), 201)
            .await;
        assert_eq!(a["owner"], *user);
    }
    // The owner adds her own; an admin adds one for bob.
    let created = w
        .expect(
            ANN,
            "POST",
            "/v1/accounts/personal",
            Some(&personal_body("ann-2", &mb)),
            201,
        )
        .await;
    assert_eq!(created["owner"], ANN);
    assert_eq!(created["kind"], "personal");
    let mut for_bob = personal_body("bob-1", &mb);
    for_bob["owner"] = json!(BOB);
    w.expect(ROOT, "POST", "/v1/accounts/personal", Some(&for_bob), 201)
        .await;
    assert_eq!(
        store
            .get_account("bob-1")
            .await
            .unwrap()
            .unwrap()
            .owner
            .as_deref(),
        Some(BOB)
    );

    // Sealed: the stored item holds no plaintext, and opens to the password under its name.
    let table = &w.env.ctx.config().resources.table;
    let item = w
        .env
        .ctx
        .clients
        .dynamodb
        .get_item()
        .table_name(table)
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S("ACCOUNTS".into()),
        )
        .key(
            "sk",
            aws_sdk_dynamodb::types::AttributeValue::S("ann-2".into()),
        )
        .send()
        .await
        .unwrap()
        .item
        .expect("the account item");
    let raw = format!("{item:?}");
    assert!(raw.contains("ciphertext"), "{raw}");
    assert!(
        !raw.contains(&mb.password),
        "the stored item holds the password: {raw}"
    );
    let stored = store.get_account("ann-2").await.unwrap().unwrap();
    use mailroom_core::ports::SecretBox as _;
    let opened = w
        .env
        .ctx
        .adapters()
        .secrets
        .open("ann-2", &stored.secret)
        .await
        .unwrap();
    assert_eq!(opened.expose(), mb.password);
    // The owner reads it back; no answer ever shows the password.
    let got = w.expect(ANN, "GET", "/v1/accounts/ann-2", None, 200).await;
    assert!(!got.to_string().contains(&mb.password), "{got}");
    assert_eq!(got["imap_user"], mb.user.as_str());

    // A duplicate name is a conflict naming the field.
    let (status, answer) = w
        .call(
            ANN,
            "POST",
            "/v1/accounts/personal",
            Some(&personal_body("ann-2", &mb)),
        )
        .await;
    assert_eq!((status, error_field(&answer)), (409, "name"), "{answer}");
    // Only admins add group accounts; nothing stored on a deny.
    let group = json!({
        "name": "g-new", "address": mb.user, "imap_host": "127.0.0.1",
        "imap_port": stack().imaps_port, "imap_user": mb.user, "password": mb.password,
        "teams": ["l1"],
    });
    for user in everyone().into_iter().filter(|u| *u != ROOT) {
        w.expect(user, "POST", "/v1/accounts/group", Some(&group), 403)
            .await;
        assert!(store.get_account("g-new").await.unwrap().is_none());
    }
    let g = w
        .expect(ROOT, "POST", "/v1/accounts/group", Some(&group), 201)
        .await;
    assert_eq!(g["kind"], "group");
    assert_eq!(g["teams"], json!(["l1"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_personal_account_limit_stops_the_owner_with_nothing_stored() {
    let w = world("apilim").await;
    let store = w.store();
    let mb = mailbox("apilim");
    let limit = mailroom_api::ApiSettings::default().personal_account_limit;
    let count = || async {
        store
            .list_accounts()
            .await
            .unwrap()
            .iter()
            .filter(|a| a.owner.as_deref() == Some(ANN))
            .count()
    };
    // ann has ann-mail already.
    for i in 1..limit {
        w.expect(
            ANN,
            "POST",
            "/v1/accounts/personal",
            Some(&personal_body(&format!("ann-{i}"), &mb)),
            201,
        )
        .await;
    }
    assert_eq!(count().await, limit);
    let (status, answer) = w
        .call(
            ANN,
            "POST",
            "/v1/accounts/personal",
            Some(&personal_body("ann-over", &mb)),
        )
        .await;
    assert_eq!((status, error_field(&answer)), (409, "owner"), "{answer}");
    assert_eq!(count().await, limit);
    assert!(store.get_account("ann-over").await.unwrap().is_none());
    // Bob's allowance is his own.
    w.expect(
        BOB,
        "POST",
        "/v1/accounts/personal",
        Some(&personal_body("bob-1", &mb)),
        201,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_account_input_is_a_4xx_naming_the_field_and_never_echoes_the_password() {
    let w = world("apibad").await;
    let mb = mailbox("apibad");
    let bad = |f: &dyn Fn(&mut Value)| {
        let mut b = personal_body("ann-bad", &mb);
        f(&mut b);
        b
    };
    let cases: Vec<(Value, u16, &str)> = vec![
        (
            bad(&|b| {
                b.as_object_mut().unwrap().remove("imap_host");
            }),
            422,
            "imap_host",
        ),
        (bad(&|b| b["imap_port"] = json!(70000)), 422, "imap_port"),
        (bad(&|b| b["imap_port"] = json!(0)), 422, "imap_port"),
        (
            bad(&|b| b["name"] = json!("ann\r\nBcc: x@y.test")),
            422,
            "name",
        ),
        (
            bad(&|b| b["address"] = json!("a@b.test\r\nBcc: x@y.test")),
            422,
            "address",
        ),
        (bad(&|b| b["folders"] = json!(["IN\"BOX"])), 422, "folders"),
        (
            bad(&|b| b["security"] = json!("sometimes")),
            422,
            "security",
        ),
        (
            bad(&|b| b["fetch_since"] = json!("yesterday")),
            422,
            "fetch_since",
        ),
        (bad(&|b| b["password"] = json!("")), 422, "password"),
        (bad(&|b| b["extra"] = json!(1)), 422, "extra"),
        (
            bad(&|b| b["imap_host"] = json!("no-such-host.invalid")),
            422,
            "imap_host",
        ),
    ];
    for (body, status, field) in cases {
        let (got, answer) = w
            .call(ANN, "POST", "/v1/accounts/personal", Some(&body))
            .await;
        assert_eq!(
            (got, error_field(&answer)),
            (status, field),
            "{body} -> {answer}"
        );
        assert!(!answer.to_string().contains(&mb.password), "{answer}");
        assert!(w.store().get_account("ann-bad").await.unwrap().is_none());
    }
    let (got, answer) = w
        .api
        .call_with_header(
            Some(&format!("Bearer {}", w.api.token(ANN))),
            "POST",
            "/v1/accounts/personal",
            None,
        )
        .await;
    assert_eq!((got, error_field(&answer)), (400, "body"), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operations_are_the_admins_and_a_denied_reset_changes_nothing() {
    let w = world("apiops").await;
    let store = w.store();
    let day = "2025-03-01";
    let reset = json!({"fetch_since": day});
    // Status: admins, and a personal account's owner; hidden accounts are 404.
    let support_status = [ROOT]
        .into_iter()
        .map(|u| (u, 200))
        .chain(["in-no", "in-team", "in-all", "out-all"].map(|u| (u, 403)))
        .chain(["out-no", "out-team", ANN, BOB].map(|u| (u, 404)));
    for (user, status) in support_status {
        w.expect(user, "GET", "/v1/accounts/support/status", None, status)
            .await;
        if user != ROOT {
            w.expect(
                user,
                "POST",
                "/v1/accounts/support/reset",
                Some(&reset),
                status,
            )
            .await;
            assert_eq!(
                store
                    .get_account("support")
                    .await
                    .unwrap()
                    .unwrap()
                    .fetch_since,
                None
            );
        }
    }
    for (user, status) in only(&[ROOT, ANN], 200, 404) {
        let s = w
            .expect(user, "GET", "/v1/accounts/ann-mail/status", None, status)
            .await;
        if status == 200 {
            assert_eq!(s["account"], "ann-mail");
        }
    }
    // Resetting a personal account is an admin's operation (R-F9), not its owner's.
    w.expect(
        ANN,
        "POST",
        "/v1/accounts/ann-mail/reset",
        Some(&reset),
        403,
    )
    .await;
    assert_eq!(
        store
            .get_account("ann-mail")
            .await
            .unwrap()
            .unwrap()
            .fetch_since,
        None
    );
    let done = w
        .expect(
            ROOT,
            "POST",
            "/v1/accounts/support/reset",
            Some(&reset),
            200,
        )
        .await;
    assert_eq!(done["fetch_since"], day);
    assert_eq!(
        store
            .get_account("support")
            .await
            .unwrap()
            .unwrap()
            .fetch_since,
        Some(day.parse().unwrap())
    );
    let (status, answer) = w
        .call(
            ROOT,
            "POST",
            "/v1/accounts/support/reset",
            Some(&json!({"fetch_since": "03/01/2025"})),
        )
        .await;
    assert_eq!(
        (status, error_field(&answer)),
        (422, "fetch_since"),
        "{answer}"
    );

    // Polling on and off: who manages the account; nothing changes on a deny.
    let off = json!({"active": false});
    let support_patch = [ROOT]
        .into_iter()
        .map(|u| (u, 200))
        .chain(["in-no", "in-team", "in-all", "out-all"].map(|u| (u, 403)))
        .chain(["out-no", "out-team", ANN, BOB].map(|u| (u, 404)));
    for (user, status) in support_patch {
        if user == ROOT {
            continue;
        }
        w.expect(user, "PATCH", "/v1/accounts/support", Some(&off), status)
            .await;
        assert!(store.get_account("support").await.unwrap().unwrap().active);
    }
    let personal_active = || async { store.get_account("ann-mail").await.unwrap().unwrap().active };
    for user in everyone().into_iter().filter(|u| ![ROOT, ANN].contains(u)) {
        w.expect(user, "PATCH", "/v1/accounts/ann-mail", Some(&off), 404)
            .await;
        assert!(personal_active().await);
    }
    w.expect(ANN, "PATCH", "/v1/accounts/ann-mail", Some(&off), 200)
        .await;
    assert!(!personal_active().await);
    let on = json!({"active": true});
    w.expect(ROOT, "PATCH", "/v1/accounts/ann-mail", Some(&on), 200)
        .await;
    assert!(personal_active().await);
    let a = w
        .expect(ROOT, "PATCH", "/v1/accounts/support", Some(&off), 200)
        .await;
    assert_eq!(a["active"], false);
    assert!(!store.get_account("support").await.unwrap().unwrap().active);
    let (status, answer) = w
        .call(
            ROOT,
            "PATCH",
            "/v1/accounts/support",
            Some(&json!({"active": "no"})),
        )
        .await;
    assert_eq!((status, error_field(&answer)), (422, "active"), "{answer}");

    // Quarantine and dead letters: admins only.
    for (user, status) in only(&[ROOT], 200, 403) {
        w.expect(user, "GET", "/v1/quarantine", None, status).await;
        w.expect(user, "GET", "/v1/dead-letters", None, status)
            .await;
        let replay = json!({"queue": "ingest"});
        w.expect(
            user,
            "POST",
            "/v1/dead-letters/replay",
            Some(&replay),
            status,
        )
        .await;
        w.expect(
            user,
            "POST",
            "/v1/quarantine/nope/replay",
            None,
            if status == 200 { 404 } else { 403 },
        )
        .await;
    }
    let letters = w.expect(ROOT, "GET", "/v1/dead-letters", None, 200).await;
    let queues: Vec<&str> = letters["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["queue"].as_str().unwrap())
        .collect();
    assert_eq!(queues, ["ingest", "poll"]);
    let (status, answer) = w
        .call(
            ROOT,
            "POST",
            "/v1/dead-letters/replay",
            Some(&json!({"queue": "dispatch"})),
        )
        .await;
    assert_eq!((status, error_field(&answer)), (422, "queue"), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quarantined_message_is_replayed_by_an_admin_only() {
    let w = world("apiq").await;
    let ctx = &w.env.ctx;
    // A message without a header section is quarantined (R-I1) by a cycle.
    let garbage = mailroom::local::repo_root().join("tests/fixtures/eml/malformed/no-headers.eml");
    crate::harness::deliver(&w.group_mb, &[std::fs::read(garbage).unwrap()]).await;
    let support = mailroom_core::schedule::Selection::Named(vec!["support".into()]);
    mailroom::cycle::run(ctx, support).await.unwrap();
    use mailroom_core::ports::EmailStore as _;
    let quarantined = w.store().list_quarantine().await.unwrap();
    let Some(q) = quarantined.first() else {
        panic!("the cycle quarantined nothing");
    };
    let list = w.expect(ROOT, "GET", "/v1/quarantine", None, 200).await;
    assert_eq!(list["items"][0]["id"], q.id.as_str());
    let path = format!("/v1/quarantine/{}/replay", q.id);
    let depth = || async { ctx.adapters().ingest_queue.depth().await.unwrap() };
    let before = depth().await;
    for user in everyone().into_iter().filter(|u| *u != ROOT) {
        w.expect(user, "POST", &path, None, 403).await;
    }
    assert_eq!(depth().await, before, "a denied replay sent nothing");
    let r = w.expect(ROOT, "POST", &path, None, 202).await;
    assert_eq!(r["account"], "support");
    assert_eq!(depth().await.0, before.0 + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_are_managed_per_scope_by_who_r_x3_names() {
    let w = world("apifil").await;
    let store = w.store();
    let scopes = [
        ("global", vec![ROOT]),
        ("account:support", vec![ROOT]),
        ("account:ann-mail", vec![ROOT, ANN]),
        ("user:ann", vec![ROOT, ANN]),
        ("user:bob", vec![ROOT, BOB]),
    ];
    let stored = || async {
        store
            .filters()
            .await
            .unwrap()
            .into_iter()
            .map(|f| f.name)
            .collect::<Vec<_>>()
    };
    let mut made: Vec<(String, &str)> = vec![];
    for (i, (scope, managers)) in scopes.iter().enumerate() {
        for (user, status) in only(managers, 201, 403) {
            let name = format!("f{i}-{user}");
            let body =
                json!({"scope": scope, "name": name, "from": "*@spam.test", "action": "skip"});
            let answer = w
                .expect(user, "POST", "/v1/filters", Some(&body), status)
                .await;
            if status == 201 {
                assert_eq!(answer["scope"], *scope);
                made.push((name.clone(), scope));
            } else {
                assert_eq!(error_field(&answer), "scope");
            }
            assert_eq!(
                stored().await.contains(&name),
                status == 201,
                "{user} {scope}"
            );
        }
    }
    // Each lists exactly the filters of the scopes they manage.
    for user in everyone() {
        let mut want: Vec<String> = made
            .iter()
            .filter(|(_, s)| {
                scopes
                    .iter()
                    .any(|(scope, m)| *scope == *s && m.contains(&user))
            })
            .map(|(n, _)| n.clone())
            .collect();
        want.sort();
        let list = w.expect(user, "GET", "/v1/filters", None, 200).await;
        assert_eq!(names(&list), want, "{user}");
    }
    // A stranger neither reads nor deletes ann's filter; she does.
    let ann_filter = "f3-ann";
    let path = format!("/v1/filters/{ann_filter}");
    for user in everyone().into_iter().filter(|u| ![ROOT, ANN].contains(u)) {
        w.expect(user, "GET", &path, None, 404).await;
        w.expect(user, "DELETE", &path, None, 404).await;
        assert!(stored().await.contains(&ann_filter.to_string()));
    }
    w.expect(ANN, "GET", &path, None, 200).await;
    w.expect(ANN, "DELETE", &path, None, 200).await;
    assert!(!stored().await.contains(&ann_filter.to_string()));
    w.expect(ANN, "DELETE", &path, None, 404).await;
    // An admin removes anyone's.
    w.expect(ROOT, "DELETE", "/v1/filters/f4-bob", None, 200)
        .await;
    let bobs: Vec<String> = store
        .filters()
        .await
        .unwrap()
        .into_iter()
        .filter(|f| f.scope == Scope::User(BOB.into()))
        .map(|f| f.name)
        .collect();
    // The one root made for bob's inbox stays.
    assert_eq!(bobs, ["f4-root"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_filters_and_the_per_user_limit_are_refused_naming_the_field() {
    let w = world("apifbad").await;
    let base = json!({"scope": "user:ann", "name": "ok", "from": "*@x.test", "action": "skip"});
    let bad = |f: &dyn Fn(&mut Value)| {
        let mut b = base.clone();
        f(&mut b);
        b
    };
    let cases: Vec<(Value, u16, &str)> = vec![
        (bad(&|b| b["scope"] = json!("galaxy")), 422, "scope"),
        (bad(&|b| b["scope"] = json!("user:nobody")), 403, "scope"),
        (bad(&|b| b["action"] = json!("explode")), 422, "action"),
        (
            bad(&|b| {
                b.as_object_mut().unwrap().remove("action");
            }),
            422,
            "action",
        ),
        (bad(&|b| b["name"] = json!("a\r\nb")), 422, "name"),
        (bad(&|b| b["from"] = json!(" ")), 422, "from"),
        (
            bad(&|b| b["action"] = json!("move-to-folder")),
            422,
            "folder",
        ),
        (bad(&|b| b["colour"] = json!("red")), 422, "colour"),
    ];
    for (body, status, field) in cases {
        let (got, answer) = w.call(ANN, "POST", "/v1/filters", Some(&body)).await;
        assert_eq!(
            (got, error_field(&answer)),
            (status, field),
            "{body} -> {answer}"
        );
    }
    assert!(w.store().filters().await.unwrap().is_empty());
    // An admin naming an unknown user hears that it is unknown.
    let (got, answer) = w
        .call(
            ROOT,
            "POST",
            "/v1/filters",
            Some(&bad(&|b| b["scope"] = json!("user:nobody"))),
        )
        .await;
    assert_eq!((got, error_field(&answer)), (422, "scope"), "{answer}");

    // R-X2: ann's inbox and personal-account filters together stop at the limit.
    let limit = mailroom_core::filters::MAX_FILTERS_PER_USER;
    for i in 0..limit {
        let scope = if i % 2 == 0 {
            "user:ann"
        } else {
            "account:ann-mail"
        };
        let body = json!({"scope": scope, "name": format!("n{i}"), "subject": "x*", "action": "mark-read"});
        w.expect(ANN, "POST", "/v1/filters", Some(&body), 201).await;
    }
    let over =
        json!({"scope": "account:ann-mail", "name": "over", "subject": "x*", "action": "skip"});
    let (got, answer) = w.call(ANN, "POST", "/v1/filters", Some(&over)).await;
    assert_eq!((got, error_field(&answer)), (409, "scope"), "{answer}");
    assert_eq!(w.store().filters().await.unwrap().len(), limit);
    // Bob's allowance is untouched.
    let bobs = json!({"scope": "user:bob", "name": "bob-1", "subject": "x*", "action": "skip"});
    w.expect(BOB, "POST", "/v1/filters", Some(&bobs), 201).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_directory_is_read_by_every_user_and_written_by_admins() {
    let w = world("apidir").await;
    let store = w.store();
    for user in everyone() {
        let me = w.expect(user, "GET", "/v1/me", None, 200).await;
        assert_eq!(me["name"], user);
        assert_eq!(me["admin"], user == ROOT);
        let want = match user {
            u if u.ends_with("-team") => "team",
            u if u.ends_with("-all") => "all",
            _ => "no",
        };
        assert_eq!(me["permission"], want, "{user}");
        let users = w.expect(user, "GET", "/v1/users", None, 200).await;
        assert_eq!(users["items"].as_array().unwrap().len(), everyone().len());
        let ann = w.expect(user, "GET", "/v1/users/ann", None, 200).await;
        assert_eq!(ann["emails"], json!(["ann@corp.example"]));
        w.expect(user, "GET", "/v1/users/nobody", None, 404).await;
        let teams = w.expect(user, "GET", "/v1/teams", None, 200).await;
        assert_eq!(names(&teams), ["l1", "l2"]);
    }
    for (user, status) in only(&[ROOT], 200, 403) {
        w.expect(user, "GET", "/v1/roles", None, status).await;
    }
    let roles = w.expect(ROOT, "GET", "/v1/roles", None, 200).await;
    assert_eq!(names(&roles), ["r-all", "r-no", "r-team"]);

    // Writes: admins only, nothing stored on a deny.
    for (user, status) in only(&[ROOT], 201, 403) {
        let n = format!("new-{user}");
        let body = json!({"name": n, "emails": [format!("{n}@corp.example")], "teams": ["l1:lead"], "role": "r-team"});
        w.expect(user, "POST", "/v1/users", Some(&body), status)
            .await;
        assert_eq!(
            store.get_user(&n).await.unwrap().is_some(),
            status == 201,
            "{user}"
        );
        let t = format!("team-{user}");
        w.expect(user, "POST", "/v1/teams", Some(&json!({"name": t})), status)
            .await;
        assert_eq!(
            store.list_teams().await.unwrap().contains(&t),
            status == 201
        );
        let r = format!("role-{user}");
        let body = json!({"name": r, "group_account_permission": "team"});
        w.expect(user, "POST", "/v1/roles", Some(&body), status)
            .await;
        assert_eq!(store.get_role(&r).await.unwrap().is_some(), status == 201);
    }
    let added = store.get_user("new-root").await.unwrap().unwrap();
    assert_eq!(added.role.as_deref(), Some("r-team"));
    assert_eq!(added.teams[0].position.as_deref(), Some("lead"));

    // Bad input names the field; duplicates conflict.
    let cases: Vec<(&str, Value, u16, &str)> = vec![
        ("/v1/users", json!({"name": "a\r\nb"}), 422, "name"),
        (
            "/v1/users",
            json!({"name": "x", "emails": ["x@y.test\r\nBcc: z@y.test"]}),
            422,
            "emails",
        ),
        (
            "/v1/users",
            json!({"name": "x", "teams": ["nope"]}),
            422,
            "teams",
        ),
        (
            "/v1/users",
            json!({"name": "x", "role": "nope"}),
            422,
            "role",
        ),
        ("/v1/users", json!({"emails": []}), 422, "name"),
        ("/v1/users", json!({"name": "ann"}), 409, "name"),
        ("/v1/teams", json!({"name": "l\r\n3"}), 422, "name"),
        ("/v1/teams", json!({"name": "l1"}), 409, "name"),
        (
            "/v1/roles",
            json!({"name": "r", "group_account_permission": "maybe"}),
            422,
            "group_account_permission",
        ),
        (
            "/v1/roles",
            json!({"name": "r\n", "group_account_permission": "no"}),
            422,
            "name",
        ),
        (
            "/v1/roles",
            json!({"name": "r-no", "group_account_permission": "no"}),
            409,
            "name",
        ),
    ];
    for (path, body, status, field) in cases {
        let (got, answer) = w.call(ROOT, "POST", path, Some(&body)).await;
        assert_eq!(
            (got, error_field(&answer)),
            (status, field),
            "{path} {body} -> {answer}"
        );
    }
    assert!(store.get_user("x").await.unwrap().is_none());

    // Pages walk every user once.
    let mut seen = vec![];
    let mut path = "/v1/users?limit=4".to_string();
    loop {
        let page = w.expect(BOB, "GET", &path, None, 200).await;
        seen.extend(names(&page));
        match page["next"].as_str() {
            Some(c) => path = format!("/v1/users?limit=4&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), store.list_users().await.unwrap().len());
}

/// Found by the API fuzz run: empty names (`"owner": ""`) reached DynamoDB as empty key
/// attributes, which it refuses with a ValidationException (a 500). They are unknown now.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_names_are_unknown_not_server_errors() {
    let env = env("apiempty").await;
    mailroom::records::add_user_as(&env.ctx, ROOT, &[], &[], true, true, None)
        .await
        .unwrap();
    let api = ApiServer::start(&env).await;
    let body = json!({"name": "", "owner": "", "address": "", "imap_host": "", "imap_port": 1,
        "imap_user": "", "password": "pw", "security": "implicit-tls", "folders": [],
        "fetch_since": null});
    let (status, out) = api
        .call(ROOT, "POST", "/v1/accounts/personal", Some(&body))
        .await;
    assert!((400..500).contains(&status), "{status} {out}");
    assert!(out["error"]["field"].is_string(), "{out}");
    assert!(!out.to_string().contains("\"pw\""), "{out}");
    let none = env.ctx.adapters().store.list_accounts().await.unwrap();
    assert!(none.is_empty(), "{none:?}");
}
