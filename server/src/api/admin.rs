//! `/v1/admin/…`: people, teams, supervision, devices and the audit trail. Admins only;
//! every change is itself audited.

use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use fieldbook_sync_core::DocumentId;
use serde::Deserialize;
use serde_json::json;

use super::body::JsonBody;
use crate::auth::Authenticated;
use crate::erasure::{self, EraseError};
use crate::error::{AppError, Problem};
use crate::org::{self, ImportError, ImportReport, Operator, OrgError};
use crate::state::AppState;
use crate::storage::{AuditQuery, AuditRow, DeleteOutcome, Device, Role, Supervision, Team, User, UserStatus};
use crate::subject_access;

const MAX_AUDIT_ROWS: i64 = 1000;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/admin/users", get(list_users).post(add_user))
        .route("/v1/admin/users/{id}", get(show_user).patch(update_user))
        .route("/v1/admin/users/{id}/supervisor", put(set_supervisor))
        .route("/v1/admin/users/{id}/password", put(set_password))
        .route("/v1/admin/users/{id}/devices", get(list_devices))
        .route("/v1/admin/users/{id}/devices/{device}/revoke", post(revoke_device))
        .route("/v1/admin/teams", get(list_teams).post(add_team))
        .route("/v1/admin/import", post(import))
        .route("/v1/admin/audit", get(audit_trail))
        .route("/v1/admin/records/{id}/erase", post(erase_record))
        .route("/v1/admin/records/{id}/delete", post(delete_record))
        .route("/v1/admin/users/{id}/subject-access", get(subject_access))
}

/// An authenticated admin.
pub(super) struct Admin(Authenticated);

impl FromRequestParts<AppState> for Admin {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let auth = Authenticated::from_request_parts(parts, state).await?;
        if auth.user.role != Role::Admin {
            return Err(AppError::Forbidden("administration needs the admin role".into()));
        }
        Ok(Admin(auth))
    }
}

impl Admin {
    fn operator(&self) -> Operator<'_> {
        Operator::Person { user_id: &self.0.user.id, device_id: self.0.device.as_deref() }
    }
}

impl From<EraseError> for AppError {
    fn from(e: EraseError) -> Self {
        match e {
            EraseError::Invalid(message) => AppError::BadRequest(message),
            EraseError::NotFound(_) => AppError::NotFound(e.to_string()),
            EraseError::Storage(e) => e.into(),
        }
    }
}

impl From<OrgError> for AppError {
    fn from(e: OrgError) -> Self {
        match e {
            OrgError::Invalid(message) => AppError::BadRequest(message),
            OrgError::Storage(e) => e.into(),
        }
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct NewUser {
    #[schema(pattern = "\\S")]
    id: String,
    #[schema(pattern = "\\S")]
    name: String,
    #[schema(pattern = "^(practitioner|supervisor|manager|principal-social-worker|hr|admin)$")]
    role: String,
    team_id: Option<String>,
    supervisor_id: Option<String>,
    /// When supervision starts (`YYYY-MM-DD`, default today).
    #[schema(format = Date)]
    supervisor_from: Option<String>,
    external_id: Option<String>,
    employee_number: Option<String>,
    registration_number: Option<String>,
}

#[utoipa::path(get, path = "/v1/admin/users", tag = "administration", security(("bearer" = [])),
    responses((status = 200, body = [User]), (status = 401, body = Problem), (status = 403, body = Problem)))]
pub(super) async fn list_users(State(state): State<AppState>, _admin: Admin) -> Result<Json<Vec<User>>, AppError> {
    Ok(Json(state.db.users().await?))
}

#[utoipa::path(post, path = "/v1/admin/users", tag = "administration", security(("bearer" = [])), request_body = NewUser,
    responses((status = 201, body = User), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem, description = "The team or supervisor named does not exist"),
        (status = 409, body = Problem, description = "The id or external id exists, or the supervision would make a cycle")))]
pub(super) async fn add_user(
    State(state): State<AppState>,
    admin: Admin,
    JsonBody(new): JsonBody<NewUser>,
) -> Result<(StatusCode, Json<User>), AppError> {
    if new.id.trim().is_empty() || new.name.trim().is_empty() {
        return Err(AppError::BadRequest("id and name must not be empty".into()));
    }
    let user = User {
        team_id: new.team_id,
        external_id: new.external_id,
        employee_number: new.employee_number,
        registration_number: new.registration_number,
        ..User::new(new.id, new.name, new.role.parse().map_err(AppError::BadRequest)?)
    };
    org::add_user(&state.db, admin.operator(), &user, new.supervisor_id.as_deref(), new.supervisor_from).await?;
    Ok((StatusCode::CREATED, Json(user)))
}

