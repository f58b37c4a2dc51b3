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

use fieldbook_sync_core::access::{RecordFacts, Stored, Viewer};
use fieldbook_sync_core::frameworks::Catalog;
use fieldbook_sync_core::notice;
use fieldbook_sync_core::records::dates;
use fieldbook_sync_core::{DocSync, DocumentId, Message, PeerId, SyncError, SyncKind};
use tokio::sync::Notify;

use super::outbox::Outbox;
use super::subscriptions::Subscriptions;
use super::write_path::Accepted;
use crate::config::{CacheConfig, Limits};
use crate::storage::{AuditEvent, AuditLog, Author, ChunkKind, CommitJob, Committer, Database, StorageError};

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
    /// What the user may see; replaced when the organisation changes.
    viewer: Arc<Viewer>,
    /// Documents this connection has opened, for the audit trail's "opened" events.
    opened: HashSet<DocumentId>,
    /// Documents this connection follows (gets live changes of), at most so many.
    following: Subscriptions,
    outbox: Outbox,
    /// Tells the connection to close (e.g. it cannot keep up with its outbox).
    close: Arc<Notify>,
}

pub(super) struct LoadedDocument {
    pub(super) sync: DocSync<ConnectionId>,
    /// The record as stored, kept as JSON so a change costs what it touches (see
    /// [`fieldbook_sync_core::access::judge`]); `None` while the document is empty.
    pub(super) stored: Option<Stored>,
    /// Ids and sizes of the stored chunks this copy was built from (compaction, size limit).
    pub(super) chunks: Vec<(i64, usize)>,
    /// Actor bindings already checked for this document (hex actor id → author).
    pub(super) authors: HashMap<String, Author>,
}

impl LoadedDocument {
    /// Bytes the document takes in storage (an upper bound between compactions).
    pub(super) fn stored_bytes(&self) -> usize {
        self.chunks.iter().map(|(_, len)| len).sum()
    }
}

/// Exclusive use of one document (see [`DocumentHub::lock`]).
pub struct DocumentLock(tokio::sync::OwnedMutexGuard<Option<LoadedDocument>>);

struct CachedDocument {
    /// `None` until loaded, and again after a failed write (forces a reload).
    document: Arc<tokio::sync::Mutex<Option<LoadedDocument>>>,
    /// Who the record concerns, once loaded; kept here so access checks (e.g. for relayed
    /// ephemeral messages) need not take the document's lock. `None`: no record (yet).
    facts: Option<Arc<RecordFacts>>,
    last_used: Instant,
}

#[derive(Default)]
struct Registry {
    peers: HashMap<ConnectionId, Peer>,
    subscribers: HashMap<DocumentId, HashSet<ConnectionId>>,
    cache: HashMap<DocumentId, CachedDocument>,
}

pub struct DocumentHub {
    pub(super) db: Database,
    committer: Committer,
    pub(super) audit: AuditLog,
    our_peer_id: PeerId,
    config: CacheConfig,
    pub(super) limits: Limits,
    next_connection: AtomicU64,
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

