//! The server side of one connection's handshake and message routing, sans-IO.
//!
//! A peer must `join` with protocol version "1" before anything else; the server answers
//! `peer` with its storage id. Any protocol violation is a [`ConnectionError`]: the caller
//! sends [`ServerHandshake::error_message`] and closes that connection only.

use crate::message::{DecodeError, Message, PROTOCOL_VERSION, PeerId, PeerMetadata};

#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    #[error("frame of {size} bytes exceeds the limit of {limit} bytes")]
    FrameTooLarge { size: usize, limit: usize },
    #[error("text frames are not part of the protocol; send CBOR in binary frames")]
    TextFrame,
    #[error("malformed message: {0}")]
    Decode(#[from] DecodeError),
    #[error("unsupported protocol version(s) {offered:?}; this server speaks \"{PROTOCOL_VERSION}\"")]
    UnsupportedVersion { offered: Vec<String> },
    #[error("expected `join` first, got `{0}`")]
    NotJoined(String),
    #[error("`join` sent twice")]
    AlreadyJoined,
}

/// What the runtime should do with a frame that passed the handshake rules.
#[derive(Debug)]
pub enum Inbound {
    /// The peer joined; send `reply` (a `peer` message).
    Joined { peer_id: PeerId, metadata: Option<PeerMetadata>, reply: Message },
    /// A message about one document: sync, request, ephemeral, doc-unavailable,
    /// remote-heads-changed.
    Document(Message),
    /// The peer said goodbye.
    Leave,
    /// A fresh access token for this session.
    Renew { token: String },
    /// Valid but nothing for the server to do (unknown types, subscriptions to remote heads).
    Ignored(Message),
}

pub struct ServerHandshake {
    our_peer_id: PeerId,
    our_metadata: PeerMetadata,
    max_frame_bytes: usize,
    remote: Option<PeerId>,
}

impl ServerHandshake {
    pub fn new(our_peer_id: PeerId, our_metadata: PeerMetadata, max_frame_bytes: usize) -> Self {
        Self { our_peer_id, our_metadata, max_frame_bytes, remote: None }
    }

    pub fn our_peer_id(&self) -> &PeerId {
        &self.our_peer_id
    }

    /// The remote peer's self-declared id, once it has joined.
    pub fn remote_peer_id(&self) -> Option<&PeerId> {
        self.remote.as_ref()
    }

    pub fn receive(&mut self, frame: &[u8]) -> Result<Inbound, ConnectionError> {
        if frame.len() > self.max_frame_bytes {
            return Err(ConnectionError::FrameTooLarge { size: frame.len(), limit: self.max_frame_bytes });
        }
        let message = Message::decode(frame)?;
        match (&self.remote, message) {
            (None, Message::Join { sender_id, peer_metadata, supported_protocol_versions }) => {
                if !supported_protocol_versions.iter().any(|v| v == PROTOCOL_VERSION) {
                    return Err(ConnectionError::UnsupportedVersion { offered: supported_protocol_versions });
                }
                self.remote = Some(sender_id.clone());
                let reply = Message::Peer {
                    sender_id: self.our_peer_id.clone(),
                    target_id: sender_id.clone(),
                    peer_metadata: Some(self.our_metadata.clone()),
                    selected_protocol_version: PROTOCOL_VERSION.to_owned(),
                };
                Ok(Inbound::Joined { peer_id: sender_id, metadata: peer_metadata, reply })
            }
            (None, other) => Err(ConnectionError::NotJoined(other.message_type().to_owned())),
            (Some(_), Message::Join { .. }) => Err(ConnectionError::AlreadyJoined),
            (Some(_), Message::Leave { .. }) => Ok(Inbound::Leave),
            (Some(_), Message::Renew { token, .. }) => Ok(Inbound::Renew { token }),
            (
                Some(_),
                m @ (Message::Sync { .. }
                | Message::Ephemeral { .. }
                | Message::DocUnavailable { .. }
                | Message::RemoteHeadsChanged { .. }),
            ) => Ok(Inbound::Document(m)),
            (Some(_), other) => Ok(Inbound::Ignored(other)),
        }
    }

    /// The `error` message that tells the peer why its connection is being closed.
    pub fn error_message(&self, error: &ConnectionError) -> Message {
        Message::Error {
            sender_id: self.our_peer_id.clone(),
            target_id: self.remote.clone(),
            message: error.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::document_id::DocumentId;
    use crate::message::SyncKind;

    fn handshake() -> ServerHandshake {
        let meta = PeerMetadata { storage_id: Some("storage-1".into()), is_ephemeral: false };
        ServerHandshake::new("server".into(), meta, 1024)
    }

    fn join(versions: &[&str]) -> Vec<u8> {
        Message::Join {
            sender_id: "client".into(),
            peer_metadata: None,
            supported_protocol_versions: versions.iter().map(|v| v.to_string()).collect(),
        }
        .encode()
    }

    #[test]
    fn join_gets_peer_with_storage_id() {
        let mut h = handshake();
        let Inbound::Joined { peer_id, reply, .. } = h.receive(&join(&["1"])).unwrap() else { panic!() };
        assert_eq!(peer_id, "client");
        let Message::Peer { target_id, peer_metadata, selected_protocol_version, .. } = reply else { panic!() };
        assert_eq!(target_id, "client");
        assert_eq!(selected_protocol_version, "1");
        assert_eq!(peer_metadata.unwrap().storage_id.as_deref(), Some("storage-1"));
    }

    #[test]
    fn protocol_violations_are_errors() {
        let mut h = handshake();
        assert!(matches!(h.receive(&join(&["2"])), Err(ConnectionError::UnsupportedVersion { .. })));
        let sync = Message::Sync {
            kind: SyncKind::Sync,
            sender_id: "client".into(),
            target_id: "server".into(),
            document_id: DocumentId::random(),
            data: vec![],
        };
        assert!(matches!(h.receive(&sync.encode()), Err(ConnectionError::NotJoined(_))));
        assert!(matches!(h.receive(&[0u8; 2048]), Err(ConnectionError::FrameTooLarge { .. })));
        h.receive(&join(&["1"])).unwrap();
        assert!(matches!(h.receive(&join(&["1"])), Err(ConnectionError::AlreadyJoined)));
        assert!(matches!(h.receive(&sync.encode()).unwrap(), Inbound::Document(_)));
        let err = h.error_message(&ConnectionError::TextFrame);
        assert!(matches!(err, Message::Error { target_id: Some(ref t), .. } if t == "client"));
    }
}
