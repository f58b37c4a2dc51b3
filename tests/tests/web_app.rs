//! The tablet and phone app (`clients/web`) in headless Chromium against the real server:
//! a supervisor records an observation offline, it survives a reload, reaches the server;
//! the practitioner reflects and signs off, the supervisor signs off, both see it locked;
//! HR sees it minimised; revoking the browser wipes it. The browser side is `clients/web/tests/e2e.mjs` (playwright-core
//! driving Debian's chromium, with axe-core scans and screenshots of every screen).

use std::process::Command;

use fieldbook_server::storage::Role;
use fieldbook_tests::records::{observation, plan, store};
use fieldbook_tests::{Backend, Device, TestApp, repo_root, target_dir};
use serde_json::{Value, json};

const PASSWORD: &str = "correct horse battery staple";

#[tokio::test]
async fn supervisor_and_practitioner_complete_an_observation_in_the_browser() {
    let dist = repo_root().join("clients/web/dist");
    assert!(dist.join("index.html").exists(), "clients/web/dist is missing: run scripts/build-web (scripts/test does)");
    // Access tokens last 15 s, so the test runs through several: the app must renew its
    // sync session in-band (e2e.mjs checks the server never ends one for an expired token).
    let app = TestApp::spawn_with(Backend::Sqlite, &["--access-token-ttl", "15s"]).await; // serves clients/web/dist
    app.db.user("pat", Role::Practitioner).await;
    app.fieldbook(&["users", "update", "--id", "sam", "--name", "Sam Okafor"]);
    app.fieldbook(&["users", "update", "--id", "pat", "--name", "Pat Reid", "--employee-number", "E100"]);
    app.fieldbook(&["supervision", "set", "--user", "pat", "--supervisor", "sam", "--from", "2025-01-01"]);
    for user in ["sam", "pat"] {
        let out = app.fieldbook_with_stdin(&["users", "set-password", "--id", user], PASSWORD);
        assert!(out.status.success(), "set-password: {}", String::from_utf8_lossy(&out.stderr));
    }
    let admin = app.db.user("ada", Role::Admin).await;

    let artifacts = target_dir().join("web-screenshots");
    std::fs::create_dir_all(&artifacts).expect("artifacts dir");
    let out = Command::new("node")
        .arg(repo_root().join("clients/web/tests/e2e.mjs"))
        .env("FIELDBOOK_URL", app.http_url())
        .env("SUPERVISOR_ID", "sam")
        .env("SUPERVISOR_PASSWORD", PASSWORD)
        .env("PRACTITIONER_ID", "pat")
        .env("PRACTITIONER_PASSWORD", PASSWORD)
        .env("ARTIFACTS_DIR", &artifacts)
        .env("ADMIN_TOKEN", &admin)
        .output()
        .expect("run node clients/web/tests/e2e.mjs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{}", String::from_utf8_lossy(&out.stderr)); // the browser test's log, shown with --nocapture
    assert!(out.status.success(), "browser test failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let url = stdout
        .lines()
        .find_map(|l| l.strip_prefix("OBSERVATION_URL="))
        .expect("the browser test prints the observation's URL")
        .trim()
        .to_owned();
    let narrative: Vec<String> =
        stdout.lines().filter_map(|l| l.strip_prefix("NARRATIVE=")).map(|s| s.trim().to_owned()).collect();
    assert!(!narrative.is_empty(), "the browser test names the narrative it typed");

    // HR: the observation is in pat's development record, minimised.
    let key = app.fieldbook(&["service-accounts", "add", "--name", "HR", "--scopes", "hr:read"]);
    let key = key.lines().find_map(|l| l.strip_prefix("key: ")).expect("a key line").trim().to_owned();
    let response = app.server.get_with("/v1/api/practitioners/pat/development-record", Some(&key)).await;
    assert_eq!(response.status, 200, "{}", response.body);
    let record: Value = response.json();
    let observations = record["observations"].as_array().expect("observations");
    let seen = observations.iter().find(|o| o["url"] == url.as_str());
    let seen = seen.unwrap_or_else(|| panic!("the browser's observation {url} is in the HR record: {record:#}"));
    assert_eq!(seen["status"], "signed-off", "{seen:#}");
    for text in &narrative {
        assert!(!response.body.contains(text.as_str()), "HR saw narrative {text:?}: {}", response.body);
    }
}

/// Erasure and deletion reach the web app's offline copies (`clients/web/tests/data-protection.mjs`):
/// the tablet replaces an erased record's copy by itself and puts its unsent work back; a
/// deleted record leaves the tablet following it and the phone coming back online; a draft
/// discarded offline leaves the server and the author's other device once back online.
#[tokio::test]
async fn erased_and_deleted_records_leave_the_browsers_copies() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    app.db.user("pat", Role::Practitioner).await;
    app.fieldbook(&["users", "update", "--id", "sam", "--name", "Sam Okafor"]);
    app.fieldbook(&["users", "update", "--id", "pat", "--name", "Pat Reid"]);
    app.fieldbook(&["supervision", "set", "--user", "pat", "--supervisor", "sam", "--from", "2025-01-01"]);
    for user in ["sam", "pat"] {
        let out = app.fieldbook_with_stdin(&["users", "set-password", "--id", user], PASSWORD);
        assert!(out.status.success(), "set-password: {}", String::from_utf8_lossy(&out.stderr));
    }
    let admin = app.db.user("ada", Role::Admin).await;
    let out = Command::new("node")
        .arg(repo_root().join("clients/web/tests/data-protection.mjs"))
        .env("FIELDBOOK_URL", app.http_url())
        .env("SUPERVISOR_ID", "sam")
        .env("SUPERVISOR_PASSWORD", PASSWORD)
        .env("PRACTITIONER_ID", "pat")
        .env("PRACTITIONER_PASSWORD", PASSWORD)
        .env("ADMIN_TOKEN", &admin)
        .output()
        .expect("run node clients/web/tests/data-protection.mjs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "browser test failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let url = stdout.lines().find_map(|l| l.strip_prefix("DELETED_URL=")).expect("the browser test names the record");
    let audit = app.fieldbook(&["audit", "--record", url.trim()]);
    assert!(audit.contains("record-erased") && audit.contains("record-deleted"), "{audit}");
    assert!(!app.db.stores("Zyxwell").await, "the server keeps the surname nowhere");
    let url = stdout.lines().find_map(|l| l.strip_prefix("DISCARDED_URL=")).expect("the browser test names the draft");
    let audit = app.fieldbook(&["audit", "--record", url.trim()]);
    assert!(audit.contains("draft discarded by its author") && audit.contains("\"sam\""), "{audit}");
    assert!(!app.db.stores("Qvoxdraft").await, "nothing of the discarded draft is kept");
}

/// Encryption at rest (`clients/web/tests/encryption.mjs`): what the app keeps in IndexedDB is
/// sealed, a reload asks for the PIN, no file of the browser profile holds the narrative, and too
/// many wrong PINs delete the local data.
#[tokio::test]
async fn the_browser_keeps_records_encrypted_and_unlocks_with_a_pin() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    app.db.user("pat", Role::Practitioner).await;
    app.fieldbook(&["users", "update", "--id", "pat", "--name", "Pat Reid"]);
    app.fieldbook(&["supervision", "set", "--user", "pat", "--supervisor", "sam", "--from", "2025-01-01"]);
    let out = app.fieldbook_with_stdin(&["users", "set-password", "--id", "sam"], PASSWORD);
    assert!(out.status.success(), "set-password: {}", String::from_utf8_lossy(&out.stderr));
    let out = Command::new("node")
        .arg(repo_root().join("clients/web/tests/encryption.mjs"))
        .env("FIELDBOOK_URL", app.http_url())
        .env("SUPERVISOR_ID", "sam")
        .env("SUPERVISOR_PASSWORD", PASSWORD)
        .output()
        .expect("run node clients/web/tests/encryption.mjs");
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "browser test failed:\n{}", String::from_utf8_lossy(&out.stdout));
}

