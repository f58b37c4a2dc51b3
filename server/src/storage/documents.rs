//! Automerge documents as chunks: a snapshot plus the incremental changes since.

use automerge::Automerge;
use fieldbook_sync_core::DocumentId;
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

    /// A document rebuilt from its chunks (empty if unknown), with the ids of the chunks it
    /// was built from.
    /// A document from its chunks, with each chunk's id and size.
    pub async fn load_document(&self, document: DocumentId) -> Result<(Automerge, Vec<(i64, usize)>), StorageError> {
        let mut doc = Automerge::new();
        let mut chunks = Vec::new();
        for chunk in self.load_chunks(document).await? {
            // A leading snapshot loads fastest as a whole document.
            let result = if chunk.kind == ChunkKind::Snapshot && chunks.is_empty() {
                Automerge::load(&chunk.data).map(|loaded| doc = loaded)
            } else {
                doc.load_incremental(&chunk.data).map(|_| ())
            };
            result.map_err(|source| StorageError::Corrupt { document, source: Box::new(source) })?;
            chunks.push((chunk.id, chunk.data.len()));
        }
        Ok((doc, chunks))
    }

    /// Appends a chunk durably (no projection); returns its id once committed.
    pub async fn append_chunk(&self, document: DocumentId, kind: ChunkKind, data: &[u8]) -> Result<i64, StorageError> {
        self.commit_changes(document, kind, data, None).await
    }

    /// Replaces exactly the chunks in `replaces` with one snapshot, atomically. Chunks not
    /// listed (e.g. written meanwhile by another node) are kept.
    pub async fn compact(&self, document: DocumentId, snapshot: &[u8], replaces: &[i64]) -> Result<i64, StorageError> {
        let mut tx = self.begin_write().await?;
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
            sqlx::query("DELETE FROM document_chunks WHERE id = $1 AND document_id = $2")
                .bind(*id)
                .bind(document.to_string())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(row.try_get("id")?)
    }

    /// How many documents the store holds.
    pub async fn document_count(&self) -> Result<i64, StorageError> {
        let row =
            sqlx::query("SELECT COUNT(DISTINCT document_id) AS n FROM document_chunks").fetch_one(self.pool()).await?;
        Ok(row.try_get("n")?)
    }
}
