//! Frames captured from the stock JavaScript automerge-repo 2.5 client and server
//! (`tests/js/capture-fixtures.mjs`) decode, carry what the manifest says, and re-encode
//! to messages that decode the same.

use std::path::PathBuf;

use fieldbook_sync_core::message::RemoteHeads;
use fieldbook_sync_core::{Message, SyncKind};
use serde_json::Value;

fn fixtures() -> (PathBuf, Vec<Value>) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/js-2.5");
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).expect("manifest")).expect("json");
    (dir, manifest["frames"].as_array().expect("frames").clone())
}

#[test]
fn every_captured_frame_decodes_as_its_type() {
    let (dir, frames) = fixtures();
    let mut seen = std::collections::BTreeSet::new();
    for entry in &frames {
        let file = entry["file"].as_str().unwrap();
        let bytes = std::fs::read(dir.join(file)).unwrap();
        let message = Message::decode(&bytes).unwrap_or_else(|e| panic!("{file}: {e}"));
        let expected = &entry["decoded"];
        assert_eq!(message.message_type(), entry["type"].as_str().unwrap(), "{file}");
        seen.insert(message.message_type().to_owned());
        if let Some(doc) = expected["documentId"].as_str() {
            assert_eq!(message.document_id().unwrap().to_string(), doc, "{file}");
        }
        match &message {
            Message::Join { sender_id, supported_protocol_versions, .. } => {
                assert_eq!(sender_id, expected["senderId"].as_str().unwrap());
                assert_eq!(
                    supported_protocol_versions.len(),
                    expected["supportedProtocolVersions"].as_array().unwrap().len()
                );
            }
            Message::Peer { peer_metadata, .. } => {
                let meta = peer_metadata.as_ref().unwrap();
                assert_eq!(meta.storage_id.as_deref(), expected["peerMetadata"]["storageId"].as_str(), "{file}");
            }
            Message::Sync { data, kind, .. } => {
                automerge::sync::Message::decode(data).unwrap_or_else(|e| panic!("{file}: {e}"));
                assert_eq!(*kind == SyncKind::Request, entry["type"] == "request");
            }
            Message::Ephemeral { count, session_id, .. } => {
                assert_eq!(Some(*count), expected["count"].as_u64());
                assert_eq!(session_id, expected["sessionId"].as_str().unwrap());
            }
            Message::RemoteHeadsChanged { new_heads, .. } => {
                let (storage, RemoteHeads { heads, timestamp }) = new_heads.iter().next().unwrap();
                let expected_heads = &expected["newHeads"][storage];
                assert_eq!(heads.len(), expected_heads["heads"].as_array().unwrap().len());
                assert!(*timestamp > 1_600_000_000_000, "timestamp {timestamp} is a float64 ms time");
            }
            Message::RemoteSubscriptionChange { add, .. } => assert!(!add.is_empty()),
            Message::Error { message, .. } => assert!(!message.is_empty()),
            _ => {}
        }
        assert_eq!(Message::decode(&message.encode()).unwrap(), message, "{file} re-encodes");
    }
    for t in [
        "join",
        "peer",
        "error",
        "leave",
        "request",
        "sync",
        "doc-unavailable",
        "ephemeral",
        "remote-subscription-change",
        "remote-heads-changed",
    ] {
        assert!(seen.contains(t), "no fixture of type {t}");
    }
}
