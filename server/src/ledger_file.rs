//! The erasure ledger as a file, for PostgreSQL restores (`fieldbook restore` does the same on
//! SQLite by itself): `fieldbook ledger export` from the database a restore will replace, and
//! `fieldbook ledger replay` on the restored one re-applies every erasure and deletion made
//! since the dump. The file holds, for each erased record, the record as it is now (its
//! current text, without the history erased): keep it as carefully as a backup.

use std::path::Path;

use automerge::Automerge;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use crate::erasure::{ForeignEntry, foreign_ledger, reapply_ledger};
use crate::storage::{Database, LedgerEntry, LedgerKind, now_millis};

const FORMAT: &str = "fieldbook-ledger/1";

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LedgerFile {
    format: String,
    exported_at: i64,
    entries: Vec<FileEntry>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct FileEntry {
    id: i64,
    kind: String,
    record: String,
    erased_at: i64,
    erased_by: String,
    reason: String,
    fields: String,
    erased_changes: Vec<String>,
    /// For an erasure: the record as it is now (an automerge save, base64).
    current: Option<String>,
}

/// Writes `db`'s ledger to a new file at `to`; returns how many entries.
pub async fn export(db: &Database, to: &Path) -> anyhow::Result<usize> {
    let entries: Vec<FileEntry> = foreign_ledger(db)
        .await?
        .into_iter()
        .map(|ForeignEntry { entry, erased, current }| FileEntry {
            id: entry.id,
            kind: entry.kind.as_str().to_owned(),
            record: entry.document.url(),
            erased_at: entry.erased_at,
            erased_by: entry.erased_by,
            reason: entry.reason,
            fields: entry.fields,
            erased_changes: erased,
            current: current.map(|doc| STANDARD.encode(doc.save())),
        })
        .collect();
    let count = entries.len();
    let file = LedgerFile { format: FORMAT.into(), exported_at: now_millis(), entries };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600); // it holds records' text
    let mut out =
        options.open(to).map_err(|e| anyhow::anyhow!("cannot create {}: {e} (it must not exist)", to.display()))?;
    serde_json::to_writer(&mut out, &file)?;
    out.sync_all()?;
    Ok(count)
}

/// Re-applies to `db` the entries of the ledger file at `from` that it lacks; returns how many.
pub async fn replay(db: &Database, from: &Path) -> anyhow::Result<usize> {
    let file: LedgerFile = serde_json::from_slice(&std::fs::read(from)?)
        .map_err(|e| anyhow::anyhow!("{} is not a ledger written by `fieldbook ledger export`: {e}", from.display()))?;
    anyhow::ensure!(file.format == FORMAT, "{} is in format {:?}, not {FORMAT}", from.display(), file.format);
    let mut entries = Vec::with_capacity(file.entries.len());
    for e in file.entries {
        let current = match e.current {
            Some(saved) => Some(Automerge::load(&STANDARD.decode(saved)?)?),
            None => None,
        };
        let entry = LedgerEntry {
            id: e.id,
            kind: if e.kind == LedgerKind::Deleted.as_str() { LedgerKind::Deleted } else { LedgerKind::Erased },
            document: fieldbook_sync_core::DocumentId::parse_url_or_id(&e.record)?,
            erased_at: e.erased_at,
            erased_by: e.erased_by,
            reason: e.reason,
            fields: e.fields,
        };
        entries.push(ForeignEntry { entry, erased: e.erased_changes, current });
    }
    Ok(reapply_ledger(db, &entries).await?)
}
