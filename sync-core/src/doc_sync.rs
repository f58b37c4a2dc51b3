//! One automerge document and the sync state of every peer that shares it.
//!
//! The runtime owns the IO and the durability contract: it persists the changes that
//! [`DocSync::receive`] reports *before* it calls [`DocSync::outgoing`], because outgoing
//! messages advertise our heads, and heads must only ever name stored changes.

use std::collections::HashMap;
use std::hash::Hash;

use automerge::sync::{self, SyncDoc};
use automerge::{Automerge, ChangeHash};

use crate::message::SyncKind;

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("not an automerge sync message: {0}")]
    Decode(#[from] automerge::sync::ReadMessageError),
    #[error("sync message could not be applied: {0}")]
    Apply(#[from] automerge::AutomergeError),
}

/// The effect of one incoming sync message.
#[derive(Debug, Default)]
pub struct Received {
    /// How many changes became part of the document.
    pub new_changes: usize,
    /// The message's change bytes exactly as received (loadable with
    /// `Automerge::load_incremental`), or empty if it carried none. Persist these before
    /// reporting heads: they hold every change this message added, including any earlier
    /// queued ones it unblocked, because those were persisted when they arrived. Re-encoding
    /// changes from the document instead would cost far more.
    pub received_bytes: Vec<u8>,
    /// The peer asked for a document we do not have; answer `doc-unavailable`.
    pub unavailable: bool,
}

/// A sync message to send to one peer.
#[derive(Debug)]
pub struct Outgoing<P> {
    pub peer: P,
    pub kind: SyncKind,
    pub data: Vec<u8>,
}

#[derive(Default)]
struct PeerState {
    sync: sync::State,
    /// They asked for a document we did not have; stay quiet until we get it.
    waiting_for_document: bool,
}

pub struct DocSync<P> {
    doc: Automerge,
    peers: HashMap<P, PeerState>,
}

impl<P: Clone + Eq + Hash> DocSync<P> {
    pub fn new(doc: Automerge) -> Self {
        Self { doc, peers: HashMap::new() }
    }

    pub fn doc(&self) -> &Automerge {
        &self.doc
    }

    /// For local edits (device side). Call [`Self::outgoing`] afterwards to share them.
    pub fn doc_mut(&mut self) -> &mut Automerge {
        &mut self.doc
    }

    pub fn into_doc(self) -> Automerge {
        self.doc
    }

    pub fn heads(&self) -> Vec<ChangeHash> {
        self.doc.get_heads()
    }

    /// True while we hold no change of this document at all.
    pub fn is_empty(&self) -> bool {
        self.doc.get_heads().is_empty()
    }

    /// Start syncing with a peer (no-op if already syncing).
    pub fn add_peer(&mut self, peer: P) {
        self.peers.entry(peer).or_default();
    }

    pub fn remove_peer(&mut self, peer: &P) {
        self.peers.remove(peer);
    }

    /// Forget every peer for which `keep` is false (e.g. disconnected ones).
    pub fn retain_peers(&mut self, mut keep: impl FnMut(&P) -> bool) {
        self.peers.retain(|p, _| keep(p));
    }

    /// Restore sync state saved from an earlier session with this peer.
    pub fn set_peer_state(&mut self, peer: P, state: sync::State) {
        self.peers.insert(peer, PeerState { sync: state, waiting_for_document: false });
    }

    /// The sync state worth keeping across sessions with `peer`.
    pub fn encoded_peer_state(&self, peer: &P) -> Option<Vec<u8>> {
        self.peers.get(peer).map(|p| p.sync.encode())
    }

    /// The heads `peer` last told us it has.
    pub fn peer_heads(&self, peer: &P) -> Option<&[ChangeHash]> {
        self.peers.get(peer)?.sync.their_heads.as_deref()
    }

    /// True once `peer` has told us it holds exactly our heads.
    pub fn in_sync_with(&self, peer: &P) -> bool {
        self.peer_heads(peer).is_some_and(|h| {
            let mut theirs = h.to_vec();
            let mut ours = self.heads();
            theirs.sort();
            ours.sort();
            theirs == ours
        })
    }

    /// Apply a `sync` or `request` message from `peer`.
    pub fn receive(&mut self, peer: &P, kind: SyncKind, data: &[u8]) -> Result<Received, SyncError> {
        let message = sync::Message::decode(data)?;
        let received_bytes: Vec<u8> = message.changes.iter().flatten().copied().collect();
        let before = self.doc.get_heads();
        let state = self.peers.entry(peer.clone()).or_default();
        self.doc.receive_sync_message(&mut state.sync, message)?;
        let new_changes =
            if self.doc.get_heads() == before { 0 } else { self.doc.get_changes_meta(&before).len() };
        let unavailable = kind == SyncKind::Request && self.doc.get_heads().is_empty();
        state.waiting_for_document = unavailable;
        Ok(Received { new_changes, received_bytes, unavailable })
    }

    /// Sync messages for every peer that needs one now.
    pub fn outgoing(&mut self) -> Vec<Outgoing<P>> {
        let empty = self.is_empty();
        let kind = if empty { SyncKind::Request } else { SyncKind::Sync };
        let mut out = Vec::new();
        for (peer, state) in &mut self.peers {
            if state.waiting_for_document && empty {
                continue;
            }
            if let Some(message) = self.doc.generate_sync_message(&mut state.sync) {
                state.waiting_for_document = false;
                out.push(Outgoing { peer: peer.clone(), kind, data: message.encode() });
            }
        }
        out
    }

    /// The sync message for one peer, if it needs one now.
    pub fn outgoing_for(&mut self, peer: &P) -> Option<Outgoing<P>> {
        let empty = self.is_empty();
        let state = self.peers.entry(peer.clone()).or_default();
        if state.waiting_for_document && empty {
            return None;
        }
        let message = self.doc.generate_sync_message(&mut state.sync)?;
        state.waiting_for_document = false;
        let kind = if empty { SyncKind::Request } else { SyncKind::Sync };
        Some(Outgoing { peer: peer.clone(), kind, data: message.encode() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::transaction::Transactable;
    use automerge::{ReadDoc, ROOT};

    fn doc_with(key: &str, value: &str) -> Automerge {
        let mut doc = Automerge::new();
        let mut tx = doc.transaction();
        tx.put(ROOT, key, value).unwrap();
        tx.commit();
        doc
    }

    /// Pumps messages between two DocSyncs until neither has anything to say.
    fn converge(a: &mut DocSync<&'static str>, b: &mut DocSync<&'static str>) -> usize {
        let mut rounds = 0;
        loop {
            let from_a = a.outgoing_for(&"b");
            let from_b = b.outgoing_for(&"a");
            if from_a.is_none() && from_b.is_none() {
                return rounds;
            }
            if let Some(m) = from_a {
                b.receive(&"a", m.kind, &m.data).unwrap();
            }
            if let Some(m) = from_b {
                a.receive(&"b", m.kind, &m.data).unwrap();
            }
            rounds += 1;
            assert!(rounds < 20, "sync did not converge");
        }
    }

    #[test]
    fn two_docs_converge_and_report_new_changes() {
        let mut a = DocSync::new(doc_with("x", "1"));
        let mut b = DocSync::new(doc_with("y", "2"));
        converge(&mut a, &mut b);
        assert_eq!(a.heads(), b.heads());
        assert!(a.in_sync_with(&"b") && b.in_sync_with(&"a"));
        assert!(a.doc().get(ROOT, "y").unwrap().is_some());
        assert!(b.doc().get(ROOT, "x").unwrap().is_some());
    }

    #[test]
    fn received_bytes_hold_every_new_change() {
        let mut server: DocSync<&str> = DocSync::new(Automerge::new());
        let mut client = DocSync::new(doc_with("x", "1"));
        let mut persisted = Automerge::new();
        for _ in 0..5 {
            if let Some(m) = client.outgoing_for(&"server") {
                let received = server.receive(&"client", m.kind, &m.data).unwrap();
                persisted.load_incremental(&received.received_bytes).unwrap();
            }
            if let Some(m) = server.outgoing_for(&"client") {
                client.receive(&"server", m.kind, &m.data).unwrap();
            }
        }
        assert_eq!(persisted.get_heads(), client.heads());
    }

    #[test]
    fn request_for_missing_document_is_unavailable_until_it_exists() {
        let mut server: DocSync<&str> = DocSync::new(Automerge::new());
        let mut requester: DocSync<&str> = DocSync::new(Automerge::new());
        let m = requester.outgoing_for(&"server").unwrap();
        assert_eq!(m.kind, SyncKind::Request);
        let received = server.receive(&"requester", m.kind, &m.data).unwrap();
        assert!(received.unavailable);
        assert!(server.outgoing().is_empty(), "no sync reply to an unavailable request");

        // Another peer brings the document: the waiting requester now gets it.
        let mut author = DocSync::new(doc_with("x", "1"));
        for _ in 0..4 {
            if let Some(m) = author.outgoing_for(&"server") {
                server.receive(&"author", m.kind, &m.data).unwrap();
            }
            for o in server.outgoing() {
                match o.peer {
                    "author" => { author.receive(&"server", o.kind, &o.data).unwrap(); }
                    _ => { requester.receive(&"server", o.kind, &o.data).unwrap(); }
                }
            }
            if let Some(m) = requester.outgoing_for(&"server") {
                server.receive(&"requester", m.kind, &m.data).unwrap();
            }
        }
        assert_eq!(requester.heads(), author.heads());
    }
}
