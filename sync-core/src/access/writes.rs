//! Per-field write rules, checked on every incoming change: the server applies the change
//! to a scratch copy, diffs it against the stored copy (automerge patches) and checks every
//! changed path against what the sender's party may write.

use automerge::{Automerge, Prop};
use automerge::{PatchAction, Value as AmValue};
use serde_json::Value;

use super::Party;

/// Fixed once a record exists: changing them would move it to other people.
const IDENTITY: &[&str] = &["type", "schemaVersion", "practitionerId", "observerId", "ownerId", "supervisorId"];

/// Every top-level field the record types define (DOMAIN.md "Records").
const OBSERVATION_FIELDS: &[&str] = &[
    "type",
    "schemaVersion",
    "practitionerId",
    "observerId",
    "observedAt",
    "setting",
    "present",
    "purpose",
    "consent",
    "framework",
    "components",
    "notes",
    "strengths",
    "developmentAreas",
    "judgements",
    "feedback",
    "feedbackGivenAt",
    "reflection",
    "response",
    "familyVoice",
    "actions",
    "status",
    "signOff",
];
const PLAN_FIELDS: &[&str] = &[
    "type",
    "schemaVersion",
    "ownerId",
    "supervisorId",
    "framework",
    "period",
    "source",
    "gapAnalysis",
    "goals",
    "reviews",
    "status",
];

/// Fields a client adds beyond the schema belong to the record's author (the observer;
/// either party of a plan): the practitioner gets no way around their own fields.
fn writes_extensions(party: Party) -> bool {
    matches!(party, Party::Observer | Party::PlanOwner | Party::PlanSupervisor)
}

/// Subtrees each party may write. `*` matches any key or list index; a trailing `!` covers
/// the value at that path itself (put, insert, delete) but nothing beneath it.
fn writable(party: Party) -> &'static [&'static str] {
    match party {
        Party::Observer => &[
            "observedAt",
            "setting",
            "present",
            "purpose",
            "consent",
            "framework",
            "components",
            "notes",
            "strengths",
            "developmentAreas",
            "judgements",
            "feedback",
            "feedbackGivenAt",
            "actions",
            "status",
            "signOff/observer",
        ],
        // `status` only to record the final sign-off (see `practitioner_status`).
        Party::Practitioner => &["reflection", "response", "familyVoice", "signOff/practitioner", "status"],
        Party::PlanOwner => {
            &["gapAnalysis/*/self", "goals/*/status", "goals/*/completedAt", "goals/*/evidence", "goals/*/reflection"]
        }
        // Goals as a whole (`!`: adding, replacing or removing one) and every goal field
        // but the owner's reflection.
        Party::PlanSupervisor => &[
            "framework",
            "period",
            "source",
            "gapAnalysis/*/supervisor",
            "gapAnalysis/*/note",
            "goals/*!",
            "goals/*/id",
            "goals/*/title",
            "goals/*/components",
            "goals/*/successMeasure",
            "goals/*/targetDate",
            "goals/*/support",
            "goals/*/status",
            "goals/*/completedAt",
            "goals/*/evidence",
            "reviews",
            "status",
        ],
        Party::Line | Party::PrincipalSocialWorker | Party::None => &[],
    }
}

/// The two versions of a document one incoming message goes between.
pub struct WriteCheck<'a> {
    pub party: Party,
    pub observation: bool,
    pub before: &'a Automerge,
    pub after: &'a Automerge,
    pub before_json: &'a Value,
    pub after_json: &'a Value,
}

