//! Building and running the server: router, background tasks, graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderName, StatusCode, header};
use axum::response::Response;
use axum::routing::{any, get};
use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};

use crate::auth::{AuthSettings, KeySource, OidcVerifier, TokenKeys};
use crate::cluster::Cluster;
use crate::config::ServerConfig;
use crate::error::{AppError, Problem, problem_response};
use crate::state::AppState;
use crate::storage::{AuditLog, Database, StorageError};
use crate::sync::{DocumentHub, sync_endpoint};

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// A server bound to its port, ready to run.
pub struct Server {
    listener: TcpListener,
    router: Router,
    state: AppState,
    /// The metrics endpoint, if `--metrics-listen` asked for one.
    metrics: Option<(TcpListener, metrics_exporter_prometheus::PrometheusHandle)>,
    retention_every: Duration,
}

impl Server {
    /// Connects to the database (applying migrations), prepares keys and binds the port.
    pub async fn bind(config: ServerConfig) -> Result<Self, StartError> {
        // First, so that everything from the start is counted.
        let metrics = match config.metrics_listen {
            Some(addr) => Some(crate::metrics::bind(addr).await.map_err(StartError::Metrics)?),
            None => None,
        };
        let db = Database::connect(&config.database_url).await?;
        let storage_id = db.storage_id().await?;
        let key_source =
            KeySource::resolve(config.auth.signing_key_file.clone(), &config.database_url).map_err(StartError::Keys)?;
        let tokens = TokenKeys::load(key_source).map_err(StartError::Keys)?;
        let peer_id = format!("fieldbook-server-{}", uuid::Uuid::new_v4());
        let catalog = db.framework_catalog().await?;
        let audit = AuditLog::start(db.clone());
        let hub =
            Arc::new(DocumentHub::new(db.clone(), audit.clone(), peer_id, (config.cache, config.limits), catalog));
        let cluster = Cluster::new(db.clone(), hub.clone(), &config.database_url).await?;
        let oidc = match config.auth.oidc {
            Some(oidc) => Some(OidcVerifier::start(oidc).await.map_err(StartError::Oidc)?),
            None => None,
        };
        let auth = AuthSettings {
            access_token_ttl: config.auth.access_token_ttl,
            refresh_token_ttl: config.auth.refresh_token_ttl,
            oidc,
            sign_in: Arc::default(),
            trusted_proxies: config.auth.trusted_proxies.clone(),
        };
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|source| StartError::Bind { addr: config.listen, source })?;
        let local = listener.local_addr().map_err(|source| StartError::Bind { addr: config.listen, source })?;
        let public_url = config.public_url.clone().unwrap_or_else(|| format!("http://{local}"));
        let public_url = public_url.trim_end_matches('/').to_owned();
        let api_rate_limit = Arc::new(crate::api::rate_limit::ApiRateLimit::new(config.limits.api_calls_per_minute));
        let state = AppState {
            db,
            tokens,
            auth,
            hub,
            cluster,
            audit,
            limits: config.limits,
            storage_id,
            public_url,
            api_rate_limit,
        };
        let router = router(state.clone()).merge(crate::web::app(config.web_dir.as_deref()));
        Ok(Self { listener, router, state, metrics, retention_every: config.retention_every })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` resolves, then drains open requests and closes the database.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        let sweeper = tokio::spawn(sweep_idle_documents(self.state.hub.clone()));
        let checkpointer = tokio::spawn(checkpoint_periodically(self.state.db.clone()));
        let key_refresher = tokio::spawn(reload_keys_periodically(self.state.tokens.clone()));
        let cluster = tokio::spawn(self.state.cluster.clone().run());
        let retention = tokio::spawn(apply_retention_periodically(self.state.db.clone(), self.retention_every));
        let metrics = self
            .metrics
            .map(|(listener, handle)| tokio::spawn(crate::metrics::serve(listener, handle, self.state.db.clone())));
        let jwks_refresher = self.state.auth.oidc.clone().map(|oidc| tokio::spawn(oidc.refresh_periodically()));
        let hub = self.state.hub.clone();
        // WebSocket connections never end by themselves; close them so the drain finishes.
        let shutdown = async move {
            shutdown.await;
            hub.close_all();
        };
        // Sync messages are small and latency matters: no Nagle delay.
        let listener = self.listener.tap_io(|tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::warn!(error = %e, "could not set TCP_NODELAY");
            }
        });
        let service = self.router.into_make_service_with_connect_info::<SocketAddr>();
        let result = axum::serve(listener, service).with_graceful_shutdown(shutdown).await;
        sweeper.abort();
        checkpointer.abort();
        key_refresher.abort();
        cluster.abort();
        retention.abort();
        for task in [jwks_refresher, metrics].into_iter().flatten() {
            task.abort();
        }
        let _ = self.state.db.checkpoint().await;
        self.state.db.close().await;
        result
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("identity provider: {0}")]
    Oidc(String),
    #[error("token-signing keys: {0}")]
    Keys(String),
    #[error("metrics: {0}")]
    Metrics(String),
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/v1/sync", get(sync_endpoint))
        .route("/livez", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .merge(crate::api::routes())
        .merge(crate::scim::routes())
        .merge(crate::auth::routes())
        // Under /v1/ an unknown path is an API error, not the web app's page.
        .route("/v1/{*rest}", any(|| async { AppError::NotFound("no such endpoint".into()) }))
        .layer(axum::middleware::map_response(every_error_as_problem))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
        )
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .with_state(state)
}

/// The request's span names its path but never its query: browsers put the access token in
/// the sync URL (`/v1/sync?token=…`), and logs must not keep tokens. Authentication fills in
/// the user and device (`telemetry::record_caller`).
fn request_span(request: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    let id = request.headers().get(&REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("");
    tracing::info_span!(
        "request",
        method = %request.method(),
        path = %request.uri().path(),
        request_id = %id,
        user = tracing::field::Empty,
        device = tracing::field::Empty,
    )
}

/// Errors that did not come from our handlers — axum's own (405, a body that is not the
/// JSON a handler takes, a failed WebSocket upgrade) — answer problem+json like the rest.
/// SCIM's errors keep their own form (RFC 7644), which identity providers read.
async fn every_error_as_problem(response: Response) -> Response {
    let status = response.status();
    let is_problem = response.headers().get(header::CONTENT_TYPE).is_some_and(|t| {
        t.as_bytes().starts_with(b"application/problem+json") || t.as_bytes().starts_with(b"application/scim+json")
    });
    if !(status.is_client_error() || status.is_server_error()) || is_problem {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 64 * 1024).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&text).trim().to_owned();
    let title = status.canonical_reason().unwrap_or("Error");
    let problem = Problem {
        kind: "about:blank",
        title,
        status: status.as_u16(),
        detail: if text.is_empty() { title.to_owned() } else { text },
        parameter: None,
        code: None,
        wipe: None,
    };
    let retry_after = parts.headers.get(header::RETRY_AFTER).and_then(|v| v.to_str().ok()?.parse().ok());
    let mut answer = problem_response(&problem, retry_after);
    if let Some(allow) = parts.headers.get(header::ALLOW) {
        answer.headers_mut().insert(header::ALLOW, allow.clone());
    }
    answer
}

/// Ready while the database answers and this node hears other nodes' changes; a load
/// balancer hears "no" within a second when it does not (waiting for a pooled connection
/// would take the pool's whole timeout).
async fn readyz(State(state): State<AppState>) -> (StatusCode, &'static str) {
    let ready = tokio::time::timeout(Duration::from_secs(1), state.db.is_ready()).await.unwrap_or(false);
    if !ready {
        (StatusCode::SERVICE_UNAVAILABLE, "database unavailable")
    } else if !state.cluster.is_following() {
        (StatusCode::SERVICE_UNAVAILABLE, "not following other nodes' changes: the cross-node listener is reconnecting")
    } else {
        (StatusCode::OK, "ready")
    }
}

async fn sweep_idle_documents(hub: Arc<DocumentHub>) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tick.tick().await;
        let evicted = hub.evict_idle();
        if evicted > 0 {
            tracing::debug!(evicted, cached = hub.cached_documents(), "evicted idle documents");
        }
    }
}

async fn checkpoint_periodically(db: Database) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        if let Err(e) = db.checkpoint().await {
            tracing::warn!(error = %e, "WAL checkpoint failed; will retry");
        }
    }
}

/// The retention job: at start, then every `every` (a day by default). Several nodes on one
/// database may run it at once: a record is deleted once, the others find it gone. Devices
/// are told by each node as it hears of the deletion from the ledger (see `cluster`).
async fn apply_retention_periodically(db: Database, every: Duration) {
    let mut tick = tokio::time::interval(every.max(Duration::from_secs(1)));
    loop {
        tick.tick().await;
        match crate::retention::run(&db, crate::org::Operator::Scheduled("retention"), false).await {
            Ok(report) if report.deleted.is_empty() && report.held.is_empty() => {}
            Ok(report) => tracing::info!(deleted = report.deleted.len(), held = report.held.len(), "retention applied"),
            Err(e) => tracing::warn!(error = %e, "retention job failed; will retry at its next run"),
        }
    }
}

/// A rotated key file (`fieldbook keys rotate`) takes effect within five seconds, and at
/// once for a token that names a key this node has not read yet.
async fn reload_keys_periodically(tokens: TokenKeys) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tick.tick().await;
        if let Err(e) = tokens.reload() {
            tracing::warn!(error = %e, "cannot read the token-signing keys; keeping the last good set");
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = terminate => {} }
    tracing::info!("shutting down");
}
