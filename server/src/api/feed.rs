//! `/v1/api/feed` and `/v1/api/xapi/statements`: record-level events in commit order, as a
//! replayable feed (a consumer keeps the last `seq` and asks for what came after), and the
//! same events as xAPI 1.0.3 statements for learning record stores.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use fieldbook_sync_core::DocumentId;
use fieldbook_sync_core::records::dates;
use serde::Deserialize;
use serde_json::{Value, json};

use super::caller::Caller;
use crate::error::{AppError, Problem};
use crate::state::AppState;
use crate::storage::{FeedEvent, Scope, User};

const DEFAULT_LIMIT: i64 = 500;
const MAX_LIMIT: i64 = 5000;

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/v1/api/feed", get(feed)).route("/v1/api/xapi/statements", get(statements))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct FeedQuery {
    /// The `seq` of the last event you have (0 or absent: from the start).
    #[param(value_type = Option<i64>, minimum = 0)]
    after: Option<String>,
    /// RFC 3339 (a date alone means its start, UTC): only events since then.
    #[param(value_type = Option<String>, format = DateTime)]
    since: Option<String>,
    /// Events per page, 1–5000 (default 500).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 5000)]
    limit: Option<String>,
}

/// One record-level event.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct FeedItem {
    seq: i64,
    /// `observation.created`, `observation.shared`, `observation.signed-off`, `plan.created`,
    /// `plan.status-changed`, `goal.added`, `goal.status-changed`, `goal.removed`,
    /// `group-session.attended` (one per person, when a session closes), and
    /// `observation.deleted`, `plan.deleted`, `group-session.deleted` (retention or data
    /// protection: delete your copy).
    kind: String,
    /// RFC 3339, server time.
    at: String,
    /// The record's `automerge:` URL.
    record: String,
    practitioner_id: String,
    employee_number: Option<String>,
    /// Ids, statuses, component ids: never narrative.
    #[schema(value_type = Object)]
    detail: Value,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub(super) struct FeedPage {
    events: Vec<FeedItem>,
    /// Pass as `after` next time.
    next: i64,
    /// A full page: ask again at once.
    more: bool,
}

/// xAPI 1.0.3 `StatementResult`.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(super) struct StatementResult {
    /// xAPI 1.0.3 statements.
    #[schema(value_type = Vec<Object>)]
    statements: Vec<Value>,
    /// Relative URL of the next page, or empty.
    more: String,
}

struct Page {
    after: i64,
    since: Option<i64>,
    limit: i64,
}

fn page(query: Result<Query<FeedQuery>, axum::extract::rejection::QueryRejection>) -> Result<Page, AppError> {
    let Query(q) = query.map_err(|e| AppError::bad_parameter("query", e.body_text()))?;
    let after = match q.after.as_deref() {
        None => 0,
        Some(a) => a.parse::<i64>().ok().filter(|a| *a >= 0).ok_or_else(|| {
            AppError::bad_parameter("after", "after must be the `seq` of the last event you have (0 for all)")
        })?,
    };
    let since = q
        .since
        .as_deref()
        .map(|s| {
            dates::unix_millis(s)
                .ok_or_else(|| AppError::bad_parameter("since", "since must be an RFC 3339 date or date-time"))
        })
        .transpose()?;
    let limit =
        match q.limit.as_deref() {
            None => DEFAULT_LIMIT,
            Some(l) => l.parse::<i64>().ok().filter(|l| (1..=MAX_LIMIT).contains(l)).ok_or_else(|| {
                AppError::bad_parameter("limit", format!("limit must be a number from 1 to {MAX_LIMIT}"))
            })?,
        };
    Ok(Page { after, since, limit })
}

/// The practitioners a page of events is about.
async fn people(state: &AppState, events: &[FeedEvent]) -> Result<HashMap<String, User>, AppError> {
    let mut ids: Vec<&str> = events.iter().map(|e| e.practitioner_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    Ok(state.db.users_by_id(&ids).await?)
}

/// Record-level events in commit order: keep the last `seq`, ask for what came after.
#[utoipa::path(get, path = "/v1/api/feed", tag = "feed", security(("bearer" = ["hr:read"])), params(FeedQuery),
    responses((status = 200, body = FeedPage), (status = 400, body = Problem), (status = 403, body = Problem)))]
