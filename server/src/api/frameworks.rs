//! `GET /v1/frameworks`: the competency frameworks as imported (areas and current
//! components), so an app can offer them offline once fetched.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use fieldbook_sync_core::frameworks::Framework;
use serde::Serialize;

use crate::auth::Authenticated;
use crate::error::AppError;
use crate::state::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/v1/frameworks", get(frameworks))
}

#[derive(Serialize)]
struct Frameworks {
    frameworks: Vec<Framework>,
}

async fn frameworks(State(state): State<AppState>, _auth: Authenticated) -> Result<Json<Frameworks>, AppError> {
    Ok(Json(Frameworks { frameworks: state.db.framework_definitions().await? }))
}
