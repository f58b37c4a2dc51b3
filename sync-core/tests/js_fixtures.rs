//! Frames captured from the stock JavaScript automerge-repo 2.5 client and server
//! (`tests/js/capture-fixtures.mjs`, fixtures in `tests/fixtures/js-2.5/`).
//!
//! Every frame the manifest lists is decoded, whatever its type, and checked against values
//! captured independently of our codec: the manifest's `decoded` form of each frame was
//! written by `tests/js/cbor-diag.mjs`, a CBOR walker of its own, from the same bytes. Then
//! our encoding of the decoded message must be the same CBOR value as the captured frame.

use std::collections::BTreeSet;
use std::path::PathBuf;

use ciborium::Value as Cbor;
use fieldbook_sync_core::message::{PeerMetadata, RemoteHeads};
use fieldbook_sync_core::{Message, SyncKind};
use serde_json::{Map, Value, json};

/// The protocol's message types (README "Protocol behaviour").
const ALL_TYPES: [&str; 10] = [
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
];

struct Frame {
    file: String,
    entry: Value,
    bytes: Vec<u8>,
}

fn frames() -> Vec<Frame> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/js-2.5");
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).expect("manifest")).expect("json");
    let entries = manifest["frames"].as_array().expect("frames");
    assert!(!entries.is_empty(), "the manifest lists no frames");
    entries
        .iter()
        .map(|entry| {
            let file = entry["file"].as_str().expect("file").to_owned();
            let bytes = std::fs::read(dir.join(&file)).unwrap_or_else(|e| panic!("{file}: {e}"));
            assert_eq!(Some(bytes.len() as u64), entry["byteLength"].as_u64(), "{file}: byteLength");
            Frame { file, entry: entry.clone(), bytes }
        })
        .collect()
}

#[test]
fn the_fixtures_hold_every_message_type_each_listed_in_the_manifest() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/js-2.5");
    let frames = frames();
    let listed: BTreeSet<&str> = frames.iter().map(|f| f.file.as_str()).collect();
    let on_disk: BTreeSet<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.ends_with(".cbor"))
        .collect();
    assert_eq!(
        on_disk.iter().map(String::as_str).collect::<BTreeSet<_>>(),
        listed,
        "frames on disk vs in the manifest"
    );
    let types: BTreeSet<&str> = frames.iter().map(|f| f.entry["type"].as_str().unwrap()).collect();
    assert_eq!(types, ALL_TYPES.into_iter().collect(), "message types among the fixtures");
    // Every type but `leave` was captured on the wire. The 2.5 WebSocket client adapter never
    // sends `leave` (disconnect() just closes the socket), so that one frame is made by
    // automerge-repo's own `cbor.encode`, the function the adapters send with.
    let synthesized: Vec<&str> =
        frames.iter().filter(|f| f.entry["synthesized"] == true).map(|f| f.entry["type"].as_str().unwrap()).collect();
    assert_eq!(synthesized, ["leave"], "frames not captured live");
}

#[test]
fn every_captured_frame_decodes_to_the_fields_the_manifest_shows() {
    let mut wrong = Vec::new();
    for Frame { file, entry, bytes } in frames() {
        let message = match Message::decode(&bytes) {
            Ok(message) => message,
            Err(e) => {
                wrong.push(format!("{file}: does not decode: {e}"));
                continue;
            }
        };
        if message.message_type() != entry["type"].as_str().unwrap() {
            wrong.push(format!("{file}: decoded as {:?}, captured as {}", message.message_type(), entry["type"]));
        }
        let ours = fields(&message);
        let captured = without_absent(&entry["decoded"]);
        if ours != captured {
            wrong.push(format!("{file}:\n  ours:     {ours}\n  captured: {captured}"));
        }
        // The payload of a sync or request is an automerge sync message.
        if let Message::Sync { data, .. } = &message
            && let Err(e) = automerge::sync::Message::decode(data)
        {
            wrong.push(format!("{file}: data is not an automerge sync message: {e}"));
        }
    }
    assert!(wrong.is_empty(), "frames that do not decode as captured:\n{}", wrong.join("\n"));
}

/// automerge-repo's encoder (cbor-x) is not canonical: maps get a 3-byte length header
/// whatever their size (0xb9 00 NN), keys are in insertion order (which differs between
/// message kinds), integers of 2^32 and above are written as float64 and JS `undefined` as
/// simple value 23. Byte-identical output is therefore not the bar; the CBOR value is, with
/// map keys in any order, a number equal whatever its CBOR width or major type (JS has one
/// number type), and an entry whose value is undefined or null the same as no entry (JS reads
/// both as `undefined`).
#[test]
fn our_encoding_of_every_captured_frame_is_the_same_cbor_value() {
    let mut wrong = Vec::new();
    for Frame { file, entry, bytes } in frames() {
        let Ok(message) = Message::decode(&bytes) else {
            wrong.push(format!("{file}: does not decode"));
            continue;
        };
        let captured = normalize(&cbor(&bytes));
        let ours = normalize(&cbor(&message.encode()));
        let ours = absent_lists_as_captured(&entry, ours, &captured);
        if ours != captured {
            wrong.push(format!("{file}:\n  ours:     {ours:?}\n  captured: {captured:?}"));
        }
    }
    assert!(wrong.is_empty(), "our encoding differs from the captured frame:\n{}", wrong.join("\n"));
}

