//! Practice records end to end: the supervisor/practitioner loop, validation, sign-off
//! locks, quarantine and the central store's projection.

use fieldbook_server::storage::Role;
use fieldbook_tests::records::{observation, plan};
use fieldbook_tests::{Backend, Device, TestApp, js};
use serde_json::{Value, json};

fn last_url(out: &str) -> String {
    out.lines().last().expect("a URL").trim().to_owned()
}

async fn the_whole_loop(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let pat_token = app.db.user("pat", Role::Practitioner).await;
    let server = app.http_url();

    // The supervisor's tablet, offline: a plan with a goal, and an observation that
    // evidences it (by an action linked to the goal, and by the plan's evidence list).
    let tablet = Device::for_user("sam");
    let plan_url = last_url(&tablet.run_ok(&[
        "plan",
        "new",
        "--owner",
        "pat",
        "--framework",
        "kss-cf-2018",
        "--from",
        "2026-09-01",
        "--to",
        "2027-03-31",
        "--source",
        "observation",
    ]));
    tablet.run_ok(&[
        "plan",
        "goal",
        "add",
        &plan_url,
        "--id",
        "g1",
        "--title",
        "Plan visits around the child",
        "--components",
        "kss-cf-2018/1,kss-cf-2018/6",
        "--target-date",
        "2027-01-31",
    ]);
    let obs = last_url(&tablet.run_ok(&[
        "observation",
        "new",
        "--practitioner",
        "pat",
        "--framework",
        "kss-cf-2018",
        "--components",
        "kss-cf-2018/1,kss-cf-2018/6",
        "--setting",
        "home-visit",
        "--present",
        "mother, two children under 5",
        "--consent-by",
        "mother",
        "--consent-how",
        "verbal",
    ]));
    tablet.run_ok(&["observation", "notes", &obs, "--text", "Warm, child-led play."]);
    tablet.run_ok(&["observation", "judge", &obs, "--component", "kss-cf-2018/1", "--judgement", "met"]);
    tablet.run_ok(&["observation", "feedback", &obs, "--text", "Try naming the worry earlier."]);
    tablet.run_ok(&["observation", "action", &obs, "--text", "Rehearse the opening", "--goal", "g1"]);
    tablet.run_ok(&["observation", "share", &obs]);
    tablet.run_ok(&["plan", "goal", "link", &plan_url, "--goal", "g1", "--observation", &obs]);
    tablet.run_ok(&["plan", "status", &plan_url, "--status", "agreed"]);
    tablet.sync(&server, &app.token, &[]);

    // The practitioner's phone reflects and signs; then the supervisor signs.
    let phone = Device::for_user("pat");
    phone.sync(&server, &pat_token, &[&obs, &plan_url]);
    phone.run_ok(&["observation", "reflect", &obs, "--text", "I rushed the start.", "--response", "Agreed."]);
    phone.run_ok(&["observation", "sign-off", &obs, "--as", "practitioner"]);
    phone.run_ok(&["plan", "goal", "status", &plan_url, "--goal", "g1", "--status", "in-progress"]);
    phone.run_ok(&["plan", "agree", &plan_url]);
    phone.sync(&server, &pat_token, &[]);
    tablet.sync(&server, &app.token, &[]);
    let agreement = &tablet.show(&plan_url)["agreement"];
    assert_eq!((&agreement["by"], &agreement["owner"]["by"]), (&json!("sam"), &json!("pat")), "both agreed the plan");
    // Pat's signature covers the feedback: the supervisor cannot change it now…
    tablet.run_ok(&["observation", "feedback", &obs, "--text", "Changed after pat signed."]);
    let refused = tablet.try_sync(&server, &app.token, &[]);
    let said = String::from_utf8_lossy(&refused.stdout);
    assert!(!refused.status.success() && said.contains("covered by the practitioner's sign-off"), "{said}");
    // …until pat withdraws (the supervisor's device sees it); pat signs again afterwards.
    phone.run_ok(&["observation", "withdraw-sign-off", &obs, "--as", "practitioner"]);
    phone.sync(&server, &pat_token, &[]);
    tablet.sync(&server, &app.token, &[]);
    assert!(tablet.show(&obs)["signOff"]["practitioner"].is_null(), "the withdrawal reached the supervisor");
    tablet.run_ok(&["observation", "feedback", &obs, "--text", "Try naming the worry earlier."]);
    tablet.sync(&server, &app.token, &[]);
    phone.sync(&server, &pat_token, &[]);
    phone.run_ok(&["observation", "sign-off", &obs, "--as", "practitioner"]);
    phone.sync(&server, &pat_token, &[]);
    tablet.sync(&server, &app.token, &[]);
    let trail = app.fieldbook(&["audit", "--record", &obs]);
    assert!(trail.contains("\"sign-off-withdrawn\""), "{trail}");
    tablet.run_ok(&["observation", "sign-off", &obs, "--as", "observer"]);
    tablet.sync(&server, &app.token, &[]);
    phone.sync(&server, &pat_token, &[]);

    let on_phone = phone.show(&obs);
    assert_eq!(on_phone, tablet.show(&obs));
    assert_eq!(on_phone["status"], "signed-off");
    assert_eq!(on_phone["reflection"], "I rushed the start.");

    let record: Value = serde_json::from_str(&app.fieldbook(&["records", "show", "--practitioner", "pat"])).unwrap();
    let projected = &record["observations"][0];
    assert_eq!(projected["url"], obs.as_str());
    assert_eq!(projected["locked"], true);
    assert_eq!(projected["components"], json!(["kss-cf-2018/1", "kss-cf-2018/6"]));
    assert_eq!(projected["judgements"], json!({"kss-cf-2018/1": "met"}));
    assert_eq!(projected["consentGiven"], true);
    let goal = &record["plans"][0]["goals"][0];
    assert_eq!(record["plans"][0]["status"], "agreed");
    assert_eq!(goal["status"], "in-progress");
    assert_eq!(
        goal["evidence"],
        json!([{"observation": obs, "via": "action"}, {"observation": obs, "via": "plan"}]),
        "the observation evidences the goal both ways"
    );
    let text = record.to_string();
    for narrative in
        ["Warm, child-led play.", "Try naming the worry", "I rushed the start.", "Rehearse the opening", "mother"]
    {
        assert!(!text.contains(narrative), "the projection must not copy narrative: {narrative}");
    }
}