#[utoipa::path(get, path = "/v1/admin/users/{id}", tag = "administration", security(("bearer" = [])),
    params(("id" = String, Path, description = "The user id")),
    responses((status = 200, body = UserDetails), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem)))]
pub(super) async fn show_user(
    State(state): State<AppState>,
    _admin: Admin,
    Path(id): Path<String>,
) -> Result<Json<UserDetails>, AppError> {
    let user = state.db.user(&id).await?.ok_or_else(|| AppError::NotFound(format!("no user {id:?}")))?;
    let supervision: Vec<Supervision> = state.db.supervision_history(&id).await?;
    let devices: Vec<Device> = state.db.devices(&id).await?;
    Ok(Json(UserDetails { user, supervision, devices }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct UserChanges {
    #[schema(pattern = "\\S")]
    name: Option<String>,
    #[schema(pattern = "^(practitioner|supervisor|manager|principal-social-worker|hr|admin)$")]
    role: Option<String>,
    /// `null` removes the user from their team.
    #[serde(default, with = "double_option")]
    #[schema(value_type = Option<String>)]
    team_id: Option<Option<String>>,
    #[schema(pattern = "^(active|suspended|deleted)$")]
    status: Option<String>,
    #[serde(default, with = "double_option")]
    #[schema(value_type = Option<String>)]
    external_id: Option<Option<String>>,
    #[serde(default, with = "double_option")]
    #[schema(value_type = Option<String>)]
    employee_number: Option<Option<String>>,
    #[serde(default, with = "double_option")]
    #[schema(value_type = Option<String>)]
    registration_number: Option<Option<String>>,
}

/// Tells a missing field (`None`) from an explicit `null` (`Some(None)`).
mod double_option {
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
        Option::<String>::deserialize(d).map(Some)
    }
}

#[utoipa::path(patch, path = "/v1/admin/users/{id}", tag = "administration", security(("bearer" = [])),
    params(("id" = String, Path, description = "The user id")), request_body = UserChanges,
    responses((status = 200, body = User), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem, description = "The external id is someone else's")))]
pub(super) async fn update_user(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    JsonBody(changes): JsonBody<UserChanges>,
) -> Result<Json<User>, AppError> {
    let mut user = state.db.user(&id).await?.ok_or_else(|| AppError::NotFound(format!("no user {id:?}")))?;
    if let Some(name) = changes.name {
        if name.trim().is_empty() {
            return Err(AppError::BadRequest("name must not be empty".into()));
        }
        user.name = name;
    }
    if let Some(role) = changes.role {
        user.role = role.parse().map_err(AppError::BadRequest)?;
    }
    if let Some(status) = changes.status {
        user.status = status.parse::<UserStatus>().map_err(AppError::BadRequest)?;
    }
    for (field, change) in [
        (&mut user.team_id, changes.team_id),
        (&mut user.external_id, changes.external_id),
        (&mut user.employee_number, changes.employee_number),
        (&mut user.registration_number, changes.registration_number),
    ] {
        if let Some(value) = change {
            *field = value;
        }
    }
    org::update_user(&state.db, admin.operator(), &user).await?;
    Ok(Json(user))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct SupervisorChange {
    /// `null` ends supervision without a successor.
    supervisor_id: Option<String>,
    /// `YYYY-MM-DD`, default today.
    #[schema(format = Date)]
    from: Option<String>,
}

#[utoipa::path(put, path = "/v1/admin/users/{id}/supervisor", tag = "administration", security(("bearer" = [])),
    params(("id" = String, Path, description = "The supervisee's user id")), request_body = SupervisorChange,
    responses((status = 200, body = [Supervision]), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem, description = "No such user"),
        (status = 409, body = Problem, description = "It would start before the current supervision did, or make a cycle")))]
pub(super) async fn set_supervisor(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    JsonBody(change): JsonBody<SupervisorChange>,
) -> Result<Json<Vec<Supervision>>, AppError> {
    org::set_supervisor(&state.db, admin.operator(), &id, change.supervisor_id.as_deref(), change.from).await?;
    Ok(Json(state.db.supervision_history(&id).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NewPassword {
    /// At least 12 characters.
    #[schema(min_length = 12)]
    password: String,
}

/// Sets (or replaces) a user's password for built-in sign-in; stored as an argon2 hash.
#[utoipa::path(put, path = "/v1/admin/users/{id}/password", tag = "administration", security(("bearer" = [])),
    params(("id" = String, Path, description = "The user id")), request_body = NewPassword,
    responses((status = 204, description = "Set"), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem)))]
pub(super) async fn set_password(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    JsonBody(new): JsonBody<NewPassword>,
) -> Result<StatusCode, AppError> {
    org::set_password(&state.db, admin.operator(), &id, new.password).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/v1/admin/users/{id}/devices", tag = "administration", security(("bearer" = [])),
    params(("id" = String, Path, description = "The user id")),
    responses((status = 200, body = [Device]), (status = 401, body = Problem), (status = 403, body = Problem)))]
