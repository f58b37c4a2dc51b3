//! Erasure (`fieldbook erase`, `POST /v1/admin/records/{id}/erase`): a record rebuilt from its
//! current state (with named text fields cleared) without its history, stored in place of it
//! everywhere the server keeps data, and kept in the erasure ledger. Servers drop their copies
//! at once (the one that erased, and others on PostgreSQL, which hear of it) or within half a
//! second (a server beside the `fieldbook` command on SQLite polls the ledger); devices that
//! still hold the old history are refused and told to take the server's copy.

use std::collections::HashSet;

use automerge::Automerge;
use fieldbook_sync_core::erasure::{RebuildError, rebuild};
use fieldbook_sync_core::{DocumentId, Record};
use serde_json::json;

use crate::org::Operator;
use crate::storage::{Database, DeleteOutcome, Deletion, LedgerEntry, LedgerKind, NewErasure, StorageError};

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
    let erased_by = operator.name();
    // Devices may commit while the record is rebuilt: then it is rebuilt again from that.
    for _ in 0..MAX_ATTEMPTS {
        let stored = db.load_document(document).await?;
        if stored.doc.get_heads().is_empty() {
            return Err(EraseError::NotFound(document.url()));
        }
        let rebuilt = rebuild(&stored.doc, clear)?;
        let record = Record::parse(&rebuilt.state, &db.framework_catalog().await?).map_err(|e| {
            EraseError::Invalid(format!("the record would not be valid with those fields cleared: {e}"))
        })?;
        let detail = json!({ "reason": reason, "fields": clear, "changesErased": rebuilt.erased.len() });
        let erasure = NewErasure {
            document,
            reason,
            fields: clear,
            erased_by: &erased_by,
            snapshot: rebuilt.doc.save(),
            heads: rebuilt.doc.get_heads(),
            version: stored.version,
            record,
            erased: &rebuilt.erased,
            audit: operator.event("record-erased", detail).document(document),
        };
        if db.erase(erasure).await?.is_some() {
            return Ok(document);
        }
    }
    Err(EraseError::Storage(StorageError::Internal(format!(
        "{} kept changing while it was erased; try again",
        document.url()
    ))))
}

/// Most times an erasure is rebuilt because devices kept committing to the record.
const MAX_ATTEMPTS: usize = 8;

/// An entry of another database's ledger (the one a restore replaces), with what re-applying
/// it needs: the hashes of the history it erased, and for an erasure the record as that
/// database holds it now.
pub struct ForeignEntry {
    pub entry: LedgerEntry,
    pub erased: Vec<String>,
    pub current: Option<Automerge>,
}

/// The whole ledger of `source`, ready to re-apply elsewhere (see [`reapply_ledger`]).
pub async fn foreign_ledger(source: &Database) -> Result<Vec<ForeignEntry>, EraseError> {
    let mut entries = Vec::new();
    for entry in source.ledger_after(0).await? {
        let current = match entry.kind {
            LedgerKind::Erased => Some(source.load_document(entry.document).await?.doc),
            LedgerKind::Deleted => None,
        };
        let erased = source.erased_by(entry.id).await?;
        entries.push(ForeignEntry { entry, erased, current });
    }
    Ok(entries)
}

/// Re-applies to `db`, just restored from a backup, the entries of `source` (the ledger of the
/// database it replaces) that it lacks. A record deleted since is deleted again. A record
/// erased since gets the record as the replaced database holds it now — rebuilt at the
/// erasure, so none of the history erased, and never the backup's state, which may still hold
/// text deleted after the backup and then erased. The history erased (or the record deleted)
/// is refused from now on, even for records the backup does not hold (a device could bring
/// them back). Returns how many.
pub async fn reapply_ledger(db: &Database, source: &[ForeignEntry]) -> Result<usize, EraseError> {
    let ledger = db.ledger_after(0).await?;
    let known: HashSet<(DocumentId, i64)> = ledger.iter().map(|e| (e.document, e.erased_at)).collect();
    // A record deleted here already (by an earlier replay, say) is not deleted again.
    let deleted: HashSet<DocumentId> =
        ledger.iter().filter(|e| e.kind == LedgerKind::Deleted).map(|e| e.document).collect();
    let catalog = db.framework_catalog().await?;
    let mut applied = 0;
    for ForeignEntry { entry, erased: erased_hashes, current } in source {
        if known.contains(&(entry.document, entry.erased_at)) || deleted.contains(&entry.document) {
            continue;
        }
        if entry.kind == LedgerKind::Deleted {
            let deletion = Deletion {
                document: entry.document,
                reason: &format!("{} (re-applied after a restore)", entry.reason),
                deleted_by: &entry.erased_by,
                audit: Operator::CommandLine
                    .event("record-deleted", json!({ "reason": entry.reason, "reappliedFrom": entry.id })),
                despite_holds: true,
                only_draft_of: None,
            };
            if db.delete_record(deletion).await? == DeleteOutcome::NotFound {
                db.add_to_ledger(entry, &[]).await?;
            }
            applied += 1;
            continue;
        }
        let restored = db.load_document(entry.document).await?;
        let current = current.clone().unwrap_or_default();
        if !restored.doc.get_heads().is_empty() && !current.get_heads().is_empty() {
            let keep: HashSet<_> = current.get_changes(&[]).iter().map(|c| c.hash()).collect();
            let erased: Vec<_> =
                restored.doc.get_changes(&[]).iter().map(|c| c.hash()).filter(|h| !keep.contains(h)).collect();
            let record = Record::parse(&fieldbook_sync_core::json::to_json(&current), &catalog)
                .map_err(|e| EraseError::Invalid(format!("{}: {e}", entry.document.url())))?;
            let detail = json!({ "reason": entry.reason, "reappliedFrom": entry.id, "changesErased": erased.len() });
            let erasure = NewErasure {
                document: entry.document,
                reason: &format!("{} (re-applied after a restore)", entry.reason),
                fields: &serde_json::from_str::<Vec<String>>(&entry.fields).unwrap_or_default(),
                erased_by: &entry.erased_by,
                snapshot: current.save(),
                heads: current.get_heads(),
                version: restored.version,
                record,
                erased: &erased,
                audit: Operator::CommandLine.event("record-erased", detail).document(entry.document),
            };
            if db.erase(erasure).await?.is_none() {
                return Err(EraseError::Storage(StorageError::Internal(
                    "the restored database changed during the restore".into(),
                )));
            }
        }
        db.add_to_ledger(entry, erased_hashes).await?;
        applied += 1;
    }
    if applied > 0 {
        // Deletions leave freed space behind (erasures overwrite theirs as they go).
        db.overwrite_freed().await?;
    }
    Ok(applied)
}
