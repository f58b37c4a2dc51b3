//! The REST API beside sync: each user's record index, and administration.

mod admin;
mod records;

use axum::Router;

use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().merge(records::routes()).merge(admin::routes())
}
