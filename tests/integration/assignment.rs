//! Linking and assignment where hostile mail and real team sizes broke them (issue 8), driven
//! as a user would: mail APPENDed over IMAP, `mailroom poll`'s cycle, the stored cases.
//! - R-L2 trusts only From: a stranger's `[#N]` with a participant's address in Reply-To does
//!   not join case N, and a join by tag adds nobody to its participants.
//! - Team membership is a set: a user listed twice in a team gets an equal round-robin share,
//!   also when the stored user predates the set.
//! - Least-busy works at any team size: its claim conditions on the team's load version and
//!   the chosen member's count, not on every member's (DynamoDB allows 100 items a transaction).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use mailroom_core::keys::{team_loads_sk, CONFIG_PK, MEMBER_INDEX_SK, USERS_PK};
use mailroom_core::model::{CaseSettings, Distribution};
use mailroom_core::ports::Crm;
use mailroom_core::records::{CaseStatus, RecordRef, TeamMembership, User};

use crate::cases::{case_env, mail, rr, simple, CaseEnv, Mail};
use crate::harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stranger_cannot_join_a_case_through_a_participants_reply_to() {
    let c = case_env("hijack", &["ann"], rr("l1")).await;
    // Carol (no record) opens the case: she is on its thread, a participant.
    c.receive(&[simple(
        "h0@partner.example",
        "carol@partner.example",
        "invoice",
    )])
    .await;
    let case = c.cases().await.remove(0);
    let n = case.number;
    assert!(case.participants.contains(&"carol@partner.example".into()));
    let before = case.participants.clone();
    let subject = format!("Re: [#{n}] invoice");
    let totals = c
        .receive(&[
            // Mallory names the case and puts Carol in Reply-To, with her own From and with
            // a no-reply From: Reply-To proves no participation either way.
            mail(Mail {
                id: "h1@evil.example",
                from: "Mallory <mallory@evil.example>",
                subject: &subject,
                refs: &[],
                extra: "Reply-To: carol@partner.example\r\n",
            }),
            mail(Mail {
                id: "h2@evil.example",
                from: "no-reply@evil.example",
                subject: &subject,
                refs: &[],
                extra: "Reply-To: carol@partner.example\r\n",
            }),
            // Carol herself joins by the tag; the stranger she copies is not added.
            mail(Mail {
                id: "h3@partner.example",
                from: "carol@partner.example",
                subject: &subject,
                refs: &[],
                extra: "Cc: dave@elsewhere.example\r\nReply-To: mallory@evil.example\r\n",
            }),
        ])
        .await;
    let t = totals_for(&totals, "support");
    assert_eq!((t.imported, t.errors), (3, 0), "{t:?}");
    for id in ["h1@evil.example", "h2@evil.example"] {
        let e = c.email(id).await;
        assert_ne!(e.case, Some(n), "{id} joined case {n} through Reply-To");
        assert_ne!(e.parent, Some(RecordRef::case(n.get())), "{id}");
    }
    assert_eq!(c.email("h3@partner.example").await.case, Some(n));
    let store = &c.env.ctx.adapters().store;
    let after = store.get_case(n).await.unwrap().unwrap();
    assert_eq!(after.participants, before, "a join by tag adds nobody");
    let stream = store.stream(&RecordRef::case(n.get())).await.unwrap();
    let ids: Vec<_> = stream.iter().filter_map(|e| e.message_id.clone()).collect();
    assert!(!ids.iter().any(|i| i.ends_with("@evil.example")), "{ids:?}");
}

/// A group account `support` on team `l1` with users added through the CLI's `users add`
/// (`teams` as its `--team` values), in this order.
async fn team_env(tag: &str, users: &[(&str, &[&str])], settings: CaseSettings) -> CaseEnv {
    let env = env(tag).await;
    let mb = mailbox(tag);
    let store = &env.ctx.adapters().store;
    store.add_team("l1").await.unwrap();
    for (name, teams) in users {
        let teams: Vec<String> = teams.iter().map(|t| t.to_string()).collect();
        mailroom::records::add_user(&env.ctx, name, &[], &teams, true)
            .await
            .unwrap();
    }
    env.add_account("support", &mb).await;
    store.set_case_settings("support", &settings).await.unwrap();
    CaseEnv { env, mb }
}

async fn shares(c: &CaseEnv) -> HashMap<String, usize> {
    let mut out = HashMap::new();
    for k in c.cases().await {
        *out.entry(k.assigned_user.unwrap_or_default()).or_default() += 1;
    }
    out
}

