//! JSON in and out of automerge documents, the way JavaScript clients write them: objects
//! become maps, arrays lists, and strings collaborative Text (JS automerge's default).

use automerge::transaction::Transactable;
use automerge::{ChangeHash, ObjId, ObjType, ROOT, ReadDoc, ScalarValue, Value};
use serde_json::Value as Json;

#[derive(Debug, thiserror::Error)]
pub enum JsonError {
    #[error("a document must be a JSON object at the top level")]
    NotAnObject,
    #[error("path `{0}` is empty or goes through something that is not a map or list")]
    BadPath(String),
    #[error("number {0} is not representable")]
    BadNumber(serde_json::Number),
    #[error(transparent)]
    Automerge(#[from] automerge::AutomergeError),
}

/// The whole document as JSON (Text and plain strings both become JSON strings).
pub fn to_json(doc: &impl ReadDoc) -> Json {
    object_json(doc, &ROOT, ObjType::Map, None)
}

/// One top-level field as JSON, `None` if absent: costs what that field holds, not the
/// whole document.
pub fn field_json(doc: &impl ReadDoc, key: &str) -> Option<Json> {
    let (value, id) = doc.get(ROOT, key).ok()??;
    Some(value_json(doc, value, &id, None))
}

/// One top-level field as it was at `heads` (what someone who had seen exactly those
/// changes saw), `None` if absent then.
pub fn field_json_at(doc: &impl ReadDoc, key: &str, heads: &[ChangeHash]) -> Option<Json> {
    let (value, id) = doc.get_at(ROOT, key, heads).ok()??;
    Some(value_json(doc, value, &id, Some(heads)))
}

fn value_json(doc: &impl ReadDoc, value: Value<'_>, id: &ObjId, at: Option<&[ChangeHash]>) -> Json {
    match value {
        Value::Object(kind) => object_json(doc, id, kind, at),
        Value::Scalar(scalar) => scalar_json(&scalar),
    }
}

fn object_json(doc: &impl ReadDoc, obj: &ObjId, kind: ObjType, at: Option<&[ChangeHash]>) -> Json {
    match kind {
        ObjType::Map | ObjType::Table => {
            let entry = |i: automerge::iter::MapRangeItem<'_>| {
                let id = i.id();
                (i.key.into_owned(), Value::from(i.value), id)
            };
            let entries: Vec<(String, Value<'static>, ObjId)> = match at {
                None => doc.map_range(obj, ..).map(entry).collect(),
                Some(heads) => doc.map_range_at(obj, .., heads).map(entry).collect(),
            };
            Json::Object(entries.into_iter().map(|(k, v, id)| (k, value_json(doc, v, &id, at))).collect())
        }
        ObjType::List => {
            let item = |i: automerge::iter::ListRangeItem<'_>| {
                let id = i.id();
                (Value::from(i.value), id)
            };
            let items: Vec<(Value<'static>, ObjId)> = match at {
                None => doc.list_range(obj, ..).map(item).collect(),
                Some(heads) => doc.list_range_at(obj, .., heads).map(item).collect(),
            };
            Json::Array(items.into_iter().map(|(v, id)| value_json(doc, v, &id, at)).collect())
        }
        ObjType::Text => Json::String(
            match at {
                None => doc.text(obj),
                Some(heads) => doc.text_at(obj, heads),
            }
            .unwrap_or_default(),
        ),
    }
}

/// As automerge's own serialisation writes scalars (numbers, strings, booleans, null).
fn scalar_json(scalar: &ScalarValue) -> Json {
    serde_json::to_value(scalar).unwrap_or(Json::Null)
}

/// The string at `path` (map keys from the root), whether plain string or Text; `None` if
/// absent or not a string. Reads only that value, not the whole document.
pub fn string_at(doc: &impl ReadDoc, path: &[&str]) -> Option<String> {
    let (last, parents) = path.split_last()?;
    let mut obj = ROOT;
    for key in parents {
        match doc.get(&obj, *key).ok()?? {
            (Value::Object(ObjType::Map), id) => obj = id,
            _ => return None,
        }
    }
    match doc.get(&obj, *last).ok()?? {
        (Value::Scalar(s), _) => match s.as_ref() {
            ScalarValue::Str(s) => Some(s.to_string()),
            _ => None,
        },
        (Value::Object(ObjType::Text), id) => doc.text(&id).ok(),
        _ => None,
    }
}