pub(super) async fn list_devices(
    State(state): State<AppState>,
    _admin: Admin,
    Path(id): Path<String>,
) -> Result<Json<Vec<Device>>, AppError> {
    Ok(Json(state.db.devices(&id).await?))
}

#[utoipa::path(post, path = "/v1/admin/users/{id}/devices/{device}/revoke", tag = "administration", security(("bearer" = [])),
    params(("id" = String, Path, description = "The user id"), ("device" = String, Path, description = "The device id")),
    responses((status = 200, body = Revoked), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem)))]
pub(super) async fn revoke_device(
    State(state): State<AppState>,
    admin: Admin,
    Path((id, device)): Path<(String, String)>,
) -> Result<Json<Revoked>, AppError> {
    org::revoke_device(&state.db, admin.operator(), &id, &device).await?;
    // This node's connections close now; other nodes follow within half a second.
    let closed = state.hub.revoke_device(&id, &device);
    Ok(Json(Revoked { user: id, device, revoked: true, connections_closed: closed }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct Erasure {
    #[schema(pattern = "\\S")]
    reason: String,
    /// Top-level text fields to empty as well.
    #[serde(default)]
    clear: Vec<String>,
}

/// Erases a record's history (see `crate::erasure`). This node drops its copy now and tells
/// the connections following it; other nodes follow at once (PostgreSQL).
#[utoipa::path(post, path = "/v1/admin/records/{id}/erase", tag = "administration", security(("bearer" = [])),
    params(("id" = String, Path, description = "The record's document id or `automerge:` URL")), request_body = Erasure,
    responses((status = 200, body = Erased), (status = 400, body = Problem),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub(super) async fn erase_record(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    JsonBody(erasure): JsonBody<Erasure>,
) -> Result<Json<Erased>, AppError> {
    DocumentId::parse_url_or_id(&id).map_err(|_| AppError::NotFound(format!("no record {id:?}")))?;
    let document = erasure::erase(&state.db, admin.operator(), &id, &erasure.reason, &erasure.clear).await?;
    state.hub.removed(document).await;
    Ok(Json(Erased { url: document.url(), erased: true, cleared: erasure.clear }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct RecordDeletion {
    #[schema(pattern = "\\S")]
    reason: String,
}

/// Deletes a record everywhere (see `crate::retention::delete`), unless a legal hold covers
/// it (409). Devices following it here are told at once; others when they next ask for it.
#[utoipa::path(post, path = "/v1/admin/records/{id}/delete", tag = "administration", security(("bearer" = [])),
    params(("id" = String, Path, description = "The record's document id or `automerge:` URL")), request_body = RecordDeletion,
    responses((status = 200, body = Deleted), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem, description = "Kept under a legal hold")))]
pub(super) async fn delete_record(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    JsonBody(deletion): JsonBody<RecordDeletion>,
) -> Result<Json<Deleted>, AppError> {
    let document = DocumentId::parse_url_or_id(&id).map_err(|_| AppError::NotFound(format!("no record {id:?}")))?;
    let reason = deletion.reason.trim();
    if reason.is_empty() {
        return Err(AppError::BadRequest("give a reason: it is kept in the audit trail and the ledger".into()));
    }
    match crate::retention::delete(&state.db, admin.operator(), document, reason, None).await? {
        DeleteOutcome::Deleted(_) => {
            state.hub.removed(document).await;
            Ok(Json(Deleted { url: document.url(), deleted: true }))
        }
        DeleteOutcome::Held(holds) => {
            Err(AppError::Conflict(format!("{} is kept under legal holds {holds:?}", document.url())))
        }
        DeleteOutcome::NotFound => Err(AppError::NotFound(format!("no record {}", document.url()))),
        DeleteOutcome::NotDiscardable(refusal) => Err(AppError::Conflict(refusal.to_string())),
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct SubjectAccessFormat {
    /// `json` (the default) or `html` (a printable page).
    #[param(pattern = "^(json|html)?$")]
    format: Option<String>,
}

/// Everything held about one person, third parties' content withheld (see
/// `crate::subject_access`); audited.
#[utoipa::path(get, path = "/v1/admin/users/{id}/subject-access", tag = "administration", security(("bearer" = [])),
    params(("id" = String, Path, description = "The user id"), SubjectAccessFormat),
    responses((status = 200, description = "JSON; or a printable `text/html` page", content((Object = "application/json"), (String = "text/html"))),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub(super) async fn subject_access(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    Query(format): Query<SubjectAccessFormat>,
) -> Result<axum::response::Response, AppError> {
    use axum::response::IntoResponse;
    let html = match format.format.as_deref().filter(|f| !f.is_empty()) {
        None | Some("json") => false,
        Some("html") => true,
        Some(other) => return Err(AppError::BadRequest(format!("format must be json or html, not {other:?}"))),
    };
    let export =
        subject_access::export(&state.db, &id).await?.ok_or_else(|| AppError::NotFound(format!("no user {id:?}")))?;
    state.db.audit(admin.operator().event("subject-access-exported", json!({ "user": id }))).await?;
    Ok(if html {
        ([(axum::http::header::CONTENT_TYPE, "text/html; charset=utf-8")], subject_access::html(&export))
            .into_response()
    } else {
        Json(export).into_response()
    })
}

#[utoipa::path(get, path = "/v1/admin/teams", tag = "administration", security(("bearer" = [])),
    responses((status = 200, body = [Team]), (status = 401, body = Problem), (status = 403, body = Problem)))]
pub(super) async fn list_teams(State(state): State<AppState>, _admin: Admin) -> Result<Json<Vec<Team>>, AppError> {
    Ok(Json(state.db.teams().await?))
}

#[utoipa::path(post, path = "/v1/admin/teams", tag = "administration", security(("bearer" = [])), request_body = Team,
    responses((status = 201, body = Team), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 409, body = Problem)))]
pub(super) async fn add_team(
    State(state): State<AppState>,
    admin: Admin,
    JsonBody(team): JsonBody<Team>,
) -> Result<(StatusCode, Json<Team>), AppError> {
    org::add_team(&state.db, admin.operator(), &team).await?;
    Ok((StatusCode::CREATED, Json(team)))
}

/// A whole authority from CSV (columns in the README); all checked before any is written.
#[utoipa::path(post, path = "/v1/admin/import", tag = "administration", security(("bearer" = [])),
    request_body(content = String, content_type = "text/csv", description = "A header line, then one user per line"),
    responses((status = 200, body = ImportReport), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem)))]
