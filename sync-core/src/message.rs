//! The automerge-repo network protocol, version "1": one CBOR map per binary WebSocket frame.
//!
//! Decoding goes through a generic CBOR value so that unknown fields are ignored, byte
//! strings are accepted whether or not the sender tagged them, and an unknown message type
//! surfaces as [`Message::Unknown`] instead of an error.

use std::collections::BTreeMap;

use ciborium::Value;

use crate::document_id::{DocumentId, InvalidDocumentId};

/// The only protocol version automerge-repo speaks today.
pub const PROTOCOL_VERSION: &str = "1";
/// The type of [`Message::Renew`].
pub const RENEW: &str = "fieldbook/renew";

/// A peer's self-chosen id. Only used to address messages; never trusted for identity.
pub type PeerId = String;
/// Identifies a durable store; a client uses it to tell which of its changes are stored.
pub type StorageId = String;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PeerMetadata {
    pub storage_id: Option<StorageId>,
    pub is_ephemeral: bool,
}

/// Heads a storage holds for a document, as gossiped by `remote-heads-changed`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteHeads {
    pub heads: Vec<String>,
    pub timestamp: u64,
}

/// Whether a document message is an ordinary sync message or a request from a peer that
/// does not have the document yet. Both carry an automerge sync message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncKind {
    Sync,
    Request,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    Join {
        sender_id: PeerId,
        peer_metadata: Option<PeerMetadata>,
        supported_protocol_versions: Vec<String>,
    },
    Peer {
        sender_id: PeerId,
        target_id: PeerId,
        peer_metadata: Option<PeerMetadata>,
        selected_protocol_version: String,
    },
    Error {
        sender_id: PeerId,
        target_id: Option<PeerId>,
        message: String,
    },
    Leave {
        sender_id: PeerId,
    },
    Sync {
        kind: SyncKind,
        sender_id: PeerId,
        target_id: PeerId,
        document_id: DocumentId,
        data: Vec<u8>,
    },
    DocUnavailable {
        sender_id: PeerId,
        target_id: PeerId,
        document_id: DocumentId,
    },
    Ephemeral {
        sender_id: PeerId,
        target_id: PeerId,
        count: u64,
        session_id: String,
        document_id: DocumentId,
        data: Vec<u8>,
    },
    RemoteSubscriptionChange {
        sender_id: PeerId,
        target_id: PeerId,
        add: Vec<StorageId>,
        remove: Vec<StorageId>,
    },
    RemoteHeadsChanged {
        sender_id: PeerId,
        target_id: PeerId,
        document_id: DocumentId,
        new_heads: BTreeMap<StorageId, RemoteHeads>,
    },
    /// Fieldbook's extension: a fresh access token for the running session, so it outlives
    /// the token it was opened with (`{type: "fieldbook/renew", senderId, token}`).
    Renew {
        sender_id: PeerId,
        token: String,
    },
    /// A message type this implementation does not know. Logged and ignored by callers.
    Unknown {
        message_type: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("frame is not valid CBOR: {0}")]
    Cbor(String),
    #[error("frame is not a CBOR map")]
    NotAMap,
    #[error("message has no `type`")]
    MissingType,
    #[error("{message_type} message is missing `{field}`")]
    MissingField { message_type: String, field: &'static str },
    #[error("{message_type} message has a `{field}` of the wrong type")]
    WrongFieldType { message_type: String, field: &'static str },
    #[error(transparent)]
    InvalidDocumentId(#[from] InvalidDocumentId),
}

impl Message {
    /// The wire name of this message's type.
    pub fn message_type(&self) -> &str {
        match self {
            Message::Join { .. } => "join",
            Message::Peer { .. } => "peer",
            Message::Error { .. } => "error",
            Message::Leave { .. } => "leave",
            Message::Sync { kind: SyncKind::Sync, .. } => "sync",
            Message::Sync { kind: SyncKind::Request, .. } => "request",
            Message::DocUnavailable { .. } => "doc-unavailable",
            Message::Ephemeral { .. } => "ephemeral",
            Message::RemoteSubscriptionChange { .. } => "remote-subscription-change",
            Message::RemoteHeadsChanged { .. } => "remote-heads-changed",
            Message::Renew { .. } => RENEW,
            Message::Unknown { message_type } => message_type,
        }
    }

    /// The document a message is about, if any.
    pub fn document_id(&self) -> Option<DocumentId> {
        match self {
            Message::Sync { document_id, .. }
            | Message::DocUnavailable { document_id, .. }
            | Message::Ephemeral { document_id, .. }
            | Message::RemoteHeadsChanged { document_id, .. } => Some(*document_id),
            _ => None,
        }
    }

    pub fn decode(frame: &[u8]) -> Result<Self, DecodeError> {
        let value: Value = ciborium::from_reader(frame).map_err(|e| DecodeError::Cbor(e.to_string()))?;
        let Value::Map(entries) = value else {
            return Err(DecodeError::NotAMap);
        };
        let fields = Fields::new(entries)?;
        let t = fields.message_type.clone();
        let message = match t.as_str() {
            "join" => Message::Join {
                sender_id: fields.text("senderId")?,
                peer_metadata: fields.peer_metadata()?,
                supported_protocol_versions: fields.text_list("supportedProtocolVersions")?,
            },
            "peer" => Message::Peer {
                sender_id: fields.text("senderId")?,
                target_id: fields.text("targetId")?,
                peer_metadata: fields.peer_metadata()?,
                selected_protocol_version: fields.text("selectedProtocolVersion")?,
            },
            "error" => Message::Error {
                sender_id: fields.text("senderId")?,
                target_id: fields.optional_text("targetId")?,
                message: fields.text("message")?,
            },
            "leave" => Message::Leave { sender_id: fields.text("senderId")? },
            "sync" | "request" => Message::Sync {
                kind: if t == "sync" { SyncKind::Sync } else { SyncKind::Request },
                sender_id: fields.text("senderId")?,
                target_id: fields.text("targetId")?,
                document_id: fields.document_id()?,
                data: fields.bytes("data")?,
            },
            "doc-unavailable" => Message::DocUnavailable {
                sender_id: fields.text("senderId")?,
                target_id: fields.text("targetId")?,
                document_id: fields.document_id()?,
            },
            "ephemeral" => Message::Ephemeral {
                sender_id: fields.text("senderId")?,
                target_id: fields.text("targetId")?,
                count: fields.unsigned("count")?,
                session_id: fields.text("sessionId")?,
                document_id: fields.document_id()?,
                data: fields.bytes("data")?,
            },
            "remote-subscription-change" => Message::RemoteSubscriptionChange {
                sender_id: fields.text("senderId")?,
                target_id: fields.text("targetId")?,
                add: fields.optional_text_list("add")?,
                remove: fields.optional_text_list("remove")?,
            },
            "remote-heads-changed" => Message::RemoteHeadsChanged {
                sender_id: fields.text("senderId")?,
                target_id: fields.text("targetId")?,
                document_id: fields.document_id()?,
                new_heads: fields.new_heads()?,
            },
            RENEW => Message::Renew { sender_id: fields.text("senderId")?, token: fields.text("token")? },
            _ => Message::Unknown { message_type: t },
        };
        Ok(message)
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut map: Vec<(Value, Value)> = vec![(text("type"), text(self.message_type()))];
        let mut put = |k: &str, v: Value| map.push((text(k), v));
        match self {
            Message::Join { sender_id, peer_metadata, supported_protocol_versions } => {
                put("senderId", text(sender_id));
                if let Some(m) = peer_metadata {
                    put("peerMetadata", encode_metadata(m));
                }
                put("supportedProtocolVersions", Value::Array(supported_protocol_versions.iter().map(text).collect()));
            }
            Message::Peer { sender_id, target_id, peer_metadata, selected_protocol_version } => {
                put("senderId", text(sender_id));
                put("targetId", text(target_id));
                if let Some(m) = peer_metadata {
                    put("peerMetadata", encode_metadata(m));
                }
                put("selectedProtocolVersion", text(selected_protocol_version));
            }
            Message::Error { sender_id, target_id, message } => {
                put("senderId", text(sender_id));
                if let Some(t) = target_id {
                    put("targetId", text(t));
                }
                put("message", text(message));
            }
            Message::Leave { sender_id } => put("senderId", text(sender_id)),
            Message::Sync { sender_id, target_id, document_id, data, .. } => {
                put("senderId", text(sender_id));
                put("targetId", text(target_id));
                put("documentId", text(document_id.to_string()));
                put("data", Value::Bytes(data.clone()));
            }
            Message::DocUnavailable { sender_id, target_id, document_id } => {
                put("senderId", text(sender_id));
                put("targetId", text(target_id));
                put("documentId", text(document_id.to_string()));
            }
            Message::Ephemeral { sender_id, target_id, count, session_id, document_id, data } => {
                put("senderId", text(sender_id));
                put("targetId", text(target_id));
                put("count", Value::Integer((*count).into()));
                put("sessionId", text(session_id));
                put("documentId", text(document_id.to_string()));
                put("data", Value::Bytes(data.clone()));
            }
            Message::RemoteSubscriptionChange { sender_id, target_id, add, remove } => {
                put("senderId", text(sender_id));
                put("targetId", text(target_id));
                put("add", Value::Array(add.iter().map(text).collect()));
                put("remove", Value::Array(remove.iter().map(text).collect()));
            }
            Message::RemoteHeadsChanged { sender_id, target_id, document_id, new_heads } => {
                put("senderId", text(sender_id));
                put("targetId", text(target_id));
                put("documentId", text(document_id.to_string()));
                let heads = new_heads
                    .iter()
                    .map(|(storage, h)| {
                        let entry = Value::Map(vec![
                            (text("heads"), Value::Array(h.heads.iter().map(text).collect())),
                            (text("timestamp"), Value::Integer(h.timestamp.into())),
                        ]);
                        (text(storage), entry)
                    })
                    .collect();
                put("newHeads", Value::Map(heads));
            }
            Message::Renew { sender_id, token } => {
                put("senderId", text(sender_id));
                put("token", text(token));
            }
            Message::Unknown { .. } => {}
        }
        let mut out = Vec::new();
        ciborium::into_writer(&Value::Map(map), &mut out).expect("writing CBOR to a Vec cannot fail");
        out
    }
}

fn text(s: impl AsRef<str>) -> Value {
    Value::Text(s.as_ref().to_owned())
}

fn encode_metadata(m: &PeerMetadata) -> Value {
    let mut entries = Vec::new();
    if let Some(id) = &m.storage_id {
        entries.push((text("storageId"), text(id)));
    }
    entries.push((text("isEphemeral"), Value::Bool(m.is_ephemeral)));
    Value::Map(entries)
}

/// The fields of one decoded message, keyed by name.
struct Fields {
    message_type: String,
    entries: Vec<(String, Value)>,
}

impl Fields {
    fn new(raw: Vec<(Value, Value)>) -> Result<Self, DecodeError> {
        let entries: Vec<(String, Value)> = raw
            .into_iter()
            .filter_map(|(k, v)| match k {
                Value::Text(k) => Some((k, v)),
                _ => None,
            })
            .collect();
        let message_type = entries
            .iter()
            .find(|(k, _)| k == "type")
            .and_then(|(_, v)| v.as_text().map(str::to_owned))
            .ok_or(DecodeError::MissingType)?;
        Ok(Self { message_type, entries })
    }

    fn get(&self, field: &str) -> Option<&Value> {
        self.entries.iter().find(|(k, _)| k == field).map(|(_, v)| untag(v)).filter(|v| !v.is_null())
    }

    fn missing(&self, field: &'static str) -> DecodeError {
        DecodeError::MissingField { message_type: self.message_type.clone(), field }
    }

    fn wrong(&self, field: &'static str) -> DecodeError {
        DecodeError::WrongFieldType { message_type: self.message_type.clone(), field }
    }

    fn optional_text(&self, field: &'static str) -> Result<Option<String>, DecodeError> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::Text(s)) => Ok(Some(s.clone())),
            Some(_) => Err(self.wrong(field)),
        }
    }

    fn text(&self, field: &'static str) -> Result<String, DecodeError> {
        self.optional_text(field)?.ok_or_else(|| self.missing(field))
    }

    fn bytes(&self, field: &'static str) -> Result<Vec<u8>, DecodeError> {
        match self.get(field) {
            None => Err(self.missing(field)),
            Some(Value::Bytes(b)) => Ok(b.clone()),
            Some(_) => Err(self.wrong(field)),
        }
    }

    fn unsigned(&self, field: &'static str) -> Result<u64, DecodeError> {
        match self.get(field) {
            None => Err(self.missing(field)),
            Some(Value::Integer(i)) => u64::try_from(*i).map_err(|_| self.wrong(field)),
            Some(Value::Float(f)) if *f >= 0.0 && f.fract() == 0.0 => Ok(*f as u64),
            Some(_) => Err(self.wrong(field)),
        }
    }

    fn optional_text_list(&self, field: &'static str) -> Result<Vec<String>, DecodeError> {
        match self.get(field) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => {
                items.iter().map(|v| v.as_text().map(str::to_owned).ok_or_else(|| self.wrong(field))).collect()
            }
            Some(_) => Err(self.wrong(field)),
        }
    }

    fn text_list(&self, field: &'static str) -> Result<Vec<String>, DecodeError> {
        if self.get(field).is_none() {
            return Err(self.missing(field));
        }
        self.optional_text_list(field)
    }

    fn document_id(&self) -> Result<DocumentId, DecodeError> {
        Ok(self.text("documentId")?.parse()?)
    }

    fn peer_metadata(&self) -> Result<Option<PeerMetadata>, DecodeError> {
        let Some(value) = self.get("peerMetadata") else {
            return Ok(None);
        };
        let Value::Map(entries) = value else {
            return Err(self.wrong("peerMetadata"));
        };
        let mut metadata = PeerMetadata::default();
        for (k, v) in entries {
            match (k.as_text(), untag(v)) {
                (Some("storageId"), Value::Text(s)) => metadata.storage_id = Some(s.clone()),
                (Some("isEphemeral"), Value::Bool(b)) => metadata.is_ephemeral = *b,
                _ => {}
            }
        }
        Ok(Some(metadata))
    }

    fn new_heads(&self) -> Result<BTreeMap<StorageId, RemoteHeads>, DecodeError> {
        let Some(Value::Map(entries)) = self.get("newHeads") else {
            return Err(self.missing("newHeads"));
        };
        let mut out = BTreeMap::new();
        for (k, v) in entries {
            let (Some(storage), Value::Map(fields)) = (k.as_text(), untag(v)) else {
                return Err(self.wrong("newHeads"));
            };
            let mut heads = RemoteHeads { heads: Vec::new(), timestamp: 0 };
            for (fk, fv) in fields {
                match (fk.as_text(), untag(fv)) {
                    (Some("heads"), Value::Array(hs)) => {
                        heads.heads = hs.iter().filter_map(|h| h.as_text().map(str::to_owned)).collect()
                    }
                    (Some("timestamp"), Value::Integer(i)) => heads.timestamp = u64::try_from(*i).unwrap_or_default(),
                    (Some("timestamp"), Value::Float(f)) => heads.timestamp = *f as u64,
                    _ => {}
                }
            }
            out.insert(storage.to_owned(), heads);
        }
        Ok(out)
    }
}

