//! Linking (R-L1..R-L3) and email-to-case (R-C1..R-C7) against the real stack, each rule
//! both ways: it fires when it should and stays quiet when it should not.

use std::collections::HashMap;

use mailroom::cycle;
use mailroom_core::admin::NewRecord;
use mailroom_core::model::{CaseSettings, Distribution};
use mailroom_core::ports::Crm;
use mailroom_core::ports::{AccountStore, EmailStore};
use mailroom_core::records::{CaseStatus, Contact, CrmAccount, Lead, RecordKind, RecordRef};
use mailroom_core::schedule::Selection;
use mailroom_core::types::CaseNumber;

use crate::harness::*;

pub struct Mail<'a> {
    pub id: &'a str,
    pub from: &'a str,
    pub subject: &'a str,
    pub refs: &'a [&'a str],
    pub extra: &'a str,
}

pub fn mail(m: Mail<'_>) -> Vec<u8> {
    let mut s = format!(
        "From: {}\r\nTo: support@example.test\r\nSubject: {}\r\nMessage-ID: <{}>\r\nDate: Tue, 3 Mar 2026 10:00:00 +0000\r\n",
        m.from, m.subject, m.id
    );
    if let Some(last) = m.refs.last() {
        s.push_str(&format!("In-Reply-To: <{last}>\r\n"));
        let refs: Vec<String> = m.refs.iter().map(|r| format!("<{r}>")).collect();
        s.push_str(&format!("References: {}\r\n", refs.join(" ")));
    }
    s.push_str(m.extra);
    s.push_str("\r\nHello, please help.\r\n");
    s.into_bytes()
}

pub fn simple(id: &str, from: &str, subject: &str) -> Vec<u8> {
    mail(Mail {
        id,
        from,
        subject,
        refs: &[],
        extra: "",
    })
}

pub struct CaseEnv {
    pub env: TestEnv,
    pub mb: TestMailbox,
}

/// A group account `support` with email-to-case, a team `l1` and the given users
/// (`name` or `name:position`, `!name` for inactive), in that join order.
pub async fn case_env(tag: &str, users: &[&str], settings: CaseSettings) -> CaseEnv {
    let env = env(tag).await;
    let mb = mailbox(tag);
    let store = &env.ctx.adapters().store;
    store.add_team("l1").await.unwrap();
    for u in users {
        let (active, spec) = match u.strip_prefix('!') {
            Some(rest) => (false, rest),
            None => (true, *u),
        };
        let name = spec.split(':').next().unwrap();
        mailroom::records::add_user(
            &env.ctx,
            name,
            &[format!("{name}@corp.example")],
            &[format!("l1{}", spec.strip_prefix(name).unwrap_or(""))],
            active,
        )
        .await
        .unwrap();
    }
    env.add_account("support", &mb).await;
    store.set_case_settings("support", &settings).await.unwrap();
    CaseEnv { env, mb }
}

pub fn rr(team: &str) -> CaseSettings {
    CaseSettings {
        create_case: true,
        distribution: Distribution::RoundRobin,
        assign_to: None,
        target_team: Some(team.into()),
        position: None,
        reopen_on_reply: false,
    }
}

impl CaseEnv {
    pub async fn receive(&self, messages: &[Vec<u8>]) -> Vec<mailroom::cycle::AccountCycle> {
        deliver(&self.mb, messages).await;
        cycle::run(&self.env.ctx, Selection::Named(vec!["support".into()]))
            .await
            .unwrap()
    }
    pub async fn cases(&self) -> Vec<mailroom_core::records::Case> {
        let mut c = self.env.ctx.adapters().store.list_cases().await.unwrap();
        c.sort_by_key(|c| c.number);
        c
    }
    pub async fn email(&self, message_id: &str) -> mailroom_core::model::EmailRecord {
        self.env
            .ctx
            .adapters()
            .store
            .list_emails()
            .await
            .unwrap()
            .into_iter()
            .find(|e| e.message_id == message_id)
            .unwrap_or_else(|| panic!("no email {message_id}"))
    }
    pub async fn add(&self, r: NewRecord) {
        self.env.ctx.adapters().store.add_record(&r).await.unwrap();
    }
}

fn contact(name: &str, email: &str, account: Option<&str>) -> NewRecord {
    NewRecord::Contact(Contact {
        v: 1,
        name: name.into(),
        email: email.into(),
        account: account.map(str::to_string),
    })
}

