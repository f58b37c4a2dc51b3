//! A protocol-level client for access tests: pushes one document's changes through the real
//! sync path and reports exactly how the server answered.

use automerge::Automerge;
use fieldbook_sync_core::notice::RejectionNotice;
use fieldbook_sync_core::{DocSync, DocumentId, Message, SyncKind};

use crate::raw::{self, Socket};

const SERVER: () = ();

/// How the server answered a push or a fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The server's heads equal ours: every change is stored there.
    Accepted,
    /// Refused with a `fieldbook/rejected` notice.
    Rejected(String),
    /// `doc-unavailable`: as far as this user knows, the document does not exist.
    Unavailable,
}

pub struct Peer {
    socket: Socket,
    peer_id: String,
    server_id: String,
}

impl Peer {
    pub async fn connect(ws_url: &str, name: &str) -> Self {
        let mut socket = raw::connect(ws_url).await;
        raw::send(&mut socket, raw::join_frame(name)).await;
        let server_id = match raw::next(&mut socket).await {
            Some(Message::Peer { sender_id, .. }) => sender_id,
            other => panic!("expected `peer`, got {other:?}"),
        };
        Self { socket, peer_id: name.into(), server_id }
    }

    /// Sends a frame as it is (a renewal, an ephemeral message).
    pub async fn send_frame(&mut self, frame: Vec<u8>) {
        raw::send(&mut self.socket, frame).await;
    }

    /// The next message the server sends (`None`: it closed the connection).
    pub async fn next_message(&mut self) -> Option<Message> {
        raw::next(&mut self.socket).await
    }

    /// The next `fieldbook/rejected` notice the server sends about `id` (other messages are
    /// skipped), within `within`; `None` if none came.
    pub async fn notice_about(&mut self, id: DocumentId, within: std::time::Duration) -> Option<RejectionNotice> {
        let wait = async {
            loop {
                match self.next_message().await {
                    Some(Message::Ephemeral { document_id, data, .. }) if document_id == id => {
                        if let Some(notice) = RejectionNotice::decode(&data) {
                            return Some(notice);
                        }
                    }
                    Some(_) => {}
                    None => return None,
                }
            }
        };
        tokio::time::timeout(within, wait).await.ok().flatten()
    }

    /// Sends `doc` to the server until it holds all of it, or refuses.
    pub async fn push(&mut self, id: DocumentId, doc: &Automerge) -> Outcome {
        let mut sync = DocSync::new(doc.clone());
        self.exchange(id, &mut sync).await
    }

    /// The server's copy, if this user may see it.
    pub async fn fetch(&mut self, id: DocumentId) -> Result<Automerge, Outcome> {
        let mut sync = DocSync::new(Automerge::new());
        match self.exchange(id, &mut sync).await {
            Outcome::Accepted if !sync.is_empty() => Ok(sync.doc().clone()),
            Outcome::Accepted => Err(Outcome::Unavailable),
            other => Err(other),
        }
    }

    async fn exchange(&mut self, id: DocumentId, sync: &mut DocSync<()>) -> Outcome {
        match self.try_exchange(id, sync).await {
            Ok(outcome) => outcome,
            Err(Interrupted::Error(message)) => panic!("server error: {message}"),
            Err(other) => panic!("the server should keep the connection open: {other:?}"),
        }
    }
}

/// Why a fallible push ended without the server's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Interrupted {
    /// The connection closed or broke.
    Closed,
    /// The server sent an `error` message (and closes the connection).
    Error(String),
    /// Nothing decisive arrived in time.
    TimedOut,
}

impl Peer {
    /// Like [`Peer::connect`], but an unreachable server, a refused upgrade or no `peer`
    /// reply within `within` is an error, not a panic (for tests where the server may be
    /// down).
    pub async fn try_connect(ws_url: &str, name: &str, within: std::time::Duration) -> Result<Self, String> {
        use futures_util::StreamExt;
        use tokio_tungstenite::tungstenite::Message as WsMessage;
        let connect = async {
            let (mut socket, _) = tokio_tungstenite::connect_async(ws_url).await.map_err(|e| e.to_string())?;
            futures_util::SinkExt::send(&mut socket, WsMessage::Binary(raw::join_frame(name).into()))
                .await
                .map_err(|e| e.to_string())?;
            loop {
                match socket.next().await {
                    Some(Ok(WsMessage::Binary(bytes))) => match Message::decode(&bytes) {
                        Ok(Message::Peer { sender_id, .. }) => {
                            return Ok(Self { socket, peer_id: name.into(), server_id: sender_id });
                        }
                        other => return Err(format!("expected `peer`, got {other:?}")),
                    },
                    Some(Ok(WsMessage::Close(_))) | None => return Err("closed before `peer`".into()),
                    Some(Err(e)) => return Err(e.to_string()),
                    Some(Ok(_)) => continue,
                }
            }
        };
        tokio::time::timeout(within, connect).await.unwrap_or_else(|_| Err(format!("no `peer` within {within:?}")))
    }

    /// Like [`Peer::push`], but a broken connection, an `error` message, or no decisive
    /// answer within `within` is returned, not a panic.
    pub async fn try_push(
        &mut self,
        id: DocumentId,
        doc: &Automerge,
        within: std::time::Duration,
    ) -> Result<Outcome, Interrupted> {
        let mut sync = DocSync::new(doc.clone());
        tokio::time::timeout(within, self.try_exchange(id, &mut sync)).await.unwrap_or(Err(Interrupted::TimedOut))
    }

    async fn try_exchange(&mut self, id: DocumentId, sync: &mut DocSync<()>) -> Result<Outcome, Interrupted> {
        use futures_util::StreamExt;
        use tokio_tungstenite::tungstenite::Message as WsMessage;
        sync.add_peer(SERVER);
        self.try_send_outgoing(id, sync).await?;
        loop {
            let bytes = match self.socket.next().await {
                Some(Ok(WsMessage::Binary(bytes))) => bytes,
                Some(Ok(WsMessage::Close(_))) | None | Some(Err(_)) => return Err(Interrupted::Closed),
                Some(Ok(_)) => continue,
            };
            match Message::decode(&bytes).expect("server sends valid frames") {
                Message::Sync { document_id, kind, data, .. } if document_id == id => {
                    sync.receive(&SERVER, kind, &data).expect("valid sync message");
                    self.try_send_outgoing(id, sync).await?;
                    if sync.in_sync_with(&SERVER) {
                        return Ok(Outcome::Accepted);
                    }
                }
                Message::Ephemeral { document_id, data, .. } if document_id == id => {
                    if let Some(notice) = RejectionNotice::decode(&data) {
                        return Ok(Outcome::Rejected(notice.reason));
                    }
                }
                Message::DocUnavailable { document_id, .. } if document_id == id => return Ok(Outcome::Unavailable),
                Message::Error { message, .. } => return Err(Interrupted::Error(message)),
                _ => {}
            }
        }
    }

    async fn try_send_outgoing(&mut self, id: DocumentId, sync: &mut DocSync<()>) -> Result<(), Interrupted> {
        use futures_util::SinkExt;
        use tokio_tungstenite::tungstenite::Message as WsMessage;
        if let Some(out) = sync.outgoing_for(&SERVER) {
            let kind = if sync.is_empty() { SyncKind::Request } else { out.kind };
            let message = Message::Sync {
                kind,
                sender_id: self.peer_id.clone(),
                target_id: self.server_id.clone(),
                document_id: id,
                data: out.data,
            };
            self.socket.send(WsMessage::Binary(message.encode().into())).await.map_err(|_| Interrupted::Closed)?;
        }
        Ok(())
    }
}
