//! A connection's frames waiting to be sent, bounded in bytes rather than in frames: a slow
//! reader is disconnected once more than the limit waits for it, however the bytes are
//! split, and a fast one never is.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::mpsc;

/// What the writer sends next.
#[derive(Debug)]
pub enum Outgoing {
    Frame(Vec<u8>),
    /// A WebSocket close frame, after which the writer stops.
    Close {
        code: u16,
        reason: &'static str,
    },
}

/// The peer has more than the limit waiting already.
#[derive(Debug, PartialEq, Eq)]
pub struct Full;

#[derive(Clone)]
pub struct Outbox {
    frames: mpsc::UnboundedSender<Outgoing>,
    queued: Arc<AtomicUsize>,
    limit: usize,
}

pub struct OutboxReceiver {
    frames: mpsc::UnboundedReceiver<Outgoing>,
    queued: Arc<AtomicUsize>,
}

impl Outbox {
    pub fn new(limit: usize) -> (Outbox, OutboxReceiver) {
        let (frames, receiver) = mpsc::unbounded_channel();
        let queued = Arc::new(AtomicUsize::new(0));
        (Outbox { frames, queued: queued.clone(), limit }, OutboxReceiver { frames: receiver, queued })
    }

    /// Queues a frame, unless more than the limit would then wait. A frame larger than the
    /// whole limit still goes when nothing else waits (one document's sync message can be
    /// large); it just cannot join a backlog.
    pub fn push(&self, frame: Vec<u8>) -> Result<(), Full> {
        let len = frame.len();
        let admitted = self.queued.fetch_update(Ordering::AcqRel, Ordering::Acquire, |queued| {
            (queued == 0 || queued + len <= self.limit).then_some(queued + len)
        });
        if admitted.is_err() {
            return Err(Full);
        }
        if self.frames.send(Outgoing::Frame(frame)).is_err() {
            self.queued.fetch_sub(len, Ordering::AcqRel);
        }
        Ok(())
    }

    /// Sends a close frame after what is queued; the writer stops there.
    pub fn close(&self, code: u16, reason: &'static str) {
        let _ = self.frames.send(Outgoing::Close { code, reason });
    }

    /// Bytes waiting now.
    pub fn queued_bytes(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }
}

impl OutboxReceiver {
    pub async fn recv(&mut self) -> Option<Outgoing> {
        let next = self.frames.recv().await?;
        Some(self.taken(next))
    }

    /// The next thing to send if one is already waiting.
    pub fn try_recv(&mut self) -> Option<Outgoing> {
        let next = self.frames.try_recv().ok()?;
        Some(self.taken(next))
    }

    fn taken(&self, next: Outgoing) -> Outgoing {
        if let Outgoing::Frame(frame) = &next {
            self.queued.fetch_sub(frame.len(), Ordering::AcqRel);
        }
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backlog_over_the_limit_is_refused_and_drains() {
        let (outbox, mut receiver) = Outbox::new(100);
        assert_eq!(outbox.push(vec![0; 60]), Ok(()));
        assert_eq!(outbox.push(vec![0; 40]), Ok(()));
        assert_eq!(outbox.push(vec![0; 1]), Err(Full), "101 bytes would wait");
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        runtime.block_on(async {
            assert!(matches!(receiver.recv().await, Some(Outgoing::Frame(f)) if f.len() == 60));
        });
        assert_eq!(outbox.queued_bytes(), 40);
        assert_eq!(outbox.push(vec![0; 60]), Ok(()));
        // One frame larger than the whole limit goes when nothing waits.
        let (outbox, _receiver) = Outbox::new(100);
        assert_eq!(outbox.push(vec![0; 1000]), Ok(()));
        assert_eq!(outbox.push(vec![0; 1]), Err(Full));
    }
}
