//! Documents in memory. Each is behind its own async mutex, loads on demand, and is evicted
//! when idle or when the cache is full, so memory follows the working set, not the number
//! stored. A copy knows the version it was built from; a copy behind the version committed
//! (heard from another node, or found at commit) catches up from the chunks committed since.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use fieldbook_sync_core::access::{RecordFacts, Stored};
use fieldbook_sync_core::{DocSync, DocumentId};

use super::hub::{DocumentHub, HubError};
use super::registry::ConnectionId;
use crate::storage::Author;

pub(super) struct LoadedDocument {
    pub(super) sync: DocSync<ConnectionId>,
    /// The record as stored, kept as JSON so a change costs what it touches (see
    /// [`fieldbook_sync_core::access::judge`]); `None` while the document is empty.
    pub(super) stored: Option<Stored>,
    /// Ids and sizes of the stored chunks this copy was built from (compaction, size limit).
    pub(super) chunks: Vec<(i64, usize)>,
    /// The document version this copy holds (0: nothing committed yet).
    pub(super) version: i64,
    /// Actor bindings already checked for this document (hex actor id → author).
    pub(super) authors: HashMap<String, Author>,
    /// The record was deleted: everything about it is refused (see `super::write_path`).
    pub(super) deleted: bool,
}

impl LoadedDocument {
    /// Bytes the document takes in storage (an upper bound between compactions).
    pub(super) fn stored_bytes(&self) -> usize {
        self.chunks.iter().map(|(_, len)| len).sum()
    }

    fn last_chunk(&self) -> i64 {
        self.chunks.iter().map(|(id, _)| *id).max().unwrap_or_default()
    }
}

/// Exclusive use of one document (see [`DocumentHub::lock`]).
pub struct DocumentLock(pub(super) tokio::sync::OwnedMutexGuard<Option<LoadedDocument>>);

pub(super) struct CachedDocument {
    /// `None` until loaded, and again after a failed write (forces a reload).
    document: Arc<tokio::sync::Mutex<Option<LoadedDocument>>>,
    /// Who the record concerns, once loaded; kept here so access checks (e.g. for relayed
    /// ephemeral messages) need not take the document's lock. `None`: no record (yet).
    pub(super) facts: Option<Arc<RecordFacts>>,
    /// The newest version known to be committed: the loaded copy's, or one another node
    /// announced. A copy behind it catches up before it is used.
    committed: i64,
    last_used: Instant,
}

impl DocumentHub {
    /// Number of documents currently in memory.
    pub fn cached_documents(&self) -> usize {
        self.registry().cache.len()
    }

    /// Takes a document for one incoming message. Connections take locks in the order
    /// their messages arrive and may then handle different documents concurrently; messages
    /// about one document are handled in order.
    pub async fn lock(&self, from: ConnectionId, document: DocumentId) -> DocumentLock {
        self.subscribe(from, document);
        DocumentLock(self.cached(document).lock_owned().await)
    }

