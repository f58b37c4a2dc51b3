//! Group commit. Connections hand their accepted changes to one writer, which commits
//! whatever has queued up in a single transaction: under load one fsync covers many
//! devices' changes instead of one each. Every caller still waits for its own commit
//! before the server reports heads that include it.

use automerge::ChangeHash;
use fieldbook_sync_core::records::events::RecordEvent;
use fieldbook_sync_core::{DocumentId, Record};
use tokio::sync::{mpsc, oneshot};

use super::{AuditEvent, Author, Backend, ChunkKind, CommitOutcome, Database, StorageError};

/// Most changes committed in one transaction.
const MAX_BATCH: usize = 256;

pub struct CommitJob {
    pub document: DocumentId,
    /// The document version the changes were judged against (0: a new document); the
    /// commit is [`CommitOutcome::Stale`] if it is no longer the document's. `None`: any.
    pub expected_version: Option<i64>,
    pub kind: ChunkKind,
    pub chunk: Vec<u8>,
    /// The document's heads with this chunk, kept with its version (`None`: unknown, which
    /// clears them; see [`super::Database::committed_state`]).
    pub heads: Option<Vec<ChangeHash>>,
    pub record: Option<Record>,
    /// Automerge actors (hex) first seen in these changes, bound to their sender.
    pub new_actors: Vec<(String, Author)>,
    /// What the changes did, for the audit trail, committed with them.
    pub audit: Vec<AuditEvent>,
    /// Record-level events for the change feed, committed with them.
    pub events: Vec<RecordEvent>,
}

type Queue = mpsc::Receiver<(CommitJob, oneshot::Sender<Result<CommitOutcome, StorageError>>)>;

#[derive(Clone)]
pub struct Committer {
    jobs: mpsc::Sender<(CommitJob, oneshot::Sender<Result<CommitOutcome, StorageError>>)>,
}

impl Committer {
    /// Starts the writers; they end when every `Committer` clone is dropped. SQLite has one
    /// writer at a time anyway; PostgreSQL gets four, since each statement is a round trip.
    /// More make smaller batches that contend (a commit that notifies other nodes holds
    /// PostgreSQL's notify lock until it is durable): with eight, `scripts/bench cluster`
    /// committed 1,071 changes/s on one node and 801 on two; with four, 1,373 and 1,181, and
    /// `scripts/bench ingest` was unchanged.
    pub fn start(db: Database) -> Self {
        let (jobs, queue) = mpsc::channel(MAX_BATCH * 4);
        let queue = std::sync::Arc::new(tokio::sync::Mutex::new(queue));
        let writers = match db.backend() {
            Backend::Sqlite => 1,
            Backend::Postgres => 4,
        };
        for _ in 0..writers {
            tokio::spawn(write_batches(db.clone(), queue.clone()));
        }
        Self { jobs }
    }

    /// Commits one document's changes (and projection); returns the chunk id and the new
    /// version once durable, or that the job was judged against a stale copy.
    pub async fn commit(&self, job: CommitJob) -> Result<CommitOutcome, StorageError> {
        let (reply, done) = oneshot::channel();
        self.jobs.send((job, reply)).await.map_err(|_| StorageError::Internal("the writer has stopped".into()))?;
        done.await.map_err(|_| StorageError::Internal("the writer stopped before committing".into()))?
    }
}

async fn write_batches(db: Database, queue: std::sync::Arc<tokio::sync::Mutex<Queue>>) {
    loop {
        let batch = {
            let mut queue = queue.lock().await;
            let Some(first) = queue.recv().await else { return };
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match queue.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            batch
        };
        let (jobs, replies): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
        let started = std::time::Instant::now();
        let result = db.commit_batch(&jobs).await;
        crate::metrics::commit_batch(jobs.len(), started.elapsed(), result.is_ok());
        match result {
            Ok(outcomes) => {
                for (reply, outcome) in replies.into_iter().zip(outcomes) {
                    let _ = reply.send(Ok(outcome));
                }
            }
            // One bad job must not fail the others: retry each on its own.
            Err(_) => {
                for (job, reply) in jobs.iter().zip(replies) {
                    let result = match db.commit_batch(std::slice::from_ref(job)).await {
                        Ok(outcomes) => Ok(outcomes[0]),
                        // Another node bound one of its actors first: judged again, the
                        // change is refused for writing as someone else.
                        Err(e) if e.is_duplicate() => Ok(CommitOutcome::Stale),
                        Err(e) => Err(e),
                    };
                    let _ = reply.send(result);
                }
            }
        }
    }
}
