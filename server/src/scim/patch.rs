//! PATCH (RFC 7644 §3.5.2) applied to a resource's JSON as identity providers send it: `op`
//! in any case (Entra ID sends `Add`, `Replace`, `Remove`); operations without a `path` whose
//! value holds several attributes, some named by their schema's URN; paths into the enterprise
//! extension (`urn:…:enterprise:2.0:User:manager`); value filters on multi-valued attributes
//! (`emails[type eq "work"].value`, `members[value eq "…"]`); and `Remove` of the members
//! listed in `value`. The handler then reads the patched JSON as it reads a PUT, so both take
//! one path into Fieldbook.

use serde::Deserialize;
use serde_json::{Map, Value};

use super::error::ScimError;
use super::filter::{Equals, parse_filter};

#[derive(Debug, Deserialize)]
struct PatchRequest {
    #[serde(rename = "Operations", alias = "operations")]
    operations: Vec<Operation>,
}

#[derive(Debug, Deserialize)]
struct Operation {
    op: String,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    value: Option<Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Add,
    Replace,
    Remove,
}

/// Where an operation writes: in the resource or one of its extensions (by URN), an
/// attribute, optionally a filter on its values and a sub-attribute.
#[derive(Debug)]
struct Path {
    extension: Option<String>,
    attribute: String,
    filter: Option<Equals>,
    sub: Option<String>,
}

/// Applies a PatchOp body to `resource`. `core` is the resource's own schema URN (a path may
/// be qualified by it); `extensions` the extension URNs its attributes may sit under.
pub fn apply(resource: &mut Value, body: &Value, core: &str, extensions: &[&str]) -> Result<(), ScimError> {
    let request: PatchRequest = serde_json::from_value(body.clone())
        .map_err(|e| ScimError::bad("invalidSyntax", format!("not a PatchOp request: {e}")))?;
    for operation in request.operations {
        let op = match operation.op.to_ascii_lowercase().as_str() {
            "add" => Op::Add,
            "replace" => Op::Replace,
            "remove" => Op::Remove,
            other => return Err(ScimError::bad("invalidSyntax", format!("unknown op {other:?}"))),
        };
        match operation.path.as_deref().map(str::trim).filter(|p| !p.is_empty()) {
            Some(path) => {
                let path = parse_path(path, core, extensions)?;
                apply_one(resource, op, &path, operation.value)?;
            }
            None if op == Op::Remove => return Err(ScimError::bad("noTarget", "a remove needs a path")),
            None => {
                let Some(Value::Object(values)) = operation.value else {
                    return Err(ScimError::bad("invalidValue", "an operation without a path needs an object value"));
                };
                for (key, value) in values {
                    match extensions.iter().find(|urn| urn.eq_ignore_ascii_case(&key)) {
                        // `{"urn:…:enterprise:2.0:User": {"employeeNumber": "…"}}`
                        Some(urn) => {
                            let Value::Object(inner) = value else {
                                return Err(ScimError::bad("invalidValue", format!("{key} must be an object")));
                            };
                            for (attribute, value) in inner {
                                let path = parse_path(&format!("{urn}:{attribute}"), core, extensions)?;
                                apply_one(resource, op, &path, Some(value))?;
                            }
                        }
                        None => apply_one(resource, op, &parse_path(&key, core, extensions)?, Some(value))?,
                    }
                }
            }
        }
    }
    Ok(())
}

fn parse_path(path: &str, core: &str, extensions: &[&str]) -> Result<Path, ScimError> {
    let bad = || ScimError::bad("invalidPath", format!("cannot read the path {path:?}"));
    let qualified = |urn: &str| {
        path.get(..urn.len()).filter(|p| p.eq_ignore_ascii_case(urn)).and_then(|_| path[urn.len()..].strip_prefix(':'))
    };
    let (extension, rest) = match extensions.iter().find_map(|urn| qualified(urn).map(|rest| (urn, rest))) {
        Some((urn, rest)) => (Some((*urn).to_owned()), rest),
        None => (None, qualified(core).unwrap_or(path)),
    };
    let (attribute, filter, sub) = match rest.split_once('[') {
        Some((attribute, filtered)) => {
            let (filter, after) = filtered.split_once(']').ok_or_else(bad)?;
            let sub = match after {
                "" => None,
                after => Some(after.strip_prefix('.').ok_or_else(bad)?.to_owned()),
            };
            let filter = parse_filter(filter, &["value", "type", "display", "primary"]).map_err(|_| bad())?;
            (attribute, Some(filter), sub)
        }
        None => match rest.split_once('.') {
            Some((attribute, sub)) => (attribute, None, Some(sub.to_owned())),
            None => (rest, None, None),
        },
    };
    if attribute.is_empty() || attribute.contains(char::is_whitespace) {
        return Err(bad());
    }
    Ok(Path { extension, attribute: attribute.to_owned(), filter, sub })
}

