//! The development-records API for HR (`/v1/api`): service accounts, the minimised record,
//! paging, CSV, and proof that no narrative ever leaves.

use fieldbook_server::storage::Role;
use fieldbook_tests::records::{observation, plan};
use fieldbook_tests::{Backend, Device, TestApp};
use serde_json::{Value, json};

const SENTINEL: &str = "SENTINEL-7f3a";

/// A unique marker per narrative field, so a leak says which field leaked.
fn s(field: &str) -> String {
    format!("{SENTINEL}-{field}")
}

fn key_from(output: &str) -> String {
    output.lines().find_map(|l| l.strip_prefix("key: ")).expect("a key line").trim().to_owned()
}

/// pat observed by sam, with every narrative field filled in, and a plan likewise.
async fn records_full_of_narrative(app: &TestApp) -> (String, String) {
    let pat = app.db.user("pat", Role::Practitioner).await;
    app.fieldbook(&["users", "update", "--id", "pat", "--employee-number", "E100", "--registration-number", "SW1"]);
    app.fieldbook(&["supervision", "set", "--user", "pat", "--supervisor", "sam", "--from", "2025-01-01"]);
    let tablet = Device::new();
    let observation = tablet.create(&observation(json!({
        "status": "shared", "present": s("present"), "purpose": s("purpose"),
        "consent": {"given": true, "by": s("consent.by"), "how": s("consent.how")},
        "notes": s("notes"), "strengths": [s("strengths")], "developmentAreas": [s("developmentAreas")],
        "judgements": {"kss-cf-2018/1": "met"}, "feedback": s("feedback"),
        "actions": [{"id": "a1", "text": s("actions.text")}], "signOff": {},
    })));
    let plan = tablet.create(&plan(json!({
        "status": "agreed", "period": {"from": "2026-09-01", "to": "2027-03-31"},
        "gapAnalysis": {"kss-cf-2018/6": {"supervisor": 3, "note": s("gapAnalysis.note")}},
        "goals": [{"id": "g1", "title": s("goals.title"), "components": ["kss-cf-2018/6"], "status": "in-progress",
                   "successMeasure": s("goals.successMeasure"), "support": s("goals.support"), "evidence": []}],
        "reviews": [{"at": "2026-11-20T10:00:00Z", "by": "sam", "note": s("reviews.note")}],
    })));
    tablet.sync(&app.http_url(), &app.token, &[]);
    let phone = Device::new();
    phone.sync(&app.http_url(), &pat, &[]);
    phone.edit(&observation, &[("reflection", &s("reflection")), ("response", &s("response"))]);
    phone.edit(
        &observation,
        &[("familyVoice", &json!({"text": s("familyVoice.text"), "how": s("familyVoice.how")}).to_string())],
    );
    phone.edit(&plan, &[("goals.0.reflection", &s("goals.reflection"))]);
    phone.sync(&app.http_url(), &pat, &[]);
    // A group session pat reflected in, closed; a theme sam raised and mo answered.
    let session = tablet.create(&json!({
        "type": "group-session", "schemaVersion": 1, "facilitatorId": "sam", "participantIds": ["pat"],
        "heldAt": "2026-11-20T10:00:00Z", "kind": "group-supervision", "framework": "kss-cf-2018",
        "components": ["kss-cf-2018/6"], "themes": [s("themes")], "summary": s("summary"),
        "actions": [{"id": "a1", "text": s("session.actions.text"), "ownerId": "pat"}], "reflections": {},
        "status": "shared",
    }));
    app.db.user("mo", Role::Manager).await;
    app.fieldbook(&["supervision", "set", "--user", "sam", "--supervisor", "mo", "--from", "2025-01-01"]);
    let theme = tablet.create(&json!({
        "type": "practice-theme", "schemaVersion": 1, "raisedBy": "sam", "raisedAt": "2026-11-20T10:00:00Z",
        "category": "practice", "framework": "kss-cf-2018", "components": ["kss-cf-2018/6"],
        "summary": s("theme.summary"), "evidence": {"kss-cf-2018/6:observations": 7}, "responses": [],
        "status": "raised",
    }));
    tablet.sync(&app.http_url(), &app.token, &[]);
    phone.sync(&app.http_url(), &pat, &[&session]);
    phone.edit(&session, &[("reflections.pat", &s("reflections"))]);
    phone.sync(&app.http_url(), &pat, &[]);
    tablet.sync(&app.http_url(), &app.token, &[]);
    tablet.edit(&session, &[("closedAt", "2026-11-21T09:00:00Z"), ("status", "closed")]);
    tablet.sync(&app.http_url(), &app.token, &[]);
    let db = app.db.connect().await;
    let mo = app.db.token(&db, "mo", std::time::Duration::from_secs(600)).await;
    let laptop = Device::new();
    laptop.sync(&app.http_url(), &mo, &[&theme]);
    let response = json!({"id": "r1", "at": "2026-11-22T09:00:00Z", "by": "mo", "text": s("responses.text")});
    laptop.edit(&theme, &[("responses.0", &response.to_string()), ("status", "acted")]);
    laptop.sync(&app.http_url(), &mo, &[]);
    (observation, plan)
}

