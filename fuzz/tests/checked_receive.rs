//! A sync message through the server's checked receive path, sans IO: staged on a scratch
//! copy, judged by the access and record rules as the server judges it, then accepted or
//! refused. Whatever a client sends, the server's copy stays a valid record, a refusal
//! leaves it untouched, and the record kept beside it (the JSON each change is judged
//! against) is exactly the document's.

use automerge::transaction::Transactable;
use automerge::{Automerge, ObjType, ROOT, ReadDoc, ScalarValue, Value};
use fieldbook_fuzz::{client_text, fuzz};
use fieldbook_sync_core::access::{LineGrant, Proposal, Role, Stored, Viewer, judge};
use fieldbook_sync_core::frameworks::Catalog;
use fieldbook_sync_core::{DocSync, Record, SyncKind, changes_message, json};
use proptest::prelude::*;

static KEYS: std::sync::LazyLock<Vec<&str>> = std::sync::LazyLock::new(fieldbook_fuzz::field_names);

#[derive(Debug, Clone)]
enum Edit {
    Put { key: usize, value: Scalar },
    MakeObject { key: usize, kind: u8 },
    Splice { at: usize, delete: usize, text: String },
    Delete { key: usize },
    Sign { side: bool, by: bool },
    Unsign { side: bool },
}

