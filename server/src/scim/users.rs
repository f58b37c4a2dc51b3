//! `/scim/v2/Users`: people. SCIM's `id` is the Fieldbook user id (made from `userName` on
//! creation). `userName` is kept beside the person and matched whatever its case;
//! `externalId` is their external id, the claim they sign in with (`userName` when the
//! provider sends none). `displayName` (else `name.formatted`, else the given and family
//! names) is their name; `active: false` suspends them, and DELETE marks them deleted, never
//! erased (creating them again brings the same person back). The enterprise extension's
//! `employeeNumber` and `manager.value` are their employee number and supervisor (from that
//! day); `roles[].value` their role (practitioner unless said). Teams are Groups.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use fieldbook_sync_core::records::dates;
use serde_json::{Map, Value, json};

use super::filter::{ListQuery, page, parse_filter};
use super::{Provisioner, ScimError, body_json, field, list_response, new_id, patch, respond, text};
use crate::org;
use crate::state::AppState;
use crate::storage::{Role, Team, User, UserStatus};

pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

/// What a request says of a person (a POST or PUT body, or the resource a PATCH made).
#[derive(Debug, PartialEq)]
struct Incoming {
    user_name: String,
    external_id: String,
    name: String,
    active: bool,
    role: Option<Role>,
    /// The enterprise extension: replaced whole when sent, left as it is when not (so a
    /// provider that maps neither does not clear supervision set another way).
    enterprise: Option<Enterprise>,
}

#[derive(Debug, PartialEq)]
struct Enterprise {
    employee_number: Option<String>,
    manager: Option<String>,
}

fn read(resource: &Value) -> Result<Incoming, ScimError> {
    let user_name = text(resource, "userName").ok_or_else(|| ScimError::bad("invalidValue", "userName is required"))?;
    let name = field(resource, "name").cloned().unwrap_or(Value::Null);
    let given_family = [text(&name, "givenName"), text(&name, "familyName")].into_iter().flatten().collect::<Vec<_>>();
    let full_name = text(resource, "displayName")
        .or_else(|| text(&name, "formatted"))
        .or_else(|| (!given_family.is_empty()).then(|| given_family.join(" ")))
        .unwrap_or_else(|| user_name.clone());
    // Entra ID sends `"False"` and `"True"` as often as booleans.
    let active = match field(resource, "active") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => true,
        Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => false,
        Some(other) => {
            return Err(ScimError::bad("invalidValue", format!("active must be true or false, not {other}")));
        }
    };
    let role = match field(resource, "roles") {
        Some(Value::Array(roles)) if !roles.is_empty() => {
            let primary =
                roles.iter().find(|r| field(r, "primary").is_some_and(|p| p == true || p == "True" || p == "true"));
            let chosen = primary.unwrap_or(&roles[0]);
            let value = chosen.as_str().map(str::to_owned).or_else(|| text(chosen, "value")).unwrap_or_default();
            let normalised = value.trim().to_lowercase().replace([' ', '_'], "-");
            Some(normalised.parse::<Role>().map_err(|e| ScimError::bad("invalidValue", e))?)
        }
        _ => None,
    };
    let enterprise = field(resource, ENTERPRISE).filter(|e| e.is_object()).map(|enterprise| {
        // `"manager": "sam"`, `{"value": "sam"}` or `[{"value": "sam"}]`, as providers vary.
        let manager = match field(enterprise, "manager") {
            Some(Value::String(id)) => Some(id.trim().to_owned()),
            Some(Value::Array(list)) => list.first().and_then(|m| text(m, "value")),
            Some(m @ Value::Object(_)) => text(m, "value"),
            _ => None,
        };
        Enterprise { employee_number: text(enterprise, "employeeNumber"), manager: manager.filter(|id| !id.is_empty()) }
    });
    Ok(Incoming {
        external_id: text(resource, "externalId").unwrap_or_else(|| user_name.clone()),
        user_name,
        name: full_name,
        active,
        role,
        enterprise,
    })
}

/// Everything a rendering needs besides the person.
struct Directory {
    user_names: HashMap<String, String>,
    supervisors: HashMap<String, String>,
    teams: HashMap<String, Team>,
    base: String,
}

impl Directory {
    async fn load(state: &AppState) -> Result<Self, ScimError> {
        Ok(Directory {
            user_names: state.db.scim_user_names().await?,
            supervisors: state.db.current_supervisors().await?,
            teams: state.db.teams().await?.into_iter().map(|t| (t.id.clone(), t)).collect(),
            base: state.public_url.clone(),
        })
    }