/// Accepts the change only if every path it touches is one `party` may write. A new
/// document may be created by its observer (or a plan's owner or supervisor); the creator
/// may then lay out the other party's fields, but only empty. Returns the top-level fields
/// the change touched (for the audit trail).
pub fn check_write(c: &WriteCheck<'_>) -> Result<Vec<String>, String> {
    let creating = c.before.get_heads().is_empty();
    if creating {
        let may_create = match c.party {
            Party::Observer => c.observation,
            Party::PlanOwner | Party::PlanSupervisor => !c.observation,
            _ => false,
        };
        if !may_create {
            return Err(if c.observation {
                "only the observer named in `observerId` may create an observation".into()
            } else {
                "only the owner or supervisor named in a plan may create it".into()
            });
        }
    }
    let patches = c.after.diff(&c.before.get_heads(), &c.after.get_heads());
    let mut fields = std::collections::BTreeSet::new();
    for patch in patches {
        let mut path: Vec<Prop> = patch.path.iter().map(|(_, prop)| prop.clone()).collect();
        let mut puts_object = false;
        match patch.action {
            PatchAction::PutMap { key, value, .. } => {
                puts_object = matches!(value.0, AmValue::Object(_));
                path.push(Prop::Map(key));
            }
            PatchAction::PutSeq { index, value, .. } => {
                puts_object = matches!(value.0, AmValue::Object(_));
                path.push(Prop::Seq(index));
            }
            PatchAction::Insert { index, values } => {
                puts_object = values.iter().all(|(v, _, _)| matches!(v, AmValue::Object(_)));
                path.push(Prop::Seq(index));
            }
            PatchAction::DeleteMap { key } => path.push(Prop::Map(key)),
            PatchAction::DeleteSeq { index, .. } => path.push(Prop::Seq(index)),
            PatchAction::Increment { prop, .. } | PatchAction::Conflict { prop } => path.push(prop),
            PatchAction::SpliceText { .. } | PatchAction::Mark { .. } => {}
        }
        if !may_write(c, creating, &path, puts_object) {
            return Err(format!("the {} may not change {}", c.party.describe(), display(&path)));
        }
        if let Some(Prop::Map(field)) = path.first() {
            fields.insert(field.clone());
        }
    }
    Ok(fields.into_iter().collect())
}

fn may_write(c: &WriteCheck<'_>, creating: bool, path: &[Prop], puts_object: bool) -> bool {
    let Some(Prop::Map(top)) = path.first() else { return false };
    if IDENTITY.contains(&top.as_str()) {
        return creating && path.len() == 1;
    }
    let schema = if c.observation { OBSERVATION_FIELDS } else { PLAN_FIELDS };
    if !schema.contains(&top.as_str()) {
        return writes_extensions(c.party);
    }
    let rules = writable(c.party);
    let covered = rules.iter().any(|rule| matches(rule, path, false));
    if covered {
        return !(c.party == Party::Practitioner && top == "status") || practitioner_status(c.after_json);
    }
    // An empty container on the way to something writable (a new `gapAnalysis` entry, say);
    // what goes inside is checked path by path.
    let new_container =
        puts_object && lookup(c.before_json, path).is_none() && rules.iter().any(|rule| matches(rule, path, true));
    // At creation the other party's fields may be laid out empty.
    let empty_at_creation = creating && lookup(c.after_json, path).is_none_or(is_empty);
    new_container || empty_at_creation
}

/// The practitioner writes `status` only as the last sign-off: to `signed-off`, with both
/// signatures in place.
fn practitioner_status(after: &Value) -> bool {
    let signed = |party: &str| after.pointer(&format!("/signOff/{party}")).is_some_and(|v| !v.is_null());
    after.get("status").and_then(Value::as_str) == Some("signed-off") && signed("observer") && signed("practitioner")
}

/// Whether `rule` covers `path` (the rule is a prefix of it), or with `beyond`, whether
/// `path` is a proper prefix of the rule.
fn matches(rule: &str, path: &[Prop], beyond: bool) -> bool {
    let (rule, exact) = match rule.strip_suffix('!') {
        Some(rule) => (rule, true),
        None => (rule, false),
    };
    let segments: Vec<&str> = rule.split('/').collect();
    if exact && !beyond && segments.len() != path.len() {
        return false;
    }
    let (short, long) = if beyond { (path.len(), segments.len()) } else { (segments.len(), path.len()) };
    if short > long || (beyond && short == long) {
        return false;
    }
    segments.iter().zip(path).all(|(segment, prop)| match prop {
        Prop::Map(key) => *segment == "*" || segment == key,
        Prop::Seq(_) => *segment == "*",
    })
}

fn lookup<'v>(json: &'v Value, path: &[Prop]) -> Option<&'v Value> {
    path.iter().try_fold(json, |value, prop| match prop {
        Prop::Map(key) => value.get(key.as_str()),
        Prop::Seq(index) => value.get(*index),
    })
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

/// `signOff.observer`, `goals[2].status`: the form record errors use.
fn display(path: &[Prop]) -> String {
    let mut out = String::new();
    for prop in path {
        match prop {
            Prop::Map(key) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Prop::Seq(index) => out.push_str(&format!("[{index}]")),
        }
    }
    out
}
