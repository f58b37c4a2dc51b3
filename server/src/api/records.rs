//! `GET /v1/records`: the records a user may see, so their devices discover new ones (a
//! newly shared observation, say) without being told document ids. `DELETE
//! /v1/records/{id}`: an author discards their draft.

use axum::extract::{Path, Query, State};
use axum::routing::{delete, get};
use axum::{Json, Router};
use fieldbook_sync_core::DocumentId;
use fieldbook_sync_core::access::{DiscardRefusal, Role};
use fieldbook_sync_core::records::dates;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::auth::Authenticated;
use crate::error::{AppError, Problem};
use crate::org::Operator;
use crate::state::AppState;
use crate::storage::{AuditEvent, DeleteOutcome};

const DEFAULT_LIMIT: usize = 500;
const MAX_LIMIT: usize = 5000;

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/v1/records", get(record_index)).route("/v1/records/{id}", delete(discard_draft))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct IndexQuery {
    /// Only records changed after this cursor (from an earlier page).
    #[serde(default)]
    #[param(minimum = 0)]
    after: i64,
    /// At most this many, 1 to 5,000 (default 500).
    #[param(minimum = 1, maximum = 5000)]
    limit: Option<usize>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct IndexEntry {
    url: String,
    #[serde(rename = "type")]
    kind: &'static str,
    status: String,
    /// The user's part in the record: observer, practitioner, plan owner, …
    party: &'static str,
    change_seq: i64,
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct IndexResponse {
    records: Vec<IndexEntry>,
    /// Pass as `after` to get what changed since.
    cursor: i64,
    more: bool,
    /// Changes whenever who-may-see-what changes (people, supervision): a client that saw
    /// another value starts again from `after=0`, since records it may now see can sit
    /// behind its cursor.
    access_version: i64,
}

/// The records the user may read that changed after the cursor, oldest change first.
#[utoipa::path(get, path = "/v1/records", tag = "records", security(("bearer" = [])), params(IndexQuery),
    responses((status = 200, body = IndexResponse), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem, description = "HR and admins read records through the development-records API")))]
pub(super) async fn record_index(
    State(state): State<AppState>,
    auth: Authenticated,
    Query(query): Query<IndexQuery>,
) -> Result<Json<IndexResponse>, AppError> {
    if !auth.user.role.works_with_records() {
        return Err(AppError::Forbidden(format!(
            "the {} role does not read records over sync; use the development records API",
            auth.user.role
        )));
    }
    if query.after < 0 {
        return Err(AppError::bad_parameter("after", "after is a cursor from an earlier page (0 for all)"));
    }
    let limit = match query.limit {
        None => DEFAULT_LIMIT,
        Some(n) if (1..=MAX_LIMIT).contains(&n) => n,
        Some(_) => {
            return Err(AppError::bad_parameter("limit", format!("limit must be a number from 1 to {MAX_LIMIT}")));
        }
    };
    let viewer = state.db.viewer(&auth.user).await?;
    let people: Option<Vec<String>> = (viewer.role != Role::PrincipalSocialWorker).then(|| {
        let mut people: Vec<String> = viewer.line.iter().map(|g| g.subject_id.clone()).collect();
        people.sort();
        people.dedup();
        people
    });
    let access_version = state.db.access_version().await?;
    let page = state.db.record_index(&auth.user.id, people.as_deref(), query.after, limit).await?;
    let today = dates::today();
    let records = page
        .entries
        .into_iter()
        .filter_map(|e| {
            let party = viewer.party(&e.facts, &today);
            viewer.may_read(&e.facts, &today).then(|| IndexEntry {
                url: e.document_url,
                kind: e.facts.kind.as_str(),
                status: e.status,
                party: party.as_str(),
                change_seq: e.change_seq,
            })
        })
        .collect::<Vec<_>>();
    let event = AuditEvent::new("record-index-read")
        .by(&auth.user.id, auth.device.as_deref())
        .detail(json!({ "after": query.after, "records": records.len() }));
    state.audit.record(event).await;
    Ok(Json(IndexResponse { records, cursor: page.cursor, more: page.more, access_version }))
}

/// Discards a draft: only its author, only while it is a draft (checked as it is deleted, so
/// a share that commits first keeps it). It is deleted as any deleted record is: ledgered so
/// no device can bring it back, audited, and devices following it told to remove their copies.
#[utoipa::path(delete, path = "/v1/records/{id}", tag = "records", security(("bearer" = [])),
    params(("id" = String, Path, description = "The draft's document id or `automerge:` URL")),
    responses((status = 200, body = Discarded), (status = 401, body = Problem), (status = 404, body = Problem, description = "Not a draft of the caller's"),
        (status = 409, body = Problem, description = "No longer a draft, or kept by the organisation")))]
pub(super) async fn discard_draft(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<String>,
) -> Result<Json<Discarded>, AppError> {
    // What is not a document id is no draft of theirs either.
    let document =
        DocumentId::parse_url_or_id(&id).map_err(|_| AppError::NotFound(format!("you have no draft {id:?}")))?;
    let no_draft = || AppError::NotFound(format!("you have no draft {} to discard", document.url()));
    if !auth.user.role.works_with_records() {
        return Err(no_draft());
    }
    let operator = Operator::Person { user_id: &auth.user.id, device_id: auth.device.as_deref() };
    let outcome =
        crate::retention::delete(&state.db, operator, document, "draft discarded by its author", Some(&auth.user.id))
            .await?;
    match outcome {
        DeleteOutcome::Deleted(_) => {
            state.hub.removed(document).await;
            Ok(Json(Discarded { url: document.url(), discarded: true }))
        }
        // Someone else's draft is not theirs to know of.
        DeleteOutcome::NotFound | DeleteOutcome::NotDiscardable(DiscardRefusal::NotAuthor) => Err(no_draft()),
        DeleteOutcome::NotDiscardable(refusal) => Err(AppError::Conflict(refusal.to_string())),
        // Which holds, and on whom, is not for the author to learn.
        DeleteOutcome::Held(_) => {
            Err(AppError::Conflict("this draft is kept by your organisation for now, so it cannot be discarded".into()))
        }
    }
}

/// A draft discarded.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct Discarded {
    /// The record's `automerge:` URL.
    url: String,
    discarded: bool,
}
