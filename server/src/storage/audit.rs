//! The append-only audit trail: who viewed, changed, exported or signed what, with device
//! time where known and server time. Rows name records and fields, never their text.

use serde_json::Value;
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::rows::{Cell, Rows};
use super::{Database, StorageError, now_millis};

/// One event to append. `detail` is structured (hashes, counts, paths), never narrative.
#[derive(Debug, Clone, Default)]
pub struct AuditEvent {
    pub action: &'static str,
    pub user_id: Option<String>,
    pub device_id: Option<String>,
    pub document_id: Option<String>,
    /// Unix milliseconds on the device, if it said.
    pub device_time: Option<i64>,
    pub detail: Value,
}

impl AuditEvent {
    pub fn new(action: &'static str) -> Self {
        AuditEvent { action, detail: Value::Object(Default::default()), ..Default::default() }
    }

    pub fn by(mut self, user_id: &str, device_id: Option<&str>) -> Self {
        self.user_id = Some(user_id.to_owned());
        self.device_id = device_id.map(str::to_owned);
        self
    }

    pub fn document(mut self, document_id: impl ToString) -> Self {
        self.document_id = Some(document_id.to_string());
        self
    }

    pub fn detail(mut self, detail: Value) -> Self {
        self.detail = detail;
        self
    }
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditRow {
    pub id: i64,
    pub server_time: i64,
    pub device_time: Option<i64>,
    pub user_id: Option<String>,
    pub device_id: Option<String>,
    pub action: String,
    pub document_id: Option<String>,
    #[schema(value_type = Object)]
    pub detail: Value,
}

/// Filters for [`Database::audit_trail`]; times are Unix milliseconds, `until` exclusive.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub user_id: Option<String>,
    pub document_id: Option<String>,
    pub since: Option<i64>,
    pub until: Option<i64>,
    pub after_id: Option<i64>,
    pub limit: i64,
}

impl Database {
    pub async fn audit(&self, event: AuditEvent) -> Result<(), StorageError> {
        let mut tx = self.begin_write().await?;
        append(&mut tx, std::slice::from_ref(&event)).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Oldest first; page with `after_id`.
    pub async fn audit_trail(&self, query: &AuditQuery) -> Result<Vec<AuditRow>, StorageError> {
        let rows = sqlx::query(
            "SELECT id, server_time, device_time, user_id, device_id, action, document_id, detail FROM audit_events
             WHERE ($1 IS NULL OR user_id = $1) AND ($2 IS NULL OR document_id = $2)
               AND ($3 IS NULL OR server_time >= $3) AND ($4 IS NULL OR server_time < $4) AND id > $5
             ORDER BY id LIMIT $6",
        )
        .bind(query.user_id.clone())
        .bind(query.document_id.clone())
        .bind(query.since)
        .bind(query.until)
        .bind(query.after_id.unwrap_or(0))
        .bind(query.limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(audit_from_row).collect()
    }
}

/// Adds events to a commit's rows (e.g. with the changes they describe).
pub(crate) fn add_rows(rows: &mut Rows, events: &[AuditEvent]) {
    let now = now_millis();
    for event in events {
        rows.add(
            "audit_events",
            &["server_time", "device_time", "user_id", "device_id", "action", "document_id", "detail"],
            vec![
                now.into(),
                event.device_time.into(),
                (&event.user_id).into(),
                (&event.device_id).into(),
                event.action.into(),
                (&event.document_id).into(),
                Cell::Text(event.detail.to_string()),
            ],
        );
    }
}

pub(super) async fn append(tx: &mut Transaction<'static, Any>, events: &[AuditEvent]) -> Result<(), StorageError> {
    let mut rows = Rows::default();
    add_rows(&mut rows, events);
    rows.insert(tx).await
}

fn audit_from_row(r: &AnyRow) -> Result<AuditRow, StorageError> {
    let detail: String = r.try_get("detail")?;
    Ok(AuditRow {
        id: r.try_get("id")?,
        server_time: r.try_get("server_time")?,
        device_time: r.try_get("device_time")?,
        user_id: r.try_get("user_id")?,
        device_id: r.try_get("device_id")?,
        action: r.try_get("action")?,
        document_id: r.try_get("document_id")?,
        detail: serde_json::from_str(&detail).unwrap_or(Value::Null),
    })
}

/// Most events appended in one transaction.
const AUDIT_BATCH: usize = 512;
/// How long the background writer lets events gather before writing them.
const GATHER: std::time::Duration = std::time::Duration::from_millis(100);

/// Appends events in the background, many per transaction: for the high-volume events
/// (records opened, index reads) that must not cost each sync an fsync of its own. Events
/// that must be durable before an answer (accepted changes, admin actions) are written
/// directly instead.
#[derive(Clone)]
pub struct AuditLog {
    events: tokio::sync::mpsc::Sender<AuditEvent>,
}

impl AuditLog {
    /// Starts the writer; it ends when every `AuditLog` clone is dropped.
    pub fn start(db: Database) -> Self {
        let (events, mut queue) = tokio::sync::mpsc::channel::<AuditEvent>(AUDIT_BATCH * 16);
        tokio::spawn(async move {
            while let Some(first) = queue.recv().await {
                // Let a burst gather: one transaction (one fsync) for all of it.
                tokio::time::sleep(GATHER).await;
                let mut batch = vec![first];
                while batch.len() < AUDIT_BATCH {
                    match queue.try_recv() {
                        Ok(event) => batch.push(event),
                        Err(_) => break,
                    }
                }
                if let Err(e) = append_batch(&db, &batch).await {
                    tracing::error!(error = %e, events = batch.len(), "could not write audit events");
                }
            }
        });
        Self { events }
    }

    /// Queues an event. If the writer is far behind, the caller waits for room rather than
    /// the event being dropped.
    pub async fn record(&self, event: AuditEvent) {
        if self.events.send(event).await.is_err() {
            tracing::error!("the audit writer has stopped; event lost");
        }
    }
}

async fn append_batch(db: &Database, events: &[AuditEvent]) -> Result<(), StorageError> {
    let mut tx = db.begin_write().await?;
    append(&mut tx, events).await?;
    tx.commit().await?;
    Ok(())
}
