//! Who may see and write what, through the real sync path: every role against every field of
//! every record type, need-to-know reads, authorship and the stock JavaScript client.

use automerge::Automerge;
use automerge::transaction::Transactable;
use fieldbook_server::storage::{Role, Team};
use fieldbook_sync_core::{DocumentId, json};
use fieldbook_tests::peer::{Outcome, Peer};
use fieldbook_tests::records::{document, observation, plan};
use fieldbook_tests::{Backend, TempDir, TestApp, js};
use serde_json::{Value, json};

/// The organisation: pat is supervised by sam, sam by mo (so mo is in pat's line); kim is
/// supervised by nobody here; eve and sam are in team north.
const PEOPLE: &[(&str, Role)] = &[
    ("pat", Role::Practitioner),
    ("mo", Role::Manager),
    ("pip", Role::PrincipalSocialWorker),
    ("hana", Role::Hr),
    ("ada", Role::Admin),
    ("eve", Role::Practitioner),
    ("kim", Role::Practitioner),
];
const USERS: [&str; 8] = ["sam", "pat", "mo", "pip", "hana", "ada", "eve", "kim"];

struct Org {
    app: TestApp,
    tokens: Vec<(&'static str, String)>,
}

impl Org {
    async fn spawn() -> Self {
        let app = TestApp::spawn(Backend::Sqlite).await;
        let mut tokens = vec![("sam", app.token.clone())];
        for (id, role) in PEOPLE {
            tokens.push((id, app.db.user(id, *role).await));
        }
        let db = app.db.connect().await;
        db.set_supervisor("pat", Some("sam"), "2020-01-01").await.unwrap();
        db.set_supervisor("sam", Some("mo"), "2020-01-01").await.unwrap();
        db.add_team(&Team { id: "north".into(), name: "North".into() }).await.unwrap();
        for id in ["sam", "eve"] {
            let mut user = db.user(id).await.unwrap().unwrap();
            user.team_id = Some("north".into());
            db.update_user(&user).await.unwrap();
        }
        db.close().await;
        Self { app, tokens }
    }

    fn token(&self, user: &str) -> &str {
        &self.tokens.iter().find(|(id, _)| *id == user).expect("known user").1
    }

