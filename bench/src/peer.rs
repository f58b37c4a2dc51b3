//! A minimal live protocol peer built on sync-core, used to drive both servers identically.

use std::collections::HashMap;

use anyhow::{Context, bail};
use automerge::Automerge;
use fieldbook_sync_core::{DocSync, DocumentId, Message, PROTOCOL_VERSION, PeerMetadata};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

pub struct Peer {
    id: String,
    server: String,
    sink: SplitSink<Ws, WsMessage>,
    stream: SplitStream<Ws>,
    pub docs: HashMap<DocumentId, DocSync<()>>,
}

impl Peer {
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        let (socket, _) = tokio_tungstenite::connect_async_with_config(url, None, true)
            .await
            .with_context(|| format!("connect {url}"))?;
        let (mut sink, stream) = socket.split();
        let id = format!("bench-{}", uuid::Uuid::new_v4().simple());
        let join = Message::Join {
            sender_id: id.clone(),
            peer_metadata: Some(PeerMetadata {
                storage_id: Some(uuid::Uuid::new_v4().to_string()),
                is_ephemeral: false,
            }),
            supported_protocol_versions: vec![PROTOCOL_VERSION.into()],
        };
        sink.send(WsMessage::Binary(join.encode().into())).await?;
        let mut peer = Self { id, server: String::new(), sink, stream, docs: HashMap::new() };
        match peer.next().await? {
            Message::Peer { sender_id, .. } => peer.server = sender_id,
            other => bail!("expected peer, got {}", other.message_type()),
        }
        Ok(peer)
    }

    pub async fn next(&mut self) -> anyhow::Result<Message> {
        loop {
            match self.stream.next().await {
                Some(Ok(WsMessage::Binary(b))) => return Ok(Message::decode(&b)?),
                Some(Ok(WsMessage::Close(_))) | None => bail!("server closed the connection"),
                Some(Err(e)) => bail!("socket error: {e}"),
                Some(Ok(_)) => continue,
            }
        }
    }

    /// Starts syncing a document (an empty one is requested from the server).
    pub async fn open(&mut self, id: DocumentId, doc: Automerge) -> anyhow::Result<()> {
        self.docs.insert(id, DocSync::new(doc));
        self.flush(id).await
    }

    pub async fn flush(&mut self, id: DocumentId) -> anyhow::Result<()> {
        let doc = self.docs.get_mut(&id).context("unknown doc")?;
        if let Some(out) = doc.outgoing_for(&()) {
            let frame = Message::Sync {
                kind: out.kind,
                sender_id: self.id.clone(),
                target_id: self.server.clone(),
                document_id: id,
                data: out.data,
            }
            .encode();
            self.sink.send(WsMessage::Binary(frame.into())).await?;
        }
        Ok(())
    }

    /// Handles one incoming message; returns the document it concerned.
    pub async fn pump(&mut self) -> anyhow::Result<Option<DocumentId>> {
        match self.next().await? {
            Message::Sync { document_id, kind, data, .. } => {
                let Some(doc) = self.docs.get_mut(&document_id) else { return Ok(None) };
                doc.receive(&(), kind, &data)?;
                self.flush(document_id).await?;
                Ok(Some(document_id))
            }
            Message::DocUnavailable { document_id, .. } => bail!("{document_id} unavailable"),
            Message::Error { message, .. } => bail!("server error: {message}"),
            _ => Ok(None),
        }
    }

    /// Fetches `ids` as a fresh device does — a `request` each, and once a record arrives a
    /// sync message saying it now has the server's heads — but without loading the records:
    /// a load generator that costs far less than the server's side of the exchange.
    pub async fn fetch_without_loading(&mut self, ids: &[DocumentId]) -> anyhow::Result<()> {
        let request = DocSync::<()>::new(Automerge::new()).outgoing_for(&()).context("request")?;
        for id in ids {
            self.send(Message::Sync {
                kind: request.kind,
                sender_id: self.id.clone(),
                target_id: self.server.clone(),
                document_id: *id,
                data: request.data.clone(),
            })
            .await?;
        }
        let mut pending: std::collections::HashSet<DocumentId> = ids.iter().copied().collect();
        while !pending.is_empty() {
            match self.next().await? {
                Message::Sync { document_id, data, .. } if pending.contains(&document_id) => {
                    let heads = automerge::sync::Message::decode(&data)?.heads;
                    if heads.is_empty() {
                        continue;
                    }
                    let have = automerge::sync::Have { last_sync: heads.clone(), bloom: Default::default() };
                    let ack = automerge::sync::Message {
                        heads,
                        need: vec![],
                        have: vec![have],
                        changes: Vec::<Vec<u8>>::new().into(),
                        flags: None,
                        version: automerge::sync::MessageVersion::V1,
                    };
                    self.send(Message::Sync {
                        kind: fieldbook_sync_core::SyncKind::Sync,
                        sender_id: self.id.clone(),
                        target_id: self.server.clone(),
                        document_id,
                        data: ack.encode(),
                    })
                    .await?;
                    pending.remove(&document_id);
                }
                Message::DocUnavailable { document_id, .. } => bail!("{document_id} unavailable"),
                Message::Error { message, .. } => bail!("server error: {message}"),
                _ => {}
            }
        }
        Ok(())
    }

    async fn send(&mut self, message: Message) -> anyhow::Result<()> {
        self.sink.send(WsMessage::Binary(message.encode().into())).await?;
        Ok(())
    }

    pub fn in_sync(&self, id: &DocumentId) -> bool {
        self.docs.get(id).is_some_and(|d| d.in_sync_with(&()) && !d.is_empty())
    }

    /// Pumps until every open document is in sync with the server (or two minutes pass).
    pub async fn settle(&mut self) -> anyhow::Result<()> {
        self.settle_within(std::time::Duration::from_secs(120)).await
    }

    /// Pumps until every open document is in sync with the server, or fails after `limit`.
    pub async fn settle_within(&mut self, limit: std::time::Duration) -> anyhow::Result<()> {
        tokio::time::timeout(limit, self.settle_inner())
            .await
            .map_err(|_| anyhow::anyhow!("documents did not sync within {limit:?}"))?
    }

    async fn settle_inner(&mut self) -> anyhow::Result<()> {
        let mut pending: std::collections::HashSet<DocumentId> =
            self.docs.keys().filter(|id| !self.in_sync(id)).copied().collect();
        while !pending.is_empty() {
            if let Some(id) = self.pump().await?
                && self.in_sync(&id)
            {
                pending.remove(&id);
            }
        }
        Ok(())
    }
}

/// An observation-sized document: context fields and about 2 KB of narrative text.
pub fn observation(i: usize) -> Automerge {
    let words = ["the", "practitioner", "explained", "the", "plan", "to", "the", "family", "and", "listened"];
    let mut notes = String::new();
    let mut w = i;
    while notes.len() < 2048 {
        notes.push_str(words[w % words.len()]);
        notes.push(' ');
        w = w.wrapping_mul(31).wrapping_add(7);
    }
    let json = serde_json::json!({
        "type": "observation",
        "schemaVersion": 1,
        "practitionerId": format!("p-{}", i % 97),
        "observerId": "bench",
        "observedAt": "2026-11-20T10:00:00Z",
        "setting": "home-visit",
        "framework": "kss-cf-2018",
        "components": ["kss-cf-2018/1", "kss-cf-2018/6"],
        "notes": notes,
        "status": "draft",
    });
    let mut doc = Automerge::new();
    let mut tx = doc.transaction();
    fieldbook_sync_core::json::put_object(&mut tx, &json).expect("valid observation");
    tx.commit();
    doc
}
