//! The change feed: record-level events in commit order (see `record_events`).

use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::committer::CommitJob;
use super::rows::{Cell, Rows};
use super::{Database, StorageError, now_millis};

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FeedEvent {
    pub seq: i64,
    pub kind: String,
    /// Server time, Unix milliseconds.
    pub at: i64,
    pub document_url: String,
    pub practitioner_id: String,
    pub detail: serde_json::Value,
}

/// Numbers a batch's events and adds them to its rows. Taking the numbers locks the feed's
/// row until the commit, so numbers follow commit order across writers and nodes.
pub(crate) async fn add_events(
    tx: &mut Transaction<'static, Any>,
    rows: &mut Rows,
    jobs: &[&CommitJob],
) -> Result<(), StorageError> {
    let count: i64 = jobs.iter().map(|j| j.events.len() as i64).sum();
    if count == 0 {
        return Ok(());
    }
    let row = sqlx::query("UPDATE feed_state SET last_seq = last_seq + $1 WHERE id = 1 RETURNING last_seq")
        .bind(count)
        .fetch_one(&mut **tx)
        .await?;
    let last: i64 = row.try_get("last_seq")?;
    let now = now_millis();
    let mut seq = last - count;
    for job in jobs {
        for event in &job.events {
            seq += 1;
            rows.add(
                "record_events",
                &["seq", "document_url", "practitioner_id", "kind", "at", "detail"],
                vec![
                    seq.into(),
                    Cell::Text(job.document.url()),
                    (&event.practitioner_id).into(),
                    event.kind.into(),
                    now.into(),
                    Cell::Text(event.detail.to_string()),
                ],
            );
        }
    }
    Ok(())
}

impl Database {
    /// Events after `after`, oldest first, at most `limit`; optionally since a time.
    pub async fn feed(&self, after: i64, since: Option<i64>, limit: i64) -> Result<Vec<FeedEvent>, StorageError> {
        let rows = sqlx::query(
            "SELECT seq, kind, at, document_url, practitioner_id, detail FROM record_events
             WHERE seq > $1 AND ($2 IS NULL OR at >= $2) ORDER BY seq LIMIT $3",
        )
        .bind(after)
        .bind(since)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(event_from_row).collect()
    }
}

fn event_from_row(r: &AnyRow) -> Result<FeedEvent, StorageError> {
    let detail: String = r.try_get("detail")?;
    Ok(FeedEvent {
        seq: r.try_get("seq")?,
        kind: r.try_get("kind")?,
        at: r.try_get("at")?,
        document_url: r.try_get("document_url")?,
        practitioner_id: r.try_get("practitioner_id")?,
        detail: serde_json::from_str(&detail).unwrap_or(serde_json::Value::Null),
    })
}
