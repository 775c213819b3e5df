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

/// What a role lets its users do with group accounts (R-S2), as EspoCRM names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupAccountPermission {
    /// Never send from a group account.
    #[default]
    No,
    /// Send from the group accounts of the user's teams.
    Team,
    /// Send from every group account.
    All,
}

impl std::str::FromStr for GroupAccountPermission {
    type Err = crate::error::Invalid;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "no" => Ok(Self::No),
            "team" => Ok(Self::Team),
            "all" => Ok(Self::All),
            _ => Err(crate::error::Invalid::value(format!(
                "{s:?}: the group account permission is no, team or all"
            ))),
        }
    }
}

impl GroupAccountPermission {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::No => "no",
            Self::Team => "team",
            Self::All => "all",
        }
    }
}

/// A named set of permissions users are given (`users add --role`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Role {
    #[serde(default = "crate::default_version")]
    pub v: u32,
    pub name: String,
    #[serde(default)]
    pub group_account_permission: GroupAccountPermission,
}

/// The authenticated user an API call acts for, with the role their permissions come from
/// (`None` when they have none, or it was removed: no group-account sending).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub user: User,
    pub role: Option<Role>,
}

impl Caller {
    pub fn new(user: User, role: Option<Role>) -> Self {
        Caller { user, role }
    }

    pub fn name(&self) -> &str {
        &self.user.name
    }

    /// Active admins manage everything (R-P1); an inactive user is nobody.
    pub fn is_admin(&self) -> bool {
        self.user.active && self.user.admin
    }

    fn permission(&self) -> GroupAccountPermission {
        self.role
            .as_ref()
            .map(|r| r.group_account_permission)
            .unwrap_or_default()
    }

    fn shares_team(&self, teams: &[String]) -> bool {
        self.user.teams.iter().any(|m| teams.contains(&m.team))
    }

    fn owns(&self, account: &Account) -> bool {
        account.kind == AccountKind::Personal
            && account.owner.as_deref() == Some(self.user.name.as_str())
    }

    /// R-S2: admins always; `all`; `team` when the user shares a team with the account. A
    /// personal account sends only for its owner.
    pub fn may_send_from(&self, account: &Account) -> bool {
        if !self.user.active {
            return false;
        }
        match account.kind {
            AccountKind::Personal => self.owns(account),
            AccountKind::Group => {
                self.user.admin
                    || match self.permission() {
                        GroupAccountPermission::All => true,
                        GroupAccountPermission::Team => self.shares_team(&account.teams),
                        GroupAccountPermission::No => false,
                    }
            }
        }
    }

    /// Whether the account is listed to the caller: admins see every account (they manage
    /// personal ones too, R-P2, without reading their mail); others see the group accounts
    /// they may send from or whose teams they are in, and their own.
    pub fn may_see_account(&self, account: &Account) -> bool {
        if !self.user.active {
            return false;
        }
        self.user.admin
            || self.owns(account)
            || (account.kind == AccountKind::Group
                && (self.may_send_from(account) || self.shares_team(&account.teams)))
    }

    /// R-P1/R-P2: group accounts are the admins'; a personal account its owner's and the
    /// admins'.
    pub fn may_manage_account(&self, account: &Account) -> bool {
        self.is_admin() || (self.user.active && self.owns(account))
    }

    /// Whether the caller may create a personal account for `owner` (R-P2).
    pub fn may_manage_user_accounts(&self, owner: &str) -> bool {
        self.is_admin() || (self.user.active && self.user.name == owner)
    }

    /// R-X3: global and group-account filters are the admins'; a personal account's filters
    /// its owner's; a user's inbox filters that user's; admins manage anyone's. `account` is
    /// the account an `Account` scope names (`None` when it does not exist: admins only).
    pub fn may_manage_filter(
        &self,
        scope: &crate::filters::Scope,
        account: Option<&Account>,
    ) -> bool {
        use crate::filters::Scope;
        if self.is_admin() {
            return true;
        }
        if !self.user.active {
            return false;
        }
        match scope {
            Scope::Global => false,
            Scope::Account(_) => account.is_some_and(|a| self.owns(a)),
            Scope::User(u) => *u == self.user.name,
        }
    }