/// Whether anything other than null is at `path` (map keys from the root).
pub fn is_set(doc: &impl ReadDoc, path: &[&str]) -> bool {
    let mut obj = ROOT;
    for (i, key) in path.iter().enumerate() {
        match doc.get(&obj, *key) {
            Ok(Some((Value::Scalar(s), _))) => return i + 1 == path.len() && !matches!(s.as_ref(), ScalarValue::Null),
            Ok(Some((Value::Object(_), id))) => obj = id,
            _ => return false,
        }
    }
    true
}

/// Writes every top-level key of `json` into the root map.
pub fn put_object(tx: &mut impl Transactable, json: &Json) -> Result<(), JsonError> {
    let Json::Object(map) = json else {
        return Err(JsonError::NotAnObject);
    };
    for (key, value) in map {
        put_map_value(tx, &ROOT, key, value)?;
    }
    Ok(())
}

/// Sets the value at a dotted path (`consent.given`, `actions.0.text`). Strings that
/// replace existing Text are merged with a text diff, so concurrent edits interleave.
pub fn set_path(tx: &mut impl Transactable, path: &str, value: &Json) -> Result<(), JsonError> {
    let bad = || JsonError::BadPath(path.to_owned());
    let segments: Vec<&str> = path.split('.').collect();
    let (last, parents) = segments.split_last().ok_or_else(bad)?;
    if last.is_empty() {
        return Err(bad());
    }
    let mut obj = ROOT;
    for segment in parents {
        let child = match tx.object_type(&obj).map_err(|_| bad())? {
            ObjType::Map | ObjType::Table => tx.get(&obj, *segment)?,
            ObjType::List => tx.get(&obj, segment.parse::<usize>().map_err(|_| bad())?)?,
            ObjType::Text => return Err(bad()),
        };
        obj = match child {
            Some((Value::Object(_), id)) => id,
            None if tx.object_type(&obj).is_ok_and(|t| t == ObjType::Map) => {
                tx.put_object(&obj, *segment, ObjType::Map)?
            }
            _ => return Err(bad()),
        };
    }
    match tx.object_type(&obj).map_err(|_| bad())? {
        ObjType::Map | ObjType::Table => {
            if let (Json::String(s), Some((Value::Object(ObjType::Text), text))) = (value, tx.get(&obj, *last)?) {
                tx.update_text(&text, s)?;
                return Ok(());
            }
            put_map_value(tx, &obj, last, value)
        }
        ObjType::List => {
            let index: usize = last.parse().map_err(|_| bad())?;
            if index > tx.length(&obj) {
                return Err(bad());
            }
            if index == tx.length(&obj) {
                insert_list_value(tx, &obj, index, value)
            } else {
                tx.delete(&obj, index)?;
                insert_list_value(tx, &obj, index, value)
            }
        }
        ObjType::Text => Err(bad()),
    }
}

/// Appends `value` to the list at `path` (a dotted path from the root), creating the list
/// if it is missing.
pub fn append(tx: &mut impl Transactable, path: &str, value: &Json) -> Result<(), JsonError> {
    let list = object_at(tx, path, ObjType::List)?;
    let end = tx.length(&list);
    insert_list_value(tx, &list, end, value)
}

/// Sets `key` (which may contain dots, like a component id) in the map at `path`.
pub fn put_in_map(tx: &mut impl Transactable, path: &str, key: &str, value: &Json) -> Result<(), JsonError> {
    let map = object_at(tx, path, ObjType::Map)?;
    put_map_value(tx, &map, key, value)
}

/// The object at a dotted path, creating it (as `kind`) if the last segment is missing.
fn object_at(tx: &mut impl Transactable, path: &str, kind: ObjType) -> Result<ObjId, JsonError> {
    let bad = || JsonError::BadPath(path.to_owned());
    let mut obj = ROOT;
    let segments: Vec<&str> = path.split('.').collect();
    for (i, segment) in segments.iter().enumerate() {
        let last = i == segments.len() - 1;
        let child = match tx.object_type(&obj).map_err(|_| bad())? {
            ObjType::List => tx.get(&obj, segment.parse::<usize>().map_err(|_| bad())?)?,
            ObjType::Text => return Err(bad()),
            _ => tx.get(&obj, *segment)?,
        };
        obj = match child {
            Some((Value::Object(_), id)) => id,
            None if tx.object_type(&obj).is_ok_and(|t| t == ObjType::Map) => {
                tx.put_object(&obj, *segment, if last { kind } else { ObjType::Map })?
            }
            _ => return Err(bad()),
        };
    }
    Ok(obj)
}

fn scalar(value: &Json) -> Result<Option<ScalarValue>, JsonError> {
    Ok(Some(match value {
        Json::Null => ScalarValue::Null,
        Json::Bool(b) => ScalarValue::Boolean(*b),
        Json::Number(n) => {
            if let Some(i) = n.as_i64() {
                ScalarValue::Int(i)
            } else if let Some(u) = n.as_u64() {
                ScalarValue::Uint(u)
            } else {
                ScalarValue::F64(n.as_f64().ok_or_else(|| JsonError::BadNumber(n.clone()))?)
            }
        }
        _ => return Ok(None),
    }))
}

