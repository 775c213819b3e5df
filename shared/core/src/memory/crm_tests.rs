//! Tests of [`super::MemoryCrm`] against the claim semantics of the DynamoDB adapter.

use super::*;
use serde_json::{from_value, json};

const AT: &str = "2026-03-03T10:00:00Z";

fn cn(n: u64) -> CaseNumber {
    CaseNumber::new(n).unwrap()
}

fn case(number: u64, thread: &str, user: Option<&str>) -> Case {
    let status = if user.is_some() { "Assigned" } else { "New" };
    from_value(
        json!({"number": number, "name": "printer", "status": status,
        "assigned_user": user, "teams": ["support"], "mail_account": "support",
        "thread_key": thread, "participants": ["c@x.example", "a@x.example"],
        "created_at": AT}),
    )
    .unwrap()
}

fn link(email: &str, thread: &str, parent: Option<RecordRef>) -> EmailLink {
    EmailLink {
        email_id: email.into(),
        message_id: format!("{email}@x.example"),
        parent,
        thread_key: thread.into(),
        subject: Some("hello".into()),
        at: AT.parse().unwrap(),
        participants: vec!["b@x.example".into()],
        teams: vec!["support".into()],
        ours: false,
    }
}

async fn claim(crm: &MemoryCrm, c: &Case, g: Option<AssignmentGuard>, l: &EmailLink) -> Claim {
    crm.claim_case(c, g.as_ref(), l).await.unwrap()
}

/// A round-robin guard; with `least_busy`, the support team's version and the chosen
/// member's count as read.
fn guard(expected: u64, least_busy: Option<(u64, u64)>) -> AssignmentGuard {
    AssignmentGuard {
        counter: Some(crate::ports::CounterStep {
            key: "rr#support".into(),
            expected,
            new: expected + 1,
        }),
        least_busy: least_busy.map(|(version, load)| crate::ports::LeastBusyRead {
            team: "support".into(),
            version,
            load,
        }),
        assignee_teams: vec!["support".into(), "sales".into()],
    }
}

#[tokio::test]
async fn a_claim_creates_everything_once_then_the_thread_is_taken() {
    let crm = MemoryCrm::default();
    crm.add_email("e1");
    crm.add_email("e2");
    let l1 = link("e1", "root", Some(RecordRef::case(1)));
    let g = guard(0, Some((0, 0)));
    let c1 = case(1, "root", Some("ann"));
    assert_eq!(claim(&crm, &c1, Some(g), &l1).await, Claim::Created);
    let st = crm.state();
    assert_eq!(
        st.cases[&cn(1)].participants,
        ["a@x.example", "c@x.example"]
    );
    assert_eq!(st.threads["root"].email_id, "e1");
    assert_eq!((st.counters["rr#support"], st.loads["ann"]), (1, 1));
    // The assignee's count moved: so did the load version of each of her teams.
    assert_eq!(
        (st.counters["loads#support"], st.counters["loads#sales"]),
        (1, 1)
    );
    assert_eq!(
        (st.emails["e1"].case, &st.emails["e1"].teams[..]),
        (Some(cn(1)), &["support".to_string()][..])
    );
    assert_eq!(st.messages["e1@x.example"].thread_key, "root");
    let stream = crm.stream(&RecordRef::case(1));
    let kinds: Vec<&str> = stream.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["case_created", "email_received"]);

    // Another email of the thread, with a fresh number and a guard that holds: taken.
    let l2 = link("e2", "root", Some(RecordRef::case(2)));
    let before = crm.state();
    let taken = claim(
        &crm,
        &case(2, "root", Some("bob")),
        Some(guard(1, None)),
        &l2,
    )
    .await;
    let holder = ThreadClaim {
        case: cn(1),
        email_id: "e1".into(),
    };
    assert_eq!(taken, Claim::ThreadTaken(holder));
    assert_eq!(crm.state(), before, "a refused claim writes nothing");
}

