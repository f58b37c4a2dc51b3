//! Per-field write rules, checked on every incoming change: the server applies the change
//! to a scratch copy, finds the path every operation of it writes to, and checks each path
//! against what the sender's party may write.

use std::collections::{BTreeSet, HashMap};

use automerge::legacy::{Key, ObjectId, OpId, OpType};
use automerge::{Automerge, Change, Prop, ReadDoc};
use serde_json::Value;

use super::{Party, Role};
use crate::records::{FieldPath, Record, RecordKind};
use crate::refusal::{Refusal, rule};

/// Fixed once a record exists: changing them would move it to other people.
const IDENTITY: &[&str] =
    &["type", "schemaVersion", "practitionerId", "observerId", "ownerId", "supervisorId", "facilitatorId", "raisedBy"];

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
    "agreement",
];
const GROUP_SESSION_FIELDS: &[&str] = &[
    "type",
    "schemaVersion",
    "facilitatorId",
    "participantIds",
    "heldAt",
    "kind",
    "framework",
    "components",
    "themes",
    "summary",
    "actions",
    "reflections",
    "status",
    "closedAt",
];
const PRACTICE_THEME_FIELDS: &[&str] = &[
    "type",
    "schemaVersion",
    "raisedBy",
    "raisedAt",
    "team",
    "category",
    "framework",
    "components",
    "summary",
    "evidence",
    "responses",
    "status",
];

fn schema(kind: RecordKind) -> &'static [&'static str] {
    match kind {
        RecordKind::Observation => OBSERVATION_FIELDS,
        RecordKind::DevelopmentPlan => PLAN_FIELDS,
        RecordKind::GroupSession => GROUP_SESSION_FIELDS,
        RecordKind::PracticeTheme => PRACTICE_THEME_FIELDS,
    }
}

/// Fields a client adds beyond the schema belong to the record's author (the observer;
/// either party of a plan; the facilitator; the raiser): the others get no way around
/// their own fields.
fn writes_extensions(party: Party) -> bool {
    matches!(party, Party::Observer | Party::PlanOwner | Party::PlanSupervisor | Party::Facilitator | Party::Raiser)
}

/// Who leads group sessions and raises themes: not practitioners, who bring theirs to
/// supervision.
fn leads_practice(role: Role) -> bool {
    matches!(role, Role::Supervisor | Role::Manager | Role::PrincipalSocialWorker)
}

/// Subtrees each party may write. `*` matches any key or list index, `$me` the sender's
/// own user id; a trailing `!` covers the value at that path itself (put, insert, delete)
/// but nothing beneath it.
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
        Party::PlanOwner => &[
            "gapAnalysis/*/self",
            "goals/*/status",
            "goals/*/completedAt",
            "goals/*/evidence",
            "goals/*/reflection",
            "goals/*/resources",
            // Inside the supervisor's agreement: a draft has none (it is invalid), and a
            // closed plan takes no change.
            "agreement/owner",
        ],
        Party::PlanSupervisor => PLAN_SUPERVISOR,
        // Everything but the participants' reflections.
        Party::Facilitator => &[
            "participantIds",
            "heldAt",
            "kind",
            "framework",
            "components",
            "themes",
            "summary",
            "actions",
            "status",
            "closedAt",
        ],
        Party::Participant => &["reflections/$me"],
        Party::Raiser => &["raisedAt", "team", "category", "framework", "components", "summary", "evidence"],
        // `responses` in their own name only (see `check_responses`).
        Party::Responder => &["responses", "status"],
        Party::Line | Party::PrincipalSocialWorker | Party::Team | Party::None => &[],
    }
}

/// Where one operation of an incoming change writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    /// From the root; list positions are [`ANY_INDEX`].
    pub path: Vec<Prop>,
    /// The operation makes an object (a map, list or text) there.
    pub puts_object: bool,
    /// The operation deletes what is there.
    pub removes: bool,
    /// Which of the message's changes it belongs to.
    pub change: usize,
}

