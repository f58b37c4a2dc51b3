//! `/scim/v2/Groups`: teams. SCIM's `id` is the team id (made from `displayName` on
//! creation), `displayName` its name; `members` are the people whose team it is (a person is
//! in one team: adding them moves them). DELETE moves the members out and hides the team from
//! SCIM; the team itself stays for the records that name it.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use super::filter::{ListQuery, page, parse_filter};
use super::{Provisioner, ScimError, body_json, field, list_response, new_id, patch, respond, text};
use crate::org;
use crate::state::AppState;
use crate::storage::{Team, User, UserStatus};

pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";

/// What a request says of a team.
struct Incoming {
    display_name: String,
    external_id: Option<String>,
    /// `None`: not sent (a PUT without members leaves them).
    members: Option<Vec<String>>,
}

fn read(resource: &Value) -> Result<Incoming, ScimError> {
    let display_name =
        text(resource, "displayName").ok_or_else(|| ScimError::bad("invalidValue", "displayName is required"))?;
    let members = match field(resource, "members") {
        None | Some(Value::Null) => None,
        Some(Value::Array(list)) => Some(
            list.iter()
                .map(|m| text(m, "value").ok_or_else(|| ScimError::bad("invalidValue", "each member needs a value")))
                .collect::<Result<_, _>>()?,
        ),
        Some(_) => return Err(ScimError::bad("invalidValue", "members must be a list")),
    };
    Ok(Incoming { display_name, external_id: text(resource, "externalId"), members })
}

fn render(state: &AppState, team: &Team, external_id: Option<&str>, members: Option<&[User]>) -> Value {
    let base = &state.public_url;
    let mut resource = json!({
        "schemas": [GROUP_SCHEMA],
        "id": team.id,
        "displayName": team.name,
        "meta": {"resourceType": "Group", "location": format!("{base}/scim/v2/Groups/{}", team.id)},
    });
    if let Some(external_id) = external_id {
        resource["externalId"] = json!(external_id);
    }
    if let Some(members) = members {
        resource["members"] = members
            .iter()
            .map(|u| json!({"value": u.id, "display": u.name, "$ref": format!("{base}/scim/v2/Users/{}", u.id)}))
            .collect();
    }
    resource
}

async fn members_of(state: &AppState, team_id: &str) -> Result<Vec<User>, ScimError> {
    Ok(in_team(&state.db.users().await?, team_id))
}

/// Of `users`, those in the team (deleted people are no one's members).
fn in_team(users: &[User], team_id: &str) -> Vec<User> {
    users.iter().filter(|u| u.team_id.as_deref() == Some(team_id) && u.status != UserStatus::Deleted).cloned().collect()
}

async fn current(state: &AppState, id: &str) -> Result<(Team, Option<String>), ScimError> {
    state.db.scim_group(id).await?.ok_or_else(|| ScimError::not_found(format!("no group {id:?}")))
}

/// `excludedAttributes=members`, which providers send to spare a large team's member list.
fn without_members(query: &ListQuery) -> bool {
    query.excluded_attributes.as_deref().is_some_and(|a| a.split(',').any(|a| a.trim().eq_ignore_ascii_case("members")))
}

pub async fn list(
    State(state): State<AppState>,
    _provisioner: Provisioner,
    Query(query): Query<ListQuery>,
) -> Result<Response, ScimError> {
    let mut groups = state.db.scim_groups().await?;
    if let Some(filter) = query.filter.as_deref().map(str::trim).filter(|f| !f.is_empty()) {
        let filter = parse_filter(filter, &["displayName", "externalId", "id"])?;
        groups.retain(|(team, external_id)| {
            if filter.is("displayName") {
                team.name.eq_ignore_ascii_case(&filter.value)
            } else if filter.is("externalId") {
                external_id.as_deref() == Some(filter.value.as_str())
            } else {
                team.id == filter.value
            }
        });
    }
    let (groups, total, start) = page(groups, &query)?;
    // Everyone once for the page, not once per team.
    let users = if without_members(&query) { None } else { Some(state.db.users().await?) };
    let resources = groups
        .iter()
        .map(|(team, external_id)| {
            let members = users.as_deref().map(|users| in_team(users, &team.id));
            render(&state, team, external_id.as_deref(), members.as_deref())
        })
        .collect();
    Ok(list_response(resources, total, start))
}