/// The key of `object` that names `name` (SCIM attribute names ignore case), or `name`.
fn key_in(object: &Map<String, Value>, name: &str) -> String {
    object.keys().find(|k| k.eq_ignore_ascii_case(name)).cloned().unwrap_or_else(|| name.to_owned())
}

fn object_at<'v>(value: &'v mut Value, key: &str) -> Result<&'v mut Map<String, Value>, ScimError> {
    let Value::Object(object) = value else {
        return Err(ScimError::bad("invalidPath", format!("{key} is not an object")));
    };
    let key = key_in(object, key);
    let entry = object.entry(key.clone()).or_insert_with(|| Value::Object(Map::new()));
    if !entry.is_object() {
        *entry = Value::Object(Map::new());
    }
    Ok(entry.as_object_mut().expect("made an object"))
}

/// Whether a value of a multi-valued attribute matches `filter` (`value eq "x"`, `type eq "work"`).
fn matches(item: &Value, filter: &Equals) -> bool {
    let Value::Object(item) = item else { return false };
    let field = item.get(&key_in(item, &filter.attribute));
    match field {
        Some(Value::String(s)) => s == &filter.value,
        Some(Value::Bool(b)) => filter.value.eq_ignore_ascii_case(&b.to_string()),
        _ => false,
    }
}

