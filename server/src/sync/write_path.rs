//! The write path of one incoming message: judge it (sync-core's rules, plus who each
//! automerge actor writes for, which needs the database), then either keep its changes
//! aside and tell the sender, or hand them to the hub to commit with their audit rows.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;

use fieldbook_sync_core::access::{Judgement, Proposal, Viewer, judge};
use fieldbook_sync_core::notice::RejectionNotice;
use fieldbook_sync_core::refusal::{Refusal, rule};
use fieldbook_sync_core::{DocSync, DocumentId, Message, Rejected, Staged, SyncKind};
use serde_json::json;

use super::hub::{ConnectionId, DocumentHub, HubError, LoadedDocument, Sender};
use crate::storage::{AuditEvent, Author, NewQuarantine};

/// What a checked message does, once committed.
pub(super) struct Accepted {
    pub judgement: Judgement,
    /// Actors first seen in these changes, bound to the sender.
    pub new_actors: Vec<(String, Author)>,
    pub audit: Vec<AuditEvent>,
}

impl DocumentHub {
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

    /// An ephemeral message of ours (a notice) on a document, to one connection.
    pub(super) fn send_notice(&self, to: ConnectionId, document: DocumentId, data: Vec<u8>) {
        let message = Message::Ephemeral {
            sender_id: self.our_peer_id().clone(),
            target_id: self.peer_id(to),
            count: self.ephemeral_count.fetch_add(1, Ordering::Relaxed),
            session_id: self.session_id.clone(),
            document_id: document,
            data,
        };
        self.send(to, message.encode());
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
        let changes: Vec<u8> = automerge::sync::Message::decode(data)
            .map(|m| m.changes.iter().flatten().copied().collect())
            .map_err(|e| HubError::Sync { document, source: e.into() })?;
        if changes.is_empty() {
            let mut nothing = DocSync::new(automerge::Automerge::new());
            let received = nothing.receive(&from, kind, data).map_err(|source| HubError::Sync { document, source })?;
            if received.unavailable {
                self.send_unavailable(from, document);
            } else if let Some(out) = nothing.outgoing_for(&from) {
                let message = Message::Sync {
                    kind: out.kind,
                    sender_id: self.our_peer_id().clone(),
                    target_id: self.peer_id(from),
                    document_id: document,
                    data: out.data,
                };
                self.send(from, message.encode());
            }
        } else {
            self.send_unavailable(from, document);
        }
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
