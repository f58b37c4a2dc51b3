//! Valid records to start tests from (DOMAIN.md "Records").

use automerge::Automerge;
use serde_json::{Value, json};

/// A document holding `value`, strings as Text (as JavaScript clients write them).
pub fn document(value: &Value) -> Automerge {
    let mut doc = Automerge::new();
    let mut tx = doc.transaction();
    fieldbook_sync_core::json::put_object(&mut tx, value).expect("a JSON object");
    tx.commit();
    doc
}

/// A minimal valid draft observation of `pat` by `sam`, with `extra` fields merged in.
pub fn observation(extra: Value) -> Value {
    merge(
        json!({
            "type": "observation", "schemaVersion": 1,
            "practitionerId": "pat", "observerId": "sam",
            "observedAt": "2026-11-20T10:00:00Z", "setting": "home-visit",
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
