//! `GET /v1/sync`: one WebSocket connection speaking the automerge-repo protocol.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use fieldbook_sync_core::{ConnectionError, Inbound, Message, PeerMetadata, ServerHandshake};
use futures_util::{SinkExt, StreamExt};
use governor::{Quota, RateLimiter};
use tokio::sync::{Notify, Semaphore, mpsc};
use tokio::time::Instant;
use tracing::Instrument;

use crate::auth::{Authenticated, authenticate};
use crate::error::AppError;
use crate::state::AppState;

use super::hub::HubError;
use super::outbox::{Outbox, Outgoing};
use super::registry::Sender;

/// Messages about different documents one connection may have in progress at once.
const CONCURRENT_DOCUMENTS: usize = 32;
/// Frames this much larger than the protocol limit are cut off by the WebSocket layer
/// itself (close code 1009) without being buffered; below that we answer with an `error`.
const HARD_FRAME_FACTOR: usize = 4;
/// The WebSocket layer's read buffer. tungstenite's default (128 KiB, zero-filled at once)
/// was most of an idle connection's memory; a read fills it from the socket in steps of
/// this size, and a larger frame still grows it for as long as that frame needs.
const READ_BUFFER: usize = 8 * 1024;
/// Frames queued in the WebSocket layer past this many bytes are written to the socket
/// before the next is queued; the writer flushes whenever its outbox runs empty.
const WRITE_BUFFER: usize = 16 * 1024;
/// How long a closing connection's last frames may take to go out.
const WRITER_DRAIN: Duration = Duration::from_secs(10);
/// The close code (and reason) of a session whose access token expired unrenewed: sign in
/// again (or refresh) and reconnect. In the 4000s, which RFC 6455 leaves to applications.
pub const TOKEN_EXPIRED_CLOSE: u16 = 4401;
/// The close code of a session whose renewal was refused (another user, a bad token).
pub const RENEWAL_REFUSED_CLOSE: u16 = 4403;

/// Authentication happens in the extractor, before the upgrade: a bad token is a 401, and
/// a revoked device is told to wipe.
pub async fn sync_endpoint(
    State(state): State<AppState>,
    auth: Authenticated,
    ws: WebSocketUpgrade,
) -> Result<Response, AppError> {
    if let Some(device) = &auth.device
        && !state.db.device_seen(&auth.user.id, device).await?
    {
        return Err(AppError::DeviceRevoked);
    }
    // A session lasts as long as its token: one already expired (within the verifier's
    // leeway for clocks) would only be closed at once.
    if deadline(auth.expires_at) <= Instant::now() {
        return Err(AppError::unauthorized("the access token has expired"));
    }
    let hard_limit = state.limits.max_frame_bytes.saturating_mul(HARD_FRAME_FACTOR);
    let span = tracing::info_span!("sync", user = %auth.user.id, device = auth.device.as_deref().unwrap_or("-"));
    Ok(ws
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .max_message_size(hard_limit)
        .max_frame_size(hard_limit)
        .on_upgrade(move |socket| serve_connection(socket, state, auth).instrument(span)))
}

