use serde_json::{Value, json};

use super::*;
use crate::frameworks::Catalog;

pub fn observation() -> Value {
    json!({
        "type": "observation", "schemaVersion": 1,
        "practitionerId": "pat", "observerId": "sam",
        "observedAt": "2026-11-20T10:00:00Z", "setting": "home-visit",
        "present": "mother, two children under 5", "purpose": "review of the plan",
        "consent": {"given": true, "by": "mother", "how": "verbal, at the door"},
        "framework": "kss-cf-2018", "components": ["kss-cf-2018/1", "kss-cf-2018/6"],
        "notes": "…", "strengths": ["warm"], "developmentAreas": ["pace"],
        "judgements": {"kss-cf-2018/1": "met", "kss-cf-2018/6": "insufficient-opportunity"},
        "feedback": "…", "feedbackGivenAt": "2026-11-20T12:00:00Z",
        "reflection": "…", "familyVoice": {"text": "…", "how": "asked at the end"},
        "actions": [{"id": "a1", "text": "…", "goalId": "g1"}],
        "status": "shared",
        "signOff": {"observer": {"at": "2026-11-21T09:00:00Z", "by": "sam"}}
    })
}

pub fn plan() -> Value {
    json!({
        "type": "development-plan", "schemaVersion": 1,
        "ownerId": "pat", "supervisorId": "sam", "framework": "kss-cf-2018",
        "period": {"from": "2026-09-01", "to": "2027-03-31"}, "source": "observation",
        "gapAnalysis": {"kss-cf-2018/6": {"self": 2, "supervisor": 3, "note": "…"}},
        "goals": [{"id": "g1", "title": "…", "components": ["kss-cf-2018/6"], "targetDate": "2027-01-31",
                   "status": "in-progress", "evidence": ["automerge:2BqZ1S3CcSbiH7jHnjb6aVdtNgWu"]}],
        "reviews": [{"at": "2026-10-01T09:00:00Z", "by": "sam", "note": "…"}],
        "status": "agreed"
    })
}

fn error(doc: Value) -> RecordError {
    Record::parse(&doc, &Catalog::shipped()).unwrap_err()
}

fn with(mut doc: Value, path: &str, value: Value) -> Value {
    let mut target = &mut doc;
    let parts: Vec<&str> = path.split('.').collect();
    for p in &parts[..parts.len() - 1] {
        target = &mut target[*p];
    }
    target[parts[parts.len() - 1]] = value;
    doc
}

fn without(mut doc: Value, key: &str) -> Value {
    doc.as_object_mut().unwrap().remove(key);
    doc
}

#[test]
fn valid_records_parse() {
    let catalog = Catalog::shipped();
    let Record::Observation(o) = Record::parse(&observation(), &catalog).unwrap() else { panic!() };
    assert_eq!(o.components, ["kss-cf-2018/1", "kss-cf-2018/6"]);
    assert!(!o.is_locked());
    let Record::DevelopmentPlan(p) = Record::parse(&plan(), &catalog).unwrap() else { panic!() };
    assert_eq!(p.goals[0].evidence.len(), 1);
}

#[test]
fn invalid_records_say_where_and_why() {
    let cases: Vec<(Value, &str, &str)> = vec![
        (
            with(observation(), "components", json!(["kss-cf-2018/99"])),
            "components[0]",
            "not a component of kss-cf-2018",
        ),
        (with(observation(), "framework", json!("made-up")), "framework", "unknown framework"),
        (with(observation(), "setting", json!("pub")), "setting", "is not one of"),
        (with(observation(), "status", json!("done")), "status", "is not one of"),
        (
            with(observation(), "judgements", json!({"kss-cf-2018/1": "great"})),
            "judgements.kss-cf-2018/1",
            "is not one of",
        ),
        (without(observation(), "observerId"), "record", "missing field `observerId`"),
        (with(observation(), "components", json!("kss-cf-2018/1")), "components", "invalid type"),
        (with(observation(), "observedAt", json!("yesterday")), "observedAt", "RFC 3339"),
        (with(observation(), "signOff.observer.by", json!("pat")), "signOff.observer.by", "must be by \"sam\""),
        (with(observation(), "schemaVersion", json!(2)), "schemaVersion", "unsupported schema version"),
        (with(observation(), "type", json!("note")), "type", "unknown record type"),
        (without(observation(), "type"), "type", "missing"),
        (
            with(plan(), "gapAnalysis.kss-cf-2018/6.self", json!(5)),
            "gapAnalysis.kss-cf-2018/6.self",
            "rating from 1 to 4",
        ),
        (with(plan(), "status", json!("finished")), "status", "is not one of"),
        (with(plan(), "period.to", json!("31/03/2027")), "period.to", "RFC 3339 date"),
        (without(plan(), "supervisorId"), "record", "missing field `supervisorId`"),
    ];
    for (doc, path, problem) in cases {
        let e = error(doc);
        assert_eq!(e.path(), path, "{e}");
        assert!(e.problem.contains(problem), "{e} should mention {problem:?}");
    }
    let mut bad_goal = plan();
    bad_goal["goals"][0]["status"] = json!("nearly");
    assert_eq!(error(bad_goal).path(), "goals[0].status");
    let mut bad_evidence = plan();
    bad_evidence["goals"][0]["evidence"] = json!(["https://example.org"]);
    assert_eq!(error(bad_evidence).path(), "goals[0].evidence[0]");
}

