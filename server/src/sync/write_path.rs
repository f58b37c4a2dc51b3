//! The write path of one incoming message, from frame to commit: judge it against the
//! document as committed (sync-core's rules, plus who each automerge actor writes for,
//! which needs the database), then either keep its changes aside and tell the sender, or
//! commit them with their audit rows and projection, and only then answer. A commit that
//! finds another node committed first catches up and judges the message again.

use std::collections::{HashMap, HashSet};

use fieldbook_sync_core::access::{Judgement, Proposal, Viewer, judge};
use fieldbook_sync_core::notice::RejectionNotice;
use fieldbook_sync_core::records::dates;
use fieldbook_sync_core::refusal::{Refusal, rule};
use fieldbook_sync_core::{DocSync, DocumentId, Rejected, Staged, SyncKind};
use serde_json::json;

use super::cache::{DocumentLock, LoadedDocument};
use super::hub::{DocumentHub, HubError};
use super::registry::{ConnectionId, Sender};
use crate::storage::{AuditEvent, Author, ChunkKind, CommitJob, CommitOutcome, NewQuarantine, StorageError};

/// Most times one message is judged again because other nodes kept committing to its
/// document first.
const MAX_ATTEMPTS: usize = 8;

/// What a checked message does, once committed.
pub(super) struct Accepted {
    pub judgement: Judgement,
    /// Actors first seen in these changes, bound to the sender.
    pub new_actors: Vec<(String, Author)>,
    pub audit: Vec<AuditEvent>,
}

impl DocumentHub {
    /// Handles a `sync` or `request` message: check access, check the changes against the
    /// document as committed, commit them, then answer every peer that may see the
    /// document.
    pub async fn receive_sync(
        &self,
        DocumentLock(mut guard): DocumentLock,
        from: ConnectionId,
        document: DocumentId,
        kind: SyncKind,
        data: &[u8],
    ) -> Result<(), HubError> {
        let Some((sender, viewer)) = self.who(from) else { return Ok(()) };
        let today = dates::today();
        if guard.is_none() && self.answer_unloaded(from, &sender, &viewer, document, kind, data, &today).await? {
            return Ok(());
        }
        let mut attempt = 0;
        let received = loop {
            attempt += 1;
            let loaded = match self.current(document, &mut guard).await {
                Ok(loaded) => loaded,
                Err(e) => {
                    // A copy half caught up is rebuilt from storage next time.
                    *guard = None;
                    return Err(e);
                }
            };
            if loaded.deleted {
                return self.refuse_deleted(from, &sender, &viewer, document, data, &today).await;
            }
            if let Some(stored) = &loaded.stored {
                // Need to know: to anyone else the document does not exist.
                if !viewer.may_read(&stored.facts, &today) {
                    return self.deny(from, &sender, document, kind, data).await;
                }
                self.opened(from, &sender, document);
            } else if !loaded.sync.is_empty() {
                tracing::warn!(%document, "stored document is not a record; nobody may read it");
                return self.deny(from, &sender, document, kind, data).await;
            }
            tracing::debug!(%document, user = %sender.user_id, bytes = data.len(), ?kind, attempt, "sync message");
            let staged = match loaded.sync.stage(&from, kind, data) {
                Ok(staged) => staged,
                Err(source) => {
                    *guard = None;
                    return Err(HubError::Sync { document, source });
                }
            };
            let verdict = match staged.verdict() {
                Some(Ok(())) => Ok(None),
                Some(Err(refusal)) => Err(refusal),
                None => self.check(document, loaded, &staged, &sender, &viewer, &today).await?.map(Some),
            };
            match verdict {
                Err(refusal) => break loaded.sync.refuse(staged, refusal),
                Ok(None) => break loaded.sync.accept(staged),
                Ok(Some(accepted)) => match self.commit(document, loaded, &staged, accepted).await {
                    Ok(true) => {
                        let received = loaded.sync.accept(staged);
                        crate::metrics::changes_accepted(received.new_changes);
                        // Its creator has it open; `record-created` says so.
                        self.mark_opened(from, document);
                        if loaded.chunks.len() > self.config.compact_after_chunks {
                            self.compact(document, loaded).await;
                        }
                        break received;
                    }
                    Ok(false) if attempt < MAX_ATTEMPTS => {
                        tracing::debug!(%document, attempt, "another node committed first; judging again");
                        crate::metrics::stale_commit();
                        if let Err(e) = self.catch_up(document, loaded).await {
                            *guard = None;
                            return Err(e);
                        }
                    }
                    Ok(false) => {
                        *guard = None;
                        let busy =
                            format!("{document} changed on other nodes {MAX_ATTEMPTS} times while this was checked");
                        return Err(StorageError::Internal(busy).into());
                    }
                    Err(e) => {
                        *guard = None;
                        return Err(e.into());
                    }
                },
            }
        };
        if let Some(rejected) = received.rejected {
            crate::metrics::changes_refused(rejected.refusal.rule, rejected.change_hashes.len());
            self.reject(from, &sender, document, rejected).await?;
        }
        if received.unavailable {
            self.send_unavailable(from, document);
        }
        // Only now, with every new change committed, may our heads go out, and only to
        // those who may see the document.
        let loaded = guard.as_mut().expect("loaded above");
        self.share(document, loaded, &today, Some((from, &viewer)));
        Ok(())
    }

