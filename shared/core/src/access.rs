//! Who may read what (R-P4). The API's checks and dispatch's notifications ask the same
//! questions here, so a notification never points a user at mail they may not open.

use crate::model::{Account, AccountKind, EmailRecord};
use crate::records::{Case, User};

/// Whether `user` may read `email`, which came through `account` (and is on `case`, if any).
/// Records are readable by every active user, so for group mail a reader of its parent is
/// anyone active. Personal mail is never readable through its parent record: only its owner
/// and, once it joins a case, that case's teams read it. Admins read group mail, not others'
/// personal mail.
pub fn may_read(user: &User, email: &EmailRecord, account: &Account, case: Option<&Case>) -> bool {
    if !user.active {
        return false;
    }
    let in_teams = |teams: &[String]| user.teams.iter().any(|m| teams.contains(&m.team));
    if in_teams(&email.teams) || case.is_some_and(|c| in_teams(&c.teams)) {
        return true;
    }
    match account.kind {
        AccountKind::Personal => account.owner.as_deref() == Some(user.name.as_str()),
        AccountKind::Group => user.admin || email.parent.is_some(),
    }
}