#[tokio::test]
async fn a_moved_counter_or_load_is_moved_and_writes_nothing() {
    let crm = MemoryCrm::default();
    crm.add_email("e1");
    crm.set_counter("rr#support", 3);
    let c = case(1, "root", Some("ann"));
    let l = link("e1", "root", Some(RecordRef::case(1)));
    let before = crm.state();
    assert_eq!(
        claim(&crm, &c, Some(guard(2, None)), &l).await,
        Claim::Moved
    );
    assert_eq!(crm.state(), before);

    // Least-busy read the team's version at 0; another member's count moved since.
    crm.set_counter("loads#support", 1);
    let before = crm.state();
    let g = guard(3, Some((0, 0)));
    assert_eq!(claim(&crm, &c, Some(g), &l).await, Claim::Moved);
    assert_eq!(crm.state(), before);
    // The version holds but the chosen member's own count moved (a second guard).
    crm.set_load("ann", 2);
    let g = guard(3, Some((1, 0)));
    assert_eq!(claim(&crm, &c, Some(g), &l).await, Claim::Moved);
    crm.set_load("ann", 0);
    let before = crm.state();

    // An email ingest never stored cancels the claim too; then the claim holds.
    let g = guard(3, Some((1, 0)));
    let orphan = link("e9", "other", Some(RecordRef::case(1)));
    assert_eq!(
        claim(&crm, &c, Some(g.clone()), &orphan).await,
        Claim::Moved
    );
    assert_eq!(crm.state(), before);
    assert_eq!(claim(&crm, &c, Some(g), &l).await, Claim::Created);
    // A case number already used, on another thread: refused, never overwritten.
    assert_eq!(
        claim(&crm, &case(1, "root2", None), None, &l).await,
        Claim::Moved
    );
    assert_eq!(crm.state().counters["rr#support"], 4);
}

#[tokio::test]
async fn status_changes_move_the_versions_and_an_oversized_claim_is_refused() {
    let crm = MemoryCrm::default();
    let ann = json!({"name": "ann", "teams": [{"team": "support"}, {"team": "sales"},
        {"team": "support", "position": "L1"}], "active": true, "created_at": AT});
    crm.add_user(from_value(ann).unwrap()).unwrap();
    assert_eq!(crm.state().users["ann"].teams.len(), 2, "stored as a set");
    crm.add_case(case(5, "root", Some("ann")), "e0").unwrap();
    let v = |st: &CrmState, t: &str| st.counters[&format!("loads#{t}")];
    let st = crm.state();
    assert_eq!((v(&st, "support"), v(&st, "sales")), (1, 1));
    crm.set_case_status(cn(5), CaseStatus::Pending).unwrap();
    assert_eq!(v(&crm.state(), "support"), 1, "still open: no count moved");
    crm.set_case_status(cn(5), CaseStatus::Closed).unwrap();
    let st = crm.state();
    assert_eq!(
        (v(&st, "support"), v(&st, "sales"), st.loads["ann"]),
        (2, 2, 0)
    );

    // An assignee in 100 teams would need more than DynamoDB's 100 items: refused whole.
    crm.add_email("e1");
    let mut g = guard(0, None);
    g.assignee_teams = (0..100).map(|i| format!("t{i}")).collect();
    let before = crm.state();
    let l = link("e1", "other", Some(RecordRef::case(6)));
    let c6 = case(6, "other", Some("ann"));
    let refused = crm.claim_case(&c6, Some(&g), &l).await;
    let e = refused.expect_err("over the limit");
    assert_eq!(e.class(), crate::error::ErrorClass::Permanent);
    let why = std::error::Error::source(&e).map(|s| s.to_string());
    assert!(
        why.is_some_and(|w| w.contains("DynamoDB allows 100")),
        "{e:?}"
    );
    assert_eq!(crm.state(), before);
}

#[tokio::test]
async fn case_numbers_are_atomic_and_never_reused() {
    let crm = MemoryCrm::default();
    let all = futures::future::join_all((0..50).map(|_| crm.next_case_number())).await;
    let mut numbers: Vec<u64> = all.into_iter().map(|n| n.unwrap().get()).collect();
    numbers.sort();
    assert_eq!(numbers, (1..=50).collect::<Vec<_>>());
    assert_eq!(crm.counter("case").await.unwrap(), 50);
    crm.add_case(case(70, "seeded", None), "s").unwrap();
    assert_eq!(crm.next_case_number().await.unwrap(), 71);
}

