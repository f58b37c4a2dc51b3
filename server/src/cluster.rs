//! What the nodes on one database share, and how each hears of the others' changes.
//!
//! PostgreSQL holds the nodes together; there is no protocol of our own between them. Each
//! commit announces itself on the channel `fieldbook` (`NOTIFY` is sent at commit, so only
//! committed changes are heard): documents' new versions (by the committing node, one
//! notice per batch), a revoked device, a change to who may see what, a framework import,
//! an erased or deleted record (by triggers, so `fieldbook` commands are heard too). A node listens,
//! and: catches up its copy of the document and sends the new changes to its own
//! connections; closes a revoked device's connections; reloads what connected users may
//! see; reloads the frameworks; drops its copy of an erased or deleted record. A node that lost its listening connection is not ready (see `/readyz`)
//! until it has listened again and checked everything it holds against the database.
//! Revocations, erasures, access and frameworks are also polled as the fallback: while not listening
//! (and always on SQLite, where commands run beside the server on the same file), and every
//! half minute regardless. Documents are not polled: a node that is not listening is not
//! ready, its writes are still judged against the latest version (see `storage::projections`),
//! and it catches up every document it holds when it listens again.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use fieldbook_sync_core::DocumentId;
use sqlx::postgres::PgListener;

use crate::storage::{Backend, Database, StorageError, now_millis};
use crate::sync::DocumentHub;

const CHANNEL: &str = "fieldbook";
/// How often shared changes are polled for while not listening.
const POLL_WHILE_DEAF: Duration = Duration::from_millis(500);
/// How often they are polled for while listening: a safety net only.
const POLL_WHILE_LISTENING: Duration = Duration::from_secs(30);
/// Frameworks change rarely; polled at most this often.
const POLL_FRAMEWORKS: Duration = Duration::from_secs(5);
/// Wait between attempts to listen again.
const RELISTEN_AFTER: Duration = Duration::from_secs(1);

pub struct Cluster {
    db: Database,
    hub: Arc<DocumentHub>,
    /// The database URL the listening connection is opened with; `None`: nothing to
    /// listen to (SQLite), or listening turned off (`FIELDBOOK_CLUSTER_LISTEN=off`, for
    /// tests and diagnosis).
    listen_url: Option<String>,
    listening: AtomicBool,
    /// The listening connection opened at start (so the node is ready as soon as it
    /// serves), until [`Self::run`] takes it over.
    first_listener: tokio::sync::Mutex<Option<PgListener>>,
    /// The last revocation acted on (an id in the revocation log).
    last_revocation: tokio::sync::Mutex<i64>,
    /// The last erasure acted on (an id in the erasure ledger).
    last_erasure: tokio::sync::Mutex<i64>,
    /// The organisation's access version connected users' views were loaded at.
    access_version: tokio::sync::Mutex<i64>,
}

impl Cluster {
    pub async fn new(db: Database, hub: Arc<DocumentHub>, database_url: &str) -> Result<Arc<Self>, StorageError> {
        let off = std::env::var("FIELDBOOK_CLUSTER_LISTEN").is_ok_and(|v| v == "off");
        let listen_url = (db.backend() == Backend::Postgres && !off).then(|| database_url.to_owned());
        if db.backend() == Backend::Postgres && off {
            tracing::warn!("FIELDBOOK_CLUSTER_LISTEN=off: not following other nodes' changes");
        }
        let last_revocation = tokio::sync::Mutex::new(db.last_revocation().await?);
        let last_erasure = tokio::sync::Mutex::new(db.last_erasure().await?);
        let access_version = tokio::sync::Mutex::new(db.access_version().await?);
        let cluster = Arc::new(Self {
            db,
            hub,
            listen_url,
            listening: AtomicBool::new(false),
            first_listener: tokio::sync::Mutex::new(None),
            last_revocation,
            last_erasure,
            access_version,
        });
        if let Some(url) = &cluster.listen_url {
            // Nothing is cached yet, so there is nothing to catch up with: just listen.
            let mut listener = PgListener::connect(url).await?;
            listener.listen(CHANNEL).await?;
            *cluster.first_listener.lock().await = Some(listener);
            cluster.set_listening(true);
        }
        Ok(cluster)
    }

