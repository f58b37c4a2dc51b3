//! The practitioner's own CPD record (`GET /v1/me/cpd`): exactly their signed-off
//! observations, the group sessions they reflected in and the goals they met in one
//! registration year (1 December to 30 November), with their own words; theirs alone.

use fieldbook_server::storage::Role;
use fieldbook_tests::records::{observation, plan};
use fieldbook_tests::{Backend, Device, TestApp};
use serde_json::{Value, json};

/// A shared observation of pat on `day`, made on sam's tablet.
fn observed(tablet: &Device, day: &str, setting: &str) -> String {
    tablet.create(&observation(json!({
        "observedAt": format!("{day}T10:00:00Z"), "setting": setting, "status": "shared",
        "feedback": format!("Feedback of {day}"), "reflection": "", "response": "", "signOff": {},
    })))
}

#[tokio::test]
async fn the_cpd_record_holds_a_years_signed_off_activities_in_the_persons_own_words() {
    let app = TestApp::spawn(Backend::Sqlite).await; // sam, a practice supervisor
    let pat = app.db.user("pat", Role::Practitioner).await;
    let hana = app.db.user("hana", Role::Hr).await;
    app.fieldbook(&["supervision", "set", "--user", "pat", "--supervisor", "sam", "--from", "2024-01-01"]);
    let server = app.http_url();
    let tablet = Device::for_user("sam");
    let this_year = observed(&tablet, "2026-03-10", "home-visit");
    let december = observed(&tablet, "2025-12-01", "office-visit");
    let last_year = observed(&tablet, "2025-11-30", "virtual");
    let unsigned = observed(&tablet, "2026-04-01", "meeting");
    let reflected = tablet.create(&json!({
        "type": "group-session", "schemaVersion": 1, "facilitatorId": "sam", "participantIds": ["pat"],
        "heldAt": "2026-05-05T14:00:00Z", "kind": "group-supervision", "themes": ["Analysis"],
        "summary": "Analysis under pressure.", "reflections": {}, "status": "shared",
    }));
    let silent = tablet.create(&json!({
        "type": "group-session", "schemaVersion": 1, "facilitatorId": "sam", "participantIds": ["pat"],
        "heldAt": "2026-05-06T14:00:00Z", "kind": "team-development", "reflections": {}, "status": "shared",
    }));
    let plan_url = tablet.create(&plan(json!({
        "status": "agreed",
        "goals": [
            {"id": "g1", "title": "Chronologies", "components": ["kss-cf-2018/6"], "status": "met",
             "completedAt": "2026-06-01T09:00:00Z", "successMeasure": "A chronology per family", "evidence": []},
            {"id": "g2", "title": "Court skills", "status": "in-progress", "evidence": []},
        ],
    })));
    for url in [&this_year, &december, &last_year] {
        tablet.run_ok(&["observation", "sign-off", url, "--as", "observer"]);
    }
    tablet.sync(&server, &app.token, &[]);
    let phone = Device::for_user("pat");
    phone.sync(&server, &pat, &[&this_year, &december, &last_year, &unsigned, &reflected, &silent, &plan_url]);
    for url in [&this_year, &december, &last_year, &unsigned] {
        phone.run_ok(&[
            "observation",
            "reflect",
            url,
            "--text",
            &format!("Learnt from {url}"),
            "--response",
            "I changed",
        ]);
    }
    for url in [&this_year, &december, &last_year] {
        phone.run_ok(&["observation", "sign-off", url, "--as", "practitioner"]);
    }
    phone.edit(&reflected, &[("reflections.pat", "I will slow down.")]);
    phone.edit(&plan_url, &[("goals.0.reflection", "Chronologies help me see patterns.")]);
    phone.sync(&server, &pat, &[]);

    let cpd = app.server.get_with("/v1/me/cpd?year=2026", Some(&pat)).await;
    assert_eq!(cpd.status, 200, "{}", cpd.body);
    let cpd = cpd.json();
    assert_eq!(cpd["registrationYear"], json!({"from": "2025-12-01", "to": "2026-11-30"}));
    let entries = cpd["entries"].as_array().unwrap();
    let summary: Vec<(&str, &str, &str)> = entries
        .iter()
        .map(|e| (e["date"].as_str().unwrap(), e["type"].as_str().unwrap(), e["evidence"][0].as_str().unwrap()))
        .collect();
    assert_eq!(
        summary,
        [
            ("2025-12-01", "Direct observation and feedback", december.as_str()),
            ("2026-03-10", "Direct observation and feedback", this_year.as_str()),
            ("2026-05-05", "Group supervision", reflected.as_str()),
            ("2026-06-01", "Development goal", plan_url.as_str()),
        ],
        "{cpd:#}"
    );
    assert_eq!(entries[1]["learning"], format!("Learnt from {this_year}"));
    assert_eq!(entries[1]["impact"], "I changed");
    assert_eq!(entries[1]["peerReflection"], true);
    assert!(entries[1]["description"].as_str().unwrap().contains("Feedback of 2026-03-10"), "{cpd:#}");
    assert_eq!(entries[2]["learning"], "I will slow down.");
    assert_eq!(entries[3]["title"], "Chronologies");
    assert_eq!(
        (entries[3]["learning"].as_str(), entries[3]["peerReflection"].as_bool()),
        (Some("Chronologies help me see patterns."), Some(false))
    );
    assert_eq!(entries[3]["components"], json!(["kss-cf-2018/6"]));
    assert_eq!(cpd["peerReflectionMet"], true);
    let before = app.server.get_with("/v1/me/cpd?year=2025", Some(&pat)).await.json();
    let dates: Vec<&str> = before["entries"].as_array().unwrap().iter().map(|e| e["date"].as_str().unwrap()).collect();
    assert_eq!(dates, ["2025-11-30"], "30 November is the last day of the year before");

    // The CSV holds the same entries, field by field.
    let csv = app.server.get_with("/v1/me/cpd?year=2026&format=csv", Some(&pat)).await;
    assert_eq!(csv.header("content-type"), Some("text/csv; charset=utf-8"));
    let mut reader = csv::Reader::from_reader(csv.body.as_bytes());
    let header: Vec<String> = reader.headers().unwrap().iter().map(str::to_owned).collect();
    assert_eq!(
        header,
        ["title", "date", "type", "description", "learning", "impact", "peer_reflection", "components", "evidence"]
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), entries.len());
    for (row, entry) in rows.iter().zip(entries) {
        let field = |key: &str| entry[key].as_str().unwrap().to_owned();
        let list = |key: &str, sep: &str| {
            entry[key].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect::<Vec<_>>().join(sep)
        };
        let peer = if entry["peerReflection"] == true { "yes" } else { "no" };
        let expected =
            [field("title"), field("date"), field("type"), field("description"), field("learning"), field("impact")];
        assert_eq!(&row.iter().take(6).collect::<Vec<_>>(), &expected.iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(
            (&row[6], &row[7], &row[8]),
            (peer, list("components", ";").as_str(), list("evidence", " ").as_str())
        );
    }

    // Theirs alone: sam gets sam's own (none of pat's); HR and systems are refused.
    let sams: Value = app.server.get_with("/v1/me/cpd?year=2026", Some(&app.token)).await.json();
    assert_eq!(sams["entries"], json!([]), "{sams}");
    assert_eq!(app.server.get_with("/v1/me/cpd", Some(&hana)).await.status, 403);
    let key = app.fieldbook(&["service-accounts", "add", "--name", "HR", "--scopes", "hr:read"]);
    let key = key.lines().find_map(|l| l.strip_prefix("key: ")).expect("a key").trim().to_owned();
    assert_eq!(app.server.get_with("/v1/me/cpd", Some(&key)).await.status, 403);
    assert_eq!(app.server.get_with("/v1/me/cpd", None).await.status, 401);
    let bad = app.server.get_with("/v1/me/cpd?year=twenty", Some(&pat)).await;
    assert_eq!((bad.status, bad.json()["parameter"].as_str()), (400, Some("year")));
}
