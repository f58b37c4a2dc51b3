//! The device's offline store: one SQLite file with every document it holds and the sync
//! state it shares with each server. Documents, what is set aside and the settings (the
//! session's tokens among them) are sealed with the data key (see `vault`); sync states hold
//! hashes only and stay in clear.

use std::str::FromStr;

use automerge::Automerge;
use fieldbook_sync_core::DocumentId;
use sqlx::Row;

use crate::vault::{self, DataKey, Locked, Wrapped};
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
    // The data key, wrapped (see `vault`), and the wrong-passphrase throttle.
    "CREATE TABLE IF NOT EXISTS vault (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
];

/// A setting's value as stored once sealed.
const SEALED_SETTING: &str = "sealed:";

pub struct Store {
    pool: SqlitePool,
    /// `None` only for a store opened locked, to recover a forgotten passphrase by signing in.
    key: Option<DataKey>,
}

/// A copy set aside: what was kept of it, why, and when (Unix ms).
pub struct SetAside {
    pub document: DocumentId,
    pub kept: Automerge,
    pub reason: String,
    pub at: i64,
}

pub struct StoredDocument {
    pub id: DocumentId,
    pub doc: Automerge,
    pub updated_at: i64,
}

impl Store {
    /// Opens the store and unlocks it with the passphrase (see `vault::passphrase`), making
    /// its data key the first time (and sealing what was stored before encryption was on). A
    /// wrong passphrase fails with [`Locked`]; the caller deletes the store after too many.
    pub async fn open(path: &str) -> anyhow::Result<Self> {
        let mut store = Self::open_locked(path).await?;
        let passphrase = vault::passphrase()?;
        let key = match store.wrapped().await? {
            None => {
                let (key, wrapped) = vault::create(&passphrase)?;
                store.keep_wrapped(&wrapped).await?;
                key
            }
            Some(wrapped) => {
                let (result, wrapped) = vault::unlock(wrapped, &passphrase, now_millis() / 1000);
                store.keep_wrapped(&wrapped).await?;
                result?
            }
        };
        store.key = Some(key);
        store.seal_existing().await?;
        Ok(store)
    }

    /// After a password sign-in that gave the device key: unlocks a store whose passphrase was
    /// forgotten (opened with [`Self::open_locked`]) and wraps its key under the device key and
    /// the passphrase given now.
    pub async fn signed_in(&mut self, device_key: &str) -> anyhow::Result<()> {
        let passphrase = vault::passphrase()?;
        let wrapped = self.wrapped().await?.unwrap_or_default();
        let (key, wrapped) = vault::rewrap(&wrapped, self.key.as_ref(), device_key, &passphrase)?;
        self.keep_wrapped(&wrapped).await?;
        self.key = Some(key);
        self.seal_existing().await
    }

    fn key(&self) -> anyhow::Result<&DataKey> {
        self.key.as_ref().ok_or_else(|| anyhow::anyhow!(Locked::NoPassphrase))
    }

    async fn wrapped(&self) -> anyhow::Result<Option<Wrapped>> {
        let rows = sqlx::query("SELECT name, value FROM vault").fetch_all(&self.pool).await?;
        let get =
            |name: &str| rows.iter().find(|r| r.get::<String, _>("name") == name).map(|r| r.get::<String, _>("value"));
        let (Some(salt), Some(by_passphrase)) = (get("salt"), get("by_passphrase")) else { return Ok(None) };
        Ok(Some(Wrapped {
            salt,
            by_passphrase,
            by_device: get("by_device"),
            failures: get("failures").and_then(|v| v.parse().ok()).unwrap_or(0),
            retry_at: get("retry_at").and_then(|v| v.parse().ok()).unwrap_or(0),
        }))
    }

