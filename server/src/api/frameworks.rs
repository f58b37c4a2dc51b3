//! `GET /v1/frameworks`: the competency frameworks as imported (areas and current
//! components), and `GET /v1/resources`: the research resources goals cite (retired ones
//! marked), so an app can offer both offline once fetched.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use fieldbook_sync_core::frameworks::Framework;
use serde::Serialize;

use crate::auth::Authenticated;
use crate::error::AppError;
use crate::state::AppState;
use crate::storage::StoredResource;

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/v1/frameworks", get(frameworks)).route("/v1/resources", get(resources))
}

#[derive(Serialize)]
struct Frameworks {
    frameworks: Vec<Framework>,
}

async fn frameworks(State(state): State<AppState>, _auth: Authenticated) -> Result<Json<Frameworks>, AppError> {
    Ok(Json(Frameworks { frameworks: state.db.framework_definitions().await? }))
}

#[derive(Serialize)]
struct Resources {
    resources: Vec<StoredResource>,
}

async fn resources(State(state): State<AppState>, _auth: Authenticated) -> Result<Json<Resources>, AppError> {
    Ok(Json(Resources { resources: state.db.resources().await? }))
}
