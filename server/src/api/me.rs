//! `GET /v1/me/cpd`: the signed-in person's own CPD record for one registration year, as
//! JSON or CSV (see `crate::cpd`). Their own only: HR, admins and systems are refused.

use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use fieldbook_sync_core::records::dates;
use serde::Deserialize;
use serde_json::json;

use super::caller::Caller;
use crate::cpd::{self, CpdRecord, RegistrationYear};
use crate::error::{AppError, Problem};
use crate::state::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/v1/me/cpd", get(cpd_record))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct CpdQuery {
    /// The registration year, by the year it ends in (30 November), 2000 to 2100; this one by
    /// default.
    #[param(value_type = Option<i32>, minimum = 2000, maximum = 2100)]
    year: Option<String>,
    /// `json` (the default) or `csv`.
    #[param(pattern = "^(json|csv)$")]
    format: Option<String>,
}

/// The signed-in person's own CPD record for one registration year.
#[utoipa::path(get, path = "/v1/me/cpd", tag = "people", security(("bearer" = [])), params(CpdQuery),
    responses((status = 200, description = "JSON; or `text/csv` with `format=csv`",
            content((CpdRecord = "application/json"), (String = "text/csv"))),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem), (status = 429, body = Problem)))]
pub(super) async fn cpd_record(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<CpdQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, AppError> {
    let Caller::Person(person) = &caller else {
        return Err(AppError::Forbidden("a CPD record is its person's own: sign in as them".into()));
    };
    if !person.user.role.works_with_records() {
        return Err(AppError::Forbidden(format!("the {} role keeps no CPD record here", person.user.role)));
    }
    let Query(q) = query.map_err(|e| AppError::bad_parameter("query", e.body_text()))?;
    let year = match q.year.as_deref() {
        None => RegistrationYear::of(&dates::today()).unwrap_or(2000),
        Some(y) => y
            .parse::<i32>()
            .ok()
            .filter(|y| (2000..=2100).contains(y))
            .ok_or_else(|| AppError::bad_parameter("year", "year must be a year from 2000 to 2100, e.g. 2026"))?,
    };
    let csv = match q.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(_) => return Err(AppError::bad_parameter("format", "format is json or csv")),
    };
    let record = cpd::record(&state.db, &person.user.id, year).await?;
    state.audit.record(caller.event("cpd-read", json!({ "year": year, "entries": record.entries.len() }))).await;
    if csv {
        let body = cpd::csv(&record).map_err(|e| AppError::Internal(e.to_string()))?;
        let file = format!("attachment; filename=\"cpd-{}-{year}.csv\"", person.user.id);
        return Ok((
            [(header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()), (header::CONTENT_DISPOSITION, file)],
            body,
        )
            .into_response());
    }
    Ok(Json(record).into_response())
}
