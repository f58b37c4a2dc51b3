//! Loaded documents, who is syncing them, and the durability contract.
//!
//! Each document is behind its own async mutex: one incoming message is applied, its new
//! changes are committed to the database, and only then are sync messages (which carry our
//! heads) generated for the peers. Documents load on demand and are evicted when idle or
//! when the cache is full, so memory follows the working set, not the number stored.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use fieldbook_sync_core::frameworks::Catalog;
use fieldbook_sync_core::notice::RejectionNotice;
use fieldbook_sync_core::{DocSync, DocumentId, Message, PeerId, Record, SyncError, SyncKind, json};
use tokio::sync::{Notify, mpsc};

use crate::config::CacheConfig;
use crate::storage::{ChunkKind, CommitJob, Committer, Database, NewQuarantine, StorageError};

/// Server-assigned id of one WebSocket connection (peers choose their own peer ids, which
/// are only used to address messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionId(u64);

#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error("invalid sync message for {document}: {source}")]
    Sync { document: DocumentId, source: SyncError },
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Who is behind a connection, as their token says.
#[derive(Debug, Clone)]
pub struct Sender {
    pub user_id: String,
    pub device_id: Option<String>,
}

struct Peer {
    peer_id: PeerId,
    sender: Sender,
    outbox: mpsc::Sender<Vec<u8>>,
    /// Tells the connection to close (e.g. it cannot keep up with its outbox).
    close: Arc<Notify>,
}

struct LoadedDocument {
    sync: DocSync<ConnectionId>,
    /// Ids of the stored chunks this copy was built from, for compaction.
    chunk_ids: Vec<i64>,
    /// Signed off (observation) or closed (plan): no change is accepted any more. Worked
    /// out when the first change arrives, not on every load (most loads only serve reads).
    locked: Option<bool>,
}

/// Exclusive use of one document (see [`DocumentHub::lock`]).
pub struct DocumentLock(tokio::sync::OwnedMutexGuard<Option<LoadedDocument>>);

struct CachedDocument {
    /// `None` until loaded, and again after a failed write (forces a reload).
    document: Arc<tokio::sync::Mutex<Option<LoadedDocument>>>,
    last_used: Instant,
}

#[derive(Default)]
struct Registry {
    peers: HashMap<ConnectionId, Peer>,
    subscribers: HashMap<DocumentId, HashSet<ConnectionId>>,
    subscriptions: HashMap<ConnectionId, HashSet<DocumentId>>,
    cache: HashMap<DocumentId, CachedDocument>,
}

pub struct DocumentHub {
    db: Database,
    committer: Committer,
    our_peer_id: PeerId,
    config: CacheConfig,
    next_connection: AtomicU64,
    registry: Mutex<Registry>,
    /// Framework ids for validation, refreshed from the database (see `refresh_frameworks`).
    catalog: std::sync::RwLock<Arc<Catalog>>,
    /// Ephemeral messages we originate: a session id and a counter, as the protocol wants.
    session_id: String,
    ephemeral_count: AtomicU64,
}

