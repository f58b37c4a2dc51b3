//! Automerge documents as chunks: a snapshot plus the incremental changes since.

use automerge::{Automerge, ChangeHash};
use fieldbook_sync_core::DocumentId;
use fieldbook_sync_core::access::RecordFacts;
use sqlx::Row;

use super::{Database, StorageError, now_millis};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkKind {
    Snapshot,
    Incremental,
}

impl ChunkKind {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            ChunkKind::Snapshot => "snapshot",
            ChunkKind::Incremental => "incremental",
        }
    }
}

/// A document as committed: its changes, its chunks' ids and sizes, and its version (0:
/// nothing committed).
pub struct StoredDocument {
    pub doc: Automerge,
    pub chunks: Vec<(i64, usize)>,
    pub version: i64,
    /// The heads kept with the version are missing (see [`Database::note_heads`]).
    pub heads_unknown: bool,
}

/// What a document is as committed, read without its chunks: enough to answer a device
/// that holds exactly this (see [`Database::committed_state`]).
#[derive(Debug, Clone)]
pub struct CommittedState {
    pub version: i64,
    pub heads: Vec<ChangeHash>,
    pub facts: RecordFacts,
}

/// See [`Database::document_since`].
#[derive(Debug, Default)]
pub struct DocumentDelta {
    /// The data of the chunks after the one asked for, in order.
    pub new_chunks: Vec<Vec<u8>>,
    /// The first of `new_chunks` is the document's leading snapshot.
    pub leading_snapshot: bool,
    /// Every chunk of the document, as (id, size).
    pub chunks: Vec<(i64, usize)>,
    pub version: i64,
    /// Heads are kept with the version.
    pub heads_known: bool,
}

#[derive(Debug, Clone)]
pub struct Chunk {
    pub id: i64,
    pub kind: ChunkKind,
    pub data: Vec<u8>,
}

impl Database {
    /// Every chunk of a document in write order; empty if the document is unknown.
    pub async fn load_chunks(&self, document: DocumentId) -> Result<Vec<Chunk>, StorageError> {
        let rows = sqlx::query("SELECT id, kind, data FROM document_chunks WHERE document_id = $1 ORDER BY id")
            .bind(document.to_string())
            .fetch_all(self.pool())
            .await?;
        rows.into_iter()
            .map(|row| {
                let kind: String = row.try_get("kind")?;
                Ok(Chunk {
                    id: row.try_get("id")?,
                    kind: if kind == "snapshot" { ChunkKind::Snapshot } else { ChunkKind::Incremental },
                    data: row.try_get("data")?,
                })
            })
            .collect()
    }

    /// A document rebuilt from its chunks (empty if unknown), with each chunk's id and size
    /// and the document's version, read together (one statement sees one committed state).
    pub async fn load_document(&self, document: DocumentId) -> Result<StoredDocument, StorageError> {
        let delta = self.document_since(document, 0).await?;
        let mut doc = Automerge::new();
        for (i, data) in delta.new_chunks.iter().enumerate() {
            // A leading snapshot loads fastest as a whole document.
            let result = if i == 0 && delta.leading_snapshot {
                Automerge::load(data).map(|loaded| doc = loaded)
            } else {
                doc.load_incremental(data).map(|_| ())
            };
            result.map_err(|source| StorageError::Corrupt { document, source: Box::new(source) })?;
        }
        let heads_unknown = delta.version > 0 && !delta.heads_known;
        Ok(StoredDocument { doc, chunks: delta.chunks, version: delta.version, heads_unknown })
    }