/// cbor-x may tag typed arrays (e.g. tag 64 for a Uint8Array); the payload is what counts.
fn untag(v: &Value) -> &Value {
    match v {
        Value::Tag(_, inner) => untag(inner),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(m: Message) {
        assert_eq!(Message::decode(&m.encode()).unwrap(), m);
    }

    #[test]
    fn every_type_round_trips() {
        let doc = DocumentId::random();
        let s = || "a".to_string();
        let t = || "b".to_string();
        round_trip(Message::Join {
            sender_id: s(),
            peer_metadata: Some(PeerMetadata { storage_id: Some("st".into()), is_ephemeral: false }),
            supported_protocol_versions: vec!["1".into()],
        });
        round_trip(Message::Peer {
            sender_id: s(),
            target_id: t(),
            peer_metadata: None,
            selected_protocol_version: "1".into(),
        });
        round_trip(Message::Error { sender_id: s(), target_id: Some(t()), message: "no".into() });
        round_trip(Message::Leave { sender_id: s() });
        for kind in [SyncKind::Sync, SyncKind::Request] {
            round_trip(Message::Sync { kind, sender_id: s(), target_id: t(), document_id: doc, data: vec![1, 2] });
        }
        round_trip(Message::DocUnavailable { sender_id: s(), target_id: t(), document_id: doc });
        round_trip(Message::Ephemeral {
            sender_id: s(),
            target_id: t(),
            count: 3,
            session_id: "x".into(),
            document_id: doc,
            data: vec![9],
        });
        round_trip(Message::RemoteSubscriptionChange {
            sender_id: s(),
            target_id: t(),
            add: vec!["st".into()],
            remove: vec![],
        });
        round_trip(Message::RemoteHeadsChanged {
            sender_id: s(),
            target_id: t(),
            document_id: doc,
            new_heads: [("st".to_string(), RemoteHeads { heads: vec!["h".into()], timestamp: 5 })]
                .into_iter()
                .collect(),
        });
    }

    #[test]
    fn unknown_type_is_not_an_error() {
        let mut frame = Vec::new();
        let v = Value::Map(vec![(text("type"), text("future-thing")), (text("senderId"), text("a"))]);
        ciborium::into_writer(&v, &mut frame).unwrap();
        assert_eq!(Message::decode(&frame).unwrap(), Message::Unknown { message_type: "future-thing".into() });
    }

    #[test]
    fn malformed_input_is_a_clear_error() {
        assert!(matches!(Message::decode(&[0xff, 0x00]), Err(DecodeError::Cbor(_))));
        let mut frame = Vec::new();
        ciborium::into_writer(&Value::Array(vec![]), &mut frame).unwrap();
        assert!(matches!(Message::decode(&frame), Err(DecodeError::NotAMap)));
        let mut frame = Vec::new();
        let v = Value::Map(vec![
            (text("type"), text("sync")),
            (text("senderId"), text("a")),
            (text("targetId"), text("b")),
            (text("documentId"), text("nope")),
            (text("data"), Value::Bytes(vec![])),
        ]);
        ciborium::into_writer(&v, &mut frame).unwrap();
        assert!(matches!(Message::decode(&frame), Err(DecodeError::InvalidDocumentId(_))));
    }
}
