//! The hub of this node: every connection and every document in memory, shared by the
//! connections. Its parts, each in its own module, in the order a change meets them:
//! [`super::registry`] (who is connected, what they follow), [`super::cache`] (documents in
//! memory, caught up to what is committed), [`super::write_path`] (judge, commit, answer)
//! and [`super::fan_out`] (sending committed changes to every peer that may read them,
//! including changes other nodes committed).

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use fieldbook_sync_core::frameworks::Catalog;
use fieldbook_sync_core::{DocumentId, PeerId, SyncError};

use super::registry::Registry;
use crate::config::{CacheConfig, Limits};
use crate::storage::{AuditLog, Committer, Database, StorageError};

#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error("invalid sync message for {document}: {source}")]
    Sync { document: DocumentId, source: SyncError },
    #[error(transparent)]
    Storage(#[from] StorageError),
}

pub struct DocumentHub {
    pub(super) db: Database,
    pub(super) committer: Committer,
    pub(super) audit: AuditLog,
    pub(super) our_peer_id: PeerId,
    pub(super) config: CacheConfig,
    pub(super) limits: Limits,
    pub(super) next_connection: AtomicU64,
    /// Document reads from the database at once: one per pooled connection. A burst (every
    /// device reconnecting at 9 am) queues here, in order and without a deadline, instead
    /// of timing out waiting for a connection and failing the devices' messages.
    pub(super) reads: tokio::sync::Semaphore,
    registry: Mutex<Registry>,
    /// Framework ids for validation, refreshed from the database (see `refresh_frameworks`).
    catalog: std::sync::RwLock<Arc<Catalog>>,
    /// Ephemeral messages we originate: a session id and a counter, as the protocol wants.
    pub(super) session_id: String,
    pub(super) ephemeral_count: AtomicU64,
}

impl DocumentHub {
    pub fn new(
        db: Database,
        audit: AuditLog,
        our_peer_id: PeerId,
        (config, limits): (CacheConfig, Limits),
        catalog: Catalog,
    ) -> Self {
        Self {
            committer: Committer::start(db.clone()),
            reads: tokio::sync::Semaphore::new(db.max_connections() as usize),
            audit,
            db,
            our_peer_id,
            config,
            limits,
            next_connection: AtomicU64::new(1),
            registry: Mutex::default(),
            catalog: std::sync::RwLock::new(Arc::new(catalog)),
            session_id: uuid::Uuid::new_v4().to_string(),
            ephemeral_count: AtomicU64::new(0),
        }
    }

    /// Reloads the framework catalog (frameworks imported by `fieldbook frameworks import`).
    pub async fn refresh_frameworks(&self) -> Result<(), StorageError> {
        let catalog = self.db.framework_catalog().await?;
        *self.catalog.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(catalog);
        Ok(())
    }

    pub(super) fn catalog(&self) -> Arc<Catalog> {
        self.catalog.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn our_peer_id(&self) -> &PeerId {
        &self.our_peer_id
    }

    pub(super) fn registry(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