#[tokio::test]
async fn join_adds_participants_and_stream_and_reopens_when_asked() {
    let crm = MemoryCrm::default();
    crm.add_case(case(5, "root", Some("ann")), "e0").unwrap();
    crm.add_email("e1");
    let l = link("e1", "root", Some(RecordRef::case(5)));
    crm.join_case(cn(5), &l, false).await.unwrap();
    crm.join_case(cn(5), &l, false).await.unwrap(); // a redelivery: no second effect
    let st = crm.state();
    let p = ["a@x.example", "b@x.example", "c@x.example"];
    assert_eq!(st.cases[&cn(5)].participants, p);
    assert_eq!(crm.stream(&RecordRef::case(5)).len(), 1);
    assert_eq!(st.emails["e1"].parent, Some(RecordRef::case(5)));

    crm.set_case_status(cn(5), CaseStatus::Closed).unwrap();
    assert_eq!(crm.state().loads["ann"], 0);
    crm.join_case(cn(5), &l, false).await.unwrap();
    assert_eq!(crm.state().cases[&cn(5)].status, CaseStatus::Closed);
    crm.join_case(cn(5), &l, true).await.unwrap();
    assert_eq!(crm.state().cases[&cn(5)].status, CaseStatus::Assigned);
    assert_eq!(crm.state().loads["ann"], 1);

    // A case that does not exist refuses the participants, and the link with them.
    crm.add_email("e2");
    let before = crm.state();
    let l2 = link("e2", "root", Some(RecordRef::case(9)));
    assert!(crm.join_case(cn(9), &l2, false).await.is_err());
    assert_eq!(crm.state(), before);
}

#[tokio::test]
async fn link_writes_need_the_stored_email_unless_there_is_nothing_to_set() {
    let crm = MemoryCrm::default();
    let mut l = link(
        "e1",
        "root",
        Some(RecordRef::new(RecordKind::Account, "Acme")),
    );
    assert!(matches!(
        crm.link_email(&l).await,
        Err(StoreError::AlreadyExists(_))
    ));
    assert_eq!(crm.state(), CrmState::default());
    (l.parent, l.teams) = (None, vec![]);
    crm.link_email(&l).await.unwrap();
    assert_eq!(
        crm.messages(&["e1@x.example".into()]).await.unwrap().len(),
        1
    );
    crm.add_email("e1");
    l.parent = Some(RecordRef::new(RecordKind::Account, "Acme"));
    crm.link_email(&l).await.unwrap();
    assert_eq!(crm.state().emails["e1"].case, None);
    assert_eq!(crm.stream(&l.parent.clone().unwrap())[0].case, None);
}

#[tokio::test]
async fn lookups_by_address_lead_and_team() {
    let crm = MemoryCrm::default();
    let ann = json!({"name": "Ann", "email": "Ann@Acme.example", "account": "Acme"});
    crm.add_contact(from_value(ann).unwrap()).unwrap();
    let acme: CrmAccount =
        from_value(json!({"name": "Acme", "emails": ["ann@acme.example"]})).unwrap();
    crm.add_account(acme.clone()).unwrap();
    assert!(crm.add_account(acme).is_err());
    for (name, at) in [
        ("bob", "2026-01-02T00:00:00Z"),
        ("ann", "2026-01-03T00:00:00Z"),
    ] {
        let u = json!({"name": name, "emails": [format!("{name}@corp.example")],
            "teams": [{"team": "support"}], "active": true, "created_at": at});
        crm.add_user(from_value(u).unwrap()).unwrap();
    }
    let lee = json!({"name": "Lee", "email": "lee@x.example",
        "converted_contact": "ann@acme.example", "converted_account": "Acme"});
    crm.add_lead(from_value(lee).unwrap()).unwrap();

    let found = crm.records_by_address("ANN@acme.example").await.unwrap();
    let kinds: Vec<_> = found.iter().map(|r| r.record.kind).collect();
    assert_eq!(kinds, [RecordKind::Account, RecordKind::Contact]);
    assert_eq!(found[1].account.as_deref(), Some("Acme"));
    assert!(crm
        .records_by_address("bob@corp.example")
        .await
        .unwrap()
        .is_empty());
    let acct = crm.contact_account("ann@acme.example").await.unwrap();
    assert_eq!(acct.as_deref(), Some("Acme"));
    assert_eq!(
        crm.lead_target("lee@x.example").await.unwrap(),
        Some(RecordRef::new(RecordKind::Contact, "ann@acme.example"))
    );
    let names: Vec<String> = crm
        .team_members("support")
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.name)
        .collect();
    assert_eq!(names, ["bob", "ann"]);
    crm.set_load("ann", -1);
    let loads = crm.open_loads(&["ann".into(), "bob".into()]).await.unwrap();
    assert_eq!(loads, [("ann".to_string(), 0)].into());
}
