//! Storage: one code path over `sqlx::AnyPool` for SQLite (the embedded default) and
//! PostgreSQL. Queries use `$n` placeholders, which both drivers accept.

mod actors;
mod audit;
pub mod backup;
mod committer;
mod cpd;
mod deletion;
mod development_record;
mod devices;
mod documents;
mod erasure;
mod expertise;
mod feed;
mod frameworks;
mod hr_records;
mod insights;
mod migrations;
mod projections;
mod quarantine;
mod record_index;
mod refresh_tokens;
mod resources;
mod retention;
mod rows;
mod scim;
mod service_accounts;
mod settings;
mod sign_in_throttle;
mod users;

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};

pub use actors::Author;
pub use audit::{AuditEvent, AuditLog, AuditQuery, AuditRow};
pub use committer::{CommitJob, Committer};
pub use cpd::CpdSource;
pub use deletion::{DeleteOutcome, Deletion};
pub use devices::Device;
pub use documents::{Chunk, ChunkKind, CommittedState, DocumentDelta, StoredDocument};
pub use erasure::{LedgerEntry, LedgerKind, NewErasure, RefusedHistory};
pub use expertise::{Champion, Expert};
pub use feed::FeedEvent;
pub use frameworks::{FrameworkSummary, ImportReport};
pub use hr_records::{DevelopmentRecord, Practitioner, RecordSummary};
pub use insights::{InsightCount, InsightFilter};
pub use projections::CommitOutcome;
pub use quarantine::{NewQuarantine, QuarantinedChange};
pub use record_index::{IndexEntry, IndexPage};
pub use refresh_tokens::RefreshToken;
pub use resources::{ResourceImportReport, StoredResource};
pub use retention::{ConsentWithdrawn, LegalHold, RetainedRecord, RetentionPolicy};
pub use rows::{Cell, Rows};
pub use service_accounts::{Scope, ServiceAccount};
pub use sign_in_throttle::{ThrottlePolicy, Throttled};
pub use users::{Role, Supervision, Team, User, UserStatus, require_date};

/// Most bind parameters one statement carries. SQLite allows 32,766 and PostgreSQL 65,535,
/// but binding gets slower than linearly with the count (a 20,000-parameter insert is ~18×
/// slower per row than 900-parameter ones, measured), so statements stay small.
pub(crate) const MAX_PARAMETERS: usize = 999;

/// `sql` with `(LIST)` replaced by `($1, …, $n)` and each of `values` bound in turn: one
/// part (at most [`MAX_PARAMETERS`]) of an `IN` list.
pub(crate) fn query_in<'q, T>(sql: &str, values: &'q [T]) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>
where
    T: AsRef<str>,
{
    let list: Vec<String> = (1..=values.len()).map(|i| format!("${i}")).collect();
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql.replace("(LIST)", &format!("({})", list.join(", ")))));
    for value in values {
        query = query.bind(value.as_ref());
    }
    query
}

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("database error: {0}")]
    Sqlx(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("unsupported database URL {0:?}: use sqlite:PATH or postgres://…")]
    UnsupportedUrl(String),
    #[error("could not create the data directory {path}: {source}")]
    DataDir { path: String, source: std::io::Error },
    #[error("stored document {document} is corrupt: {source}")]
    Corrupt { document: fieldbook_sync_core::DocumentId, source: Box<automerge::AutomergeError> },
    /// The caller's input is not acceptable (it says why).
    #[error("{0}")]
    Refused(String),
    /// The caller asks to create what exists already.
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    NotFound(String),
    /// Something the server itself got wrong.
    #[error("{0}")]
    Internal(String),
}

impl StorageError {
    /// The database is not answering (down, restarting, out of connections): a retry may
    /// succeed, and nothing was written.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            StorageError::Sqlx(
                sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::Tls(_)
            )
        ) || matches!(self, StorageError::Sqlx(sqlx::Error::Database(e))
            if is_shutdown_code(e.code().as_deref()) || e.message().contains("database is locked"))
    }

    /// A row that must be unique exists already (two callers created it at once).
    pub fn is_duplicate(&self) -> bool {
        matches!(self, StorageError::Sqlx(sqlx::Error::Database(e)) if e.is_unique_violation())
    }
}