/// The places the operations of `changes` write to, found in `after` (the document with
/// them applied). Consecutive operations of one change on one list or text (typing) share
/// an entry, as do repeats of a place within a change.
pub fn writes_of(after: &Automerge, changes: &[Change]) -> Result<Vec<Write>, Refusal> {
    let mut paths = ObjectPaths::new(after);
    let mut out = Vec::new();
    for (index, change) in changes.iter().enumerate() {
        let mut seen: BTreeSet<(Vec<Prop>, bool, bool)> = BTreeSet::new();
        let mut previous: Option<(ObjectId, bool)> = None;
        for op in change.decode().operations {
            let puts_object = matches!(op.action, OpType::Make(_));
            let removes = matches!(op.action, OpType::Delete);
            if matches!(op.key, Key::Seq(_)) {
                if previous.as_ref().is_some_and(|(obj, made)| *obj == op.obj && *made == puts_object) {
                    continue;
                }
                previous = Some((op.obj.clone(), puts_object));
            } else {
                previous = None;
            }
            let mut path = paths.of(&op.obj)?;
            path.push(match &op.key {
                Key::Map(key) => Prop::Map(key.to_string()),
                Key::Seq(_) => Prop::Seq(ANY_INDEX),
            });
            if seen.insert((path.clone(), puts_object, removes)) {
                out.push(Write { path, puts_object, removes, change: index });
            }
        }
    }
    Ok(out)
}

/// The two versions of a record one incoming message goes between, and where it writes.
pub struct WriteCheck<'a> {
    pub party: Party,
    /// The sender, for rules about their own entries (`$me`).
    pub user_id: &'a str,
    pub role: Role,
    /// `YYYY-MM-DD`: what "in the future" means for dates in the record.
    pub today: &'a str,
    /// The sender's team: a theme is raised for the raiser's own team (its members read it).
    pub team: Option<&'a str>,
    /// The record as stored; `None` while the message creates it.
    pub before_record: Option<&'a Record>,
    pub after_record: &'a Record,
    pub before_json: &'a Value,
    pub after_json: &'a Value,
    /// Where the message's operations write (see [`writes_of`]); unused when it creates the
    /// record (see [`check_write`]), so callers may leave it empty then.
    pub writes: &'a [Write],
}

/// Accepts the changes only if every operation in them writes where `party` may write. Each
/// operation is checked, not just the visible difference, so a write hidden by a concurrent
/// one (it lost a conflict, and may surface again when the winner goes) is checked too.
///
/// A new document may be created by its observer (or a plan's owner or supervisor); the
/// creator may then lay out the other party's fields, but only empty. A creation is judged
/// by the document it makes: every value in it is new, and what a single author hides in
/// their own new document (a lost conflict, a deleted object) can never surface again,
/// since nobody else can have written concurrently to objects that did not exist. That
/// spares re-encoding a whole document's changes just to read them back.
///
/// Returns the top-level fields the changes touched, as the schema names them (`*` for a
/// field outside it), for the audit trail.
pub fn check_write(c: &WriteCheck<'_>) -> Result<Vec<String>, Refusal> {
    let creating = c.before_record.is_none();
    let kind = c.after_record.kind();
    if creating {
        let (may_create, message) = match kind {
            RecordKind::Observation => {
                (c.party == Party::Observer, "only the observer named in `observerId` may create an observation")
            }
            RecordKind::DevelopmentPlan => (
                matches!(c.party, Party::PlanOwner | Party::PlanSupervisor),
                "only the owner or supervisor named in a plan may create it",
            ),
            RecordKind::GroupSession => (
                c.party == Party::Facilitator && leads_practice(c.role),
                "only a supervisor, manager or principal social worker named in `facilitatorId` may create a group session",
            ),
            RecordKind::PracticeTheme => (
                c.party == Party::Raiser && leads_practice(c.role),
                "only a supervisor, manager or principal social worker named in `raisedBy` may raise a practice theme",
            ),
        };
        if !may_create {
            return Err(Refusal::new(rule::NOT_CREATOR, message).by(c.party));
        }
    }
    check_status(c)?;
    check_responses(c)?;
    check_theme_team(c)?;
    let mut fields = BTreeSet::new();
    if creating {
        let Value::Object(root) = c.after_json else {
            return Err(Refusal::new(rule::INVALID_RECORD, "a record is a map"));
        };
        for (key, value) in root {
            let mut path = vec![Prop::Map(key.clone())];
            judge_new_value(c, kind, &mut path, value)?;
            fields.insert(FieldPath::of_props(&path).general().to_owned());
        }
        return Ok(fields.into_iter().collect());
    }
    // A text edit is thousands of operations on one path: each (path, kind) is judged once.
    let mut judged: BTreeSet<(&[Prop], bool)> = BTreeSet::new();
    for write in c.writes {
        if !judged.insert((&write.path, write.puts_object)) {
            continue;
        }
        if !may_write(c, kind, &write.path, write.puts_object) {
            return Err(not_writable(c.party, &write.path));
        }
        if settled_by_agreement(c, &write.path) {
            let at = field_of(&write.path);
            let message = format!("the plan is agreed: {} is settled until it is reopened for review", at.exact());
            return Err(Refusal::new(rule::AGREED, message).at(at).by(c.party));
        }
        fields.insert(FieldPath::of_props(&write.path[..1]).general().to_owned());
    }
    Ok(fields.into_iter().collect())
}

