//! Backups of the embedded (SQLite) database: a consistent copy taken while the server keeps
//! serving, and putting one back with the server stopped. PostgreSQL has its own tools
//! (`pg_dump`, base backups; see the README).
//!
//! Every process that opens a SQLite database holds a shared lock on `<file>.lock` for as
//! long as it is connected; a restore takes that lock exclusively, so it never replaces the
//! file under a running server or command.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

use sqlx::{Connection, Row};

use super::{Backend, Database, StorageError, now_millis};

/// What a backup file holds, read from the file itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupSummary {
    pub documents: i64,
    pub audit_events: i64,
    /// The newest migration the backup's schema has.
    pub schema_version: i64,
}

impl Database {
    /// Writes a consistent copy of the whole database to `to`, which must not exist. SQLite's
    /// `VACUUM INTO` copies one snapshot: commits made meanwhile are not in it, and none is
    /// held up for long.
    pub async fn backup_into(&self, to: &Path) -> Result<BackupSummary, StorageError> {
        if self.backend() == Backend::Postgres {
            return Err(StorageError::Refused(
                "on PostgreSQL, back up with pg_dump or a base backup (see the README, \"Backups\")".into(),
            ));
        }
        if to.exists() {
            return Err(StorageError::Conflict(format!("{} exists already; choose a new file", to.display())));
        }
        let target = to.to_str().ok_or_else(|| StorageError::Refused(format!("{} is not UTF-8", to.display())))?;
        sqlx::query("VACUUM INTO $1").bind(target).execute(self.pool()).await?;
        inspect(to).await
    }
}

/// Checks a backup file (SQLite's integrity check, a Fieldbook schema) and says what it holds.
pub async fn inspect(backup: &Path) -> Result<BackupSummary, StorageError> {
    if !backup.is_file() {
        return Err(StorageError::NotFound(format!("no backup file at {}", backup.display())));
    }
    sqlx::any::install_default_drivers();
    let url = format!("sqlite:{}?mode=ro", backup.display());
    let mut conn = sqlx::AnyConnection::connect(&url).await?;
    let check: String = sqlx::query("PRAGMA integrity_check").fetch_one(&mut conn).await?.try_get(0)?;
    if check != "ok" {
        return Err(StorageError::Refused(format!("{} fails SQLite's integrity check: {check}", backup.display())));
    }
    let count = |sql: &'static str| sqlx::query(sql);
    let summary = async {
        Ok::<_, sqlx::Error>(BackupSummary {
            schema_version: count("SELECT MAX(version) FROM _sqlx_migrations")
                .fetch_one(&mut conn)
                .await?
                .try_get(0)?,
            documents: count("SELECT COUNT(*) FROM document_versions").fetch_one(&mut conn).await?.try_get(0)?,
            audit_events: count("SELECT COUNT(*) FROM audit_events").fetch_one(&mut conn).await?.try_get(0)?,
        })
    }
    .await
    .map_err(|e| StorageError::Refused(format!("{} is not a Fieldbook database: {e}", backup.display())));
    conn.close().await?;
    summary
}

/// A restore in progress: the SQLite database at `database` held exclusively (no server or
/// command may use it meanwhile), and the backup copied beside it, not yet in place. Dropped
/// without [`Self::finish`], it leaves the database as it was (the copy is removed).
pub struct Restore {
    database: PathBuf,
    staged: PathBuf,
    _exclusive: File,
}

impl Restore {
    /// Checks the backup, takes the database, and copies the backup beside it. The live
    /// database's write-ahead log is copied into it first, so it can be moved aside whole.
    pub async fn begin(from: &Path, database: &Path) -> Result<Self, StorageError> {
        inspect(from).await?;
        let lock = lock_file(database)?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(StorageError::Conflict(format!(
                    "{} is in use by a running Fieldbook server or command: stop it, then restore",
                    database.display()
                )));
            }
            Err(TryLockError::Error(e)) => return Err(io("lock", database, e)),
        }
        if database.exists() {
            let url = format!("sqlite:{}", database.display());
            let mut conn = sqlx::AnyConnection::connect(&url).await?;
            sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(&mut conn).await?;
            conn.close().await?;
        }
        let staged = with_suffix(database, ".restoring");
        std::fs::copy(from, &staged).map_err(|e| io("copy the backup to", &staged, e))?;
        Ok(Self { database: database.to_owned(), staged, _exclusive: lock })
    }

    /// The backup's copy, to open (with [`Database::open_for_restore`]) before it is put in place.
    pub fn staged_url(&self) -> String {
        format!("sqlite:{}", self.staged.display())
    }

    /// The database being replaced, likewise.
    pub fn live_url(&self) -> Option<String> {
        self.database.exists().then(|| format!("sqlite:{}", self.database.display()))
    }

    /// Puts the copy in place; the database it replaces is kept beside it (returned).
    pub fn finish(self) -> Result<Option<PathBuf>, StorageError> {
        let (database, staged) = (&self.database, &self.staged);
        File::open(staged).and_then(|f| f.sync_all()).map_err(|e| io("sync", staged, e))?;
        let kept = if database.exists() {
            let kept = with_suffix(database, &format!(".before-restore-{}", now_millis()));
            std::fs::rename(database, &kept).map_err(|e| io("move aside", database, e))?;
            // Left behind, a log would be replayed into the backup (it is empty: see `begin`).
            for suffix in ["-wal", "-shm"] {
                let file = with_suffix(database, suffix);
                if file.exists() {
                    std::fs::rename(&file, with_suffix(&kept, suffix)).map_err(|e| io("move aside", &file, e))?;
                }
            }
            Some(kept)
        } else {
            None
        };
        for suffix in ["-wal", "-shm"] {
            let _ = std::fs::remove_file(with_suffix(staged, suffix));
        }
        std::fs::rename(staged, database).map_err(|e| io("put the backup in place at", database, e))?;
        if let Some(dir) = database.parent().filter(|d| !d.as_os_str().is_empty()) {
            File::open(dir).and_then(|d| d.sync_all()).map_err(|e| io("sync", dir, e))?;
        }
        Ok(kept)
    }
}

impl Drop for Restore {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(with_suffix(&self.staged, suffix));
        }
    }
}

/// A shared hold on a SQLite database, for as long as the file is kept open.
pub(super) fn share(database: &Path) -> Result<File, StorageError> {
    let lock = lock_file(database)?;
    match lock.try_lock_shared() {
        Ok(()) => Ok(lock),
        Err(TryLockError::WouldBlock) => Err(StorageError::Conflict(format!(
            "{} is being restored from a backup; try again once `fieldbook restore` has finished",
            database.display()
        ))),
        Err(TryLockError::Error(e)) => Err(io("lock", database, e)),
    }
}

fn lock_file(database: &Path) -> Result<File, StorageError> {
    let path = with_suffix(database, ".lock");
    OpenOptions::new().create(true).truncate(false).write(true).open(&path).map_err(|e| io("open", &path, e))
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn io(what: &str, path: &Path, e: std::io::Error) -> StorageError {
    StorageError::Internal(format!("could not {what} {}: {e}", path.display()))
}
