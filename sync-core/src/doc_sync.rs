//! One automerge document and the sync state of every peer that shares it.
//!
//! The runtime owns the IO and the durability contract: it persists the changes that
//! [`DocSync::receive`] reports *before* it calls [`DocSync::outgoing`], because outgoing
//! messages advertise our heads, and heads must only ever name stored changes.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;

use automerge::sync::{self, SyncDoc};
use automerge::{Automerge, Change, ChangeHash, ReadDoc};

use crate::message::SyncKind;
use crate::refusal::{Refusal, rule};

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
    /// The message's changes failed the check and were not applied.
    pub rejected: Option<Rejected>,
}

/// Changes refused by [`DocSync::receive_checked`]: kept aside, never merged.
#[derive(Debug, Clone)]
pub struct Rejected {
    pub refusal: Refusal,
    pub change_hashes: Vec<ChangeHash>,
    /// The refused changes as received, for quarantine.
    pub bytes: Vec<u8>,
}

/// An incoming message applied to a scratch copy, awaiting a verdict (see
/// [`DocSync::stage`]).
pub struct Staged<P> {
    peer: P,
    kind: SyncKind,
    /// The document with the message applied; `None` if it carried no changes.
    scratch: Option<Automerge>,
    sync_state: sync::State,
    new_hashes: Vec<ChangeHash>,
    /// The message's changes as sent (a V1 message carries one change per chunk).
    chunk_changes: Vec<Change>,
    received_bytes: Vec<u8>,
    blocked_by_rejected: bool,
    completes_others: bool,
    /// The message carries more operations than allowed: it was not applied.
    too_many_operations: Option<(usize, usize)>,
    /// The sender holds erased history (see [`DocSync::forbid_history`]): not applied.
    holds_erased: bool,
    /// `received_bytes` is one document chunk, loaded into an empty document.
    snapshot: bool,
}

/// Where an automerge chunk's type byte is: after 4 magic bytes and a 4-byte checksum.
const CHUNK_TYPE_AT: usize = 8;
const DOCUMENT_CHUNK: u8 = 0;
/// A change, and a compressed change: one change per chunk.
const CHANGE_CHUNKS: [u8; 2] = [1, 2];

fn chunk_type(chunk: &[u8]) -> Option<u8> {
    chunk.get(CHUNK_TYPE_AT).copied()
}

/// Whether `chunk` is exactly one document chunk: a blob that only starts with one may
/// carry further chunks after it.
fn is_lone_document(chunk: &[u8]) -> bool {
    if chunk_type(chunk) != Some(DOCUMENT_CHUNK) {
        return false;
    }
    let mut rest = &chunk[CHUNK_TYPE_AT + 1..];
    leb128::read::unsigned(&mut rest).is_ok_and(|len| len == rest.len() as u64)
}

impl<P: Clone> Staged<P> {
    /// A message whose changes (if any) were not applied.
    fn unapplied(
        peer: &P,
        kind: SyncKind,
        sync_state: sync::State,
        chunk_changes: Vec<Change>,
        received_bytes: Vec<u8>,
        too_many_operations: Option<(usize, usize)>,
    ) -> Self {
        Staged {
            peer: peer.clone(),
            kind,
            scratch: None,
            sync_state,
            new_hashes: Vec::new(),
            chunk_changes,
            received_bytes,
            blocked_by_rejected: false,
            completes_others: false,
            too_many_operations,
            holds_erased: false,
            snapshot: false,
        }
    }
}

impl<P> Staged<P> {
    /// The document as it would be.
    pub fn after(&self) -> &Automerge {
        self.scratch.as_ref().expect("a staged message with changes has a scratch copy")
    }

    /// The message's bytes if they are a saved document that loads to exactly
    /// [`Self::after`] (a whole document sent to an empty one): stored as they are, they
    /// spare saving the document afresh.
    pub fn as_snapshot(&self) -> Option<&[u8]> {
        (self.snapshot && self.scratch.is_some()).then_some(&self.received_bytes[..])
    }

    /// Bytes of change data the message carries.
    pub fn received_len(&self) -> usize {
        self.received_bytes.len()
    }

    /// The message's change bytes as received (see [`Received::received_bytes`]): what to
    /// persist before accepting it.
    pub fn received_bytes(&self) -> &[u8] {
        &self.received_bytes
    }