async fn serve_connection(socket: WebSocket, state: AppState, auth: Authenticated) {
    let (mut sink, mut stream) = socket.split();
    let (outbox, mut outbox_rx) = Outbox::new(state.limits.max_queued_bytes);
    let close = Arc::new(Notify::new());
    let hub = state.hub.clone();
    let viewer = match state.db.viewer(&auth.user).await {
        Ok(viewer) => viewer,
        Err(e) => {
            tracing::error!(error = %e, "could not load the user's access; closing");
            return;
        }
    };
    let sender = Sender { user_id: auth.user.id.clone(), device_id: auth.device.clone() };
    let connection = hub.connect(sender, viewer, outbox.clone(), close.clone());
    // A revocation between the upgrade and now would have found no connection to close.
    if let Some(device) = &auth.device
        && !matches!(state.db.device_revoked(&auth.user.id, device).await, Ok(false))
    {
        hub.revoke_device(&auth.user.id, device);
    }
    tracing::info!("connected");

    // Frames queued together go out in as few writes as the write buffer allows: one flush
    // when the outbox runs empty, not one per frame.
    let mut writer = tokio::spawn(async move {
        while let Some(next) = outbox_rx.recv().await {
            let mut next = Some(next);
            while let Some(outgoing) = next.take() {
                let message = match outgoing {
                    Outgoing::Frame(frame) => WsMessage::Binary(frame.into()),
                    Outgoing::Close { code, reason } => {
                        let _ = sink.send(WsMessage::Close(Some(CloseFrame { code, reason: reason.into() }))).await;
                        return;
                    }
                };
                if sink.feed(message).await.is_err() {
                    return;
                }
                next = outbox_rx.try_recv();
            }
            if sink.flush().await.is_err() {
                return;
            }
        }
        let _ = sink.close().await;
    });

    let metadata = PeerMetadata { storage_id: Some(state.storage_id.clone()), is_ephemeral: false };
    let mut handshake = ServerHandshake::new(hub.our_peer_id().clone(), metadata, state.limits.max_frame_bytes);
    // Generous for a real device (a fresh one pulling thousands of records at once stays
    // within the burst); a flood is read more slowly rather than cut off.
    let rate = Quota::per_second(NonZeroU32::new(state.limits.messages_per_second).unwrap_or(NonZeroU32::MIN))
        .allow_burst(NonZeroU32::new(state.limits.message_burst).unwrap_or(NonZeroU32::MIN));
    let limiter = RateLimiter::direct(rate);
    let mut expires = deadline(auth.expires_at);

    let in_progress = Arc::new(Semaphore::new(CONCURRENT_DOCUMENTS));
    let (failures, mut failed) = mpsc::channel::<String>(1);
    loop {
        let frame = tokio::select! {
            // Closing and expiry first: a frame that arrives with them is not read.
            biased;
            _ = close.notified() => break,
            _ = tokio::time::sleep_until(expires) => {
                tracing::info!("access token expired; closing");
                send_error(&outbox, &handshake, "the access token expired: renew it (fieldbook/renew) or reconnect with a fresh one".into());
                outbox.close(TOKEN_EXPIRED_CLOSE, "access token expired");
                break;
            }
            Some(reason) = failed.recv() => {
                tracing::info!(%reason, "closing connection");
                send_error(&outbox, &handshake, reason);
                break;
            }
            frame = stream.next() => frame,
        };
        let bytes = match frame {
            None | Some(Err(_)) | Some(Ok(WsMessage::Close(_))) => break,
            Some(Ok(WsMessage::Binary(bytes))) => bytes,
            Some(Ok(WsMessage::Text(_))) => {
                refuse(&outbox, &handshake, ConnectionError::TextFrame);
                break;
            }
            Some(Ok(_)) => continue, // ping/pong are answered by the WebSocket layer
        };
        limiter.until_ready().await;
        let inbound = match handshake.receive(&bytes) {
            Ok(inbound) => {
                crate::metrics::message_in(inbound_type(&inbound), bytes.len());
                inbound
            }
            Err(e) => {
                crate::metrics::message_in("invalid", bytes.len());
                refuse(&outbox, &handshake, e);
                break;
            }
        };
        match inbound {
            Inbound::Joined { peer_id, reply, .. } => {
                tracing::debug!(%peer_id, "joined");
                hub.joined(connection, peer_id);
                hub.send(connection, "peer", reply.encode());
            }
            Inbound::Document(Message::Sync { kind, document_id, data, .. }) => {
                // Lock in arrival order (keeps each document's messages in order), then
                // handle it beside this connection's other documents.
                let lock = hub.lock(connection, document_id).await;
                let Ok(permit) = in_progress.clone().acquire_owned().await else { break };
                let (hub, failures) = (hub.clone(), failures.clone());
                tokio::spawn(
                    async move {
                        let _permit = permit;
                        if let Err(e) = hub.receive_sync(lock, connection, document_id, kind, &data).await {
                            let _ = failures.try_send(failure_reason(&e, document_id));
                        }
                        hub.trim_cache();
                    }
                    .in_current_span(),
                );
            }
            Inbound::Document(m @ Message::Ephemeral { .. }) => hub.relay_ephemeral(connection, m),
            Inbound::Renew { token } => match renew(&state, &auth, &token).await {
                Ok((renewed, viewer)) => {
                    tracing::debug!(expires_at = renewed.expires_at, "session renewed");
                    expires = deadline(renewed.expires_at);
                    hub.renewed(connection, viewer);
                }
                // Our fault (the database is away): the session keeps its current token, and
                // the client may renew again.
                Err(Renewal::Failed(e)) => {
                    tracing::warn!(error = %e, "could not check a renewal; the session keeps its token")
                }
                Err(Renewal::Refused(reason)) => {
                    tracing::info!(%reason, "renewal refused; closing");
                    send_error(&outbox, &handshake, reason);
                    outbox.close(RENEWAL_REFUSED_CLOSE, "renewal refused");
                    break;
                }
            },
            Inbound::Document(other) | Inbound::Ignored(other) => {
                tracing::debug!(message_type = other.message_type(), "ignored message");
            }
            Inbound::Leave => break,
        }
    }

    hub.disconnect(connection);
    drop(outbox);
    // A peer that stopped reading would hold the writer (and this task) forever.
    if tokio::time::timeout(WRITER_DRAIN, &mut writer).await.is_err() {
        writer.abort();
    }
    tracing::info!("disconnected");
}

