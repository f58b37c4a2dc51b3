//! The sync runtime around `fieldbook-sync-core`: the WebSocket endpoint and the hub of
//! loaded documents shared by every connection (see [`hub`] for how its parts fit).

mod cache;
mod connection;
mod fan_out;
mod hub;
mod in_sync;
mod outbox;
mod registry;
mod subscriptions;
mod write_path;

pub use cache::DocumentLock;
pub use connection::sync_endpoint;
pub use hub::{DocumentHub, HubError};
pub use registry::{ConnectionId, Sender};
