//! Answering a peer that already holds exactly what is stored, without the document.
//!
//! Every morning each device reconnects and sends, for every record it holds, a sync
//! message with its heads. Almost all of them are already in sync. Loading a record to
//! answer costs automerge a rebuild of its whole history; knowing the stored heads is
//! enough to give the very answer automerge would give from a fresh sync state: our heads,
//! nothing needed, and an empty summary of changes since those heads.

use automerge::ChangeHash;
use automerge::sync::{BloomFilter, Have, Message, MessageFlags, MessageVersion};

/// A sync message that sends nothing and asks for nothing: the peer says which heads it
/// holds. Reading one is cheap, so a server tells these apart before it looks anything up.
pub struct InSyncClaim(Message);

impl InSyncClaim {
    /// `None` if the message carries changes, needs any, names no heads, or is not a sync
    /// message at all.
    pub fn read(message: &[u8]) -> Option<Self> {
        let message = Message::decode(message).ok()?;
        let quiet = message.need.is_empty() && message.changes.iter().all(|c| c.is_empty());
        (quiet && !message.heads.is_empty()).then_some(Self(message))
    }

    /// The reply a server whose document has exactly `stored_heads` (as
    /// `Automerge::get_heads` orders them) and no sync state for this peer yet would make:
    /// byte for byte what automerge makes. `None` if the peer is not in sync with it, or
    /// sent a summary that starts from heads the server cannot confirm without the
    /// document: then load the document and let automerge answer.
    pub fn reply(self, stored_heads: &[ChangeHash]) -> Option<Vec<u8>> {
        let theirs = self.0;
        let mut their_heads = theirs.heads.clone();
        their_heads.sort_unstable();
        their_heads.dedup();
        let mut ours = stored_heads.to_vec();
        ours.sort_unstable();
        if their_heads != ours {
            return None;
        }
        // Automerge resets a peer whose summary starts from heads it lacks; a summary from
        // our own heads (or from nothing) needs no document to check.
        if theirs.have.iter().any(|have| have.last_sync.iter().any(|h| !stored_heads.contains(h))) {
            return None;
        }
        // Automerge's answer: the heads they sent become the shared heads, and the summary
        // of our changes since them is empty. A peer that sends flags understands V2.
        let version = if theirs.flags.is_some() { MessageVersion::V2 } else { MessageVersion::V1 };
        Some(in_sync_message(stored_heads, theirs.heads, version))
    }
}

/// A request from a peer that holds nothing of the document and reads V2 messages (it sends
/// flags): it can be answered with the document as stored, without loading it.
pub struct FreshRequest(());

impl FreshRequest {
    /// `None` unless the message names no heads, needs nothing, carries nothing, summarises
    /// nothing and sends flags.
    pub fn read(message: &[u8]) -> Option<Self> {
        let message = Message::decode(message).ok()?;
        let empty = message.heads.is_empty()
            && message.need.is_empty()
            && message.changes.is_empty()
            && message.have.iter().all(|have| have.last_sync.is_empty());
        (empty && message.flags.is_some()).then_some(Self(()))
    }

    /// The whole document, `snapshot` (a saved document whose heads are `stored_heads`), as
    /// automerge sends it to a peer that has nothing, but summarising none of our changes
    /// (automerge's summary covers every change, which takes the loaded document to list):
    /// with no summary the peer sends back only what we need, and we need nothing.
    pub fn reply(self, stored_heads: &[ChangeHash], snapshot: Vec<u8>) -> Vec<u8> {
        let mut flags = MessageFlags::new();
        flags.set(MessageFlags::SUPPORTS_SYNC_RESET);
        Message {
            heads: stored_heads.to_vec(),
            need: Vec::new(),
            have: Vec::new(),
            changes: snapshot.into(),
            flags: Some(flags),
            version: MessageVersion::V2,
        }
        .encode()
    }
}