pub(super) async fn import(
    State(state): State<AppState>,
    admin: Admin,
    body: String,
) -> Result<Json<ImportReport>, AppError> {
    let report = org::import(&state.db, admin.operator(), &body).await.map_err(|e| match e {
        ImportError::Invalid(_) => AppError::BadRequest(e.to_string()),
        ImportError::Storage(e) => e.into(),
    })?;
    Ok(Json(report))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct AuditParams {
    /// Only events by this user id.
    user: Option<String>,
    /// Only events about this record: an `automerge:` URL or document id (anything else
    /// names no record, so nothing is about it).
    record: Option<String>,
    /// RFC 3339 (a date alone means its start, UTC), inclusive.
    #[param(value_type = Option<String>, format = DateTime)]
    since: Option<String>,
    /// RFC 3339 (a date alone means its start, UTC), exclusive.
    #[param(value_type = Option<String>, format = DateTime)]
    until: Option<String>,
    /// Continue after this event id.
    after: Option<i64>,
    limit: Option<i64>,
}

#[utoipa::path(get, path = "/v1/admin/audit", tag = "administration", security(("bearer" = [])), params(AuditParams),
    responses((status = 200, body = [AuditRow]), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem)))]
pub(super) async fn audit_trail(
    State(state): State<AppState>,
    admin: Admin,
    Query(params): Query<AuditParams>,
) -> Result<Json<Vec<AuditRow>>, AppError> {
    let query = AuditQuery {
        user_id: params.user.clone(),
        // What is not a document id names no record: nothing is about it.
        document_id: params
            .record
            .as_deref()
            .filter(|r| !r.is_empty())
            .map(|record| crate::admin::document_id(record).unwrap_or_else(|_| format!("not a record: {record}"))),
        since: params.since.as_deref().map(crate::admin::millis).transpose().map_err(AppError::BadRequest)?,
        until: params.until.as_deref().map(crate::admin::millis).transpose().map_err(AppError::BadRequest)?,
        after_id: params.after,
        limit: params.limit.unwrap_or(MAX_AUDIT_ROWS).clamp(1, MAX_AUDIT_ROWS),
    };
    let rows = state.db.audit_trail(&query).await?;
    let read = json!({ "user": params.user, "record": params.record, "rows": rows.len() });
    state.db.audit(admin.operator().event("audit-read", read)).await?;
    Ok(Json(rows))
}

/// A user with their supervision history and devices.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(super) struct UserDetails {
    user: User,
    supervision: Vec<Supervision>,
    devices: Vec<Device>,
}

/// A device revoked.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct Revoked {
    user: String,
    device: String,
    revoked: bool,
    /// Its sync connections this node closed (other nodes close theirs within half a second).
    connections_closed: usize,
}

/// A record's history erased.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(super) struct Erased {
    url: String,
    erased: bool,
    /// The top-level text fields emptied too.
    cleared: Vec<String>,
}

/// A record deleted everywhere.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(super) struct Deleted {
    url: String,
    deleted: bool,
}
