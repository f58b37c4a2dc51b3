//! `GET /v1/sync`: one WebSocket connection speaking the automerge-repo protocol.

use std::sync::Arc;

use axum::extract::State;
use axum::extract::ws::{Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use fieldbook_sync_core::{ConnectionError, Inbound, Message, PeerMetadata, ServerHandshake};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::{Notify, Semaphore, mpsc};
use tracing::Instrument;

use crate::auth::Authenticated;
use crate::error::AppError;
use crate::state::AppState;

use super::hub::{HubError, Sender};

/// Frames waiting for a slow peer before it is disconnected.
const OUTBOX_CAPACITY: usize = 8192;
/// Messages about different documents one connection may have in progress at once.
const CONCURRENT_DOCUMENTS: usize = 32;
/// Frames this much larger than the protocol limit are cut off by the WebSocket layer
/// itself (close code 1009) without being buffered; below that we answer with an `error`.
const HARD_FRAME_FACTOR: usize = 4;

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
    let hard_limit = state.limits.max_frame_bytes.saturating_mul(HARD_FRAME_FACTOR);
    let span = tracing::info_span!("sync", user = %auth.user.id, device = auth.device.as_deref().unwrap_or("-"));
    Ok(ws
        .max_message_size(hard_limit)
        .max_frame_size(hard_limit)
        .on_upgrade(move |socket| serve_connection(socket, state, auth).instrument(span)))
}

async fn serve_connection(socket: WebSocket, state: AppState, auth: Authenticated) {
    let (mut sink, mut stream) = socket.split();
    let (outbox, mut outbox_rx) = mpsc::channel::<Vec<u8>>(OUTBOX_CAPACITY);
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

    let writer = tokio::spawn(async move {
        while let Some(frame) = outbox_rx.recv().await {
            if sink.send(WsMessage::Binary(frame.into())).await.is_err() {
                return;
            }
        }
        let _ = sink.close().await;
    });

    let metadata = PeerMetadata { storage_id: Some(state.storage_id.clone()), is_ephemeral: false };
    let mut handshake = ServerHandshake::new(hub.our_peer_id().clone(), metadata, state.limits.max_frame_bytes);

    let in_progress = Arc::new(Semaphore::new(CONCURRENT_DOCUMENTS));
    let (failures, mut failed) = mpsc::channel::<String>(1);
    loop {
        let frame = tokio::select! {
            _ = close.notified() => break,
            Some(reason) = failed.recv() => {
                tracing::info!(%reason, "closing connection");
                send_error(&outbox, &handshake, reason).await;
                break;
            }
            frame = stream.next() => frame,
        };
        let bytes = match frame {
            None | Some(Err(_)) | Some(Ok(WsMessage::Close(_))) => break,
            Some(Ok(WsMessage::Binary(bytes))) => bytes,
            Some(Ok(WsMessage::Text(_))) => {
                refuse(&outbox, &handshake, ConnectionError::TextFrame).await;
                break;
            }
            Some(Ok(_)) => continue, // ping/pong are answered by the WebSocket layer
        };
        let inbound = match handshake.receive(&bytes) {
            Ok(inbound) => inbound,
            Err(e) => {
                refuse(&outbox, &handshake, e).await;
                break;
            }
        };
        match inbound {
            Inbound::Joined { peer_id, reply, .. } => {
                tracing::debug!(%peer_id, "joined");
                hub.joined(connection, peer_id);
                hub.send(connection, reply.encode());
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
            Inbound::Document(other) | Inbound::Ignored(other) => {
                tracing::debug!(message_type = other.message_type(), "ignored message");
            }
            Inbound::Leave => break,
        }
    }

    hub.disconnect(connection);
    drop(outbox);
    let _ = writer.await;
    tracing::info!("disconnected");
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

async fn refuse(outbox: &mpsc::Sender<Vec<u8>>, handshake: &ServerHandshake, error: ConnectionError) {
    tracing::info!(%error, "protocol error; closing connection");
    let _ = outbox.send(handshake.error_message(&error).encode()).await;
}

async fn send_error(outbox: &mpsc::Sender<Vec<u8>>, handshake: &ServerHandshake, message: String) {
    let error = Message::Error {
        sender_id: handshake.our_peer_id().clone(),
        target_id: handshake.remote_peer_id().cloned(),
        message,
    };
    let _ = outbox.send(error.encode()).await;
}