/// A message telling a peer that holds `their_heads` that we hold `our_heads` and have no
/// changes for it since theirs: nothing sent, nothing needed.
pub fn in_sync_message(our_heads: &[ChangeHash], their_heads: Vec<ChangeHash>, version: MessageVersion) -> Vec<u8> {
    let mut flags = MessageFlags::new();
    flags.set(MessageFlags::SUPPORTS_SYNC_RESET);
    Message {
        heads: our_heads.to_vec(),
        need: Vec::new(),
        have: vec![Have { last_sync: their_heads, bloom: BloomFilter::from_hashes(std::iter::empty::<ChangeHash>()) }],
        changes: Vec::<Vec<u8>>::new().into(),
        flags: Some(flags),
        version,
    }
    .encode()
}

#[cfg(test)]
mod tests {
    use automerge::sync::{State, SyncDoc};
    use automerge::transaction::Transactable;
    use automerge::{Automerge, ROOT};

    use super::*;
    use crate::{DocSync, SyncKind};

    fn edit(doc: &mut Automerge, key: &str, value: &str) {
        let mut tx = doc.transaction();
        tx.put(ROOT, key, value).unwrap();
        tx.commit();
    }

    fn stored() -> Automerge {
        let mut doc = Automerge::new();
        edit(&mut doc, "notes", "first");
        edit(&mut doc, "notes", "second");
        doc
    }

    /// What the server answers today: load the document, receive, reply.
    fn automerge_reply(doc: &Automerge, message: &[u8]) -> Vec<u8> {
        let mut server = DocSync::new(doc.clone());
        server.receive(&"device", SyncKind::Sync, message).unwrap();
        server.outgoing_for(&"device").expect("a first answer always goes out").data
    }

    fn first_message(device: &Automerge, state: &mut State) -> Vec<u8> {
        device.generate_sync_message(state).unwrap().encode()
    }

    fn in_sync_reply(message: &[u8], stored_heads: &[ChangeHash]) -> Option<Vec<u8>> {
        InSyncClaim::read(message)?.reply(stored_heads)
    }

    fn assert_same_reply(doc: &Automerge, message: &[u8]) {
        let shortcut = in_sync_reply(message, &doc.get_heads()).expect("the device is in sync");
        assert_eq!(shortcut, automerge_reply(doc, message));
    }

    #[test]
    fn a_device_in_sync_gets_the_reply_automerge_gives() {
        let doc = stored();
        // A device reconnecting with a fresh sync state.
        assert_same_reply(&doc, &first_message(&doc.clone(), &mut State::new()));
        // A device that kept its sync state with us (the JS client stores it per storage id).
        let mut device = doc.clone();
        let (mut ours, mut theirs) = (State::new(), State::new());
        let mut server = doc.clone();
        for _ in 0..4 {
            if let Some(m) = device.generate_sync_message(&mut theirs) {
                server.receive_sync_message(&mut ours, m).unwrap();
            }
            if let Some(m) = server.generate_sync_message(&mut ours) {
                device.receive_sync_message(&mut theirs, m).unwrap();
            }
        }
        let mut kept = State::decode(&theirs.encode()).unwrap();
        let message = first_message(&device, &mut kept);
        assert!(Message::decode(&message).unwrap().have[0].last_sync == doc.get_heads(), "starts from shared heads");
        assert_same_reply(&doc, &message);
    }

    #[test]
    fn concurrent_heads_and_old_peers_get_the_reply_automerge_gives() {
        let mut doc = stored();
        let mut other = doc.fork();
        edit(&mut doc, "a", "1");
        edit(&mut other, "b", "2");
        doc.merge(&mut other).unwrap();
        assert_eq!(doc.get_heads().len(), 2);
        let message = first_message(&doc.clone(), &mut State::new());
        assert_same_reply(&doc, &message);
        // A peer that sends no flags (V1 only).
        let mut old = Message::decode(&message).unwrap();
        old.flags = None;
        old.version = MessageVersion::V1;
        assert_same_reply(&doc, &old.encode());
    }