pub async fn get(
    State(state): State<AppState>,
    _provisioner: Provisioner,
    Path(id): Path<String>,
    Query(query): Query<ListQuery>,
) -> Result<Response, ScimError> {
    let (team, external_id) = current(&state, &id).await?;
    let members = if without_members(&query) { None } else { Some(members_of(&state, &team.id).await?) };
    Ok(respond(StatusCode::OK, render(&state, &team, external_id.as_deref(), members.as_deref())))
}

pub async fn create(
    State(state): State<AppState>,
    provisioner: Provisioner,
    body: Bytes,
) -> Result<Response, ScimError> {
    let incoming = read(&body_json(&body)?)?;
    let teams = state.db.teams().await?;
    if let Some((team, _)) =
        state.db.scim_groups().await?.iter().find(|(t, _)| t.name.eq_ignore_ascii_case(&incoming.display_name))
    {
        return Err(ScimError::conflict(format!("a team is named {:?} already, as id {:?}", team.name, team.id)));
    }
    // A team the provider deleted before, by that name, comes back; otherwise a new one.
    let team = match teams.iter().find(|t| t.name.eq_ignore_ascii_case(&incoming.display_name)) {
        Some(team) => team.clone(),
        None => {
            let team = Team {
                id: new_id(&incoming.display_name, |id| teams.iter().any(|t| t.id == id)),
                name: incoming.display_name.clone(),
            };
            org::add_team(&state.db, provisioner.operator(), &team).await?;
            team
        }
    };
    let team = apply(&state, &provisioner, team, &incoming).await?;
    let members = members_of(&state, &team.id).await?;
    Ok(respond(StatusCode::CREATED, render(&state, &team, incoming.external_id.as_deref(), Some(&members))))
}

pub async fn replace(
    State(state): State<AppState>,
    provisioner: Provisioner,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ScimError> {
    let (team, _) = current(&state, &id).await?;
    update(&state, &provisioner, team, &body_json(&body)?).await
}

pub async fn patch(
    State(state): State<AppState>,
    provisioner: Provisioner,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ScimError> {
    let (team, external_id) = current(&state, &id).await?;
    let members = members_of(&state, &team.id).await?;
    let mut resource = render(&state, &team, external_id.as_deref(), Some(&members));
    patch::apply(&mut resource, &body_json(&body)?, GROUP_SCHEMA, &[])?;
    update(&state, &provisioner, team, &resource).await
}

/// Makes the team what `resource` says (a PUT's body, or what a PATCH made of it).
async fn update(
    state: &AppState,
    provisioner: &Provisioner,
    team: Team,
    resource: &Value,
) -> Result<Response, ScimError> {
    let incoming = read(resource)?;
    let team = apply(state, provisioner, team, &incoming).await?;
    let members = members_of(state, &team.id).await?;
    Ok(respond(StatusCode::OK, render(state, &team, incoming.external_id.as_deref(), Some(&members))))
}

pub async fn delete(
    State(state): State<AppState>,
    provisioner: Provisioner,
    Path(id): Path<String>,
) -> Result<StatusCode, ScimError> {
    let (team, _) = current(&state, &id).await?;
    let incoming = Incoming { display_name: team.name.clone(), external_id: None, members: Some(Vec::new()) };
    apply(&state, &provisioner, team.clone(), &incoming).await?;
    state.db.delete_scim_group(&team.id).await?;
    state.db.audit(provisioner.operator().event("admin.team-deleted", json!({ "team": team.id }))).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Names the team as the request says and, if it lists members, makes them its members:
/// those added move into it, those left out move out (to no team).
async fn apply(
    state: &AppState,
    provisioner: &Provisioner,
    team: Team,
    incoming: &Incoming,
) -> Result<Team, ScimError> {
    let by = provisioner.operator();
    let renamed = Team { id: team.id.clone(), name: incoming.display_name.clone() };
    state.db.set_scim_group(&renamed, incoming.external_id.as_deref()).await?;
    if renamed.name != team.name {
        state.db.audit(by.event("admin.team-renamed", json!({ "team": team.id }))).await?;
    }
    let Some(wanted) = &incoming.members else { return Ok(renamed) };
    let users = state.db.users().await?;
    for id in wanted {
        if !users.iter().any(|u| &u.id == id && u.status != UserStatus::Deleted) {
            return Err(ScimError::bad("invalidValue", format!("member {id:?} is not a provisioned user")));
        }
    }
    for mut user in users {
        let member = wanted.contains(&user.id);
        let here = user.team_id.as_deref() == Some(team.id.as_str());
        if member != here {
            user.team_id = member.then(|| team.id.clone());
            org::update_user(&state.db, by, &user).await?;
        }
    }
    Ok(renamed)
}
