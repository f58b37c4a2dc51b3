//! Sending what is committed to every peer that may read it: after a message is committed
//! here, and when another node commits (heard on the cross-node channel, see
//! [`crate::cluster`]). Also the messages the hub sends of its own accord: notices,
//! `doc-unavailable`, relayed ephemeral messages.

use std::sync::atomic::Ordering;

use fieldbook_sync_core::access::Viewer;
use fieldbook_sync_core::records::dates;
use fieldbook_sync_core::{DocumentId, Message, SyncKind, notice};

use super::cache::LoadedDocument;
use super::hub::DocumentHub;
use super::registry::ConnectionId;

impl DocumentHub {
    /// Sends sync messages (which carry our heads: call only with every change committed)
    /// to the connections here that follow the document and may read it, and to `sender`,
    /// who is answered even if it stopped following the document meanwhile. While we have
    /// none of the document there is nothing to see, and the sender may be about to
    /// create it.
    pub(super) fn share(
        &self,
        document: DocumentId,
        loaded: &mut LoadedDocument,
        today: &str,
        sender: Option<(ConnectionId, &Viewer)>,
    ) {
        let mut readers = self.readers(document, today);
        if let Some((from, viewer)) = sender
            && (loaded.sync.is_empty() || loaded.stored.as_ref().is_some_and(|s| viewer.may_read(&s.facts, today)))
        {
            readers.insert(from);
        }
        loaded.sync.retain_peers(|c| readers.contains(c));
        for c in &readers {
            loaded.sync.add_peer(*c);
        }
        for out in loaded.sync.outgoing() {
            self.send_sync(out.peer, document, out.kind, out.data);
        }
    }

    /// Another node committed `version` of a document: the copy here catches up (or is
    /// loaded, if only followed), and the connections here that follow it get the new
    /// changes. Nothing happens if this node made that version or holds no interest in it.
    pub async fn committed_elsewhere(&self, document: DocumentId, version: i64) {
        if !self.heard_committed(document, version) {
            return;
        }
        let cell = self.cached(document);
        let mut guard = cell.lock_owned().await;
        let caught_up = match guard.as_mut() {
            // Made here (the notice overtook the commit's return), or already caught up.
            Some(loaded) if loaded.version >= version => return,
            Some(loaded) => self.catch_up(document, loaded).await,
            None => self.load(document).await.map(|loaded| {
                guard.replace(loaded);
            }),
        };
        match caught_up {
            Ok(()) => {
                let loaded = guard.as_mut().expect("loaded above");
                self.share(document, loaded, &dates::today(), None);
            }
            Err(e) => {
                tracing::warn!(%document, error = %e, "could not catch up with another node's commit");
                *guard = None;
            }
        }
    }

    /// A sync message of ours on a document, to one connection.
    pub(super) fn send_sync(&self, to: ConnectionId, document: DocumentId, kind: SyncKind, data: Vec<u8>) {
        let message = Message::Sync {
            kind,
            sender_id: self.our_peer_id.clone(),
            target_id: self.peer_id(to),
            document_id: document,
            data,
        };
        self.send(to, "sync", message.encode());
    }

    pub(super) fn send_unavailable(&self, to: ConnectionId, document: DocumentId) {
        let reply = Message::DocUnavailable {
            sender_id: self.our_peer_id.clone(),
            target_id: self.peer_id(to),
            document_id: document,
        };
        self.send(to, "doc-unavailable", reply.encode());
    }

    /// An ephemeral message of ours (a notice) on a document, to one connection.
    pub(super) fn send_notice(&self, to: ConnectionId, document: DocumentId, data: Vec<u8>) {
        let message = Message::Ephemeral {
            sender_id: self.our_peer_id().clone(),
            target_id: self.peer_id(to),
            count: self.ephemeral_count.fetch_add(1, Ordering::Relaxed),
            session_id: self.session_id.clone(),
            document_id: document,
            data,
        };
        self.send(to, "ephemeral", message.encode());
    }

    /// Relays an ephemeral message to the other peers of its document on this node,
    /// unchanged except for the target, as the JS Repo does. (Ephemeral messages are not
    /// stored, so they do not cross nodes.)
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
        let Some(facts) = self.facts(document_id) else { return };
        if !self.who(from).is_some_and(|(_, viewer)| viewer.may_read(&facts, &today)) {
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
            self.send(to, "ephemeral", relayed.encode());
        }
    }
}