    fn registry(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Registers a connection's outbox; frames for it are pushed there.
    pub fn connect(&self, sender: Sender, viewer: Viewer, outbox: Outbox, close: Arc<Notify>) -> ConnectionId {
        let id = ConnectionId(self.next_connection.fetch_add(1, Ordering::Relaxed));
        let peer = Peer {
            peer_id: PeerId::new(),
            sender,
            viewer: Arc::new(viewer),
            opened: HashSet::new(),
            following: Subscriptions::new(self.limits.max_subscriptions),
            outbox,
            close,
        };
        self.registry().peers.insert(id, peer);
        id
    }

    /// Users with an open connection (to refresh what they may see).
    pub fn connected_users(&self) -> Vec<String> {
        let users: HashSet<String> = self.registry().peers.values().map(|p| p.sender.user_id.clone()).collect();
        users.into_iter().collect()
    }

    /// Replaces what a user may see on all their connections. A user who may no longer use
    /// Fieldbook at all (suspended, deleted) is disconnected.
    pub fn update_viewer(&self, user_id: &str, viewer: Option<Viewer>) {
        let viewer = viewer.map(Arc::new);
        for peer in self.registry().peers.values_mut().filter(|p| p.sender.user_id == user_id) {
            match &viewer {
                Some(v) => peer.viewer = v.clone(),
                None => peer.close.notify_one(),
            }
        }
    }

    /// Tells a revoked device's open connections to wipe their local copies, and closes
    /// them.
    pub fn revoke_device(&self, user_id: &str, device_id: &str) -> usize {
        let registry = self.registry();
        let mut closed = 0;
        for peer in registry.peers.values() {
            if peer.sender.user_id == user_id && peer.sender.device_id.as_deref() == Some(device_id) {
                let wipe = notice::wipe_message(&self.our_peer_id, &peer.peer_id, "this device was revoked");
                let _ = peer.outbox.push(wipe);
                peer.close.notify_one();
                closed += 1;
            }
        }
        closed
    }

    /// Records the peer id a connection declared in its `join`.
    pub fn joined(&self, connection: ConnectionId, peer_id: PeerId) {
        if let Some(peer) = self.registry().peers.get_mut(&connection) {
            peer.peer_id = peer_id;
        }
    }

    pub fn disconnect(&self, connection: ConnectionId) {
        let mut registry = self.registry();
        let Some(peer) = registry.peers.remove(&connection) else { return };
        for document in peer.following.documents() {
            unsubscribe(&mut registry.subscribers, connection, document);
        }
    }

    /// Renews a connection's sign-in (a fresh access token sent in-band): what the user may
    /// see is read again with it.
    pub fn renewed(&self, connection: ConnectionId, viewer: Viewer) {
        if let Some(peer) = self.registry().peers.get_mut(&connection) {
            peer.viewer = Arc::new(viewer);
        }
    }

    /// Asks every open connection to close (graceful shutdown). Messages already being
    /// handled finish first, so nothing acknowledged is cut short.
    pub fn close_all(&self) {
        for peer in self.registry().peers.values() {
            peer.close.notify_one();
        }
    }

    /// Documents followed, summed over every connection (each is bounded by
    /// `max_subscriptions`).
    pub fn followed_documents(&self) -> usize {
        self.registry().subscribers.values().map(HashSet::len).sum()
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

    /// Handles a `sync` or `request` message: check access, check the changes, commit
    /// them, then answer every peer that may see the document.
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
        let Some((sender, viewer)) = self.who(from) else { return Ok(()) };
        let today = dates::today();
        if let Some(stored) = &loaded.stored {
            // Need to know: to anyone else the document does not exist.
            if !viewer.may_read(&stored.facts, &today) {
                return self.deny(from, &sender, document, kind, data).await;
            }
            self.opened(from, &sender, document);
        } else if !loaded.sync.is_empty() {
            tracing::warn!(%document, "stored document is not a record; nobody may read it");
            return self.deny(from, &sender, document, kind, data).await;
        }
        tracing::debug!(%document, user = %sender.user_id, bytes = data.len(), ?kind, "sync message");
        let staged = match loaded.sync.stage(&from, kind, data) {
            Ok(staged) => staged,
            Err(source) => {
                // The in-memory copy may be half-applied; rebuild it from storage next time.
                *guard = None;
                return Err(HubError::Sync { document, source });
            }
        };
        let verdict = match staged.verdict() {
            Some(Ok(())) => Ok(None),
            Some(Err(refusal)) => Err(refusal),
            None => self.check(document, loaded, &staged, &sender, &viewer, &today).await?.map(Some),
        };
        let (received, accepted) = match verdict {
            Ok(accepted) => (loaded.sync.accept(staged), accepted),
            Err(refusal) => (loaded.sync.refuse(staged, refusal), None),
        };
        if let Some(rejected) = received.rejected {
            self.reject(from, &sender, document, rejected).await?;
        }
        if let Some(Accepted { judgement, new_actors, audit }) = accepted
            && !received.received_bytes.is_empty()
        {
            // A new document is stored as a snapshot: it loads several times faster than
            // the changes that made it, and saving a small document is cheap. (A save also
            // keeps changes still waiting for their dependencies.)
            let (kind, bytes) = if loaded.chunks.is_empty() {
                (ChunkKind::Snapshot, loaded.sync.doc().save())
            } else {
                (ChunkKind::Incremental, received.received_bytes)
            };
            let chunk_len = bytes.len();
            let stored = judgement.stored;
            let job = CommitJob {
                document,
                kind,
                chunk: bytes,
                record: stored.record.clone(),
                replaces_projection: !loaded.chunks.is_empty(),
                new_actors: new_actors.clone(),
                audit,
                events: judgement.events,
            };
            match self.committer.commit(job).await {
                Ok(id) => {
                    tracing::debug!(%document, chunk = id, "committed");
                    loaded.chunks.push((id, chunk_len))
                }
                Err(e) => {
                    *guard = None;
                    return Err(e.into());
                }
            }
            loaded.authors.extend(new_actors);
            self.set_facts(document, Some(Arc::new(stored.facts.clone())));
            loaded.stored = Some(stored);
            // Its creator has it open; `record-created` says so.
            self.mark_opened(from, document);
            if loaded.chunks.len() > self.config.compact_after_chunks {
                self.compact(document, loaded).await;
            }
        }
        if received.unavailable {
            self.send_unavailable(from, document);
        }
        // Only now, with every new change committed, may our heads go out, and only to
        // those who may see the document. While we have none of it there is nothing to
        // see, and the sender may be about to create it.
        let mut readers = self.readers(document, &today);
        // The sender is answered even if it stopped following the document meanwhile.
        if loaded.sync.is_empty() || loaded.stored.as_ref().is_some_and(|s| viewer.may_read(&s.facts, &today)) {
            readers.insert(from);
        }
        loaded.sync.retain_peers(|c| readers.contains(c));
        for c in &readers {
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

    pub(super) fn send_unavailable(&self, to: ConnectionId, document: DocumentId) {
        let reply = Message::DocUnavailable {
            sender_id: self.our_peer_id.clone(),
            target_id: self.peer_id(to),
            document_id: document,
        };
        self.send(to, reply.encode());
    }

    pub(super) fn mark_opened(&self, from: ConnectionId, document: DocumentId) -> bool {
        self.registry().peers.get_mut(&from).is_some_and(|p| p.opened.insert(document))
    }

    /// Notes the first time a connection opens a document it may see.
    fn opened(&self, from: ConnectionId, sender: &Sender, document: DocumentId) {
        let first = self.mark_opened(from, document);
        if first {
            let db = self.db.clone();
            let event =
                AuditEvent::new("record-opened").by(&sender.user_id, sender.device_id.as_deref()).document(document);
            tokio::spawn(async move {
                if let Err(e) = db.audit(event).await {
                    tracing::warn!(error = %e, "could not write an audit event");
                }
            });
        }
    }

    pub(super) fn who(&self, connection: ConnectionId) -> Option<(Sender, Arc<Viewer>)> {
        self.registry().peers.get(&connection).map(|p| (p.sender.clone(), p.viewer.clone()))
    }

    pub(super) fn facts(&self, document: DocumentId) -> Option<Arc<RecordFacts>> {
        self.registry().cache.get(&document).and_then(|c| c.facts.clone())
    }

    fn set_facts(&self, document: DocumentId, facts: Option<Arc<RecordFacts>>) {
        if let Some(cached) = self.registry().cache.get_mut(&document) {
            cached.facts = facts;
        }
    }

    /// The document's subscribers that may see it.
    fn readers(&self, document: DocumentId, today: &str) -> HashSet<ConnectionId> {
        let registry = self.registry();
        let Some(facts) = registry.cache.get(&document).and_then(|c| c.facts.clone()) else { return HashSet::new() };
        let Some(subscribers) = registry.subscribers.get(&document) else { return HashSet::new() };
        subscribers
            .iter()
            .filter(|c| registry.peers.get(c).is_some_and(|p| p.viewer.may_read(&facts, today)))
            .copied()
            .collect()
    }

    /// Relays an ephemeral message to the other peers of its document, unchanged except for
    /// the target, as the JS Repo does.
    pub fn relay_ephemeral(&self, from: ConnectionId, message: Message) {
        let Message::Ephemeral { sender_id, count, session_id, document_id, data, .. } = message else {
            return;
        };
        if notice::is_server_notice(&data) {
            tracing::warn!(%document_id, "dropped an ephemeral message posing as a server notice");
            return;
        }
        // Only for a document the sender may read; nothing else follows it.
        let today = dates::today();
        let may_read = self
            .facts(document_id)
            .is_some_and(|facts| self.registry().peers.get(&from).is_some_and(|p| p.viewer.may_read(&facts, &today)));
        if !may_read {
            return;
        }
        self.subscribe(from, document_id);
        let readers = self.readers(document_id, &today);
        for to in readers.into_iter().filter(|c| *c != from) {
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

    /// Sends a frame to a connection. A peer with more than the limit waiting is too slow
    /// to follow the protocol; it is closed and will resync when it reconnects.
    pub fn send(&self, to: ConnectionId, frame: Vec<u8>) {
        let registry = self.registry();
        let Some(peer) = registry.peers.get(&to) else { return };
        if peer.outbox.push(frame).is_err() {
            tracing::warn!(connection = to.0, queued = peer.outbox.queued_bytes(), "reader too slow; closing");
            peer.close.notify_one();
        }
    }

    pub(super) fn peer_id(&self, connection: ConnectionId) -> PeerId {
        self.registry().peers.get(&connection).map(|p| p.peer_id.clone()).unwrap_or_default()
    }

    /// The connection follows the document, and stops following the one it followed
    /// longest if that takes it over the limit.
    fn subscribe(&self, connection: ConnectionId, document: DocumentId) {
        let mut registry = self.registry();
        let Some(peer) = registry.peers.get_mut(&connection) else { return };
        let dropped = peer.following.follow(document);
        registry.subscribers.entry(document).or_default().insert(connection);
        if let Some(dropped) = dropped {
            unsubscribe(&mut registry.subscribers, connection, dropped);
        }
    }

    /// The cache cell for a document, created empty if absent; evicts if over capacity.
    fn cached(&self, document: DocumentId) -> Arc<tokio::sync::Mutex<Option<LoadedDocument>>> {
        let mut evicted = Vec::new();
        let mut registry = self.registry();
        let now = Instant::now();
        let cell = {
            let entry = registry.cache.entry(document).or_insert_with(|| CachedDocument {
                document: Arc::new(tokio::sync::Mutex::new(None)),
                facts: None,
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

    /// Evicts least recently used documents over the limit. Called when a message is done
    /// with its document: documents in use when the cache filled up could not go then.
    pub fn trim_cache(&self) {
        let evicted = {
            let mut registry = self.registry();
            if registry.cache.len() <= self.config.max_documents {
                return;
            }
            evict(&mut registry.cache, self.config.max_documents, None)
        };
        drop(evicted); // not under the registry lock
    }

    /// Evicts documents idle for longer than the configured timeout.
    pub fn evict_idle(&self) -> usize {
        let Some(deadline) = Instant::now().checked_sub(self.config.idle_timeout) else { return 0 };
        let evicted = evict(&mut self.registry().cache, 0, Some(deadline));
        evicted.len() // dropped here, after the registry lock is released
    }

    async fn load(&self, document: DocumentId) -> Result<LoadedDocument, HubError> {
        let (doc, chunks) = self.db.load_document(document).await?;
        let stored = if doc.get_heads().is_empty() { None } else { Stored::of(&doc, self.catalog().as_ref()) };
        self.set_facts(document, stored.as_ref().map(|s| Arc::new(s.facts.clone())));
        let mut sync = DocSync::new(doc);
        sync.limit_operations(self.limits.max_operations_per_message());
        let mut loaded = LoadedDocument { sync, stored, chunks, authors: HashMap::new() };
        if loaded.chunks.len() > self.config.compact_after_chunks {
            self.compact(document, &mut loaded).await;
        }
        Ok(loaded)
    }

    /// Folds the chunks this copy knows into one snapshot. Failure is harmless: the chunks
    /// stay, and compaction is tried again later.
    async fn compact(&self, document: DocumentId, loaded: &mut LoadedDocument) {
        let snapshot = loaded.sync.doc().save();
        let ids: Vec<i64> = loaded.chunks.iter().map(|(id, _)| *id).collect();
        match self.db.compact(document, &snapshot, &ids).await {
            Ok(id) => loaded.chunks = vec![(id, snapshot.len())],
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

fn unsubscribe(
    subscribers: &mut HashMap<DocumentId, HashSet<ConnectionId>>,
    connection: ConnectionId,
    document: DocumentId,
) {
    if let Some(connections) = subscribers.get_mut(&document) {
        connections.remove(&connection);
        if connections.is_empty() {
            subscribers.remove(&document);
        }
    }
}