    async fn keep_wrapped(&self, wrapped: &Wrapped) -> anyhow::Result<()> {
        let (failures, retry_at) = (wrapped.failures.to_string(), wrapped.retry_at.to_string());
        let mut values = vec![
            ("salt", wrapped.salt.as_str()),
            ("by_passphrase", wrapped.by_passphrase.as_str()),
            ("failures", failures.as_str()),
            ("retry_at", retry_at.as_str()),
        ];
        if let Some(by_device) = &wrapped.by_device {
            values.push(("by_device", by_device));
        }
        let mut tx = self.pool.begin().await?;
        for (name, value) in values {
            sqlx::query("INSERT INTO vault (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = excluded.value")
                .bind(name)
                .bind(value)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Seals what a store made before encryption was on still holds in clear.
    async fn seal_existing(&self) -> anyhow::Result<()> {
        let documents = sqlx::query("SELECT id, data FROM documents").fetch_all(&self.pool).await?;
        let settings = sqlx::query("SELECT name, value FROM settings").fetch_all(&self.pool).await?;
        let set_aside = sqlx::query("SELECT id, data, reason FROM set_aside").fetch_all(&self.pool).await?;
        let mut sealed_any = false;
        for row in documents {
            let (id, data): (String, Vec<u8>) = (row.get("id"), row.get("data"));
            if !vault::is_sealed(&data) {
                let doc = Automerge::load(&data)?;
                self.save(id.parse()?, &doc).await?;
                sealed_any = true;
            }
        }
        for row in settings {
            let (name, value): (String, String) = (row.get("name"), row.get("value"));
            if !value.starts_with(SEALED_SETTING) {
                self.set_settings(&[(&name, &value)]).await?;
                sealed_any = true;
            }
        }
        for row in set_aside {
            let (id, data, reason): (i64, Vec<u8>, String) = (row.get("id"), row.get("data"), row.get("reason"));
            if !vault::is_sealed(&data) {
                let key = self.key()?;
                sqlx::query("UPDATE set_aside SET data = $2, reason = $3 WHERE id = $1")
                    .bind(id)
                    .bind(key.seal(&data, "set aside"))
                    .bind(key.seal_text(&reason, "set aside reason"))
                    .execute(&self.pool)
                    .await?;
                sealed_any = true;
            }
        }
        if sealed_any {
            self.overwrite_freed().await?;
        }
        Ok(())
    }

    /// Opens the store without unlocking it: only to sign in when the passphrase was forgotten.
    pub async fn open_locked(path: &str) -> anyhow::Result<Self> {
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
        Ok(Self { pool, key: None })
    }

    /// This device's own storage id, announced to servers in `join`.
    pub async fn storage_id(&self) -> anyhow::Result<String> {
        if let Some(id) = self.setting("storage_id").await? {
            return Ok(id);
        }
        let id = uuid::Uuid::new_v4().to_string();
        self.set_settings(&[("storage_id", &id)]).await?;
        Ok(id)
    }

    pub async fn setting(&self, name: &str) -> anyhow::Result<Option<String>> {
        let row =
            sqlx::query("SELECT value FROM settings WHERE name = $1").bind(name).fetch_optional(&self.pool).await?;
        let Some(value) = row.map(|r| r.try_get::<String, _>("value")).transpose()? else { return Ok(None) };
        match value.strip_prefix(SEALED_SETTING) {
            Some(sealed) => Ok(Some(self.key()?.open_text(sealed, &format!("setting:{name}"))?)),
            None => Ok(Some(value)), // stored before encryption was on; sealed at the next open
        }
    }

    /// Sets several settings at once (all or none).
    pub async fn set_settings(&self, settings: &[(&str, &str)]) -> anyhow::Result<()> {
        let key = self.key()?;
        let mut tx = self.pool.begin().await?;
        for (name, value) in settings {
            let sealed = format!("{SEALED_SETTING}{}", key.seal_text(value, &format!("setting:{name}")));
            sqlx::query(
                "INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            )
            .bind(name)
            .bind(sealed)
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
        .bind(self.key()?.seal(&doc.save(), &format!("document:{id}")))
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
        row.map(|r| self.document(id, &r.try_get::<Vec<u8>, _>("data")?)).transpose()
    }

    fn document(&self, id: DocumentId, stored: &[u8]) -> anyhow::Result<Automerge> {
        Ok(Automerge::load(&self.key()?.open(stored, &format!("document:{id}"))?)?)
    }

    pub async fn all(&self) -> anyhow::Result<Vec<StoredDocument>> {
        let rows = sqlx::query("SELECT id, data, updated_at FROM documents ORDER BY updated_at, id")
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter()
            .map(|r| {
                let id: DocumentId = r.try_get::<String, _>("id")?.parse()?;
                Ok(StoredDocument {
                    id,
                    doc: self.document(id, &r.try_get::<Vec<u8>, _>("data")?)?,
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
        let key = self.key()?;
        let mut tx = self.pool.begin().await?;
        sqlx::query("INSERT INTO set_aside (document_id, data, reason, set_aside_at) VALUES ($1, $2, $3, $4)")
            .bind(id.to_string())
            .bind(key.seal(&kept.save(), "set aside"))
            .bind(key.seal_text(reason, "set aside reason"))
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

    /// Copies set aside, oldest first.
    pub async fn set_aside_list(&self) -> anyhow::Result<Vec<SetAside>> {
        let rows = sqlx::query("SELECT document_id, data, reason, set_aside_at FROM set_aside ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        let key = self.key()?;
        rows.into_iter()
            .map(|r| {
                Ok(SetAside {
                    document: r.try_get::<String, _>("document_id")?.parse()?,
                    kept: Automerge::load(&key.open(&r.try_get::<Vec<u8>, _>("data")?, "set aside")?)?,
                    reason: key.open_text(&r.try_get::<String, _>("reason")?, "set aside reason")?,
                    at: r.try_get("set_aside_at")?,
                })
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
