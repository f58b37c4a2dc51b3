//! Erasure in storage: a record's chunks replaced by its rebuilt snapshot, its quarantined
//! changes dropped, its projection rewritten, and the erasure kept in the ledger (who, when,
//! why, which fields; the hashes of the history erased, never its text), in one transaction.
//! Then the bytes the old rows leave behind are overwritten where the database allows: on
//! SQLite every connection has `secure_delete` on (freed pages are zeroed) and the
//! write-ahead log is truncated; on PostgreSQL the tables touched are vacuumed, which frees
//! the dead rows' space for reuse but does not overwrite it (see the README).

use std::collections::HashSet;

use automerge::ChangeHash;
use fieldbook_sync_core::{DocumentId, Record};
use serde_json::json;
use sqlx::Row;

use super::{AuditEvent, Backend, ChunkKind, CommitJob, CommitOutcome, Database, StorageError, now_millis};

/// An erasure to store (see [`Database::erase`]).
pub struct NewErasure<'a> {
    pub document: DocumentId,
    pub reason: &'a str,
    pub fields: &'a [String],
    /// Who erased it, as the audit trail names them.
    pub erased_by: &'a str,
    pub snapshot: Vec<u8>,
    pub heads: Vec<ChangeHash>,
    pub record: Record,
    pub erased: &'a [ChangeHash],
    /// The audit event, without the erased text.
    pub audit: AuditEvent,
}

/// One erasure in the ledger.
#[derive(Debug, Clone)]
pub struct ErasureEntry {
    pub id: i64,
    pub document: DocumentId,
}

/// One erasure in the ledger, in full.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerEntry {
    pub id: i64,
    pub document: DocumentId,
    pub erased_at: i64,
    pub erased_by: String,
    pub reason: String,
    /// The fields cleared, as a JSON list.
    pub fields: String,
}

fn ledger_entry(row: &sqlx::any::AnyRow) -> Result<Option<LedgerEntry>, StorageError> {
    let Ok(document) = row.try_get::<String, _>("document_id")?.parse() else { return Ok(None) };
    Ok(Some(LedgerEntry {
        id: row.try_get("id")?,
        document,
        erased_at: row.try_get("erased_at")?,
        erased_by: row.try_get("erased_by")?,
        reason: row.try_get("reason")?,
        fields: row.try_get("fields")?,
    }))
}

