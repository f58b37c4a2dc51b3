//! Writers that never stop: background tasks that keep creating and changing observations
//! through the real sync path (a [`Peer`] each, as `sam`), reconnecting whenever their
//! connection breaks, and recording exactly which changes the server acknowledged (reported
//! heads equal to the writer's, which by the durability contract means committed).
//!
//! Every change sets one new top-level field `markerN` (outside the schema: the observer's
//! to write) to [`marker_value`]; a document's markers are written in order, so "the first
//! `n` markers of this document" says which changes an acknowledgement covers. A change that
//! was sent but never acknowledged is sent again after reconnecting (it may or may not have
//! been stored: both are allowed). [`verify`] reads the acknowledged documents back.
//!
//! Writers may be spread over several servers (nodes sharing one database,
//! [`Writers::start_across`]): writer `n` starts on URL `n % len`, and whenever its connection
//! breaks or it cannot connect it moves on to the next URL, resending what was unacknowledged.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use automerge::transaction::Transactable;
use automerge::{Automerge, ChangeHash, ReadDoc};
use fieldbook_sync_core::DocumentId;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::peer::{Outcome, Peer};
use crate::records::observation;

/// How long a connection attempt may take; the server may be down or its database away.
const CONNECT_WITHIN: Duration = Duration::from_secs(15);
/// How long one push may wait for the server's answer before the writer gives up on the
/// connection and reconnects.
const PUSH_WITHIN: Duration = Duration::from_secs(15);
/// Changes per document before a writer starts a new one: more than the server's 32 chunks,
/// so documents are folded into snapshots while they are being written.
const CHANGES_PER_DOCUMENT: usize = 40;

/// What a field's value is for marker `n` of `document`: unique across the test.
pub fn marker_value(document: DocumentId, n: usize) -> String {
    format!("{document}#{n}")
}

/// What the server acknowledged of one document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acknowledged {
    /// Markers `0..markers` are covered by an acknowledgement.
    pub markers: usize,
    /// The heads the server reported at the latest acknowledgement.
    pub heads: Vec<ChangeHash>,
}

/// One acknowledgement, as a writer received it.
#[derive(Debug, Clone)]
pub struct Ack {
    pub writer: usize,
    /// When the writer had the server's answer.
    pub at: Instant,
    pub document: DocumentId,
    pub markers: usize,
}

/// A push that ended without an answer.
#[derive(Debug, Clone)]
pub struct Interruption {
    pub writer: usize,
    /// When the push began (its change was sent).
    pub started: Instant,
    /// When the writer gave up on it.
    pub at: Instant,
    pub why: String,
}

#[derive(Default)]
struct Log {
    acknowledged: BTreeMap<DocumentId, Acknowledged>,
    acks: Vec<Ack>,
    /// Pushes that ended without an answer: the connection broke, an `error`, a timeout.
    interrupted: Vec<Interruption>,
    /// Anything the server must never answer to these valid changes.
    unexpected: Vec<String>,
}

