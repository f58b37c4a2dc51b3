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

use fieldbook_sync_core::access::{RecordFacts, Viewer, WriteCheck, check_write};
use fieldbook_sync_core::frameworks::Catalog;
use fieldbook_sync_core::notice::{self, RejectionNotice};
use fieldbook_sync_core::records::events::RecordEvent;
use fieldbook_sync_core::records::{self, dates};
use fieldbook_sync_core::{DocSync, DocumentId, Message, PeerId, Record, Staged, SyncError, SyncKind, json};
use serde_json::json;
use tokio::sync::{Notify, mpsc};

use crate::config::CacheConfig;
use crate::storage::{
    AuditEvent, AuditLog, Author, ChunkKind, CommitJob, Committer, Database, NewQuarantine, StorageError,
};

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
    outbox: mpsc::Sender<Vec<u8>>,
    /// Tells the connection to close (e.g. it cannot keep up with its outbox).
    close: Arc<Notify>,
}

struct LoadedDocument {
    sync: DocSync<ConnectionId>,
    /// Ids of the stored chunks this copy was built from, for compaction.
    chunk_ids: Vec<i64>,
    /// Actor bindings already checked for this document (hex actor id → author).
    authors: HashMap<String, Author>,
}

/// What a checked message would do, if accepted.
struct Accepted {
    record: Record,
    new_actors: Vec<(String, Author)>,
    audit: Vec<AuditEvent>,
    events: Vec<RecordEvent>,
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
    subscriptions: HashMap<ConnectionId, HashSet<DocumentId>>,
    cache: HashMap<DocumentId, CachedDocument>,
}

