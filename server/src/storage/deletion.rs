//! Deleting a record (retention, withdrawn consent, or by hand): its chunks, quarantined
//! changes, projection and actor bindings go, in one transaction that also keeps it in the
//! ledger (so it is refused for good, and a restore from an older backup deletes it again)
//! and audits it with minimal metadata. A record under a legal hold is not deleted. The
//! caller then overwrites the freed space, once for a whole batch
//! ([`Database::overwrite_freed`]).

use fieldbook_sync_core::DocumentId;
use serde_json::json;
use sqlx::Row;

use super::erasure::{LedgerEntry, LedgerKind, insert_ledger};
use super::{AuditEvent, Database, StorageError, now_millis};

/// A deletion to make (see [`Database::delete_record`]).
pub struct Deletion<'a> {
    pub document: DocumentId,
    /// Why, in the ledger and the audit trail (e.g. "retention: observation, 6y after sign-off").
    pub reason: &'a str,
    /// Who deleted it, as the ledger names them.
    pub deleted_by: &'a str,
    /// The audit event; the record's type and who it was about are added to its detail.
    pub audit: AuditEvent,
    /// Delete even under a legal hold: only to re-apply, after a restore, a deletion made
    /// when no hold covered the record.
    pub despite_holds: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeleteOutcome {
    /// Deleted; the ledger id.
    Deleted(i64),
    /// Kept: these legal holds cover it.
    Held(Vec<i64>),
    /// No such record (or it was deleted already).
    NotFound,
}

impl Database {
    /// Deletes a record everywhere the server keeps it, unless a legal hold covers it (on
    /// the record, or on anyone who is a party to it).
    pub async fn delete_record(&self, deletion: Deletion<'_>) -> Result<DeleteOutcome, StorageError> {
        let (id, url) = (deletion.document.to_string(), deletion.document.url());
        let mut tx = self.begin_write().await?;
        // The version row first: on PostgreSQL it waits for a commit in flight, and keeps
        // later ones out (they find the version moved, and reload a deleted record).
        sqlx::query(
            "INSERT INTO document_versions (document_id, version) VALUES ($1, 1)
             ON CONFLICT (document_id) DO UPDATE SET version = document_versions.version + 1, heads = NULL",
        )
        .bind(&id)
        .execute(&mut *tx)
        .await?;
        let stored = sqlx::query("SELECT 1 AS x FROM document_chunks WHERE document_id = $1 LIMIT 1")
            .bind(&id)
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        let about = sqlx::query(
            "SELECT 'observation' AS record_type, practitioner_id AS subject FROM observations WHERE document_url = $1
             UNION ALL
             SELECT 'development-plan', owner_id FROM development_plans WHERE document_url = $1",
        )
        .bind(&url)
        .fetch_optional(&mut *tx)
        .await?;
        let deleted_already = sqlx::query("SELECT 1 AS x FROM erasures WHERE document_id = $1 AND kind = 'deleted'")
            .bind(&id)
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        if !stored || deleted_already {
            tx.rollback().await?;
            return Ok(DeleteOutcome::NotFound);
        }
        let holds = sqlx::query(
            "SELECT id FROM legal_holds WHERE released_at IS NULL AND (document_id = $1 OR user_id IN (
                 SELECT practitioner_id FROM observations WHERE document_url = $2
                 UNION SELECT observer_id FROM observations WHERE document_url = $2
                 UNION SELECT owner_id FROM development_plans WHERE document_url = $2
                 UNION SELECT supervisor_id FROM development_plans WHERE document_url = $2))
             ORDER BY id",
        )
        .bind(&id)
        .bind(&url)
        .fetch_all(&mut *tx)
        .await?;
        if !holds.is_empty() && !deletion.despite_holds {
            tx.rollback().await?;
            let ids = holds.iter().map(|r| r.try_get("id")).collect::<Result<_, _>>()?;
            return Ok(DeleteOutcome::Held(ids));
        }
        let entry = LedgerEntry {
            id: 0,
            kind: LedgerKind::Deleted,
            document: deletion.document,
            erased_at: now_millis(),
            erased_by: deletion.deleted_by.to_owned(),
            reason: deletion.reason.to_owned(),
            fields: "[]".into(),
        };
        let ledger_id = insert_ledger(&mut tx, &entry, &[]).await?;
        for (table, key) in [("document_chunks", &id), ("quarantine", &id), ("actors", &id)] {
            sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {table} WHERE document_id = $1")))
                .bind(key)
                .execute(&mut *tx)
                .await?;
        }
        for table in super::projections::PROJECTION_TABLES {
            sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {table} WHERE document_url = $1")))
                .bind(&url)
                .execute(&mut *tx)
                .await?;
        }
        let mut audit = deletion.audit.document(deletion.document);
        if let Some(about) = about {
            let record_type: String = about.try_get("record_type")?;
            let subject: String = about.try_get("subject")?;
            audit.detail["recordType"] = json!(record_type);
            audit.detail["about"] = json!(subject);
        }
        super::audit::append(&mut tx, std::slice::from_ref(&audit)).await?;
        tx.commit().await?;
        Ok(DeleteOutcome::Deleted(ledger_id))
    }
}