    /// Who made the changes the message adds, when and with what hash (cheap: no ops).
    pub fn new_change_metadata(&self) -> Vec<automerge::ChangeMetadata<'static>> {
        let Some(scratch) = &self.scratch else { return Vec::new() };
        self.new_hashes
            .iter()
            .filter_map(|h| scratch.get_change_meta_by_hash(h))
            .map(automerge::ChangeMetadata::into_owned)
            .collect()
    }

    /// The changes the message adds (empty: nothing to check). Taken from the message as
    /// sent where possible: getting one from the document encodes it afresh.
    pub fn new_changes(&self) -> Vec<Change> {
        let Some(scratch) = &self.scratch else { return Vec::new() };
        self.new_hashes
            .iter()
            .filter_map(|h| match self.chunk_changes.iter().find(|c| c.hash() == *h) {
                Some(change) => Some(change.clone()),
                None => scratch.get_change_by_hash(h),
            })
            .collect()
    }

    /// A verdict that needs no check: accepted if nothing new arrives, refused if it
    /// builds on refused changes. `None`: the caller must check [`Self::after`].
    pub fn verdict(&self) -> Option<Result<(), Refusal>> {
        if self.holds_erased {
            Some(Err(Refusal::new(rule::ERASED, crate::erasure::REFUSED)))
        } else if let Some((operations, limit)) = self.too_many_operations {
            let message =
                format!("the changes carry {operations} operations, more than this server takes at once ({limit})");
            Some(Err(Refusal::new(rule::TOO_LARGE, message)))
        } else if self.blocked_by_rejected {
            Some(Err(Refusal::new(rule::DEPENDS_ON_REFUSED, "depends on a change that was rejected")))
        } else if self.completes_others {
            Some(Err(Refusal::new(
                rule::COMPLETES_OTHERS,
                "completes changes another connection sent before their dependencies; send them yourself",
            )))
        } else if self.new_hashes.is_empty() {
            Some(Ok(()))
        } else {
            None
        }
    }
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
    /// They hold erased history: nothing is sent to them, so the two histories never mix
    /// on their side either, until they come back without it.
    holds_erased: bool,
    /// The last message sent to them carried changes: once they report holding our heads,
    /// we say we know (see [`DocSync::outgoing_for`]).
    owes_acknowledgement: bool,
}

pub struct DocSync<P> {
    doc: Automerge,
    peers: HashMap<P, PeerState>,
    /// Changes refused here, with their dependencies. A peer that holds one will always
    /// report heads we cannot reach; we read its heads as if it did not, or the two sides
    /// would trade sync messages forever.
    rejected: HashMap<ChangeHash, Vec<ChangeHash>>,
    /// Changes that arrived before their dependencies, with the peer that sent them: they
    /// were not checked (not applied), and must not later pass as someone else's.
    queued: HashMap<ChangeHash, P>,
    /// Most operations one incoming message may carry (see [`Self::limit_operations`]).
    max_operations: usize,
    /// The last reply made to a peer that holds nothing (see [`FreshPeerReply`]).
    fresh_peer_reply: Option<FreshPeerReply>,
    /// Changes of history erased from this document (see [`Self::forbid_history`]).
    erased: HashSet<ChangeHash>,
}

/// A reply to a peer that holds none of the document: the whole document, saved and
/// compressed. Making one costs a full `save()`; every such peer in the same sync state
/// gets the same bytes, so they are made once per version of the document rather than
/// once per peer. Automerge's reply depends only on the document (its heads) and the
/// peer's sync state, so reusing it for an equal state at the same heads is exact.
struct FreshPeerReply {
    heads: Vec<ChangeHash>,
    before: sync::State,
    after: sync::State,
    data: Vec<u8>,
}

impl<P: Clone + Eq + Hash> DocSync<P> {
    pub fn new(doc: Automerge) -> Self {
        Self {
            doc,
            peers: HashMap::new(),
            rejected: HashMap::new(),
            queued: HashMap::new(),
            max_operations: usize::MAX,
            fresh_peer_reply: None,
            erased: HashSet::new(),
        }
    }

    /// Refuses, from now on, any message from a peer whose heads or changes include one of
    /// `hashes` (history erased from this document): nothing of it is applied, and nothing is
    /// sent to that peer until it comes back without it.
    pub fn forbid_history(&mut self, hashes: impl IntoIterator<Item = ChangeHash>) {
        self.erased.extend(hashes);
    }

    pub fn doc(&self) -> &Automerge {
        &self.doc
    }

    /// Refuses, before applying it, an incoming message whose changes carry more than `max`
    /// operations: a small, compressed message can expand to a great many, and applying
    /// it (even to a scratch copy) costs memory in proportion.
    pub fn limit_operations(&mut self, max: usize) {
        self.max_operations = max;
    }

