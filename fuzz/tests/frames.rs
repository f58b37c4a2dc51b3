//! The frame decoder and handshake: whatever bytes arrive, decoding answers a value or a
//! clear error, and what decodes encodes back to the same message.

use fieldbook_fuzz::{fuzz, mutated};
use fieldbook_sync_core::{Message, PeerMetadata, ServerHandshake};
use proptest::prelude::*;

/// Frames the stock JS client and server sent, captured (sync-core's protocol fixtures).
fn captured() -> Vec<Vec<u8>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../sync-core/tests/fixtures/js-2.5");
    let mut frames: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .expect("fixtures")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "cbor"))
        .map(|p| std::fs::read(p).expect("fixture"))
        .collect();
    frames.sort();
    assert!(frames.len() >= 10, "fixtures missing from {}", dir.display());
    frames
}

fn decodes_stably(frame: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(message) = Message::decode(frame) {
        let again = Message::decode(&message.encode());
        prop_assert!(again.as_ref().is_ok_and(|m| *m == message), "{message:?} re-decoded as {again:?}");
    }
    Ok(())
}

#[test]
fn random_and_mutated_frames() {
    let frames = captured();
    let seeds = frames.clone();
    let inputs = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..256),
        (0..seeds.len()).prop_flat_map(move |i| mutated(seeds[i].clone())),
    ];
    fuzz("frame decoder", 200_000, inputs, |frame| decodes_stably(&frame));
}

#[test]
fn sequences_through_the_handshake() {
    let frames = captured();
    let seeds = frames.clone();
    let frame = prop_oneof![
        (0..frames.len()).prop_map(move |i| frames[i].clone()),
        (0..seeds.len()).prop_flat_map(move |i| mutated(seeds[i].clone())),
        proptest::collection::vec(any::<u8>(), 0..64),
    ];
    fuzz("handshake", 50_000, proptest::collection::vec(frame, 1..12), |sequence| {
        let metadata = PeerMetadata { storage_id: Some("storage".into()), is_ephemeral: false };
        let mut handshake = ServerHandshake::new("server".into(), metadata, 1 << 20);
        for frame in &sequence {
            // A protocol error closes the connection: nothing after it is read.
            if handshake.receive(frame).is_err() {
                break;
            }
        }
        Ok(())
    });
}
