//! A sign-off covers the record as its signer saw it. Once the observer signs, only the
//! practitioner's own fields and the sign-offs may change; once the practitioner signs,
//! only the sign-offs (and the status catching up). To change anything else a signer
//! first withdraws their sign-off — deletes it, an explicit change the other party sees.
//!
//! Two checks make that hold whatever order changes arrive in:
//! - a write to a field a signature covers is refused while that signature is in force for
//!   the writing change: the server's copy, together with what the change's author had seen
//!   when they made it, holds the signature ([`check_covered_writes`]);
//! - a new signature is refused if a field it covers reads differently in the record as the
//!   signer saw it (their signing change and everything before it) than in the record as
//!   it would now stand ([`check_new_signatures`]).

use std::collections::HashMap;

use automerge::{Automerge, Change, ChangeHash, ChangeMetadata, ObjId as ExId, ObjType, Prop, ROOT, ReadDoc, Value};
use serde_json::Value as Json;

use super::writes::{Write, field_of};
use crate::json::field_json_at;
use crate::records::{FieldPath, Side, schema_name};
use crate::refusal::{Refusal, rule};

/// Whether `side`'s signature covers the top-level `field`.
pub fn covers(side: Side, field: &str) -> bool {
    let open = match side {
        Side::Observer => &["reflection", "response", "familyVoice", "signOff", "status"][..],
        Side::Practitioner => &["signOff", "status"][..],
    };
    !open.contains(&field)
}

/// Whether the record's JSON holds `side`'s signature.
pub fn signed(json: &Json, side: Side) -> bool {
    json.get("signOff").and_then(|s| s.get(side.as_str())).is_some_and(|v| !v.is_null())
}

/// Refuses writes to fields covered by a signature in force for the change that makes them.
/// Only signatures the record holds before or after the message can be in force: one made
/// and withdrawn within a single message never counted.
pub fn check_covered_writes(
    after: &Automerge,
    before_heads: &[ChangeHash],
    (before_json, after_json): (&Json, &Json),
    writes: &[Write],
    changes: &[Change],
    signer_is_sender: impl Fn(Side) -> bool,
) -> Result<(), Refusal> {
    let sides: Vec<Side> =
        Side::BOTH.into_iter().filter(|s| signed(before_json, *s) || signed(after_json, *s)).collect();
    if sides.is_empty() {
        return Ok(());
    }
    let mut in_force: HashMap<(usize, Side), bool> = HashMap::new();
    for write in writes {
        let Some(Prop::Map(top)) = write.path.first() else { continue };
        for &side in sides.iter().filter(|side| covers(**side, top)) {
            let force = *in_force.entry((write.change, side)).or_insert_with(|| {
                let mut heads = before_heads.to_vec();
                heads.extend(changes[write.change].deps().iter().copied());
                signed_at(after, &heads, side)
            });
            if force {
                let at = field_of(&write.path);
                let message = if signer_is_sender(side) {
                    format!("{} is covered by your sign-off; withdraw your sign-off first to change it", at.exact())
                } else {
                    format!(
                        "{} is covered by the {side}'s sign-off; it can change only after they withdraw it",
                        at.exact()
                    )
                };
                return Err(Refusal::new(rule::SIGNED, message).at(at));
            }
        }
    }
    Ok(())
}