pub(super) async fn feed(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<FeedQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<FeedPage>, AppError> {
    caller.require(Scope::HrRead)?;
    let page = page(query)?;
    let events = state.db.feed(page.after, page.since, page.limit).await?;
    let people = people(&state, &events).await?;
    let next = events.last().map_or(page.after, |e| e.seq);
    let more = events.len() as i64 == page.limit;
    let events: Vec<FeedItem> = events
        .into_iter()
        .map(|e| FeedItem {
            employee_number: people.get(&e.practitioner_id).and_then(|p| p.employee_number.clone()),
            seq: e.seq,
            kind: e.kind,
            at: dates::from_unix_millis(e.at),
            record: e.document_url,
            practitioner_id: e.practitioner_id,
            detail: e.detail,
        })
        .collect();
    state.audit.record(caller.event("api.feed-read", json!({ "after": page.after, "events": events.len() }))).await;
    Ok(Json(FeedPage { events, next, more }))
}

/// The feed's events as xAPI 1.0.3 statements, for learning record stores.
#[utoipa::path(get, path = "/v1/api/xapi/statements", tag = "feed", security(("bearer" = ["hr:read"])), params(FeedQuery),
    responses((status = 200, body = StatementResult), (status = 400, body = Problem), (status = 403, body = Problem)))]
pub(super) async fn statements(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<FeedQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<StatementResult>, AppError> {
    caller.require(Scope::HrRead)?;
    let page = page(query)?;
    let events = state.db.feed(page.after, page.since, page.limit).await?;
    let people = people(&state, &events).await?;
    let base = &state.public_url;
    // A record deleted (retention, data protection) is no learning experience to report.
    let statements: Vec<Value> = events
        .iter()
        .filter(|e| !e.kind.ends_with(".deleted"))
        .map(|e| statement(base, &state.storage_id, &people, e))
        .collect();
    let more = match events.last() {
        Some(last) if events.len() as i64 == page.limit => {
            format!("/v1/api/xapi/statements?after={}&limit={}", last.seq, page.limit)
        }
        _ => String::new(),
    };
    state
        .audit
        .record(caller.event("api.xapi-read", json!({ "after": page.after, "statements": statements.len() })))
        .await;
    Ok(Json(StatementResult { statements, more }))
}

/// One event as an xAPI 1.0.3 statement: the practitioner as an account-based agent keyed
/// by employee number, a verb from the ADL registry, the record as the activity.
fn statement(base: &str, storage_id: &str, people: &HashMap<String, User>, e: &FeedEvent) -> Value {
    let person = people.get(&e.practitioner_id);
    let account_name =
        person.and_then(|p| p.employee_number.clone()).unwrap_or_else(|| format!("fieldbook:{}", e.practitioner_id));
    let to = e.detail["to"].as_str().unwrap_or_default();
    let (verb, display) = match (e.kind.as_str(), to) {
        ("observation.created", _) | ("plan.created", _) => ("initialized", "initialized"),
        ("observation.shared", _) => ("shared", "shared"),
        ("observation.signed-off", _) | ("plan.status-changed", "closed") => ("completed", "completed"),
        ("plan.status-changed", "agreed") | ("goal.added", _) => ("registered", "registered"),
        ("goal.status-changed", "met") => ("passed", "passed"),
        ("goal.status-changed", "not-met") => ("failed", "failed"),
        ("goal.status-changed", "withdrawn") | ("goal.removed", _) => ("terminated", "terminated"),
        ("group-session.attended", _) => ("attended", "attended"),
        _ => ("progressed", "progressed"),
    };
    let document = DocumentId::parse_url_or_id(&e.document_url).map(|d| d.to_string()).unwrap_or_default();
    let is_goal = e.kind.starts_with("goal.");
    let (object_id, activity_type, name) = if is_goal {
        let goal = e.detail["goalId"].as_str().unwrap_or_default();
        (
            format!("{base}/records/{document}/goals/{goal}"),
            "http://adlnet.gov/expapi/activities/objective",
            "Development goal",
        )
    } else if e.kind.starts_with("plan.") {
        (format!("{base}/records/{document}"), "http://adlnet.gov/expapi/activities/course", "Development plan")
    } else if e.kind.starts_with("group-session.") {
        (format!("{base}/records/{document}"), "http://adlnet.gov/expapi/activities/meeting", "Group session")
    } else {
        (
            format!("{base}/records/{document}"),
            "http://adlnet.gov/expapi/activities/assessment",
            "Observation of practice",
        )
    };
    let components = e.detail.get("componentsEvidenced").or_else(|| e.detail.get("components")).cloned();
    let mut statement = json!({
        "id": uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, format!("{base}/{storage_id}/events/{}", e.seq).as_bytes()).to_string(),
        "version": "1.0.3",
        "actor": {"objectType": "Agent", "account": {"homePage": base, "name": account_name}},
        "verb": {"id": format!("http://adlnet.gov/expapi/verbs/{verb}"), "display": {"en-GB": display}},
        "object": {
            "objectType": "Activity",
            "id": object_id,
            "definition": {"type": activity_type, "name": {"en-GB": name}},
        },
        "timestamp": dates::from_unix_millis(e.at),
        "context": {"extensions": {
            format!("{base}/xapi/event"): e.kind,
            format!("{base}/xapi/components"): components.unwrap_or(Value::Array(Vec::new())),
        }},
    });
    if matches!(to, "met" | "not-met") {
        statement["result"] = json!({ "success": to == "met" });
    }
    statement
}
