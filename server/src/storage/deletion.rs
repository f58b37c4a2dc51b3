//! Deleting a record (retention, withdrawn consent, or by hand): its chunks, quarantined
//! changes, projection and actor bindings go, in one transaction that also keeps it in the
//! ledger (so it is refused for good, and a restore from an older backup deletes it again)
//! audits it with minimal metadata, and announces it in the HR change feed. A record under a
//! legal hold is not deleted. The
//! caller then overwrites the freed space, once for a whole batch
//! ([`Database::overwrite_freed`]).

use fieldbook_sync_core::DocumentId;
use serde_json::json;
use sqlx::Row;

use fieldbook_sync_core::access::{DiscardRefusal, RecordFacts};
use fieldbook_sync_core::records::RecordKind;

use super::erasure::{LedgerEntry, LedgerKind, insert_ledger};
use super::record_index::{FactColumns, facts_by_url};
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
    /// A discard: delete only if the record is still a draft by this user (checked in the
    /// deleting transaction, so a share committed meanwhile keeps it).
    pub only_draft_of: Option<&'a str>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeleteOutcome {
    /// Deleted; the ledger id.
    Deleted(i64),
    /// Kept: these legal holds cover it.
    Held(Vec<i64>),
    /// No such record (or it was deleted already).
    NotFound,
    /// Kept: it is not a draft of the user discarding it.
    NotDiscardable(DiscardRefusal),
}

impl Database {
    /// Who could read a record before it was deleted (`None`: not deleted, or deleted before
    /// the ledger kept it).
    pub async fn deleted_facts(&self, document: DocumentId) -> Result<Option<RecordFacts>, StorageError> {
        let row = sqlx::query("SELECT fields FROM erasures WHERE document_id = $1 AND kind = 'deleted' LIMIT 1")
            .bind(document.to_string())
            .fetch_optional(self.pool())
            .await?;
        let Some(row) = row else { return Ok(None) };
        // What access to it depended on, as the ledger keeps it.
        let kept: Result<FactColumns, _> = serde_json::from_str(&row.try_get::<String, _>("fields")?);
        Ok(kept.ok().map(|k| k.facts()))
    }

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
        // Who may read it, kept in the ledger: any node can then tell the devices following it.
        let about = sqlx::query(sqlx::AssertSqlSafe(facts_by_url("$1"))).bind(&url).fetch_optional(&mut *tx).await?;
        let facts = about.as_ref().map(FactColumns::read).transpose()?;
        let deleted_already = sqlx::query("SELECT 1 AS x FROM erasures WHERE document_id = $1 AND kind = 'deleted'")
            .bind(&id)
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        if !stored || deleted_already {
            tx.rollback().await?;
            return Ok(DeleteOutcome::NotFound);
        }
        if let Some(user) = deletion.only_draft_of {
            // Without its facts nobody can tell whose draft it is.
            let refusal = facts.as_ref().map_or(Err(DiscardRefusal::NotAuthor), |f| f.facts().discard_by(user));
            if let Err(refusal) = refusal {
                tx.rollback().await?;
                return Ok(DeleteOutcome::NotDiscardable(refusal));
            }
        }
        let holds = sqlx::query(
            "SELECT id FROM legal_holds WHERE released_at IS NULL AND (document_id = $1 OR user_id IN (
                 SELECT practitioner_id FROM observations WHERE document_url = $2
                 UNION SELECT observer_id FROM observations WHERE document_url = $2
                 UNION SELECT owner_id FROM development_plans WHERE document_url = $2
                 UNION SELECT supervisor_id FROM development_plans WHERE document_url = $2
                 UNION SELECT facilitator_id FROM group_sessions WHERE document_url = $2
                 UNION SELECT user_id FROM group_session_participants WHERE document_url = $2
                 UNION SELECT raised_by FROM practice_themes WHERE document_url = $2))
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
            fields: facts.as_ref().map_or_else(|| "[]".to_owned(), |f| json!(f).to_string()),
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
        if let Some(facts) = &facts {
            audit.detail["recordType"] = json!(facts.kind().as_str());
            audit.detail["about"] = json!(facts.subject);
        }
        super::audit::append(&mut tx, std::slice::from_ref(&audit)).await?;
        // The feed's earlier events about it go (they name the record and who it was about);
        // one event says it was deleted, for systems that keep copies (a draft never was in it).
        sqlx::query("DELETE FROM record_events WHERE document_url = $1").bind(&url).execute(&mut *tx).await?;
        for (kind, person) in facts.as_ref().map(deletion_events).unwrap_or_default() {
            let row = sqlx::query("UPDATE feed_state SET last_seq = last_seq + 1 WHERE id = 1 RETURNING last_seq")
                .fetch_one(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO record_events (seq, document_url, practitioner_id, kind, at, detail)
                 VALUES ($1, $2, $3, $4, $5, '{}')",
            )
            .bind(row.try_get::<i64, _>("last_seq")?)
            .bind(&url)
            .bind(person)
            .bind(kind)
            .bind(now_millis())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(DeleteOutcome::Deleted(ledger_id))
    }
}

/// The feed events that say a record went, for each person the feed told of it: none for a
/// draft observation or a session never closed (they never were in the feed), nor a theme.
fn deletion_events(facts: &FactColumns) -> Vec<(&'static str, &str)> {
    match facts.kind() {
        RecordKind::Observation if facts.status == "draft" => Vec::new(),
        RecordKind::Observation => vec![("observation.deleted", facts.subject.as_str())],
        RecordKind::DevelopmentPlan => vec![("plan.deleted", facts.subject.as_str())],
        RecordKind::GroupSession if facts.status == "closed" => std::iter::once(&facts.subject)
            .chain(&facts.members)
            .map(|person| ("group-session.deleted", person.as_str()))
            .collect(),
        RecordKind::GroupSession | RecordKind::PracticeTheme => Vec::new(),
    }
}