fn threads(tag: &str, n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            simple(
                &format!("{tag}-{i}@x.example"),
                "c@x.example",
                &format!("issue {i}"),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_listed_twice_in_a_team_gets_an_equal_round_robin_share() {
    // `mailroom users add amy --team l1 --team l1:L1`, then `users add bob --team l1`.
    let c = team_env(
        "twice",
        &[("amy", &["l1", "l1:L1"]), ("bob", &["l1"])],
        rr("l1"),
    )
    .await;
    let store = &c.env.ctx.adapters().store;
    let amy = store.get_user("amy").await.unwrap().unwrap();
    let l1 = TeamMembership {
        team: "l1".into(),
        position: Some("L1".into()),
    };
    assert_eq!(
        amy.teams,
        [l1],
        "one membership, the explicit position kept"
    );
    c.receive(&threads("twice", 6)).await;
    let got = shares(&c).await;
    assert_eq!((got["amy"], got["bob"]), (3, 3), "{got:?}");

    // A user stored before memberships were a set (the team twice, written directly) still
    // counts once where members are read.
    let old = User {
        v: 1,
        name: "cid".into(),
        emails: vec![],
        teams: vec![
            TeamMembership {
                team: "l1".into(),
                position: None,
            },
            TeamMembership {
                team: "l1".into(),
                position: None,
            },
        ],
        active: true,
        created_at: chrono::Utc::now(),
        admin: false,
        notify_email: false,
        role: None,
    };
    store
        .client()
        .put_item()
        .table_name(store.table())
        .set_item(Some(mailroom_aws::dynamo::item::to_item(
            &old,
            &[("pk", USERS_PK), ("sk", "cid")],
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(store.get_user("cid").await.unwrap().unwrap().teams.len(), 2);
    // Such a user reaches its teams' member entries when the table is upgraded: the marker
    // is gone on a table from before them, so the CLI's connect indexes every user.
    store
        .client()
        .delete_item()
        .table_name(store.table())
        .key("pk", AttributeValue::S(CONFIG_PK.into()))
        .key("sk", AttributeValue::S(MEMBER_INDEX_SK.into()))
        .send()
        .await
        .unwrap();
    store.ensure_member_index().await.unwrap();
    c.receive(&threads("twice-more", 3)).await;
    let got = shares(&c).await;
    assert_eq!(
        (got["amy"], got["bob"], got["cid"]),
        (4, 4, 1),
        "one turn each: {got:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn least_busy_over_a_team_of_120_assigns_and_keeps_the_counts_exact() {
    let names: Vec<String> = (0..120).map(|i| format!("m{i:03}")).collect();
    let users: Vec<(&str, &[&str])> = names.iter().map(|n| (n.as_str(), &["l1"][..])).collect();
    let mut s = rr("l1");
    s.distribution = Distribution::LeastBusy;
    let c = team_env("lb120", &users, s).await;
    let store = &c.env.ctx.adapters().store;
    // One thread per poll, so each choice sees the last one's count.
    let mut chosen = Vec::new();
    for (i, raw) in threads("lb120", 3).into_iter().enumerate() {
        let totals = c.receive(&[raw]).await;
        let t = totals_for(&totals, "support");
        assert_eq!((t.imported, t.errors), (1, 0), "{t:?}");
        let cases = c.cases().await;
        assert_eq!(cases.len(), i + 1, "a case per thread");
        let who = cases[i].assigned_user.clone().expect("assigned");
        assert_eq!(store.open_load(&who).await.unwrap(), 1, "{who}");
        chosen.push(who);
    }
    // All at zero, ties go in round-robin order from the counter: three different members.
    assert_eq!(chosen, ["m000", "m001", "m002"]);
    assert_eq!(store.counter(&team_loads_sk("l1")).await.unwrap(), 3);

    // m001 closes his case: the status change moves the team's version with his count, and
    // the next choice (another member at zero) still leaves every count exact.
    let n1 = c.cases().await[1].number;
    store.set_case_status(n1, CaseStatus::Closed).await.unwrap();
    assert_eq!(store.open_load("m001").await.unwrap(), 0);
    assert_eq!(store.counter(&team_loads_sk("l1")).await.unwrap(), 4);
    c.receive(&threads("lb120-next", 1)).await;
    let last = c.cases().await.pop().unwrap();
    let who = last.assigned_user.expect("assigned");
    assert_eq!(store.open_load(&who).await.unwrap(), 1, "{who}");
    let total: u64 = {
        let mut sum = 0;
        for n in &names {
            sum += store.open_load(n).await.unwrap();
        }
        sum
    };
    assert_eq!(total, 3, "four cases, one closed: three open");
}
