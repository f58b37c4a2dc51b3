//! A fresh database for each test: a SQLite file in a temp dir, or a new PostgreSQL database
//! on the server named by `FIELDBOOK_TEST_POSTGRES_URL` (default: the local one). PostgreSQL
//! tests fail, never skip, when it is unreachable: scripts/test starts it.

use std::str::FromStr;

use std::path::PathBuf;

use fieldbook_server::auth::{KeySource, TokenKeys};
use fieldbook_server::storage::{Database, Role, User};
use sqlx::ConnectOptions;

use crate::TempDir;

pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct TestDatabase {
    pub url: String,
    _dir: Option<TempDir>,
}

impl TestDatabase {
    pub async fn new(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => {
                let dir = TempDir::new("db");
                let url = format!("sqlite:{}", dir.path().join("fieldbook.sqlite").display());
                Self { url, _dir: Some(dir) }
            }
            Backend::Postgres => {
                let admin_url =
                    std::env::var("FIELDBOOK_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_POSTGRES_URL.into());
                let name = format!("fieldbook_test_{}", uuid::Uuid::new_v4().simple());
                let options = sqlx::postgres::PgConnectOptions::from_str(&admin_url).expect("postgres URL");
                let mut admin = options.connect().await.unwrap_or_else(|e| {
                    panic!("PostgreSQL at {admin_url} is unreachable ({e}); scripts/test starts it")
                });
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut admin)
                    .await
                    .expect("create database");
                let (base, _) = admin_url.rsplit_once('/').expect("postgres URL has a database");
                Self { url: format!("{base}/{name}"), _dir: None }
            }
        }
    }

    /// A database someone else created (e.g. in a [`crate::private_postgres::PrivatePostgres`]
    /// cluster), with the same helpers and its own signing-key file ([`key_file_for`]).
    pub fn existing(url: String) -> Self {
        Self { url, _dir: None }
    }

    pub async fn connect(&self) -> Database {
        Database::connect(&self.url).await.expect("connect to test database")
    }

    /// Adds a user and returns a fresh token for them.
    pub async fn user(&self, id: &str, role: Role) -> String {
        let db = self.connect().await;
        let user = User::new(id, format!("Test {id}"), role);
        db.add_user(&user).await.expect("add user");
        let token = self.token(&db, id, std::time::Duration::from_secs(3600)).await;
        db.close().await;
        token
    }

    /// A `fieldbook` command run beside the servers, on this database and its signing keys.
    pub fn fieldbook_command(&self) -> std::process::Command {
        let mut command = std::process::Command::new(crate::binary("fieldbook"));
        command
            .env("FIELDBOOK_DATABASE_URL", &self.url)
            .env("FIELDBOOK_SIGNING_KEY_FILE", key_file_for(&self.url))
            .env("RUST_LOG", "warn");
        command
    }

    /// Runs a `fieldbook` admin command on this database; returns stdout.
    pub fn fieldbook(&self, args: &[&str]) -> String {
        let out = self.fieldbook_command().args(args).output().expect("run fieldbook");
        assert!(out.status.success(), "fieldbook {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).expect("utf-8")
    }

    /// Runs one statement behind the server's back (to show what the database refuses).
    pub async fn raw_execute(&self, sql: &str) -> Result<(), String> {
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&self.url).await.map_err(|e| e.to_string())?;
        let result = sqlx::query(sqlx::AssertSqlSafe(sql.to_owned())).execute(&pool).await;
        pool.close().await;
        result.map(|_| ()).map_err(|e| e.to_string())
    }

    /// Whether `text` is anywhere the server stores data: on SQLite, any byte of the database
    /// file and its write-ahead log (free pages included); on PostgreSQL, the live rows of the
    /// chunks, the quarantine and the audit trail.
    pub async fn stores(&self, text: &str) -> bool {
        if let Some(path) = self.url.strip_prefix("sqlite:") {
            let contains = |file: String| {
                std::fs::read(file).is_ok_and(|bytes| bytes.windows(text.len()).any(|w| w == text.as_bytes()))
            };
            return contains(path.to_owned()) || contains(format!("{path}-wal"));
        }
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&self.url).await.expect("connect");
        let mut found = false;
        for sql in [
            "SELECT COUNT(*) FROM document_chunks WHERE position(convert_to($1, 'UTF8') in data) > 0",
            "SELECT COUNT(*) FROM quarantine WHERE position(convert_to($1, 'UTF8') in changes) > 0",
            "SELECT COUNT(*) FROM audit_events WHERE detail LIKE '%' || $1 || '%'",
        ] {
            let n: i64 =
                sqlx::Row::try_get(&sqlx::query(sql).bind(text).fetch_one(&pool).await.expect(sql), 0).expect("count");
            found |= n > 0;
        }
        pool.close().await;
        found
    }

    pub async fn token(&self, _db: &Database, user: &str, ttl: std::time::Duration) -> String {
        self.keys().issue(user, Some("test-device"), ttl).expect("issue token")
    }

    /// The token-signing keys the test's servers use (see [`key_file_for`]).
    pub fn keys(&self) -> TokenKeys {
        let source = KeySource::File(key_file_for(&self.url));
        source.load_or_create().expect("signing keys");
        TokenKeys::load(source).expect("signing keys")
    }
}

/// The token-signing key file of a test database: beside a SQLite file (the server's
/// default), or one per PostgreSQL test database in the temp dir. Test servers and
/// `fieldbook` commands are pointed at it, so tests can mint tokens the server accepts.
pub fn key_file_for(database_url: &str) -> PathBuf {
    fieldbook_server::auth::keys::default_file(database_url).unwrap_or_else(|| {
        // The database name: the last path segment, before any `?sslmode=…&sslrootcert=/…`.
        let path = database_url.split('?').next().unwrap_or(database_url);
        let name = path.rsplit('/').next().unwrap_or("postgres");
        std::env::temp_dir().join("fieldbook-test-keys").join(format!("{name}.json"))
    })
}
