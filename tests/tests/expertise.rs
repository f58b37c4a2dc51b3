//! The expertise map (`GET /v1/expertise`) and practice champions: evidence is counted from
//! signed-off observations judging a component met and goals met on it, nothing else;
//! practitioners see declared champions only; no narrative ever appears; a nomination is
//! confirmed by a manager above the person.

use fieldbook_server::storage::Role;
use fieldbook_tests::records::{observation, plan, store};
use fieldbook_tests::{Backend, TempDir, TestApp};
use serde_json::{Value, json};

const SENTINEL: &str = "SENTINEL-EXPERT";

fn judged(practitioner: &str, component: &str, judgement: &str, signed: bool) -> Value {
    let sign = |by: &str| json!({"at": "2026-06-01T12:00:00Z", "by": by});
    observation(json!({
        "practitionerId": practitioner, "status": if signed { "signed-off" } else { "shared" },
        "components": [component], "judgements": {component: judgement}, "notes": SENTINEL, "feedback": SENTINEL,
        "signOff": if signed { json!({"observer": sign("sam"), "practitioner": sign(practitioner)}) } else { json!({}) },
    }))
}

#[tokio::test]
async fn expertise_follows_signed_off_judgements_and_met_goals_and_champions_are_confirmed() {
    let app = TestApp::spawn(Backend::Sqlite).await; // sam, a practice supervisor
    let pat = app.db.user("pat", Role::Practitioner).await;
    let kim = app.db.user("kim", Role::Practitioner).await;
    let mo = app.db.user("mo", Role::Manager).await;
    let hana = app.db.user("hana", Role::Hr).await;
    for (user, supervisor) in [("pat", "sam"), ("kim", "sam"), ("sam", "mo")] {
        app.fieldbook(&["supervision", "set", "--user", user, "--supervisor", supervisor, "--from", "2025-01-01"]);
    }
    // A framework with a component inside an area, to ask by area.
    let dir = TempDir::new("framework");
    let file = dir.path().join("fw.json");
    std::fs::write(
        &file,
        json!({"id": "test-fw", "title": "Test framework", "version": "1", "publisher": "Us", "effectiveFrom": "2020-01-01",
               "effectiveTo": null, "source": "https://example.org/test-fw", "areas": [
                   {"id": "test-fw/1", "number": 1, "title": "Area one", "components": [{"id": "test-fw/1.1", "title": "Part one"}]}]})
        .to_string(),
    )
    .unwrap();
    app.fieldbook(&["frameworks", "import", file.to_str().unwrap()]);

    let db = app.db.connect().await;
    store(&db, judged("pat", "kss-cf-2018/6", "met", true)).await; // counts
    store(&db, judged("pat", "kss-cf-2018/6", "met", false)).await; // not signed off
    store(&db, judged("pat", "kss-cf-2018/6", "not-met", true)).await; // not met
    store(&db, judged("pat", "kss-cf-2018/7", "met", true)).await; // another area
    let mut in_component = judged("kim", "test-fw/1.1", "met", true);
    in_component["framework"] = json!("test-fw");
    store(&db, in_component).await;
    store(
        &db,
        plan(json!({"ownerId": "kim", "status": "agreed", "goals": [
            {"id": "g1", "title": SENTINEL, "components": ["kss-cf-2018/6"], "status": "met", "evidence": []},
            {"id": "g2", "title": "Other", "components": ["kss-cf-2018/6"], "status": "in-progress", "evidence": []}]})),
    )
    .await;
    db.close().await;

    let ask = |token: String, component: &'static str| {
        let server = &app.server;
        async move { server.get_with(&format!("/v1/expertise?component={component}"), Some(&token)).await }
    };
    let map = ask(app.token.clone(), "kss-cf-2018/6").await;
    assert_eq!(map.status, 200, "{}", map.body);
    assert!(!map.body.contains(SENTINEL), "narrative: {}", map.body);
    let people = map.json()["people"].clone();
    let evidence = |people: &Value, id: &str| {
        people.as_array().unwrap().iter().find(|p| p["userId"] == id).map(|p| p["evidence"].clone())
    };
    assert_eq!(evidence(&people, "pat"), Some(json!({"observationsMet": 1, "goalsMet": 0})), "{people:#}");
    assert_eq!(evidence(&people, "kim"), Some(json!({"observationsMet": 0, "goalsMet": 1})), "{people:#}");
    // A whole area matches its components.
    let by_area = ask(app.token.clone(), "test-fw/1").await.json();
    assert_eq!(evidence(&by_area["people"], "kim"), Some(json!({"observationsMet": 1, "goalsMet": 0})), "{by_area:#}");

    // Practitioners see declared champions only, without evidence.
    assert_eq!(ask(pat.clone(), "kss-cf-2018/6").await.json()["people"], json!([]));
    app.fieldbook(&["champions", "add", "--user", "kim", "--component", "kss-cf-2018/6"]);
    let seen = ask(pat.clone(), "kss-cf-2018/6").await.json();
    assert_eq!(
        seen["people"],
        json!([{"userId": "kim", "name": "Test kim", "team": null, "champion": true}]),
        "{seen:#}"
    );
    // A champion for an area is one for its components.
    app.fieldbook(&["champions", "add", "--user", "kim", "--component", "test-fw/1"]);
    assert_eq!(ask(pat.clone(), "test-fw/1.1").await.json()["people"][0]["userId"], "kim");
    assert_eq!(ask(hana.clone(), "kss-cf-2018/6").await.status, 403);
    let unknown = ask(app.token.clone(), "kss-cf-2018/99").await;
    assert_eq!(unknown.status, 404, "no such area or component: {}", unknown.body);

    // pat nominates themself; sam (a supervisor) may not confirm, mo (above pat) does.
    let nomination = json!({"component": "kss-cf-2018/7"});
    let path = "/v1/me/champion-nominations";
    assert_eq!(app.server.request("POST", path, Some(&pat), Some(&nomination)).await.status, 201);
    assert_eq!(app.server.request("POST", path, Some(&pat), Some(&nomination)).await.status, 409);
    let sams = app.server.get_with("/v1/champions/nominations", Some(&app.token)).await.json();
    assert_eq!(sams["nominations"], json!([]));
    let mos = app.server.get_with("/v1/champions/nominations", Some(&mo)).await.json();
    assert_eq!(mos["nominations"][0]["userId"], "pat", "{mos}");
    let body = json!({"userId": "pat", "component": "kss-cf-2018/7"});
    assert_eq!(app.server.request("POST", "/v1/champions/confirm", Some(&app.token), Some(&body)).await.status, 403);
    assert_eq!(app.server.request("POST", "/v1/champions/confirm", Some(&kim), Some(&body)).await.status, 403);
    assert_eq!(app.server.request("POST", "/v1/champions/confirm", Some(&mo), Some(&body)).await.status, 200);
    let seen = ask(kim.clone(), "kss-cf-2018/7").await.json();
    assert_eq!(seen["people"][0]["userId"], "pat", "{seen:#}");
    let listed = app.fieldbook(&["champions", "list"]);
    assert!(listed.contains(r#""userId":"pat","componentId":"kss-cf-2018/7","status":"confirmed""#), "{listed}");
    app.fieldbook(&["champions", "remove", "--user", "pat", "--component", "kss-cf-2018/7"]);
    assert_eq!(ask(kim, "kss-cf-2018/7").await.json()["people"], json!([]));
    assert!(app.fieldbook(&["audit", "--limit", "1000"]).contains("champion-declared"));
}
