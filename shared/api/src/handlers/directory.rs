//! Users, teams and roles (R-P1): admins create them; every active user reads users and
//! teams (they pick assignees and followers), only admins read roles. `GET /v1/me` is the
//! caller as the API sees them. The checks are the CLI's (`mailroom_core::admin`).

use chrono::Utc;
use mailroom_core::access::{Caller, GroupAccountPermission, Role};
use mailroom_core::admin::{validate_role_name, validate_team_name, NewUser};
use mailroom_core::error::StoreError;
use mailroom_core::records::User;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};
use crate::handlers::accounts::invalid;
use crate::handlers::Module;
use crate::page::{list_body, PageRequest};
use crate::request::ApiRequest;
use crate::routes::Route;
use crate::{Api, Reply};

pub const ROUTES: &[Route] = &[
    Route::new("GET", "/v1/me", "getMe", Module::Directory),
    Route::new("GET", "/v1/users", "listUsers", Module::Directory),
    Route::new("POST", "/v1/users", "createUser", Module::Directory),
    Route::new("GET", "/v1/users/{name}", "getUser", Module::Directory),
    Route::new("GET", "/v1/teams", "listTeams", Module::Directory),
    Route::new("POST", "/v1/teams", "createTeam", Module::Directory),
    Route::new("GET", "/v1/roles", "listRoles", Module::Directory),
    Route::new("POST", "/v1/roles", "createRole", Module::Directory),
];

pub async fn call(api: &Api, caller: &Caller, op: &str, req: &ApiRequest) -> ApiResult<Reply> {
    match op {
        "getMe" => Ok(Reply::ok(me(caller))),
        "listUsers" => list_users(api, caller, req).await,
        "createUser" => create_user(api, caller, req).await,
        "getUser" => get_user(api, caller, req).await,
        "listTeams" => list_teams(api, caller, req).await,
        "createTeam" => create_team(api, caller, req).await,
        "listRoles" => list_roles(api, caller, req).await,
        "createRole" => create_role(api, caller, req).await,
        _ => Err(ApiError::not_found("operation")),
    }
}

/// A user as the API shows them (`mailroom users list --json`'s fields).
pub fn user_view(u: &User) -> Value {
    json!({
        "name": u.name,
        "emails": u.emails,
        "teams": u.teams.iter().map(|m| json!({"team": m.team, "position": m.position})).collect::<Vec<_>>(),
        "active": u.active,
        "admin": u.admin,
        "role": u.role,
        "created_at": u.created_at,
    })
}

fn role_view(r: &Role) -> Value {
    json!({"name": r.name, "group_account_permission": r.group_account_permission})
}

fn me(caller: &Caller) -> Value {
    let mut v = user_view(&caller.user);
    v["permission"] = json!(caller
        .role
        .as_ref()
        .map(|r| r.group_account_permission)
        .unwrap_or_default());
    v
}

fn reader(caller: &Caller) -> ApiResult<()> {
    if caller.may_read_directory() {
        Ok(())
    } else {
        Err(ApiError::forbidden("only active users read the directory"))
    }
}

fn manager(caller: &Caller, what: &str) -> ApiResult<()> {
    if caller.may_manage_directory() {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!("only admins add {what}")))
    }
}

async fn list_users(api: &Api, caller: &Caller, req: &ApiRequest) -> ApiResult<Reply> {
    reader(caller)?;
    let page = PageRequest::from_request(req)?;
    let users = api.adapters.store.list_users().await?;
    let (users, next) = page.page(users, |u| u.name.clone());
    Ok(Reply::ok(list_body(
        users.iter().map(user_view).collect(),
        next,
    )))
}

async fn get_user(api: &Api, caller: &Caller, req: &ApiRequest) -> ApiResult<Reply> {
    reader(caller)?;
    let name = req.param("name");
    let u = api
        .adapters
        .store
        .get_user(name)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("user {name}")))?;
    Ok(Reply::ok(user_view(&u)))
}