pub struct Writers {
    log: Arc<Mutex<Log>>,
    urls: watch::Sender<Vec<String>>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Writers {
    /// `count` writers syncing to `ws_url` (a `/v1/sync` URL with a token for `sam`).
    pub fn start(count: usize, ws_url: &str) -> Self {
        Self::start_across(count, &[ws_url.to_owned()], false)
    }

    /// `count` writers spread over `ws_urls` (`/v1/sync` URLs with a token for `sam`, one
    /// per node): writer `n` starts on `ws_urls[n % len]` and moves on to the next URL
    /// whenever its connection breaks or it cannot connect. With `shared`, the observations
    /// they create are shared at once (so they make change-feed events and appear in the
    /// HR projections); otherwise they are drafts.
    pub fn start_across(count: usize, ws_urls: &[String], shared: bool) -> Self {
        assert!(!ws_urls.is_empty(), "writers need at least one server");
        let log = Arc::new(Mutex::new(Log::default()));
        let (urls, _) = watch::channel(ws_urls.to_vec());
        let (stop, _) = watch::channel(false);
        let tasks = (0..count)
            .map(|n| tokio::spawn(write(n, shared, urls.subscribe(), stop.subscribe(), log.clone())))
            .collect();
        Self { log, urls, stop, tasks }
    }

    /// Points the writers at another server (e.g. the one that replaced a killed one);
    /// they reconnect as soon as they notice their connection is gone.
    pub fn set_url(&self, ws_url: &str) {
        self.set_urls(&[ws_url.to_owned()]);
    }

    /// Points the writers at other servers (as for [`Writers::start_across`]).
    pub fn set_urls(&self, ws_urls: &[String]) {
        assert!(!ws_urls.is_empty(), "writers need at least one server");
        self.urls.send_replace(ws_urls.to_vec());
    }

    /// Everything acknowledged so far.
    pub fn acknowledged(&self) -> BTreeMap<DocumentId, Acknowledged> {
        self.lock().acknowledged.clone()
    }

    /// Every acknowledgement received at or after `since`.
    pub fn acks_since(&self, since: Instant) -> Vec<Ack> {
        self.lock().acks.iter().filter(|a| a.at >= since).cloned().collect()
    }

    /// Pushes that ended without an answer.
    pub fn interrupted(&self) -> Vec<Interruption> {
        self.lock().interrupted.clone()
    }

    /// Waits until every writer has had at least `each` acknowledgements at or after
    /// `since`; panics after `within`.
    pub async fn wait_for_acks(&self, since: Instant, each: usize, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let counts = {
                let log = self.lock();
                let mut counts = vec![0; self.tasks.len()];
                for ack in log.acks.iter().filter(|a| a.at >= since) {
                    counts[ack.writer] += 1;
                }
                counts
            };
            if counts.iter().all(|&c| c >= each) {
                return;
            }
            self.check();
            assert!(
                Instant::now() < deadline,
                "writers did not each get {each} acknowledgements within {within:?}: {counts:?}; interrupted: {:?}",
                self.lock().interrupted.iter().rev().take(5).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Panics if the server answered a valid change with anything but an acknowledgement.
    pub fn check(&self) {
        let log = self.lock();
        assert!(log.unexpected.is_empty(), "the server refused valid changes: {:?}", log.unexpected);
    }

    /// Stops the writers (each finishes or abandons the push in hand) and waits for them.
    pub async fn stop(&mut self) {
        self.stop.send_replace(true);
        for task in self.tasks.drain(..) {
            task.await.expect("writer task");
        }
        self.check();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Log> {
        self.log.lock().expect("writer log")
    }
}

impl Drop for Writers {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// One writer's documents: id, the writer's copy, markers written so far.
struct Document {
    id: DocumentId,
    doc: Automerge,
    markers: usize,
}

async fn write(
    n: usize,
    shared: bool,
    mut url: watch::Receiver<Vec<String>>,
    mut stop: watch::Receiver<bool>,
    log: Arc<Mutex<Log>>,
) {
    let mut random = Xorshift::new();
    let mut documents: Vec<Document> = Vec::new();
    // The document holding a change not yet acknowledged (sent again after reconnecting).
    let mut pending: Option<usize> = None;
    // Which of the URLs to use: this writer's own at first, the next one after each failure.
    let mut slot = n;
    'connect: while !*stop.borrow() {
        let ws_url = {
            let urls = url.borrow_and_update();
            urls[slot % urls.len()].clone()
        };
        let name = format!("writer-{n}-{}", uuid::Uuid::new_v4().simple());
        let connected = tokio::select! {
            connected = Peer::try_connect(&ws_url, &name, CONNECT_WITHIN) => connected,
            _ = stop.changed() => return,
        };
        let mut peer = match connected {
            Ok(peer) => peer,
            Err(_) => {
                // Down: try the next server soon, or at once when told of another one.
                slot += 1;
                tokio::select! {
                    _ = url.changed() => {}
                    _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                    _ = stop.changed() => return,
                }
                continue;
            }
        };
        while !*stop.borrow() {
            let index = *pending.get_or_insert_with(|| next_change(n, shared, &mut documents, &mut random));
            let document = &documents[index];
            let started = Instant::now();
            match peer.try_push(document.id, &document.doc, PUSH_WITHIN).await {
                Ok(Outcome::Accepted) => {
                    let at = Instant::now();
                    pending = None;
                    let mut log = log.lock().expect("writer log");
                    let heads = document.doc.get_heads();
                    log.acknowledged.insert(document.id, Acknowledged { markers: document.markers, heads });
                    log.acks.push(Ack { writer: n, at, document: document.id, markers: document.markers });
                }
                Ok(other) => {
                    log.lock().expect("writer log").unexpected.push(format!("{}: {other:?}", document.id));
                    return;
                }
                Err(why) => {
                    let why = format!("{why:?}");
                    let interruption = Interruption { writer: n, started, at: Instant::now(), why };
                    log.lock().expect("writer log").interrupted.push(interruption);
                    slot += 1;
                    continue 'connect;
                }
            }
        }
    }
}

/// Makes the next change: mostly to the newest document, sometimes to an older one (long
/// since folded into a snapshot), and a new document every [`CHANGES_PER_DOCUMENT`].
fn next_change(writer: usize, shared: bool, documents: &mut Vec<Document>, random: &mut Xorshift) -> usize {
    let full = documents.last().is_none_or(|d| d.markers >= CHANGES_PER_DOCUMENT);
    if full {
        let id = DocumentId::random();
        let mut doc = Automerge::new();
        let mut tx = doc.transaction();
        let status = if shared { "shared" } else { "draft" };
        let record =
            observation(serde_json::json!({"writer": writer, "marker0": marker_value(id, 0), "status": status}));
        fieldbook_sync_core::json::put_object(&mut tx, &record).expect("valid record");
        tx.commit();
        documents.push(Document { id, doc, markers: 1 });
        return documents.len() - 1;
    }
    let index = if documents.len() > 1 && random.next().is_multiple_of(5) {
        (random.next() % (documents.len() as u64 - 1)) as usize
    } else {
        documents.len() - 1
    };
    let document = &mut documents[index];
    let mut tx = document.doc.transaction();
    let marker = document.markers;
    tx.put(automerge::ROOT, format!("marker{marker}"), marker_value(document.id, marker)).expect("put marker");
    tx.commit();
    document.markers += 1;
    index
}

/// Reads every acknowledged document back through a fresh reader on `ws_url` (a server
/// whose memory holds none of them, so it reads the database) and checks it holds every
/// acknowledged change: the acknowledged heads, and each acknowledged marker's value.
/// Returns how many acknowledged changes (markers) it checked, or what is missing.
pub async fn verify(ws_url: &str, acknowledged: &BTreeMap<DocumentId, Acknowledged>) -> Result<usize, String> {
    let mut reader = Peer::connect(ws_url, &format!("reader-{}", uuid::Uuid::new_v4().simple())).await;
    let mut missing = Vec::new();
    let mut checked = 0;
    for (id, acked) in acknowledged {
        let doc = match reader.fetch(*id).await {
            Ok(doc) => doc,
            Err(outcome) => {
                missing.push(format!("{id}: the whole document ({} acknowledged changes): {outcome:?}", acked.markers));
                continue;
            }
        };
        let absent_heads = acked.heads.iter().filter(|h| doc.get_change_by_hash(h).is_none()).count();
        if absent_heads > 0 {
            missing.push(format!("{id}: {absent_heads} of the acknowledged heads"));
        }
        for n in 0..acked.markers {
            let key = format!("marker{n}");
            let value = fieldbook_sync_core::json::string_at(&doc, &[&key]);
            if value.as_deref() != Some(marker_value(*id, n).as_str()) {
                missing.push(format!("{id}: {key} (acknowledged; found {value:?})"));
            }
        }
        checked += acked.markers;
    }
    if missing.is_empty() { Ok(checked) } else { Err(missing.join("\n")) }
}

/// A small PRNG (no `rand` dependency in the tests crate).
struct Xorshift(u64);

impl Xorshift {
    fn new() -> Self {
        Self(uuid::Uuid::new_v4().as_u64_pair().0 | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// A random duration in `range` (to vary when a test kills or stops things).
pub fn jitter(range: std::ops::Range<Duration>) -> Duration {
    let span = (range.end - range.start).as_micros().max(1) as u64;
    range.start + Duration::from_micros(Xorshift::new().next() % span)
}
