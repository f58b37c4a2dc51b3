//! The device's offline store: one SQLite file with every document it holds and the sync
//! state it shares with each server.

use std::str::FromStr;

use automerge::Automerge;
use fieldbook_sync_core::DocumentId;
use sqlx::Row;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqliteSynchronous};

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS settings (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS documents (
        id TEXT PRIMARY KEY, data BLOB NOT NULL, updated_at INTEGER NOT NULL)",
    // Local copies whose changes the server refused: kept, never silently dropped.
    "CREATE TABLE IF NOT EXISTS set_aside (
        id INTEGER PRIMARY KEY AUTOINCREMENT, document_id TEXT NOT NULL, data BLOB NOT NULL,
        reason TEXT NOT NULL, set_aside_at INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS sync_states (
        document_id TEXT NOT NULL, storage_id TEXT NOT NULL, state BLOB NOT NULL,
        PRIMARY KEY (document_id, storage_id))",
];

pub struct Store {
    pool: SqlitePool,
}

pub struct StoredDocument {
    pub id: DocumentId,
    pub doc: Automerge,
    pub updated_at: i64,
}

impl Store {
    pub async fn open(path: &str) -> anyhow::Result<Self> {
        if let Some(parent) = std::path::Path::new(path).parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)?;
        }
        let options = SqliteConnectOptions::from_str(&format!("sqlite:{path}"))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            // Deleted content is zeroed, not left in free pages: a copy whose history the
            // server erased must not linger in the file.
            .pragma("secure_delete", "ON");
        let pool = SqlitePool::connect_with(options).await?;
        for statement in SCHEMA {
            sqlx::query(*statement).execute(&pool).await?;
        }
        Ok(Self { pool })
    }

    /// This device's own storage id, announced to servers in `join`.
    pub async fn storage_id(&self) -> anyhow::Result<String> {
        sqlx::query("INSERT INTO settings (name, value) VALUES ('storage_id', $1) ON CONFLICT (name) DO NOTHING")
            .bind(uuid::Uuid::new_v4().to_string())
            .execute(&self.pool)
            .await?;
        let row = sqlx::query("SELECT value FROM settings WHERE name = 'storage_id'").fetch_one(&self.pool).await?;
        Ok(row.try_get("value")?)
    }

    pub async fn setting(&self, name: &str) -> anyhow::Result<Option<String>> {
        let row =
            sqlx::query("SELECT value FROM settings WHERE name = $1").bind(name).fetch_optional(&self.pool).await?;
        Ok(row.map(|r| r.try_get("value")).transpose()?)
    }

    /// Sets several settings at once (all or none).
    pub async fn set_settings(&self, settings: &[(&str, &str)]) -> anyhow::Result<()> {
        let mut tx = self.pool.begin().await?;
        for (name, value) in settings {
            sqlx::query(
                "INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            )
            .bind(name)
            .bind(value)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn delete_settings(&self, names: &[&str]) -> anyhow::Result<()> {
        for name in names {
            sqlx::query("DELETE FROM settings WHERE name = $1").bind(name).execute(&self.pool).await?;
        }
        Ok(())
    }

    pub async fn save(&self, id: DocumentId, doc: &Automerge) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO documents (id, data, updated_at) VALUES ($1, $2, $3)
             ON CONFLICT (id) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at",
        )
        .bind(id.to_string())
        .bind(doc.save())
        .bind(now_millis())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn load(&self, id: DocumentId) -> anyhow::Result<Option<Automerge>> {
        let row = sqlx::query("SELECT data FROM documents WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| Ok(Automerge::load(&r.try_get::<Vec<u8>, _>("data")?)?)).transpose()
    }

    pub async fn all(&self) -> anyhow::Result<Vec<StoredDocument>> {
        let rows = sqlx::query("SELECT id, data, updated_at FROM documents ORDER BY updated_at, id")
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter()
            .map(|r| {
                Ok(StoredDocument {
                    id: r.try_get::<String, _>("id")?.parse()?,
                    doc: Automerge::load(&r.try_get::<Vec<u8>, _>("data")?)?,
                    updated_at: r.try_get("updated_at")?,
                })
            })
            .collect()
    }

    pub async fn sync_state(&self, id: DocumentId, storage_id: &str) -> anyhow::Result<Option<automerge::sync::State>> {
        let row = sqlx::query("SELECT state FROM sync_states WHERE document_id = $1 AND storage_id = $2")
            .bind(id.to_string())
            .bind(storage_id)
            .fetch_optional(&self.pool)
            .await?;
        // A state that no longer decodes is only an optimisation lost: start afresh.
        Ok(row.and_then(|r| automerge::sync::State::decode(&r.get::<Vec<u8>, _>("state")).ok()))
    }

    pub async fn save_sync_state(&self, id: DocumentId, storage_id: &str, state: &[u8]) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO sync_states (document_id, storage_id, state) VALUES ($1, $2, $3)
             ON CONFLICT (document_id, storage_id) DO UPDATE SET state = excluded.state",
        )
        .bind(id.to_string())
        .bind(storage_id)
        .bind(state)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Moves the local copy of a document aside (the server refused some of its changes):
    /// `kept` is what is kept of it, and the copy itself goes. The next sync fetches the
    /// server's copy.
    pub async fn set_aside(&self, id: DocumentId, kept: &Automerge, reason: &str) -> anyhow::Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("INSERT INTO set_aside (document_id, data, reason, set_aside_at) VALUES ($1, $2, $3, $4)")
            .bind(id.to_string())
            .bind(kept.save())
            .bind(reason)
            .bind(now_millis())
            .execute(&mut *tx)
            .await?;
        for table in ["documents", "sync_states"] {
            let column = if table == "documents" { "id" } else { "document_id" };
            sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {table} WHERE {column} = $1")))
                .bind(id.to_string())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Removes every trace of a document the server deleted: its copy, sync states and
    /// anything set aside from it, with the freed bytes zeroed and the log truncated.
    pub async fn forget(&self, id: DocumentId) -> anyhow::Result<()> {
        let mut tx = self.pool.begin().await?;
        for (table, column) in [("documents", "id"), ("sync_states", "document_id"), ("set_aside", "document_id")] {
            sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {table} WHERE {column} = $1")))
                .bind(id.to_string())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        self.overwrite_freed().await
    }

    /// Copies the write-ahead log into the file and truncates it, so what was deleted (zeroed
    /// in the file) is not left in the log either.
    pub async fn overwrite_freed(&self) -> anyhow::Result<()> {
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(&self.pool).await?;
        Ok(())
    }

    /// Copies set aside: (document, reason, when in Unix ms).
    pub async fn set_aside_list(&self) -> anyhow::Result<Vec<(DocumentId, String, i64)>> {
        let rows = sqlx::query("SELECT document_id, reason, set_aside_at FROM set_aside ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter()
            .map(|r| {
                Ok((r.try_get::<String, _>("document_id")?.parse()?, r.try_get("reason")?, r.try_get("set_aside_at")?))
            })
            .collect()
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn now_millis() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or_default()
}

/// Deletes a store and its write-ahead log, as a revoked device must.
pub fn delete(path: &str) -> anyhow::Result<()> {
    for file in [path.to_owned(), format!("{path}-wal"), format!("{path}-shm"), format!("{path}-journal")] {
        match std::fs::remove_file(&file) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => anyhow::bail!("could not delete {file}: {e}"),
        }
    }
    Ok(())
}
