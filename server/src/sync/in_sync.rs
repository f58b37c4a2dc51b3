//! Devices already in sync, answered without loading the document. At 9 am every device
//! reconnects and sends its heads for each record it holds; nearly all match what is
//! committed. Storage keeps each document's heads with its version, so such a message is
//! answered from one small read instead of rebuilding the record's history, with the same
//! access check and audit as any other.

use fieldbook_sync_core::access::Viewer;
use fieldbook_sync_core::{DocumentId, InSyncClaim, Message, SyncKind};

use super::hub::{DocumentHub, HubError};
use super::registry::{ConnectionId, Sender};

impl DocumentHub {
    /// Answers a sync message for a document not in memory if the sender holds exactly
    /// what is committed and may read it. False: the message needs the document (it
    /// carries changes, the heads differ or are not known, or the sender may not read it,
    /// which the full path answers as if the record did not exist).
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn answer_in_sync(
        &self,
        from: ConnectionId,
        sender: &Sender,
        viewer: &Viewer,
        document: DocumentId,
        kind: SyncKind,
        data: &[u8],
        today: &str,
    ) -> Result<bool, HubError> {
        if kind != SyncKind::Sync {
            return Ok(false);
        }
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
        crate::metrics::answered_unloaded();
        self.note_committed(document, committed.version, committed.facts);
        self.opened(from, sender, document);
        let message = Message::Sync {
            kind: SyncKind::Sync,
            sender_id: self.our_peer_id().clone(),
            target_id: self.peer_id(from),
            document_id: document,
            data: reply,
        };
        self.send(from, "sync", message.encode());
        Ok(true)
    }
}
