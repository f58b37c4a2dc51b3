//! Erasure in storage: a record's chunks replaced by its rebuilt snapshot, its quarantined
//! changes dropped, its projection rewritten, and the erasure kept in the ledger (who, when,
//! why, which fields; the hashes of the history erased, never its text), in one transaction.
//! Then the bytes the old rows leave behind are overwritten where the database allows: on
//! SQLite every connection has `secure_delete` on (freed pages are zeroed), the file is
//! rebuilt (`VACUUM`: stale copies left inside live pages go) and the write-ahead log is
//! truncated; on PostgreSQL the tables touched are vacuumed, which frees
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
    /// The version the snapshot was rebuilt from: if another commit came in since, nothing is
    /// written ([`StorageError::Stale`]-like `Ok(None)`), and the caller rebuilds again.
    pub version: i64,
    pub record: Record,
    pub erased: &'a [ChangeHash],
    /// The audit event, without the erased text.
    pub audit: AuditEvent,
}

/// What a ledger entry did to its record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LedgerKind {
    /// Its history was erased (rebuilt from its current state).
    Erased,
    /// It was deleted (see [`Database::delete_record`]).
    Deleted,
}

impl LedgerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LedgerKind::Erased => "erased",
            LedgerKind::Deleted => "deleted",
        }
    }
}

/// What the ledger refuses of one document (see [`Database::refused_history`]).
#[derive(Debug, Default)]
pub struct RefusedHistory {
    /// Hashes of the changes erased from it (empty for nearly every document).
    pub erased: HashSet<ChangeHash>,
    /// It was deleted: everything about it is refused.
    pub deleted: bool,
}

/// One erasure or deletion in the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerEntry {
    pub id: i64,
    pub kind: LedgerKind,
    pub document: DocumentId,
    pub erased_at: i64,
    pub erased_by: String,
    pub reason: String,
    /// The fields cleared, as a JSON list.
    pub fields: String,
}

