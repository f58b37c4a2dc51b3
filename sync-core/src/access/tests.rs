use automerge::transaction::Transactable;
use automerge::{Automerge, ReadDoc};
use serde_json::{Value, json};

use super::*;
use crate::json;
use crate::records::Record;

fn viewer(id: &str, role: Role, line: &[(&str, &str, Option<&str>)]) -> Viewer {
    Viewer {
        user_id: id.into(),
        role,
        line: line
            .iter()
            .map(|(s, f, t)| LineGrant { subject_id: (*s).into(), from: (*f).into(), to: t.map(Into::into) })
            .collect(),
    }
}

fn facts(status: &str) -> RecordFacts {
    RecordFacts {
        observation: true,
        author_id: "sam".into(),
        subject_id: "pat".into(),
        draft: status == "draft",
        locked: false,
        from: "2025-06-01".into(),
        to: "2025-06-01".into(),
    }
}

#[test]
fn need_to_know_reads() {
    let today = "2026-11-26";
    let shared = facts("shared");
    let draft = facts("draft");
    assert_eq!(viewer("sam", Role::Supervisor, &[]).party(&draft, today), Party::Observer);
    assert_eq!(viewer("pat", Role::Practitioner, &[]).party(&draft, today), Party::None);
    assert_eq!(viewer("pat", Role::Practitioner, &[]).party(&shared, today), Party::Practitioner);
    // Supervised pat when the observation was made, no longer.
    let then = viewer("old", Role::Supervisor, &[("pat", "2025-01-01", Some("2026-01-01"))]);
    assert_eq!(then.party(&shared, today), Party::Line);
    assert_eq!(then.party(&draft, today), Party::None);
    // Supervises pat now, not then.
    let now = viewer("new", Role::Manager, &[("pat", "2026-01-01", None)]);
    assert_eq!(now.party(&shared, today), Party::Line);
    // Supervised pat before and after, but not on the day.
    let gap = viewer("gap", Role::Supervisor, &[("pat", "2024-01-01", Some("2025-01-01"))]);
    assert_eq!(gap.party(&shared, today), Party::None);
    assert_eq!(viewer("psw", Role::PrincipalSocialWorker, &[]).party(&shared, today), Party::PrincipalSocialWorker);
    assert_eq!(viewer("hr", Role::Hr, &[("pat", "2020-01-01", None)]).party(&shared, today), Party::None);
    assert_eq!(viewer("eve", Role::Practitioner, &[]).party(&shared, today), Party::None);
}

fn doc(value: &Value) -> Automerge {
    let mut doc = Automerge::new();
    let mut tx = doc.transaction();
    json::put_object(&mut tx, value).unwrap();
    tx.commit();
    doc
}