#[tokio::test]
async fn whole_loop_sqlite() {
    the_whole_loop(Backend::Sqlite).await;
}

#[tokio::test]
async fn whole_loop_postgres() {
    the_whole_loop(Backend::Postgres).await;
}

#[tokio::test]
async fn feedback_and_reflection_written_offline_at_once_merge() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let pat_token = app.db.user("pat", Role::Practitioner).await;
    let tablet = Device::for_user("sam");
    let phone = Device::for_user("pat");
    let obs = tablet.create(&observation(json!({"status": "shared"})));
    tablet.sync(&app.http_url(), &app.token, &[]);
    phone.sync(&app.http_url(), &pat_token, &[&obs]);

    tablet.run_ok(&["observation", "feedback", &obs, "--text", "Good use of silence."]);
    phone.run_ok(&["observation", "reflect", &obs, "--text", "I felt rushed."]);
    tablet.sync(&app.http_url(), &app.token, &[]);
    phone.sync(&app.http_url(), &pat_token, &[]);
    tablet.sync(&app.http_url(), &app.token, &[]);

    let merged = tablet.show(&obs);
    assert_eq!(merged, phone.show(&obs));
    assert_eq!(
        (merged["feedback"].as_str(), merged["reflection"].as_str()),
        (Some("Good use of silence."), Some("I felt rushed."))
    );
}

