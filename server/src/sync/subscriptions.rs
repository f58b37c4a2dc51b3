//! The documents one connection follows, bounded: following one more than the limit stops
//! following the one used longest ago. A peer that sends a message about a document follows
//! it again, so only live pushes of long-unused documents stop, never the protocol.

use std::collections::{BTreeMap, HashMap};

use fieldbook_sync_core::DocumentId;

pub struct Subscriptions {
    limit: usize,
    clock: u64,
    last_used: HashMap<DocumentId, u64>,
    by_use: BTreeMap<u64, DocumentId>,
}

impl Subscriptions {
    pub fn new(limit: usize) -> Self {
        Self { limit: limit.max(1), clock: 0, last_used: HashMap::new(), by_use: BTreeMap::new() }
    }

    /// Follows `document` (or marks it used now); returns the document no longer followed,
    /// if the limit was reached.
    pub fn follow(&mut self, document: DocumentId) -> Option<DocumentId> {
        self.clock += 1;
        if let Some(previous) = self.last_used.insert(document, self.clock) {
            self.by_use.remove(&previous);
        }
        self.by_use.insert(self.clock, document);
        if self.last_used.len() <= self.limit {
            return None;
        }
        let (_, oldest) = self.by_use.pop_first()?;
        self.last_used.remove(&oldest);
        Some(oldest)
    }

    pub fn documents(&self) -> impl Iterator<Item = DocumentId> + '_ {
        self.last_used.keys().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_least_recently_used_document_is_dropped_past_the_limit() {
        let mut following = Subscriptions::new(2);
        let [a, b, c] = [DocumentId::random(), DocumentId::random(), DocumentId::random()];
        assert_eq!(following.follow(a), None);
        assert_eq!(following.follow(b), None);
        assert_eq!(following.follow(a), None, "using one again keeps it");
        assert_eq!(following.follow(c), Some(b));
        let mut followed: Vec<_> = following.documents().collect();
        followed.sort();
        let mut expected = vec![a, c];
        expected.sort();
        assert_eq!(followed, expected);
    }
}
