//! A raw WebSocket peer for feeding the server frames no real client would send.

use fieldbook_sync_core::{Message, PROTOCOL_VERSION};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message as WsMessage;

pub type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub async fn connect(ws_url: &str) -> Socket {
    tokio_tungstenite::connect_async(ws_url).await.expect("websocket connect").0
}

pub fn join_frame(peer: &str) -> Vec<u8> {
    Message::Join {
        sender_id: peer.into(),
        peer_metadata: None,
        supported_protocol_versions: vec![PROTOCOL_VERSION.into()],
    }
    .encode()
}

pub async fn send(socket: &mut Socket, frame: Vec<u8>) {
    socket.send(WsMessage::Binary(frame.into())).await.expect("send frame");
}

/// The next protocol message, or `None` once the server has closed the connection.
pub async fn next(socket: &mut Socket) -> Option<Message> {
    let wait = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        loop {
            match socket.next().await {
                Some(Ok(WsMessage::Binary(bytes))) => {
                    return Some(Message::decode(&bytes).expect("server sends valid frames"));
                }
                Some(Ok(WsMessage::Close(_))) | None | Some(Err(_)) => return None,
                Some(Ok(_)) => continue,
            }
        }
    });
    wait.await.expect("server answered within 10 s")
}

/// What the server sent next: a message, or the close (with its code, if it gave one).
#[derive(Debug)]
pub enum Received {
    Message(Message),
    Closed(Option<u16>),
}

/// The next message or the close, waiting at most `within`.
pub async fn receive(socket: &mut Socket, within: std::time::Duration) -> Received {
    let wait = tokio::time::timeout(within, async {
        loop {
            match socket.next().await {
                Some(Ok(WsMessage::Binary(bytes))) => {
                    return Received::Message(Message::decode(&bytes).expect("server sends valid frames"));
                }
                Some(Ok(WsMessage::Close(frame))) => return Received::Closed(frame.map(|f| u16::from(f.code))),
                None | Some(Err(_)) => return Received::Closed(None),
                Some(Ok(_)) => continue,
            }
        }
    });
    wait.await.unwrap_or_else(|_| panic!("the server sent nothing within {within:?}"))
}

/// Expects an `error` message followed by the connection closing; returns the error text.
pub async fn expect_error_and_close(socket: &mut Socket) -> String {
    let text = match next(socket).await {
        Some(Message::Error { message, .. }) => message,
        other => panic!("expected an error message, got {other:?}"),
    };
    assert!(next(socket).await.is_none(), "connection should close after the error");
    text
}
