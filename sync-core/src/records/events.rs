//! Record-level events, derived by comparing a record before and after a change: what the
//! HR change feed and xAPI statements report. They carry ids, statuses and component ids,
//! never narrative.

use serde::Serialize;
use serde_json::{Value, json};

use super::{DevelopmentPlan, GroupSession, Observation, Record};

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordEvent {
    /// `observation.created`, `observation.shared`, `observation.signed-off`,
    /// `plan.created`, `plan.status-changed`, `goal.added`, `goal.status-changed`,
    /// `goal.removed`, `group-session.attended`.
    pub kind: &'static str,
    pub practitioner_id: String,
    pub detail: Value,
}

/// The events a change makes, given the record before it (`None`: it creates the record).
///
/// A draft observation is its observer's alone — not even its practitioner sees it — so it
/// makes no events: the feed learns of an observation when it is shared, as the practitioner
/// does, with `observation.created` then `observation.shared`.
pub fn events(before: Option<&Record>, after: &Record) -> Vec<RecordEvent> {
    match (before, after) {
        (_, Record::Observation(o)) if o.status == "draft" => Vec::new(),
        (None, Record::Observation(o)) => {
            let mut out = vec![created(o)];
            out.extend(observation_changes(None, o));
            out
        }
        (Some(Record::Observation(b)), Record::Observation(a)) => {
            let mut out = Vec::new();
            if b.status == "draft" {
                out.push(created(a));
            }
            out.extend(observation_changes(Some(b), a));
            out
        }
        (None, Record::DevelopmentPlan(p)) => {
            let mut out = vec![plan_event("plan.created", p, json!({ "status": p.status, "framework": p.framework }))];
            out.extend(plan_changes(None, p));
            out
        }
        (Some(Record::DevelopmentPlan(b)), Record::DevelopmentPlan(a)) => plan_changes(Some(b), a),
        (before, Record::GroupSession(g)) if g.status == "closed" => match before {
            Some(Record::GroupSession(b)) if b.status == "closed" => Vec::new(),
            _ => attended(g),
        },
        _ => Vec::new(),
    }
}

fn created(o: &Observation) -> RecordEvent {
    event("observation.created", o, json!({ "status": o.status, "framework": o.framework }))
}

fn event(kind: &'static str, o: &Observation, detail: Value) -> RecordEvent {
    RecordEvent { kind, practitioner_id: o.practitioner_id.clone(), detail }
}

/// A closed group session counts for everyone in it: kind, day and components, never text.
fn attended(g: &GroupSession) -> Vec<RecordEvent> {
    let people =
        std::iter::once((&g.facilitator_id, "facilitator")).chain(g.participant_ids.iter().map(|p| (p, "participant")));
    people
        .map(|(person, role)| RecordEvent {
            kind: "group-session.attended",
            practitioner_id: person.clone(),
            detail: json!({
                "role": role, "kind": g.kind, "heldAt": g.held_at,
                "framework": g.framework, "components": g.components,
            }),
        })
        .collect()
}

fn plan_event(kind: &'static str, p: &DevelopmentPlan, detail: Value) -> RecordEvent {
    RecordEvent { kind, practitioner_id: p.owner_id.clone(), detail }
}

fn observation_changes(before: Option<&Observation>, after: &Observation) -> Vec<RecordEvent> {
    let mut out = Vec::new();
    let was = |status: &str| before.is_some_and(|b| b.status == status) || (before.is_none() && status == "draft");
    let evidenced =
        || -> Vec<&String> { after.judgements.iter().filter(|(_, j)| j.as_str() == "met").map(|(c, _)| c).collect() };
    if after.status == "shared" && was("draft") {
        out.push(event("observation.shared", after, json!({ "components": after.components })));
    }
    if after.is_locked() && !before.is_some_and(Observation::is_locked) {
        let detail = json!({
            "observedAt": after.observed_at, "setting": after.setting, "framework": after.framework,
            "components": after.components, "componentsEvidenced": evidenced(),
        });
        out.push(event("observation.signed-off", after, detail));
    }
    out
}

fn plan_changes(before: Option<&DevelopmentPlan>, after: &DevelopmentPlan) -> Vec<RecordEvent> {
    let mut out = Vec::new();
    if let Some(b) = before
        && b.status != after.status
    {
        out.push(plan_event("plan.status-changed", after, json!({ "from": b.status, "to": after.status })));
    }
    let old_goals = before.map(|b| b.goals.as_slice()).unwrap_or_default();
    for goal in &after.goals {
        match old_goals.iter().find(|g| g.id == goal.id) {
            None => out.push(plan_event(
                "goal.added",
                after,
                json!({ "goalId": goal.id, "status": goal.status, "components": goal.components }),
            )),
            Some(old) if old.status != goal.status => out.push(plan_event(
                "goal.status-changed",
                after,
                json!({ "goalId": goal.id, "from": old.status, "to": goal.status, "components": goal.components }),
            )),
            Some(_) => {}
        }
    }
    for old in old_goals.iter().filter(|g| !after.goals.iter().any(|n| n.id == g.id)) {
        out.push(plan_event("goal.removed", after, json!({ "goalId": old.id })));
    }
    out
}