fn not_writable(party: Party, path: &[Prop]) -> Refusal {
    let at = field_of(path);
    Refusal::new(rule::NOT_WRITABLE, format!("the {} may not change {}", party.describe(), at.exact())).at(at).by(party)
}

/// The field a path names: a trailing list position (a character of a text, an element of
/// a list) is the field itself.
pub(crate) fn field_of(path: &[Prop]) -> FieldPath {
    let keep = path.len() - path.iter().rev().take_while(|p| **p == Prop::Seq(ANY_INDEX)).count();
    FieldPath::of_props(&path[..keep])
}

/// Checks a value in a document being created: the creator may write it there, or it is
/// empty, or it is a container on the way to something they may write (checked inside).
fn judge_new_value(c: &WriteCheck<'_>, kind: RecordKind, path: &mut Vec<Prop>, value: &Value) -> Result<(), Refusal> {
    let Some(Prop::Map(top)) = path.first() else {
        return Err(Refusal::new(rule::INVALID_RECORD, "a record is a map"));
    };
    // A new record's status is judged by `check_status` (a theme starts `raised`, which its
    // raiser never writes again).
    let allowed = if IDENTITY.contains(&top.as_str()) || top == "status" {
        true
    } else if !schema(kind).contains(&top.as_str()) {
        writes_extensions(c.party)
    } else {
        writable(c.party).iter().any(|rule| matches(rule, path, false, c.user_id))
    };
    if allowed || is_empty(value) {
        return Ok(());
    }
    let leads_somewhere = writable(c.party).iter().any(|rule| matches(rule, path, true, c.user_id));
    let children: Vec<(Prop, &Value)> = match value {
        Value::Object(map) if leads_somewhere => map.iter().map(|(k, v)| (Prop::Map(k.clone()), v)).collect(),
        Value::Array(items) if leads_somewhere => items.iter().map(|v| (Prop::Seq(ANY_INDEX), v)).collect(),
        _ => return Err(not_writable(c.party, path)),
    };
    for (prop, child) in children {
        path.push(prop);
        judge_new_value(c, kind, path, child)?;
        path.pop();
    }
    Ok(())
}

/// A list position in an operation's path: operations name list elements by id, not index,
/// and the rules match any index anyway.
const ANY_INDEX: usize = usize::MAX;

/// Paths of the objects operations write into, found once per object.
struct ObjectPaths<'a> {
    doc: &'a Automerge,
    known: HashMap<OpId, Vec<Prop>>,
}

impl<'a> ObjectPaths<'a> {
    fn new(doc: &'a Automerge) -> Self {
        Self { doc, known: HashMap::new() }
    }