/// `POST /v1/users`: `mailroom users add`'s fields; teams as `team` or `team:position`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserBody {
    name: String,
    #[serde(default)]
    emails: Vec<String>,
    #[serde(default)]
    teams: Vec<String>,
    #[serde(default = "yes")]
    active: bool,
    #[serde(default)]
    admin: bool,
    #[serde(default)]
    role: Option<String>,
}

fn yes() -> bool {
    true
}

async fn create_user(api: &Api, caller: &Caller, req: &ApiRequest) -> ApiResult<Reply> {
    manager(caller, "users")?;
    let body: UserBody = req.json()?;
    let new = NewUser {
        name: body.name,
        emails: body.emails,
        teams: body.teams,
        active: body.active,
        admin: body.admin,
        role: body.role,
    };
    new.validate().map_err(invalid)?;
    let store = &api.adapters.store;
    let known = store.list_teams().await?;
    let role_exists = match &new.role {
        Some(r) => store.get_role(r).await?.is_some(),
        None => false,
    };
    let user = new
        .into_user(&known, role_exists, Utc::now())
        .map_err(invalid)?;
    store.add_user(&user).await.map_err(|e| match e {
        StoreError::AlreadyExists(_) => {
            ApiError::conflict("name", format!("a user {:?} already exists", user.name))
        }
        other => other.into(),
    })?;
    Ok(Reply::created(user_view(&user)))
}

async fn list_teams(api: &Api, caller: &Caller, req: &ApiRequest) -> ApiResult<Reply> {
    reader(caller)?;
    let page = PageRequest::from_request(req)?;
    let teams = api.adapters.store.list_teams().await?;
    let (teams, next) = page.page(teams, |t| t.clone());
    Ok(Reply::ok(list_body(
        teams.iter().map(|t| json!({"name": t})).collect(),
        next,
    )))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TeamBody {
    name: String,
}

async fn create_team(api: &Api, caller: &Caller, req: &ApiRequest) -> ApiResult<Reply> {
    manager(caller, "teams")?;
    let body: TeamBody = req.json()?;
    validate_team_name(&body.name).map_err(invalid)?;
    api.adapters
        .store
        .add_team(&body.name)
        .await
        .map_err(|e| match e {
            StoreError::AlreadyExists(_) => {
                ApiError::conflict("name", format!("a team {:?} already exists", body.name))
            }
            other => other.into(),
        })?;
    Ok(Reply::created(json!({"name": body.name})))
}

async fn list_roles(api: &Api, caller: &Caller, req: &ApiRequest) -> ApiResult<Reply> {
    if !caller.may_read_roles() {
        return Err(ApiError::forbidden("only admins read roles"));
    }
    let page = PageRequest::from_request(req)?;
    let roles = api.adapters.store.list_roles().await?;
    let (roles, next) = page.page(roles, |r| r.name.clone());
    Ok(Reply::ok(list_body(
        roles.iter().map(role_view).collect(),
        next,
    )))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RoleBody {
    name: String,
    /// no, team or all (R-S2).
    group_account_permission: GroupAccountPermission,
}

async fn create_role(api: &Api, caller: &Caller, req: &ApiRequest) -> ApiResult<Reply> {
    manager(caller, "roles")?;
    let body: RoleBody = req.json()?;
    validate_role_name(&body.name).map_err(invalid)?;
    let role = Role {
        v: mailroom_core::SCHEMA_VERSION,
        name: body.name,
        group_account_permission: body.group_account_permission,
    };
    api.adapters
        .store
        .add_role(&role)
        .await
        .map_err(|e| match e {
            StoreError::AlreadyExists(_) => {
                ApiError::conflict("name", format!("a role {:?} already exists", role.name))
            }
            other => other.into(),
        })?;
    Ok(Reply::created(role_view(&role)))
}
