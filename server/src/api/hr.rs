//! `/v1/api/…`: the minimised development record for HR and workforce systems. Dates,
//! statuses, component ids and counts, never narrative and never anything about a family
//! (DOMAIN.md "What HR and leaders get").

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::json;

use super::caller::Caller;
use crate::error::{AppError, Problem};
use crate::state::AppState;
use crate::storage::{Database, DevelopmentRecord, Practitioner, RecordSummary, Scope, User};

const DEFAULT_PAGE: usize = 100;
const MAX_PAGE: usize = 1000;
/// People summarised per step while streaming CSV.
const CSV_CHUNK: usize = 500;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/api/practitioners", get(list_practitioners))
        .route("/v1/api/practitioners/{id}/development-record", get(development_record))
        .route("/v1/api/development-records", get(development_records))
}

/// The minimised records of `people`, with their line managers.
async fn records(db: &Database, people: &[User]) -> Result<Vec<DevelopmentRecord>, AppError> {
    let ids: Vec<&str> = people.iter().map(|u| u.id.as_str()).collect();
    let line_managers = db.supervisors_of(&ids).await?;
    let people: Vec<&User> = people.iter().collect();
    Ok(db.minimised_records(&people, &line_managers).await?)
}

/// Everyone development records are kept for, with identity.
#[utoipa::path(get, path = "/v1/api/practitioners", tag = "development records", security(("bearer" = ["hr:read"])),
    responses((status = 200, body = [Practitioner]), (status = 401, body = Problem), (status = 403, body = Problem), (status = 429, body = Problem)))]
pub(super) async fn list_practitioners(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<Practitioner>>, AppError> {
    caller.require(Scope::HrRead)?;
    let people = state.db.practitioners_after(None, None, None, usize::MAX >> 1).await?;
    let ids: Vec<&str> = people.iter().map(|u| u.id.as_str()).collect();
    let line_managers = state.db.supervisors_of(&ids).await?;
    let people: Vec<Practitioner> = people.iter().map(|u| Practitioner::of(u, &line_managers)).collect();
    state.audit.record(caller.event("api.practitioners-read", json!({ "count": people.len() }))).await;
    Ok(Json(people))
}

/// One practitioner's minimised development record.
#[utoipa::path(get, path = "/v1/api/practitioners/{id}/development-record", tag = "development records",
    security(("bearer" = ["hr:read"])), params(("id" = String, Path, description = "The practitioner's user id")),
    responses((status = 200, body = DevelopmentRecord, description = "With an `ETag`"), (status = 304, description = "`If-None-Match` matched"),
        (status = 404, body = Problem), (status = 403, body = Problem)))]
pub(super) async fn development_record(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    caller.require(Scope::HrRead)?;
    let user = state
        .db
        .user(&id)
        .await?
        .filter(|u| u.role.works_with_records())
        .ok_or_else(|| AppError::NotFound(format!("no practitioner {id:?}")))?;
    let record = records(&state.db, &[user]).await?.remove(0);
    let body = serde_json::to_vec(&record).map_err(|e| AppError::Internal(e.to_string()))?;
    state.audit.record(caller.event("api.development-record-read", json!({ "practitioner": id }))).await;
    // A strong validator of exactly these bytes: a client holding them gets 304.
    let etag = format!("\"{}\"", &crate::auth::tokens::secret_hash(&String::from_utf8_lossy(&body))[..32]);
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|tag| tag.trim() == etag || tag.trim() == "*"));
    let etag_header = HeaderValue::from_str(&etag).expect("hex ETag is a valid header");
    if matches {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, etag_header)]).into_response());
    }
    Ok(([(header::CONTENT_TYPE, HeaderValue::from_static("application/json")), (header::ETAG, etag_header)], body)
        .into_response())
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct PageQuery {
    /// Only this team.
    team: Option<String>,
    /// RFC 3339 (a date alone means its start, UTC): only practitioners whose records changed
    /// since then.
    #[param(value_type = Option<String>, format = DateTime)]
    updated_since: Option<String>,
    /// Records per page, 1–1000 (default 100).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 1000)]
    limit: Option<String>,
    /// `nextCursor` of the previous page.
    #[param(pattern = "^([A-Za-z0-9_-]{4})*([A-Za-z0-9_-]{2,3})?$")]
    cursor: Option<String>,
    /// `json` (default) or `csv` (or send `Accept: text/csv`).
    #[param(value_type = Option<String>, pattern = "^(json|csv)$")]
    format: Option<String>,
}

/// A page of development records.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct RecordsPage {
    records: Vec<DevelopmentRecord>,
    /// Pass as `cursor` for the next page; absent on the last.
    next_cursor: Option<String>,
}

/// Opaque to clients: the id of the last practitioner on the previous page. Ids never
/// change, so paging is stable while records are written.
fn decode_cursor(cursor: &str) -> Result<String, AppError> {
    // Any base64url text is a position in id order (the schema's pattern says which text).
    const LENIENT: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
        &base64::alphabet::URL_SAFE,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent)
            .with_decode_allow_trailing_bits(true),
    );
    LENIENT
        .decode(cursor)
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .map_err(|_| AppError::bad_parameter("cursor", "not a cursor this API returned"))
}

