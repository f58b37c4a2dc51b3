//! `/v1/api/…`: the minimised development record for HR and workforce systems. Dates,
//! statuses, component ids and counts, never narrative and never anything about a family
//! (DOMAIN.md "What HR and leaders get").

use std::collections::HashMap;

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
use super::problem::Problem;
use crate::state::AppState;
use crate::storage::{Database, DevelopmentRecord, Practitioner, Scope, User};

const DEFAULT_PAGE: usize = 100;
const MAX_PAGE: usize = 1000;
/// People read per round trip while streaming CSV.
const CSV_CHUNK: usize = 200;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/api/practitioners", get(list_practitioners))
        .route("/v1/api/practitioners/{id}/development-record", get(development_record))
        .route("/v1/api/development-records", get(development_records))
}

/// The people development records are kept for (not HR or admins).
fn is_practitioner(user: &User) -> bool {
    user.role.works_with_records()
}

/// What records are built from, loaded once per request.
struct Directory {
    users: HashMap<String, User>,
    supervisors: HashMap<String, String>,
}

impl Directory {
    async fn load(db: &Database) -> Result<Self, Problem> {
        let users = db.users().await?.into_iter().map(|u| (u.id.clone(), u)).collect();
        Ok(Directory { users, supervisors: db.current_supervisors().await? })
    }

    fn practitioner(&self, user: &User) -> Practitioner {
        Practitioner {
            id: user.id.clone(),
            employee_number: user.employee_number.clone(),
            registration_number: user.registration_number.clone(),
            role: user.role.as_str().to_owned(),
            team: user.team_id.clone(),
            line_manager: self.supervisors.get(&user.id).cloned(),
        }
    }

    /// Sorted by id; `after` and `team` as the paging parameters say.
    fn practitioners(&self, after: Option<&str>, team: Option<&str>) -> Vec<&User> {
        let mut people: Vec<&User> = self
            .users
            .values()
            .filter(|u| is_practitioner(u))
            .filter(|u| after.is_none_or(|a| u.id.as_str() > a))
            .filter(|u| team.is_none_or(|t| u.team_id.as_deref() == Some(t)))
            .collect();
        people.sort_by(|a, b| a.id.cmp(&b.id));
        people
    }

    async fn records(&self, db: &Database, people: &[&User]) -> Result<Vec<DevelopmentRecord>, Problem> {
        Ok(db.minimised_records(people, &self.supervisors).await?)
    }
}

async fn list_practitioners(State(state): State<AppState>, caller: Caller) -> Result<Json<Vec<Practitioner>>, Problem> {
    caller.require(Scope::HrRead)?;
    let directory = Directory::load(&state.db).await?;
    let people: Vec<Practitioner> =
        directory.practitioners(None, None).into_iter().map(|u| directory.practitioner(u)).collect();
    state.audit.record(caller.event("api.practitioners-read", json!({ "count": people.len() }))).await;
    Ok(Json(people))
}

async fn development_record(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    caller.require(Scope::HrRead)?;
    let directory = Directory::load(&state.db).await?;
    let user = directory
        .users
        .get(&id)
        .filter(|u| is_practitioner(u))
        .ok_or_else(|| Problem::not_found(format!("no practitioner {id:?}")))?;
    let record = directory.records(&state.db, &[user]).await?.remove(0);
    let body =
        serde_json::to_vec(&record).map_err(|e| Problem::from(crate::error::AppError::BadRequest(e.to_string())))?;
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PageQuery {
    team: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
    format: Option<String>,
}

/// Opaque to clients: the id of the last practitioner on the previous page. Ids never
/// change, so paging is stable while records are written.
fn decode_cursor(cursor: &str) -> Result<String, Problem> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| Problem::bad_parameter("cursor", "not a cursor this API returned"))
}

