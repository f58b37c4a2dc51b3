//! One sync session with a server: join, push and pull every document this device holds
//! (plus any asked for by URL), and stop once the server has stored all of it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use anyhow::{Context, bail};
use automerge::Automerge;
use fieldbook_sync_core::erasure::unsent_work;
use fieldbook_sync_core::notice::{self, RejectionNotice};
use fieldbook_sync_core::refusal::rule;
use fieldbook_sync_core::{DocSync, DocumentId, Message, PROTOCOL_VERSION, PeerMetadata, SyncKind};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use crate::session::Renewal;
use crate::store::Store;

/// The server is this device's only peer.
const SERVER: () = ();

#[derive(Debug, Default)]
pub struct DocReport {
    pub changes_sent: usize,
    pub changes_received: usize,
    pub unavailable: bool,
    /// The server refused our changes for this reason; our copy was set aside and the
    /// server's fetched instead.
    pub rejected: Option<String>,
    /// The server deleted the record (retention, or data protection): this device's copy,
    /// and anything set aside from it, is gone too.
    pub deleted: bool,
}

/// The server ended the session because its access token expired (close code 4401); a
/// fresh token and a new session carry on.
#[derive(Debug, thiserror::Error)]
#[error("the sync session's access token expired; sign in again (or let a stored sign-in refresh it) and sync again")]
pub struct SessionExpired;

/// The close code the server ends an expired session with.
const TOKEN_EXPIRED_CLOSE: u16 = 4401;

/// The server told this device, mid-session, that it was revoked: its local data must be
/// deleted. (Refused at connect time, it gets `session::TokenRefused { wipe: true }`.)
#[derive(Debug, thiserror::Error)]
#[error("this device was revoked by an administrator")]
pub struct WipeRequested;

pub struct SyncReport {
    pub server_storage_id: Option<String>,
    pub documents: BTreeMap<DocumentId, DocReport>,
    /// Records the server's index listed that this device did not have yet.
    pub discovered: BTreeSet<DocumentId>,
}

/// `http://host:port` or `ws://host:port` (with or without `/v1/sync`) → the sync URL.
pub fn sync_url(server: &str) -> anyhow::Result<String> {
    let server = server.trim_end_matches('/');
    let (scheme, rest) = server.split_once("://").context("server URL needs a scheme, e.g. http://127.0.0.1:8080")?;
    let scheme = match scheme {
        "http" | "ws" => "ws",
        "https" | "wss" => "wss",
        other => bail!("unsupported URL scheme {other:?}"),
    };
    let path = if rest.contains("/v1/sync") { "" } else { "/v1/sync" };
    Ok(format!("{scheme}://{rest}{path}"))
}

pub async fn sync(
    store: &Store,
    server: &str,
    token: &str,
    renewal: Option<Renewal<'_>>,
    fetch: &[DocumentId],
    timeout: Duration,
) -> anyhow::Result<SyncReport> {
    let work = async {
        let (listed, position) = crate::index::changed_records(store, server, token).await?;
        let mut discovered = BTreeSet::new();
        for id in listed {
            if store.load(id).await?.is_none() && !fetch.contains(&id) {
                discovered.insert(id);
            }
        }
        let wanted: Vec<DocumentId> = fetch.iter().chain(&discovered).copied().collect();
        let mut report = run(store, server, token, renewal.as_ref(), &wanted).await?;
        crate::index::save(store, server, &position).await?;
        report.discovered = discovered;
        Ok(report)
    };
    tokio::time::timeout(timeout, work).await.map_err(|_| {
        anyhow::anyhow!("sync did not finish within {timeout:?}; nothing stored locally is lost, run it again")
    })?
}