impl Database {
    /// Replaces a document's history with its rebuilt snapshot, keeps the erasure in the
    /// ledger, and overwrites what the old rows leave behind. Returns the ledger id.
    pub async fn erase(&self, erasure: NewErasure<'_>) -> Result<i64, StorageError> {
        let document = erasure.document.to_string();
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(
            "INSERT INTO erasures (document_id, erased_at, erased_by, reason, fields) VALUES ($1, $2, $3, $4, $5)
             RETURNING id",
        )
        .bind(&document)
        .bind(now_millis())
        .bind(erasure.erased_by)
        .bind(erasure.reason)
        .bind(json!(erasure.fields).to_string())
        .fetch_one(&mut *tx)
        .await?;
        let id: i64 = row.try_get("id")?;
        for hash in erasure.erased {
            sqlx::query(
                "INSERT INTO erased_changes (document_id, change_hash, erasure_id) VALUES ($1, $2, $3)
                 ON CONFLICT (document_id, change_hash) DO NOTHING",
            )
            .bind(&document)
            .bind(hash.to_string())
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        for table in ["document_chunks", "quarantine"] {
            sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {table} WHERE document_id = $1")))
                .bind(&document)
                .execute(&mut *tx)
                .await?;
        }
        let job = CommitJob {
            document: erasure.document,
            expected_version: None,
            kind: ChunkKind::Snapshot,
            chunk: erasure.snapshot,
            heads: Some(erasure.heads),
            record: Some(erasure.record),
            new_actors: Vec::new(),
            audit: vec![erasure.audit],
            events: Vec::new(),
        };
        if self.write_batch(&mut tx, std::slice::from_ref(&job)).await?[0] == CommitOutcome::Stale {
            return Err(StorageError::Internal("an unconditional write found a stale version".into()));
        }
        tx.commit().await?;
        self.overwrite_freed().await?;
        Ok(id)
    }

    /// Adds to the ledger an erasure made elsewhere (a database restored from an older
    /// backup): its row, and the hashes of the history it erased, to be refused from now on.
    /// Returns the new ledger id.
    pub async fn add_to_ledger(&self, entry: &LedgerEntry, erased: &[String]) -> Result<i64, StorageError> {
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(
            "INSERT INTO erasures (document_id, erased_at, erased_by, reason, fields) VALUES ($1, $2, $3, $4, $5)
             RETURNING id",
        )
        .bind(entry.document.to_string())
        .bind(entry.erased_at)
        .bind(&entry.erased_by)
        .bind(&entry.reason)
        .bind(&entry.fields)
        .fetch_one(&mut *tx)
        .await?;
        let id: i64 = row.try_get("id")?;
        for hash in erased {
            sqlx::query(
                "INSERT INTO erased_changes (document_id, change_hash, erasure_id) VALUES ($1, $2, $3)
                 ON CONFLICT (document_id, change_hash) DO NOTHING",
            )
            .bind(entry.document.to_string())
            .bind(hash)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(id)
    }

    /// The hashes of the history erasure `id` erased.
    pub async fn erased_by(&self, id: i64) -> Result<Vec<String>, StorageError> {
        let rows = sqlx::query("SELECT change_hash FROM erased_changes WHERE erasure_id = $1")
            .bind(id)
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(|r| Ok(r.try_get("change_hash")?)).collect()
    }

    /// The whole ledger, oldest first.
    pub async fn ledger(&self) -> Result<Vec<LedgerEntry>, StorageError> {
        let rows =
            sqlx::query("SELECT id, document_id, erased_at, erased_by, reason, fields FROM erasures ORDER BY id")
                .fetch_all(self.pool())
                .await?;
        rows.iter().filter_map(|r| ledger_entry(r).transpose()).collect()
    }

    /// Hashes of the changes erased from a document (empty for nearly every document).
    pub async fn erased_changes(&self, document: DocumentId) -> Result<HashSet<ChangeHash>, StorageError> {
        let rows = sqlx::query("SELECT change_hash FROM erased_changes WHERE document_id = $1")
            .bind(document.to_string())
            .fetch_all(self.pool())
            .await?;
        rows.iter().filter_map(|r| r.try_get::<String, _>("change_hash").ok()?.parse().ok()).map(Ok).collect()
    }

    /// The newest ledger id (0: none).
    pub async fn last_erasure(&self) -> Result<i64, StorageError> {
        let row = sqlx::query("SELECT CAST(COALESCE(MAX(id), 0) AS BIGINT) AS id FROM erasures")
            .fetch_one(self.pool())
            .await?;
        Ok(row.try_get("id")?)
    }

    /// Erasures after ledger id `after`, oldest first, for every node to drop its copies.
    pub async fn erasures_after(&self, after: i64) -> Result<Vec<ErasureEntry>, StorageError> {
        let rows = sqlx::query("SELECT id, document_id FROM erasures WHERE id > $1 ORDER BY id")
            .bind(after)
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .filter_map(|r| {
                let document = r.try_get::<String, _>("document_id").ok()?.parse().ok()?;
                Some(r.try_get("id").map(|id| ErasureEntry { id, document }).map_err(StorageError::from))
            })
            .collect()
    }

    /// Overwrites what deleted rows left behind, as far as the database allows.
    async fn overwrite_freed(&self) -> Result<(), StorageError> {
        match self.backend() {
            Backend::Sqlite => {
                // Freed pages were zeroed (`secure_delete`); the log still holds the old pages
                // until it is copied back and truncated. A reader in the middle of a snapshot
                // holds it up, so try a few times.
                for _ in 0..50 {
                    let row = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").fetch_one(self.pool()).await?;
                    if row.try_get::<i64, _>(0)? == 0 {
                        return Ok(());
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                Err(StorageError::Internal(
                    "the write-ahead log could not be truncated (a reader kept it busy); it is on the next checkpoint"
                        .into(),
                ))
            }
            Backend::Postgres => {
                let projection = super::projections::PROJECTION_TABLES;
                for table in ["document_chunks", "quarantine"].into_iter().chain(projection) {
                    sqlx::query(sqlx::AssertSqlSafe(format!("VACUUM {table}"))).execute(self.pool()).await?;
                }
                Ok(())
            }
        }
    }
}
