//! Erasure (`fieldbook erase`, `POST /v1/admin/records/{id}/erase`): a record rebuilt from its
//! current state (with named text fields cleared) without its history, stored in place of it
//! everywhere the server keeps data, and kept in the erasure ledger. Servers drop their copies
//! at once (the one that erased, and others on PostgreSQL, which hear of it) or within half a
//! second (a server beside the `fieldbook` command on SQLite polls the ledger); devices that
//! still hold the old history are refused and told to take the server's copy.

use std::collections::HashSet;

use fieldbook_sync_core::erasure::{RebuildError, rebuild};
use fieldbook_sync_core::{DocumentId, Record};
use serde_json::json;

use crate::org::Operator;
use crate::storage::{Database, NewErasure, StorageError};

#[derive(Debug, thiserror::Error)]
pub enum EraseError {
    /// The request cannot be carried out as asked (it says why).
    #[error("{0}")]
    Invalid(String),
    #[error("no record {0}")]
    NotFound(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<RebuildError> for EraseError {
    fn from(e: RebuildError) -> Self {
        EraseError::Invalid(e.to_string())
    }
}

/// Erases `record`'s history (and the text of `clear`); returns the record's URL, which stays
/// the same, so every reference to it (plan goal evidence, the index) still holds.
pub async fn erase(
    db: &Database,
    operator: Operator<'_>,
    record: &str,
    reason: &str,
    clear: &[String],
) -> Result<DocumentId, EraseError> {
    let document = DocumentId::parse_url_or_id(record).map_err(|e| EraseError::Invalid(e.to_string()))?;
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(EraseError::Invalid("give a reason: it is kept in the audit trail and the erasure ledger".into()));
    }
    let stored = db.load_document(document).await?;
    if stored.doc.get_heads().is_empty() {
        return Err(EraseError::NotFound(document.url()));
    }
    let rebuilt = rebuild(&stored.doc, clear)?;
    let record = Record::parse(&rebuilt.state, &db.framework_catalog().await?)
        .map_err(|e| EraseError::Invalid(format!("the record would not be valid with those fields cleared: {e}")))?;
    let detail = json!({ "reason": reason, "fields": clear, "changesErased": rebuilt.erased.len() });
    let erased_by = match &operator {
        Operator::Admin { user_id, .. } => (*user_id).to_owned(),
        Operator::CommandLine => format!("command line ({})", std::env::var("USER").unwrap_or_default()),
    };
    db.erase(NewErasure {
        document,
        reason,
        fields: clear,
        erased_by: &erased_by,
        snapshot: rebuilt.doc.save(),
        heads: rebuilt.doc.get_heads(),
        record,
        erased: &rebuilt.erased,
        audit: operator.event("record-erased", detail).document(document),
    })
    .await?;
    Ok(document)
}

/// Re-applies to `db`, just restored from a backup, the erasures in the ledger of `source`
/// (the database it replaced) that it lacks: each record the backup holds is erased again
/// with the same fields cleared, and the history erased then is refused from now on, even
/// for records the backup does not hold (a device could bring them back). Returns how many.
pub async fn reapply_ledger(db: &Database, source: &Database) -> Result<usize, EraseError> {
    let known: HashSet<(DocumentId, i64)> = db.ledger().await?.iter().map(|e| (e.document, e.erased_at)).collect();
    let mut applied = 0;
    for entry in source.ledger().await? {
        if known.contains(&(entry.document, entry.erased_at)) {
            continue;
        }
        let fields: Vec<String> = serde_json::from_str(&entry.fields).unwrap_or_default();
        let reason = format!("{} (re-applied after a restore)", entry.reason);
        match erase(db, Operator::CommandLine, &entry.document.to_string(), &reason, &fields).await {
            Ok(_) | Err(EraseError::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
        db.add_to_ledger(&entry, &source.erased_by(entry.id).await?).await?;
        applied += 1;
    }
    Ok(applied)
}