#[derive(Debug, Clone)]
enum Scalar {
    Text(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Null,
    Bytes(Vec<u8>),
}

fn scalar() -> impl Strategy<Value = Scalar> {
    prop_oneof![
        client_text().prop_map(Scalar::Text),
        any::<i64>().prop_map(Scalar::Int),
        any::<f64>().prop_map(Scalar::Float),
        any::<bool>().prop_map(Scalar::Bool),
        Just(Scalar::Null),
        proptest::collection::vec(any::<u8>(), 0..16).prop_map(Scalar::Bytes),
    ]
}

fn edit() -> impl Strategy<Value = Edit> {
    let key = 0..KEYS.len();
    prop_oneof![
        (key.clone(), scalar()).prop_map(|(key, value)| Edit::Put { key, value }),
        (key.clone(), 0..3u8).prop_map(|(key, kind)| Edit::MakeObject { key, kind }),
        (0..64usize, 0..4usize, client_text()).prop_map(|(at, delete, text)| Edit::Splice { at, delete, text }),
        key.prop_map(|key| Edit::Delete { key }),
        (any::<bool>(), any::<bool>()).prop_map(|(side, by)| Edit::Sign { side, by }),
        any::<bool>().prop_map(|side| Edit::Unsign { side }),
    ]
}

/// Where an edit lands: the root, or a map, list or text already in the document.
fn target(doc: &Automerge, pick: usize) -> automerge::ObjId {
    let mut objects = vec![ROOT];
    for key in doc.keys(ROOT).collect::<Vec<_>>() {
        if let Ok(Some((Value::Object(_), id))) = doc.get(ROOT, &key) {
            objects.push(id);
        }
    }
    objects[pick % objects.len()].clone()
}

fn apply(doc: &mut Automerge, edits: &[(usize, Edit)]) {
    for (pick, edit) in edits {
        let obj = target(doc, *pick);
        let mut tx = doc.transaction();
        let kind = tx.object_type(&obj).unwrap_or(ObjType::Map);
        let key = |k: usize| KEYS[k % KEYS.len()];
        let _ = match (kind, edit) {
            (ObjType::Map | ObjType::Table, Edit::Put { key: k, value }) => tx.put(&obj, key(*k), to_scalar(value)),
            (ObjType::List, Edit::Put { key: k, value }) => {
                let len = tx.length(&obj);
                tx.insert(&obj, k % (len + 1), to_scalar(value))
            }
            (ObjType::Map | ObjType::Table, Edit::MakeObject { key: k, kind }) => {
                tx.put_object(&obj, key(*k), object_kind(*kind)).map(|_| ())
            }
            (ObjType::List, Edit::MakeObject { key: k, kind }) => {
                let len = tx.length(&obj);
                tx.insert_object(&obj, k % (len + 1), object_kind(*kind)).map(|_| ())
            }
            (ObjType::Text, Edit::Splice { at, delete, text, .. }) => {
                let len = tx.length(&obj);
                let at = (*at).min(len);
                tx.splice_text(&obj, at, (*delete as isize).min((len - at) as isize), text)
            }
            (ObjType::Map | ObjType::Table, Edit::Delete { key: k }) => tx.delete(&obj, key(*k)),
            (ObjType::List | ObjType::Text, Edit::Delete { key: k }) => {
                let len = tx.length(&obj);
                if len > 0 { tx.delete(&obj, k % len) } else { Ok(()) }
            }
            (_, Edit::Sign { side, by }) => {
                let side = if *side { "observer" } else { "practitioner" };
                let by = if *by { "sam" } else { "pat" };
                let value = serde_json::json!({"at": "2026-11-21T09:00:00Z", "by": by});
                json::put_in_map(&mut tx, "signOff", side, &value).map_err(|_| automerge::AutomergeError::Fail)
            }
            (_, Edit::Unsign { side }) => match tx.get(ROOT, "signOff") {
                Ok(Some((Value::Object(ObjType::Map), id))) => {
                    tx.delete(&id, if *side { "observer" } else { "practitioner" })
                }
                _ => Ok(()),
            },
            _ => Ok(()),
        };
        tx.commit();
    }
}

fn to_scalar(value: &Scalar) -> ScalarValue {
    match value {
        Scalar::Text(s) => ScalarValue::Str(s.as_str().into()),
        Scalar::Int(i) => ScalarValue::Int(*i),
        Scalar::Float(f) => ScalarValue::F64(*f),
        Scalar::Bool(b) => ScalarValue::Boolean(*b),
        Scalar::Null => ScalarValue::Null,
        Scalar::Bytes(b) => ScalarValue::Bytes(b.clone()),
    }
}

fn object_kind(kind: u8) -> ObjType {
    match kind {
        0 => ObjType::Map,
        1 => ObjType::List,
        _ => ObjType::Text,
    }
}

fn viewer(who: u8) -> Viewer {
    let (user_id, role, line) = match who % 4 {
        0 => ("sam", Role::Supervisor, vec![]),
        1 => ("pat", Role::Practitioner, vec![]),
        2 => ("lee", Role::Manager, vec![LineGrant { subject_id: "pat".into(), from: "2000-01-01".into(), to: None }]),
        _ => ("eve", Role::Practitioner, vec![]),
    };
    Viewer { user_id: user_id.into(), role, line, team: None }
}

fn base(draft: bool) -> Automerge {
    let record = serde_json::json!({
        "type": "observation", "schemaVersion": 1, "practitionerId": "pat", "observerId": "sam",
        "observedAt": "2026-11-20T10:00:00Z", "setting": "home-visit", "framework": "kss-cf-2018",
        "components": ["kss-cf-2018/1"], "notes": "the visit", "feedback": "good", "reflection": "",
        "consent": {"given": true, "by": "mother", "how": "verbally"},
        "judgements": {}, "actions": [], "status": if draft { "draft" } else { "shared" }, "signOff": {},
    });
    let mut doc = Automerge::new();
    let mut tx = doc.transaction();
    json::put_object(&mut tx, &record).unwrap();
    tx.commit();
    doc
}

#[test]
fn client_edits_through_the_checked_receive_path() {
    let catalog = Catalog::shipped();
    let inputs = (
        any::<bool>(),
        proptest::collection::vec((any::<usize>(), edit()), 0..4),
        any::<u8>(),
        proptest::collection::vec((any::<usize>(), edit()), 1..6),
        proptest::option::of((any::<usize>(), any::<u8>())),
    );
    fuzz("checked receive", 15_000, inputs, |(draft, earlier, who, edits, corrupt)| {
        // The server holds a record (with some accepted history); a client holding the same
        // history edits it and sends a sync message, perhaps corrupted on the way.
        let mut stored = base(draft);
        apply(&mut stored, &earlier);
        let Some(before) = Stored::of(&stored, &catalog) else { return Ok(()) };
        if Record::parse(&before.json, &catalog).is_err() {
            return Ok(()); // the server would never have accepted that history
        }
        let mut client = stored.clone();
        apply(&mut client, &edits);
        let mut server = DocSync::new(stored);
        let heads_before = server.heads();
        // The sync message that carries the client's new changes, as a client sends it once
        // the server has said what it has.
        let mut data = changes_message(&client, &heads_before);
        if let Some((at, byte)) = corrupt
            && !data.is_empty()
        {
            let at = at % data.len();
            data[at] ^= byte | 1;
        }
        let Ok(staged) = server.stage(&"client", SyncKind::Sync, &data) else { return Ok(()) };
        let viewer = viewer(who);
        let verdict = match staged.verdict() {
            Some(verdict) => verdict.map(|()| None),
            None => {
                let (metadata, changes) = (staged.new_change_metadata(), staged.new_changes());
                let proposal = Proposal {
                    viewer: &viewer,
                    today: "2026-11-29",
                    stored: Some(&before),
                    before_heads: &heads_before,
                    after: staged.after(),
                    changes: &changes,
                    metadata: &metadata,
                };
                judge(&proposal, &catalog).map(Some)
            }
        };
        match verdict {
            Ok(judgement) => {
                server.accept(staged);
                let now = json::to_json(server.doc());
                prop_assert!(Record::parse(&now, &catalog).is_ok(), "the server accepted an invalid record: {now}");
                if let Some(judgement) = judgement {
                    // The record judged, read field by field, is the document, read whole.
                    prop_assert_eq!(&judgement.stored.json, &now);
                }
            }
            Err(refusal) => {
                server.refuse(staged, refusal.clone());
                prop_assert_eq!(server.heads(), heads_before, "a refusal changed the document: {}", refusal);
                let detail = refusal.audit_detail().to_string();
                prop_assert!(!detail.contains("Mother"), "client text in the audit detail: {}", detail);
            }
        }
        Ok(())
    });
}