    /// What was committed to a document after chunk `after` (0: everything): the data of
    /// the chunks after it, every chunk's id and size, and the version. A document's chunk
    /// ids grow in commit order, because committers of one document take turns (see
    /// `claim_versions`), so "after chunk N" is exactly "committed since a copy that
    /// includes N".
    pub async fn document_since(&self, document: DocumentId, after: i64) -> Result<DocumentDelta, StorageError> {
        let rows = sqlx::query(
            "SELECT id, kind, CASE WHEN id > $2 THEN data END AS data, CAST(LENGTH(data) AS BIGINT) AS len,
                    v.version, CAST(CASE WHEN v.heads IS NULL THEN 0 ELSE 1 END AS BIGINT) AS heads_known
             FROM document_chunks LEFT JOIN document_versions v ON v.document_id = $1
             WHERE document_chunks.document_id = $1 ORDER BY id",
        )
        .bind(document.to_string())
        .bind(after)
        .fetch_all(self.pool())
        .await?;
        let mut delta = DocumentDelta::default();
        for row in rows {
            let id: i64 = row.try_get("id")?;
            let len: i64 = row.try_get("len")?;
            delta.version = row.try_get::<Option<i64>, _>("version")?.unwrap_or_default();
            delta.heads_known = row.try_get::<i64, _>("heads_known")? == 1;
            if let Some(data) = row.try_get::<Option<Vec<u8>>, _>("data")? {
                if delta.new_chunks.is_empty() && delta.chunks.is_empty() {
                    delta.leading_snapshot = row.try_get::<String, _>("kind")? == ChunkKind::Snapshot.as_str();
                }
                delta.new_chunks.push(data);
            }
            delta.chunks.push((id, len as usize));
        }
        Ok(delta)
    }

    /// Appends a chunk durably (no projection); returns its id once committed.
    pub async fn append_chunk(&self, document: DocumentId, kind: ChunkKind, data: &[u8]) -> Result<i64, StorageError> {
        self.commit_changes(document, kind, data, None).await
    }

    /// Replaces exactly the chunks in `replaces` with one snapshot, atomically, if the
    /// document is still at `version` (the one the snapshot was saved from) and every one of
    /// those chunks is still there; `None` (nothing written) otherwise. Chunks not listed
    /// (e.g. written meanwhile by another node) are kept. The version row is held to the
    /// commit, so an erasure cannot replace the history between the check and the write.
    pub async fn compact(
        &self,
        document: DocumentId,
        snapshot: &[u8],
        replaces: &[i64],
        version: i64,
    ) -> Result<Option<i64>, StorageError> {
        let mut tx = self.begin_write().await?;
        let held =
            sqlx::query("UPDATE document_versions SET version = version WHERE document_id = $1 AND version = $2")
                .bind(document.to_string())
                .bind(version)
                .execute(&mut *tx)
                .await?;
        if held.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(None);
        }
        let row = sqlx::query(
            "INSERT INTO document_chunks (document_id, kind, data, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(document.to_string())
        .bind(ChunkKind::Snapshot.as_str())
        .bind(snapshot)
        .bind(now_millis())
        .fetch_one(&mut *tx)
        .await?;
        for id in replaces {
            let deleted = sqlx::query("DELETE FROM document_chunks WHERE id = $1 AND document_id = $2")
                .bind(*id)
                .bind(document.to_string())
                .execute(&mut *tx)
                .await?;
            if deleted.rows_affected() != 1 {
                tx.rollback().await?;
                return Ok(None);
            }
        }
        tx.commit().await?;
        Ok(Some(row.try_get("id")?))
    }

    /// The committed versions of these documents (those that have one).
    pub async fn document_versions(&self, documents: &[DocumentId]) -> Result<Vec<(DocumentId, i64)>, StorageError> {
        let mut versions = Vec::new();
        let ids: Vec<String> = documents.iter().map(ToString::to_string).collect();
        for part in ids.chunks(super::MAX_PARAMETERS) {
            let query =
                super::query_in("SELECT document_id, version FROM document_versions WHERE document_id IN (LIST)", part);
            for row in query.fetch_all(self.pool()).await? {
                let id: String = row.try_get("document_id")?;
                if let Ok(document) = id.parse() {
                    versions.push((document, row.try_get("version")?));
                }
            }
        }
        Ok(versions)
    }

