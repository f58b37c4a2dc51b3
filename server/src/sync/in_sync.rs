//! Devices already in sync, and devices that hold nothing yet, answered without loading the
//! document. At 9 am every device reconnects and sends its heads for each record it holds;
//! nearly all match what is committed. Storage keeps each document's heads with its
//! version, so such a message is answered from one small read instead of rebuilding the
//! record's history, with the same access check and audit as any other. A new device asks
//! for every record it may see; most are stored as one snapshot, which is the answer.

use fieldbook_sync_core::access::Viewer;
use fieldbook_sync_core::{DocumentId, FreshRequest, InSyncClaim, SyncKind};

use super::hub::{DocumentHub, HubError};
use super::registry::{ConnectionId, Sender};
use crate::storage::CommittedState;

impl DocumentHub {
    /// Answers a message about a document not in memory without loading it, if the sender
    /// may read it and either holds exactly what is committed (a `sync` message) or holds
    /// nothing and the document is stored as one snapshot (a `request`). False: the message
    /// needs the document (it carries changes, the heads differ or are not known, or the
    /// sender may not read it, which the full path answers as if the record did not exist).
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn answer_unloaded(
        &self,
        from: ConnectionId,
        sender: &Sender,
        viewer: &Viewer,
        document: DocumentId,
        kind: SyncKind,
        data: &[u8],
        today: &str,
    ) -> Result<bool, HubError> {
        match kind {
            SyncKind::Request => self.answer_fresh(from, sender, viewer, document, data, today).await,
            SyncKind::Sync => self.answer_in_sync(from, sender, viewer, document, data, today).await,
        }
    }

    async fn answer_in_sync(
        &self,
        from: ConnectionId,
        sender: &Sender,
        viewer: &Viewer,
        document: DocumentId,
        data: &[u8],
        today: &str,
    ) -> Result<bool, HubError> {
        let Some(claim) = InSyncClaim::read(data) else { return Ok(false) };
        let committed = {
            let _turn = self.reads.acquire().await.expect("never closed");
            self.db.committed_state(document).await?
        };
        let Some(committed) = committed else { return Ok(false) };
        if !viewer.may_read(&committed.facts, today) {
            return Ok(false);
        }
        let Some(reply) = claim.reply(&committed.heads) else { return Ok(false) };
        tracing::debug!(%document, user = %sender.user_id, version = committed.version, "in sync; answered unloaded");
        self.answered_unloaded(from, sender, document, committed, reply);
        Ok(true)
    }

    /// Answers a device that holds nothing of a document stored as one snapshot with that
    /// snapshot, if it may read it. False: the full path answers (the document is not
    /// stored so, its heads are not known, or the sender may not read it).
    async fn answer_fresh(
        &self,
        from: ConnectionId,
        sender: &Sender,
        viewer: &Viewer,
        document: DocumentId,
        data: &[u8],
        today: &str,
    ) -> Result<bool, HubError> {
        let Some(request) = FreshRequest::read(data) else { return Ok(false) };
        let stored = {
            let _turn = self.reads.acquire().await.expect("never closed");
            self.db.committed_snapshot(document).await?
        };
        let Some((committed, snapshot)) = stored else { return Ok(false) };
        if !viewer.may_read(&committed.facts, today) {
            return Ok(false);
        }
        tracing::debug!(%document, user = %sender.user_id, version = committed.version, "fresh device; answered unloaded");
        let reply = request.reply(&committed.heads, snapshot);
        self.answered_unloaded(from, sender, document, committed, reply);
        Ok(true)
    }

    /// Sends an answer made without the document; the sender then follows it, as on the
    /// full path.
    fn answered_unloaded(
        &self,
        from: ConnectionId,
        sender: &Sender,
        document: DocumentId,
        committed: CommittedState,
        reply: Vec<u8>,
    ) {
        crate::metrics::answered_unloaded();
        self.note_committed(document, committed.version, committed.facts);
        self.opened(from, sender, document);
        self.send_sync(from, document, SyncKind::Sync, reply);
    }
}