    fn render(&self, user: &User) -> Value {
        let mut resource = Map::new();
        let mut put = |key: &str, value: Value| {
            if !value.is_null() {
                resource.insert(key.to_owned(), value);
            }
        };
        put("schemas", json!([USER_SCHEMA, ENTERPRISE]));
        put("id", json!(user.id));
        put("externalId", json!(user.external_id));
        let user_name = self.user_names.get(&user.id).or(user.external_id.as_ref()).unwrap_or(&user.id);
        put("userName", json!(user_name));
        put("displayName", json!(user.name));
        put("name", json!({ "formatted": user.name }));
        put("active", json!(user.status == UserStatus::Active));
        put("roles", json!([{ "value": user.role.as_str(), "primary": true }]));
        let team = user.team_id.as_ref().and_then(|t| self.teams.get(t));
        put(
            "groups",
            json!(
                team.map(|t| vec![json!({
                    "value": t.id, "display": t.name, "$ref": format!("{}/scim/v2/Groups/{}", self.base, t.id)
                })])
                .unwrap_or_default()
            ),
        );
        let mut enterprise = Map::new();
        if let Some(number) = &user.employee_number {
            enterprise.insert("employeeNumber".into(), json!(number));
        }
        if let Some(manager) = self.supervisors.get(&user.id) {
            enterprise.insert(
                "manager".into(),
                json!({ "value": manager, "$ref": format!("{}/scim/v2/Users/{manager}", self.base) }),
            );
        }
        put(ENTERPRISE, Value::Object(enterprise));
        put("meta", json!({ "resourceType": "User", "location": format!("{}/scim/v2/Users/{}", self.base, user.id) }));
        Value::Object(resource)
    }
}

/// A person SCIM can see: not deleted.
async fn current(state: &AppState, id: &str) -> Result<User, ScimError> {
    match state.db.user(id).await? {
        Some(user) if user.status != UserStatus::Deleted => Ok(user),
        _ => Err(ScimError::not_found(format!("no user {id:?}"))),
    }
}

pub async fn list(
    State(state): State<AppState>,
    _provisioner: Provisioner,
    Query(query): Query<ListQuery>,
) -> Result<Response, ScimError> {
    let users = match query.filter.as_deref().map(str::trim).filter(|f| !f.is_empty()) {
        Some(filter) => {
            let filter = parse_filter(filter, &["userName", "externalId", "id"])?;
            let found = if filter.is("userName") {
                state.db.user_by_scim_name(&filter.value).await?
            } else if filter.is("externalId") {
                state.db.user_by_external_id(&filter.value).await?
            } else {
                state.db.user(&filter.value).await?
            };
            found.into_iter().collect()
        }
        None => state.db.users().await?,
    };
    let users: Vec<User> = users.into_iter().filter(|u| u.status != UserStatus::Deleted).collect();
    let (users, total, start) = page(users, &query)?;
    let directory = Directory::load(&state).await?;
    Ok(list_response(users.iter().map(|u| directory.render(u)).collect(), total, start))
}

pub async fn get(
    State(state): State<AppState>,
    _provisioner: Provisioner,
    Path(id): Path<String>,
) -> Result<Response, ScimError> {
    let user = current(&state, &id).await?;
    Ok(respond(StatusCode::OK, Directory::load(&state).await?.render(&user)))
}

pub async fn create(
    State(state): State<AppState>,
    provisioner: Provisioner,
    body: Bytes,
) -> Result<Response, ScimError> {
    let incoming = read(&body_json(&body)?)?;
    let by = provisioner.operator();
    // The same person again (by userName or external id): a deleted one comes back; anyone
    // else is a conflict, as SCIM has it.
    let known = match state.db.user_by_scim_name(&incoming.user_name).await? {
        Some(user) => Some(user),
        None => state.db.user_by_external_id(&incoming.external_id).await?,
    };
    let user = match known {
        Some(user) if user.status == UserStatus::Deleted => {
            apply(&state, &provisioner, user, &incoming, Role::Practitioner).await?
        }
        Some(user) => {
            return Err(ScimError::conflict(format!(
                "{:?} is provisioned already, as id {:?}",
                incoming.user_name, user.id
            )));
        }
        None => {
            let taken: std::collections::HashSet<String> = state.db.users().await?.into_iter().map(|u| u.id).collect();
            let mut user =
                User::new(new_id(&incoming.user_name, |id| taken.contains(id)), &incoming.name, Role::Practitioner);
            user.role = incoming.role.unwrap_or(Role::Practitioner);
            user.status = if incoming.active { UserStatus::Active } else { UserStatus::Suspended };
            user.external_id = Some(incoming.external_id.clone());
            user.employee_number = incoming.enterprise.as_ref().and_then(|e| e.employee_number.clone());
            let manager = incoming.manager();
            if let Some(manager) = manager {
                current(&state, manager).await.map_err(|_| unknown_manager(manager))?;
            }
            org::add_user(&state.db, by, &user, manager, None).await?;
            state.db.set_scim_user_name(&user.id, &incoming.user_name).await?;
            user
        }
    };
    Ok(respond(StatusCode::CREATED, Directory::load(&state).await?.render(&user)))
}

