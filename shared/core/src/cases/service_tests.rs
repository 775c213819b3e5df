//! Tests of [`super::LinkService`] on the fakes beyond the rule specs: team sizes and
//! membership.

use super::*;
use crate::memory::{test_account, MemoryCrm, MemoryQueue};
use crate::records::TeamMembership;

fn email(id: &str) -> EmailRecord {
    serde_json::from_value(serde_json::json!({
        "email_id": id, "message_id": format!("{id}@x.example"), "synthetic_id": false,
        "auto_submitted": false, "list": false, "bounce": false, "size": 1,
        "attachments_skipped": false, "raw_key": "k", "received_at": "2026-03-03T10:00:00Z",
        "from": {"address": "c@acme.example"}, "subject": id
    }))
    .unwrap()
}

fn user(i: usize, teams: &[&str]) -> User {
    User {
        v: 1,
        name: format!("u{i:04}"),
        emails: vec![],
        teams: teams
            .iter()
            .map(|t| TeamMembership {
                team: t.to_string(),
                position: None,
            })
            .collect(),
        active: true,
        created_at: DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::seconds(i as i64),
        admin: false,
        notify_email: false,
        role: None,
    }
}

/// Least-busy over 1,000 members: the fake refuses a claim over DynamoDB's 100 items, as
/// AWS would, so this fails if the claim conditions on every member's count.
#[tokio::test]
async fn least_busy_over_a_thousand_members_assigns_and_counts_stay_exact() {
    let crm = MemoryCrm::default();
    for i in 0..1000 {
        crm.add_user(user(i, &["big"])).unwrap();
        crm.set_load(&format!("u{i:04}"), if i == 700 { 0 } else { 1 });
    }
    let events = MemoryQueue::default();
    let mut account = test_account("support", Utc::now());
    account.case = Some(CaseSettings {
        create_case: true,
        distribution: Distribution::LeastBusy,
        assign_to: None,
        target_team: Some("big".into()),
        position: None,
        reopen_on_reply: false,
    });
    let linker = LinkService {
        crm: &crm,
        events: &events,
        our_addresses: &[],
        cache: LinkCache::with_users(&crm.users()),
    };
    for (id, want) in [("e1", "u0700"), ("e2", "u0701")] {
        crm.add_email(id);
        let out = linker
            .link(&email(id), &account, Utc::now(), true)
            .await
            .unwrap();
        assert_eq!(out.assigned_user.as_deref(), Some(want), "{id}");
    }
    let st = crm.state();
    assert_eq!((st.loads["u0700"], st.loads["u0701"]), (1, 2));
    assert_eq!(
        st.counters["loads#big"], 2,
        "each assignment moved the version"
    );
}

#[test]
fn a_team_listed_twice_seeds_one_member() {
    let mut doubled = user(1, &["t", "t", "s"]);
    doubled.teams[1].position = Some("L1".into());
    let cache = LinkCache::with_users(&[doubled, user(2, &["t"])]);
    let members = cache.members.try_lock().unwrap();
    let names: Vec<&str> = members["t"].iter().map(|u| u.name.as_str()).collect();
    assert_eq!(names, ["u0001", "u0002"]);
    assert_eq!(members["s"].len(), 1);
}