async fn development_records(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    caller.require(Scope::HrRead)?;
    let Query(query) = query.map_err(|e| Problem::bad_parameter("query", e.body_text()))?;
    let limit = match query.limit.as_deref() {
        None => DEFAULT_PAGE,
        Some(text) => match text.parse::<usize>() {
            Ok(n) if (1..=MAX_PAGE).contains(&n) => n,
            _ => return Err(Problem::bad_parameter("limit", format!("limit must be a number from 1 to {MAX_PAGE}"))),
        },
    };
    let after = query.cursor.as_deref().map(decode_cursor).transpose()?;
    let wants_csv = match query.format.as_deref() {
        Some("csv") => true,
        Some("json") => false,
        Some(other) => return Err(Problem::bad_parameter("format", format!("format {other:?}: use json or csv"))),
        None => headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("text/csv")),
    };
    let directory = Directory::load(&state.db).await?;
    if wants_csv {
        let people: Vec<User> =
            directory.practitioners(after.as_deref(), query.team.as_deref()).into_iter().cloned().collect();
        state
            .audit
            .record(caller.event(
                "api.development-records-exported",
                json!({ "format": "csv", "count": people.len(), "team": query.team }),
            ))
            .await;
        return Ok(csv_stream(state.db.clone(), directory, people));
    }
    let page: Vec<&User> =
        directory.practitioners(after.as_deref(), query.team.as_deref()).into_iter().take(limit + 1).collect();
    let more = page.len() > limit;
    let records = directory.records(&state.db, &page[..page.len().min(limit)]).await?;
    let next =
        more.then(|| URL_SAFE_NO_PAD.encode(records.last().map(|r| r.practitioner.id.as_str()).unwrap_or_default()));
    state
        .audit
        .record(caller.event("api.development-records-read", json!({ "count": records.len(), "team": query.team })))
        .await;
    Ok(Json(json!({ "records": records, "nextCursor": next })).into_response())
}

const CSV_HEADER: &str = "practitioner_id,employee_number,registration_number,role,team,line_manager,observations,observations_signed_off,last_observed_at,plans,goals,goals_met,goals_in_progress,components_evidenced\n";

/// Streams one CSV row per practitioner, reading records a chunk at a time, so memory
/// stays flat however many there are.
fn csv_stream(db: Database, directory: Directory, people: Vec<User>) -> Response {
    let directory = std::sync::Arc::new(directory);
    let chunks: Vec<Vec<User>> = people.chunks(CSV_CHUNK).map(<[User]>::to_vec).collect();
    let header = futures_util::stream::once(async { Ok::<_, std::io::Error>(CSV_HEADER.as_bytes().to_vec()) });
    let rows = futures_util::stream::iter(chunks).then(move |chunk| {
        let (db, directory) = (db.clone(), directory.clone());
        async move {
            let people: Vec<&User> = chunk.iter().collect();
            let records =
                directory.records(&db, &people).await.map_err(|p| std::io::Error::other(format!("{p:?}")))?;
            let mut out = Vec::new();
            for record in &records {
                csv_row(&mut out, record)?;
            }
            Ok::<_, std::io::Error>(out)
        }
    });
    let body = Body::from_stream(header.chain(rows));
    ([(header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8"))], body).into_response()
}

fn csv_row(out: &mut Vec<u8>, record: &DevelopmentRecord) -> std::io::Result<()> {
    let p = &record.practitioner;
    let goals: Vec<_> = record.plans.iter().flat_map(|plan| &plan.goals).collect();
    let mut evidenced: Vec<&str> =
        record.observations.iter().flat_map(|o| o.components_evidenced.iter().map(String::as_str)).collect();
    evidenced.sort_unstable();
    evidenced.dedup();
    let last_observed = record.observations.iter().filter_map(|o| o.observed_at.as_deref()).max();
    let count = |status: &str| goals.iter().filter(|g| g.status == status).count().to_string();
    let mut writer = csv::Writer::from_writer(out);
    writer.write_record([
        p.id.as_str(),
        p.employee_number.as_deref().unwrap_or(""),
        p.registration_number.as_deref().unwrap_or(""),
        p.role.as_str(),
        p.team.as_deref().unwrap_or(""),
        p.line_manager.as_deref().unwrap_or(""),
        &record.counts.observations.to_string(),
        &record.counts.observations_signed_off.to_string(),
        last_observed.unwrap_or(""),
        &record.counts.plans.to_string(),
        &goals.len().to_string(),
        &count("met"),
        &count("in-progress"),
        &evidenced.join(";"),
    ])?;
    writer.flush()
}