/// Development records, paged; or all of them as CSV, streamed.
#[utoipa::path(get, path = "/v1/api/development-records", tag = "development records", security(("bearer" = ["hr:read"])),
    params(PageQuery),
    responses((status = 200, description = "JSON; or `text/csv`, one line per practitioner",
            content((RecordsPage = "application/json"), (String = "text/csv"))),
        (status = 400, body = Problem), (status = 403, body = Problem), (status = 429, body = Problem)))]
pub(super) async fn development_records(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    caller.require(Scope::HrRead)?;
    let Query(query) = query.map_err(|e| AppError::bad_parameter("query", e.body_text()))?;
    let limit = match query.limit.as_deref() {
        None => DEFAULT_PAGE,
        Some(text) => match text.parse::<usize>() {
            Ok(n) if (1..=MAX_PAGE).contains(&n) => n,
            _ => return Err(AppError::bad_parameter("limit", format!("limit must be a number from 1 to {MAX_PAGE}"))),
        },
    };
    let after = query.cursor.as_deref().map(decode_cursor).transpose()?;
    let since = query
        .updated_since
        .as_deref()
        .map(|s| {
            fieldbook_sync_core::records::dates::unix_millis(s).ok_or_else(|| {
                AppError::bad_parameter("updated_since", "updated_since must be an RFC 3339 date or date-time")
            })
        })
        .transpose()?;
    let wants_csv = match query.format.as_deref() {
        Some("csv") => true,
        Some("json") => false,
        Some(other) => return Err(AppError::bad_parameter("format", format!("format {other:?}: use json or csv"))),
        None => headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("text/csv")),
    };
    if wants_csv {
        let event = json!({ "format": "csv", "after": after, "team": query.team });
        state.audit.record(caller.event("api.development-records-exported", event)).await;
        return Ok(csv_stream(state.db.clone(), after, query.team.clone(), since));
    }
    let mut page = state.db.practitioners_after(after.as_deref(), query.team.as_deref(), since, limit + 1).await?;
    let more = page.len() > limit;
    page.truncate(limit);
    let records = records(&state.db, &page).await?;
    let next =
        more.then(|| URL_SAFE_NO_PAD.encode(records.last().map(|r| r.practitioner.id.as_str()).unwrap_or_default()));
    state
        .audit
        .record(caller.event("api.development-records-read", json!({ "count": records.len(), "team": query.team })))
        .await;
    Ok(Json(RecordsPage { records, next_cursor: next }).into_response())
}

const CSV_HEADER: &str = "practitioner_id,employee_number,registration_number,role,team,line_manager,observations,observations_signed_off,last_observed_at,plans,goals,goals_met,goals_in_progress,components_evidenced\n";

/// Streams one CSV row per practitioner, a page of people at a time (read, summarised,
/// written, dropped), so memory stays flat however many there are.
fn csv_stream(db: Database, after: Option<String>, team: Option<String>, since: Option<i64>) -> Response {
    let header = futures_util::stream::once(async { Ok::<_, std::io::Error>(CSV_HEADER.as_bytes().to_vec()) });
    let rows = futures_util::stream::try_unfold(Some(after), move |position| {
        let (db, team) = (db.clone(), team.clone());
        async move {
            let Some(after) = position else { return Ok(None) };
            let io = |e: crate::storage::StorageError| std::io::Error::other(e.to_string());
            let people =
                db.practitioners_after(after.as_deref(), team.as_deref(), since, CSV_CHUNK).await.map_err(io)?;
            let Some(last) = people.last().map(|u| u.id.clone()) else { return Ok(None) };
            let ids: Vec<&str> = people.iter().map(|u| u.id.as_str()).collect();
            let line_managers = db.supervisors_of(&ids).await.map_err(io)?;
            let refs: Vec<&User> = people.iter().collect();
            let summaries = db.record_summaries(&refs, &line_managers).await.map_err(io)?;
            let mut out = Vec::new();
            for summary in &summaries {
                csv_row(&mut out, summary)?;
            }
            let next = (people.len() == CSV_CHUNK).then_some(Some(last));
            Ok(Some((out, next)))
        }
    });
    let body = Body::from_stream(header.chain(rows));
    ([(header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8"))], body).into_response()
}

fn csv_row(out: &mut Vec<u8>, s: &RecordSummary) -> std::io::Result<()> {
    let Some(p) = &s.practitioner else { return Ok(()) };
    let mut writer = csv::Writer::from_writer(out);
    writer.write_record([
        p.id.as_str(),
        p.employee_number.as_deref().unwrap_or(""),
        p.registration_number.as_deref().unwrap_or(""),
        p.role.as_str(),
        p.team.as_deref().unwrap_or(""),
        p.line_manager.as_deref().unwrap_or(""),
        &s.observations.to_string(),
        &s.observations_signed_off.to_string(),
        s.last_observed_at.as_deref().unwrap_or(""),
        &s.plans.to_string(),
        &s.goals.to_string(),
        &s.goals_met.to_string(),
        &s.goals_in_progress.to_string(),
        &s.components_evidenced.join(";"),
    ])?;
    writer.flush()
}