impl DocumentHub {
    pub fn new(db: Database, our_peer_id: PeerId, config: CacheConfig, catalog: Catalog) -> Self {
        Self {
            committer: Committer::start(db.clone()),
            db,
            our_peer_id,
            config,
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

    fn catalog(&self) -> Arc<Catalog> {
        self.catalog.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn our_peer_id(&self) -> &PeerId {
        &self.our_peer_id
    }

    fn registry(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Registers a connection's outbox; frames for it are pushed there.
    pub fn connect(&self, sender: Sender, outbox: mpsc::Sender<Vec<u8>>, close: Arc<Notify>) -> ConnectionId {
        let id = ConnectionId(self.next_connection.fetch_add(1, Ordering::Relaxed));
        self.registry().peers.insert(id, Peer { peer_id: PeerId::new(), sender, outbox, close });
        id
    }

    /// Records the peer id a connection declared in its `join`.
    pub fn joined(&self, connection: ConnectionId, peer_id: PeerId) {
        if let Some(peer) = self.registry().peers.get_mut(&connection) {
            peer.peer_id = peer_id;
        }
    }

    pub fn disconnect(&self, connection: ConnectionId) {
        let mut registry = self.registry();
        registry.peers.remove(&connection);
        for document in registry.subscriptions.remove(&connection).unwrap_or_default() {
            if let Some(subscribers) = registry.subscribers.get_mut(&document) {
                subscribers.remove(&connection);
                if subscribers.is_empty() {
                    registry.subscribers.remove(&document);
                }
            }
        }
    }

    /// Asks every open connection to close (graceful shutdown). Messages already being
    /// handled finish first, so nothing acknowledged is cut short.
    pub fn close_all(&self) {
        for peer in self.registry().peers.values() {
            peer.close.notify_one();
        }
    }

    /// Number of documents currently in memory.
    pub fn cached_documents(&self) -> usize {
        self.registry().cache.len()
    }

    /// Takes a document for one incoming message. Connections take locks in the order
    /// their messages arrive and may then handle different documents concurrently; messages
    /// about one document are handled in order.
    pub async fn lock(&self, from: ConnectionId, document: DocumentId) -> DocumentLock {
        self.subscribe(from, document);
        DocumentLock(self.cached(document).lock_owned().await)
    }

    /// Handles a `sync` or `request` message: check, apply, commit, then answer every peer.
    pub async fn receive_sync(
        &self,
        DocumentLock(mut guard): DocumentLock,
        from: ConnectionId,
        document: DocumentId,
        kind: SyncKind,
        data: &[u8],
    ) -> Result<(), HubError> {
        if guard.is_none() {
            *guard = Some(self.load(document).await?);
        }
        let loaded = guard.as_mut().expect("loaded above");
        // Every change is checked on a scratch copy: the result must be a valid record, and
        // a locked record takes no change at all.
        let catalog = self.catalog();
        let known_lock = loaded.locked;
        let mut found_lock = None;
        let mut record = None;
        let received = match loaded.sync.receive_checked(&from, kind, data, |before, after| {
            let locked = known_lock.unwrap_or_else(|| {
                let locked = Record::parse(&json::to_json(before), catalog.as_ref()).is_ok_and(|r| r.is_locked());
                found_lock = Some(locked);
                locked
            });
            if locked {
                return Err("the record is locked (signed off by both parties, or closed); the change was kept aside for review".into());
            }
            let parsed = Record::parse(&json::to_json(after), catalog.as_ref()).map_err(|e| format!("invalid record: {e}"))?;
            record = Some(parsed);
            Ok(())
        }) {
            Ok(received) => received,
            Err(source) => {
                // The in-memory copy may be half-applied; rebuild it from storage next time.
                *guard = None;
                return Err(HubError::Sync { document, source });
            }
        };
        if found_lock.is_some() {
            loaded.locked = found_lock;
        }
        if let Some(rejected) = received.rejected {
            self.reject(from, document, rejected).await?;
        }
        if !received.received_bytes.is_empty() {
            // A new document is stored as a snapshot: it loads several times faster than
            // the changes that made it, and saving a small document is cheap. (A save also
            // keeps changes still waiting for their dependencies.)
            let (kind, bytes) = if loaded.chunk_ids.is_empty() {
                (ChunkKind::Snapshot, loaded.sync.doc().save())
            } else {
                (ChunkKind::Incremental, received.received_bytes)
            };
            let locked = record.as_ref().is_some_and(Record::is_locked);
            let replaces_projection = !loaded.chunk_ids.is_empty();
            match self
                .committer
                .commit(CommitJob {
                    document,
                    kind,
                    chunk: bytes,
                    record,
                    replaces_projection,
                    new_actors: Vec::new(),
                    audit: Vec::new(),
                })
                .await
            {
                Ok(id) => loaded.chunk_ids.push(id),
                Err(e) => {
                    *guard = None;
                    return Err(e.into());
                }
            }
            loaded.locked = Some(locked);
            if loaded.chunk_ids.len() > self.config.compact_after_chunks {
                self.compact(document, loaded).await;
            }
        }
        if received.unavailable {
            let peer_id = self.peer_id(from);
            let reply = Message::DocUnavailable {
                sender_id: self.our_peer_id.clone(),
                target_id: peer_id,
                document_id: document,
            };
            self.send(from, reply.encode());
        }
        // Only now, with every new change committed, may our heads go out.
        let subscribers = self.subscribers(document);
        loaded.sync.retain_peers(|c| subscribers.contains(c));
        for c in &subscribers {
            loaded.sync.add_peer(*c);
        }
        for out in loaded.sync.outgoing() {
            let message = Message::Sync {
                kind: out.kind,
                sender_id: self.our_peer_id.clone(),
                target_id: self.peer_id(out.peer),
                document_id: document,
                data: out.data,
            };
            self.send(out.peer, message.encode());
        }
        Ok(())
    }

    /// Keeps refused changes aside with who sent them and why, and tells the sender with a
    /// `fieldbook/rejected` ephemeral message on the document.
    async fn reject(
        &self,
        from: ConnectionId,
        document: DocumentId,
        rejected: fieldbook_sync_core::Rejected,
    ) -> Result<(), HubError> {
        let (peer_id, sender) = {
            let registry = self.registry();
            let Some(peer) = registry.peers.get(&from) else { return Ok(()) };
            (peer.peer_id.clone(), peer.sender.clone())
        };
        let hashes: Vec<String> = rejected.change_hashes.iter().map(ToString::to_string).collect();
        let id = self
            .db
            .quarantine(NewQuarantine {
                document,
                user_id: &sender.user_id,
                device_id: sender.device_id.as_deref(),
                reason: &rejected.reason,
                change_hashes: &hashes,
                changes: &rejected.bytes,
            })
            .await?;
        tracing::info!(%document, quarantine = id, user = %sender.user_id, reason = %rejected.reason, "rejected changes");
        let notice = RejectionNotice { reason: rejected.reason, change_hashes: hashes };
        let message = Message::Ephemeral {
            sender_id: self.our_peer_id.clone(),
            target_id: peer_id,
            count: self.ephemeral_count.fetch_add(1, Ordering::Relaxed),
            session_id: self.session_id.clone(),
            document_id: document,
            data: notice.encode(),
        };
        self.send(from, message.encode());
        Ok(())
    }

    /// Relays an ephemeral message to the other peers of its document, unchanged except for
    /// the target, as the JS Repo does.
    pub fn relay_ephemeral(&self, from: ConnectionId, message: Message) {
        let Message::Ephemeral { sender_id, count, session_id, document_id, data, .. } = message else {
            return;
        };
        self.subscribe(from, document_id);
        for to in self.subscribers(document_id).into_iter().filter(|c| *c != from) {
            let relayed = Message::Ephemeral {
                sender_id: sender_id.clone(),
                target_id: self.peer_id(to),
                count,
                session_id: session_id.clone(),
                document_id,
                data: data.clone(),
            };
            self.send(to, relayed.encode());
        }
    }

    /// Sends a frame to a connection. A peer whose outbox is full is too slow to follow
    /// the protocol; it is closed and will resync when it reconnects.
    pub fn send(&self, to: ConnectionId, frame: Vec<u8>) {
        let registry = self.registry();
        let Some(peer) = registry.peers.get(&to) else { return };
        if let Err(mpsc::error::TrySendError::Full(_)) = peer.outbox.try_send(frame) {
            tracing::warn!(connection = to.0, "outbox full; closing slow connection");
            peer.close.notify_one();
        }
    }

    fn peer_id(&self, connection: ConnectionId) -> PeerId {
        self.registry().peers.get(&connection).map(|p| p.peer_id.clone()).unwrap_or_default()
    }

    fn subscribe(&self, connection: ConnectionId, document: DocumentId) {
        let mut registry = self.registry();
        if !registry.peers.contains_key(&connection) {
            return;
        }
        registry.subscribers.entry(document).or_default().insert(connection);
        registry.subscriptions.entry(connection).or_default().insert(document);
    }

    fn subscribers(&self, document: DocumentId) -> HashSet<ConnectionId> {
        self.registry().subscribers.get(&document).cloned().unwrap_or_default()
    }

    /// The cache cell for a document, created empty if absent; evicts if over capacity.
    fn cached(&self, document: DocumentId) -> Arc<tokio::sync::Mutex<Option<LoadedDocument>>> {
        let mut evicted = Vec::new();
        let mut registry = self.registry();
        let now = Instant::now();
        let cell = {
            let entry = registry.cache.entry(document).or_insert_with(|| CachedDocument {
                document: Arc::new(tokio::sync::Mutex::new(None)),
                last_used: now,
            });
            entry.last_used = now;
            entry.document.clone()
        };
        if registry.cache.len() > self.config.max_documents {
            evicted = evict(&mut registry.cache, self.config.max_documents, None);
        }
        drop(registry);
        drop(evicted); // freeing documents can take a while; not under the lock
        cell
    }

    /// Evicts documents idle for longer than the configured timeout.
    pub fn evict_idle(&self) -> usize {
        let Some(deadline) = Instant::now().checked_sub(self.config.idle_timeout) else { return 0 };
        let evicted = evict(&mut self.registry().cache, 0, Some(deadline));
        evicted.len() // dropped here, after the registry lock is released
    }

    async fn load(&self, document: DocumentId) -> Result<LoadedDocument, HubError> {
        let (doc, chunk_ids) = self.db.load_document(document).await?;
        let mut loaded = LoadedDocument { sync: DocSync::new(doc), chunk_ids, locked: None };
        if loaded.chunk_ids.len() > self.config.compact_after_chunks {
            self.compact(document, &mut loaded).await;
        }
        Ok(loaded)
    }

    /// Folds the chunks this copy knows into one snapshot. Failure is harmless: the chunks
    /// stay, and compaction is tried again later.
    async fn compact(&self, document: DocumentId, loaded: &mut LoadedDocument) {
        let snapshot = loaded.sync.doc().save();
        match self.db.compact(document, &snapshot, &loaded.chunk_ids).await {
            Ok(id) => loaded.chunk_ids = vec![id],
            Err(e) => tracing::warn!(%document, error = %e, "compaction failed; will retry"),
        }
    }
}

/// Drops unused documents, least recently used first, until at most `keep` remain (or,
/// with a deadline, every unused one last touched before it). A document in use (its
/// mutex is held or awaited by someone) is never evicted.
fn evict(
    cache: &mut HashMap<DocumentId, CachedDocument>,
    keep: usize,
    older_than: Option<Instant>,
) -> Vec<CachedDocument> {
    let mut candidates: Vec<(Instant, DocumentId)> = cache
        .iter()
        .filter(|(_, c)| Arc::strong_count(&c.document) == 1)
        .filter(|(_, c)| older_than.is_none_or(|deadline| c.last_used < deadline))
        .map(|(id, c)| (c.last_used, *id))
        .collect();
    candidates.sort_unstable();
    let excess = if older_than.is_some() { candidates.len() } else { cache.len().saturating_sub(keep) };
    candidates.into_iter().take(excess).filter_map(|(_, id)| cache.remove(&id)).collect()
}
