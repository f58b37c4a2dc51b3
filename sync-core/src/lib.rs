//! Fieldbook's sync engine, sans-IO.
//!
//! Everything here is plain data in, plain data out: the automerge-repo wire protocol
//! ([`message`]), document identifiers ([`document_id`]), the handshake a connection goes
//! through ([`connection`]) and the per-document, per-peer automerge sync state
//! ([`doc_sync`]), for which [`in_sync`] stands in when a peer already holds what is
//! stored. The server and the device client wrap these with their own IO.

pub mod access;
pub mod connection;
pub mod doc_sync;
pub mod document_id;
pub mod erasure;
pub mod frameworks;
pub mod in_sync;
pub mod json;
pub mod message;
pub mod notice;
pub mod records;
pub mod refusal;
pub mod resources;

pub use connection::{ConnectionError, Inbound, ServerHandshake};
pub use doc_sync::{DocSync, Outgoing, Received, Rejected, Staged, SyncError, changes_message};
pub use document_id::{DocumentId, InvalidDocumentId};
pub use in_sync::{FreshRequest, InSyncClaim};
pub use message::{DecodeError, Message, PROTOCOL_VERSION, PeerId, PeerMetadata, StorageId, SyncKind};
pub use records::{Record, RecordError};
pub use refusal::Refusal;
