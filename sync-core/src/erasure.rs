//! Erasure: a record rebuilt from its current state alone. Automerge keeps every change ever
//! made, so text typed and then deleted (a family's surname, say) stays in the history that
//! every device syncs. Rebuilding writes the current state as one new change, after clearing
//! any fields named; nothing of the old history is in the result. A record can also be
//! deleted outright (retention): then devices are told to remove their copies.

use automerge::{Automerge, ChangeHash};
use serde_json::Value as Json;

use crate::json::{put_object, to_json};

/// Why a device holding erased history is refused (and what it should do), as the server
/// tells it; the web app recognises it by "history was erased".
pub const REFUSED: &str = "this record's earlier history was erased: take the server's copy in place of yours \
                           (changes made on the old copy are refused and not kept)";

/// The notice a device holding erased history gets (rule `erased`).
pub fn notice() -> crate::notice::RejectionNotice {
    crate::notice::RejectionNotice {
        reason: REFUSED.into(),
        rule: Some(crate::refusal::rule::ERASED.into()),
        change_hashes: Vec::new(),
    }
}

/// Why a device is refused a deleted record (and what it should do); the web app
/// recognises it by "record was deleted".
pub const DELETED: &str = "this record was deleted from the server (its retention period ended, or it was deleted \
                           for data protection): remove your copy (changes to it are refused and not kept)";