/// The message's fields as the manifest's `decoded` form shows them: byte strings as
/// lowercase hex, absent fields left out.
fn fields(message: &Message) -> Value {
    let mut out = Map::new();
    out.insert("type".into(), json!(message.message_type()));
    let mut put = |k: &str, v: Value| {
        out.insert(k.into(), v);
    };
    let metadata = |m: &PeerMetadata| {
        let mut meta = Map::new();
        if let Some(id) = &m.storage_id {
            meta.insert("storageId".into(), json!(id));
        }
        meta.insert("isEphemeral".into(), json!(m.is_ephemeral));
        Value::Object(meta)
    };
    match message {
        Message::Join { sender_id, peer_metadata, supported_protocol_versions } => {
            put("senderId", json!(sender_id));
            if let Some(m) = peer_metadata {
                put("peerMetadata", metadata(m));
            }
            put("supportedProtocolVersions", json!(supported_protocol_versions));
        }
        Message::Peer { sender_id, target_id, peer_metadata, selected_protocol_version } => {
            put("senderId", json!(sender_id));
            put("targetId", json!(target_id));
            if let Some(m) = peer_metadata {
                put("peerMetadata", metadata(m));
            }
            put("selectedProtocolVersion", json!(selected_protocol_version));
        }
        Message::Error { sender_id, target_id, message } => {
            put("senderId", json!(sender_id));
            if let Some(t) = target_id {
                put("targetId", json!(t));
            }
            put("message", json!(message));
        }
        Message::Leave { sender_id } => put("senderId", json!(sender_id)),
        Message::Sync { kind, sender_id, target_id, document_id, data } => {
            assert_eq!(message.message_type(), if *kind == SyncKind::Request { "request" } else { "sync" });
            put("senderId", json!(sender_id));
            put("targetId", json!(target_id));
            put("documentId", json!(document_id.to_string()));
            put("data", json!(hex(data)));
        }
        Message::DocUnavailable { sender_id, target_id, document_id } => {
            put("senderId", json!(sender_id));
            put("targetId", json!(target_id));
            put("documentId", json!(document_id.to_string()));
        }
        Message::Ephemeral { sender_id, target_id, count, session_id, document_id, data } => {
            put("senderId", json!(sender_id));
            put("targetId", json!(target_id));
            put("count", json!(count));
            put("sessionId", json!(session_id));
            put("documentId", json!(document_id.to_string()));
            put("data", json!(hex(data)));
        }
        Message::RemoteSubscriptionChange { sender_id, target_id, add, remove } => {
            put("senderId", json!(sender_id));
            put("targetId", json!(target_id));
            // Our message cannot tell an absent list from an empty one; an empty one is shown
            // absent, so a captured `[]` would not match.
            if !add.is_empty() {
                put("add", json!(add));
            }
            if !remove.is_empty() {
                put("remove", json!(remove));
            }
        }
        Message::RemoteHeadsChanged { sender_id, target_id, document_id, new_heads } => {
            put("senderId", json!(sender_id));
            put("targetId", json!(target_id));
            put("documentId", json!(document_id.to_string()));
            let heads: Map<String, Value> = new_heads
                .iter()
                .map(|(storage, RemoteHeads { heads, timestamp })| {
                    (storage.clone(), json!({"heads": heads, "timestamp": timestamp}))
                })
                .collect();
            put("newHeads", Value::Object(heads));
        }
        // Unknown types, and Fieldbook's own extensions: never in a stock client's frames.
        other => put("notAStockMessage", json!(other.message_type())),
    }
    Value::Object(out)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The manifest's JSON form with null entries (JS `undefined` or `null`) left out.
fn without_absent(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k.clone(), without_absent(v))).collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_absent).collect()),
        other => other.clone(),
    }
}

fn cbor(bytes: &[u8]) -> Cbor {
    ciborium::from_reader(bytes).expect("CBOR")
}

/// A CBOR value in a form where equal values compare equal: map entries sorted by key with
/// undefined/null entries dropped, and whole numbers as integers whatever their encoding.
fn normalize(value: &Cbor) -> Cbor {
    match value {
        Cbor::Map(entries) => {
            let mut entries: Vec<(Cbor, Cbor)> =
                entries.iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (normalize(k), normalize(v))).collect();
            entries.sort_by_key(|(k, _)| format!("{k:?}"));
            Cbor::Map(entries)
        }
        Cbor::Array(items) => Cbor::Array(items.iter().map(normalize).collect()),
        Cbor::Tag(tag, inner) => Cbor::Tag(*tag, Box::new(normalize(inner))),
        Cbor::Float(f) if f.fract() == 0.0 && f.abs() <= 9_007_199_254_740_992.0 => Cbor::Integer((*f as i64).into()),
        other => other.clone(),
    }
}

/// One more equivalence, for `remote-subscription-change` only: an `add` or `remove` list the
/// sender left out (JS `undefined`) and an empty one mean the same to the stock receiver
/// (automerge-repo's RemoteHeadsSubscriptions.handleControlMessage runs `if (control.remove)
/// for (const remote of control.remove) …`), and our encoder writes the empty list. So an
/// empty list of ours stands for one the captured frame does not have.
fn absent_lists_as_captured(entry: &Value, ours: Cbor, captured: &Cbor) -> Cbor {
    if entry["type"] != "remote-subscription-change" {
        return ours;
    }
    let (Cbor::Map(ours), Cbor::Map(captured)) = (ours, captured) else { panic!("messages are maps") };
    let in_captured = |key: &Cbor| captured.iter().any(|(k, _)| k == key);
    Cbor::Map(
        ours.into_iter()
            .filter(|(k, v)| {
                let optional_list = matches!(k.as_text(), Some("add" | "remove"));
                !(optional_list && matches!(v, Cbor::Array(items) if items.is_empty()) && !in_captured(k))
            })
            .collect(),
    )
}