#[tokio::test]
async fn an_offline_edit_after_sign_off_is_quarantined_and_the_record_stays_signed() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let pat_token = app.db.user("pat", Role::Practitioner).await;
    let server = app.http_url();
    let tablet = Device::for_user("sam");
    let phone = Device::for_user("pat");
    let obs = tablet.create(&observation(json!({"status": "shared", "reflection": ""})));
    tablet.run_ok(&["observation", "sign-off", &obs, "--as", "observer"]);
    tablet.sync(&server, &app.token, &[]);
    phone.sync(&server, &pat_token, &[&obs]);

    // A second phone of the practitioner's signs; the first, offline, keeps editing.
    let other_phone = Device::for_user("pat");
    other_phone.sync(&server, &pat_token, &[&obs]);
    other_phone.run_ok(&["observation", "sign-off", &obs, "--as", "practitioner"]);
    other_phone.sync(&server, &pat_token, &[]);
    let signed = other_phone.show(&obs);
    assert_eq!(signed["status"], "signed-off");

    phone.run_ok(&["observation", "reflect", &obs, "--text", "Written offline after the sign-off."]);
    let out = phone.run(&["sync", "--server", &server, "--token", &pat_token, "--timeout-secs", "30"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "a rejected sync reports failure");
    assert!(stdout.contains("REJECTED: the record is locked"), "{stdout}");

    // The server's copy is unchanged, and so is every device's.
    for device in [&phone, &tablet, &other_phone] {
        device.sync(&server, if std::ptr::eq(device, &tablet) { &app.token } else { &pat_token }, &[]);
        assert_eq!(device.show(&obs), signed);
    }
    let fresh = Device::new();
    fresh.sync(&server, &app.token, &[&obs]);
    assert_eq!(fresh.show(&obs), signed);

    // Kept aside on the server and on the device: never merged, never dropped.
    let listed = app.fieldbook(&["quarantine", "list"]);
    assert!(listed.contains(&obs) && listed.contains("pat") && listed.contains("locked"), "{listed}");
    let id = listed.split('\t').next().unwrap();
    let shown: Value = serde_json::from_str(&app.fieldbook(&["quarantine", "show", id])).unwrap();
    assert_eq!(shown["withRefusedChanges"]["reflection"], "Written offline after the sign-off.");
    assert_eq!(shown["stored"], signed);
    assert!(phone.run_ok(&["set-aside"]).contains(&obs));
}

#[tokio::test]
async fn sign_offs_made_at_once_lock_the_record_and_its_status_may_then_catch_up() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let pat_token = app.db.user("pat", Role::Practitioner).await;
    let server = app.http_url();
    let tablet = Device::for_user("sam");
    let phone = Device::for_user("pat");
    let obs = tablet.create(&observation(json!({"status": "shared", "signOff": {}})));
    tablet.sync(&server, &app.token, &[]);
    phone.sync(&server, &pat_token, &[&obs]);

    // Each signs before seeing the other's signature, so neither sets the status.
    tablet.run_ok(&["observation", "sign-off", &obs, "--as", "observer"]);
    phone.run_ok(&["observation", "sign-off", &obs, "--as", "practitioner"]);
    tablet.sync(&server, &app.token, &[]);
    phone.sync(&server, &pat_token, &[]);
    tablet.sync(&server, &app.token, &[]);
    let both = tablet.show(&obs);
    assert!(both["signOff"]["observer"].is_object() && both["signOff"]["practitioner"].is_object(), "{both}");
    assert_eq!(both["status"], "shared");

    // Locked: the status may catch up, nothing else may change.
    tablet.edit(&obs, &[("status", "signed-off")]);
    tablet.sync(&server, &app.token, &[]);
    phone.sync(&server, &pat_token, &[]);
    assert_eq!(phone.show(&obs)["status"], "signed-off");
    let fresh = Device::new();
    fresh.sync(&server, &app.token, &[&obs]);
    assert_eq!(fresh.show(&obs)["status"], "signed-off");
    phone.run_ok(&["observation", "reflect", &obs, "--text", "After the lock."]);
    let out = phone.run(&["sync", "--server", &server, "--token", &pat_token, "--timeout-secs", "30"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("REJECTED: the record is locked"), "{out:?}");
}