    /// R-P1: group accounts, teams, roles and users are the admins' to create and change.
    pub fn may_manage_directory(&self) -> bool {
        self.is_admin()
    }

    /// Users and teams are listed to every active user: they pick assignees and followers
    /// from them. Roles (who may send from what) only to admins.
    pub fn may_read_directory(&self) -> bool {
        self.user.active
    }

    pub fn may_read_roles(&self) -> bool {
        self.is_admin()
    }

    /// R-F9: account status, fetch-position resets, quarantine and dead-letter replays are
    /// the operators' (admins'): a replay imports mail into every account's users.
    pub fn may_operate(&self) -> bool {
        self.is_admin()
    }

    /// R-P4 for this caller.
    pub fn may_read(&self, email: &EmailRecord, account: &Account, case: Option<&Case>) -> bool {
        may_read(&self.user, email, account, case)
    }

    /// R-P4 over every account the email came through (those that still exist): one that lets
    /// the caller read it is enough, so mail a group account and a personal one both received
    /// is group mail to the group's readers, and still nobody else's personal mail.
    pub fn may_read_via<'a>(
        &self,
        email: &EmailRecord,
        accounts: impl IntoIterator<Item = &'a Account>,
        case: Option<&Case>,
    ) -> bool {
        accounts
            .into_iter()
            .any(|a| email.accounts.contains(&a.name) && self.may_read(email, a, case))
    }

    /// R-P4 for mail Mailroom sent (a stream's `email_sent` entry) from `account`: as for mail
    /// received there. What a group account sends is filed under a record (readers of it are
    /// every active user); what a personal account sends is its owner's, or its case's teams'.
    pub fn may_read_sent(&self, account: &Account, case: Option<&Case>) -> bool {
        if !self.user.active {
            return false;
        }
        if case.is_some_and(|c| self.shares_team(&c.teams)) {
            return true;
        }
        match account.kind {
            AccountKind::Personal => self.owns(account),
            AccountKind::Group => true,
        }
    }

    /// Who may change a case's status or assignee: admins, users in one of the case's teams,
    /// and its current assignee (who may hand it on or close it).
    pub fn may_update_case(&self, case: &Case) -> bool {
        if !self.user.active {
            return false;
        }
        self.user.admin
            || self.shares_team(&case.teams)
            || case.assigned_user.as_deref() == Some(self.user.name.as_str())
    }

    /// Following a record: users follow and unfollow for themselves; admins for anyone.
    pub fn may_manage_follows_of(&self, user: &str) -> bool {
        self.is_admin() || (self.user.active && self.user.name == user)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filters::Scope;
    use crate::records::TeamMembership;

    fn user(name: &str, teams: &[&str], admin: bool) -> User {
        User {
            v: 1,
            name: name.into(),
            emails: vec![],
            teams: teams
                .iter()
                .map(|t| TeamMembership {
                    team: t.to_string(),
                    position: None,
                })
                .collect(),
            active: true,
            created_at: chrono::Utc::now(),
            admin,
            notify_email: false,
            role: None,
        }
    }

    fn role(p: GroupAccountPermission) -> Option<Role> {
        Some(Role {
            v: 1,
            name: p.as_str().into(),
            group_account_permission: p,
        })
    }

    fn account(kind: AccountKind, owner: Option<&str>, teams: &[&str]) -> Account {
        let mut a = crate::memory::builders::test_account("acct", chrono::Utc::now());
        a.kind = kind;
        a.owner = owner.map(str::to_string);
        a.teams = teams.iter().map(|t| t.to_string()).collect();
        a
    }

    #[test]
    fn group_sending_follows_the_role_and_the_team() {
        use GroupAccountPermission::*;
        let group = account(AccountKind::Group, None, &["l1"]);
        let cases = [
            (No, true, false),
            (No, false, false),
            (Team, true, true),
            (Team, false, false),
            (All, true, true),
            (All, false, true),
        ];
        for (p, in_team, allowed) in cases {
            let teams: &[&str] = if in_team { &["l1"] } else { &["other"] };
            let c = Caller::new(user("u", teams, false), role(p));
            assert_eq!(c.may_send_from(&group), allowed, "{p:?} in team {in_team}");
        }
        // No role at all: no; admins always; inactive admins never.
        assert!(!Caller::new(user("u", &["l1"], false), None).may_send_from(&group));
        assert!(Caller::new(user("a", &[], true), None).may_send_from(&group));
        let mut inactive = user("a", &[], true);
        inactive.active = false;
        assert!(!Caller::new(inactive, role(All)).may_send_from(&group));
    }

    #[test]
    fn personal_accounts_are_their_owners() {
        let personal = account(AccountKind::Personal, Some("ann"), &[]);
        let ann = Caller::new(user("ann", &[], false), None);
        let bob = Caller::new(user("bob", &[], false), role(GroupAccountPermission::All));
        let admin = Caller::new(user("root", &[], true), None);
        assert!(ann.may_send_from(&personal) && ann.may_manage_account(&personal));
        assert!(!bob.may_send_from(&personal) && !bob.may_manage_account(&personal));
        assert!(!bob.may_see_account(&personal));
        // Admins manage personal accounts but never send from them.
        assert!(admin.may_manage_account(&personal) && admin.may_see_account(&personal));
        assert!(!admin.may_send_from(&personal));
    }

    fn case(teams: &[&str], assignee: Option<&str>) -> Case {
        serde_json::from_value(serde_json::json!({
            "number": 7, "name": "printer", "status": "Assigned", "assigned_user": assignee,
            "teams": teams, "mail_account": "support", "thread_key": "root",
            "created_at": "2026-03-03T10:00:00Z"}))
        .unwrap()
    }

    #[test]
    fn cases_are_changed_by_admins_their_teams_and_their_assignee() {
        let c = case(&["l1"], Some("ann"));
        let who = |name: &str, teams: &[&str], admin: bool| {
            Caller::new(user(name, teams, admin), role(GroupAccountPermission::All))
        };
        assert!(who("root", &[], true).may_update_case(&c));
        assert!(who("bob", &["l1"], false).may_update_case(&c));
        assert!(who("ann", &[], false).may_update_case(&c), "the assignee");
        // A role that lets the user send from every account does not open every case.
        assert!(!who("eve", &["l2"], false).may_update_case(&c));
        assert!(!who("eve", &[], false).may_update_case(&case(&[], None)));
        let mut inactive = user("ann", &["l1"], true);
        inactive.active = false;
        assert!(!Caller::new(inactive, None).may_update_case(&c));
    }

    #[test]
    fn mail_is_read_through_any_of_its_accounts_that_allows_it() {
        let mut personal = account(AccountKind::Personal, Some("ann"), &[]);
        personal.name = "ann-mail".into();
        let mut group = account(AccountKind::Group, None, &["l1"]);
        group.name = "support".into();
        let mut email: EmailRecord = serde_json::from_value(serde_json::json!({
            "email_id": "e1", "message_id": "m@x", "synthetic_id": false,
            "auto_submitted": false, "list": false, "bounce": false, "size": 1,
            "attachments_skipped": false, "raw_key": "raw/x", "accounts": ["ann-mail"],
            "received_at": "2026-03-03T10:00:00Z",
            "parent": {"kind": "contact", "id": "c@x.example"}}))
        .unwrap();
        let bob = Caller::new(user("bob", &[], false), None);
        let both = [&personal, &group];
        // Linked to a record by its sender, personal mail stays its owner's.
        assert!(!bob.may_read_via(&email, both, None));
        // An account the email did not come through grants nothing.
        assert!(!bob.may_read_via(&email, [&group], None));
        email.accounts.push("support".into());
        assert!(bob.may_read_via(&email, both, None));
    }

    #[test]
    fn follows_are_the_users_own_or_an_admins() {
        let ann = Caller::new(user("ann", &[], false), None);
        assert!(ann.may_manage_follows_of("ann"));
        assert!(!ann.may_manage_follows_of("bob"));
        assert!(Caller::new(user("root", &[], true), None).may_manage_follows_of("bob"));
    }

    #[test]
    fn sent_mail_is_read_as_mail_received_through_the_same_account() {
        let personal = account(AccountKind::Personal, Some("ann"), &[]);
        let group = account(AccountKind::Group, None, &["l1"]);
        let ann = Caller::new(user("ann", &[], false), None);
        let bob = Caller::new(user("bob", &["l2"], false), None);
        let admin = Caller::new(user("root", &[], true), None);
        assert!(ann.may_read_sent(&personal, None));
        assert!(!bob.may_read_sent(&personal, None));
        assert!(!admin.may_read_sent(&personal, None));
        assert!(bob.may_read_sent(&personal, Some(&case(&["l2"], None))));
        assert!(bob.may_read_sent(&group, None));
    }

    #[test]
    fn the_directory_and_operations_are_the_admins() {
        let ann = Caller::new(
            user("ann", &["l1"], false),
            role(GroupAccountPermission::All),
        );
        let admin = Caller::new(user("root", &[], true), None);
        assert!(ann.may_read_directory());
        assert!(!ann.may_manage_directory() && !ann.may_read_roles() && !ann.may_operate());
        assert!(admin.may_manage_directory() && admin.may_read_roles() && admin.may_operate());
        let mut gone = user("root", &[], true);
        gone.active = false;
        let gone = Caller::new(gone, None);
        assert!(!gone.may_read_directory() && !gone.may_manage_directory() && !gone.may_operate());
    }

    #[test]
    fn accounts_are_seen_by_team_or_permission_and_managed_by_admins() {
        use GroupAccountPermission::*;
        let group = account(AccountKind::Group, None, &["l1"]);
        // (permission, in the account's team) -> sees it
        for (p, in_team, sees) in [
            (No, true, true),
            (No, false, false),
            (Team, false, false),
            (All, false, true),
        ] {
            let teams: &[&str] = if in_team { &["l1"] } else { &["x"] };
            let c = Caller::new(user("u", teams, false), role(p));
            assert_eq!(c.may_see_account(&group), sees, "{p:?} in team {in_team}");
            assert!(!c.may_manage_account(&group));
        }
        assert!(Caller::new(user("a", &[], true), None).may_manage_account(&group));
        assert!(Caller::new(user("ann", &[], false), None).may_manage_user_accounts("ann"));
        assert!(!Caller::new(user("ann", &[], false), None).may_manage_user_accounts("bob"));
        assert!(Caller::new(user("a", &[], true), None).may_manage_user_accounts("bob"));
    }

    #[test]
    fn filter_scopes_follow_r_x3() {
        let personal = account(AccountKind::Personal, Some("ann"), &[]);
        let group = account(AccountKind::Group, None, &["l1"]);
        let ann = Caller::new(
            user("ann", &["l1"], false),
            role(GroupAccountPermission::All),
        );
        let admin = Caller::new(user("root", &[], true), None);
        assert!(!ann.may_manage_filter(&Scope::Global, None));
        assert!(!ann.may_manage_filter(&Scope::Account("acct".into()), Some(&group)));
        assert!(ann.may_manage_filter(&Scope::Account("acct".into()), Some(&personal)));
        assert!(ann.may_manage_filter(&Scope::User("ann".into()), None));
        assert!(!ann.may_manage_filter(&Scope::User("bob".into()), None));
        for scope in [Scope::Global, Scope::User("bob".into())] {
            assert!(admin.may_manage_filter(&scope, None));
        }
    }
}