    /// For local edits (device side). Call [`Self::outgoing`] afterwards to share them.
    pub fn doc_mut(&mut self) -> &mut Automerge {
        &mut self.doc
    }

    pub fn heads(&self) -> Vec<ChangeHash> {
        self.doc.get_heads()
    }

    /// Adds changes that were committed elsewhere (another server node, via storage) and
    /// need no check. Peers' sync states stay: the next [`Self::outgoing`] offers them the
    /// new changes.
    pub fn apply_stored(&mut self, bytes: &[u8]) -> Result<(), SyncError> {
        self.doc.load_incremental(bytes)?;
        Ok(())
    }

    /// True while we hold no change of this document at all.
    pub fn is_empty(&self) -> bool {
        self.doc.get_heads().is_empty()
    }

    /// Start syncing with a peer (no-op if already syncing).
    pub fn add_peer(&mut self, peer: P) {
        self.peers.entry(peer).or_default();
    }

    /// Forget every peer for which `keep` is false (e.g. disconnected ones).
    pub fn retain_peers(&mut self, mut keep: impl FnMut(&P) -> bool) {
        self.peers.retain(|p, _| keep(p));
    }

    /// Restore sync state saved from an earlier session with this peer.
    pub fn set_peer_state(&mut self, peer: P, state: sync::State) {
        self.peers.insert(peer, PeerState { sync: state, ..PeerState::default() });
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
        self.receive_checked(peer, kind, data, |_, _| Ok(()))
    }

    /// Apply a message only if `check(before, after)` accepts the document it would produce.
    /// The changes are applied to a scratch copy first; if refused, our document is
    /// untouched and [`Received::rejected`] says why. Changes that depend on refused ones
    /// are refused too. (The server checks asynchronously with [`Self::stage`] instead.)
    pub fn receive_checked(
        &mut self,
        peer: &P,
        kind: SyncKind,
        data: &[u8],
        check: impl FnOnce(&Automerge, &Automerge) -> Result<(), Refusal>,
    ) -> Result<Received, SyncError> {
        let staged = self.stage(peer, kind, data)?;
        let verdict = match staged.verdict() {
            Some(verdict) => verdict,
            None => check(&self.doc, staged.after()),
        };
        Ok(match verdict {
            Ok(()) => self.accept(staged),
            Err(refusal) => self.refuse(staged, refusal),
        })
    }

    /// Applies a message to a scratch copy, leaving our document as it is until the caller
    /// decides with [`Self::accept`] or [`Self::refuse`]. Nothing else may change this
    /// document in between (the server holds the document's lock).
    pub fn stage(&mut self, peer: &P, kind: SyncKind, data: &[u8]) -> Result<Staged<P>, SyncError> {
        let message = sync::Message::decode(data)?;
        let received_bytes: Vec<u8> = message.changes.iter().flatten().copied().collect();
        // Each chunk of a V1 message is one change; a V2 chunk (a whole document) is not,
        // and its changes are found by applying it instead (parsing it as a change would
        // inflate it for nothing).
        let chunk_changes: Vec<Change> = message
            .changes
            .iter()
            .filter(|chunk| chunk_type(chunk).is_some_and(|t| CHANGE_CHUNKS.contains(&t)))
            .filter_map(|chunk| Change::from_bytes(chunk.to_vec()).ok())
            .collect();
        let before = self.doc.get_heads();
        // Loaded into an empty document (nothing queued either), a lone document chunk is
        // a snapshot of the result.
        let snapshot =
            self.doc.is_empty() && message.changes.len() == 1 && message.changes.iter().all(is_lone_document);
        let mut sync_state = self.peers.entry(peer.clone()).or_default().sync.clone();
        let erased = |h: &ChangeHash| self.erased.contains(h);
        if !self.erased.is_empty()
            && (message.heads.iter().any(erased) || chunk_changes.iter().any(|c| erased(&c.hash())))
        {
            let mut staged = Staged::unapplied(peer, kind, sync_state, Vec::new(), Vec::new(), None);
            staged.holds_erased = true;
            return Ok(staged);
        }
        let operations: usize = chunk_changes.iter().map(Change::len).sum();
        if operations > self.max_operations {
            // Hear what the peer says of itself, without its changes.
            let without_changes = sync::Message { changes: Vec::<Vec<u8>>::new().into(), ..message };
            self.doc.receive_sync_message(&mut sync_state, without_changes)?;
            let too_many = Some((operations, self.max_operations));
            return Ok(Staged::unapplied(peer, kind, sync_state, chunk_changes, received_bytes, too_many));
        }
        if received_bytes.is_empty() {
            // Nothing to check: a message without changes cannot change the document.
            self.doc.receive_sync_message(&mut sync_state, message)?;
            return Ok(Staged::unapplied(peer, kind, sync_state, chunk_changes, received_bytes, None));
        }
        let mut scratch = self.doc.clone();
        scratch.receive_sync_message(&mut sync_state, message)?;
        let new_hashes: Vec<ChangeHash> = scratch.get_changes_meta(&before).iter().map(|c| c.hash).collect();
        if new_hashes.iter().any(|h| self.erased.contains(h)) {
            // Erased history inside a whole-document chunk: dropped with the scratch copy.
            let state = self.peers.entry(peer.clone()).or_default().sync.clone();
            let mut staged = Staged::unapplied(peer, kind, state, Vec::new(), Vec::new(), None);
            staged.holds_erased = true;
            return Ok(staged);
        }
        let blocked_by_rejected = scratch.get_missing_deps(&[]).iter().any(|h| self.rejected.contains_key(h));
        // Changes another peer sent before their dependencies, completed by this message:
        // they would be checked as this sender's.
        let completes_others = new_hashes.iter().any(|h| {
            !chunk_changes.iter().any(|c| c.hash() == *h) && self.queued.get(h).is_some_and(|sender| sender != peer)
        });
        Ok(Staged {
            peer: peer.clone(),
            kind,
            scratch: Some(scratch),
            sync_state,
            new_hashes,
            chunk_changes,
            received_bytes,
            blocked_by_rejected,
            completes_others,
            too_many_operations: None,
            holds_erased: false,
            snapshot,
        })
    }

