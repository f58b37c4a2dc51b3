//! Valid records to start tests from (DOMAIN.md "Records").

use automerge::Automerge;
use fieldbook_sync_core::json::{field_json_at, set_path};
use serde_json::{Value, json};

/// A document holding `value`, strings as Text (as JavaScript clients write them).
pub fn document(value: &Value) -> Automerge {
    let mut doc = Automerge::new();
    let mut tx = doc.transaction();
    fieldbook_sync_core::json::put_object(&mut tx, value).expect("a JSON object");
    tx.commit();
    doc
}

/// Stores a record straight into the central store, as if it had been synced (it may be dated
/// in the past); returns its document id.
pub async fn store(db: &fieldbook_server::storage::Database, value: Value) -> fieldbook_sync_core::DocumentId {
    use fieldbook_server::storage::ChunkKind;
    let id = fieldbook_sync_core::DocumentId::random();
    let catalog = db.framework_catalog().await.expect("the framework catalog");
    let record = fieldbook_sync_core::Record::parse(&value, &catalog).expect("a valid record");
    db.commit_changes(id, ChunkKind::Snapshot, &document(&value).save(), Some(&record)).await.expect("committed");
    id
}

/// A minimal valid draft observation of `pat` by `sam`, ready to share, with `extra` fields
/// merged in.
pub fn observation(extra: Value) -> Value {
    merge(
        json!({
            "type": "observation", "schemaVersion": 1,
            "practitionerId": "pat", "observerId": "sam",
            "observedAt": "2026-11-20T10:00:00Z", "setting": "home-visit",
            "consent": {"given": true, "by": "mother", "how": "verbally, at the door"},
            "framework": "kss-cf-2018", "components": ["kss-cf-2018/1"],
            "status": "draft",
        }),
        extra,
    )
}

/// A minimal valid plan owned by `pat`, supervised by `sam`.
pub fn plan(extra: Value) -> Value {
    merge(
        json!({
            "type": "development-plan", "schemaVersion": 1,
            "ownerId": "pat", "supervisorId": "sam", "framework": "kss-cf-2018",
            "goals": [], "status": "draft",
        }),
        extra,
    )
}

fn merge(mut base: Value, extra: Value) -> Value {
    if let (Some(base), Value::Object(extra)) = (base.as_object_mut(), extra) {
        base.extend(extra);
    }
    base
}

/// Sets a record's notes, as typing them would.
pub fn edit_notes(doc: &mut Automerge, notes: &str) {
    let mut tx = doc.transaction();
    set_path(&mut tx, "notes", &json!(notes)).expect("notes");
    tx.commit();
}

/// Whether the notes held `text` at any point of `doc`'s history.
pub fn history_mentions(doc: &Automerge, text: &str) -> bool {
    doc.get_changes(&[])
        .iter()
        .any(|c| field_json_at(doc, "notes", &[c.hash()]).is_some_and(|n| n.to_string().contains(text)))
}