enum Renewal {
    /// The client's fault: a bad token, or one for someone else.
    Refused(String),
    /// The server's: it could not check.
    Failed(AppError),
}

/// Checks a token sent in-band: valid, and for the same user and device as the session.
async fn renew(
    state: &AppState,
    session: &Authenticated,
    token: &str,
) -> Result<(Authenticated, fieldbook_sync_core::access::Viewer), Renewal> {
    let renewed = authenticate(state, token).await.map_err(|e| match e {
        AppError::Internal(_) | AppError::Unavailable(_) => Renewal::Failed(e),
        refused => Renewal::Refused(format!("renewal refused: {refused}")),
    })?;
    if renewed.user.id != session.user.id || renewed.device != session.device {
        return Err(Renewal::Refused(
            "renewal refused: the token is for another user or device than this session".into(),
        ));
    }
    let viewer = state.db.viewer(&renewed.user).await.map_err(|e| Renewal::Failed(e.into()))?;
    Ok((renewed, viewer))
}

/// When a token that expires at `expires_at` (Unix seconds) stops being good, as a timer.
fn deadline(expires_at: u64) -> Instant {
    let expiry = UNIX_EPOCH + Duration::from_secs(expires_at);
    Instant::now() + expiry.duration_since(SystemTime::now()).unwrap_or_default()
}

/// The protocol type of an incoming message, for metrics.
fn inbound_type(inbound: &Inbound) -> &str {
    match inbound {
        Inbound::Joined { .. } => "join",
        Inbound::Document(m) | Inbound::Ignored(m) => m.message_type(),
        Inbound::Leave => "leave",
        Inbound::Renew { .. } => fieldbook_sync_core::message::RENEW,
    }
}

fn failure_reason(e: &HubError, document_id: fieldbook_sync_core::DocumentId) -> String {
    match e {
        HubError::Sync { .. } => e.to_string(),
        _ => {
            tracing::error!(error = %e, %document_id, "could not store a change");
            format!("server could not store changes to {document_id}; retry later")
        }
    }
}

fn refuse(outbox: &Outbox, handshake: &ServerHandshake, error: ConnectionError) {
    tracing::info!(%error, "protocol error; closing connection");
    let frame = handshake.error_message(&error).encode();
    crate::metrics::message_out("error", frame.len());
    let _ = outbox.push(frame);
}

fn send_error(outbox: &Outbox, handshake: &ServerHandshake, message: String) {
    let error = Message::Error {
        sender_id: handshake.our_peer_id().clone(),
        target_id: handshake.remote_peer_id().cloned(),
        message,
    };
    let frame = error.encode();
    crate::metrics::message_out("error", frame.len());
    let _ = outbox.push(frame);
}