#[test]
fn goals_cite_only_known_resources() {
    let mut cited = plan();
    cited["goals"][0]["resources"] = json!(["working-together-2023"]);
    let Record::DevelopmentPlan(p) = Record::parse(&cited, &Catalog::shipped()).unwrap() else { panic!() };
    assert_eq!(p.goals[0].resources, ["working-together-2023"]);
    cited["goals"][0]["resources"] = json!(["working-together-2023", "made-up"]);
    let e = error(cited);
    assert_eq!((e.path(), e.rule), ("goals[0].resources[1]", "unknown-resource"));
}

#[test]
fn strings_written_as_text_validate() {
    use automerge::AutoCommit;
    let mut doc = AutoCommit::new();
    crate::json::put_object(&mut doc, &observation()).unwrap();
    let json = crate::json::to_json(&doc);
    assert!(Record::parse(&json, &Catalog::shipped()).is_ok());
}

#[test]
fn both_sign_offs_lock_an_observation_and_closing_locks_a_plan() {
    let catalog = Catalog::shipped();
    let signed = with(observation(), "signOff.practitioner", json!({"at": "2026-11-22T09:00:00Z", "by": "pat"}));
    assert!(Record::parse(&signed, &catalog).unwrap().is_locked());
    assert!(!Record::parse(&plan(), &catalog).unwrap().is_locked());
    assert!(Record::parse(&with(plan(), "status", json!("closed")), &catalog).unwrap().is_locked());
}

#[test]
fn events_say_what_changed_without_narrative() {
    use super::events::events;
    let catalog = Catalog::shipped();
    let parse = |v: &Value| Record::parse(v, &catalog).unwrap();
    let mut draft = observation();
    draft["status"] = json!("draft");
    draft.as_object_mut().unwrap().remove("signOff");
    let created = parse(&draft);
    let kinds = |e: Vec<events::RecordEvent>| e.into_iter().map(|e| e.kind).collect::<Vec<_>>();
    // A draft is the observer's alone: the feed hears of it when it is shared.
    assert!(events(None, &created).is_empty());
    let mut edited = draft.clone();
    edited["components"] = json!(["kss-cf-2018/1"]);
    assert!(events(Some(&created), &parse(&edited)).is_empty());
    let mut shared = draft.clone();
    shared["status"] = json!("shared");
    assert_eq!(kinds(events(Some(&created), &parse(&shared))), ["observation.created", "observation.shared"]);
    assert_eq!(kinds(events(None, &parse(&shared))), ["observation.created", "observation.shared"]);
    let mut reshared = shared.clone();
    reshared["components"] = json!(["kss-cf-2018/6"]);
    assert!(events(Some(&parse(&shared)), &parse(&reshared)).is_empty());
    let mut signed = shared.clone();
    signed["signOff"] = json!({"observer": {"at": "2026-11-21T09:00:00Z", "by": "sam"},
                               "practitioner": {"at": "2026-11-21T10:00:00Z", "by": "pat"}});
    signed["status"] = json!("signed-off");
    let e = events(Some(&parse(&shared)), &parse(&signed));
    assert_eq!(e[0].kind, "observation.signed-off");
    assert_eq!(e[0].detail["componentsEvidenced"], json!(["kss-cf-2018/1"]));
    assert!(!serde_json::to_string(&e).unwrap().contains('…'), "no narrative");

    let before = parse(&plan());
    let mut after = plan();
    after["goals"][0]["status"] = json!("met");
    after["status"] = json!("closed");
    let e = events(Some(&before), &parse(&after));
    assert_eq!(kinds(e.clone()), ["plan.status-changed", "goal.status-changed"]);
    assert_eq!(e[1].detail["to"], "met");
}

#[test]
fn only_the_status_may_catch_up_on_a_locked_observation() {
    let signed = json!({"type": "observation", "status": "shared", "reflection": "r",
                        "signOff": {"observer": {"at": "t", "by": "sam"}, "practitioner": {"at": "t", "by": "pat"}}});
    let caught_up = with(signed.clone(), "status", json!("signed-off"));
    assert!(super::completes_sign_off(&signed, &caught_up));
    // Both parties may notice; the second write changes nothing visible.
    assert!(super::completes_sign_off(&caught_up, &caught_up));
    assert!(!super::completes_sign_off(&signed, &with(caught_up.clone(), "reflection", json!("changed"))));
    assert!(!super::completes_sign_off(&signed, &with(signed.clone(), "status", json!("draft"))));
    assert!(!super::completes_sign_off(&signed, &with(caught_up, "extra", json!(1))));
}