fn account(name: &str, emails: &[&str]) -> NewRecord {
    NewRecord::Account(CrmAccount {
        v: 1,
        name: name.into(),
        emails: emails.iter().map(|e| e.to_string()).collect(),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_over_three_users_and_nine_threads_gives_three_each_in_member_order() {
    let c = case_env("rr", &["zed", "amy", "bob"], rr("l1")).await;
    for i in 0..9 {
        // One thread per cycle, so the order of assignment is the order of arrival.
        c.receive(&[simple(
            &format!("rr-{i}@x.example"),
            "someone@x.example",
            &format!("issue {i}"),
        )])
        .await;
    }
    let cases = c.cases().await;
    assert_eq!(cases.len(), 9);
    let order: Vec<_> = cases
        .iter()
        .map(|c| c.assigned_user.clone().unwrap())
        .collect();
    assert_eq!(
        order,
        ["zed", "amy", "bob", "zed", "amy", "bob", "zed", "amy", "bob"]
    );
    assert!(cases
        .iter()
        .all(|c| c.status == CaseStatus::Assigned && c.teams == ["l1"]));
    assert_eq!(
        c.env
            .ctx
            .adapters()
            .store
            .counter("rr#support")
            .await
            .unwrap(),
        9
    );
    let numbers: Vec<u64> = cases.iter().map(|c| c.number.get()).collect();
    assert!(
        numbers.windows(2).all(|w| w[0] < w[1]),
        "increasing numbers: {numbers:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn later_emails_of_a_thread_join_its_case_and_its_stream() {
    let c = case_env("join", &["amy"], rr("l1")).await;
    c.receive(&[simple("root@x.example", "cust@x.example", "printer broken")])
        .await;
    c.receive(&[mail(Mail {
        id: "r1@x.example",
        from: "cust@x.example",
        subject: "Re: printer broken",
        refs: &["root@x.example"],
        extra: "",
    })])
    .await;
    // A broken client replies to the reply with References missing the root: R-L1 finds the
    // stored reply, so it still joins the case. (Arriving in the same batch as the reply it
    // names, it could not know the root yet; complete References chains have no such gap.)
    c.receive(&[mail(Mail {
        id: "r2@x.example",
        from: "cust@x.example",
        subject: "Re: Re: printer broken",
        refs: &["r1@x.example"],
        extra: "",
    })])
    .await;
    let cases = c.cases().await;
    assert_eq!(
        cases.len(),
        1,
        "only the first email of a thread creates a case"
    );
    let n = cases[0].number;
    for id in ["root@x.example", "r1@x.example", "r2@x.example"] {
        assert_eq!(c.email(id).await.case, Some(n), "{id}");
    }
    let stream = c
        .env
        .ctx
        .adapters()
        .store
        .stream(&RecordRef::case(n.get()))
        .await
        .unwrap();
    let ids: Vec<_> = stream
        .iter()
        .filter(|e| e.kind == "email_received")
        .filter_map(|e| e.message_id.clone())
        .collect();
    assert_eq!(ids.len(), 3);
    assert!(stream.iter().any(|e| e.kind == "case_created"));
    assert_eq!(cases[0].name, "printer broken");
    // R-I4: emails on the case carry its team.
    assert_eq!(c.email("r2@x.example").await.teams, ["l1"]);
    assert!(cases[0].description.contains("please help"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn least_busy_picks_the_fewest_open_cases_and_follows_status_changes() {
    let mut s = rr("l1");
    s.distribution = Distribution::LeastBusy;
    let c = case_env("lb", &["ann", "ben", "cat"], s).await;
    for i in 0..3 {
        c.receive(&[simple(
            &format!("lb-{i}@x.example"),
            "c@x.example",
            &format!("t{i}"),
        )])
        .await;
    }
    let cases = c.cases().await;
    let mut by_user: HashMap<String, CaseNumber> = HashMap::new();
    for k in &cases {
        by_user.insert(k.assigned_user.clone().unwrap(), k.number);
    }
    assert_eq!(by_user.len(), 3, "one each while loads are equal");
    let store = &c.env.ctx.adapters().store;
    // ben closes his case: he now has the fewest open cases and gets the next one.
    store
        .set_case_status(by_user["ben"], CaseStatus::Closed)
        .await
        .unwrap();
    assert_eq!(store.open_load("ben").await.unwrap(), 0);
    c.receive(&[simple("lb-3@x.example", "c@x.example", "t3")])
        .await;
    assert_eq!(
        c.cases().await.last().unwrap().assigned_user.as_deref(),
        Some("ben")
    );
    // Rejected and Duplicate also leave the open set; reopening counts again.
    store
        .set_case_status(by_user["ann"], CaseStatus::Duplicate)
        .await
        .unwrap();
    store
        .set_case_status(by_user["cat"], CaseStatus::Rejected)
        .await
        .unwrap();
    assert_eq!(store.open_load("ann").await.unwrap(), 0);
    store
        .set_case_status(by_user["cat"], CaseStatus::Pending)
        .await
        .unwrap();
    assert_eq!(store.open_load("cat").await.unwrap(), 1);
    c.receive(&[simple("lb-4@x.example", "c@x.example", "t4")])
        .await;
    assert_eq!(
        c.cases().await.last().unwrap().assigned_user.as_deref(),
        Some("ann")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn position_filter_and_inactive_users_are_respected() {
    let mut s = rr("l1");
    s.position = Some("L2".into());
    let c = case_env("pos", &["ann:L1", "ben:L2", "!cat:L2", "dan:L2"], s).await;
    for i in 0..4 {
        c.receive(&[simple(
            &format!("pos-{i}@x.example"),
            "c@x.example",
            &format!("t{i}"),
        )])
        .await;
    }
    let who: Vec<_> = c
        .cases()
        .await
        .iter()
        .map(|c| c.assigned_user.clone().unwrap())
        .collect();
    assert_eq!(who, ["ben", "dan", "ben", "dan"], "only active L2 members");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_team_with_no_eligible_member_records_an_error_and_the_case_is_created_unassigned() {
    let c = case_env("none", &["!ann", "!ben"], rr("l1")).await;
    c.receive(&[simple("none-1@x.example", "c@x.example", "help")])
        .await;
    let cases = c.cases().await;
    assert_eq!(cases.len(), 1, "nothing lost");
    assert_eq!(cases[0].assigned_user, None);
    assert_eq!(cases[0].status, CaseStatus::New);
    let a = c
        .env
        .ctx
        .adapters()
        .store
        .get_account("support")
        .await
        .unwrap()
        .unwrap();
    let err = a.case_error.expect("error recorded on the account");
    assert!(err.contains("no active member"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_distribution_assigns_the_fixed_user() {
    let mut s = rr("l1");
    s.distribution = Distribution::Direct;
    s.assign_to = Some("ben".into());
    let c = case_env("direct", &["ann", "ben"], s).await;
    for i in 0..2 {
        c.receive(&[simple(&format!("d-{i}@x.example"), "c@x.example", "x")])
            .await;
    }
    assert!(c
        .cases()
        .await
        .iter()
        .all(|c| c.assigned_user.as_deref() == Some("ben")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_replies_and_bounces_never_create_cases_but_list_mail_may() {
    let c = case_env("auto", &["ann"], rr("l1")).await;
    let dsn = std::fs::read(
        mailroom::local::repo_root().join("tests/fixtures/eml/thirdparty/dsn-bounce.eml"),
    )
    .unwrap();
    c.receive(&[
        mail(Mail {
            id: "ooo@x.example",
            from: "c@x.example",
            subject: "Out of office",
            refs: &[],
            extra: "Auto-Submitted: auto-replied\r\n",
        }),
        mail(Mail {
            id: "xa@x.example",
            from: "c@x.example",
            subject: "Away",
            refs: &[],
            extra: "X-Autoreply: yes\r\n",
        }),
        dsn,
        mail(Mail {
            id: "list@x.example",
            from: "member@lists.example",
            subject: "[users] question",
            refs: &[],
            extra: "List-Id: <users.lists.example>\r\nPrecedence: list\r\n",
        }),
        mail(Mail {
            id: "human@x.example",
            from: "c@x.example",
            subject: "Real question",
            refs: &[],
            extra: "Auto-Submitted: no\r\n",
        }),
    ])
    .await;
    let names: Vec<_> = c.cases().await.iter().map(|c| c.name.clone()).collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names.contains(&"[users] question".to_string()));
    assert!(names.contains(&"Real question".to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn linking_by_sender_contact_account_lead_and_converted_lead() {
    let mut s = rr("l1");
    s.create_case = false;
    let c = case_env("link", &["ann"], s).await;
    c.add(account("Acme", &["info@acme.example"])).await;
    c.add(contact("Ann Buyer", "ann@acme.example", Some("Acme")))
        .await;
    c.add(contact("Solo Sam", "sam@solo.example", None)).await;
    c.add(NewRecord::Lead(Lead {
        v: 1,
        name: "Lee".into(),
        email: "lee@lead.example".into(),
        converted_contact: None,
        converted_account: None,
    }))
    .await;
    c.add(NewRecord::Lead(Lead {
        v: 1,
        name: "Old".into(),
        email: "old@lead.example".into(),
        converted_contact: Some("sam@solo.example".into()),
        converted_account: None,
    }))
    .await;
    c.receive(&[
        simple(
            "l1@x.example",
            "ann@acme.example",
            "from a contact of an account",
        ),
        simple(
            "l2@x.example",
            "sam@solo.example",
            "from a contact without account",
        ),
        simple(
            "l3@x.example",
            "info@acme.example",
            "from the account itself",
        ),
        simple("l4@x.example", "lee@lead.example", "from a lead"),
        simple("l5@x.example", "old@lead.example", "from a converted lead"),
        simple(
            "l6@x.example",
            "stranger@nowhere.example",
            "from nobody we know",
        ),
        mail(Mail {
            id: "l7@x.example",
            from: "noreply@shop.example",
            subject: "via reply-to",
            refs: &[],
            extra: "Reply-To: ann@acme.example\r\n",
        }),
    ])
    .await;
    let parent = |r: Option<RecordRef>| r.map(|r| r.to_string());
    assert_eq!(
        parent(c.email("l1@x.example").await.parent).as_deref(),
        Some("account:Acme")
    );
    assert_eq!(
        parent(c.email("l2@x.example").await.parent).as_deref(),
        Some("contact:sam@solo.example")
    );
    assert_eq!(
        parent(c.email("l3@x.example").await.parent).as_deref(),
        Some("account:Acme")
    );
    assert_eq!(
        parent(c.email("l4@x.example").await.parent).as_deref(),
        Some("lead:lee@lead.example")
    );
    assert_eq!(
        parent(c.email("l5@x.example").await.parent).as_deref(),
        Some("contact:sam@solo.example")
    );
    assert_eq!(c.email("l6@x.example").await.parent, None);
    assert_eq!(
        parent(c.email("l7@x.example").await.parent).as_deref(),
        Some("account:Acme")
    );
    assert!(c.cases().await.is_empty(), "case creation is off");
    // The account's stream shows its emails.
    let stream = c
        .env
        .ctx
        .adapters()
        .store
        .stream(&RecordRef::new(RecordKind::Account, "Acme"))
        .await
        .unwrap();
    assert_eq!(stream.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_by_references_to_a_foreign_email_links_to_its_parent() {
    let mut s = rr("l1");
    s.create_case = false;
    let c = case_env("refs", &["ann"], s).await;
    c.add(contact("Sam", "sam@solo.example", None)).await;
    c.receive(&[simple(
        "orig@solo.example",
        "sam@solo.example",
        "a question",
    )])
    .await;
    c.receive(&[
        // A stranger replies; the original is not the first id of References.
        mail(Mail {
            id: "fw@else.example",
            from: "stranger@else.example",
            subject: "Re: a question",
            refs: &["unknown@nowhere.example", "orig@solo.example"],
            extra: "",
        }),
        // Without references, the stranger's mail has no parent.
        simple(
            "fw2@else.example",
            "stranger@else.example",
            "Re: a question",
        ),
    ])
    .await;
    assert_eq!(
        c.email("fw@else.example")
            .await
            .parent
            .map(|p| p.to_string())
            .as_deref(),
        Some("contact:sam@solo.example")
    );
    assert_eq!(c.email("fw2@else.example").await.parent, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_case_tag_joins_only_from_a_participant_that_passes_dmarc() {
    let c = case_env("tag", &["ann"], rr("l1")).await;
    c.add(account("Acme", &[])).await;
    c.add(contact("Ann", "ann@acme.example", Some("Acme")))
        .await;
    c.add(contact("Bob", "bob@acme.example", Some("Acme")))
        .await;
    c.receive(&[simple("t0@x.example", "ann@acme.example", "laptop broken")])
        .await;
    let n = c.cases().await[0].number;
    let subject = format!("[#{n}] more info");
    c.receive(&[
        // A stranger using the tag: ignored, a case of its own.
        simple("t1@evil.example", "mallory@evil.example", &subject),
        // A colleague at the case's account: joins.
        simple("t2@acme.example", "bob@acme.example", &subject),
        // The contact herself, but the receiving server saw DMARC fail: ignored.
        mail(Mail { id: "t3@acme.example", from: "ann@acme.example", subject: &subject, refs: &[], extra: "Authentication-Results: mx.example.test; dmarc=fail (p=reject) header.from=acme.example\r\n" }),
    ])
    .await;
    assert_ne!(c.email("t1@evil.example").await.case, Some(n));
    assert_eq!(c.email("t2@acme.example").await.case, Some(n));
    assert_ne!(c.email("t3@acme.example").await.case, Some(n));
    // The participant check also accepts an address already on the thread.
    c.receive(&[simple("t4@x.example", "ann@acme.example", &subject)])
        .await;
    assert_eq!(c.email("t4@x.example").await.case, Some(n));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_case_reopens_on_reply_only_when_configured() {
    for reopen in [false, true] {
        let mut s = rr("l1");
        s.reopen_on_reply = reopen;
        let c = case_env(&format!("reopen{reopen}"), &["ann"], s).await;
        c.receive(&[simple("ro@x.example", "c@x.example", "issue")])
            .await;
        let n = c.cases().await[0].number;
        let store = &c.env.ctx.adapters().store;
        store.set_case_status(n, CaseStatus::Closed).await.unwrap();
        c.receive(&[mail(Mail {
            id: "ro2@x.example",
            from: "c@x.example",
            subject: "Re: issue",
            refs: &["ro@x.example"],
            extra: "",
        })])
        .await;
        let case = store.get_case(n).await.unwrap().unwrap();
        assert_eq!(c.cases().await.len(), 1);
        if reopen {
            assert_eq!(case.status, CaseStatus::Assigned);
            assert_eq!(store.open_load("ann").await.unwrap(), 1);
            // Closed again, then the same reply re-read (a reset): not a new reply, no reopen.
            store.set_case_status(n, CaseStatus::Closed).await.unwrap();
            store
                .reset_account(
                    "support",
                    chrono::NaiveDate::from_ymd_opt(2000, 1, 1).unwrap(),
                )
                .await
                .unwrap();
            c.receive(&[]).await;
            assert_eq!(
                store.get_case(n).await.unwrap().unwrap().status,
                CaseStatus::Closed
            );
            // An auto-reply on the thread does not reopen either.
            c.receive(&[mail(Mail {
                id: "ro3@x.example",
                from: "c@x.example",
                subject: "Auto: Re: issue",
                refs: &["ro@x.example"],
                extra: "Auto-Submitted: auto-replied\r\n",
            })])
            .await;
            assert_eq!(
                store.get_case(n).await.unwrap().unwrap().status,
                CaseStatus::Closed
            );
        } else {
            assert_eq!(case.status, CaseStatus::Closed);
            assert_eq!(store.open_load("ann").await.unwrap(), 0);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_events_are_emitted_with_deterministic_ids() {
    let c = case_env("events", &["ann"], rr("l1")).await;
    deliver(&c.mb, &[simple("ev@x.example", "c@x.example", "issue")]).await;
    // The events stay on the queue when the cycle stops after ingest.
    cycle::run_without_dispatch(&c.env.ctx, Selection::Named(vec!["support".into()]))
        .await
        .unwrap();
    let q = &c.env.ctx.adapters().dispatch_queue;
    let mut events = vec![];
    for _ in 0..5 {
        let batch = q.receive(10, 0).await.unwrap();
        if batch.is_empty() {
            break;
        }
        events.extend(batch.into_iter().map(|m| {
            serde_json::from_str::<mailroom_core::messages::DispatchEvent>(&m.body).unwrap()
        }));
    }
    let n = c.cases().await[0].number;
    assert!(events
        .iter()
        .any(|e| e.id == format!("case.created:{n}") && e.assigned_user.as_deref() == Some("ann")));
    assert!(events
        .iter()
        .any(|e| e.kind == mailroom_core::messages::EventKind::EmailLinked && e.case == Some(n)));
}