pub struct DocumentHub {
    db: Database,
    committer: Committer,
    audit: AuditLog,
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
    pub fn new(db: Database, audit: AuditLog, our_peer_id: PeerId, config: CacheConfig, catalog: Catalog) -> Self {
        Self {
            committer: Committer::start(db.clone()),
            audit,
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
    pub fn connect(
        &self,
        sender: Sender,
        viewer: Viewer,
        outbox: mpsc::Sender<Vec<u8>>,
        close: Arc<Notify>,
    ) -> ConnectionId {
        let id = ConnectionId(self.next_connection.fetch_add(1, Ordering::Relaxed));
        let peer =
            Peer { peer_id: PeerId::new(), sender, viewer: Arc::new(viewer), opened: HashSet::new(), outbox, close };
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
                let _ = peer.outbox.try_send(wipe);
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
        let facts = self.facts(document);
        if !loaded.sync.is_empty() {
            // Need to know: to anyone else the document does not exist.
            if !facts.as_ref().is_some_and(|f| viewer.may_read(f, &today)) {
                return self.deny(from, &sender, document, kind, data).await;
            }
            self.opened(from, &sender, document);
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
            Some(Err(reason)) => Err(reason),
            None => self.check(document, loaded, &staged, &sender, &viewer, facts.as_deref(), &today).await?.map(Some),
        };
        let (received, accepted) = match verdict {
            Ok(accepted) => (loaded.sync.accept(staged), accepted),
            Err(reason) => (loaded.sync.refuse(staged, reason), None),
        };
        if let Some(rejected) = received.rejected {
            self.reject(from, &sender, document, rejected).await?;
        }
        if let Some(Accepted { record, new_actors, audit, events }) = accepted
            && !received.received_bytes.is_empty()
        {
            // A new document is stored as a snapshot: it loads several times faster than
            // the changes that made it, and saving a small document is cheap. (A save also
            // keeps changes still waiting for their dependencies.)
            let (kind, bytes) = if loaded.chunk_ids.is_empty() {
                (ChunkKind::Snapshot, loaded.sync.doc().save())
            } else {
                (ChunkKind::Incremental, received.received_bytes)
            };
            let new_facts = Arc::new(RecordFacts::of(&record));
            let replaces_projection = !loaded.chunk_ids.is_empty();
            let job = CommitJob {
                document,
                kind,
                chunk: bytes,
                record: Some(record),
                replaces_projection,
                new_actors: new_actors.clone(),
                audit,
                events,
            };
            match self.committer.commit(job).await {
                Ok(id) => {
                    tracing::debug!(%document, chunk = id, "committed");
                    loaded.chunk_ids.push(id)
                }
                Err(e) => {
                    *guard = None;
                    return Err(e.into());
                }
            }
            loaded.authors.extend(new_actors);
            self.set_facts(document, Some(new_facts));
            // Its creator has it open; `record-created` says so.
            self.mark_opened(from, document);
            if loaded.chunk_ids.len() > self.config.compact_after_chunks {
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
        if loaded.sync.is_empty() {
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

    /// Checks a message's new changes: the record stays valid, the sender writes only what
    /// their part in the record allows, and every change's actor is theirs.
    #[allow(clippy::too_many_arguments)]
    async fn check(
        &self,
        document: DocumentId,
        loaded: &LoadedDocument,
        staged: &Staged<ConnectionId>,
        sender: &Sender,
        viewer: &Viewer,
        facts: Option<&RecordFacts>,
        today: &str,
    ) -> Result<Result<Accepted, String>, HubError> {
        let before_json = json::to_json(loaded.sync.doc());
        let after_json = json::to_json(staged.after());
        if facts.is_some_and(|f| f.locked) && !records::completes_sign_off(&before_json, &after_json) {
            return Ok(Err(
                "the record is locked (signed off by both parties, or closed); the change was kept aside for review"
                    .into(),
            ));
        }
        let catalog = self.catalog();
        let record = match Record::parse(&after_json, catalog.as_ref()) {
            Ok(record) => record,
            Err(e) => return Ok(Err(format!("invalid record: {e}"))),
        };
        // Stored documents were valid when accepted; a framework retired since keeps its ids.
        let before_record = if facts.is_some() { Record::parse(&before_json, catalog.as_ref()).ok() } else { None };
        let after_facts = RecordFacts::of(&record);
        // The sender's part is fixed by the record as stored; a new record names it itself.
        let party = viewer.party(facts.unwrap_or(&after_facts), today);
        // A creation is judged by the document it makes (see `check_write`).
        let changes = if before_record.is_some() { staged.new_changes() } else { Vec::new() };
        let write = WriteCheck {
            party,
            before_record: before_record.as_ref(),
            after_record: &record,
            before_json: &before_json,
            after_json: &after_json,
            after: staged.after(),
            changes: &changes,
        };
        let fields = match check_write(&write) {
            Ok(fields) => fields,
            Err(reason) => return Ok(Err(reason)),
        };
        // On a locked record, not even a write that stays hidden in a conflict.
        if facts.is_some_and(|f| f.locked) && fields.iter().any(|f| f != "status") {
            return Ok(Err("the record is locked (signed off by both parties); only its status may catch up".into()));
        }
        let me = Author { user_id: sender.user_id.clone(), device_id: sender.device_id.clone() };
        let metadata = staged.new_change_metadata();
        let actors: HashSet<String> = metadata.iter().map(|c| c.actor.to_hex_string()).collect();
        let unknown: Vec<String> = actors.iter().filter(|a| !loaded.authors.contains_key(*a)).cloned().collect();
        let stored = if unknown.is_empty() { HashMap::new() } else { self.db.actor_bindings(&unknown).await? };
        let mut new_actors = Vec::new();
        for actor in &actors {
            match loaded.authors.get(actor).or_else(|| stored.get(actor)) {
                Some(author) if *author == me => {}
                Some(_) => {
                    return Ok(Err(format!(
                        "changes by actor {actor} belong to another user or device; each actor writes for one"
                    )));
                }
                None => new_actors.push((actor.clone(), me.clone())),
            }
        }
        let device_time = metadata.iter().map(|c| c.timestamp).max().and_then(device_millis);
        let hashes: Vec<String> = metadata.iter().map(|c| c.hash.to_string()).collect();
        let event = |action: &'static str| {
            let mut e = AuditEvent::new(action).by(&sender.user_id, sender.device_id.as_deref()).document(document);
            e.device_time = device_time;
            e
        };
        let mut audit =
            vec![event(if facts.is_none() { "record-created" } else { "changes-accepted" }).detail(json!({
                "party": party.as_str(), "changes": hashes.len(), "changeHashes": hashes, "fields": fields,
            }))];
        if let Record::Observation(after) = &record {
            for side in ["observer", "practitioner"] {
                let before = matches!(&before_record, Some(Record::Observation(b)) if b.signed(side));
                if after.signed(side) && !before {
                    audit.push(event("signed-off").detail(json!({ "side": side, "locked": after.is_locked() })));
                }
            }
        }
        let events = fieldbook_sync_core::records::events::events(before_record.as_ref(), &record);
        Ok(Ok(Accepted { record, new_actors, audit, events }))
    }

    /// Answers someone who may not see a document exactly as if it did not exist (as an
    /// empty document would answer), then keeps aside any changes they sent (never merged,
    /// never dropped) and audits the attempt, off the document's lock.
    async fn deny(
        &self,
        from: ConnectionId,
        sender: &Sender,
        document: DocumentId,
        kind: SyncKind,
        data: &[u8],
    ) -> Result<(), HubError> {
        let changes: Vec<u8> = automerge::sync::Message::decode(data)
            .map(|m| m.changes.iter().flatten().copied().collect())
            .map_err(|e| HubError::Sync { document, source: e.into() })?;
        if changes.is_empty() {
            let mut nothing = DocSync::new(automerge::Automerge::new());
            let received = nothing.receive(&from, kind, data).map_err(|source| HubError::Sync { document, source })?;
            if received.unavailable {
                self.send_unavailable(from, document);
            } else if let Some(out) = nothing.outgoing_for(&from) {
                let message = Message::Sync {
                    kind: out.kind,
                    sender_id: self.our_peer_id.clone(),
                    target_id: self.peer_id(from),
                    document_id: document,
                    data: out.data,
                };
                self.send(from, message.encode());
            }
        } else {
            self.send_unavailable(from, document);
        }
        let (db, audit, sender) = (self.db.clone(), self.audit.clone(), sender.clone());
        tokio::spawn(async move {
            let kept_aside = !changes.is_empty();
            if kept_aside {
                let entry = NewQuarantine {
                    document,
                    user_id: &sender.user_id,
                    device_id: sender.device_id.as_deref(),
                    reason: "sent by someone who may not see this record",
                    change_hashes: &[],
                    changes: &changes,
                };
                if let Err(e) = db.quarantine(entry).await {
                    tracing::error!(error = %e, %document, "could not keep refused changes aside");
                }
            }
            let event = AuditEvent::new("access-denied")
                .by(&sender.user_id, sender.device_id.as_deref())
                .document(document)
                .detail(json!({ "changesKeptAside": kept_aside }));
            audit.record(event).await;
        });
        Ok(())
    }

    fn send_unavailable(&self, to: ConnectionId, document: DocumentId) {
        let reply = Message::DocUnavailable {
            sender_id: self.our_peer_id.clone(),
            target_id: self.peer_id(to),
            document_id: document,
        };
        self.send(to, reply.encode());
    }

    fn mark_opened(&self, from: ConnectionId, document: DocumentId) -> bool {
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

    fn who(&self, connection: ConnectionId) -> Option<(Sender, Arc<Viewer>)> {
        self.registry().peers.get(&connection).map(|p| (p.sender.clone(), p.viewer.clone()))
    }

    fn facts(&self, document: DocumentId) -> Option<Arc<RecordFacts>> {
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

    /// Keeps refused changes aside with who sent them and why, and tells the sender with a
    /// `fieldbook/rejected` ephemeral message on the document.
    async fn reject(
        &self,
        from: ConnectionId,
        sender: &Sender,
        document: DocumentId,
        rejected: fieldbook_sync_core::Rejected,
    ) -> Result<(), HubError> {
        let peer_id = self.peer_id(from);
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
        let event = AuditEvent::new("changes-rejected")
            .by(&sender.user_id, sender.device_id.as_deref())
            .document(document)
            .detail(json!({ "quarantine": id, "reason": without_values(&rejected.reason), "changeHashes": hashes }));
        self.db.audit(event).await?;
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
        if notice::is_server_notice(&data) {
            tracing::warn!(%document_id, "dropped an ephemeral message posing as a server notice");
            return;
        }
        self.subscribe(from, document_id);
        let readers = self.readers(document_id, &dates::today());
        if !readers.contains(&from) {
            return;
        }
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
        let (doc, chunk_ids) = self.db.load_document(document).await?;
        let facts = if doc.get_heads().is_empty() {
            None
        } else {
            let facts = RecordFacts::of_document(&doc).map(Arc::new);
            if facts.is_none() {
                tracing::warn!(%document, "stored document is not a record; nobody may read it");
            }
            facts
        };
        self.set_facts(document, facts);
        let mut loaded = LoadedDocument { sync: DocSync::new(doc), chunk_ids, authors: HashMap::new() };
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

/// A refusal reason for the audit trail: quoted values (which may be whatever a client
/// wrote into a field) are left out; the quarantine keeps the whole reason.
fn without_values(reason: &str) -> String {
    let mut out = String::with_capacity(reason.len());
    let mut quoted = false;
    for c in reason.chars() {
        match (c, quoted) {
            ('"', false) => {
                quoted = true;
                out.push('…');
            }
            ('"', true) => quoted = false,
            (c, false) => out.push(c),
            (_, true) => {}
        }
    }
    out
}

/// Automerge change times are advisory: seconds from Rust clients, milliseconds from
/// JavaScript ones. Normalised to milliseconds; 0 means "not given".
fn device_millis(timestamp: i64) -> Option<i64> {
    match timestamp {
        t if t <= 0 => None,
        t if t < 100_000_000_000 => Some(t * 1000),
        t => Some(t),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_reasons_leave_out_what_clients_wrote() {
        let reason = r#"invalid record: setting: "mum said she was scared" is not one of home-visit, other"#;
        assert_eq!(without_values(reason), "invalid record: setting: … is not one of home-visit, other");
        assert_eq!(
            without_values("the practitioner may not change feedback"),
            "the practitioner may not change feedback"
        );
    }
}