    /// Whether this node hears every other node's changes as they commit. Always true on
    /// SQLite, which holds one node.
    pub fn is_following(&self) -> bool {
        self.db.backend() == Backend::Sqlite || self.listening.load(Ordering::Acquire)
    }

    /// Runs the listener and the polling fallback until aborted.
    pub async fn run(self: Arc<Self>) {
        let poller = tokio::spawn(self.clone().poll());
        if let Some(url) = self.listen_url.clone() {
            self.listen(&url).await;
        } else {
            std::future::pending::<()>().await;
        }
        poller.abort();
    }

    async fn listen(self: &Arc<Self>, url: &str) {
        let mut first = self.first_listener.lock().await.take();
        loop {
            let listening = match first.take() {
                Some(listener) => Ok(Ok(listener)),
                None => tokio::time::timeout(Duration::from_secs(10), self.start_listening(url)).await,
            };
            match listening {
                Ok(Ok(mut listener)) => {
                    self.set_listening(true);
                    tracing::info!("following other nodes' changes");
                    loop {
                        match listener.try_recv().await {
                            Ok(Some(notice)) => self.heard(notice.payload()),
                            Ok(None) => break,
                            Err(e) => {
                                tracing::warn!(error = %e, "the cross-node listener failed");
                                break;
                            }
                        }
                    }
                    self.set_listening(false);
                    tracing::warn!("lost the cross-node listener; not ready until it is back");
                }
                Ok(Err(e)) => tracing::warn!(error = %e, "cannot listen for other nodes' changes; will retry"),
                Err(_) => tracing::warn!("listening for other nodes' changes timed out; will retry"),
            }
            tokio::time::sleep(RELISTEN_AFTER).await;
        }
    }

    /// Listens, then catches up with whatever was committed while this node was not
    /// listening (or before it started): after this, every change is heard.
    async fn start_listening(&self, url: &str) -> Result<PgListener, StorageError> {
        let mut listener = PgListener::connect(url).await?;
        // Notices queue on the connection, so none is lost to the catch-up below.
        listener.listen(CHANNEL).await?;
        self.catch_up_documents().await?;
        self.revocations().await?;
        self.erasures().await?;
        self.organisation().await?;
        self.hub.refresh_frameworks().await?;
        Ok(listener)
    }

    fn set_listening(&self, listening: bool) {
        self.listening.store(listening, Ordering::Release);
        crate::metrics::cluster_listening(listening);
    }

    /// Acts on one notice (see the migration `0006_cluster.sql` for their form).
    fn heard(self: &Arc<Self>, payload: &str) {
        let mut words = payload.split(' ');
        match words.next() {
            Some("d") => {
                if let Some(Ok(at)) = words.next().map(str::parse::<i64>) {
                    crate::metrics::notification_lag(Duration::from_millis(now_millis().saturating_sub(at) as u64));
                }
                for word in words {
                    let parsed =
                        word.split_once(':').and_then(|(d, v)| Some((d.parse::<DocumentId>().ok()?, v.parse().ok()?)));
                    let Some((document, version)) = parsed else {
                        tracing::warn!(word, "unreadable document in a cross-node notice");
                        continue;
                    };
                    let hub = self.hub.clone();
                    tokio::spawn(async move { hub.committed_elsewhere(document, version).await });
                }
            }
            Some("r") => self.spawn_logged("revocations", |c| async move { c.revocations().await }),
            Some("e") => self.spawn_logged("erasures", |c| async move { c.erasures().await }),
            Some("a") => self.spawn_logged("access", |c| async move { c.organisation().await }),
            Some("f") => self.spawn_logged("frameworks", |c| async move { c.hub.refresh_frameworks().await }),
            _ => tracing::warn!(payload, "unknown cross-node notice"),
        }
    }