/// Two values of a multi-valued attribute are the same one if their `value`s are equal.
fn same_item(a: &Value, b: &Value) -> bool {
    match (a.get("value"), b.get("value")) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

fn apply_one(resource: &mut Value, op: Op, path: &Path, value: Option<Value>) -> Result<(), ScimError> {
    let container = match &path.extension {
        Some(urn) => object_at(resource, urn)?,
        None => resource.as_object_mut().ok_or_else(|| ScimError::bad("invalidSyntax", "not an object"))?,
    };
    let key = key_in(container, &path.attribute);
    let needs_value = || ScimError::bad("invalidValue", format!("{} needs a value", path.attribute));
    match (&path.filter, &path.sub, op) {
        (None, None, Op::Remove) => match (container.get_mut(&key), value) {
            // Entra ID removes members by listing them in `value`.
            (Some(Value::Array(items)), Some(Value::Array(gone))) => {
                items.retain(|i| !gone.iter().any(|g| same_item(i, g)))
            }
            _ => {
                container.remove(&key);
            }
        },
        (None, None, Op::Add) => {
            let value = value.ok_or_else(needs_value)?;
            match (container.get_mut(&key), value) {
                (Some(Value::Array(items)), Value::Array(new)) => {
                    for item in new {
                        if !items.iter().any(|i| same_item(i, &item)) {
                            items.push(item);
                        }
                    }
                }
                (_, value) => {
                    container.insert(key, value);
                }
            }
        }
        (None, None, Op::Replace) => {
            container.insert(key, value.ok_or_else(needs_value)?);
        }
        (None, Some(sub), Op::Remove) => {
            if let Some(Value::Object(inner)) = container.get_mut(&key) {
                let sub = key_in(inner, sub);
                inner.remove(&sub);
            }
        }
        (None, Some(sub), _) => {
            let value = value.ok_or_else(needs_value)?;
            let target = container.entry(key).or_insert_with(|| Value::Object(Map::new()));
            if !target.is_object() {
                *target = Value::Object(Map::new());
            }
            let inner = target.as_object_mut().expect("made an object");
            let sub = key_in(inner, sub);
            inner.insert(sub, value);
        }
        (Some(filter), sub, op) => {
            let items = container.entry(key).or_insert_with(|| Value::Array(Vec::new()));
            if !items.is_array() {
                *items = Value::Array(Vec::new());
            }
            let items = items.as_array_mut().expect("made an array");
            match (sub, op) {
                (None, Op::Remove) => items.retain(|i| !matches(i, filter)),
                (Some(sub), Op::Remove) => {
                    for item in items.iter_mut().filter(|i| matches(i, filter)) {
                        if let Value::Object(item) = item {
                            let sub = key_in(item, sub);
                            item.remove(&sub);
                        }
                    }
                }
                (sub, _) => {
                    let value = value.ok_or_else(needs_value)?;
                    if !items.iter().any(|i| matches(i, filter)) {
                        let mut item = Map::new();
                        item.insert(filter.attribute.clone(), Value::String(filter.value.clone()));
                        items.push(Value::Object(item));
                    }
                    for item in items.iter_mut().filter(|i| matches(i, filter)) {
                        let Value::Object(item) = item else { continue };
                        match (sub, &value) {
                            (Some(sub), value) => {
                                let sub = key_in(item, sub);
                                item.insert(sub, value.clone());
                            }
                            (None, Value::Object(fields)) => {
                                for (k, v) in fields {
                                    let k = key_in(item, k);
                                    item.insert(k, v.clone());
                                }
                            }
                            (None, _) => {
                                return Err(ScimError::bad("invalidValue", "a filtered value needs an object"));
                            }
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const PATCH_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
    const CORE: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
    const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

    fn patched(resource: Value, operations: Value) -> Value {
        let mut resource = resource;
        apply(&mut resource, &json!({"schemas": [PATCH_SCHEMA], "Operations": operations}), CORE, &[ENTERPRISE])
            .unwrap();
        resource
    }

    #[test]
    fn entra_id_requests_apply() {
        let user = json!({"userName": "pat@x", "active": true, "name": {"formatted": "Pat"}, "emails": []});
        // Capitalised ops, `active` as a string, a qualified path, a filtered multi-valued path.
        let after = patched(
            user.clone(),
            json!([
                {"op": "Replace", "path": "active", "value": "False"},
                {"op": "Add", "path": format!("{ENTERPRISE}:manager"), "value": "sam"},
                {"op": "Replace", "path": "name.familyName", "value": "Reid"},
                {"op": "Add", "path": "emails[type eq \"work\"].value", "value": "pat@council.example"},
                {"op": "Replace", "path": format!("{CORE}:userName"), "value": "pat.reid@x"},
            ]),
        );
        assert_eq!(after["active"], "False");
        assert_eq!(after[ENTERPRISE]["manager"], "sam");
        assert_eq!(after["name"], json!({"formatted": "Pat", "familyName": "Reid"}));
        assert_eq!(after["emails"], json!([{"type": "work", "value": "pat@council.example"}]));
        assert_eq!(after["userName"], "pat.reid@x");
        // Without a path: several attributes, one under its extension's URN.
        let after = patched(
            user,
            json!([{"op": "replace", "value": {
                "displayName": "Pat Reid", "ACTIVE": false,
                ENTERPRISE: {"employeeNumber": "E1"},
                format!("{ENTERPRISE}:department"): "Children's services",
            }}]),
        );
        assert_eq!(after["displayName"], "Pat Reid");
        assert_eq!(after["active"], false, "attribute names ignore case");
        assert_eq!(after[ENTERPRISE], json!({"employeeNumber": "E1", "department": "Children's services"}));
    }

    #[test]
    fn members_are_added_once_and_removed_by_value_or_filter() {
        let group = json!({"displayName": "East", "members": [{"value": "pat"}]});
        let group =
            patched(group, json!([{"op": "Add", "path": "members", "value": [{"value": "pat"}, {"value": "kim"}]}]));
        assert_eq!(group["members"], json!([{"value": "pat"}, {"value": "kim"}]));
        let group = patched(group, json!([{"op": "Remove", "path": "members", "value": [{"value": "pat"}]}]));
        assert_eq!(group["members"], json!([{"value": "kim"}]));
        let group = patched(group, json!([{"op": "remove", "path": "members[value eq \"kim\"]"}]));
        assert_eq!(group["members"], json!([]));
    }

    #[test]
    fn nonsense_is_refused() {
        let mut user = json!({"userName": "pat"});
        for operations in [
            json!([{"op": "move", "path": "userName", "value": "x"}]),
            json!([{"op": "remove"}]),
            json!([{"op": "add", "value": "not an object"}]),
            json!([{"op": "add", "path": "emails[type co \"w\"].value", "value": "x"}]),
            json!("not a list"),
        ] {
            let body = json!({"Operations": operations});
            assert!(apply(&mut user, &body, CORE, &[ENTERPRISE]).is_err(), "{body}");
        }
    }
}