    fn of(&mut self, obj: &ObjectId) -> Result<Vec<Prop>, Refusal> {
        let ObjectId::Id(op_id) = obj else { return Ok(Vec::new()) };
        if let Some(path) = self.known.get(op_id) {
            return Ok(path.clone());
        }
        let OpId(counter, actor) = op_id;
        let id = format!("{counter}@{}", actor.to_hex_string());
        let unknown = || {
            Refusal::new(
                rule::INVALID_RECORD,
                format!("a change writes into an object this document does not have ({id})"),
            )
        };
        let exid = self.doc.import_obj(&id).map_err(|_| unknown())?;
        let parents = self.doc.parents(&exid).map_err(|_| unknown())?;
        // Every step of the path, visible or not: a hidden object is still someone's field.
        let path: Vec<Prop> = parents
            .path()
            .into_iter()
            .map(|(_, prop)| match prop {
                Prop::Seq(_) => Prop::Seq(ANY_INDEX),
                other => other,
            })
            .collect();
        self.known.insert(op_id.clone(), path.clone());
        Ok(path)
    }
}

/// Whether one operation of a change to an existing record writes where it may.
fn may_write(c: &WriteCheck<'_>, kind: RecordKind, path: &[Prop], puts_object: bool) -> bool {
    let Some(Prop::Map(top)) = path.first() else { return false };
    if IDENTITY.contains(&top.as_str()) {
        return false;
    }
    if !schema(kind).contains(&top.as_str()) {
        return writes_extensions(c.party);
    }
    let rules = writable(c.party);
    // `status` has its own rules (see `check_status`); here only who may touch it.
    if rules.iter().any(|rule| matches(rule, path, false, c.user_id)) {
        return true;
    }
    // An empty map entry on the way to something writable (a new `gapAnalysis` entry, say);
    // what goes inside is checked operation by operation.
    puts_object
        && matches!(path.last(), Some(Prop::Map(_)))
        && lookup(c.before_json, path).is_none()
        && rules.iter().any(|rule| matches(rule, path, true, c.user_id))
}

/// Status moves one way. An observation goes `draft` → `shared` (the observer shares it) →
/// `signed-off` (set by whoever signs last, with their signature); a plan's supervisor
/// moves it between `draft` and `agreed`, and closes it; a group session's facilitator
/// shares it and closes it; a theme is raised by its raiser, and only its responders move
/// it on.
fn check_status(c: &WriteCheck<'_>) -> Result<(), Refusal> {
    let after = c.after_record.status();
    let before = c.before_record.map(Record::status);
    if before == Some(after) {
        return Ok(());
    }
    let ok = match c.after_record {
        Record::Observation(o) => match after {
            "draft" => before.is_none() && c.party == Party::Observer,
            "shared" => before.is_none_or(|b| b == "draft") && c.party == Party::Observer,
            "signed-off" => o.is_locked() && matches!(c.party, Party::Observer | Party::Practitioner),
            _ => false,
        },
        Record::DevelopmentPlan(_) => {
            matches!(c.party, Party::PlanSupervisor | Party::PlanOwner if c.before_record.is_none())
                || c.party == Party::PlanSupervisor
        }
        Record::GroupSession(_) => {
            c.party == Party::Facilitator
                && match after {
                    "draft" => before.is_none(),
                    "shared" => before.is_none_or(|b| b == "draft"),
                    _ => true,
                }
        }
        Record::PracticeTheme(_) => match before {
            None => after == "raised",
            Some(_) => c.party == Party::Responder,
        },
    };
    if let (Record::Observation(o), "shared") = (c.after_record, after)
        && ok
        && let Err(e) = o.ready_to_share(c.today)
    {
        return Err(Refusal::new(rule::NOT_READY_TO_SHARE, format!("not shared: {}", e.problem)).at(e.at).by(c.party));
    }
    if ok {
        Ok(())
    } else {
        let from = before.map(|b| format!(" from {b:?}")).unwrap_or_default();
        let message = format!("the {} may not change status{from} to {after:?}", c.party.describe());
        Err(Refusal::new(rule::STATUS, message).at(FieldPath::field("status")).by(c.party))
    }
}