fn edit(base: &Automerge, f: impl FnOnce(&mut automerge::transaction::Transaction<'_>)) -> Automerge {
    let mut doc = base.fork();
    let mut tx = doc.transaction();
    f(&mut tx);
    tx.commit();
    doc
}

fn check(party: Party, before: &Automerge, after: &Automerge) -> Result<Vec<String>, String> {
    let catalog = crate::frameworks::Catalog::shipped();
    let (before_json, after_json) = (json::to_json(before), json::to_json(after));
    let before_record = (!before.get_heads().is_empty()).then(|| Record::parse(&before_json, &catalog).unwrap());
    let after_record = Record::parse(&after_json, &catalog).map_err(|e| format!("invalid record: {e}"))?;
    check_write(&WriteCheck {
        party,
        before_record: before_record.as_ref(),
        after_record: &after_record,
        before_json: &before_json,
        after_json: &after_json,
        after,
        changes: &after.get_changes(&before.get_heads()),
    })
}

fn observation() -> Value {
    json!({
        "type": "observation", "schemaVersion": 1, "practitionerId": "pat", "observerId": "sam",
        "framework": "kss-cf-2018", "status": "shared", "feedback": "good", "reflection": "",
    })
}

#[test]
fn each_party_writes_its_own_fields() {
    let base = doc(&observation());
    let set = |path: &str, value: Value| edit(&base, |tx| json::set_path(tx, path, &value).unwrap());
    assert!(check(Party::Observer, &base, &set("feedback", json!("clearer"))).is_ok());
    let err = check(Party::Practitioner, &base, &set("feedback", json!("mine"))).unwrap_err();
    assert_eq!(err, "the practitioner may not change feedback");
    assert!(check(Party::Practitioner, &base, &set("reflection", json!("I will"))).is_ok());
    assert!(check(Party::Observer, &base, &set("reflection", json!("you will"))).is_err());
    assert!(check(Party::Line, &base, &set("feedback", json!("x"))).is_err());
    assert!(check(Party::Observer, &base, &set("practitionerId", json!("eve"))).is_err());
    // A whole new object is checked inside, not just where it is put.
    let nested = set("signOff", json!({"practitioner": {"at": "2026-11-21T09:00:00Z", "by": "pat"}}));
    assert_eq!(check(Party::Observer, &base, &nested).unwrap_err(), "the observer may not change signOff.practitioner");
    assert!(check(Party::Practitioner, &base, &nested).is_ok());
    // Status moves one way; the practitioner sets it only with the final sign-off.
    assert!(check(Party::Practitioner, &base, &set("status", json!("signed-off"))).is_err());
    assert_eq!(
        check(Party::Observer, &base, &set("status", json!("draft"))).unwrap_err(),
        "the observer may not change status from \"shared\" to \"draft\""
    );
}

#[test]
fn creation_is_the_observers_with_the_other_side_empty() {
    let empty = Automerge::new();
    let created = doc(&observation());
    assert!(check(Party::Observer, &empty, &created).is_ok());
    let mut with_reflection = observation();
    with_reflection["reflection"] = json!("written for them");
    assert_eq!(
        check(Party::Observer, &empty, &doc(&with_reflection)).unwrap_err(),
        "the observer may not change reflection"
    );
    assert!(check(Party::Practitioner, &empty, &created).is_err());
    // The other side's fields laid out empty, so two devices' first text merges: allowed.
    let mut laid_out = observation();
    laid_out["reflection"] = json!("");
    laid_out["familyVoice"] = json!({"text": "", "how": ""});
    assert!(check(Party::Observer, &empty, &doc(&laid_out)).is_ok());
    laid_out["familyVoice"] = json!({"text": "their words", "how": ""});
    assert_eq!(check(Party::Observer, &empty, &doc(&laid_out)).unwrap_err(), "the observer may not change familyVoice");
}

#[test]
fn plan_owner_and_supervisor() {
    let plan = json!({
        "type": "development-plan", "schemaVersion": 1, "ownerId": "pat", "supervisorId": "sam",
        "framework": "kss-cf-2018", "status": "agreed",
        "gapAnalysis": {"kss-cf-2018/6": {"self": 2, "supervisor": 3}},
        "goals": [{"id": "g1", "title": "Assess", "status": "not-started", "evidence": []}],
    });
    let base = doc(&plan);
    let set = |path: &str, value: Value| edit(&base, |tx| json::set_path(tx, path, &value).unwrap());
    assert!(check(Party::PlanOwner, &base, &set("gapAnalysis.kss-cf-2018/6.self", json!(3))).is_ok());
    assert!(check(Party::PlanOwner, &base, &set("gapAnalysis.kss-cf-2018/6.supervisor", json!(4))).is_err());
    assert!(check(Party::PlanOwner, &base, &set("goals.0.status", json!("in-progress"))).is_ok());
    assert!(check(Party::PlanOwner, &base, &set("goals.0.title", json!("Other"))).is_err());
    assert!(check(Party::PlanSupervisor, &base, &set("goals.0.title", json!("Other"))).is_ok());
    assert!(check(Party::PlanOwner, &base, &set("goals.0.reflection", json!("Going well"))).is_ok());
    assert!(check(Party::PlanSupervisor, &base, &set("goals.0.reflection", json!("Going well"))).is_err());
    assert!(check(Party::PlanSupervisor, &base, &set("gapAnalysis.kss-cf-2018/6.self", json!(1))).is_err());
    // A new gap-analysis entry: the owner may open it with their own rating only.
    let own_entry = edit(&base, |tx| {
        json::put_in_map(tx, "gapAnalysis", "kss-cf-2018/1", &json!({"self": 2})).unwrap();
    });
    assert!(check(Party::PlanOwner, &base, &own_entry).is_ok());
    let both = edit(&base, |tx| {
        json::put_in_map(tx, "gapAnalysis", "kss-cf-2018/1", &json!({"self": 2, "supervisor": 1})).unwrap();
    });
    assert!(check(Party::PlanOwner, &base, &both).is_err());
    // Removing a goal is the supervisor's.
    let removed = edit(&base, |tx| {
        let goals = tx.get(automerge::ROOT, "goals").unwrap().unwrap().1;
        tx.delete(&goals, 0).unwrap();
    });
    assert!(check(Party::PlanOwner, &base, &removed).is_err());
    assert!(check(Party::PlanSupervisor, &base, &removed).is_ok());
}

#[test]
fn facts_read_from_a_document_match_facts_from_the_parsed_record() {
    let catalog = crate::frameworks::Catalog::shipped();
    let records = [
        json!({"type": "observation", "schemaVersion": 1, "practitionerId": "pat", "observerId": "sam",
               "framework": "kss-cf-2018", "status": "shared", "observedAt": "2026-11-20T23:30:00-02:00",
               "signOff": {"observer": {"at": "2026-11-21T09:00:00Z", "by": "sam"},
                           "practitioner": {"at": "2026-11-21T09:00:00Z", "by": "pat"}}}),
        json!({"type": "observation", "schemaVersion": 1, "practitionerId": "pat", "observerId": "sam",
               "framework": "kss-cf-2018", "status": "draft", "signOff": {"practitioner": null}}),
        json!({"type": "development-plan", "schemaVersion": 1, "ownerId": "pat", "supervisorId": "sam",
               "framework": "kss-cf-2018", "status": "closed", "period": {"from": "2026-09-01", "to": "2027-03-31"}}),
    ];
    for value in records {
        let document = doc(&value);
        let parsed = Record::parse(&value, &catalog).unwrap();
        assert_eq!(RecordFacts::of_document(&document), Some(RecordFacts::of(&parsed)), "{value}");
    }
    assert_eq!(RecordFacts::of_document(&doc(&json!({"type": "note"}))), None);
}
