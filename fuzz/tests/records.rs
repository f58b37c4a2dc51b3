//! Record validation: any JSON a client's document could read as — the schema's field names
//! with wrong shapes, odd values, extra fields — parses to a record or a clear error, never a
//! panic, and an error's audit form holds nothing the client wrote.

use fieldbook_fuzz::{client_text, fuzz};
use fieldbook_sync_core::access::RecordFacts;
use fieldbook_sync_core::frameworks::Catalog;
use fieldbook_sync_core::records::events::events;
use fieldbook_sync_core::{Record, Refusal};
use proptest::prelude::*;

static FIELDS: std::sync::LazyLock<Vec<&str>> = std::sync::LazyLock::new(fieldbook_fuzz::field_names);
use serde_json::{Map, Value, json};

fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-10i64..10).prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        client_text().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::vec((0..FIELDS.len(), inner), 0..6).prop_map(|entries| Value::Object(
                entries.into_iter().map(|(k, v)| (FIELDS[k].to_owned(), v)).collect()
            )),
        ]
    })
}

fn record() -> impl Strategy<Value = Value> {
    let kind = prop_oneof![Just(json!("observation")), Just(json!("development-plan")), value()];
    let version = prop_oneof![Just(json!(1)), value()];
    (kind, version, proptest::collection::vec((0..FIELDS.len(), value()), 0..12)).prop_map(|(kind, version, fields)| {
        let mut map = Map::new();
        // Mostly the required fields with valid values, so validation goes deep.
        for (k, v) in [
            ("practitionerId", "pat"),
            ("observerId", "sam"),
            ("ownerId", "pat"),
            ("supervisorId", "sam"),
            ("framework", "kss-cf-2018"),
            ("status", "shared"),
        ] {
            map.insert(k.to_owned(), json!(v));
        }
        for (k, v) in fields {
            map.insert(FIELDS[k].to_owned(), v);
        }
        map.insert("type".into(), kind);
        map.insert("schemaVersion".into(), version);
        Value::Object(map)
    })
}

#[test]
fn any_document_json_validates_or_says_why() {
    let catalog = Catalog::shipped();
    fuzz("record validation", 100_000, record(), |doc| {
        match Record::parse(&doc, &catalog) {
            Ok(record) => {
                let _ = RecordFacts::of(&record);
                let _ = events(None, &record);
                let _ = events(Some(&record), &record);
            }
            Err(e) => {
                let detail = Refusal::from(e).audit_detail().to_string();
                prop_assert!(!detail.contains("Mother"), "client text in the audit detail: {}", detail);
            }
        }
        Ok(())
    });
}