pub async fn replace(
    State(state): State<AppState>,
    provisioner: Provisioner,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ScimError> {
    let user = current(&state, &id).await?;
    update(&state, &provisioner, user, &body_json(&body)?).await
}

pub async fn patch(
    State(state): State<AppState>,
    provisioner: Provisioner,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ScimError> {
    let user = current(&state, &id).await?;
    let mut resource = Directory::load(&state).await?.render(&user);
    patch::apply(&mut resource, &body_json(&body)?, USER_SCHEMA, &[ENTERPRISE])?;
    update(&state, &provisioner, user, &resource).await
}

/// Makes the person what `resource` says (a PUT's body, or what a PATCH made of them).
async fn update(
    state: &AppState,
    provisioner: &Provisioner,
    user: User,
    resource: &Value,
) -> Result<Response, ScimError> {
    let incoming = read(resource)?;
    let role = user.role;
    let user = apply(state, provisioner, user, &incoming, role).await?;
    Ok(respond(StatusCode::OK, Directory::load(state).await?.render(&user)))
}

pub async fn delete(
    State(state): State<AppState>,
    provisioner: Provisioner,
    Path(id): Path<String>,
) -> Result<StatusCode, ScimError> {
    let mut user = current(&state, &id).await?;
    user.status = UserStatus::Deleted;
    org::update_user(&state.db, provisioner.operator(), &user).await?;
    Ok(StatusCode::NO_CONTENT)
}

impl Incoming {
    fn manager(&self) -> Option<&str> {
        self.enterprise.as_ref().and_then(|e| e.manager.as_deref())
    }
}

fn unknown_manager(id: &str) -> ScimError {
    ScimError::bad("invalidValue", format!("manager {id:?} is not a provisioned user; provision them first"))
}

/// Makes the person what the request says; `role` when it names none. Each kind of change is
/// audited as the provider's.
async fn apply(
    state: &AppState,
    provisioner: &Provisioner,
    mut user: User,
    incoming: &Incoming,
    role: Role,
) -> Result<User, ScimError> {
    let by = provisioner.operator();
    if let Some(manager) = incoming.manager() {
        if manager == user.id {
            return Err(ScimError::bad("invalidValue", "nobody is their own manager"));
        }
        current(state, manager).await.map_err(|_| unknown_manager(manager))?;
    }
    state.db.set_scim_user_name(&user.id, &incoming.user_name).await?;
    let before = user.clone();
    user.name = incoming.name.clone();
    user.external_id = Some(incoming.external_id.clone());
    if let Some(enterprise) = &incoming.enterprise {
        user.employee_number = enterprise.employee_number.clone();
    }
    user.role = incoming.role.unwrap_or(role);
    user.status = if incoming.active { UserStatus::Active } else { UserStatus::Suspended };
    if user != before {
        org::update_user(&state.db, by, &user).await?;
    }
    if let Some(enterprise) = &incoming.enterprise {
        let supervisor = state.db.current_supervisors().await?.remove(&user.id);
        if supervisor != enterprise.manager {
            org::set_supervisor(&state.db, by, &user.id, enterprise.manager.as_deref(), Some(dates::today())).await?;
        }
    }
    Ok(user)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shapes_providers_send_are_read() {
        let entra = json!({
            "schemas": [USER_SCHEMA, ENTERPRISE],
            "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
            "userName": "Pat.Reid@council.example",
            "active": "False",
            "displayName": "Pat Reid",
            "name": {"formatted": "Patricia Reid", "familyName": "Reid", "givenName": "Patricia"},
            "roles": [{"primary": "True", "value": "Supervisor"}],
            ENTERPRISE: {"employeeNumber": "E1042", "manager": {"value": "sam"}},
        });
        assert_eq!(
            read(&entra).unwrap(),
            Incoming {
                user_name: "Pat.Reid@council.example".into(),
                external_id: "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef".into(),
                name: "Pat Reid".into(),
                active: false,
                role: Some(Role::Supervisor),
                enterprise: Some(Enterprise { employee_number: Some("E1042".into()), manager: Some("sam".into()) }),
            }
        );
        let minimal = read(&json!({"userName": "kim", "name": {"givenName": "Kim", "familyName": "Lee"}})).unwrap();
        assert_eq!((minimal.name.as_str(), minimal.external_id.as_str(), minimal.active), ("Kim Lee", "kim", true));
        assert_eq!((minimal.role, minimal.enterprise), (None, None), "what is not sent is left as it is");
        let psw = read(&json!({"userName": "a", "roles": ["Principal social worker"]})).unwrap();
        assert_eq!(psw.role, Some(Role::PrincipalSocialWorker));
        assert!(read(&json!({"userName": "a", "roles": [{"value": "wizard"}]})).is_err());
        assert!(read(&json!({"userName": " "})).is_err());
        assert!(read(&json!({"userName": "a", "active": "maybe"})).is_err());
        let manager_string = json!({"userName": "a", ENTERPRISE: {"manager": "lee"}});
        assert_eq!(read(&manager_string).unwrap().manager(), Some("lee"));
    }
}