/// PostgreSQL's codes for a server shutting down or starting up (class 57P).
fn is_shutdown_code(code: Option<&str>) -> bool {
    code.is_some_and(|c| c.starts_with("57P"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A handle on the database; cheap to clone.
#[derive(Clone)]
pub struct Database {
    pool: AnyPool,
    backend: Backend,
    /// SQLite: a shared lock on the database's lock file while this handle lives (see
    /// [`backup::in_use_lock`]).
    _in_use: Option<std::sync::Arc<std::fs::File>>,
}

impl Database {
    /// Connects, creating the SQLite file (and its directory) if needed, and applies the
    /// migrations for the backend.
    pub async fn connect(url: &str) -> Result<Self, StorageError> {
        Self::open(url, true).await
    }

    /// Like [`Self::connect`], without the shared hold on a SQLite database: only for
    /// `fieldbook restore`, which holds it exclusively meanwhile (see [`backup`]).
    pub async fn open_for_restore(url: &str) -> Result<Self, StorageError> {
        Self::open(url, false).await
    }

    async fn open(url: &str, hold: bool) -> Result<Self, StorageError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            return Err(StorageError::UnsupportedUrl(url.to_owned()));
        };
        let mut url = url.to_owned();
        let mut in_use = None;
        if backend == Backend::Sqlite {
            create_sqlite_parent_dir(&url)?;
            if let Some(path) = sqlite_path(&url).filter(|_| hold) {
                in_use = Some(std::sync::Arc::new(backup::share(&path)?));
            }
            if !url.contains("mode=") {
                url.push_str(if url.contains('?') { "&mode=rwc" } else { "?mode=rwc" });
            }
        }
        let options = AnyConnectOptions::from_str(&url)?;
        let pool_options = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { 4 } else { 16 })
            .acquire_timeout(Duration::from_secs(10));
        let pool = match backend {
            // WAL lets readers run beside the writer; synchronous=FULL makes every commit
            // durable before we acknowledge it (rule 1: nothing acknowledged is lost).
            Backend::Sqlite => {
                pool_options
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            conn.execute("PRAGMA journal_mode = WAL").await?;
                            conn.execute("PRAGMA synchronous = FULL").await?;
                            // Checkpoints run in the background (see `checkpoint`), not inside
                            // whichever commit happens to fill the WAL: that stalls a sync.
                            conn.execute("PRAGMA wal_autocheckpoint = 0").await?;
                            conn.execute("PRAGMA foreign_keys = ON").await?;
                            conn.execute("PRAGMA busy_timeout = 10000").await?;
                            // Deleted content is zeroed, not left in free pages (erasure).
                            conn.execute("PRAGMA secure_delete = ON").await?;
                            // The page cache stays at SQLite's default 2 MiB per connection:
                            // the OS caches the file anyway, and 16 MiB made national exports
                            // no faster while their memory grew by 4 connections × 16 MiB.
                            Ok(())
                        })
                    })
                    .connect_with(options)
                    .await?
            }
            Backend::Postgres => pool_options.connect_with(options).await?,
        };
        let db = Self { pool, backend, _in_use: in_use };
        migrations::run(&db).await?;
        db.install_shipped_frameworks().await?;
        db.install_shipped_resources().await?;
        db.project_consent_withdrawn().await?;
        Ok(db)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// A transaction that writes. On SQLite it takes the write lock at once (`BEGIN
    /// IMMEDIATE`): a deferred transaction that reads before it writes cannot wait for
    /// another writer that commits in between, and fails with "database is locked" instead.
    pub(crate) async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, StorageError> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        })
    }

    /// The most connections the pool opens.
    pub fn max_connections(&self) -> u32 {
        self.pool.options().get_max_connections()
    }

    /// Connections the pool holds open, and how many of those are idle.
    pub fn pool_use(&self) -> (u32, usize) {
        (self.pool.size(), self.pool.num_idle())
    }

    /// True when the database answers a trivial query.
    pub async fn is_ready(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }

    /// Copies the SQLite write-ahead log into the database without blocking writers (a
    /// no-op on PostgreSQL). The server calls this every second.
    pub async fn checkpoint(&self) -> Result<(), StorageError> {
        if self.backend == Backend::Sqlite {
            sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").execute(&self.pool).await?;
        }
        Ok(())
    }

    /// Copies the SQLite write-ahead log into the database and truncates it, so nothing the
    /// log held stays on disk (a no-op on PostgreSQL). A reader in the middle of a snapshot
    /// holds it up, so it is tried for a few seconds.
    pub async fn truncate_log(&self) -> Result<(), StorageError> {
        if self.backend != Backend::Sqlite {
            return Ok(());
        }
        for _ in 0..50 {
            let row = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").fetch_one(&self.pool).await?;
            if sqlx::Row::try_get::<i64, _>(&row, 0)? == 0 {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(StorageError::Internal("the write-ahead log could not be truncated: a reader kept it busy".into()))
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// The file of a `sqlite:` URL; `None` for an in-memory database or another URL.
pub fn sqlite_path(url: &str) -> Option<std::path::PathBuf> {
    let path = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let path = path.split('?').next().unwrap_or_default();
    (!path.is_empty() && path != ":memory:").then(|| std::path::PathBuf::from(path))
}

fn create_sqlite_parent_dir(url: &str) -> Result<(), StorageError> {
    let Some(path) = sqlite_path(url) else { return Ok(()) };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|source| StorageError::DataDir { path: parent.display().to_string(), source })?;
    }
    Ok(())
}

pub fn now_millis() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or_default()
}