async fn run(
    store: &Store,
    server: &str,
    token: &str,
    renewal: Option<&Renewal<'_>>,
    fetch: &[DocumentId],
) -> anyhow::Result<SyncReport> {
    let mut request = sync_url(server)?.into_client_request()?;
    request.headers_mut().insert(
        "authorization",
        HeaderValue::from_str(&format!("Bearer {token}")).context("token is not a valid header value")?,
    );
    let (socket, _) = tokio_tungstenite::connect_async_with_config(request, None, true).await.map_err(|e| match e {
        tokio_tungstenite::tungstenite::Error::Http(response) if response.status() == 401 => {
            crate::session::refused(&response)
        }
        other => anyhow::anyhow!("cannot connect to {server}: {other}"),
    })?;
    let (mut sink, mut stream) = socket.split();

    let peer_id = format!("device-{}", uuid::Uuid::new_v4());
    let join = Message::Join {
        sender_id: peer_id.clone(),
        peer_metadata: Some(PeerMetadata { storage_id: Some(store.storage_id().await?), is_ephemeral: false }),
        supported_protocol_versions: vec![PROTOCOL_VERSION.into()],
    };
    sink.send(WsMessage::Binary(join.encode().into())).await?;

    let (server_peer, server_storage_id) = match next_message(&mut stream).await? {
        Message::Peer { sender_id, peer_metadata, .. } => (sender_id, peer_metadata.and_then(|m| m.storage_id)),
        Message::Error { message, .. } => bail!("server refused the connection: {message}"),
        other => bail!("expected `peer` from the server, got `{}`", other.message_type()),
    };

    let mut docs: HashMap<DocumentId, DocSync<()>> = HashMap::new();
    for stored in store.all().await? {
        let mut doc_sync = DocSync::new(stored.doc);
        if let Some(storage) = &server_storage_id
            && let Some(state) = store.sync_state(stored.id, storage).await?
        {
            doc_sync.set_peer_state(SERVER, state);
        }
        docs.insert(stored.id, doc_sync);
    }
    for id in fetch {
        docs.entry(*id).or_insert_with(|| DocSync::new(Automerge::new()));
    }

    let mut report = SyncReport {
        server_storage_id: server_storage_id.clone(),
        documents: BTreeMap::new(),
        discovered: BTreeSet::new(),
    };
    let mut pending: std::collections::HashSet<DocumentId> = docs.keys().copied().collect();
    for (id, doc_sync) in &mut docs {
        let entry = report.documents.entry(*id).or_default();
        if let Some(out) = doc_sync.outgoing_for(&SERVER) {
            entry.changes_sent += change_count(&out.data);
            let frame = sync_frame(&peer_id, &server_peer, *id, out.kind, out.data);
            sink.send(WsMessage::Binary(frame.into())).await?;
        }
    }

    // A stored sign-in renews the session in-band a while before its token expires, so a
    // long sync carries on instead of being closed.
    let mut renew_at = match renewal {
        Some(renewal) => Some(renewal_time(renewal.expires_at().await?)),
        None => None,
    };
    while !pending.is_empty() {
        let message = tokio::select! {
            message = next_message(&mut stream) => message?,
            _ = tokio::time::sleep_until(renew_at.unwrap_or_else(tokio::time::Instant::now)), if renew_at.is_some() => {
                let renewal = renewal.expect("renew_at is set only with a renewal");
                let token = renewal.renew().await?;
                let renew = Message::Renew { sender_id: peer_id.clone(), token };
                sink.send(WsMessage::Binary(renew.encode().into())).await?;
                renew_at = Some(renewal_time(renewal.expires_at().await?));
                continue;
            }
        };
        match message {
            Message::Sync { document_id, kind, data, .. } => {
                let Some(doc_sync) = docs.get_mut(&document_id) else { continue };
                let entry = report.documents.entry(document_id).or_default();
                let received = doc_sync.receive(&SERVER, kind, &data)?;
                entry.changes_received += received.new_changes;
                if received.new_changes > 0 {
                    store.save(document_id, doc_sync.doc()).await?;
                }
                if let Some(out) = doc_sync.outgoing_for(&SERVER) {
                    entry.changes_sent += change_count(&out.data);
                    let frame = sync_frame(&peer_id, &server_peer, document_id, out.kind, out.data);
                    sink.send(WsMessage::Binary(frame.into())).await?;
                }
                // The server only reports heads it has committed, so equal heads mean every
                // change of ours is stored there and we hold all of its.
                if doc_sync.in_sync_with(&SERVER) {
                    pending.remove(&document_id);
                }
            }
            // Notices come from the server itself, never relayed from another peer.
            Message::Ephemeral { document_id, data, sender_id, .. } if sender_id == server_peer => {
                let Some(notice) = RejectionNotice::decode(&data) else { continue };
                if notice.rule.as_deref() == Some(rule::DELETED) {
                    if docs.remove(&document_id).is_some() {
                        store.forget(document_id).await?;
                        report.documents.entry(document_id).or_default().deleted = true;
                    }
                    pending.remove(&document_id);
                    continue;
                }
                let Some(doc_sync) = docs.get_mut(&document_id) else { continue };
                // Keep our copy aside and take the server's: the refused changes can never
                // merge, and every later edit on top of them would be refused too. If the
                // server erased the record's history, only our unsent work is kept (the old
                // history holds the erased text), and nothing of the copy stays in the file.
                let erased = notice.rule.as_deref() == Some(rule::ERASED);
                let kept = if erased {
                    let confirmed = doc_sync
                        .encoded_peer_state(&SERVER)
                        .and_then(|s| automerge::sync::State::decode(&s).ok())
                        .map(|s| s.shared_heads)
                        .unwrap_or_default();
                    unsent_work(doc_sync.doc(), &confirmed)
                } else {
                    doc_sync.doc().clone()
                };
                store.set_aside(document_id, &kept, &notice.reason).await?;
                if erased {
                    store.overwrite_freed().await?;
                }
                report.documents.entry(document_id).or_default().rejected = Some(notice.reason);
                *doc_sync = DocSync::new(Automerge::new());
                if let Some(out) = doc_sync.outgoing_for(&SERVER) {
                    let frame = sync_frame(&peer_id, &server_peer, document_id, out.kind, out.data);
                    sink.send(WsMessage::Binary(frame.into())).await?;
                }
                pending.insert(document_id);
            }
            // For a document we hold, this means we may not (or may no longer) see it there.
            Message::DocUnavailable { document_id, .. } => {
                report.documents.entry(document_id).or_default().unavailable = true;
                pending.remove(&document_id);
            }
            Message::Unknown { message_type } if message_type == notice::WIPE => return Err(WipeRequested.into()),
            Message::Error { message, .. } => {
                // An expired session is told why, then closed with its own code.
                let closing = tokio::time::timeout(Duration::from_secs(2), next_message(&mut stream)).await;
                if let Ok(Err(e)) = closing
                    && e.is::<SessionExpired>()
                {
                    return Err(SessionExpired.into());
                }
                bail!("server error: {message}")
            }
            _ => {}
        }
    }
    let _ = sink.close().await;

    if let Some(storage) = &server_storage_id {
        for (id, doc_sync) in &docs {
            if let Some(state) = doc_sync.encoded_peer_state(&SERVER).filter(|_| !doc_sync.is_empty()) {
                store.save_sync_state(*id, storage, &state).await?;
            }
        }
    }
    Ok(report)
}

