//! The expertise map: `GET /v1/expertise?component=ID` (who can help with …?), practice
//! champions' self-nominations (`POST /v1/me/champion-nominations`) and their confirmation
//! by a manager above the person or a principal social worker (`GET /v1/champions/nominations`,
//! `POST /v1/champions/confirm`). Evidence is counts of signed-off judgements and met goals,
//! never narrative; practitioners see declared champions only.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use fieldbook_sync_core::access::{Role, Viewer};
use fieldbook_sync_core::records::dates;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::body::JsonBody;
use crate::auth::Authenticated;
use crate::error::{AppError, Problem};
use crate::expertise::known_component;
use crate::state::AppState;
use crate::storage::AuditEvent;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/expertise", get(expertise))
        .route("/v1/me/champion-nominations", post(nominate))
        .route("/v1/champions/nominations", get(nominations))
        .route("/v1/champions/confirm", post(confirm))
}

/// Supervisors, managers and principal social workers see the evidence.
fn sees_evidence(role: Role) -> bool {
    matches!(role, Role::Supervisor | Role::Manager | Role::PrincipalSocialWorker)
}

fn works_with_records(auth: &Authenticated) -> Result<(), AppError> {
    if auth.user.role.works_with_records() {
        Ok(())
    } else {
        Err(AppError::Forbidden(format!("the {} role has no part in the expertise map", auth.user.role)))
    }
}

async fn component_param(state: &AppState, component: Option<String>) -> Result<String, AppError> {
    let component = component.filter(|c| !c.is_empty()).ok_or_else(|| {
        AppError::bad_parameter("component", "give a framework area or component id, e.g. kss-cf-2018/6")
    })?;
    // Named but not there, as a person or team named in a body that does not exist is.
    if !known_component(&state.db, &component).await? {
        return Err(AppError::NotFound(format!("{component:?} is not an area or component of an imported framework")));
    }
    Ok(component)
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct ExpertiseQuery {
    /// A framework area or component id, e.g. `kss-cf-2018/6` (required).
    #[param(required = true, min_length = 1)]
    component: Option<String>,
}

/// Who can help with a framework area or component.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct Expertise {
    component: String,
    people: Vec<Expert>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct Expert {
    user_id: String,
    name: String,
    team: Option<String>,
    /// For leaders; absent for practitioners.
    #[serde(skip_serializing_if = "Option::is_none")]
    evidence: Option<Evidence>,
    champion: bool,
    /// Nominated themself, awaiting confirmation (leaders only).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    nominated: bool,
}

/// Who can help with a framework area or component: practice champions, and for leaders the
/// evidence (counts of signed-off judgements and met goals).
#[utoipa::path(get, path = "/v1/expertise", tag = "expertise", security(("bearer" = [])), params(ExpertiseQuery),
    responses((status = 200, body = Expertise),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem, description = "No such framework area or component")))]
pub(super) async fn expertise(
    State(state): State<AppState>,
    auth: Authenticated,
    query: Result<Query<ExpertiseQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Expertise>, AppError> {
    works_with_records(&auth)?;
    let Query(q) = query.map_err(|e| AppError::bad_parameter("query", e.body_text()))?;
    let component = component_param(&state, q.component).await?;
    let leader = sees_evidence(auth.user.role);
    let people: Vec<Expert> = state
        .db
        .expertise(&component)
        .await?
        .into_iter()
        .filter(|e| leader || e.champion)
        .map(|e| Expert {
            user_id: e.user.id,
            name: e.user.name,
            team: e.user.team_id,
            evidence: leader.then_some(Evidence { observations_met: e.observations_met, goals_met: e.goals_met }),
            champion: e.champion,
            nominated: leader && e.nominated,
        })
        .collect();
    let event = AuditEvent::new("expertise-read")
        .by(&auth.user.id, auth.device.as_deref())
        .detail(json!({ "component": component, "people": people.len() }));
    state.audit.record(event).await;
    Ok(Json(Expertise { component, people }))
}

/// Counts, never narrative: judgements of "met" in observations signed off by both, and plan
/// goals met, on the area or component.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct Evidence {
    observations_met: i64,
    goals_met: i64,
}