#[tokio::test]
async fn invalid_records_are_rejected_with_a_reason_and_nothing_else_is_disturbed() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let device = Device::new();
    let cases = [
        (
            observation(json!({"components": ["kss-cf-2018/42"]})),
            "components[0]: \"kss-cf-2018/42\" is not a component of kss-cf-2018",
        ),
        (observation(json!({"setting": "pub"})), "setting: \"pub\" is not one of"),
        (plan(json!({"status": "finished"})), "status: \"finished\" is not one of"),
        (observation(json!({"observedAt": "last Tuesday"})), "observedAt: \"last Tuesday\" is not an RFC 3339"),
        (observation(json!({"components": "kss-cf-2018/1"})), "components: invalid type"),
        (
            json!({"type": "observation", "schemaVersion": 1, "observerId": "sam", "framework": "kss-cf-2018", "status": "draft"}),
            "missing field `practitionerId`",
        ),
        (json!({"type": "note"}), "unknown record type"),
    ];
    let bad: Vec<String> = cases.iter().map(|(doc, _)| device.create(doc)).collect();
    let good = device.create(&observation(json!({"notes": "valid"})));

    let out = device.run(&["sync", "--server", &app.http_url(), "--token", &app.token, "--timeout-secs", "30"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    for (url, (_, reason)) in bad.iter().zip(&cases) {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(url.as_str()) && l.contains("REJECTED"))
            .unwrap_or_else(|| panic!("{url} not rejected: {stdout}"));
        assert!(line.contains(reason), "{line} should say {reason}");
    }
    assert!(stdout.contains(&format!("{good}\tsent")), "{stdout}");
    let fresh = Device::new();
    fresh.sync(&app.http_url(), &app.token, &[&good]);
    assert_eq!(fresh.show(&good)["notes"], "valid");
    assert_eq!(app.fieldbook(&["quarantine", "list"]).lines().count(), cases.len());
}

#[tokio::test]
async fn a_record_written_by_the_stock_js_client_validates_and_projects() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let url = js::create(
        &app.ws_url(),
        &observation(json!({"status": "shared", "judgements": {"kss-cf-2018/1": "not-met"}, "feedback": "from js"})),
    );
    let record: Value = serde_json::from_str(&app.fieldbook(&["records", "show", "--practitioner", "pat"])).unwrap();
    assert_eq!(record["observations"][0]["url"], url.as_str());
    assert_eq!(record["observations"][0]["judgements"]["kss-cf-2018/1"], "not-met");

    // An invalid one is refused, and the unmodified JS client is told with an ordinary
    // ephemeral message on the document.
    let out =
        js::client(&["create", "--url", &app.ws_url(), "--json", &json!({"type": "observation"}).to_string()]).unwrap();
    assert_eq!(out["rejected"]["type"], "fieldbook/rejected", "{out}");
    assert!(out["rejected"]["reason"].as_str().unwrap().contains("missing field"), "{out}");
    assert_eq!(out["rejected"]["changeHashes"].as_array().unwrap().len(), 1);
    assert!(app.fieldbook(&["quarantine", "list"]).contains("missing field"));

    // So is an edit that breaks a stored record; the server's copy is unchanged.
    let out = js::client(&["edit", "--url", &app.ws_url(), "--doc", &url, "--set", "setting=pub"]).unwrap();
    assert!(out["rejected"]["reason"].as_str().unwrap().contains("setting"), "{out}");
    assert_eq!(js::fetch(&app.ws_url(), &url).unwrap()["setting"], "home-visit");
}