/// A third of its remaining life before `expires_at` (Unix seconds), at most a minute before.
fn renewal_time(expires_at: u64) -> tokio::time::Instant {
    let expiry = std::time::UNIX_EPOCH + Duration::from_secs(expires_at);
    let left = expiry.duration_since(std::time::SystemTime::now()).unwrap_or_default();
    let lead = (left / 3).min(Duration::from_secs(60));
    tokio::time::Instant::now() + (left - lead)
}

fn sync_frame(sender: &str, target: &str, document_id: DocumentId, kind: SyncKind, data: Vec<u8>) -> Vec<u8> {
    Message::Sync { kind, sender_id: sender.into(), target_id: target.into(), document_id, data }.encode()
}

fn change_count(sync_message: &[u8]) -> usize {
    automerge::sync::Message::decode(sync_message).map(|m| m.changes.len()).unwrap_or(0)
}

async fn next_message<S>(stream: &mut S) -> anyhow::Result<Message>
where
    S: futures_util::Stream<Item = Result<WsMessage, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        match stream.next().await {
            None => bail!("the server closed the connection"),
            Some(Err(e)) => bail!("connection lost: {e}"),
            Some(Ok(WsMessage::Binary(bytes))) => return Ok(Message::decode(&bytes)?),
            Some(Ok(WsMessage::Close(Some(frame)))) if u16::from(frame.code) == TOKEN_EXPIRED_CLOSE => {
                return Err(SessionExpired.into());
            }
            Some(Ok(WsMessage::Close(frame))) => {
                bail!(
                    "the server closed the connection{}",
                    frame.map(|f| format!(": {}", f.reason)).unwrap_or_default()
                )
            }
            Some(Ok(_)) => continue,
        }
    }
}