/// A practice champion, nominated or confirmed.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct Champion {
    user_id: String,
    component: String,
    /// `nominated` or `confirmed`.
    status: &'static str,
}

/// A nomination awaiting confirmation.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct Nomination {
    user_id: String,
    name: Option<String>,
    component: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct Nominations {
    nominations: Vec<Nomination>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ComponentBody {
    /// A framework area or component id, e.g. `kss-cf-2018/6`.
    #[schema(min_length = 1)]
    component: String,
}

/// The signed-in person nominates themself as a practice champion for an area or component.
#[utoipa::path(post, path = "/v1/me/champion-nominations", tag = "expertise", security(("bearer" = [])), request_body = ComponentBody,
    responses((status = 201, body = Champion), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem, description = "No such framework area or component"),
        (status = 409, body = Problem)))]
pub(super) async fn nominate(
    State(state): State<AppState>,
    auth: Authenticated,
    JsonBody(body): JsonBody<ComponentBody>,
) -> Result<(StatusCode, Json<Champion>), AppError> {
    works_with_records(&auth)?;
    let component = component_param(&state, Some(body.component)).await?;
    if !state.db.nominate_champion(&auth.user.id, &component, &auth.user.id).await? {
        return Err(AppError::Conflict(format!("you are already a champion or nominated for {component}")));
    }
    let event = AuditEvent::new("champion-nominated")
        .by(&auth.user.id, auth.device.as_deref())
        .detail(json!({ "component": component }));
    state.audit.record(event).await;
    Ok((StatusCode::CREATED, Json(Champion { user_id: auth.user.id, component, status: "nominated" })))
}

/// Whether the viewer may confirm `user_id`'s nomination: a manager above them now, or a
/// principal social worker.
fn confirms_for(viewer: &Viewer, user_id: &str) -> bool {
    viewer.role == Role::PrincipalSocialWorker
        || (viewer.role == Role::Manager && viewer.supervises_now(user_id, &dates::today()))
}

/// Nominations the signed-in manager or principal social worker may confirm.
#[utoipa::path(get, path = "/v1/champions/nominations", tag = "expertise", security(("bearer" = [])),
    responses((status = 200, body = Nominations), (status = 401, body = Problem)))]
pub(super) async fn nominations(
    State(state): State<AppState>,
    auth: Authenticated,
) -> Result<Json<Nominations>, AppError> {
    let viewer = state.db.viewer(&auth.user).await?;
    let mut pending = Vec::new();
    for champion in state.db.champions().await? {
        if champion.status == "nominated" && confirms_for(&viewer, &champion.user_id) {
            let name = state.db.user(&champion.user_id).await?.map(|u| u.name);
            pending.push(Nomination { user_id: champion.user_id, name, component: champion.component_id });
        }
    }
    Ok(Json(Nominations { nominations: pending }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct ConfirmBody {
    user_id: String,
    component: String,
}

/// Confirms a nomination (a manager above the person, or a principal social worker).
#[utoipa::path(post, path = "/v1/champions/confirm", tag = "expertise", security(("bearer" = [])), request_body = ConfirmBody,
    responses((status = 200, body = Champion), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem)))]
pub(super) async fn confirm(
    State(state): State<AppState>,
    auth: Authenticated,
    JsonBody(body): JsonBody<ConfirmBody>,
) -> Result<Json<Champion>, AppError> {
    let viewer = state.db.viewer(&auth.user).await?;
    if !confirms_for(&viewer, &body.user_id) {
        return Err(AppError::Forbidden(
            "only a manager above them or a principal social worker confirms a champion".into(),
        ));
    }
    let nominated = state
        .db
        .champions()
        .await?
        .into_iter()
        .any(|c| c.user_id == body.user_id && c.component_id == body.component && c.status == "nominated");
    if !nominated {
        return Err(AppError::NotFound(format!("{} has no nomination for {}", body.user_id, body.component)));
    }
    state.db.confirm_champion(&body.user_id, &body.component, &auth.user.id).await?;
    let event = AuditEvent::new("champion-declared")
        .by(&auth.user.id, auth.device.as_deref())
        .detail(json!({ "user": body.user_id, "component": body.component }));
    state.audit.record(event).await;
    Ok(Json(Champion { user_id: body.user_id, component: body.component, status: "confirmed" }))
}