#[tokio::test]
async fn frameworks_are_data_and_corrections_keep_old_ids_valid() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let listed = app.fieldbook(&["frameworks", "list"]);
    for id in ["kss-cf-2018", "kss-ps-2018", "pcf-2018"] {
        assert!(listed.contains(id), "{listed}");
    }
    // A record made against area 10 before the correction.
    let device = Device::new();
    let before = device.create(&observation(json!({"components": ["kss-cf-2018/10"]})));
    device.sync(&app.http_url(), &app.token, &[]);

    // The correction adds a component under area 6 and drops area 10.
    let mut framework: Value = serde_json::from_str(include_str!("../../frameworks/kss-cf-2018.json")).unwrap();
    framework["version"] = json!("2018-corrected");
    framework["areas"][5]["components"] =
        json!([{"id": "kss-cf-2018/6.1", "title": "Assessment that hears the child"}]);
    framework["areas"].as_array_mut().unwrap().pop();
    let file = fieldbook_tests::TempDir::new("framework");
    let path = file.path().join("kss.json");
    std::fs::write(&path, framework.to_string()).unwrap();
    let imported = app.fieldbook(&["frameworks", "import", path.to_str().unwrap()]);
    assert!(imported.contains("1 ids added") && imported.contains("1 retired"), "{imported}");

    // The server picks it up (within 5 s): the new id is accepted, the old record still
    // syncs and the retired id still validates.
    tokio::time::sleep(std::time::Duration::from_secs(6)).await;
    let after = device
        .create(&observation(json!({"components": ["kss-cf-2018/6.1"], "judgements": {"kss-cf-2018/6.1": "met"}})));
    device.edit(&before, &[("notes", "still valid")]);
    device.sync(&app.http_url(), &app.token, &[]);
    let fresh = Device::new();
    fresh.sync(&app.http_url(), &app.token, &[&after, &before]);
    assert_eq!(fresh.show(&before)["notes"], "still valid");

    assert!(app.fieldbook(&["frameworks", "list"]).contains("2018-corrected"));
}