    /// Makes a staged message part of the document.
    pub fn accept(&mut self, staged: Staged<P>) -> Received {
        let mut received = Received::default();
        if let Some(scratch) = staged.scratch {
            for hash in &staged.new_hashes {
                self.queued.remove(hash);
            }
            for change in &staged.chunk_changes {
                if scratch.get_change_meta_by_hash(&change.hash()).is_none() {
                    self.queued.insert(change.hash(), staged.peer.clone());
                }
            }
            self.doc = scratch;
            received.new_changes = staged.new_hashes.len();
            received.received_bytes = staged.received_bytes;
        }
        self.finish(&staged.peer, staged.kind, staged.sync_state, received)
    }

    /// Refuses a staged message's changes: they are remembered as refused (so sync with
    /// the peer settles) and handed back for quarantine.
    pub fn refuse(&mut self, staged: Staged<P>, refusal: Refusal) -> Received {
        if staged.holds_erased {
            // Nothing was applied, nothing is kept: only the peer is marked.
            let state = self.peers.entry(staged.peer).or_default();
            state.holds_erased = true;
            state.sync.in_flight = false;
            let rejected = Rejected { refusal, change_hashes: Vec::new(), bytes: Vec::new() };
            return Received { rejected: Some(rejected), ..Received::default() };
        }
        let Staged { peer, kind, scratch, mut sync_state, mut new_hashes, chunk_changes, received_bytes, .. } = staged;
        for hash in &new_hashes {
            let deps = scratch.as_ref().and_then(|s| s.get_change_meta_by_hash(hash)).map(|c| c.deps);
            self.rejected.insert(*hash, deps.unwrap_or_default());
        }
        for change in chunk_changes {
            let hash = change.hash();
            if self.doc.get_change_meta_by_hash(&hash).is_none() && !new_hashes.contains(&hash) {
                new_hashes.push(hash);
                self.rejected.insert(hash, change.deps().to_vec());
            }
        }
        // Keep what they told us about themselves, not what we would share.
        let state = self.peers.entry(peer.clone()).or_default();
        sync_state.shared_heads = std::mem::take(&mut state.sync.shared_heads);
        sync_state.in_flight = false;
        let received = Received {
            rejected: Some(Rejected { refusal, change_hashes: new_hashes, bytes: received_bytes }),
            ..Received::default()
        };
        self.finish(&peer, kind, sync_state, received)
    }

    fn finish(&mut self, peer: &P, kind: SyncKind, mut sync_state: sync::State, mut received: Received) -> Received {
        if let Some(heads) = sync_state.their_heads.take() {
            sync_state.their_heads = Some(without_rejected(heads, &self.rejected));
        }
        received.unavailable = kind == SyncKind::Request && self.doc.get_heads().is_empty();
        let state = self.peers.entry(peer.clone()).or_default();
        state.sync = sync_state;
        state.waiting_for_document = received.unavailable;
        state.holds_erased = false;
        received
    }

