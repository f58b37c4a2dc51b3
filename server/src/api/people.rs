//! `GET /v1/people`: whom the signed-in user supervises and who supervises them, by name,
//! so an app can offer "observe Pat" and show whose feedback is whose.

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use fieldbook_sync_core::records::dates;
use serde::Serialize;

use crate::auth::Authenticated;
use crate::error::{AppError, Problem};
use crate::state::AppState;
use crate::storage::{AuditEvent, Role, User};

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/v1/people", get(people)).route("/v1/people/{id}/asye", get(asye))
}

/// `GET /v1/people/{id}/asye`: ASYE progress (see `crate::asye`), for the person, their line
/// of supervision now and principal social workers.
#[utoipa::path(get, path = "/v1/people/{id}/asye", tag = "people", security(("bearer" = [])),
    params(("id" = String, Path, description = "The newly qualified social worker's user id")),
    responses((status = 200, body = Object, description = "Their ASYE progress by framework area"),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub(super) async fn asye(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, AppError> {
    let viewer = state.db.viewer(&auth.user).await?;
    let allowed = viewer.role.works_with_records()
        && (id == auth.user.id
            || viewer.role == Role::PrincipalSocialWorker
            || viewer.supervises_now(&id, &dates::today()));
    if !allowed {
        return Err(AppError::Forbidden(
            "ASYE progress is for the person, their line and principal social workers".into(),
        ));
    }
    let progress = crate::asye::progress(&state.db, &id).await?;
    let event = AuditEvent::new("asye-progress-read")
        .by(&auth.user.id, auth.device.as_deref())
        .detail(serde_json::json!({ "about": id }));
    state.audit.record(event).await;
    Ok(Json(progress))
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct Person {
    id: String,
    name: String,
    role: String,
    team_id: Option<String>,
}

impl From<User> for Person {
    fn from(user: User) -> Self {
        Self { id: user.id, name: user.name, role: user.role.to_string(), team_id: user.team_id }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct People {
    supervisees: Vec<Person>,
    supervisors: Vec<Person>,
}

/// Whom the signed-in user supervises today, and who supervises them, with names.
#[utoipa::path(get, path = "/v1/people", tag = "people", security(("bearer" = [])),
    responses((status = 200, body = People), (status = 401, body = Problem)))]
pub(super) async fn people(State(state): State<AppState>, auth: Authenticated) -> Result<Json<People>, AppError> {
    let (supervisees, supervisors) = state.db.supervision_on(&auth.user.id, &dates::today()).await?;
    Ok(Json(People {
        supervisees: supervisees.into_iter().map(Person::from).collect(),
        supervisors: supervisors.into_iter().map(Person::from).collect(),
    }))
}