/// The notice a device asking about a deleted record gets (rule `deleted`).
pub fn deletion_notice() -> crate::notice::RejectionNotice {
    crate::notice::RejectionNotice {
        reason: DELETED.into(),
        rule: Some(crate::refusal::rule::DELETED.into()),
        change_hashes: Vec::new(),
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RebuildError {
    #[error("the record has no field {0:?} to clear")]
    NoSuchField(String),
    #[error("field {0:?} is not text; only text fields can be cleared")]
    NotText(String),
    #[error("the document is empty or not a JSON object")]
    NotARecord,
}

/// The record rebuilt: its new document (one change, by a new actor) and the state it holds.
pub struct Rebuilt {
    pub doc: Automerge,
    pub state: Json,
    /// Every change of the history it replaces, to be refused if a device brings it back.
    pub erased: Vec<ChangeHash>,
}

/// Rebuilds `doc` from its current state, with each top-level text field in `clear` emptied.
pub fn rebuild(doc: &Automerge, clear: &[String]) -> Result<Rebuilt, RebuildError> {
    let mut state = to_json(doc);
    let fields = state.as_object_mut().filter(|o| !o.is_empty()).ok_or(RebuildError::NotARecord)?;
    for field in clear {
        match fields.get_mut(field) {
            None => return Err(RebuildError::NoSuchField(field.clone())),
            Some(Json::String(text)) => text.clear(),
            Some(_) => return Err(RebuildError::NotText(field.clone())),
        }
    }
    let mut rebuilt = Automerge::new();
    let mut tx = rebuilt.transaction();
    put_object(&mut tx, &state).map_err(|_| RebuildError::NotARecord)?;
    tx.commit();
    let erased = doc.get_changes(&[]).iter().map(|c| c.hash()).collect();
    Ok(Rebuilt { doc: rebuilt, state, erased })
}

/// Whether a sync message holds or claims erased history: its heads, or any change it
/// carries (one per chunk, or a whole document in one), is among `erased`.
pub fn touches_erased(message: &automerge::sync::Message, erased: &std::collections::HashSet<ChangeHash>) -> bool {
    if erased.is_empty() {
        return false;
    }
    message.heads.iter().any(|h| erased.contains(h))
        || message.changes.iter().any(|chunk| match automerge::Change::from_bytes(chunk.to_vec()) {
            Ok(change) => erased.contains(&change.hash()),
            // Not one change: a whole document (or unreadable, which is refused anyway).
            Err(_) => {
                Automerge::load(chunk).is_ok_and(|doc| doc.get_changes(&[]).iter().any(|c| erased.contains(&c.hash())))
            }
        })
}

/// What a device changed in `doc` since `confirmed` (the heads the server last confirmed it
/// held): the top-level fields whose value differs, as they are now, in a new document with no
/// history. When the server erased the record's history, this is the user's unsent work to
/// keep aside, without the old history (which holds the erased text). With nothing confirmed,
/// every field counts as changed.
pub fn unsent_work(doc: &Automerge, confirmed: &[ChangeHash]) -> Automerge {
    let now = to_json(doc);
    let mut changed = serde_json::Map::new();
    for (field, value) in now.as_object().into_iter().flatten() {
        let before = if confirmed.is_empty() { None } else { crate::json::field_json_at(doc, field, confirmed) };
        if before.as_ref() != Some(value) {
            changed.insert(field.clone(), value.clone());
        }
    }
    let mut kept = Automerge::new();
    let mut tx = kept.transaction();
    put_object(&mut tx, &Json::Object(changed)).expect("a JSON object");
    tx.commit();
    kept
}

#[cfg(test)]
mod tests {
    use automerge::ReadDoc;
    use automerge::transaction::Transactable;
    use serde_json::json;

    use super::*;

    fn edited() -> Automerge {
        let mut doc = Automerge::new();
        let mut tx = doc.transaction();
        put_object(&mut tx, &json!({ "type": "observation", "notes": "Visit.", "setting": "home-visit" })).unwrap();
        tx.commit();
        // A surname typed, then deleted: gone from the state, still in the history.
        for notes in ["Visit. The Smithson family.", "Visit."] {
            let mut tx = doc.transaction();
            crate::json::set_path(&mut tx, "notes", &json!(notes)).unwrap();
            tx.commit();
        }
        doc
    }

    /// Whether the notes held `text` at any point of the document's history.
    fn history_mentions(doc: &Automerge, text: &str) -> bool {
        doc.get_changes(&[]).iter().any(|c| {
            crate::json::field_json_at(doc, "notes", &[c.hash()]).is_some_and(|n| n.to_string().contains(text))
        })
    }

    #[test]
    fn the_rebuilt_record_keeps_its_state_and_none_of_its_history() {
        let doc = edited();
        assert!(history_mentions(&doc, "Smithson"), "the old history holds the deleted name");
        let rebuilt = rebuild(&doc, &[]).unwrap();
        assert_eq!(to_json(&rebuilt.doc), to_json(&doc));
        assert_eq!(rebuilt.doc.get_changes(&[]).len(), 1);
        assert!(!history_mentions(&rebuilt.doc, "Smithson"));
        assert_eq!(rebuilt.erased.len(), doc.get_changes(&[]).len());
        assert!(rebuilt.erased.iter().all(|h| rebuilt.doc.get_change_by_hash(h).is_none()));
        // Text stays collaborative text.
        let (value, _) = rebuilt.doc.get(automerge::ROOT, "notes").unwrap().unwrap();
        assert!(matches!(value, automerge::Value::Object(automerge::ObjType::Text)));
    }

    #[test]
    fn a_device_with_the_erased_history_is_refused_sent_nothing_and_welcome_back_without_it() {
        use crate::refusal::rule;
        use crate::{DocSync, SyncKind};
        let old = edited();
        let rebuilt = rebuild(&old, &[]).unwrap();
        let mut server = DocSync::new(rebuilt.doc.clone());
        server.forbid_history(rebuilt.erased.clone());

        // Its heads give it away; then its changes, sent outright.
        let mut device = DocSync::new(old.clone());
        let first = device.outgoing_for(&"server").unwrap();
        for (kind, data) in [(first.kind, first.data), (SyncKind::Sync, crate::changes_message(&old, &[]))] {
            let staged = server.stage(&"device", kind, &data).unwrap();
            let refusal = staged.verdict().unwrap().unwrap_err();
            assert_eq!(refusal.rule, rule::ERASED);
            let rejected = server.refuse(staged, refusal).rejected.unwrap();
            assert!(rejected.bytes.is_empty() && rejected.change_hashes.is_empty(), "nothing kept");
            assert_eq!(server.heads(), rebuilt.doc.get_heads(), "nothing applied");
            assert!(server.outgoing_for(&"device").is_none(), "nothing sent to mix with the old history");
        }

        // The same device after taking the server's copy.
        let mut fresh = DocSync::new(Automerge::new());
        for _ in 0..5 {
            if let Some(m) = fresh.outgoing_for(&"server") {
                server.receive(&"device", m.kind, &m.data).unwrap();
            }
            if let Some(m) = server.outgoing_for(&"device") {
                fresh.receive(&"server", m.kind, &m.data).unwrap();
            }
        }
        assert_eq!(fresh.heads(), rebuilt.doc.get_heads());
    }

    #[test]
    fn unsent_work_is_what_changed_since_the_server_confirmed_without_history() {
        let mut doc = edited();
        let confirmed = doc.get_heads();
        let mut tx = doc.transaction();
        crate::json::set_path(&mut tx, "setting", &json!("office-visit")).unwrap();
        tx.commit();
        let kept = unsent_work(&doc, &confirmed);
        assert_eq!(to_json(&kept), json!({ "setting": "office-visit" }));
        assert_eq!(kept.get_changes(&[]).len(), 1);
        assert!(!history_mentions(&kept, "Smithson"));
        assert_eq!(to_json(&unsent_work(&doc, &[])), to_json(&doc), "nothing confirmed: everything");
    }

    #[test]
    fn named_text_fields_are_cleared_and_others_refused() {
        let doc = edited();
        let rebuilt = rebuild(&doc, &["notes".into()]).unwrap();
        assert_eq!(rebuilt.state["notes"], "");
        assert_eq!(rebuilt.state["setting"], "home-visit");
        assert!(!history_mentions(&rebuilt.doc, "Visit."));
        assert_eq!(rebuild(&doc, &["nope".into()]).err(), Some(RebuildError::NoSuchField("nope".into())));
        let mut other = doc.clone();
        let mut tx = other.transaction();
        tx.put(automerge::ROOT, "count", 3).unwrap();
        tx.commit();
        assert_eq!(rebuild(&other, &["count".into()]).err(), Some(RebuildError::NotText("count".into())));
        assert_eq!(rebuild(&Automerge::new(), &[]).err(), Some(RebuildError::NotARecord));
    }
}