/// The learning loops in the browser (`clients/web/tests/learning-loops.mjs`): a group session
/// run offline on a tablet, reflected on from a phone offline, closed; a practice theme raised
/// by a supervisor, answered by their manager from the leaders' home, read by the team.
#[tokio::test]
async fn a_group_session_and_a_practice_theme_across_devices_in_the_browser() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    for (id, role) in [("pat", Role::Practitioner), ("kim", Role::Practitioner), ("mo", Role::Manager)] {
        app.db.user(id, role).await;
    }
    app.fieldbook(&["teams", "add", "--id", "north", "--name", "North"]);
    for (id, name, team) in [
        ("sam", "Sam Okafor", Some("north")),
        ("pat", "Pat Reid", Some("north")),
        ("kim", "Kim Lee", None),
        ("mo", "Mo Ahmed", None),
    ] {
        let mut args = vec!["users", "update", "--id", id, "--name", name];
        if let Some(team) = team {
            args.extend(["--team", team]);
        }
        app.fieldbook(&args);
        let out = app.fieldbook_with_stdin(&["users", "set-password", "--id", id], PASSWORD);
        assert!(out.status.success(), "set-password: {}", String::from_utf8_lossy(&out.stderr));
    }
    for (user, supervisor) in [("pat", "sam"), ("kim", "sam"), ("sam", "mo")] {
        app.fieldbook(&["supervision", "set", "--user", user, "--supervisor", supervisor, "--from", "2025-01-01"]);
    }
    // Five observations of pat met component 1: enough for insights to show a number.
    let tablet = Device::new();
    for _ in 0..5 {
        tablet.create(&observation(json!({
            "status": "shared", "components": ["kss-cf-2018/1"], "judgements": {"kss-cf-2018/1": "met"},
        })));
    }
    tablet.sync(&app.http_url(), &app.token, &[]);
    app.fieldbook(&["champions", "add", "--user", "kim", "--component", "kss-cf-2018/1"]);
    // Kim is in the assessed and supported year in employment.
    tablet.create(&plan(json!({"ownerId": "kim", "source": "early-career-programme", "status": "agreed"})));
    tablet.sync(&app.http_url(), &app.token, &[]);
    let out = Command::new("node")
        .arg(repo_root().join("clients/web/tests/learning-loops.mjs"))
        .env("FIELDBOOK_URL", app.http_url())
        .env("PASSWORD", PASSWORD)
        .output()
        .expect("run node clients/web/tests/learning-loops.mjs");
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "browser test failed:\n{}", String::from_utf8_lossy(&out.stdout));
    // What the browsers wrote reached the central store as records.
    let pats: Value = serde_json::from_str(&app.fieldbook(&["records", "show", "--practitioner", "pat"])).unwrap();
    assert_eq!(pats["groupSessions"]["sessions"][0]["status"], "closed", "{pats:#}");
    assert_eq!(pats["groupSessions"]["sessions"][0]["reflected"], true, "{pats:#}");
}

