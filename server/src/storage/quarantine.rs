//! Changes the server refused, kept aside with who sent them and why.

use fieldbook_sync_core::DocumentId;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Database, StorageError, now_millis};

#[derive(Debug, Clone)]
pub struct QuarantinedChange {
    pub id: i64,
    pub document_id: String,
    pub user_id: String,
    pub device_id: Option<String>,
    pub reason: String,
    pub change_hashes: Vec<String>,
    pub changes: Vec<u8>,
    /// Unix milliseconds.
    pub received_at: i64,
}

pub struct NewQuarantine<'a> {
    pub document: DocumentId,
    pub user_id: &'a str,
    pub device_id: Option<&'a str>,
    pub reason: &'a str,
    pub change_hashes: &'a [String],
    pub changes: &'a [u8],
}

/// Bytes of refused changes kept per sender per day.
const QUOTA_BYTES_PER_DAY: i64 = 64 * 1024 * 1024;

const COLUMNS: &str = "id, document_id, user_id, device_id, reason, change_hashes, changes, received_at";

impl Database {
    /// Keeps refused changes aside. The same changes refused again for the same document
    /// (a peer that still holds them resends them after a reconnect) keep their first row.
    pub async fn quarantine(&self, entry: NewQuarantine<'_>) -> Result<i64, StorageError> {
        let hashes = entry.change_hashes.join(",");
        let existing = sqlx::query("SELECT id FROM quarantine WHERE document_id = $1 AND change_hashes = $2")
            .bind(entry.document.to_string())
            .bind(&hashes)
            .fetch_optional(self.pool())
            .await?;
        if let Some(row) = existing {
            return Ok(row.try_get("id")?);
        }
        // A sender whose refused changes already fill their share keeps the record of what
        // was refused (who, when, why, which changes) but not the bytes: a hostile client
        // must not be able to fill the disk through the quarantine.
        let kept: Option<i64> =
            sqlx::query("SELECT SUM(LENGTH(changes)) AS kept FROM quarantine WHERE user_id = $1 AND received_at > $2")
                .bind(entry.user_id)
                .bind(now_millis() - 24 * 3600 * 1000)
                .fetch_one(self.pool())
                .await?
                .try_get("kept")?;
        let full = kept.unwrap_or(0) + entry.changes.len() as i64 > QUOTA_BYTES_PER_DAY;
        let (reason, changes) = if full {
            (
                format!("{} (changes not kept: this sender's quarantine share for the day is full)", entry.reason),
                &[][..],
            )
        } else {
            (entry.reason.to_owned(), entry.changes)
        };
        let row = sqlx::query(
            "INSERT INTO quarantine (document_id, user_id, device_id, reason, change_hashes, changes, received_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(entry.document.to_string())
        .bind(entry.user_id)
        .bind(entry.device_id.map(str::to_owned))
        .bind(reason)
        .bind(hashes)
        .bind(changes)
        .bind(now_millis())
        .fetch_one(self.pool())
        .await?;
        Ok(row.try_get("id")?)
    }

    pub async fn quarantined(&self, document: Option<DocumentId>) -> Result<Vec<QuarantinedChange>, StorageError> {
        let rows = match document {
            Some(d) => {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {COLUMNS} FROM quarantine WHERE document_id = $1 ORDER BY id"
                )))
                .bind(d.to_string())
                .fetch_all(self.pool())
                .await?
            }
            None => {
                sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM quarantine ORDER BY id")))
                    .fetch_all(self.pool())
                    .await?
            }
        };
        rows.iter().map(quarantined_from_row).collect()
    }

    pub async fn quarantined_change(&self, id: i64) -> Result<Option<QuarantinedChange>, StorageError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM quarantine WHERE id = $1")))
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(quarantined_from_row).transpose()
    }

    /// Entries kept aside and their bytes, for metrics.
    pub async fn quarantine_size(&self) -> Result<(i64, i64), StorageError> {
        let row = sqlx::query(
            "SELECT CAST(COUNT(*) AS BIGINT) AS n, CAST(COALESCE(SUM(LENGTH(changes)), 0) AS BIGINT) AS bytes FROM quarantine",
        )
        .fetch_one(self.pool())
        .await?;
        Ok((row.try_get("n")?, row.try_get("bytes")?))
    }
}

fn quarantined_from_row(r: &AnyRow) -> Result<QuarantinedChange, StorageError> {
    let hashes: String = r.try_get("change_hashes")?;
    Ok(QuarantinedChange {
        id: r.try_get("id")?,
        document_id: r.try_get("document_id")?,
        user_id: r.try_get("user_id")?,
        device_id: r.try_get("device_id")?,
        reason: r.try_get("reason")?,
        change_hashes: hashes.split(',').filter(|h| !h.is_empty()).map(str::to_owned).collect(),
        changes: r.try_get("changes")?,
        received_at: r.try_get("received_at")?,
    })
}