/// A theme goes to its raiser's own team (or to no team): nobody shows it to another team's
/// members by naming that team.
fn check_theme_team(c: &WriteCheck<'_>) -> Result<(), Refusal> {
    let Record::PracticeTheme(after) = c.after_record else { return Ok(()) };
    let before = match c.before_record {
        Some(Record::PracticeTheme(before)) => Some(before.team.as_deref()),
        _ => None,
    };
    let team = after.team.as_deref();
    if before == Some(team) || team.is_none() || team == c.team {
        return Ok(());
    }
    let message = format!("a theme is raised for the raiser's own team, not {:?}", team.unwrap_or_default());
    Err(Refusal::new(rule::NOT_WRITABLE, message).at(FieldPath::field("team")).by(c.party))
}

/// A plan's supervisor writes goals as a whole (`!`: adding, replacing or removing one) and
/// every goal field but the owner's reflection. The first twelve rules are the plan's shape and
/// the wording of its goals, which an agreed plan settles (see `SETTLED_WHEN_AGREED`).
const PLAN_SUPERVISOR: &[&str] = &[
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
    "goals/*/resources",
    "reviews",
    "status",
    // The agreement whole (put afresh each time, so the owner agrees again), and its own
    // signature inside; not the owner's.
    "agreement!",
    "agreement/at",
    "agreement/by",
];

/// What an agreed plan settles: its shape and the wording of its goals. Progress (goal status,
/// completion, evidence, resources, reflections, the owner's self-ratings) and reviews go on;
/// to change the rest the supervisor reopens it for review (status back to `draft`).
const SETTLED_WHEN_AGREED: &[&str] = PLAN_SUPERVISOR.split_at(12).0;

/// Whether `path` is settled because the plan was agreed before the message and still is.
fn settled_by_agreement(c: &WriteCheck<'_>, path: &[Prop]) -> bool {
    let (Some(Record::DevelopmentPlan(before)), Record::DevelopmentPlan(after)) = (c.before_record, c.after_record)
    else {
        return false;
    };
    before.status == "agreed"
        && after.status == "agreed"
        && SETTLED_WHEN_AGREED.iter().any(|rule| matches(rule, path, false, c.user_id))
}

/// A responder writes responses in their own name: every response they add names them in
/// `by`, and they change or remove only their own.
fn check_responses(c: &WriteCheck<'_>) -> Result<(), Refusal> {
    let Record::PracticeTheme(after) = c.after_record else { return Ok(()) };
    let before = match c.before_record {
        Some(Record::PracticeTheme(before)) => before.responses.as_slice(),
        _ => &[],
    };
    let mine = |by: &str| by == c.user_id;
    let changed = after.responses.iter().filter(|r| !before.contains(r)).all(|r| {
        let stored = before.iter().find(|b| b.id == r.id);
        mine(&r.by) && stored.is_none_or(|b| mine(&b.by))
    });
    let removed = before.iter().filter(|b| !after.responses.iter().any(|a| a.id == b.id)).all(|b| mine(&b.by));
    if changed && removed {
        return Ok(());
    }
    let message = "a response is written, changed and removed only in its author's own name";
    Err(Refusal::new(rule::NOT_WRITABLE, message).at(FieldPath::field("responses")).by(c.party))
}

/// Whether `rule` covers `path` (the rule is a prefix of it), or with `beyond`, whether
/// `path` is a proper prefix of the rule.
fn matches(rule: &str, path: &[Prop], beyond: bool, me: &str) -> bool {
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
        Prop::Map(key) => *segment == "*" || segment == key || (*segment == "$me" && key == me),
        Prop::Seq(_) => *segment == "*",
    })
}

fn lookup<'v>(json: &'v Value, path: &[Prop]) -> Option<&'v Value> {
    path.iter().try_fold(json, |value, prop| match prop {
        Prop::Map(key) => value.get(key.as_str()),
        Prop::Seq(index) => value.get(*index),
    })
}

/// Nothing written yet: also a map laid out with empty fields (`familyVoice: {text: "",
/// how: ""}`), which creators lay out so that two devices' first text merges.
fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.values().all(is_empty),
        _ => false,
    }
}