    /// Sync messages for every peer that needs one now.
    pub fn outgoing(&mut self) -> Vec<Outgoing<P>> {
        let peers: Vec<P> = self.peers.keys().cloned().collect();
        peers.iter().filter_map(|peer| self.outgoing_for(peer)).collect()
    }

    /// The sync message for one peer, if it needs one now.
    pub fn outgoing_for(&mut self, peer: &P) -> Option<Outgoing<P>> {
        let empty = self.is_empty();
        let state = self.peers.entry(peer.clone()).or_default();
        if (state.waiting_for_document && empty) || state.holds_erased {
            return None;
        }
        let heads = self.doc.get_heads();
        if awaiting_answer(&self.doc, &state.sync, &heads) {
            return None;
        }
        let data = match &self.fresh_peer_reply {
            Some(reply) if reply.before == state.sync && reply.heads == heads => {
                state.sync = reply.after.clone();
                state.owes_acknowledgement = true; // the whole document
                reply.data.clone()
            }
            _ => {
                let fresh = state.sync.their_heads.as_ref().is_some_and(Vec::is_empty).then(|| state.sync.clone());
                let Some(message) = self.doc.generate_sync_message(&mut state.sync) else {
                    return Self::acknowledgement(peer, state, heads);
                };
                state.owes_acknowledgement = !message.changes.is_empty();
                let data = message.encode();
                if let Some(before) = fresh {
                    let after = state.sync.clone();
                    self.fresh_peer_reply = Some(FreshPeerReply { heads, before, after, data: data.clone() });
                }
                data
            }
        };
        state.waiting_for_document = false;
        let kind = if empty { SyncKind::Request } else { SyncKind::Sync };
        Some(Outgoing { peer: peer.clone(), kind, data })
    }

    /// Automerge says nothing to a peer that answers our changes with our own heads; the
    /// stock JS client, left without a word, did three times the work for every record it
    /// pulled (5,000 records, `scripts/bench js`). So once, we answer what it answered: our
    /// heads, and nothing to send since its own.
    fn acknowledgement(peer: &P, state: &mut PeerState, heads: Vec<ChangeHash>) -> Option<Outgoing<P>> {
        let mut theirs = state.sync.their_heads.clone().unwrap_or_default();
        theirs.sort_unstable();
        if !state.owes_acknowledgement || theirs != heads {
            return None;
        }
        state.owes_acknowledgement = false;
        let v2 = state.sync.their_capabilities.as_ref().is_some_and(|c| c.contains(&sync::Capability::MessageV2));
        let version = if v2 { sync::MessageVersion::V2 } else { sync::MessageVersion::V1 };
        let data = crate::in_sync::in_sync_message(&heads, heads.clone(), version);
        Some(Outgoing { peer: peer.clone(), kind: SyncKind::Sync, data })
    }
}

/// True when automerge would make no message for this peer now: the last one it sent is
/// not yet answered and the document has not changed since (and the peer did not report
/// heads we lack, which automerge answers with a reset at once). Automerge decides that only
/// after composing the message, which for a peer that holds nothing is a full `save()`; with
/// many such peers on one document, every change to any of them would pay that for each.
fn awaiting_answer(doc: &Automerge, state: &sync::State, heads: &[ChangeHash]) -> bool {
    // Conservative: anything missing (even a queued change's dependency) leaves it to automerge.
    let reset = state
        .their_have
        .as_ref()
        .and_then(|have| have.first())
        .is_some_and(|first| !first.last_sync.is_empty() && !doc.get_missing_deps(&first.last_sync).is_empty());
    state.have_responded && state.in_flight && state.last_sent_heads == heads && !reset
}

/// A sync message carrying every change of `doc` beyond `since`, as a peer sends one once it
/// knows what the other holds (for tests, benchmarks and fuzzing).
pub fn changes_message(doc: &Automerge, since: &[ChangeHash]) -> Vec<u8> {
    let changes: Vec<Vec<u8>> = doc.get_changes(since).iter().map(|c| c.raw_bytes().to_vec()).collect();
    sync::Message {
        heads: doc.get_heads(),
        need: vec![],
        have: vec![],
        changes: changes.into(),
        flags: None,
        version: sync::MessageVersion::V1,
    }
    .encode()
}

