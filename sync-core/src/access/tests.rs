use automerge::transaction::Transactable;
use automerge::{Automerge, ReadDoc};
use serde_json::{Value, json};

use super::*;
use crate::json;
use crate::records::{Record, RecordKind, Side};

fn viewer(id: &str, role: Role, line: &[(&str, &str, Option<&str>)]) -> Viewer {
    Viewer {
        user_id: id.into(),
        role,
        line: line
            .iter()
            .map(|(s, f, t)| LineGrant { subject_id: (*s).into(), from: (*f).into(), to: t.map(Into::into) })
            .collect(),
        team: None,
    }
}

fn facts(status: &str) -> RecordFacts {
    RecordFacts {
        kind: RecordKind::Observation,
        author_id: "sam".into(),
        subject_id: "pat".into(),
        members: Vec::new(),
        team: None,
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

#[test]
fn only_the_author_discards_only_a_draft() {
    assert_eq!(facts("draft").discard_by("sam"), Ok(()));
    assert_eq!(facts("draft").discard_by("pat"), Err(DiscardRefusal::NotAuthor));
    assert_eq!(facts("shared").discard_by("sam"), Err(DiscardRefusal::NotDraft));
    let session = RecordFacts::group_session("sam", vec!["pat".into()], "draft", None);
    assert_eq!(session.discard_by("sam"), Ok(()));
    assert_eq!(session.discard_by("pat"), Err(DiscardRefusal::NotAuthor));
    let plan = RecordFacts::plan("sam", "pat", "draft", None, None);
    assert_eq!(plan.discard_by("sam"), Err(DiscardRefusal::NotDraft), "the owner sees a plan from the start");
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

/// Someone standing as `party` to the test records (sam observes pat; pat owns sam's plan).
fn viewer_for(party: Party) -> Viewer {
    match party {
        Party::Observer | Party::PlanSupervisor => viewer("sam", Role::Supervisor, &[]),
        Party::Practitioner | Party::PlanOwner => viewer("pat", Role::Practitioner, &[]),
        Party::Line => viewer("lee", Role::Manager, &[("pat", "2000-01-01", None)]),
        _ => viewer("eve", Role::Practitioner, &[]),
    }
}

/// Judges the changes from `before` to `after` as sent by someone standing as `party`.
fn judged(party: Party, before: &Automerge, after: &Automerge) -> Result<Judgement, String> {
    let judgement = judged_as(&viewer_for(party), before, after)?;
    assert_eq!(judgement.party, party, "the test's viewer stands as {party:?}");
    Ok(judgement)
}

/// Judges the changes from `before` to `after` as sent by `viewer`.
fn judged_as(viewer: &Viewer, before: &Automerge, after: &Automerge) -> Result<Judgement, String> {
    let catalog = crate::frameworks::Catalog::shipped();
    let stored = Stored::of(before, &catalog);
    let before_heads = before.get_heads();
    let changes = after.get_changes(&before_heads);
    let metadata: Vec<_> = after.get_changes_meta(&before_heads).into_iter().map(|m| m.into_owned()).collect();
    let proposal = Proposal {
        viewer,
        today: "2026-11-26",
        stored: stored.as_ref(),
        before_heads: &before_heads,
        after,
        changes: &changes,
        metadata: &metadata,
    };
    judge(&proposal, &catalog).map_err(|r| r.message)
}

fn check(party: Party, before: &Automerge, after: &Automerge) -> Result<Vec<String>, String> {
    judged(party, before, after).map(|j| j.fields)
}

fn observation() -> Value {
    json!({
        "type": "observation", "schemaVersion": 1, "practitionerId": "pat", "observerId": "sam",
        "observedAt": "2026-11-20T10:00:00Z", "setting": "home-visit",
        "consent": {"given": true, "by": "mother", "how": "verbally"},
        "framework": "kss-cf-2018", "status": "shared", "feedback": "good", "reflection": "",
    })
}

#[test]
fn sharing_needs_consent_and_dates_that_could_be_true() {
    let mut draft = observation();
    draft["status"] = json!("draft");
    draft["consent"] = json!({"given": false});
    let base = doc(&draft);
    let share = |edits: &[(&str, Value)]| {
        let after = edit(&base, |tx| {
            for (path, value) in edits {
                json::set_path(tx, path, value).unwrap();
            }
            json::set_path(tx, "status", &json!("shared")).unwrap();
        });
        check(Party::Observer, &base, &after)
    };
    assert_eq!(share(&[]).unwrap_err(), "not shared: record that the family agreed to the observation before sharing");
    let consent = ("consent", json!({"given": true, "by": "mother", "how": "verbally"}));
    assert!(share(std::slice::from_ref(&consent)).is_ok());
    // Today is 2026-11-26 here: a day's slack for time zones, no more.
    assert!(share(&[consent.clone(), ("observedAt", json!("2026-11-27T09:00:00+01:00"))]).is_ok());
    let future = share(&[consent.clone(), ("observedAt", json!("2031-01-01T09:00:00Z"))]).unwrap_err();
    assert_eq!(future, "not shared: the observation is dated in the future");
    let early = share(&[consent.clone(), ("feedbackGivenAt", json!("2020-01-01T09:00:00Z"))]).unwrap_err();
    assert_eq!(early, "not shared: feedback is dated before the observation");
    let unsaid = share(&[("consent", json!({"given": true, "by": "mother"}))]).unwrap_err();
    assert_eq!(unsaid, "not shared: record how consent was given before sharing");
    // Created already shared, the same holds.
    let empty = Automerge::new();
    let mut undated = observation();
    undated.as_object_mut().unwrap().remove("observedAt");
    assert!(check(Party::Observer, &empty, &doc(&undated)).unwrap_err().contains("when the observation took place"));
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
        "framework": "kss-cf-2018", "status": "draft",
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
    // Both cite research on a goal.
    for party in [Party::PlanOwner, Party::PlanSupervisor] {
        assert!(check(party, &base, &set("goals.0.resources", json!(["working-together-2023"]))).is_ok(), "{party:?}");
    }
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
fn an_agreed_plan_is_settled_until_reopened_for_review() {
    let plan = json!({
        "type": "development-plan", "schemaVersion": 1, "ownerId": "pat", "supervisorId": "sam",
        "framework": "kss-cf-2018", "status": "draft",
        "goals": [{"id": "g1", "title": "Assess", "status": "not-started", "evidence": []}],
    });
    let draft = doc(&plan);
    let edit_in = |base: &Automerge, edits: &[(&str, Value)]| {
        edit(base, |tx| {
            for (path, value) in edits {
                json::set_path(tx, path, value).unwrap();
            }
        })
    };
    let remove_goal = |base: &Automerge| {
        edit(base, |tx| {
            let goals = tx.get(automerge::ROOT, "goals").unwrap().unwrap().1;
            tx.delete(&goals, 0).unwrap();
        })
    };
    // A draft's goals are the supervisor's to shape, removing one included.
    assert!(check(Party::PlanSupervisor, &draft, &remove_goal(&draft)).is_ok());
    assert!(check(Party::PlanSupervisor, &draft, &edit_in(&draft, &[("goals.0.title", json!("Other"))])).is_ok());

    let agreed = edit_in(&draft, &[("status", json!("agreed"))]);
    let title = check(Party::PlanSupervisor, &agreed, &edit_in(&agreed, &[("goals.0.title", json!("Other"))]));
    assert_eq!(title.unwrap_err(), "the plan is agreed: goals[].title is settled until it is reopened for review");
    assert!(check(Party::PlanSupervisor, &agreed, &remove_goal(&agreed)).is_err());
    // Progress goes on, for both.
    assert!(check(Party::PlanSupervisor, &agreed, &edit_in(&agreed, &[("goals.0.status", json!("met"))])).is_ok());
    assert!(
        check(Party::PlanOwner, &agreed, &edit_in(&agreed, &[("goals.0.resources", json!(["nice-ng76"]))])).is_ok()
    );
    // Reopened for review, in the same message or before, the goals can change again.
    let reopened = [("status", json!("draft")), ("goals.0.title", json!("Other"))];
    assert!(check(Party::PlanSupervisor, &agreed, &edit_in(&agreed, &reopened)).is_ok());
}

/// A goal added and removed again before the device synced arrives in one message: the
/// server finds where each operation wrote, inside the removed goal too (automerge 0.12's
/// debug-only check of that lookup disagrees with its answer, so the workspace turns automerge's
/// debug assertions off; see Cargo.toml).
#[test]
fn a_goal_added_and_removed_in_one_message_is_checked() {
    let base = doc(&json!({
        "type": "development-plan", "schemaVersion": 1, "ownerId": "pat", "supervisorId": "sam",
        "framework": "kss-cf-2018", "status": "draft",
        "goals": [{"id": "g1", "title": "Assess", "status": "not-started", "evidence": []}],
    }));
    let goal = json!({"id": "g2", "status": "not-started", "components": [], "evidence": []});
    let added = edit(&base, |tx| json::set_path(tx, "goals.1", &goal).unwrap());
    let removed = edit(&added, |tx| {
        let goals = tx.get(automerge::ROOT, "goals").unwrap().unwrap().1;
        tx.delete(&goals, 1).unwrap();
    });
    assert!(check(Party::PlanSupervisor, &base, &removed).is_ok());
    assert!(check(Party::PlanOwner, &base, &removed).unwrap_err().contains("goals"), "still the supervisor's");
}

#[test]
fn the_supervisor_agrees_a_plan_and_then_its_owner() {
    let draft = doc(&json!({
        "type": "development-plan", "schemaVersion": 1, "ownerId": "pat", "supervisorId": "sam",
        "framework": "kss-cf-2018", "status": "draft", "goals": [],
    }));
    let edit_in = |base: &Automerge, edits: &[(&str, Value)]| {
        edit(base, |tx| {
            for (path, value) in edits {
                json::set_path(tx, path, value).unwrap();
            }
        })
    };
    let signed = |by: &str| json!({"at": "2026-11-26T10:00:00Z", "by": by});
    let supervisor_agrees = [("status", json!("agreed")), ("agreement", signed("sam"))];
    let owner_agrees = [("agreement.owner", signed("pat"))];

    // The owner cannot agree a draft, however they put it.
    assert!(
        check(Party::PlanOwner, &draft, &edit_in(&draft, &[("agreement", json!({"owner": signed("pat")}))])).is_err()
    );
    let agreed = edit_in(&draft, &supervisor_agrees);
    assert!(check(Party::PlanSupervisor, &draft, &agreed).is_ok());
    assert_eq!(
        check(Party::PlanSupervisor, &agreed, &edit_in(&agreed, &owner_agrees)).unwrap_err(),
        "the plan supervisor may not change agreement.owner",
        "nobody agrees for the owner"
    );
    let both = edit_in(&agreed, &owner_agrees);
    assert!(check(Party::PlanOwner, &agreed, &both).is_ok());
    let as_someone_else = edit_in(&agreed, &[("agreement.owner", signed("sam"))]);
    assert!(check(Party::PlanOwner, &agreed, &as_someone_else).unwrap_err().contains("must be by \"pat\""));

    // Reopening for review removes the agreement whole; a draft keeping one is refused.
    let reopen = |base: &Automerge| {
        edit(base, |tx| {
            json::set_path(tx, "status", &json!("draft")).unwrap();
            tx.delete(automerge::ROOT, "agreement").unwrap();
        })
    };
    let reopened = reopen(&both);
    assert!(check(Party::PlanSupervisor, &both, &reopened).is_ok());
    let kept = edit_in(&both, &[("status", json!("draft"))]);
    assert!(check(Party::PlanSupervisor, &both, &kept).unwrap_err().contains("a draft plan is not agreed"));
    // A closed plan is not agreed anew by its owner.
    let closed = edit_in(&agreed, &[("status", json!("closed"))]);
    assert!(check(Party::PlanOwner, &closed, &edit_in(&closed, &owner_agrees)).unwrap_err().contains("closed"));
    // The owner agreed offline while the supervisor reopened the plan: their agreement went
    // with the agreement it was given to, and the plan reads as a draft.
    let reopened_meanwhile = reopen(&agreed);
    let mut merged = reopened_meanwhile.clone();
    merged.merge(&mut both.clone()).unwrap();
    assert!(check(Party::PlanOwner, &reopened_meanwhile, &merged).is_ok());
    assert_eq!(json::to_json(&merged).get("agreement"), None);
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
        group_session("shared"),
        json!({"type": "group-session", "schemaVersion": 1, "facilitatorId": "sam", "kind": "team-development",
               "status": "draft"}),
        practice_theme(),
    ];
    for value in records {
        let document = doc(&value);
        let parsed = Record::parse(&value, &catalog).unwrap();
        assert_eq!(RecordFacts::of_document(&document), Some(RecordFacts::of(&parsed)), "{value}");
    }
    assert_eq!(RecordFacts::of_document(&doc(&json!({"type": "note"}))), None);
}

fn signature(by: &str) -> Value {
    json!({"at": "2026-11-21T09:00:00Z", "by": by})
}

fn sign(base: &Automerge, side: Side, by: &str) -> Automerge {
    edit(base, |tx| json::put_in_map(tx, "signOff", side.as_str(), &signature(by)).unwrap())
}

fn withdraw(base: &Automerge, side: Side) -> Automerge {
    edit(base, |tx| {
        let sign_off = tx.get(automerge::ROOT, "signOff").unwrap().unwrap().1;
        tx.delete(&sign_off, side.as_str()).unwrap();
    })
}

fn with_sign_off_laid_out() -> Automerge {
    let mut record = observation();
    record["signOff"] = json!({});
    record["response"] = json!("");
    doc(&record)
}

#[test]
fn the_observers_sign_off_freezes_their_fields_until_withdrawn() {
    let base = with_sign_off_laid_out();
    let set = |d: &Automerge, path: &str, value: Value| edit(d, |tx| json::set_path(tx, path, &value).unwrap());
    let signed = sign(&base, Side::Observer, "sam");
    assert_eq!(judged(Party::Observer, &base, &signed).unwrap().signed, [Side::Observer]);
    assert_eq!(
        check(Party::Observer, &signed, &set(&signed, "feedback", json!("changed after signing"))).unwrap_err(),
        "feedback is covered by your sign-off; withdraw your sign-off first to change it"
    );
    // The practitioner's own side stays open, and they may sign.
    assert!(check(Party::Practitioner, &signed, &set(&signed, "reflection", json!("I will"))).is_ok());
    assert!(check(Party::Practitioner, &signed, &sign(&signed, Side::Practitioner, "pat")).is_ok());
    // Withdrawing is its own, audited change; then the field is open again, in the same
    // message too — but not for a change made before the withdrawal.
    let withdrawn = withdraw(&signed, Side::Observer);
    assert_eq!(judged(Party::Observer, &signed, &withdrawn).unwrap().withdrawn, [Side::Observer]);
    assert!(check(Party::Observer, &signed, &set(&withdrawn, "feedback", json!("clearer"))).is_ok());
    assert!(check(Party::Observer, &signed, &withdraw(&set(&signed, "feedback", json!("x")), Side::Observer)).is_err());
    // Nobody withdraws someone else's signature.
    assert!(check(Party::Practitioner, &signed, &withdrawn).is_err());
}

#[test]
fn the_practitioners_sign_off_freezes_everything_but_the_sign_offs() {
    let base = with_sign_off_laid_out();
    let set = |d: &Automerge, path: &str, value: Value| edit(d, |tx| json::set_path(tx, path, &value).unwrap());
    let signed = sign(&base, Side::Practitioner, "pat");
    assert_eq!(
        check(Party::Observer, &signed, &set(&signed, "feedback", json!("not what pat read"))).unwrap_err(),
        "feedback is covered by the practitioner's sign-off; it can change only after they withdraw it"
    );
    assert!(check(Party::Practitioner, &signed, &set(&signed, "response", json!("more"))).is_err());
    let both = sign(&signed, Side::Observer, "sam");
    let judgement = judged(Party::Observer, &signed, &both).unwrap();
    assert_eq!(judgement.signed, [Side::Observer]);
}

#[test]
fn a_sign_off_covers_the_record_as_its_signer_saw_it() {
    let base = with_sign_off_laid_out();
    // The practitioner signs what they read; meanwhile the observer, who had not seen the
    // signature, changes the feedback.
    let signature = sign(&base, Side::Practitioner, "pat");
    let edited = edit(&base, |tx| json::set_path(tx, "feedback", &json!("rewritten")).unwrap());
    let mut both = edited.clone();
    both.merge(&mut signature.clone()).unwrap();
    // The edit reached the server first: the signature is out of date.
    let err = check(Party::Practitioner, &edited, &both).unwrap_err();
    assert!(err.contains("without the latest change to feedback"), "{err}");
    // The signature reached the server first: the edit is refused.
    let err = check(Party::Observer, &signature, &both).unwrap_err();
    assert!(err.contains("covered by the practitioner's sign-off"), "{err}");
    // Both signing at once, each before seeing the other's, is fine: signatures cover
    // neither sign-off.
    let observer_signed = sign(&base, Side::Observer, "sam");
    let mut together = observer_signed.clone();
    together.merge(&mut signature.clone()).unwrap();
    assert_eq!(check(Party::Practitioner, &observer_signed, &together).err(), None);
    // A record made, signed and then changed offline, sent in one message.
    let mut record = observation();
    record["signOff"] = json!({});
    let created = doc(&record);
    let after = edit(&sign(&created, Side::Observer, "sam"), |tx| {
        json::set_path(tx, "feedback", &json!("changed after signing")).unwrap()
    });
    let err = check(Party::Observer, &Automerge::new(), &after).unwrap_err();
    assert!(err.contains("the observer's sign-off was made without the latest change to feedback"), "{err}");
}

#[test]
fn a_withdrawal_is_seen_even_when_the_same_message_signs_again() {
    let base = with_sign_off_laid_out();
    let signed = sign(&base, Side::Observer, "sam");
    let set = |d: &Automerge, path: &str, value: Value| edit(d, |tx| json::set_path(tx, path, &value).unwrap());
    // Withdraw, edit, sign again: three changes, one message.
    let again = sign(&set(&withdraw(&signed, Side::Observer), "feedback", json!("clearer")), Side::Observer, "sam");
    let judgement = judged(Party::Observer, &signed, &again).unwrap();
    assert_eq!(judgement.withdrawn, [Side::Observer], "the withdrawal is audited");
    assert_eq!(judgement.signed, [Side::Observer], "and the new signature");
}

#[test]
fn a_signature_that_surfaces_from_older_changes_is_checked_too() {
    let base = with_sign_off_laid_out();
    // The practitioner signs on two devices at once; the server holds both (one wins).
    let phone = sign(&base, Side::Practitioner, "pat");
    let tablet = sign(&base, Side::Practitioner, "pat");
    let mut both = phone.clone();
    both.merge(&mut tablet.clone()).unwrap();
    // The winner's device withdraws only the signature it saw: the other one surfaces, and
    // is judged like a new one (it covers the record as its signer saw it).
    let signature = |doc: &Automerge| {
        let (_, sign_off) = doc.get(automerge::ROOT, "signOff").unwrap().unwrap();
        doc.get(&sign_off, "practitioner").unwrap().unwrap().1
    };
    let winner = if signature(&both) == signature(&phone) { &phone } else { &tablet };
    let mut after = both.clone();
    after.merge(&mut withdraw(winner, Side::Practitioner)).unwrap();
    let judgement = judged(Party::Practitioner, &both, &after).unwrap();
    assert_eq!(judgement.withdrawn, [Side::Practitioner]);
    assert_eq!(judgement.signed, [Side::Practitioner], "the surfacing signature is checked and recorded");
}

fn group_session(status: &str) -> Value {
    json!({
        "type": "group-session", "schemaVersion": 1, "facilitatorId": "sam", "participantIds": ["pat", "kim"],
        "heldAt": "2026-11-20T10:00:00Z", "kind": "group-supervision", "framework": "kss-cf-2018",
        "components": ["kss-cf-2018/6"], "themes": ["Analysis"], "summary": "We looked at analysis.",
        "actions": [], "reflections": {}, "status": status,
    })
}

/// Someone standing to the test group session (sam facilitates pat and kim; lee is above
/// pat) or the test theme (sam raised it for team north; lee is above sam).
fn loop_viewer(id: &str) -> Viewer {
    match id {
        "sam" => Viewer { team: Some("north".into()), ..viewer("sam", Role::Supervisor, &[]) },
        "lee" => viewer("lee", Role::Manager, &[("pat", "2000-01-01", None), ("sam", "2000-01-01", None)]),
        "psw" => viewer("psw", Role::PrincipalSocialWorker, &[]),
        "north" => Viewer { team: Some("north".into()), ..viewer("nia", Role::Practitioner, &[]) },
        other => viewer(other, Role::Practitioner, &[]),
    }
}

fn by(id: &str, before: &Automerge, after: &Automerge) -> Result<Judgement, String> {
    judged_as(&loop_viewer(id), before, after)
}

#[test]
fn group_session_reads_follow_the_participants() {
    let today = "2026-11-26";
    let shared =
        RecordFacts::of(&Record::parse(&group_session("shared"), &crate::frameworks::Catalog::shipped()).unwrap());
    let draft = RecordFacts { draft: true, ..shared.clone() };
    let party = |id: &str, facts: &RecordFacts| loop_viewer(id).party(facts, today);
    assert_eq!(party("sam", &draft), Party::Facilitator);
    assert_eq!(party("pat", &draft), Party::None, "participants see it once shared");
    assert_eq!(party("pat", &shared), Party::Participant);
    assert_eq!(party("kim", &shared), Party::Participant);
    assert_eq!(party("lee", &shared), Party::Line, "a participant's line reads it");
    assert_eq!(party("eve", &shared), Party::None, "a non-participant cannot read it");
    assert_eq!(party("psw", &shared), Party::None, "need to know: not every principal social worker");
}

#[test]
fn group_session_participants_write_only_their_own_reflection() {
    let base = doc(&group_session("shared"));
    let set = |path: &str, value: Value| edit(&base, |tx| json::set_path(tx, path, &value).unwrap());
    let own = edit(&base, |tx| json::put_in_map(tx, "reflections", "pat", &json!("I learnt")).unwrap());
    assert_eq!(by("pat", &base, &own).unwrap().party, Party::Participant);
    let other = edit(&base, |tx| json::put_in_map(tx, "reflections", "kim", &json!("for kim")).unwrap());
    assert_eq!(by("pat", &base, &other).unwrap_err(), "the participant may not change reflections.kim");
    assert_eq!(by("pat", &base, &set("summary", json!("mine"))).unwrap_err(), "the participant may not change summary");
    assert_eq!(by("sam", &base, &own).unwrap_err(), "the facilitator may not change reflections.pat");
    assert!(by("sam", &base, &set("summary", json!("Clearer"))).is_ok());
    assert!(by("sam", &base, &set("facilitatorId", json!("eve"))).is_err());
    assert!(by("lee", &base, &set("summary", json!("x"))).is_err());
    // Reflections belong to participants; the facilitator cannot be one.
    let stranger = edit(&base, |tx| json::put_in_map(tx, "reflections", "eve", &json!("hi")).unwrap());
    assert!(by("eve", &base, &stranger).is_err());
    assert!(by("sam", &base, &set("participantIds", json!(["pat", "sam"]))).unwrap_err().contains("facilitator"));
    // One id each: the projection keeps them space-separated.
    assert!(by("sam", &base, &set("participantIds", json!(["pat", "kim lee"]))).unwrap_err().contains("user id"));
    // Closed: nothing changes any more.
    let closed = set("status", json!("closed"));
    assert!(by("sam", &base, &closed).unwrap_err().contains("closedAt"));
    let closed = edit(&base, |tx| {
        json::set_path(tx, "closedAt", &json!("2026-11-21T09:00:00Z")).unwrap();
        json::set_path(tx, "status", &json!("closed")).unwrap();
    });
    let events = by("sam", &base, &closed).unwrap().events;
    let attended: Vec<&str> = events.iter().map(|e| e.practitioner_id.as_str()).collect();
    assert_eq!(attended, ["sam", "pat", "kim"]);
    assert!(events.iter().all(|e| e.kind == "group-session.attended" && e.detail.get("summary").is_none()));
    let late = edit(&closed, |tx| json::put_in_map(tx, "reflections", "pat", &json!("late")).unwrap());
    assert!(by("pat", &closed, &late).unwrap_err().contains("locked"));
    assert!(by("pat", &base, &set("status", json!("closed"))).is_err(), "only the facilitator closes");
}

#[test]
fn group_session_creation_is_a_leaders() {
    let empty = Automerge::new();
    assert!(by("sam", &empty, &doc(&group_session("draft"))).is_ok());
    let mut by_practitioner = group_session("draft");
    by_practitioner["facilitatorId"] = json!("eve");
    assert!(by("eve", &empty, &doc(&by_practitioner)).unwrap_err().contains("only a supervisor"));
    let mut with_reflection = group_session("shared");
    with_reflection["reflections"] = json!({"pat": "written for pat"});
    assert!(by("sam", &empty, &doc(&with_reflection)).is_err());
}

#[test]
fn group_session_offline_edits_merge() {
    let base = doc(&group_session("shared"));
    let facilitator = edit(&base, |tx| json::set_path(tx, "summary", &json!("Summary v2")).unwrap());
    let pat = edit(&base, |tx| json::put_in_map(tx, "reflections", "pat", &json!("pat's")).unwrap());
    let kim = edit(&base, |tx| json::put_in_map(tx, "reflections", "kim", &json!("kim's")).unwrap());
    // Each is judged against the stored record, in whatever order they arrive.
    let mut stored = base.clone();
    for (who, device) in [("kim", &kim), ("sam", &facilitator), ("pat", &pat)] {
        let mut next = stored.clone();
        next.merge(&mut device.clone()).unwrap();
        by(who, &stored, &next).unwrap();
        stored = next;
    }
    let merged = crate::json::to_json(&stored);
    assert_eq!(merged["summary"], json!("Summary v2"));
    assert_eq!(merged["reflections"], json!({"pat": "pat's", "kim": "kim's"}));
}

fn practice_theme() -> Value {
    json!({
        "type": "practice-theme", "schemaVersion": 1, "raisedBy": "sam", "raisedAt": "2026-11-20T10:00:00Z",
        "team": "north", "category": "environment", "summary": "No quiet rooms for calls.",
        "evidence": {"observations": 12}, "responses": [], "status": "raised",
    })
}

#[test]
fn practice_theme_raiser_responder_and_outsider() {
    let today = "2026-11-26";
    let facts = RecordFacts::of(&Record::parse(&practice_theme(), &crate::frameworks::Catalog::shipped()).unwrap());
    let party = |id: &str| loop_viewer(id).party(&facts, today);
    assert_eq!(party("sam"), Party::Raiser);
    assert_eq!(party("lee"), Party::Responder, "a manager above the raiser");
    assert_eq!(party("psw"), Party::Responder);
    assert_eq!(party("north"), Party::Team, "the raiser's team reads it");
    assert_eq!(party("eve"), Party::None);
    let above_not_manager = viewer("sue", Role::Supervisor, &[("sam", "2000-01-01", None)]);
    assert_eq!(above_not_manager.party(&facts, today), Party::Line);

    let base = doc(&practice_theme());
    let set = |path: &str, value: Value| edit(&base, |tx| json::set_path(tx, path, &value).unwrap());
    let response = |who: &str| {
        edit(&base, |tx| {
            let r = json!({"id": "r1", "at": "2026-11-22T09:00:00Z", "by": who, "text": "We booked rooms."});
            json::append(tx, "responses", &r).unwrap();
            json::set_path(tx, "status", &json!("acted")).unwrap();
        })
    };
    assert!(by("lee", &base, &response("lee")).is_ok());
    assert!(by("psw", &base, &response("psw")).is_ok());
    assert!(by("lee", &base, &response("psw")).unwrap_err().contains("own name"));
    // Nobody takes over, rewrites or removes another responder's answer; their own, they may.
    let answered = response("lee");
    let rewrite = |value: Value| edit(&answered, |tx| json::set_path(tx, "responses.0", &value).unwrap());
    let taken_over = json!({"id": "r1", "at": "2026-11-22T09:00:00Z", "by": "psw", "text": "Mine now."});
    assert!(by("psw", &answered, &rewrite(taken_over)).unwrap_err().contains("own name"));
    let removed = edit(&answered, |tx| {
        let responses = tx.get(automerge::ROOT, "responses").unwrap().unwrap().1;
        tx.delete(&responses, 0).unwrap();
    });
    assert!(by("psw", &answered, &removed).unwrap_err().contains("own name"));
    let corrected = json!({"id": "r1", "at": "2026-11-22T09:00:00Z", "by": "lee", "text": "We booked three rooms."});
    assert!(by("lee", &answered, &rewrite(corrected)).is_ok());
    assert!(by("lee", &answered, &removed).is_ok());
    let answering_own = edit(&base, |tx| {
        let r = json!({"id": "r1", "at": "2026-11-22T09:00:00Z", "by": "sam", "text": "Done."});
        json::append(tx, "responses", &r).unwrap();
    });
    assert_eq!(by("sam", &base, &answering_own).unwrap_err(), "the raiser of the theme may not change responses");
    assert!(by("sam", &base, &set("summary", json!("Clearer"))).is_ok());
    assert_eq!(by("lee", &base, &set("summary", json!("x"))).unwrap_err(), "the responder may not change summary");
    assert!(by("north", &base, &set("summary", json!("x"))).is_err());
    assert!(by("eve", &base, &set("summary", json!("x"))).is_err());
    assert!(by("sam", &base, &set("status", json!("closed"))).unwrap_err().contains("may not change status"));
    // Evidence is numbers under identifier labels, never prose.
    assert!(by("sam", &base, &set("evidence", json!({"observations": 3, "kss-cf-2018/6:not-met": 2}))).is_ok());
    assert!(by("sam", &base, &set("evidence", json!({"the Smith family": 1}))).unwrap_err().contains("evidence"));
    assert!(by("sam", &base, &set("evidence", json!({"observations": "many"}))).is_err());
    // For the raiser's own team only.
    assert!(by("sam", &base, &set("team", json!("south"))).unwrap_err().contains("own team"));
    let mut elsewhere = practice_theme();
    elsewhere["team"] = json!("south");
    assert!(by("sam", &Automerge::new(), &doc(&elsewhere)).unwrap_err().contains("own team"));
    // Raising is for leaders, with status `raised`.
    let empty = Automerge::new();
    assert!(by("sam", &empty, &base).is_ok());
    let mut by_practitioner = practice_theme();
    by_practitioner["raisedBy"] = json!("eve");
    assert!(by("eve", &empty, &doc(&by_practitioner)).is_err());
    let mut answered = practice_theme();
    answered["status"] = json!("acted");
    assert!(by("sam", &empty, &doc(&answered)).is_err());
}