    fn spawn_logged<F, Fut>(self: &Arc<Self>, what: &'static str, task: F)
    where
        F: FnOnce(Arc<Cluster>) -> Fut,
        Fut: Future<Output = Result<(), StorageError>> + Send + 'static,
    {
        let work = task(self.clone());
        tokio::spawn(async move {
            if let Err(e) = work.await {
                tracing::warn!(error = %e, what, "could not follow a change another node made; polling will");
            }
        });
    }

    /// Every document this node holds or follows, checked against the versions committed.
    async fn catch_up_documents(&self) -> Result<(), StorageError> {
        let known: HashMap<DocumentId, i64> = self.hub.cached_versions().into_iter().collect();
        let ids: Vec<DocumentId> = known.keys().copied().collect();
        let mut behind = 0;
        for (document, version) in self.db.document_versions(&ids).await? {
            if known.get(&document).is_some_and(|v| *v < version) {
                behind += 1;
                let hub = self.hub.clone();
                tokio::spawn(async move { hub.committed_elsewhere(document, version).await });
            }
        }
        tracing::info!(documents = ids.len(), behind, "checked documents against the database");
        Ok(())
    }

    /// Closes the connections here of devices revoked (on any node) since the last check.
    async fn revocations(&self) -> Result<(), StorageError> {
        let mut last = self.last_revocation.lock().await;
        for (id, user, device) in self.db.revocations_after(*last).await? {
            let closed = self.hub.revoke_device(&user, &device);
            tracing::info!(%user, %device, closed, "device revoked");
            *last = id;
        }
        Ok(())
    }

    /// Drops this node's copies of records erased or deleted (by any node or command) since
    /// the last check.
    async fn erasures(&self) -> Result<(), StorageError> {
        let mut last = self.last_erasure.lock().await;
        for erasure in self.db.ledger_after(*last).await? {
            self.hub.removed(erasure.document).await;
            tracing::info!(document = %erasure.document, kind = erasure.kind.as_str(), "record erased or deleted; copy dropped");
            *last = erasure.id;
        }
        Ok(())
    }

    /// Reloads what connected users may see if the organisation changed (on any node), and
    /// disconnects users no longer active.
    async fn organisation(&self) -> Result<(), StorageError> {
        let mut version = self.access_version.lock().await;
        let current = self.db.access_version().await?;
        if current == *version {
            return Ok(());
        }
        for user_id in self.hub.connected_users() {
            let viewer = match self.db.user(&user_id).await? {
                Some(user) if user.is_active() => Some(self.db.viewer(&user).await?),
                _ => None,
            };
            self.hub.update_viewer(&user_id, viewer);
        }
        *version = current;
        Ok(())
    }

    /// The fallback: polls for shared changes while not listening, and now and then anyway.
    async fn poll(self: Arc<Self>) {
        let mut tick = tokio::time::interval(POLL_WHILE_DEAF);
        let mut last_poll = Instant::now();
        let mut last_frameworks = Instant::now();
        loop {
            tick.tick().await;
            let listening = self.listening.load(Ordering::Acquire);
            if listening && last_poll.elapsed() < POLL_WHILE_LISTENING {
                continue;
            }
            last_poll = Instant::now();
            if let Err(e) = self.revocations().await {
                tracing::warn!(error = %e, "could not check for revoked devices; will retry");
            }
            if let Err(e) = self.erasures().await {
                tracing::warn!(error = %e, "could not check for erased records; will retry");
            }
            if let Err(e) = self.organisation().await {
                tracing::warn!(error = %e, "could not check for access changes; will retry");
            }
            if last_frameworks.elapsed() >= POLL_FRAMEWORKS {
                last_frameworks = Instant::now();
                if let Err(e) = self.hub.refresh_frameworks().await {
                    tracing::warn!(error = %e, "could not reload frameworks; will retry");
                }
            }
        }
    }
}