/// The signatures the message adds (or makes anew), each checked to cover the record as it
/// would stand.
pub fn check_new_signatures(
    after: &Automerge,
    before_heads: &[ChangeHash],
    after_json: &Json,
    new_changes: &[ChangeMetadata<'_>],
) -> Result<Vec<Side>, Refusal> {
    let mut signed_now = Vec::new();
    for side in Side::BOTH {
        // New if the signature object is not the one the record held before the message
        // (the same words signed again are a new signature too).
        if !signed(after_json, side) || signature_at(after, side, None) == signature_at(after, side, Some(before_heads))
        {
            continue;
        }
        // Usually the message itself signs; a signature that surfaces from older changes (a
        // concurrent one, uncovered by a withdrawal of another) is checked the same way.
        let mut heads = signing_changes(after, side, new_changes);
        if heads.is_empty() {
            heads = signing_changes(after, side, &after.get_changes_meta(&[]));
        }
        if !heads.is_empty() {
            let mut fields: Vec<String> = after.keys_at(ROOT, &heads).collect();
            fields.extend(after_json.as_object().into_iter().flat_map(|m| m.keys().cloned()));
            fields.sort();
            fields.dedup();
            for field in fields.iter().filter(|f| covers(side, f)) {
                if field_json_at(after, field, &heads).as_ref() != after_json.get(field) {
                    let at = match schema_name(field) {
                        Some(name) => FieldPath::field(name),
                        None => FieldPath::default().entry(field),
                    };
                    let message = format!(
                        "the {side}'s sign-off was made without the latest change to {}; \
                         read the record again and sign off again",
                        at.exact()
                    );
                    return Err(Refusal::new(rule::SIGNATURE_OUT_OF_DATE, message).at(at));
                }
            }
        }
        signed_now.push(side);
    }
    Ok(signed_now)
}

/// The signatures `before` holds that the message withdraws: deleted by it (even if it signs
/// again afterwards), or gone after it.
pub fn withdrawn(before_json: &Json, after_json: &Json, writes: &[Write]) -> Vec<Side> {
    Side::BOTH
        .into_iter()
        .filter(|side| signed(before_json, *side))
        .filter(|side| {
            !signed(after_json, *side)
                || writes.iter().any(|w| {
                    w.removes
                        && matches!(&w.path[..], [Prop::Map(s), Prop::Map(k)] if s == "signOff" && k == side.as_str())
                })
        })
        .collect()
}

/// The object holding `side`'s signature, now or at `heads`.
fn signature_at(doc: &Automerge, side: Side, heads: Option<&[ChangeHash]>) -> Option<ExId> {
    let get = |obj: &ExId, key: &str| match heads {
        None => doc.get(obj, key),
        Some(heads) => doc.get_at(obj, key, heads),
    };
    let Ok(Some((Value::Object(ObjType::Map), sign_off))) = get(&ROOT, "signOff") else { return None };
    match get(&sign_off, side.as_str()) {
        Ok(Some((_, id))) => Some(id),
        _ => None,
    }
}

fn signed_at(doc: &Automerge, heads: &[ChangeHash], side: Side) -> bool {
    let Ok(Some((Value::Object(ObjType::Map), sign_off))) = doc.get_at(ROOT, "signOff", heads) else { return false };
    matches!(doc.get_at(&sign_off, side.as_str(), heads), Ok(Some((value, _))) if !value.is_null())
}

/// The new changes that wrote `side`'s signature as it now stands: the one that made its
/// map and those that wrote its `at` and `by`.
fn signing_changes(doc: &Automerge, side: Side, new_changes: &[ChangeMetadata<'_>]) -> Vec<ChangeHash> {
    let Ok(Some((Value::Object(ObjType::Map), sign_off))) = doc.get(ROOT, "signOff") else { return Vec::new() };
    let Ok(Some((_, signature))) = doc.get(&sign_off, side.as_str()) else { return Vec::new() };
    let mut ops = vec![signature.clone()];
    for key in ["at", "by"] {
        if let Ok(Some((_, id))) = doc.get(&signature, key) {
            ops.push(id);
        }
    }
    let mut heads: Vec<ChangeHash> = ops
        .iter()
        .filter_map(|op| match op {
            ExId::Id(counter, actor, _) => new_changes
                .iter()
                .find(|c| *c.actor == *actor && c.start_op <= *counter && *counter <= c.max_op)
                .map(|c| c.hash),
            ExId::Root => None,
        })
        .collect();
    heads.sort();
    heads.dedup();
    heads
}