    /// The document's committed version, heads and access facts, read in one statement;
    /// `None` if it is not a record, or its heads are not known.
    pub async fn committed_state(&self, document: DocumentId) -> Result<Option<CommittedState>, StorageError> {
        use super::record_index::facts_by_url;
        let sql = format!(
            "SELECT v.version, v.heads, r.* FROM document_versions v
             JOIN ({}) r ON 1 = 1
             WHERE v.document_id = $1",
            facts_by_url("$2")
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(document.to_string())
            .bind(document.url())
            .fetch_optional(self.pool())
            .await?;
        row.map_or(Ok(None), |row| committed_of(&row))
    }

    /// [`Self::committed_state`] with the document's one chunk, if it is stored as a single
    /// snapshot: all a device that holds nothing needs. Read in one statement, so the
    /// snapshot's heads are the ones returned.
    pub async fn committed_snapshot(
        &self,
        document: DocumentId,
    ) -> Result<Option<(CommittedState, Vec<u8>)>, StorageError> {
        use super::record_index::facts_by_url;
        let sql = format!(
            "SELECT v.version, v.heads, c.kind AS chunk_kind, c.data AS chunk_data, r.* FROM document_versions v
             JOIN ({}) r ON 1 = 1
             JOIN document_chunks c ON c.document_id = v.document_id
             WHERE v.document_id = $1 ORDER BY c.id LIMIT 2",
            facts_by_url("$2")
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(document.to_string())
            .bind(document.url())
            .fetch_all(self.pool())
            .await?;
        let [row] = &rows[..] else { return Ok(None) };
        if row.try_get::<String, _>("chunk_kind")? != ChunkKind::Snapshot.as_str() {
            return Ok(None);
        }
        let Some(committed) = committed_of(row)? else { return Ok(None) };
        Ok(Some((committed, row.try_get("chunk_data")?)))
    }

    /// Keeps the heads of a document loaded at `version` whose heads were not known (written
    /// before they were kept, or by a tool), unless it has moved on since.
    pub async fn note_heads(
        &self,
        document: DocumentId,
        version: i64,
        heads: &[ChangeHash],
    ) -> Result<(), StorageError> {
        sqlx::query(
            "UPDATE document_versions SET heads = $3 WHERE document_id = $1 AND version = $2 AND heads IS NULL",
        )
        .bind(document.to_string())
        .bind(version)
        .bind(encode_heads(heads))
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// How many documents the store holds.
    pub async fn document_count(&self) -> Result<i64, StorageError> {
        let row =
            sqlx::query("SELECT COUNT(DISTINCT document_id) AS n FROM document_chunks").fetch_one(self.pool()).await?;
        Ok(row.try_get("n")?)
    }
}

/// Heads as kept in `document_versions.heads`: hex hashes separated by spaces, in the order
/// `Automerge::get_heads` gives them.
pub(super) fn encode_heads(heads: &[ChangeHash]) -> String {
    heads.iter().map(ToString::to_string).collect::<Vec<_>>().join(" ")
}

fn decode_heads(text: &str) -> Option<Vec<ChangeHash>> {
    let heads: Vec<ChangeHash> = text.split(' ').map(|h| h.parse().ok()).collect::<Option<_>>()?;
    (!heads.is_empty()).then_some(heads)
}

/// A row of version, heads and access facts; `None` if the heads are not known.
fn committed_of(row: &sqlx::any::AnyRow) -> Result<Option<CommittedState>, StorageError> {
    let Some(heads) = row.try_get::<Option<String>, _>("heads")?.as_deref().and_then(decode_heads) else {
        return Ok(None);
    };
    let facts = super::record_index::facts_of(row)?;
    Ok(Some(CommittedState { version: row.try_get("version")?, heads, facts }))
}
