//! What every handler shares.

use std::sync::Arc;

use crate::auth::{AuthSettings, TokenKeys};
use crate::config::Limits;
use crate::storage::{AuditLog, Database};
use crate::sync::DocumentHub;

#[derive(Clone)]
pub struct AppState {
    pub db: Database,
    pub tokens: TokenKeys,
    /// Token lifetimes and the external identity provider, if any.
    pub auth: AuthSettings,
    pub hub: Arc<DocumentHub>,
    /// The other nodes on this database, as far as this one hears them.
    pub cluster: Arc<crate::cluster::Cluster>,
    /// Batched writer for high-volume audit events.
    pub audit: AuditLog,
    pub limits: Limits,
    /// The storage id every node on this database reports.
    pub storage_id: String,
    /// How this server is reached (no trailing slash): the base of IRIs it hands out.
    pub public_url: String,
    pub api_rate_limit: Arc<crate::api::rate_limit::ApiRateLimit>,
}
