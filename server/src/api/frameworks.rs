//! `GET /v1/frameworks`: the competency frameworks as imported (areas and current
//! components), and `GET /v1/resources`: the research resources goals cite (retired ones
//! marked), so an app can offer both offline once fetched.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use fieldbook_sync_core::frameworks::Framework;
use serde::Serialize;

use crate::auth::Authenticated;
use crate::error::{AppError, Problem};
use crate::state::AppState;
use crate::storage::StoredResource;

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/v1/frameworks", get(frameworks)).route("/v1/resources", get(resources))
}

#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct Frameworks {
    /// Each `{id, title, version, areas: [{id, number, title, components: [{id, title}]}]}`.
    #[schema(value_type = Vec<Object>)]
    frameworks: Vec<Framework>,
}

/// The competency frameworks as imported: areas and current components.
#[utoipa::path(get, path = "/v1/frameworks", tag = "frameworks", security(("bearer" = [])),
    responses((status = 200, body = Frameworks), (status = 401, body = Problem)))]
pub(super) async fn frameworks(
    State(state): State<AppState>,
    _auth: Authenticated,
) -> Result<Json<Frameworks>, AppError> {
    Ok(Json(Frameworks { frameworks: state.db.framework_definitions().await? }))
}

#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct Resources {
    /// Each `{id, title, url, publisher, components, summary?, addedAt, source, retired}`.
    #[schema(value_type = Vec<Object>)]
    resources: Vec<StoredResource>,
}

/// The research resources plan goals cite, retired ones marked.
#[utoipa::path(get, path = "/v1/resources", tag = "frameworks", security(("bearer" = [])),
    responses((status = 200, body = Resources), (status = 401, body = Problem)))]
pub(super) async fn resources(
    State(state): State<AppState>,
    _auth: Authenticated,
) -> Result<Json<Resources>, AppError> {
    Ok(Json(Resources { resources: state.db.resources().await? }))
}