    /// The document as committed, loaded or caught up as needed.
    pub(super) async fn current<'a>(
        &self,
        document: DocumentId,
        guard: &'a mut Option<LoadedDocument>,
    ) -> Result<&'a mut LoadedDocument, HubError> {
        let loaded = match guard {
            Some(loaded) => loaded,
            None => guard.insert(self.load(document).await?),
        };
        if loaded.version < self.committed_version(document) {
            self.catch_up(document, loaded).await?;
        }
        Ok(loaded)
    }

    pub(super) fn facts(&self, document: DocumentId) -> Option<Arc<RecordFacts>> {
        self.registry().cache.get(&document).and_then(|c| c.facts.clone())
    }

    /// Notes what a copy now holds: who the record concerns and its version.
    pub(super) fn note_loaded(&self, document: DocumentId, loaded: &LoadedDocument) {
        if let Some(cached) = self.registry().cache.get_mut(&document) {
            cached.facts = loaded.stored.as_ref().map(|s| Arc::new(s.facts.clone()));
            cached.committed = cached.committed.max(loaded.version);
        }
    }

    /// A record was erased or deleted (here or on another node): the copy in memory, its
    /// peers' sync states with it, is dropped, and the next message loads the record as
    /// stored now, with its erased history forbidden (or, deleted, refused whole).
    /// Connections following it that may read it are told to replace (or remove) their
    /// copies (for a deleted record, who could read it is kept in its ledger entry).
    pub async fn removed(&self, document: DocumentId) {
        let known = self.facts(document);
        let cell = self.registry().cache.get(&document).map(|c| c.document.clone());
        if let Some(cell) = cell {
            *cell.lock().await = None;
        }
        let deleted = match self.db.refused_history(document).await {
            Ok(refused) => refused.deleted,
            Err(e) => {
                tracing::warn!(%document, error = %e, "could not read whether a record was deleted");
                return;
            }
        };
        let facts = match known {
            Some(facts) => Some(facts),
            None if deleted => match self.db.deleted_facts(document).await {
                Ok(facts) => facts.map(Arc::new),
                Err(e) => {
                    tracing::warn!(%document, error = %e, "could not read who could see a deleted record");
                    None
                }
            },
            None => match self.db.committed_state(document).await {
                Ok(state) => state.map(|s| Arc::new(s.facts)),
                Err(e) => {
                    tracing::warn!(%document, error = %e, "could not read who may see an erased record");
                    None
                }
            },
        };
        let Some(facts) = facts else { return };
        let today = fieldbook_sync_core::records::dates::today();
        let notice = if deleted {
            fieldbook_sync_core::erasure::deletion_notice()
        } else {
            fieldbook_sync_core::erasure::notice()
        };
        let notice = notice.encode();
        for connection in self.followers_who_may_read(document, &facts, &today) {
            self.send_notice(connection, document, notice.clone());
        }
    }

    /// Notes what storage says a document is at, read without loading it.
    pub(super) fn note_committed(&self, document: DocumentId, version: i64, facts: RecordFacts) {
        if let Some(cached) = self.registry().cache.get_mut(&document) {
            cached.facts = Some(Arc::new(facts));
            cached.committed = cached.committed.max(version);
        }
    }

    fn committed_version(&self, document: DocumentId) -> i64 {
        self.registry().cache.get(&document).map_or(0, |c| c.committed)
    }

    /// Another node committed `version` of a document. Returns true if a copy here (or a
    /// connection following the document) needs to catch up.
    pub(super) fn heard_committed(&self, document: DocumentId, version: i64) -> bool {
        let mut registry = self.registry();
        match registry.cache.get_mut(&document) {
            Some(cached) if cached.committed >= version => false,
            Some(cached) => {
                cached.committed = version;
                true
            }
            None => registry.subscribers.contains_key(&document),
        }
    }

    /// Documents in memory, with the version each is known at (to check after the
    /// cross-node channel was lost).
    pub fn cached_versions(&self) -> Vec<(DocumentId, i64)> {
        let registry = self.registry();
        let followed = registry.subscribers.keys().filter(|d| !registry.cache.contains_key(d)).map(|d| (*d, 0));
        registry.cache.iter().map(|(d, c)| (*d, c.committed)).chain(followed).collect()
    }

    /// The cache cell for a document, created empty if absent; evicts if over capacity.
    pub(super) fn cached(&self, document: DocumentId) -> Arc<tokio::sync::Mutex<Option<LoadedDocument>>> {
        let mut evicted = Vec::new();
        let mut registry = self.registry();
        let now = Instant::now();
        let cell = {
            let entry = registry.cache.entry(document).or_insert_with(|| CachedDocument {
                document: Arc::new(tokio::sync::Mutex::new(None)),
                facts: None,
                committed: 0,
                last_used: now,
            });
            entry.last_used = now;
            entry.document.clone()
        };
        if registry.cache.len() > self.config.max_documents {
            evicted = evict(&mut registry.cache, self.config.max_documents, None);
        }
        crate::metrics::documents_cached(registry.cache.len());
        drop(registry);
        drop(evicted); // freeing documents can take a while; not under the lock
        cell
    }

    /// Evicts least recently used documents over the limit. Called when a message is done
    /// with its document: documents in use when the cache filled up could not go then.
    pub fn trim_cache(&self) {
        let evicted = {
            let mut registry = self.registry();
            if registry.cache.len() <= self.config.max_documents {
                return;
            }
            let evicted = evict(&mut registry.cache, self.config.max_documents, None);
            crate::metrics::documents_cached(registry.cache.len());
            evicted
        };
        drop(evicted); // not under the registry lock
    }

    /// Evicts documents idle for longer than the configured timeout.
    pub fn evict_idle(&self) -> usize {
        let Some(deadline) = Instant::now().checked_sub(self.config.idle_timeout) else { return 0 };
        let evicted = {
            let mut registry = self.registry();
            let evicted = evict(&mut registry.cache, 0, Some(deadline));
            crate::metrics::documents_cached(registry.cache.len());
            evicted
        };
        evicted.len() // dropped here, after the registry lock is released
    }

    pub(super) async fn load(&self, document: DocumentId) -> Result<LoadedDocument, HubError> {
        let (stored, refused) = {
            let _turn = self.reads.acquire().await.expect("never closed");
            (self.db.load_document(document).await?, self.db.refused_history(document).await?)
        };
        if refused.deleted {
            let loaded = LoadedDocument {
                sync: DocSync::new(automerge::Automerge::new()),
                stored: None,
                chunks: Vec::new(),
                version: stored.version,
                authors: HashMap::new(),
                deleted: true,
            };
            self.note_loaded(document, &loaded);
            return Ok(loaded);
        }
        if stored.heads_unknown {
            // Kept for next time, off this message's path: a device in sync is then
            // answered without loading (see `super::in_sync`).
            let (db, version, heads) = (self.db.clone(), stored.version, stored.doc.get_heads());
            tokio::spawn(async move {
                if let Err(e) = db.note_heads(document, version, &heads).await {
                    tracing::debug!(%document, error = %e, "could not keep the heads of a loaded document");
                }
            });
        }
        let record =
            if stored.doc.get_heads().is_empty() { None } else { Stored::of(&stored.doc, self.catalog().as_ref()) };
        let mut sync = DocSync::new(stored.doc);
        sync.limit_operations(self.limits.max_operations_per_message());
        sync.forbid_history(refused.erased);
        let mut loaded = LoadedDocument {
            sync,
            stored: record,
            chunks: stored.chunks,
            version: stored.version,
            authors: HashMap::new(),
            deleted: false,
        };
        self.note_loaded(document, &loaded);
        if loaded.chunks.len() > self.config.compact_after_chunks {
            self.compact(document, &mut loaded).await;
        }
        Ok(loaded)
    }

    /// Brings a copy up to the committed version with the chunks committed since it was
    /// built (by other nodes). Peers' sync states stay, so they are offered just the new
    /// changes.
    pub(super) async fn catch_up(&self, document: DocumentId, loaded: &mut LoadedDocument) -> Result<(), HubError> {
        let delta = {
            let _turn = self.reads.acquire().await.expect("never closed");
            self.db.document_since(document, loaded.last_chunk()).await?
        };
        if loaded.chunks.iter().any(|(id, _)| !delta.chunks.iter().any(|(stored, _)| stored == id)) {
            // Chunks this copy was built from are gone: the record was erased (its history
            // replaced) or compacted on another node. Built again from what is stored, never
            // merged with the old copy.
            tracing::debug!(%document, "stored history replaced; loading again");
            *loaded = self.load(document).await?;
            return Ok(());
        }
        for chunk in &delta.new_chunks {
            loaded.sync.apply_stored(chunk).map_err(|source| HubError::Sync { document, source })?;
        }
        tracing::debug!(%document, from = loaded.version, to = delta.version, chunks = delta.new_chunks.len(), "caught up");
        loaded.chunks = delta.chunks;
        loaded.version = delta.version;
        if !delta.new_chunks.is_empty() {
            loaded.stored = Stored::of(loaded.sync.doc(), self.catalog().as_ref());
        }
        self.note_loaded(document, loaded);
        Ok(())
    }

    /// Folds the chunks this copy knows into one snapshot. Failure is harmless: the chunks
    /// stay, and compaction is tried again later. Chunks other nodes committed meanwhile
    /// are not touched, so nothing is lost if this copy is behind.
    pub(super) async fn compact(&self, document: DocumentId, loaded: &mut LoadedDocument) {
        let snapshot = loaded.sync.doc().save();
        let ids: Vec<i64> = loaded.chunks.iter().map(|(id, _)| *id).collect();
        match self.db.compact(document, &snapshot, &ids, loaded.version).await {
            Ok(Some(id)) => loaded.chunks = vec![(id, snapshot.len())],
            Ok(None) => tracing::debug!(%document, "changed meanwhile; not compacted"),
            Err(e) => tracing::warn!(%document, error = %e, "compaction failed; will retry"),
        }
    }
}

/// Drops unused documents, least recently used first, until at most `keep` remain (or,
/// with a deadline, every unused one last touched before it). A document in use (its
/// mutex is held or awaited by someone) is never evicted.
fn evict(
    cache: &mut HashMap<DocumentId, CachedDocument>,
    keep: usize,
    older_than: Option<Instant>,
) -> Vec<CachedDocument> {
    let mut candidates: Vec<(Instant, DocumentId)> = cache
        .iter()
        .filter(|(_, c)| Arc::strong_count(&c.document) == 1)
        .filter(|(_, c)| older_than.is_none_or(|deadline| c.last_used < deadline))
        .map(|(id, c)| (c.last_used, *id))
        .collect();
    candidates.sort_unstable();
    let excess = if older_than.is_some() { candidates.len() } else { cache.len().saturating_sub(keep) };
    candidates.into_iter().take(excess).filter_map(|(_, id)| cache.remove(&id)).collect()
}