    #[test]
    fn a_fresh_device_answered_from_the_stored_snapshot_ends_in_sync_having_sent_nothing() {
        let doc = stored();
        let mut device = DocSync::new(Automerge::new());
        let request = device.outgoing_for(&"server").expect("a request");
        let reply = FreshRequest::read(&request.data).expect("a fresh request").reply(&doc.get_heads(), doc.save());
        device.receive(&"server", SyncKind::Sync, &reply).unwrap();
        assert_eq!(device.heads(), doc.get_heads());
        assert_eq!(crate::json::to_json(device.doc())["notes"], "second");
        // Its answer sends no changes back: it is the claim the in-sync shortcut answers.
        let answer = device.outgoing_for(&"server").expect("the device's new heads");
        assert!(Message::decode(&answer.data).unwrap().changes.is_empty());
        let ack = in_sync_reply(&answer.data, &doc.get_heads()).expect("in sync");
        device.receive(&"server", SyncKind::Sync, &ack).unwrap();
        assert!(device.outgoing_for(&"server").is_none(), "the exchange ends there");
    }

    #[test]
    fn only_a_v2_peer_holding_nothing_makes_a_fresh_request() {
        let doc = stored();
        let mut empty_state = State::new();
        let fresh = first_message(&Automerge::new(), &mut empty_state);
        assert!(FreshRequest::read(&fresh).is_some());
        let mut old = Message::decode(&fresh).unwrap();
        old.flags = None;
        old.version = MessageVersion::V1;
        assert!(FreshRequest::read(&old.encode()).is_none(), "a V1 peer");
        assert!(FreshRequest::read(&first_message(&doc, &mut State::new())).is_none(), "holds heads");
        let mut needy = Message::decode(&fresh).unwrap();
        needy.need = doc.get_heads();
        assert!(FreshRequest::read(&needy.encode()).is_none(), "needs something");
        let mut carrying = Message::decode(&fresh).unwrap();
        carrying.changes = doc.save().into();
        assert!(FreshRequest::read(&carrying.encode()).is_none(), "carries changes");
        let mut summary = Message::decode(&fresh).unwrap();
        summary.have = vec![Have { last_sync: doc.get_heads(), bloom: BloomFilter::default() }];
        assert!(FreshRequest::read(&summary.encode()).is_none(), "summarises from heads");
        assert!(FreshRequest::read(b"not a message").is_none());
    }

    #[test]
    fn a_device_not_in_sync_is_left_to_automerge() {
        let doc = stored();
        let heads = doc.get_heads();
        // Ahead: it made a change offline and sends it.
        let mut ahead = doc.clone();
        edit(&mut ahead, "notes", "offline");
        assert!(in_sync_reply(&first_message(&ahead, &mut State::new()), &heads).is_none());
        // Behind.
        let mut behind = Automerge::new();
        behind.apply_changes(doc.get_changes(&[]).into_iter().take(1)).unwrap();
        assert!(in_sync_reply(&first_message(&behind, &mut State::new()), &heads).is_none());
        // Holding nothing, or needing something.
        assert!(in_sync_reply(&first_message(&Automerge::new(), &mut State::new()), &heads).is_none());
        let mut needy = Message::decode(&first_message(&doc.clone(), &mut State::new())).unwrap();
        needy.need = heads.clone();
        assert!(in_sync_reply(&needy.encode(), &heads).is_none());
        // A summary from heads the server does not know (automerge answers with a reset).
        let mut unknown = Message::decode(&first_message(&doc.clone(), &mut State::new())).unwrap();
        unknown.have = vec![Have { last_sync: ahead.get_heads(), bloom: BloomFilter::default() }];
        assert!(in_sync_reply(&unknown.encode(), &heads).is_none());
        // Nothing stored, or not a sync message at all.
        assert!(in_sync_reply(&first_message(&doc.clone(), &mut State::new()), &[]).is_none());
        assert!(in_sync_reply(b"not a message", &heads).is_none());
    }
}