/// A peer's heads with every refused change replaced by its (accepted) ancestors.
fn without_rejected(heads: Vec<ChangeHash>, rejected: &HashMap<ChangeHash, Vec<ChangeHash>>) -> Vec<ChangeHash> {
    if rejected.is_empty() {
        return heads;
    }
    let mut out = Vec::new();
    let mut stack = heads;
    let mut seen = std::collections::HashSet::new();
    while let Some(hash) = stack.pop() {
        if !seen.insert(hash) {
            continue;
        }
        match rejected.get(&hash) {
            Some(deps) => stack.extend(deps.iter().copied()),
            None => out.push(hash),
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::transaction::Transactable;
    use automerge::{ROOT, ReadDoc};

    fn doc_with(key: &str, value: &str) -> Automerge {
        let mut doc = Automerge::new();
        let mut tx = doc.transaction();
        tx.put(ROOT, key, value).unwrap();
        tx.commit();
        doc
    }

    /// A device holding nothing asks `server` for the document; returns the server's reply.
    fn fresh_device_asks(server: &mut DocSync<&'static str>, name: &'static str) -> (DocSync<&'static str>, Vec<u8>) {
        let mut device = DocSync::new(Automerge::new());
        let request = device.outgoing_for(&"server").unwrap();
        assert_eq!(request.kind, SyncKind::Request);
        server.receive(&name, request.kind, &request.data).unwrap();
        let reply = server.outgoing_for(&name).unwrap();
        device.receive(&"server", reply.kind, &reply.data).unwrap();
        // The device answers with its new heads.
        let answer = device.outgoing_for(&"server").unwrap();
        server.receive(&name, answer.kind, &answer.data).unwrap();
        (device, reply.data)
    }

    #[test]
    fn a_peer_that_took_our_changes_is_told_once_that_we_know() {
        let mut server = DocSync::new(doc_with("notes", "first"));
        let (mut device, _) = fresh_device_asks(&mut server, "device");
        // The device answered the whole document with our heads: we say we know, once.
        let ack = server.outgoing_for(&"device").expect("an acknowledgement");
        let message = sync::Message::decode(&ack.data).unwrap();
        assert_eq!(message.heads, server.heads());
        assert!(message.changes.is_empty() && message.need.is_empty());
        assert_eq!(message.have.first().map(|h| h.last_sync.clone()), Some(server.heads()));
        assert!(server.outgoing_for(&"device").is_none(), "only once");
        // The device takes it quietly: the exchange ends there.
        device.receive(&"server", ack.kind, &ack.data).unwrap();
        assert!(device.outgoing_for(&"server").is_none());
        assert!(server.outgoing_for(&"device").is_none());
        assert!(server.in_sync_with(&"device") && device.in_sync_with(&"server"));
    }

    #[test]
    fn fresh_peers_get_the_reply_a_peer_alone_would_get_and_a_new_version_after_a_change() {
        let mut server = DocSync::new(doc_with("notes", "first"));
        let (first, first_reply) = fresh_device_asks(&mut server, "first");
        // The second device's reply is the reused one; a server serving it alone makes its own.
        let (_, second_reply) = fresh_device_asks(&mut server, "second");
        let mut alone = DocSync::new(server.doc().clone());
        let (_, reply_alone) = fresh_device_asks(&mut alone, "second");
        assert_eq!(second_reply, reply_alone);
        assert_eq!(first_reply, second_reply);
        assert!(
            server.fresh_peer_reply.as_ref().is_some_and(|r| r.data == second_reply),
            "the reply is kept for reuse"
        );
        assert_eq!(first.heads(), server.heads());
        assert_eq!(first.doc().get(ROOT, "notes").unwrap().unwrap().0.as_str(), Some("first"));

        // The server's copy changes: the next fresh device gets the new version.
        let mut tx = server.doc_mut().transaction();
        tx.put(ROOT, "notes", "second").unwrap();
        tx.commit();
        let (third, _) = fresh_device_asks(&mut server, "third");
        assert_eq!(third.heads(), server.heads());
        assert_eq!(third.doc().get(ROOT, "notes").unwrap().unwrap().0.as_str(), Some("second"));
        // And the peers that got the first version are offered the change.
        let mut first = first;
        converge(&mut server, &mut first);
        assert_eq!(first.heads(), server.heads());
    }

    #[test]
    fn a_peer_awaiting_an_answer_gets_nothing_until_the_document_changes() {
        let mut server = DocSync::new(doc_with("notes", "first"));
        let mut device = DocSync::new(Automerge::new());
        let request = device.outgoing_for(&"server").unwrap();
        server.receive(&"device", request.kind, &request.data).unwrap();
        assert!(server.outgoing_for(&"device").is_some());
        // Unanswered, unchanged: nothing — as automerge itself decides, with the state untouched.
        let state = server.peers[&"device"].sync.clone();
        assert!(server.outgoing_for(&"device").is_none());
        assert_eq!(server.peers[&"device"].sync, state);
        assert!(server.doc.generate_sync_message(&mut state.clone()).is_none());
        // A change goes out although the last message is unanswered.
        let mut tx = server.doc_mut().transaction();
        tx.put(ROOT, "notes", "second").unwrap();
        tx.commit();
        assert!(server.outgoing_for(&"device").is_some());
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
    fn changes_one_peer_queued_are_not_completed_by_another() {
        let mut doc = doc_with("first", "a");
        let first = doc.get_last_local_change().unwrap().clone();
        let mut tx = doc.transaction();
        tx.put(ROOT, "second", "b").unwrap();
        tx.commit();
        let second = doc.get_last_local_change().unwrap().clone();
        let message = |change: &Change| {
            sync::Message {
                heads: doc.get_heads(),
                need: vec![],
                have: vec![],
                changes: vec![change.raw_bytes().to_vec()].into(),
                flags: None,
                version: sync::MessageVersion::V1,
            }
            .encode()
        };
        // "a" sends the dependent change first; only "a" may complete it.
        let mut server: DocSync<&str> = DocSync::new(Automerge::new());
        assert_eq!(server.receive(&"a", SyncKind::Sync, &message(&second)).unwrap().new_changes, 0);
        let by_other = server.receive(&"b", SyncKind::Sync, &message(&first)).unwrap();
        assert_eq!(by_other.rejected.unwrap().refusal.rule, rule::COMPLETES_OTHERS);
        assert!(server.is_empty());

        let mut server: DocSync<&str> = DocSync::new(Automerge::new());
        server.receive(&"a", SyncKind::Sync, &message(&second)).unwrap();
        assert_eq!(server.receive(&"a", SyncKind::Sync, &message(&first)).unwrap().new_changes, 2);
    }

    #[test]
    fn changes_committed_elsewhere_are_offered_to_peers_already_in_sync() {
        // A server copy in sync with a device; another node then commits a change, which
        // this copy reads from storage.
        let mut server = DocSync::new(doc_with("x", "1"));
        let mut device = DocSync::new(Automerge::new());
        converge(&mut server, &mut device);
        assert!(server.outgoing_for(&"b").is_none(), "in sync: nothing to say");
        let mut elsewhere = server.doc().fork();
        let mut tx = elsewhere.transaction();
        tx.put(ROOT, "y", "2").unwrap();
        tx.commit();
        let committed = elsewhere.save_after(&server.heads());

        server.apply_stored(&committed).unwrap();
        assert_eq!(server.heads(), elsewhere.get_heads());
        let offer = server.outgoing_for(&"b").expect("the device is offered the new change");
        device.receive(&"a", offer.kind, &offer.data).unwrap();
        converge(&mut server, &mut device);
        assert_eq!(crate::json::to_json(device.doc())["y"], "2");
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
    fn only_a_lone_whole_document_sent_to_an_empty_one_is_kept_as_its_snapshot() {
        let sent = doc_with("notes", "first");
        let mut later = sent.fork();
        let mut tx = later.transaction();
        tx.put(ROOT, "notes", "second").unwrap();
        tx.commit();
        let change = later.get_last_local_change().unwrap().raw_bytes().to_vec();
        let message = |chunks: Vec<Vec<u8>>| {
            sync::Message {
                heads: later.get_heads(),
                need: vec![],
                have: vec![],
                changes: chunks.into(),
                flags: None,
                version: sync::MessageVersion::V2,
            }
            .encode()
        };
        let staged = |server: &mut DocSync<&'static str>, chunks: Vec<Vec<u8>>| {
            server.stage(&"device", SyncKind::Sync, &message(chunks)).unwrap()
        };

        let whole = sent.save();
        let mut empty = DocSync::new(Automerge::new());
        let lone = staged(&mut empty, vec![whole.clone()]);
        assert_eq!(lone.as_snapshot(), Some(&whole[..]));
        assert_eq!(Automerge::load(&whole).unwrap().get_heads(), lone.after().get_heads());

        // A document chunk with a change after it in the same blob is more than a snapshot.
        let followed = [whole.clone(), change.clone()].concat();
        let more = staged(&mut DocSync::new(Automerge::new()), vec![followed]);
        assert_eq!(more.after().get_heads(), later.get_heads(), "both applied");
        assert_eq!(more.as_snapshot(), None);
        // So is a document sent with a change in a chunk of its own, or to a document with
        // content, or a message of changes.
        assert_eq!(
            staged(&mut DocSync::new(Automerge::new()), vec![whole.clone(), change.clone()]).as_snapshot(),
            None
        );
        assert_eq!(staged(&mut DocSync::new(doc_with("other", "x")), vec![whole]).as_snapshot(), None);
        assert_eq!(
            staged(
                &mut DocSync::new(Automerge::new()),
                vec![sent.get_last_local_change().unwrap().raw_bytes().to_vec()]
            )
            .as_snapshot(),
            None
        );
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
    fn rejected_changes_leave_the_document_untouched_and_sync_settles() {
        let mut server: DocSync<&str> = DocSync::new(Automerge::new());
        let mut client = DocSync::new(doc_with("x", "1"));
        converge_one_way(&mut client, &mut server, |_, _| Ok(()));
        let accepted = server.heads();

        let mut tx = client.doc_mut().transaction();
        tx.put(ROOT, "x", "forbidden").unwrap();
        tx.commit();
        let mut rejections = Vec::new();
        let rounds = converge_one_way(&mut client, &mut server, |_, after| match after.get(ROOT, "x").unwrap() {
            Some((v, _)) if v.as_str() == Some("forbidden") => Err(Refusal::new("test", "x may not be forbidden")),
            _ => Ok(()),
        });
        for r in rounds {
            rejections.push(r);
        }
        assert_eq!(server.heads(), accepted, "server copy untouched");
        assert_eq!(rejections.len(), 1, "told once");
        assert_eq!(rejections[0].refusal.message, "x may not be forbidden");
        assert_eq!(rejections[0].change_hashes, client.heads());

        // A later change on top of the refused one is refused too.
        let mut tx = client.doc_mut().transaction();
        tx.put(ROOT, "y", "2").unwrap();
        tx.commit();
        let again = converge_one_way(&mut client, &mut server, |_, _| Ok(()));
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].refusal.rule, rule::DEPENDS_ON_REFUSED);
        assert_eq!(server.heads(), accepted);
    }

    /// Pumps client → server → client until quiet; returns rejections. Panics on a loop.
    fn converge_one_way(
        client: &mut DocSync<&'static str>,
        server: &mut DocSync<&'static str>,
        check: impl Fn(&Automerge, &Automerge) -> Result<(), Refusal>,
    ) -> Vec<Rejected> {
        let mut rejected = Vec::new();
        for _ in 0..20 {
            let Some(m) = client.outgoing_for(&"server") else { return rejected };
            let received = server.receive_checked(&"client", m.kind, &m.data, &check).unwrap();
            rejected.extend(received.rejected);
            if let Some(reply) = server.outgoing_for(&"client") {
                client.receive(&"server", reply.kind, &reply.data).unwrap();
            }
        }
        panic!("sync did not settle");
    }

    #[test]
    fn a_message_with_too_many_operations_is_refused_before_it_is_applied() {
        let mut doc = Automerge::new();
        let mut tx = doc.transaction();
        for i in 0..10 {
            tx.put(ROOT, format!("k{i}"), i).unwrap();
        }
        tx.commit();
        let message = changes_message(&doc, &[]);
        let mut server: DocSync<&str> = DocSync::new(Automerge::new());
        server.limit_operations(5);
        let received = server.receive(&"client", SyncKind::Sync, &message).unwrap();
        let refusal = received.rejected.expect("refused").refusal;
        assert_eq!(refusal.rule, rule::TOO_LARGE);
        assert!(refusal.message.contains("10 operations"), "{}", refusal.message);
        assert!(server.is_empty(), "nothing was applied");
        // Within the limit, the same message is taken.
        server.limit_operations(10);
        assert!(server.receive(&"client", SyncKind::Sync, &message).unwrap().rejected.is_none());
        assert!(!server.is_empty());
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
                    "author" => {
                        author.receive(&"server", o.kind, &o.data).unwrap();
                    }
                    _ => {
                        requester.receive(&"server", o.kind, &o.data).unwrap();
                    }
                }
            }
            if let Some(m) = requester.outgoing_for(&"server") {
                server.receive(&"requester", m.kind, &m.data).unwrap();
            }
        }
        assert_eq!(requester.heads(), author.heads());
    }
}
