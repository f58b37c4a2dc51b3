//! The REST API beside sync: each user's record index, people and frameworks for apps, their
//! own CPD record,
//! administration, and the minimised development-records API for HR and workforce
//! systems (`/v1/api`).

mod admin;
mod body;
mod caller;
mod expertise;
mod feed;
mod frameworks;
mod hr;
mod insights;
mod me;
mod openapi;
mod people;
pub mod rate_limit;
mod records;

use axum::Router;

use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .merge(records::routes())
        .merge(people::routes())
        .merge(frameworks::routes())
        .merge(admin::routes())
        .merge(hr::routes())
        .merge(feed::routes())
        .merge(insights::routes())
        .merge(me::routes())
        .merge(expertise::routes())
        .merge(openapi::routes())
}