#[tokio::test]
async fn no_narrative_leaves_through_any_endpoint_or_format_sqlite() {
    no_narrative_leaves_through_any_endpoint_or_format(Backend::Sqlite).await;
}

#[tokio::test]
async fn no_narrative_leaves_through_any_endpoint_or_format_postgres() {
    no_narrative_leaves_through_any_endpoint_or_format(Backend::Postgres).await;
}

async fn no_narrative_leaves_through_any_endpoint_or_format(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (observation, plan) = records_full_of_narrative(&app).await;
    let key = key_from(&app.fieldbook(&[
        "service-accounts",
        "add",
        "--name",
        "HR system",
        "--scopes",
        "hr:read,insights:read",
    ]));
    let server = &app.server;
    let mut bodies = Vec::new();
    for path in [
        "/v1/api/practitioners",
        "/v1/api/practitioners/pat/development-record",
        "/v1/api/development-records",
        "/v1/api/development-records?format=csv",
        "/v1/api/development-records?team=nowhere",
        "/v1/api/development-records?updated_since=2020-01-01",
        "/v1/api/feed",
        "/v1/api/xapi/statements",
        "/v1/api/insights",
    ] {
        let response = server.get_with(path, Some(&key)).await;
        assert_eq!(response.status, 200, "{path}: {}", response.body);
        bodies.push((path, response.body));
    }
    for (path, body) in &bodies {
        assert!(!body.contains(SENTINEL), "{path} leaks narrative: {body}");
    }
    // What HR does get.
    let record: Value = serde_json::from_str(&bodies[1].1).unwrap();
    assert_eq!(record["practitioner"]["employeeNumber"], "E100");
    assert_eq!(record["practitioner"]["lineManager"], "sam");
    assert_eq!(record["observations"][0]["url"], observation.as_str());
    assert_eq!(record["observations"][0]["observerRole"], "supervisor");
    assert_eq!(record["observations"][0]["componentsEvidenced"], json!(["kss-cf-2018/1"]));
    // Group sessions as counts with components, never text.
    assert_eq!(
        record["groupSessions"],
        json!({"attended": 1, "facilitated": 0, "byKind": {"group-supervision": 1}, "components": {"kss-cf-2018/6": 1}})
    );
    let feed: Value = serde_json::from_str(&bodies[6].1).unwrap();
    let attended: Vec<&str> = feed["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "group-session.attended")
        .map(|e| e["practitionerId"].as_str().unwrap())
        .collect();
    assert_eq!(attended, ["sam", "pat"], "{feed:#}");
    assert_eq!(record["plans"][0]["url"], plan.as_str());
    assert_eq!(record["plans"][0]["goals"][0]["status"], "in-progress");
    assert_eq!(record["counts"]["goalsByStatus"]["in-progress"], 1);
    assert!(bodies[5].1.contains("\"id\":\"pat\""), "updated since 2020: {}", bodies[5].1);
    let csv = &bodies[3].1;
    assert!(csv.starts_with("practitioner_id,employee_number"), "{csv}");
    assert!(csv.contains("pat,E100,SW1,practitioner,,sam,1,0,2026-11-20T10:00:00Z,1,1,0,1,kss-cf-2018/1"), "{csv}");
    // Accept: text/csv works as well as ?format=csv.
    let by_accept = server.get_with_headers("/v1/api/development-records", &key, &[("Accept", "text/csv")]).await;
    assert_eq!(by_accept.body, *csv);
}

#[tokio::test]
async fn service_accounts_scopes_paging_errors_and_etags() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    for id in ["amy", "bob", "cy"] {
        app.db.user(id, Role::Practitioner).await;
    }
    let hr_key = key_from(&app.fieldbook(&["service-accounts", "add", "--name", "HR", "--scopes", "hr:read"]));
    let insights_only =
        key_from(&app.fieldbook(&["service-accounts", "add", "--name", "BI", "--scopes", "insights:read"]));
    let server = &app.server;

    // Scopes and people: a practitioner's token and an insights-only key are refused.
    let refused = server.get_with("/v1/api/practitioners", Some(&insights_only)).await;
    assert_eq!(refused.status, 403);
    assert_eq!(refused.header("content-type"), Some("application/problem+json"));
    assert_eq!(refused.json()["status"], 403);
    let amy = app.db.token(&app.db.connect().await, "amy", std::time::Duration::from_secs(600)).await;
    assert_eq!(server.get_with("/v1/api/practitioners", Some(&amy)).await.status, 403);
    let hana = app.db.user("hana", Role::Hr).await;
    assert_eq!(server.get_with("/v1/api/practitioners", Some(&hana)).await.status, 200);

    // Paging with opaque cursors.
    let first = server.get_with("/v1/api/development-records?limit=2", Some(&hr_key)).await.json();
    let ids: Vec<&str> =
        first["records"].as_array().unwrap().iter().map(|r| r["practitioner"]["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["amy", "bob"]);
    let cursor = first["nextCursor"].as_str().unwrap();
    let second =
        server.get_with(&format!("/v1/api/development-records?limit=2&cursor={cursor}"), Some(&hr_key)).await.json();
    let ids: Vec<&str> =
        second["records"].as_array().unwrap().iter().map(|r| r["practitioner"]["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["cy", "sam"]);
    assert!(second["nextCursor"].is_null());

    // Only those whose records changed since a time.
    let none = server.get_with("/v1/api/development-records?updated_since=2099-01-01", Some(&hr_key)).await.json();
    assert_eq!(none["records"], json!([]));

    // Bad parameters name the parameter.
    for (path, parameter) in [
        ("/v1/api/development-records?limit=0", "limit"),
        ("/v1/api/development-records?limit=5000", "limit"),
        ("/v1/api/development-records?cursor=%25%25", "cursor"),
        ("/v1/api/development-records?format=xml", "format"),
        ("/v1/api/development-records?updated_since=yesterday", "updated_since"),
    ] {
        let bad = server.get_with(path, Some(&hr_key)).await;
        assert_eq!((bad.status, bad.json()["parameter"].as_str()), (400, Some(parameter)), "{path}: {}", bad.body);
    }
    assert_eq!(server.get_with("/v1/api/practitioners/nobody/development-record", Some(&hr_key)).await.status, 404);

    // ETag: an unchanged record is not sent again.
    let record = server.get_with("/v1/api/practitioners/amy/development-record", Some(&hr_key)).await;
    let etag = record.header("etag").unwrap().to_owned();
    let path = "/v1/api/practitioners/amy/development-record";
    let again = server.get_with_headers(path, &hr_key, &[("If-None-Match", &etag)]).await;
    assert_eq!(again.status, 304);

    // Rotation and revocation take effect at once; every call is audited.
    let id = app
        .fieldbook(&["service-accounts", "list"])
        .lines()
        .find(|l| l.contains("\tHR\t"))
        .unwrap()
        .split('\t')
        .next()
        .unwrap()
        .to_owned();
    let rotated = app.fieldbook(&["service-accounts", "rotate", "--id", &id]);
    let new_key = rotated.trim().rsplit(' ').next().unwrap().to_owned();
    assert_eq!(server.get_with("/v1/api/practitioners", Some(&hr_key)).await.status, 401);
    assert_eq!(server.get_with("/v1/api/practitioners", Some(&new_key)).await.status, 200);
    app.fieldbook(&["service-accounts", "revoke", "--id", &id]);
    let revoked = server.get_with("/v1/api/practitioners", Some(&new_key)).await;
    assert_eq!(revoked.status, 401);
    assert!(revoked.json()["detail"].as_str().unwrap().contains("revoked"));
    let mut audit = String::new();
    // Reads are audited in the background, in batches: wait for all of them.
    let expected = ["api.practitioners-read", "api.development-record-read", "api.development-records-read"];
    for _ in 0..100 {
        audit = app.fieldbook(&["audit", "--user", &format!("service:{id}")]);
        if expected.iter().all(|action| audit.contains(action)) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(expected.iter().all(|action| audit.contains(action)), "{audit}");
}

#[tokio::test]
async fn hr_sees_an_observation_from_when_it_is_shared_sqlite() {
    hr_sees_an_observation_from_when_it_is_shared(Backend::Sqlite).await;
}

#[tokio::test]
async fn hr_sees_an_observation_from_when_it_is_shared_postgres() {
    hr_sees_an_observation_from_when_it_is_shared(Backend::Postgres).await;
}

/// A draft is its observer's alone, as the practitioner does not see it yet: HR's record,
/// the feed, xAPI, the CSV and `updated_since` all hear of it only once it is shared.
async fn hr_sees_an_observation_from_when_it_is_shared(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.db.user("pat", Role::Practitioner).await;
    let key = key_from(&app.fieldbook(&["service-accounts", "add", "--name", "HR", "--scopes", "hr:read"]));
    let server = &app.server;
    let tablet = Device::new();
    let draft = tablet.create(&observation(json!({"judgements": {"kss-cf-2018/1": "met"}})));
    tablet.sync(&app.http_url(), &app.token, &[]);

    let record = server.get_with("/v1/api/practitioners/pat/development-record", Some(&key)).await.json();
    assert_eq!(record["observations"], json!([]), "{record}");
    assert_eq!(record["counts"]["observations"], 0, "{record}");
    let feed = server.get_with("/v1/api/feed", Some(&key)).await.json();
    assert_eq!(feed["events"], json!([]), "{feed}");
    let xapi = server.get_with("/v1/api/xapi/statements", Some(&key)).await.json();
    assert_eq!(xapi["statements"], json!([]), "{xapi}");
    let csv = server.get_with("/v1/api/development-records?format=csv", Some(&key)).await.body;
    let pat_line = csv.lines().find(|l| l.starts_with("pat,")).unwrap_or_else(|| panic!("pat is listed: {csv}"));
    assert_eq!(pat_line.split(',').nth(6), Some("0"), "no observations counted: {csv}");
    let since = server.get_with("/v1/api/development-records?updated_since=2020-01-01", Some(&key)).await.json();
    assert_eq!(since["records"], json!([]), "a draft is no update: {since}");

    tablet.edit(&draft, &[("status", "shared")]);
    tablet.sync(&app.http_url(), &app.token, &[]);
    let record = server.get_with("/v1/api/practitioners/pat/development-record", Some(&key)).await.json();
    assert_eq!(record["observations"][0]["url"], draft.as_str(), "{record}");
    assert_eq!(record["observations"][0]["status"], "shared");
    let feed = server.get_with("/v1/api/feed", Some(&key)).await.json();
    let kinds: Vec<&str> = feed["events"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["observation.created", "observation.shared"], "{feed}");
    let csv = server.get_with("/v1/api/development-records?format=csv", Some(&key)).await.body;
    let pat_line = csv.lines().find(|l| l.starts_with("pat,")).unwrap();
    assert_eq!(pat_line.split(',').nth(6), Some("1"), "{csv}");
    let since = server.get_with("/v1/api/development-records?updated_since=2020-01-01", Some(&key)).await.json();
    assert_eq!(since["records"][0]["practitioner"]["id"], "pat", "{since}");
}

#[tokio::test]
async fn the_feed_replays_record_events_in_order_and_as_xapi_sqlite() {
    the_feed_replays_record_events_in_order_and_as_xapi(Backend::Sqlite).await;
}

#[tokio::test]
async fn the_feed_replays_record_events_in_order_and_as_xapi_postgres() {
    the_feed_replays_record_events_in_order_and_as_xapi(Backend::Postgres).await;
}

async fn the_feed_replays_record_events_in_order_and_as_xapi(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (observation, plan) = records_full_of_narrative(&app).await;
    let key = key_from(&app.fieldbook(&["service-accounts", "add", "--name", "LRS", "--scopes", "hr:read"]));
    let server = &app.server;
    let all = server.get_with("/v1/api/feed", Some(&key)).await.json();
    // The two records were synced together: each record's events are in order, the
    // records' relative order is whichever committed first.
    let of = |url: &str| -> Vec<&str> {
        all["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["record"] == url)
            .map(|e| e["kind"].as_str().unwrap())
            .collect()
    };
    assert_eq!(of(&observation), ["observation.created", "observation.shared"], "{all}");
    assert_eq!(of(&plan), ["plan.created", "goal.added"], "{all}");
    let seqs: Vec<i64> = all["events"].as_array().unwrap().iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(all["events"][0]["employeeNumber"], "E100");

    // Both sign off; a consumer that kept its cursor gets exactly the new events.
    let next = all["next"].as_i64().unwrap();
    let pat = app.db.token(&app.db.connect().await, "pat", std::time::Duration::from_secs(600)).await;
    let (tablet, phone) = (Device::new(), Device::new());
    tablet.sync(&app.http_url(), &app.token, &[&observation, &plan]);
    tablet.edit(&observation, &[("signOff.observer", r#"{"at": "2026-11-21T09:00:00Z", "by": "sam"}"#)]);
    tablet.edit(&plan, &[("goals.0.status", "met")]);
    tablet.sync(&app.http_url(), &app.token, &[]);
    phone.sync(&app.http_url(), &pat, &[&observation]);
    phone.edit(
        &observation,
        &[("signOff.practitioner", r#"{"at": "2026-11-21T10:00:00Z", "by": "pat"}"#), ("status", "signed-off")],
    );
    phone.sync(&app.http_url(), &pat, &[]);
    let later = server.get_with(&format!("/v1/api/feed?after={next}"), Some(&key)).await.json();
    let kinds: Vec<&str> = later["events"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    // The tablet's sync commits the goal change; the phone's, later, the sign-off.
    assert_eq!(kinds, ["goal.status-changed", "observation.signed-off"], "{later}");
    assert_eq!(later["events"][1]["detail"]["componentsEvidenced"], json!(["kss-cf-2018/1"]));
    let paged = server.get_with("/v1/api/feed?after=0&limit=2", Some(&key)).await.json();
    assert_eq!((paged["events"].as_array().unwrap().len(), paged["more"].as_bool()), (2, Some(true)));

    // The same events as xAPI statements.
    let xapi = server.get_with("/v1/api/xapi/statements", Some(&key)).await.json();
    let statements = xapi["statements"].as_array().unwrap();
    // Six about the observation and plan, and two attendances of the closed group session.
    assert_eq!(statements.len(), 8);
    let attended: Vec<&Value> =
        statements.iter().filter(|s| s["verb"]["id"] == "http://adlnet.gov/expapi/verbs/attended").collect();
    assert_eq!(attended.len(), 2, "{xapi}");
    assert_eq!(attended[0]["object"]["definition"]["name"]["en-GB"], "Group session");
    let signed = statements.iter().find(|s| s["verb"]["id"] == "http://adlnet.gov/expapi/verbs/completed").unwrap();
    assert_eq!(signed["actor"]["account"]["name"], "E100");
    assert_eq!(signed["actor"]["account"]["homePage"], app.http_url());
    assert_eq!(signed["version"], "1.0.3");
    let passed = statements.iter().find(|s| s["verb"]["id"] == "http://adlnet.gov/expapi/verbs/passed").unwrap();
    assert_eq!(passed["result"]["success"], true);
    assert!(passed["object"]["id"].as_str().unwrap().ends_with("/goals/g1"));
    let again = server.get_with("/v1/api/xapi/statements", Some(&key)).await.json();
    assert_eq!(again["statements"][0]["id"], statements[0]["id"], "statement ids are stable");
    let bad = server.get_with("/v1/api/feed?after=-1", Some(&key)).await;
    assert_eq!((bad.status, bad.json()["parameter"].as_str()), (400, Some("after")));
}

#[tokio::test]
async fn insights_count_by_team_and_component_and_suppress_small_numbers_sqlite() {
    insights_count_by_team_and_component_and_suppress_small_numbers(Backend::Sqlite).await;
}

#[tokio::test]
async fn insights_count_by_team_and_component_and_suppress_small_numbers_postgres() {
    insights_count_by_team_and_component_and_suppress_small_numbers(Backend::Postgres).await;
}

async fn insights_count_by_team_and_component_and_suppress_small_numbers(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.fieldbook(&["teams", "add", "--id", "north", "--name", "North"]);
    let tablet = Device::new();
    for i in 0..6 {
        let id = format!("p{i}");
        app.fieldbook(&[
            "users",
            "add",
            "--id",
            &id,
            "--name",
            &id,
            "--role",
            "practitioner",
            "--team",
            "north",
            "--supervisor",
            "sam",
            "--supervisor-from",
            "2025-01-01",
        ]);
        // Six observations look at component 1 (five judged met); two also at component 2.
        let mut components = vec!["kss-cf-2018/1"];
        if i < 2 {
            components.push("kss-cf-2018/2");
        }
        let judgement = if i < 5 { "met" } else { "not-met" };
        tablet.create(&observation(json!({
            "practitionerId": id, "status": "shared", "components": components,
            "judgements": {"kss-cf-2018/1": judgement},
        })));
    }
    tablet.sync(&app.http_url(), &app.token, &[]);
    let key = key_from(&app.fieldbook(&["service-accounts", "add", "--name", "BI", "--scopes", "insights:read"]));
    let server = &app.server;
    let result = server.get_with("/v1/api/insights?framework=kss-cf-2018", Some(&key)).await.json();
    let cell = |component: &str| {
        result["cells"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["team"] == "north" && c["component"] == component)
            .cloned()
            .unwrap()
    };
    assert_eq!(cell("kss-cf-2018/1")["observations"], 6);
    assert_eq!(cell("kss-cf-2018/1")["judgements"]["met"], 5);
    assert_eq!(cell("kss-cf-2018/1")["judgements"]["not-met"], json!({"suppressed": true}));
    assert_eq!(cell("kss-cf-2018/2")["observations"], json!({"suppressed": true}));
    assert_eq!(result["suppressedBelow"], 5);
    assert!(!result.to_string().contains("\"p0\""), "no individual appears");

    // A manager sees their own line; a practitioner and an HR-only key are refused.
    app.db.user("mo", Role::Manager).await;
    app.db.user("other", Role::Manager).await;
    app.fieldbook(&["supervision", "set", "--user", "sam", "--supervisor", "mo", "--from", "2025-01-01"]);
    let db = app.db.connect().await;
    let mo = app.db.token(&db, "mo", std::time::Duration::from_secs(600)).await;
    let other = app.db.token(&db, "other", std::time::Duration::from_secs(600)).await;
    let p0 = app.db.token(&db, "p0", std::time::Duration::from_secs(600)).await;
    let in_line = server.get_with("/v1/api/insights", Some(&mo)).await.json();
    assert_eq!(in_line["cells"].as_array().unwrap().len(), 2, "{in_line}");
    // A supervisor sees their own line too (to attach counts to a theme they raise).
    let sams = server.get_with("/v1/api/insights", Some(&app.token)).await.json();
    assert_eq!(sams["cells"], in_line["cells"], "{sams}");
    app.db.user("sue", Role::Supervisor).await;
    let sue = app.db.token(&db, "sue", std::time::Duration::from_secs(600)).await;
    assert_eq!(server.get_with("/v1/api/insights", Some(&sue)).await.json()["cells"], json!([]));
    let outside = server.get_with("/v1/api/insights", Some(&other)).await.json();
    assert_eq!(outside["cells"], json!([]));
    assert_eq!(server.get_with("/v1/api/insights", Some(&p0)).await.status, 403);
    let hr = key_from(&app.fieldbook(&["service-accounts", "add", "--name", "HR", "--scopes", "hr:read"]));
    assert_eq!(server.get_with("/v1/api/insights", Some(&hr)).await.status, 403);
    let bad = server.get_with("/v1/api/insights?from=yesterday", Some(&key)).await;
    assert_eq!((bad.status, bad.json()["parameter"].as_str()), (400, Some("from")));
}

#[tokio::test]
async fn each_caller_is_rate_limited_on_its_own() {
    // 60 a minute: bursts of 6, then one a second.
    let app = TestApp::spawn_with(Backend::Sqlite, &["--api-calls-per-minute", "60"]).await;
    let first = key_from(&app.fieldbook(&["service-accounts", "add", "--name", "A", "--scopes", "hr:read"]));
    let second = key_from(&app.fieldbook(&["service-accounts", "add", "--name", "B", "--scopes", "hr:read"]));
    let server = &app.server;
    let mut statuses = Vec::new();
    for _ in 0..10 {
        statuses.push(server.get_with("/v1/api/practitioners", Some(&first)).await.status);
    }
    assert!(statuses.contains(&429), "{statuses:?}");
    // The burst, and perhaps one more if the loop took over a second.
    let allowed = statuses.iter().filter(|s| **s == 200).count();
    assert!((6..=7).contains(&allowed), "{statuses:?}");
    let limited = server.get_with("/v1/api/practitioners", Some(&first)).await;
    assert_eq!(limited.status, 429);
    assert_eq!(limited.header("content-type"), Some("application/problem+json"));
    assert!(limited.header("retry-after").is_some());
    // Another account is not held back by the first.
    assert_eq!(server.get_with("/v1/api/practitioners", Some(&second)).await.status, 200);
}

#[tokio::test]
async fn the_api_describes_itself_offline() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let spec = app.server.get_with("/v1/openapi.json", None).await;
    assert_eq!(spec.status, 200);
    let spec = spec.json();
    assert_eq!(spec["openapi"].as_str().map(|v| v.starts_with("3.")), Some(true));
    assert!(spec["paths"]["/v1/api/development-records"]["get"]["parameters"].is_array());
    let page = app.server.get_with("/v1/api/docs", None).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("GET /v1/api/feed") && page.body.contains("DevelopmentRecord"), "{}", page.body);
    assert!(!page.body.contains("<script"), "the page needs nothing from the internet");
}