/// Where a value goes: a key of a map or a position in a list.
#[derive(Clone, Copy)]
enum Place<'a> {
    Key(&'a str),
    Insert(usize),
}

fn put_map_value(tx: &mut impl Transactable, obj: &ObjId, key: &str, value: &Json) -> Result<(), JsonError> {
    put_value(tx, obj, Place::Key(key), value)
}

fn insert_list_value(tx: &mut impl Transactable, obj: &ObjId, index: usize, value: &Json) -> Result<(), JsonError> {
    put_value(tx, obj, Place::Insert(index), value)
}

fn put_value(tx: &mut impl Transactable, obj: &ObjId, place: Place<'_>, value: &Json) -> Result<(), JsonError> {
    if let Some(s) = scalar(value)? {
        match place {
            Place::Key(key) => tx.put(obj, key, s)?,
            Place::Insert(index) => tx.insert(obj, index, s)?,
        }
        return Ok(());
    }
    let kind = match value {
        Json::String(_) => ObjType::Text,
        Json::Array(_) => ObjType::List,
        _ => ObjType::Map,
    };
    let child = match place {
        Place::Key(key) => tx.put_object(obj, key, kind)?,
        Place::Insert(index) => tx.insert_object(obj, index, kind)?,
    };
    fill(tx, &child, value)
}

fn fill(tx: &mut impl Transactable, obj: &ObjId, value: &Json) -> Result<(), JsonError> {
    match value {
        Json::String(s) => tx.splice_text(obj, 0, 0, s)?,
        Json::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                insert_list_value(tx, obj, i, item)?;
            }
        }
        Json::Object(map) => {
            for (k, v) in map {
                put_map_value(tx, obj, k, v)?;
            }
        }
        _ => unreachable!("scalars are written directly"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::AutoCommit;
    use serde_json::json;

    #[test]
    fn json_round_trips_with_strings_as_text() {
        let input = json!({"type": "note", "n": 3, "f": 1.5, "ok": true, "list": ["a", {"b": null}], "m": {"k": "v"}});
        let mut doc = AutoCommit::new();
        put_object(&mut doc, &input).unwrap();
        assert_eq!(to_json(&doc), input);
        // The same as automerge's own serialisation, independently.
        assert_eq!(to_json(&doc), serde_json::to_value(automerge::AutoSerde::from(&doc)).unwrap());
        let before = doc.get_heads();
        set_path(&mut doc, "list.0", &json!("changed")).unwrap();
        assert_eq!(field_json(&doc, "list"), Some(json!(["changed", {"b": null}])));
        assert_eq!(field_json_at(&doc, "list", &before), Some(json!(["a", {"b": null}])));
        assert_eq!(field_json(&doc, "missing"), None);
        let (value, _) = doc.get(ROOT, "type").unwrap().unwrap();
        assert!(matches!(value, Value::Object(ObjType::Text)));
    }

    #[test]
    fn set_path_edits_nested_values_and_merges_text() {
        let mut doc = AutoCommit::new();
        put_object(&mut doc, &json!({"notes": "hello world", "consent": {}})).unwrap();
        let mut other = doc.fork();
        set_path(&mut doc, "notes", &json!("hello brave world")).unwrap();
        set_path(&mut other, "notes", &json!("hello world!")).unwrap();
        set_path(&mut doc, "consent.given", &json!(true)).unwrap();
        set_path(&mut doc, "new.deep", &json!("x")).unwrap();
        doc.merge(&mut other).unwrap();
        let out = to_json(&doc);
        assert_eq!(out["notes"], json!("hello brave world!"));
        assert_eq!(out["consent"]["given"], json!(true));
        assert_eq!(out["new"]["deep"], json!("x"));
        append(&mut doc, "actions", &json!({"id": "a1"})).unwrap();
        append(&mut doc, "actions", &json!({"id": "a2"})).unwrap();
        put_in_map(&mut doc, "judgements", "kss-cf-2018/6.1", &json!("met")).unwrap();
        let out = to_json(&doc);
        assert_eq!(out["actions"], json!([{"id": "a1"}, {"id": "a2"}]));
        assert_eq!(out["judgements"]["kss-cf-2018/6.1"], json!("met"));
        assert!(set_path(&mut doc, "", &json!(1)).is_err());
        assert!(set_path(&mut doc, "notes.x", &json!(1)).is_err());
    }
}
