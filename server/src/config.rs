//! Server settings, from the command line or the environment.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use crate::auth::AuthConfig;

/// Where the server stores its data when no database URL is given.
pub const DEFAULT_DATABASE_URL: &str = "sqlite:fieldbook-data/fieldbook.sqlite";

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub database_url: String,
    pub limits: Limits,
    pub cache: CacheConfig,
    pub auth: AuthConfig,
    /// The address people and systems reach this server at; xAPI statements name records
    /// and people under it. Default: `http://` + the listen address.
    pub public_url: Option<String>,
    /// Serve the web app from this directory rather than the build inside the binary (see
    /// [`crate::web`]).
    pub web_dir: Option<PathBuf>,
    /// Where to serve Prometheus metrics (`GET /metrics`); none by default.
    pub metrics_listen: Option<SocketAddr>,
    /// How often the retention job deletes what has expired (see [`crate::retention`]).
    pub retention_every: Duration,
}

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest protocol frame a peer may send; larger ones get an `error` and a close.
    pub max_frame_bytes: usize,
    /// Development-records API calls per minute per caller (account or person).
    pub api_calls_per_minute: u32,
    /// Largest a record may grow, in bytes as stored; a change beyond it is refused.
    pub max_document_bytes: usize,
    /// Documents one connection follows at once. Beyond it, the one followed longest stops
    /// receiving live changes until the peer next sends a message about it.
    pub max_subscriptions: usize,
    /// Bytes waiting to be sent to one connection; a reader that falls further behind is
    /// disconnected (it resyncs when it reconnects), never buffered without end.
    pub max_queued_bytes: usize,
    /// Protocol messages one connection may send per second, sustained; beyond it (and the
    /// burst) the server reads its messages more slowly.
    pub messages_per_second: u32,
    pub message_burst: u32,
}

#[derive(Debug, Clone, Copy)]
pub struct CacheConfig {
    /// Documents kept in memory at most; least recently used idle ones are evicted first.
    pub max_documents: usize,
    /// A document nobody has touched for this long is evicted.
    pub idle_timeout: Duration,
    /// Fold a document's incremental chunks into a snapshot once it has this many.
    pub compact_after_chunks: usize,
}

impl Limits {
    /// Most operations one incoming message may carry: one per four bytes a record may take
    /// (a million by default). Checked before the message is applied, since a small,
    /// compressed message can expand to a great many.
    pub fn max_operations_per_message(&self) -> usize {
        (self.max_document_bytes / 4).max(1)
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_frame_bytes: 8 * 1024 * 1024,
            api_calls_per_minute: 600,
            max_document_bytes: 4 * 1024 * 1024,
            max_subscriptions: 10_000,
            max_queued_bytes: 32 * 1024 * 1024,
            messages_per_second: 500,
            message_burst: 10_000,
        }
    }
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self { max_documents: 1000, idle_timeout: Duration::from_secs(60), compact_after_chunks: 32 }
    }
}

impl ServerConfig {
    pub fn new(listen: SocketAddr, database_url: impl Into<String>) -> Self {
        Self {
            listen,
            database_url: database_url.into(),
            limits: Limits::default(),
            cache: CacheConfig::default(),
            auth: AuthConfig::default(),
            public_url: None,
            web_dir: None,
            metrics_listen: None,
            retention_every: Duration::from_secs(24 * 60 * 60),
        }
    }
}
