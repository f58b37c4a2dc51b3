//! The sync runtime around `fieldbook-sync-core`: the WebSocket endpoint and the hub of
//! loaded documents shared by every connection.

mod connection;
mod hub;
mod outbox;
mod subscriptions;
mod write_path;

pub use connection::sync_endpoint;
pub use hub::{ConnectionId, DocumentHub, DocumentLock, HubError, Sender};
