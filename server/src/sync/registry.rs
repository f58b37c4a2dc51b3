//! The connections of this node: who is behind each, what they may see, which documents
//! they follow, and their outboxes.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use fieldbook_sync_core::access::{RecordFacts, Viewer};
use fieldbook_sync_core::{DocumentId, PeerId, notice};
use tokio::sync::Notify;

use super::cache::CachedDocument;
use super::hub::DocumentHub;
use super::outbox::Outbox;
use super::subscriptions::Subscriptions;
use crate::storage::AuditEvent;

/// Server-assigned id of one WebSocket connection (peers choose their own peer ids, which
/// are only used to address messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionId(pub(super) u64);

/// Who is behind a connection, as their token says.
#[derive(Debug, Clone)]
pub struct Sender {
    pub user_id: String,
    pub device_id: Option<String>,
}

pub(super) struct Peer {
    pub(super) peer_id: PeerId,
    /// The peer has sent its `join`.
    joined: bool,
    pub(super) sender: Sender,
    /// What the user may see; replaced when the organisation changes.
    pub(super) viewer: Arc<Viewer>,
    /// Documents this connection has opened, for the audit trail's "opened" events.
    opened: HashSet<DocumentId>,
    /// Documents this connection follows (gets live changes of), at most so many.
    following: Subscriptions,
    outbox: Outbox,
    /// Tells the connection to close (e.g. it cannot keep up with its outbox).
    close: Arc<Notify>,
}

/// Everything the hub keeps under its one short-held lock.
#[derive(Default)]
pub(super) struct Registry {
    pub(super) peers: HashMap<ConnectionId, Peer>,
    pub(super) subscribers: HashMap<DocumentId, HashSet<ConnectionId>>,
    pub(super) cache: HashMap<DocumentId, CachedDocument>,
}

impl DocumentHub {
    /// Registers a connection's outbox; frames for it are pushed there.
    pub fn connect(&self, sender: Sender, viewer: Viewer, outbox: Outbox, close: Arc<Notify>) -> ConnectionId {
        let id = ConnectionId(self.next_connection.fetch_add(1, Ordering::Relaxed));
        let peer = Peer {
            peer_id: PeerId::new(),
            joined: false,
            sender,
            viewer: Arc::new(viewer),
            opened: HashSet::new(),
            following: Subscriptions::new(self.limits.max_subscriptions),
            outbox,
            close,
        };
        let mut registry = self.registry();
        registry.peers.insert(id, peer);
        crate::metrics::connections(registry.peers.len());
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
            if !peer.joined {
                peer.joined = true;
                crate::metrics::peer_joined(true);
            }
        }
    }

    pub fn disconnect(&self, connection: ConnectionId) {
        let mut registry = self.registry();
        let Some(peer) = registry.peers.remove(&connection) else { return };
        if peer.joined {
            crate::metrics::peer_joined(false);
        }
        for document in peer.following.documents() {
            unsubscribe(&mut registry.subscribers, connection, document);
        }
        crate::metrics::connections(registry.peers.len());
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

    pub(super) fn mark_opened(&self, from: ConnectionId, document: DocumentId) -> bool {
        self.registry().peers.get_mut(&from).is_some_and(|p| p.opened.insert(document))
    }

    /// Notes the first time a connection opens a document it may see.
    pub(super) fn opened(&self, from: ConnectionId, sender: &Sender, document: DocumentId) {
        let first = self.mark_opened(from, document);
        if first {
            // Through the background writer: a device opening a thousand records must not
            // cost a thousand commits (each an fsync).
            let audit = self.audit.clone();
            let event =
                AuditEvent::new("record-opened").by(&sender.user_id, sender.device_id.as_deref()).document(document);
            tokio::spawn(async move { audit.record(event).await });
        }
    }

    pub(super) fn who(&self, connection: ConnectionId) -> Option<(Sender, Arc<Viewer>)> {
        self.registry().peers.get(&connection).map(|p| (p.sender.clone(), p.viewer.clone()))
    }

    /// The document's subscribers that may see it.
    pub(super) fn readers(&self, document: DocumentId, today: &str) -> HashSet<ConnectionId> {
        let facts = self.registry().cache.get(&document).and_then(|c| c.facts.clone());
        facts.map(|facts| self.followers_who_may_read(document, &facts, today)).unwrap_or_default()
    }

    /// The document's subscribers that may see a record with these facts.
    pub(super) fn followers_who_may_read(
        &self,
        document: DocumentId,
        facts: &RecordFacts,
        today: &str,
    ) -> HashSet<ConnectionId> {
        let registry = self.registry();
        let Some(subscribers) = registry.subscribers.get(&document) else { return HashSet::new() };
        subscribers
            .iter()
            .filter(|c| registry.peers.get(c).is_some_and(|p| p.viewer.may_read(facts, today)))
            .copied()
            .collect()
    }

    /// Sends a frame to a connection. A peer with more than the limit waiting is too slow
    /// to follow the protocol; it is closed and will resync when it reconnects.
    pub fn send(&self, to: ConnectionId, message_type: &'static str, frame: Vec<u8>) {
        crate::metrics::message_out(message_type, frame.len());
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
    pub(super) fn subscribe(&self, connection: ConnectionId, document: DocumentId) {
        let mut registry = self.registry();
        let Some(peer) = registry.peers.get_mut(&connection) else { return };
        let dropped = peer.following.follow(document);
        registry.subscribers.entry(document).or_default().insert(connection);
        if let Some(dropped) = dropped {
            unsubscribe(&mut registry.subscribers, connection, dropped);
        }
    }
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