/// Writes one entry into the ledger with the hashes of the history it erased; returns its id.
pub(super) async fn insert_ledger(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    entry: &LedgerEntry,
    erased: &[String],
) -> Result<i64, StorageError> {
    let document = entry.document.to_string();
    let row = sqlx::query(
        "INSERT INTO erasures (document_id, erased_at, erased_by, reason, fields, kind)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(&document)
    .bind(entry.erased_at)
    .bind(&entry.erased_by)
    .bind(&entry.reason)
    .bind(&entry.fields)
    .bind(entry.kind.as_str())
    .fetch_one(&mut **tx)
    .await?;
    let id: i64 = row.try_get("id")?;
    for hash in erased {
        sqlx::query(
            "INSERT INTO erased_changes (document_id, change_hash, erasure_id) VALUES ($1, $2, $3)
             ON CONFLICT (document_id, change_hash) DO NOTHING",
        )
        .bind(&document)
        .bind(hash)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    }
    Ok(id)
}

fn ledger_entry(row: &sqlx::any::AnyRow) -> Result<Option<LedgerEntry>, StorageError> {
    let Ok(document) = row.try_get::<String, _>("document_id")?.parse() else { return Ok(None) };
    let kind = if row.try_get::<String, _>("kind")? == "deleted" { LedgerKind::Deleted } else { LedgerKind::Erased };
    Ok(Some(LedgerEntry {
        id: row.try_get("id")?,
        kind,
        document,
        erased_at: row.try_get("erased_at")?,
        erased_by: row.try_get("erased_by")?,
        reason: row.try_get("reason")?,
        fields: row.try_get("fields")?,
    }))
}

impl Database {
    /// Replaces a document's history with its rebuilt snapshot, keeps the erasure in the
    /// ledger, and overwrites what the old rows leave behind. Returns the ledger id, or
    /// `None` (nothing written) if the document changed since the version it was rebuilt from.
    pub async fn erase(&self, erasure: NewErasure<'_>) -> Result<Option<i64>, StorageError> {
        let document = erasure.document.to_string();
        let mut tx = self.begin_write().await?;
        let entry = LedgerEntry {
            id: 0,
            kind: LedgerKind::Erased,
            document: erasure.document,
            erased_at: now_millis(),
            erased_by: erasure.erased_by.to_owned(),
            reason: erasure.reason.to_owned(),
            fields: json!(erasure.fields).to_string(),
        };
        let hashes: Vec<String> = erasure.erased.iter().map(ToString::to_string).collect();
        let id = insert_ledger(&mut tx, &entry, &hashes).await?;
        let job = CommitJob {
            document: erasure.document,
            // Claims the version row first (on PostgreSQL it stays locked to the commit), so no
            // commit can slip in between the rebuild and the rows it replaces.
            expected_version: Some(erasure.version),
            kind: ChunkKind::Snapshot,
            chunk: erasure.snapshot,
            heads: Some(erasure.heads),
            record: Some(erasure.record),
            new_actors: Vec::new(),
            audit: vec![erasure.audit],
            events: Vec::new(),
        };
        let CommitOutcome::Committed { chunk, .. } = self.write_batch(&mut tx, std::slice::from_ref(&job)).await?[0]
        else {
            tx.rollback().await?;
            return Ok(None);
        };
        sqlx::query("DELETE FROM document_chunks WHERE document_id = $1 AND id <> $2")
            .bind(&document)
            .bind(chunk)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM quarantine WHERE document_id = $1").bind(&document).execute(&mut *tx).await?;
        tx.commit().await?;
        // The erasure is made; what follows only overwrites freed space, and is retried by the
        // next erasure or checkpoint if it fails now.
        if let Err(e) = self.overwrite_freed().await {
            tracing::warn!(error = %e, %document, "erased, but freed space is not overwritten yet");
        }
        Ok(Some(id))
    }

    /// Adds to the ledger an erasure made elsewhere (a database restored from an older
    /// backup): its row, and the hashes of the history it erased, to be refused from now on.
    /// Returns the new ledger id.
    pub async fn add_to_ledger(&self, entry: &LedgerEntry, erased: &[String]) -> Result<i64, StorageError> {
        let mut tx = self.begin_write().await?;
        let id = insert_ledger(&mut tx, entry, erased).await?;
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

    /// The ledger after id `after` (0: all of it), oldest first.
    pub async fn ledger_after(&self, after: i64) -> Result<Vec<LedgerEntry>, StorageError> {
        let rows = sqlx::query(
            "SELECT id, kind, document_id, erased_at, erased_by, reason, fields FROM erasures WHERE id > $1 ORDER BY id",
        )
        .bind(after)
        .fetch_all(self.pool())
        .await?;
        rows.iter().filter_map(|r| ledger_entry(r).transpose()).collect()
    }

    /// What the ledger refuses of a document: the changes erased from it, or all of it if it
    /// was deleted (one statement; nothing, for nearly every document).
    pub async fn refused_history(&self, document: DocumentId) -> Result<RefusedHistory, StorageError> {
        let rows = sqlx::query(
            "SELECT change_hash FROM erased_changes WHERE document_id = $1
             UNION ALL SELECT NULL FROM erasures WHERE document_id = $1 AND kind = 'deleted'",
        )
        .bind(document.to_string())
        .fetch_all(self.pool())
        .await?;
        let mut refused = RefusedHistory::default();
        for row in rows {
            match row.try_get::<Option<String>, _>("change_hash")? {
                Some(hash) => refused.erased.extend(hash.parse::<ChangeHash>().ok()),
                None => refused.deleted = true,
            }
        }
        Ok(refused)
    }

    /// The newest ledger id (0: none).
    pub async fn last_erasure(&self) -> Result<i64, StorageError> {
        let row = sqlx::query("SELECT CAST(COALESCE(MAX(id), 0) AS BIGINT) AS id FROM erasures")
            .fetch_one(self.pool())
            .await?;
        Ok(row.try_get("id")?)
    }

    /// Overwrites what deleted rows left behind, as far as the database allows.
    pub async fn overwrite_freed(&self) -> Result<(), StorageError> {
        match self.backend() {
            // Freed pages were zeroed (`secure_delete`), but a page that lost rows to a
            // rebalancing keeps stale copies of them in its unused space, which no pragma
            // clears: rebuilding the file does. The log then holds the old and the rebuilt
            // pages, so it is truncated too.
            Backend::Sqlite => {
                sqlx::query("VACUUM").execute(self.pool()).await?;
                self.truncate_log().await
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
