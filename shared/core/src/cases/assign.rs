//! Assignment (R-C3) as pure functions: who is eligible, and who gets the next case. The
//! service reads the state these depend on and claims the choice conditionally on it.

use std::collections::HashMap;

use crate::model::{CaseSettings, Distribution};
use crate::records::User;

/// Picks the assignee among eligible members (already in round-robin order). Returns the
/// member and the new counter value, or `None` when nobody is eligible.
pub fn choose(
    distribution: Distribution,
    eligible: &[String],
    counter: u64,
    loads: &HashMap<String, u64>,
) -> Option<(String, u64)> {
    if eligible.is_empty() {
        return None;
    }
    let n = eligible.len() as u64;
    match distribution {
        Distribution::Direct => None,
        Distribution::RoundRobin => Some((eligible[(counter % n) as usize].clone(), counter + 1)),
        Distribution::LeastBusy => {
            // Fewest open cases; ties go to the first in round-robin order from the counter.
            let start = counter % n;
            let best = (0..n)
                .map(|i| ((start + i) % n) as usize)
                .min_by_key(|&i| {
                    (
                        loads.get(&eligible[i]).copied().unwrap_or(0),
                        (i as u64 + n - start) % n,
                    )
                })?;
            Some((eligible[best].clone(), best as u64 + 1))
        }
    }
}

/// What assignment decided, and the state the decision rests on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Assign to `user`; for round-robin and least-busy the counter moves to `next`.
    Assign { user: String, next: Option<u64> },
    /// Nobody can be assigned; the case is created unassigned and the reason recorded.
    Unassigned(String),
    /// Round-robin or least-busy: the choice needs the counter (and loads) of these members.
    NeedsState { eligible: Vec<String> },
}

/// Active members of `team` (holding `position` when one is asked for), in round-robin order,
/// each once: a user listed twice (stored before memberships were a set, or read twice) would
/// otherwise get a double round-robin share.
pub fn eligible(members: &[User], team: &str, position: Option<&str>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    members
        .iter()
        .filter(|u| u.active)
        .filter(|u| match (position, u.position_in(team)) {
            (None, Some(_)) => true,
            (Some(p), Some(Some(mine))) => mine.eq_ignore_ascii_case(p),
            _ => false,
        })
        .filter(|u| seen.insert(u.name.as_str()))
        .map(|u| u.name.clone())
        .collect()
}

/// The first step of assignment, before any counter is read: direct assignment and the
/// "nobody eligible" cases are decided from settings and members alone.
pub fn plan(settings: &CaseSettings, members: &[User]) -> Decision {
    let Some(team) = &settings.target_team else {
        return Decision::Unassigned("no target team configured".into());
    };
    if settings.distribution == Distribution::Direct {
        return match &settings.assign_to {
            Some(u) if members.iter().any(|m| &m.name == u && m.active) => Decision::Assign {
                user: u.clone(),
                next: None,
            },
            Some(u) => Decision::Unassigned(format!(
                "direct assignee {u:?} is not an active member of team {team:?}"
            )),
            None => Decision::Unassigned("direct distribution without --assign-to".into()),
        };
    }
    let eligible = eligible(members, team, settings.position.as_deref());
    if eligible.is_empty() {
        return Decision::Unassigned(format!(
            "team {team:?} has no active member{} to assign to",
            settings
                .position
                .as_ref()
                .map(|p| format!(" with position {p:?}"))
                .unwrap_or_default()
        ));
    }
    Decision::NeedsState { eligible }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_robin_cycles_in_member_order() {
        let m: Vec<String> = ["ann", "bob", "cid"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let picks: Vec<String> = (0..6)
            .map(|c| {
                choose(Distribution::RoundRobin, &m, c, &HashMap::new())
                    .unwrap()
                    .0
            })
            .collect();
        assert_eq!(picks, ["ann", "bob", "cid", "ann", "bob", "cid"]);
        assert_eq!(
            choose(Distribution::RoundRobin, &[], 0, &HashMap::new()),
            None
        );
    }

    #[test]
    fn a_member_listed_twice_is_eligible_once() {
        let user = |name: &str, teams: &[(&str, Option<&str>)]| User {
            v: 1,
            name: name.into(),
            emails: vec![],
            teams: teams
                .iter()
                .map(|(t, p)| crate::records::TeamMembership {
                    team: t.to_string(),
                    position: p.map(str::to_string),
                })
                .collect(),
            active: true,
            created_at: chrono::Utc::now(),
            admin: false,
            notify_email: false,
            role: None,
        };
        let x = user("x", &[("t", None), ("t", Some("L1"))]);
        let y = user("y", &[("t", None)]);
        // As stored (the team twice) and as read twice (once per membership).
        let members = [x.clone(), x, y];
        assert_eq!(eligible(&members, "t", None), ["x", "y"]);
        assert_eq!(eligible(&members, "t", Some("l1")), ["x"]);
        let picks: Vec<String> = (0..6)
            .map(|c| {
                let e = eligible(&members, "t", None);
                choose(Distribution::RoundRobin, &e, c, &HashMap::new())
                    .unwrap()
                    .0
            })
            .collect();
        assert_eq!(picks.iter().filter(|p| *p == "x").count(), 3);
    }

    #[test]
    fn least_busy_takes_the_fewest_open_cases_ties_in_turn() {
        let m: Vec<String> = ["ann", "bob", "cid"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let loads: HashMap<String, u64> =
            [("ann".into(), 3), ("bob".into(), 1), ("cid".into(), 1)].into();
        assert_eq!(
            choose(Distribution::LeastBusy, &m, 0, &loads).unwrap().0,
            "bob"
        );
        assert_eq!(
            choose(Distribution::LeastBusy, &m, 2, &loads).unwrap().0,
            "cid"
        );
        let even = HashMap::new();
        assert_eq!(
            choose(Distribution::LeastBusy, &m, 1, &even).unwrap().0,
            "bob"
        );
    }
}