/// Many records on a fresh tablet (`clients/web/tests/many-records.mjs`): the app fetches them a
/// window at a time (at most 64 requested and unanswered), every one ends stored on the server,
/// and after the tablet was offline the record edited meanwhile is sent first.
#[tokio::test]
async fn a_fresh_tablet_fetches_many_records_a_window_at_a_time_and_sends_unsent_work_first() {
    const RECORDS: usize = 200;
    let app = TestApp::spawn(Backend::Sqlite).await;
    app.db.user("pat", Role::Practitioner).await;
    app.fieldbook(&["supervision", "set", "--user", "pat", "--supervisor", "sam", "--from", "2025-01-01"]);
    let out = app.fieldbook_with_stdin(&["users", "set-password", "--id", "sam"], PASSWORD);
    assert!(out.status.success(), "set-password: {}", String::from_utf8_lossy(&out.stderr));
    let db = app.db.connect().await;
    let mut ids = Vec::new();
    for i in 0..RECORDS {
        ids.push(store(&db, observation(json!({"notes": format!("Seeded observation {i}.")}))).await);
    }
    // In the middle: neither newest-first nor oldest-first would fetch it in the first window.
    let edited = ids[RECORDS / 2].url();
    let out = Command::new("node")
        .arg(repo_root().join("clients/web/tests/many-records.mjs"))
        .env("FIELDBOOK_URL", app.http_url())
        .env("USER_ID", "sam")
        .env("PASSWORD", PASSWORD)
        .env("RECORDS", RECORDS.to_string())
        .env("EDITED_URL", &edited)
        .output()
        .expect("run node clients/web/tests/many-records.mjs");
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "browser test failed:\n{}", String::from_utf8_lossy(&out.stdout));
}