/// The same loop one level up: a manager observes the practice supervisor they supervise
/// against the practice supervisor standards (`kss-ps-2018`), both sign off, a development
/// plan links the observation as evidence, and the supervisor's development record shows it.
#[tokio::test]
async fn a_manager_observes_a_supervisor_against_their_own_standards() {
    let app = TestApp::spawn(Backend::Sqlite).await; // sam, a practice supervisor
    let mia_token = app.db.user("mia", Role::Manager).await;
    app.fieldbook(&["supervision", "set", "--user", "sam", "--supervisor", "mia", "--from", "2025-01-01"]);
    let server = app.http_url();

    let laptop = Device::for_user("mia");
    let obs = last_url(&laptop.run_ok(&[
        "observation",
        "new",
        "--practitioner",
        "sam",
        "--framework",
        "kss-ps-2018",
        "--components",
        "kss-ps-2018/2,kss-ps-2018/7",
        "--setting",
        "supervision-session",
    ]));
    laptop.run_ok(&["observation", "notes", &obs, "--text", "Sam held the reflective space well."]);
    laptop.run_ok(&["observation", "judge", &obs, "--component", "kss-ps-2018/7", "--judgement", "met"]);
    laptop.run_ok(&["observation", "share", &obs]);
    let plan_url = last_url(&laptop.run_ok(&[
        "plan",
        "new",
        "--owner",
        "sam",
        "--framework",
        "kss-ps-2018",
        "--from",
        "2026-09-01",
        "--to",
        "2027-08-31",
        "--source",
        "observation",
    ]));
    laptop.run_ok(&[
        "plan",
        "goal",
        "add",
        &plan_url,
        "--id",
        "g1",
        "--title",
        "Group supervision",
        "--components",
        "kss-ps-2018/2",
    ]);
    laptop.run_ok(&["plan", "goal", "link", &plan_url, "--goal", "g1", "--observation", &obs]);
    laptop.run_ok(&["plan", "status", &plan_url, "--status", "agreed"]);
    laptop.sync(&server, &mia_token, &[]);

    let tablet = Device::for_user("sam");
    tablet.sync(&server, &app.token, &[&obs, &plan_url]);
    tablet.run_ok(&["observation", "reflect", &obs, "--text", "I let the silence work.", "--response", "Yes."]);
    tablet.run_ok(&["observation", "sign-off", &obs, "--as", "practitioner"]);
    tablet.sync(&server, &app.token, &[]);
    laptop.sync(&server, &mia_token, &[]);
    laptop.run_ok(&["observation", "sign-off", &obs, "--as", "observer"]);
    laptop.sync(&server, &mia_token, &[]);
    tablet.sync(&server, &app.token, &[]);
    assert_eq!(tablet.show(&obs)["status"], "signed-off");

    let record: Value = serde_json::from_str(&app.fieldbook(&["records", "show", "--practitioner", "sam"])).unwrap();
    let projected = &record["observations"][0];
    assert_eq!(projected["url"], obs.as_str(), "{record:#}");
    assert_eq!(projected["framework"], "kss-ps-2018");
    assert_eq!(projected["locked"], true);
    assert_eq!(projected["judgements"], json!({"kss-ps-2018/7": "met"}));
    assert_eq!(record["plans"][0]["goals"][0]["evidence"], json!([{"observation": obs, "via": "plan"}]));
    // Someone outside the line (another supervisor's practitioner) may not see it.
    let pat = app.db.user("pat", Role::Practitioner).await;
    let phone = Device::for_user("pat");
    let out = phone.try_sync(&server, &pat, &[&obs]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && said.contains("not yours to see"), "{said}");
    assert!(phone.run(&["show", &obs]).stdout.is_empty(), "nothing of it reached the outsider");
}

/// Sharing needs the date, the setting and the family's consent, and dates that could be
/// true: the server refuses the stock JS client's share without them, naming what is missing,
/// and the device client says so offline before anything is sent.
#[tokio::test]
async fn an_observation_is_shared_only_with_consent_and_dates_that_could_be_true() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    app.db.user("pat", Role::Practitioner).await;
    let refusal = |record: Value| {
        let out = js::client(&["create", "--url", &app.ws_url(), "--json", &record.to_string()]).unwrap();
        out["rejected"]["reason"].as_str().unwrap_or_default().to_owned()
    };
    let mut no_consent = observation(json!({"status": "shared"}));
    no_consent.as_object_mut().unwrap().remove("consent");
    let reason = refusal(no_consent);
    assert!(reason.contains("not shared: record that the family agreed to the observation"), "{reason}");
    let reason = refusal(observation(json!({"status": "shared", "observedAt": "2031-01-01T09:00:00Z"})));
    assert!(reason.contains("not shared: the observation is dated in the future"), "{reason}");
    let early = observation(json!({"status": "shared", "feedbackGivenAt": "2020-01-01T09:00:00Z"}));
    assert!(refusal(early).contains("feedback is dated before the observation"));
    // A supervision session observes staff: no family's consent is asked for.
    let mut supervision = observation(json!({"status": "shared", "setting": "supervision-session"}));
    supervision.as_object_mut().unwrap().remove("consent");
    assert_eq!(refusal(supervision), "");
    assert_eq!(refusal(observation(json!({"status": "shared"}))), "");

    let tablet = Device::for_user("sam");
    let new = "observation new --practitioner pat --framework kss-cf-2018 --setting home-visit";
    let obs = last_url(&tablet.run_ok(&new.split(' ').collect::<Vec<_>>()));
    let refused = tablet.run(&["observation", "share", &obs]);
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success() && said.contains("not shared: record that the family agreed"), "{said}");
    assert_eq!(tablet.show(&obs)["status"], "draft");
}