    async fn peer(&self, user: &str) -> Peer {
        Peer::connect(&self.app.server.ws_url(self.token(user)), user).await
    }
}

fn edited(base: &Automerge, path: &str, value: &Value) -> Automerge {
    let mut doc = base.fork();
    let mut tx = doc.transaction();
    json::set_path(&mut tx, path, value).unwrap();
    tx.commit();
    doc
}

/// (path, two values to write, who may write it). `TEXT` becomes "written by <user>"; of
/// the two, a writer uses one the field does not hold yet, so every attempt is a real change.
fn observation_fields() -> Vec<(&'static str, [Value; 2], &'static [&'static str])> {
    const OBSERVER: &[&str] = &["sam"];
    const PRACTITIONER: &[&str] = &["pat"];
    const NOBODY: &[&str] = &[];
    vec![
        ("type", [json!("development-plan"), json!("x-other")], NOBODY),
        ("schemaVersion", [json!(2), json!(3)], NOBODY),
        ("practitionerId", [json!("eve"), json!("pip")], NOBODY),
        ("observerId", [json!("mo"), json!("eve")], NOBODY),
        ("observedAt", [json!("2026-11-21T09:30:00Z"), json!("2026-11-22T09:30:00Z")], OBSERVER),
        ("setting", [json!("office-visit"), json!("virtual")], OBSERVER),
        ("present", [json!("mother and one child"), json!("TEXT, again")], OBSERVER),
        ("purpose", [json!("review of the plan"), json!("TEXT, again")], OBSERVER),
        (
            "consent",
            [
                json!({"given": true, "by": "mother", "how": "verbal"}),
                json!({"given": false, "by": "father", "how": "TEXT"}),
            ],
            OBSERVER,
        ),
        ("consent.withdrawnAt", [json!("2026-11-22T10:00:00Z"), json!("2026-11-23T10:00:00Z")], OBSERVER),
        ("framework", [json!("pcf-2018"), json!("kss-ps-2018")], OBSERVER),
        ("components", [json!(["kss-cf-2018/2"]), json!(["kss-cf-2018/3"])], OBSERVER),
        ("notes", [json!("TEXT"), json!("TEXT, again")], OBSERVER),
        ("strengths", [json!(["TEXT"]), json!(["TEXT", "again"])], OBSERVER),
        ("developmentAreas", [json!(["TEXT"]), json!(["TEXT", "again"])], OBSERVER),
        ("judgements", [json!({"kss-cf-2018/1": "met"}), json!({"kss-cf-2018/1": "not-met"})], OBSERVER),
        ("feedback", [json!("TEXT"), json!("TEXT, again")], OBSERVER),
        ("feedbackGivenAt", [json!("2026-11-20T12:00:00Z"), json!("2026-11-20T13:00:00Z")], OBSERVER),
        ("reflection", [json!("TEXT"), json!("TEXT, again")], PRACTITIONER),
        ("response", [json!("TEXT"), json!("TEXT, again")], PRACTITIONER),
        (
            "familyVoice",
            [json!({"text": "TEXT", "how": "asked at the end"}), json!({"text": "TEXT, again", "how": "by phone"})],
            PRACTITIONER,
        ),
        ("actions", [json!([{"id": "a1", "text": "TEXT"}]), json!([{"id": "a2", "text": "TEXT"}])], OBSERVER),
        // From a draft (see the test): only the observer shares it; nobody takes it back.
        ("status", [json!("shared"), json!("draft")], OBSERVER),
        (
            "signOff.observer",
            [json!({"at": "2026-11-21T09:00:00Z", "by": "sam"}), json!({"at": "2026-11-22T09:00:00Z", "by": "sam"})],
            OBSERVER,
        ),
        (
            "signOff.practitioner",
            [json!({"at": "2026-11-21T09:00:00Z", "by": "pat"}), json!({"at": "2026-11-22T09:00:00Z", "by": "pat"})],
            PRACTITIONER,
        ),
        ("appNote", [json!("TEXT"), json!("TEXT, again")], OBSERVER),
    ]
}

fn plan_fields() -> Vec<(&'static str, [Value; 2], &'static [&'static str])> {
    const OWNER: &[&str] = &["pat"];
    const SUPERVISOR: &[&str] = &["sam"];
    const BOTH: &[&str] = &["pat", "sam"];
    const NOBODY: &[&str] = &[];
    vec![
        ("type", [json!("observation"), json!("x-other")], NOBODY),
        ("schemaVersion", [json!(2), json!(3)], NOBODY),
        ("ownerId", [json!("eve"), json!("pip")], NOBODY),
        ("supervisorId", [json!("mo"), json!("eve")], NOBODY),
        ("framework", [json!("kss-cf-2018"), json!("pcf-2018")], SUPERVISOR),
        (
            "period",
            [json!({"from": "2026-09-01", "to": "2027-08-31"}), json!({"from": "2026-10-01", "to": "2027-09-30"})],
            SUPERVISOR,
        ),
        ("source", [json!("appraisal"), json!("supervision")], SUPERVISOR),
        ("gapAnalysis.kss-cf-2018/6.self", [json!(3), json!(1)], OWNER),
        ("gapAnalysis.kss-cf-2018/6.supervisor", [json!(4), json!(1)], SUPERVISOR),
        ("gapAnalysis.kss-cf-2018/6.note", [json!("TEXT"), json!("TEXT, again")], SUPERVISOR),
        ("goals.0.title", [json!("TEXT"), json!("TEXT, again")], SUPERVISOR),
        ("goals.0.components", [json!(["kss-cf-2018/7"]), json!(["kss-cf-2018/8"])], SUPERVISOR),
        ("goals.0.successMeasure", [json!("TEXT"), json!("TEXT, again")], SUPERVISOR),
        ("goals.0.targetDate", [json!("2027-02-28"), json!("2027-03-31")], SUPERVISOR),
        ("goals.0.support", [json!("TEXT"), json!("TEXT, again")], SUPERVISOR),
        ("goals.0.status", [json!("in-progress"), json!("met")], BOTH),
        ("goals.0.completedAt", [json!("2027-01-10T10:00:00Z"), json!("2027-01-11T10:00:00Z")], BOTH),
        (
            "goals.0.evidence",
            [json!(["automerge:2YBy6Nbp3B8oqngDD6CXtLh2dYgH"]), json!(["automerge:4EF6dM6RfSE69EHcPu6EtvNbHjYJ"])],
            BOTH,
        ),
        ("goals.0.reflection", [json!("TEXT"), json!("TEXT, again")], OWNER),
        (
            "goals.1",
            [
                json!({"id": "g2", "title": "TEXT", "status": "not-started"}),
                json!({"id": "g3", "title": "TEXT", "status": "not-started"}),
            ],
            SUPERVISOR,
        ),
        (
            "reviews",
            [
                json!([{"at": "2027-01-10T10:00:00Z", "by": "sam", "note": "TEXT"}]),
                json!([{"at": "2027-01-11T10:00:00Z", "by": "sam", "note": "TEXT"}]),
            ],
            SUPERVISOR,
        ),
        ("status", [json!("agreed"), json!("draft")], SUPERVISOR),
        ("appNote", [json!("TEXT"), json!("TEXT, again")], BOTH),
    ]
}

/// Every user tries to write the field; only the listed ones succeed, the others are refused
/// (or, if they may not see the record, told it does not exist), and the server's copy ends
/// with the last allowed write.
async fn check_field(
    org: &Org,
    base: &Value,
    path: &str,
    values: &[Value; 2],
    allowed: &[&str],
    creator: &str,
) -> usize {
    let id = DocumentId::random();
    let mut owner = org.peer(creator).await;
    assert_eq!(owner.push(id, &document(base)).await, Outcome::Accepted, "{path}: create");
    let users = USERS;
    let mut expected = lookup(base, path).cloned();
    let mut checked = 0;
    for user in users {
        let mut peer = org.peer(user).await;
        let fresh = |current: Option<&Value>| {
            let first = unique_value(&values[0], user);
            if current == Some(&first) { unique_value(&values[1], user) } else { first }
        };
        let mut unique = fresh(expected.as_ref());
        let outcome = match peer.fetch(id).await {
            Ok(server_copy) => {
                unique = fresh(lookup(&json::to_json(&server_copy), path));
                let edit = edited(&server_copy, path, &unique);
                assert_ne!(edit.get_heads(), server_copy.get_heads(), "{path} by {user}: not a change");
                peer.push(id, &edit).await
            }
            Err(outcome) => outcome,
        };
        let may = allowed.contains(&user);
        match (&outcome, may) {
            (Outcome::Accepted, true) => expected = Some(unique),
            (Outcome::Rejected(reason), false) => assert!(!reason.is_empty()),
            (Outcome::Unavailable, false) => {}
            _ => panic!(
                "{path} written by {user}: expected {}, got {outcome:?}",
                if may { "accepted" } else { "refused" }
            ),
        }
        checked += 1;
    }
    // The server's copy holds exactly the allowed writes.
    let server_copy = org.peer(creator).await.fetch(id).await.unwrap_or_else(|o| panic!("{path}: refetch {o:?}"));
    let stored = json::to_json(&server_copy);
    assert_eq!(lookup(&stored, path), expected.as_ref(), "{path}: server copy");
    checked
}

fn unique_value(value: &Value, user: &str) -> Value {
    let text = serde_json::to_string(value).unwrap().replace("TEXT", &format!("written by {user}"));
    serde_json::from_str(&text).unwrap()
}

fn lookup<'v>(value: &'v Value, path: &str) -> Option<&'v Value> {
    path.split('.').try_fold(value, |v, key| match key.parse::<usize>() {
        Ok(i) => v.get(i),
        Err(_) => v.get(key),
    })
}

#[tokio::test]
async fn every_role_against_every_field_through_sync() {
    let org = Org::spawn().await;
    let obs_base = observation(json!({
        "status": "shared", "components": [], "notes": "base", "feedback": "base", "reflection": "",
    }));
    let mut checked = 0;
    let mut draft = obs_base.clone();
    draft["status"] = json!("draft");
    for (path, values, allowed) in observation_fields() {
        let base = if path == "status" { &draft } else { &obs_base };
        checked += check_field(&org, base, path, &values, allowed, "sam").await;
    }
    let plan_base = plan(json!({
        "gapAnalysis": {"kss-cf-2018/6": {"supervisor": 3, "note": "base"}},
        "goals": [{"id": "g1", "title": "base", "status": "not-started", "components": [], "evidence": []}],
        "framework": "kss-ps-2018",
    }));
    for (path, values, allowed) in plan_fields() {
        let base = if path.starts_with("gapAnalysis") || path == "goals.0.components" {
            let mut b = plan_base.clone();
            b["framework"] = json!("kss-cf-2018");
            b
        } else {
            let mut b = plan_base.clone();
            b["gapAnalysis"] = json!({});
            b
        };
        checked += check_field(&org, &base, path, &values, allowed, "sam").await;
    }
    assert_eq!(checked, USERS.len() * (observation_fields().len() + plan_fields().len()));
}

/// A group session sam runs with pat and kim.
fn group_session_base() -> Value {
    json!({
        "type": "group-session", "schemaVersion": 1, "facilitatorId": "sam", "participantIds": ["pat", "kim"],
        "heldAt": "2026-11-20T10:00:00Z", "kind": "group-supervision", "framework": "kss-cf-2018",
        "components": [], "themes": [], "summary": "base", "actions": [], "reflections": {}, "status": "shared",
    })
}

fn group_session_fields() -> Vec<(&'static str, [Value; 2], &'static [&'static str])> {
    const FACILITATOR: &[&str] = &["sam"];
    const NOBODY: &[&str] = &[];
    vec![
        ("facilitatorId", [json!("mo"), json!("eve")], NOBODY),
        ("participantIds", [json!(["pat", "kim", "eve"]), json!(["pat", "kim", "mo"])], FACILITATOR),
        ("heldAt", [json!("2026-11-21T10:00:00Z"), json!("2026-11-22T10:00:00Z")], FACILITATOR),
        ("kind", [json!("team-development"), json!("practice-discussion")], FACILITATOR),
        ("components", [json!(["kss-cf-2018/2"]), json!(["kss-cf-2018/3"])], FACILITATOR),
        ("themes", [json!(["TEXT"]), json!(["TEXT", "again"])], FACILITATOR),
        ("summary", [json!("TEXT"), json!("TEXT, again")], FACILITATOR),
        ("actions", [json!([{"id": "a1", "text": "TEXT"}]), json!([{"id": "a2", "text": "TEXT"}])], FACILITATOR),
        // Each participant their own entry, nobody else's.
        ("reflections.pat", [json!("TEXT"), json!("TEXT, again")], &["pat"]),
        ("reflections.kim", [json!("TEXT"), json!("TEXT, again")], &["kim"]),
    ]
}

/// A theme sam raised for team north (mo is above sam; pip answers every theme).
fn practice_theme_base() -> Value {
    json!({
        "type": "practice-theme", "schemaVersion": 1, "raisedBy": "sam", "raisedAt": "2026-11-20T10:00:00Z",
        "team": "north", "category": "environment", "summary": "base", "evidence": {}, "responses": [],
        "status": "raised",
    })
}

fn practice_theme_fields() -> Vec<(&'static str, [Value; 2], &'static [&'static str])> {
    const RAISER: &[&str] = &["sam"];
    const RESPONDERS: &[&str] = &["mo", "pip"];
    const NOBODY: &[&str] = &[];
    vec![
        ("raisedBy", [json!("mo"), json!("eve")], NOBODY),
        ("category", [json!("workload"), json!("organisation")], RAISER),
        ("summary", [json!("TEXT"), json!("TEXT, again")], RAISER),
        ("evidence", [json!({"observations": 12}), json!({"observations": 14})], RAISER),
        // Responses: see `group_sessions_and_themes_are_need_to_know` (each in its writer's name).
        ("status", [json!("acknowledged"), json!("acted")], RESPONDERS),
    ]
}

#[tokio::test]
async fn group_sessions_and_themes_every_role_against_every_field() {
    let org = Org::spawn().await;
    let mut checked = 0;
    for (path, values, allowed) in group_session_fields() {
        checked += check_field(&org, &group_session_base(), path, &values, allowed, "sam").await;
    }
    for (path, values, allowed) in practice_theme_fields() {
        checked += check_field(&org, &practice_theme_base(), path, &values, allowed, "sam").await;
    }
    assert_eq!(checked, USERS.len() * (group_session_fields().len() + practice_theme_fields().len()));
}

#[tokio::test]
async fn group_sessions_and_themes_are_need_to_know() {
    let org = Org::spawn().await;
    let mut sam = org.peer("sam").await;
    let session = DocumentId::random();
    let mut draft = group_session_base();
    draft["status"] = json!("draft");
    assert_eq!(sam.push(session, &document(&draft)).await, Outcome::Accepted);
    assert_eq!(org.peer("pat").await.fetch(session).await.err(), Some(Outcome::Unavailable), "a draft is sam's");
    let shared = edited(&sam.fetch(session).await.unwrap(), "status", &json!("shared"));
    assert_eq!(sam.push(session, &shared).await, Outcome::Accepted);
    // Participants and a participant's line read it; nobody else, not even a PSW.
    for user in ["pat", "kim", "mo"] {
        let copy = org.peer(user).await.fetch(session).await.unwrap_or_else(|o| panic!("{user}: {o:?}"));
        assert_eq!(json::to_json(&copy)["summary"], "base");
    }
    for user in ["pip", "eve", "hana", "ada"] {
        assert_eq!(org.peer(user).await.fetch(session).await.err(), Some(Outcome::Unavailable), "{user}");
    }
    // A participant may not write another's reflection, nor the summary.
    let mut pat = org.peer("pat").await;
    let copy = pat.fetch(session).await.unwrap();
    for (path, value) in [("reflections.kim", "for kim"), ("summary", "mine")] {
        match pat.push(session, &edited(&copy, path, &json!(value))).await {
            Outcome::Rejected(reason) => assert!(reason.contains("participant may not change"), "{reason}"),
            other => panic!("{path} by pat: {other:?}"),
        }
    }
    assert_eq!(pat.push(session, &edited(&copy, "reflections.pat", &json!("I learnt"))).await, Outcome::Accepted);

    let theme = DocumentId::random();
    assert_eq!(sam.push(theme, &document(&practice_theme_base())).await, Outcome::Accepted);
    // The raiser, responders (mo above sam, pip) and team north (eve) read it.
    for user in ["mo", "pip", "eve"] {
        org.peer(user).await.fetch(theme).await.unwrap_or_else(|o| panic!("{user}: {o:?}"));
    }
    for user in ["pat", "kim", "hana", "ada"] {
        assert_eq!(org.peer(user).await.fetch(theme).await.err(), Some(Outcome::Unavailable), "{user}");
    }
    // Responders answer in their own name; nobody else answers.
    let response =
        |by: &str, id: &str| json!({"id": id, "at": "2026-11-22T09:00:00Z", "by": by, "text": "Rooms booked"});
    let appended = |copy: &Automerge, value: Value| {
        let mut doc = copy.fork();
        let mut tx = doc.transaction();
        json::append(&mut tx, "responses", &value).unwrap();
        tx.commit();
        doc
    };
    let mut mo = org.peer("mo").await;
    let copy = mo.fetch(theme).await.unwrap();
    assert_eq!(mo.push(theme, &appended(&copy, response("mo", "r1"))).await, Outcome::Accepted);
    let mut pip = org.peer("pip").await;
    let copy = pip.fetch(theme).await.unwrap();
    match pip.push(theme, &appended(&copy, response("mo", "r2"))).await {
        Outcome::Rejected(reason) => assert!(reason.contains("own name"), "{reason}"),
        other => panic!("pip answering as mo: {other:?}"),
    }
    match pip.push(theme, &edited(&copy, "responses.0.text", &json!("Changed"))).await {
        Outcome::Rejected(reason) => assert!(reason.contains("own name"), "{reason}"),
        other => panic!("pip changing mo's response: {other:?}"),
    }
    assert_eq!(pip.push(theme, &appended(&copy, response("pip", "r2"))).await, Outcome::Accepted);
    for user in ["sam", "eve"] {
        let mut peer = org.peer(user).await;
        let copy = peer.fetch(theme).await.unwrap();
        match peer.push(theme, &appended(&copy, response(user, "r3"))).await {
            Outcome::Rejected(reason) => assert!(reason.contains("may not change responses"), "{user}: {reason}"),
            other => panic!("{user} answering: {other:?}"),
        }
    }
    // The team reads the answers.
    let read = json::to_json(&org.peer("eve").await.fetch(theme).await.unwrap());
    assert_eq!(read["responses"].as_array().map(Vec::len), Some(2), "{read}");
    // A subject access export holds the themes one raised or answered, not those one read.
    let dir = TempDir::new("sar-themes");
    for (user, holds) in [("sam", true), ("mo", true), ("eve", false)] {
        let out = dir.path().join(format!("{user}.json"));
        org.app.fieldbook(&["subject-access", "--user", user, "--out", out.to_str().unwrap()]);
        let export = std::fs::read_to_string(&out).unwrap();
        assert_eq!(export.contains(&theme.url()), holds, "{user}: {export}");
    }

    // A practitioner may not raise one.
    let mut by_practitioner = practice_theme_base();
    by_practitioner["raisedBy"] = json!("eve");
    match org.peer("eve").await.push(DocumentId::random(), &document(&by_practitioner)).await {
        Outcome::Rejected(reason) => assert!(reason.contains("may raise"), "{reason}"),
        other => panic!("{other:?}"),
    }
    // The index lists each record to those who may read it, with their part.
    let index = |user: &'static str| {
        let org = &org;
        async move {
            let response = org.app.server.get_with("/v1/records", Some(org.token(user))).await.json();
            let records = response["records"].as_array().unwrap().clone();
            records.into_iter().map(|r| (r["url"].as_str().unwrap().to_owned(), r["party"].clone())).collect::<Vec<_>>()
        }
    };
    assert!(index("kim").await.contains(&(session.url(), json!("participant"))));
    assert!(index("eve").await.contains(&(theme.url(), json!("team"))));
    assert!(index("mo").await.contains(&(theme.url(), json!("responder"))));
    assert!(index("pip").await.contains(&(theme.url(), json!("responder"))));
    assert!(!index("pip").await.iter().any(|(url, _)| *url == session.url()));
    assert!(!index("pat").await.iter().any(|(url, _)| *url == theme.url()));
}

#[tokio::test]
async fn records_are_need_to_know() {
    let org = Org::spawn().await;
    let mut sam = org.peer("sam").await;
    let draft = DocumentId::random();
    assert_eq!(sam.push(draft, &document(&observation(json!({"notes": "draft notes"})))).await, Outcome::Accepted);

    // A draft stays with the observer: the practitioner gets the same answer as for an id
    // that was never used.
    let mut pat = org.peer("pat").await;
    assert_eq!(pat.fetch(draft).await.err(), Some(Outcome::Unavailable));
    assert_eq!(pat.fetch(DocumentId::random()).await.err(), Some(Outcome::Unavailable));

    // Shared: the practitioner, their line (mo, above sam) and the PSW see it; HR, admins
    // and other practitioners still get "unavailable".
    let shared = edited(&sam.fetch(draft).await.unwrap(), "status", &json!("shared"));
    assert_eq!(sam.push(draft, &shared).await, Outcome::Accepted);
    for user in ["pat", "mo", "pip"] {
        let copy = org.peer(user).await.fetch(draft).await.unwrap_or_else(|o| panic!("{user}: {o:?}"));
        assert_eq!(json::to_json(&copy)["notes"], "draft notes");
    }
    for user in ["hana", "ada", "eve"] {
        assert_eq!(org.peer(user).await.fetch(draft).await.err(), Some(Outcome::Unavailable), "{user}");
    }

    // Another practitioner's changes to it are kept aside, unseen, and change nothing.
    let mut eve = org.peer("eve").await;
    let forged = edited(&shared, "feedback", &json!("forged"));
    assert_eq!(eve.push(draft, &forged).await, Outcome::Unavailable);
    let stored = json::to_json(&sam.fetch(draft).await.unwrap());
    assert!(stored.get("feedback").is_none());
    // Written in the background, in batches: give it a moment.
    let mut audit = String::new();
    for _ in 0..50 {
        audit = org.app.fieldbook(&["audit", "--user", "eve", "--record", &draft.url()]);
        if audit.contains("\"action\":\"access-denied\"") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(audit.contains("\"action\":\"access-denied\""), "{audit}");
}

#[tokio::test]
async fn supervision_history_keeps_old_records_with_the_old_line() {
    let org = Org::spawn().await;
    let mut sam = org.peer("sam").await;
    let old = DocumentId::random();
    let record = observation(json!({"status": "shared", "observedAt": "2026-01-10T10:00:00Z"}));
    assert_eq!(sam.push(old, &document(&record)).await, Outcome::Accepted);
    // pat moves to a new supervisor (and so out of mo's line) from March.
    let new_token = org.app.db.user("nia", Role::Supervisor).await;
    let db = org.app.db.connect().await;
    db.set_supervisor("pat", Some("nia"), "2026-03-01").await.unwrap();
    db.close().await;
    let mut nia = Peer::connect(&org.app.server.ws_url(&new_token), "nia").await;
    assert!(nia.fetch(old).await.is_ok(), "the current line sees old records");
    assert!(org.peer("mo").await.fetch(old).await.is_ok(), "the line at the time still does");
    let later = DocumentId::random();
    let record = observation(json!({"status": "shared", "observedAt": "2026-04-10T10:00:00Z"}));
    assert_eq!(sam.push(later, &document(&record)).await, Outcome::Accepted);
    assert_eq!(org.peer("mo").await.fetch(later).await.err(), Some(Outcome::Unavailable), "not in mo's line then");
}

#[tokio::test]
async fn an_actor_belongs_to_one_user_and_device() {
    let org = Org::spawn().await;
    let mut sam = org.peer("sam").await;
    let id = DocumentId::random();
    let mut doc = document(&observation(json!({"status": "shared"})));
    assert_eq!(sam.push(id, &doc).await, Outcome::Accepted);
    // pat's device reuses sam's actor id for pat's own field: refused, even though pat may
    // write `reflection`.
    let sams_actor = doc.get_actor().clone();
    let mut forged = org.peer("pat").await.fetch(id).await.unwrap().fork();
    forged.set_actor(sams_actor);
    let mut tx = forged.transaction();
    json::set_path(&mut tx, "reflection", &json!("written under sam's actor")).unwrap();
    tx.commit();
    match org.peer("pat").await.push(id, &forged).await {
        Outcome::Rejected(reason) => assert!(reason.contains("belong to another user"), "{reason}"),
        other => panic!("expected a rejection, got {other:?}"),
    }
    // The same edit under pat's own actor is fine, and sam's actor still works for sam.
    let honest = edited(&org.peer("pat").await.fetch(id).await.unwrap(), "reflection", &json!("mine"));
    assert_eq!(org.peer("pat").await.push(id, &honest).await, Outcome::Accepted);
    let mut tx = doc.transaction();
    let _ = tx.put(automerge::ROOT, "purpose", "follow-up");
    tx.commit();
    doc.merge(&mut honest.clone()).unwrap();
    assert_eq!(sam.push(id, &doc).await, Outcome::Accepted);
}

#[tokio::test]
async fn the_stock_js_client_hears_a_practitioners_forbidden_edit_was_rejected() {
    let org = Org::spawn().await;
    let sam_ws = org.app.server.ws_url(org.token("sam"));
    let url = js::create(&sam_ws, &observation(json!({"status": "shared", "feedback": "Good use of play."})));
    let pat_ws = org.app.server.ws_url(org.token("pat"));
    let out = js::client(&["edit", "--url", &pat_ws, "--doc", &url, "--set", "feedback=I disagree"]).expect("js edit");
    let reason = out["rejected"]["reason"].as_str().unwrap_or_else(|| panic!("expected a rejection: {out}"));
    assert!(reason.contains("practitioner may not change feedback"), "{reason}");
    assert_eq!(js::fetch(&sam_ws, &url).unwrap()["feedback"], "Good use of play.");
    // The practitioner's own field goes through from the same client.
    let out = js::client(&["edit", "--url", &pat_ws, "--doc", &url, "--set", "reflection=I will slow down"]).unwrap();
    assert!(out["rejected"].is_null(), "{out}");
    assert_eq!(js::fetch(&sam_ws, &url).unwrap()["reflection"], "I will slow down");
}

#[tokio::test]
async fn each_party_signs_off_only_for_itself_and_both_lock_the_record() {
    let org = Org::spawn().await;
    let (mut sam, mut pat) = (org.peer("sam").await, org.peer("pat").await);
    let id = DocumentId::random();
    assert_eq!(sam.push(id, &document(&observation(json!({"status": "shared"})))).await, Outcome::Accepted);
    let signed =
        edited(&sam.fetch(id).await.unwrap(), "signOff.observer", &json!({"at": "2026-11-21T09:00:00Z", "by": "sam"}));
    assert_eq!(sam.push(id, &signed).await, Outcome::Accepted);

    // The practitioner may set `status` only to record the last signature, with it.
    let early = edited(&pat.fetch(id).await.unwrap(), "status", &json!("signed-off"));
    assert!(matches!(org.peer("pat").await.push(id, &early).await, Outcome::Rejected(_)));
    let mut last = pat.fetch(id).await.unwrap().fork();
    let mut tx = last.transaction();
    json::set_path(&mut tx, "signOff.practitioner", &json!({"at": "2026-11-21T10:00:00Z", "by": "pat"})).unwrap();
    json::set_path(&mut tx, "status", &json!("signed-off")).unwrap();
    tx.commit();
    assert_eq!(org.peer("pat").await.push(id, &last).await, Outcome::Accepted);

    // Locked: neither side changes anything any more.
    for (user, path) in [("sam", "notes"), ("pat", "reflection")] {
        let mut peer = org.peer(user).await;
        let late = edited(&peer.fetch(id).await.unwrap(), path, &json!("too late"));
        match org.peer(user).await.push(id, &late).await {
            Outcome::Rejected(reason) => assert!(reason.contains("locked"), "{reason}"),
            other => panic!("{user}: expected a rejection, got {other:?}"),
        }
    }
}