    /// Commits a message's accepted changes, judged against `loaded`; false (nothing
    /// written) if another node committed to the document since.
    async fn commit(
        &self,
        document: DocumentId,
        loaded: &mut LoadedDocument,
        staged: &Staged<ConnectionId>,
        Accepted { judgement, new_actors, audit }: Accepted,
    ) -> Result<bool, StorageError> {
        // A new document is stored as a snapshot: it loads several times faster than the
        // changes that made it. A whole document as sent is one already; otherwise saving a
        // small document is cheap. (A save also keeps changes still waiting for their
        // dependencies.)
        let (kind, chunk) = if loaded.chunks.is_empty() {
            let snapshot = staged.as_snapshot().map_or_else(|| staged.after().save(), <[u8]>::to_vec);
            (ChunkKind::Snapshot, snapshot)
        } else {
            (ChunkKind::Incremental, staged.received_bytes().to_vec())
        };
        let chunk_len = chunk.len();
        let stored = judgement.stored;
        let job = CommitJob {
            document,
            expected_version: Some(loaded.version),
            kind,
            chunk,
            heads: Some(staged.after().get_heads()),
            record: stored.record.clone(),
            new_actors: new_actors.clone(),
            audit,
            events: judgement.events,
        };
        match self.committer.commit(job).await? {
            CommitOutcome::Stale => Ok(false),
            CommitOutcome::Committed { chunk, version } => {
                tracing::debug!(%document, chunk, version, "committed");
                loaded.chunks.push((chunk, chunk_len));
                loaded.version = version;
                loaded.authors.extend(new_actors);
                loaded.stored = Some(stored);
                self.note_loaded(document, loaded);
                Ok(true)
            }
        }
    }

    /// Checks a message's new changes: the record stays valid and within the size limit,
    /// the sender writes only what their part in the record allows, and every change's
    /// actor writes for them.
    pub(super) async fn check(
        &self,
        document: DocumentId,
        loaded: &LoadedDocument,
        staged: &Staged<ConnectionId>,
        sender: &Sender,
        viewer: &Viewer,
        today: &str,
    ) -> Result<Result<Accepted, Refusal>, HubError> {
        let size = loaded.stored_bytes() + staged.received_len();
        if size > self.limits.max_document_bytes {
            let message = format!(
                "the record would take {size} bytes, more than this server's limit of {} bytes",
                self.limits.max_document_bytes
            );
            return Ok(Err(Refusal::new(rule::TOO_LARGE, message)));
        }
        let before_heads = loaded.sync.heads();
        let metadata = staged.new_change_metadata();
        // A creation is judged by the document it makes (see `check_write`).
        let changes = if loaded.stored.is_some() { staged.new_changes() } else { Vec::new() };
        let proposal = Proposal {
            viewer,
            today,
            stored: loaded.stored.as_ref(),
            before_heads: &before_heads,
            after: staged.after(),
            changes: &changes,
            metadata: &metadata,
        };
        let judgement = match judge(&proposal, self.catalog().as_ref()) {
            Ok(judgement) => judgement,
            Err(refusal) => return Ok(Err(refusal)),
        };

        let me = Author { user_id: sender.user_id.clone(), device_id: sender.device_id.clone() };
        let actors: HashSet<String> = metadata.iter().map(|c| c.actor.to_hex_string()).collect();
        let unknown: Vec<String> = actors.iter().filter(|a| !loaded.authors.contains_key(*a)).cloned().collect();
        let stored = if unknown.is_empty() { HashMap::new() } else { self.db.actor_bindings(&unknown).await? };
        let mut new_actors = Vec::new();
        for actor in &actors {
            match loaded.authors.get(actor).or_else(|| stored.get(actor)) {
                Some(author) if *author == me => {}
                Some(_) => {
                    let message =
                        format!("changes by actor {actor} belong to another user or device; each actor writes for one");
                    return Ok(Err(Refusal::new(rule::ACTOR_BOUND, message)));
                }
                None => new_actors.push((actor.clone(), me.clone())),
            }
        }

        let device_time = metadata.iter().map(|c| c.timestamp).max().and_then(device_millis);
        let hashes: Vec<String> = metadata.iter().map(|c| c.hash.to_string()).collect();
        let event = |action: &'static str| {
            let mut e = AuditEvent::new(action).by(&sender.user_id, sender.device_id.as_deref()).document(document);
            e.device_time = device_time;
            e
        };
        let created = loaded.stored.is_none();
        let mut audit = vec![event(if created { "record-created" } else { "changes-accepted" }).detail(json!({
            "party": judgement.party.as_str(), "changes": hashes.len(), "changeHashes": hashes,
            "fields": judgement.fields,
        }))];
        let locked = judgement.stored.facts.locked;
        for side in &judgement.signed {
            audit.push(event("signed-off").detail(json!({ "side": side.as_str(), "locked": locked })));
        }
        for side in &judgement.withdrawn {
            audit.push(event("sign-off-withdrawn").detail(json!({ "side": side.as_str() })));
        }
        Ok(Ok(Accepted { judgement, new_actors, audit }))
    }

    /// Keeps refused changes aside with who sent them and why, and tells the sender with a
    /// `fieldbook/rejected` ephemeral message on the document. The audit trail gets the
    /// refusal's structured parts only, never what the client wrote.
    pub(super) async fn reject(
        &self,
        from: ConnectionId,
        sender: &Sender,
        document: DocumentId,
        rejected: Rejected,
    ) -> Result<(), HubError> {
        let Rejected { refusal, change_hashes, bytes } = rejected;
        if refusal.rule == rule::ERASED {
            // Erased history is not kept, not even aside; the attempt is audited without it.
            let event = AuditEvent::new("erased-history-refused")
                .by(&sender.user_id, sender.device_id.as_deref())
                .document(document)
                .detail(json!({ "rule": rule::ERASED }));
            let audit = self.audit.clone();
            tokio::spawn(async move { audit.record(event).await });
            self.send_notice(from, document, fieldbook_sync_core::erasure::notice().encode());
            return Ok(());
        }
        let hashes: Vec<String> = change_hashes.iter().map(ToString::to_string).collect();
        let id = self
            .db
            .quarantine(NewQuarantine {
                document,
                user_id: &sender.user_id,
                device_id: sender.device_id.as_deref(),
                reason: &refusal.message,
                change_hashes: &hashes,
                changes: &bytes,
            })
            .await?;
        tracing::info!(%document, quarantine = id, user = %sender.user_id, rule = refusal.rule, "rejected changes");
        let mut detail = refusal.audit_detail();
        detail["quarantine"] = json!(id);
        detail["changeHashes"] = json!(hashes);
        let event = AuditEvent::new("changes-rejected")
            .by(&sender.user_id, sender.device_id.as_deref())
            .document(document)
            .detail(detail);
        self.db.audit(event).await?;
        let notice =
            RejectionNotice { reason: refusal.message, rule: Some(refusal.rule.to_owned()), change_hashes: hashes };
        self.send_notice(from, document, notice.encode());
        Ok(())
    }

    /// Answers a message about a deleted record: someone who could read it is told to remove
    /// their copy (anyone else is answered as for a record that never existed), and any
    /// changes sent are refused without being kept anywhere (the attempt is audited).
    async fn refuse_deleted(
        &self,
        from: ConnectionId,
        sender: &Sender,
        viewer: &Viewer,
        document: DocumentId,
        data: &[u8],
        today: &str,
    ) -> Result<(), HubError> {
        let message =
            automerge::sync::Message::decode(data).map_err(|e| HubError::Sync { document, source: e.into() })?;
        crate::metrics::changes_refused(rule::DELETED, message.changes.len());
        let could_read = self.db.deleted_facts(document).await?.is_some_and(|facts| viewer.may_read(&facts, today));
        if could_read {
            self.send_notice(from, document, fieldbook_sync_core::erasure::deletion_notice().encode());
        }
        self.send_unavailable(from, document);
        if !message.changes.is_empty() {
            let event = AuditEvent::new("deleted-record-refused")
                .by(&sender.user_id, sender.device_id.as_deref())
                .document(document)
                .detail(json!({ "rule": rule::DELETED }));
            let audit = self.audit.clone();
            tokio::spawn(async move { audit.record(event).await });
        }
        Ok(())
    }

    /// Answers someone who may not see a document exactly as if it did not exist (as an
    /// empty document would answer), then keeps aside any changes they sent (never merged,
    /// never dropped) and audits the attempt, off the document's lock.
    pub(super) async fn deny(
        &self,
        from: ConnectionId,
        sender: &Sender,
        document: DocumentId,
        kind: SyncKind,
        data: &[u8],
    ) -> Result<(), HubError> {
        let message =
            automerge::sync::Message::decode(data).map_err(|e| HubError::Sync { document, source: e.into() })?;
        // Erased history is never kept, not even aside.
        let refused = self.db.refused_history(document).await?;
        let erased = fieldbook_sync_core::erasure::touches_erased(&message, &refused.erased);
        let changes: Vec<u8> = if erased { Vec::new() } else { message.changes.iter().flatten().copied().collect() };
        if changes.is_empty() && !erased {
            let mut nothing = DocSync::new(automerge::Automerge::new());
            let received = nothing.receive(&from, kind, data).map_err(|source| HubError::Sync { document, source })?;
            if received.unavailable {
                self.send_unavailable(from, document);
            } else if let Some(out) = nothing.outgoing_for(&from) {
                self.send_sync(from, document, out.kind, out.data);
            }
        } else {
            self.send_unavailable(from, document);
        }
        crate::metrics::changes_refused(rule::NO_ACCESS, usize::from(!changes.is_empty()));
        let (db, audit, sender) = (self.db.clone(), self.audit.clone(), sender.clone());
        tokio::spawn(async move {
            let kept_aside = !changes.is_empty();
            if kept_aside {
                let entry = NewQuarantine {
                    document,
                    user_id: &sender.user_id,
                    device_id: sender.device_id.as_deref(),
                    reason: "sent by someone who may not see this record",
                    change_hashes: &[],
                    changes: &changes,
                };
                if let Err(e) = db.quarantine(entry).await {
                    tracing::error!(error = %e, %document, "could not keep refused changes aside");
                }
            }
            let event = AuditEvent::new("access-denied")
                .by(&sender.user_id, sender.device_id.as_deref())
                .document(document)
                .detail(json!({ "rule": rule::NO_ACCESS, "changesKeptAside": kept_aside }));
            audit.record(event).await;
        });
        Ok(())
    }
}

/// Automerge change times are advisory: seconds from Rust clients, milliseconds from
/// JavaScript ones. Normalised to milliseconds; 0 means "not given".
fn device_millis(timestamp: i64) -> Option<i64> {
    match timestamp {
        t if t <= 0 => None,
        t if t < 100_000_000_000 => Some(t * 1000),
        t => Some(t),
    }
}
