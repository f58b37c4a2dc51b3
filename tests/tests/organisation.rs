//! The organisation behind access: admin API and CLI, device revocation, each user's record
//! index and the audit trail.

use std::time::Instant;

use fieldbook_server::storage::Role;
use fieldbook_sync_core::Message;
use fieldbook_sync_core::notice::WIPE;
use fieldbook_tests::records::observation;
use fieldbook_tests::{Backend, Device, TestApp, raw};
use serde_json::{Value, json};

#[tokio::test]
async fn admins_manage_people_teams_and_supervision() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let admin = app.db.user("ada", Role::Admin).await;
    let server = &app.server;
    let call = |method: &'static str, path: &'static str, body: Option<Value>| {
        let admin = admin.clone();
        async move { server.request(method, path, Some(&admin), body.as_ref()).await }
    };

    let team = call("POST", "/v1/admin/teams", Some(json!({"id": "north", "name": "North"}))).await;
    assert_eq!(team.status, 201, "{}", team.body);
    assert_eq!(call("POST", "/v1/admin/teams", Some(json!({"id": "north", "name": "N"}))).await.status, 409);
    let added = call(
        "POST",
        "/v1/admin/users",
        Some(json!({"id": "pat", "name": "Pat", "role": "practitioner", "teamId": "north", "supervisorId": "sam",
                    "supervisorFrom": "2025-09-01", "employeeNumber": "E100"})),
    )
    .await;
    assert_eq!(added.status, 201, "{}", added.body);
    let bad = call("POST", "/v1/admin/users", Some(json!({"id": "x", "name": "X", "role": "wizard"}))).await;
    assert_eq!(bad.status, 400);
    assert!(bad.json()["detail"].as_str().unwrap().contains("unknown role \"wizard\""), "{}", bad.body);

    // Non-admins are refused, whatever they ask.
    let sam = app.token.as_str();
    assert_eq!(server.request("GET", "/v1/admin/users", Some(sam), None).await.status, 403);

    // pat moves to a new supervisor; the history keeps the old one.
    app.db.user("nia", Role::Supervisor).await;
    let moved =
        call("PUT", "/v1/admin/users/pat/supervisor", Some(json!({"supervisorId": "nia", "from": "2026-03-01"}))).await;
    assert_eq!(moved.status, 200, "{}", moved.body);
    let history = moved.json();
    assert_eq!(history.as_array().unwrap().len(), 2);
    assert_eq!(history[0]["supervisorId"], "sam");
    assert_eq!(history[0]["endedOn"], "2026-03-01");
    assert_eq!(history[1]["supervisorId"], "nia");
    assert!(history[1]["endedOn"].is_null());

    // A whole authority from CSV: a file with problems changes nothing and says where.
    let broken = "id,name,role,supervisor\nkim,Kim,practitioner,nobody\nlee,Lee,wizard,\n";
    let refused = server.post_csv("/v1/admin/import", &admin, broken).await;
    assert_eq!(refused.status, 400);
    let message = refused.json()["detail"].as_str().unwrap().to_owned();
    assert!(message.contains("line 3: unknown role") && message.contains("nothing was imported"), "{message}");
    let csv = "id,name,role,team,supervisor,supervisor_from,external_id\n\
               kim,Kim Lee,practitioner,south,nia,2026-01-01,kim@council.example\n\
               pat,Pat Doe,practitioner,north,nia,,\n";
    let imported = server.post_csv("/v1/admin/import", &admin, csv).await;
    assert_eq!(imported.status, 200, "{}", imported.body);
    assert_eq!(
        imported.json(),
        json!({"usersCreated": 1, "usersUpdated": 1, "teamsCreated": 1, "supervisorsChanged": 1})
    );
    let kim = call("GET", "/v1/admin/users/kim", None).await.json();
    assert_eq!(kim["user"]["externalId"], "kim@council.example");
    assert_eq!(kim["supervision"][0]["supervisorId"], "nia");
    // An external id belongs to one user (found by fuzzing: this was a database error, 500);
    // a column named twice is refused too. Nothing is imported.
    let taken = "id,name,role,external_id\nlee,Lee,practitioner,kim@council.example\nmo,Mo,practitioner,mo@x\nmo2,Mo,practitioner,mo@x\n";
    let refused = server.post_csv("/v1/admin/import", &admin, taken).await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    let message = refused.json()["detail"].as_str().unwrap().to_owned();
    assert!(message.contains("line 2: external id \"kim@council.example\" is \"kim\"'s"), "{message}");
    assert!(message.contains("line 4: external id \"mo@x\" is also on line 3"), "{message}");
    let twice = server.post_csv("/v1/admin/import", &admin, "id,name,role,id\nlee,Lee,practitioner,lee\n").await;
    assert!(twice.json()["detail"].as_str().unwrap().contains("column \"id\" appears twice"), "{}", twice.body);
    assert_eq!(call("GET", "/v1/admin/users/lee", None).await.status, 404, "nothing was imported");
    // A supervisor change must start after the current supervision did (found by fuzzing: the
    // file was half imported before this was refused).
    let backdated = "id,name,role,team,supervisor,supervisor_from\nzed,Zed,practitioner,east,,\nkim,Kim Lee,practitioner,south,sam,2025-06-01\n";
    let refused = server.post_csv("/v1/admin/import", &admin, backdated).await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    let detail = refused.json()["detail"].as_str().unwrap().to_owned();
    assert!(detail.contains("line 3: \"kim\"'s current supervision started 2026-01-01"), "{detail}");
    assert_eq!(call("GET", "/v1/admin/users/zed", None).await.status, 404, "nothing was imported");

    // Passwords for built-in sign-in: too short is refused, a good one signs in.
    let short = json!({"password": "short"});
    assert_eq!(server.request("PUT", "/v1/admin/users/pat/password", Some(&admin), Some(&short)).await.status, 400);
    let good = json!({"password": "correct horse battery staple"});
    assert_eq!(server.request("PUT", "/v1/admin/users/pat/password", Some(&admin), Some(&good)).await.status, 204);
    let login = json!({"userId": "pat", "password": "correct horse battery staple", "deviceId": "pat-phone"});
    assert_eq!(server.post("/v1/auth/login", &login).await.status, 200);

    // Suspending a user refuses their tokens at once.
    let pat = app.db.token(&app.db.connect().await, "pat", std::time::Duration::from_secs(600)).await;
    assert_eq!(server.get_with("/v1/records", Some(&pat)).await.status, 200);
    let suspend = json!({"status": "suspended"});
    assert_eq!(server.request("PATCH", "/v1/admin/users/pat", Some(&admin), Some(&suspend)).await.status, 200);
    assert_eq!(server.get_with("/v1/records", Some(&pat)).await.status, 401);

    // Every change above is in the audit trail, attributed to the admin.
    let trail = call("GET", "/v1/admin/audit", None).await.json();
    let actions: Vec<&str> = trail.as_array().unwrap().iter().filter_map(|e| e["action"].as_str()).collect();
    for action in ["admin.team-added", "admin.user-added", "admin.supervisor-set", "admin.users-imported"] {
        assert!(actions.contains(&action), "{action} missing from {actions:?}");
    }
    assert!(
        trail
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["userId"] == "ada" || !e["action"].as_str().unwrap().starts_with("admin."))
    );
}

#[tokio::test]
async fn the_command_line_manages_the_organisation() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    app.fieldbook(&["teams", "add", "--id", "east", "--name", "East"]);
    app.fieldbook(&["users", "add", "--id", "pat", "--name", "Pat", "--role", "practitioner", "--team", "east"]);
    app.fieldbook(&["supervision", "set", "--user", "pat", "--supervisor", "sam", "--from", "2025-01-01"]);
    let csv = app.db.url.replace("sqlite:", "").replace("fieldbook.sqlite", "people.csv");
    std::fs::write(&csv, "id,name,role,supervisor\npip,Pip,principal-social-worker,\nkim,Kim,practitioner,sam\n")
        .unwrap();
    let out = app.fieldbook(&["users", "import", &csv]);
    assert!(out.contains("2 users created"), "{out}");
    let users = app.fieldbook(&["users", "list"]);
    assert!(users.contains("pip\tPip\tprincipal-social-worker\tactive"), "{users}");
    app.fieldbook(&["users", "update", "--id", "kim", "--status", "suspended"]);
    assert!(app.fieldbook(&["users", "list"]).contains("kim\tKim\tpractitioner\tsuspended"));
    let history = app.fieldbook(&["supervision", "history", "--user", "pat"]);
    assert!(history.contains("pat supervised by sam\t2025-01-01 .. now"), "{history}");
    let audit = app.fieldbook(&["audit", "--since", "2020-01-01"]);
    assert!(audit.contains("admin.users-imported") && audit.contains("command line"), "{audit}");
}

#[tokio::test]
async fn a_revoked_device_is_disconnected_told_to_wipe_and_refused() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let admin = app.db.user("ada", Role::Admin).await;
    // Two open connections from sam's device (token device "test-device").
    let mut sockets = Vec::new();
    for name in ["tablet-a", "tablet-b"] {
        let mut socket = raw::connect(&app.ws_url()).await;
        raw::send(&mut socket, raw::join_frame(name)).await;
        assert!(matches!(raw::next(&mut socket).await, Some(Message::Peer { .. })));
        sockets.push(socket);
    }
    let devices = app.server.get_with("/v1/admin/users/sam/devices", Some(&admin)).await.json();
    assert_eq!(devices[0]["deviceId"], "test-device");

    // Revoked from another process (as from another server node): the connections learn
    // by the database, not by this node's memory.
    let started = Instant::now();
    app.fieldbook(&["devices", "revoke", "--user", "sam", "--device", "test-device"]);
    for socket in &mut sockets {
        match raw::next(socket).await {
            Some(Message::Unknown { message_type }) => assert_eq!(message_type, WIPE),
            other => panic!("expected a wipe instruction, got {other:?}"),
        }
        assert!(raw::next(socket).await.is_none(), "the connection closes after the wipe instruction");
    }
    eprintln!("revocation closed both connections {:?} after the command started", started.elapsed());

    // Its token is refused with the wipe instruction; the device client obeys.
    let refused = app.server.get_with("/v1/records", Some(&app.token)).await;
    assert_eq!(refused.status, 401);
    assert_eq!(refused.header("fieldbook-wipe"), Some("1"));
    assert_eq!(refused.json()["wipe"], true);
    let device = Device::new();
    device.create(&observation(json!({})));
    let out = device.try_sync(&app.http_url(), &app.token, &[]);
    assert!(!out.status.success());
    assert!(!device.store_path().exists(), "the device deleted its store");
    let listed = app.fieldbook(&["devices", "list", "--user", "sam"]);
    assert!(listed.contains("test-device\trevoked"), "{listed}");
}

#[tokio::test]
async fn a_practitioners_phone_discovers_a_newly_shared_observation() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let pat = app.db.user("pat", Role::Practitioner).await;
    let hana = app.db.user("hana", Role::Hr).await;
    let tablet = Device::new();
    let url = tablet.create(&observation(json!({"feedback": "Good use of play."})));
    tablet.sync(&app.http_url(), &app.token, &[]);

    let phone = Device::new();
    phone.sync(&app.http_url(), &pat, &[]);
    assert!(!phone.run_ok(&["list"]).contains(&url), "a draft stays with the observer");
    let index = app.server.get_with("/v1/records", Some(&pat)).await.json();
    assert_eq!(index["records"], json!([]));

    tablet.edit(&url, &[("status", "shared")]);
    tablet.sync(&app.http_url(), &app.token, &[]);
    let out = phone.sync(&app.http_url(), &pat, &[]);
    assert!(out.contains(&format!("{url}\tnew")), "{out}");
    assert_eq!(phone.show(&url)["feedback"], "Good use of play.");
    let index = app.server.get_with("/v1/records", Some(&pat)).await.json();
    assert_eq!(index["records"][0]["url"], url.as_str());
    assert_eq!(index["records"][0]["party"], "practitioner");
    assert_eq!(index["records"][0]["type"], "observation");

    // HR reads minimised records through their own API, never documents.
    assert_eq!(app.server.get_with("/v1/records", Some(&hana)).await.status, 403);
}

async fn audit_trail_records_who_did_what(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let pat = app.db.user("pat", Role::Practitioner).await;
    let tablet = Device::new();
    let url = tablet.create(&observation(json!({"status": "shared", "notes": "SENSITIVE NARRATIVE"})));
    tablet.sync(&app.http_url(), &app.token, &[]);
    let phone = Device::new();
    phone.sync(&app.http_url(), &pat, &[&url]);
    phone.edit(&url, &[("feedback", "rewritten by the practitioner")]);
    assert!(!phone.try_sync(&app.http_url(), &pat, &[]).status.success());
    phone.edit(&url, &[("signOff", r#"{"practitioner": {"at": "2026-11-21T09:00:00Z", "by": "pat"}}"#)]);
    phone.sync(&app.http_url(), &pat, &[]);
    // A refused value with an embedded quote, and a refused map key: what the client wrote
    // reaches the sender's notice, never the audit trail.
    let other = tablet.create(&observation(json!({"status": "shared"})));
    tablet.sync(&app.http_url(), &app.token, &[]);
    tablet.edit(&other, &[("setting", r#"pub" and then Mother Smith said"#)]);
    let refused = tablet.try_sync(&app.http_url(), &app.token, &[]);
    assert!(String::from_utf8_lossy(&refused.stdout).contains("Mother Smith"), "the sender is told what it sent");
    tablet.edit(&other, &[("judgements", r#"{"Smith family \" kss-cf-2018/1": "met"}"#)]);
    assert!(!tablet.try_sync(&app.http_url(), &app.token, &[]).status.success());

    let everything = app.fieldbook(&["audit"]);
    assert!(!everything.contains("Smith"), "no client text in the trail: {everything}");
    let lines = app.fieldbook(&["audit", "--record", &url]);
    assert!(!lines.contains("SENSITIVE") && !lines.contains("rewritten"), "no narrative in the trail: {lines}");
    let events: Vec<Value> = lines.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let find = |action: &str, user: &str| {
        events
            .iter()
            .find(|e| e["action"] == action && e["userId"] == user)
            .unwrap_or_else(|| panic!("{action} by {user}: {lines}"))
    };
    let created = find("record-created", "sam");
    assert_eq!(created["deviceId"], "test-device");
    assert!(created["detail"]["fields"].as_array().unwrap().contains(&json!("notes")));
    let (server_time, device_time) = (created["serverTime"].as_i64().unwrap(), created["deviceTime"].as_i64().unwrap());
    assert!((server_time - device_time).abs() < 60_000, "device time is the change's own clock, in ms");
    find("record-opened", "pat");
    let rejected = &find("changes-rejected", "pat")["detail"];
    assert_eq!(
        (&rejected["rule"], &rejected["field"], &rejected["party"]),
        (&json!("not-writable"), &json!("feedback"), &json!("practitioner"))
    );
    assert_eq!(find("signed-off", "pat")["detail"]["side"], "practitioner");
    // The --user filter: exactly pat's events from the whole trail, in order, and there are
    // others' events for it to leave out.
    let by_pat = app.fieldbook(&["audit", "--user", "pat", "--since", "2020-01-01"]);
    let parse = |text: &str| -> Vec<Value> {
        text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect()
    };
    let (by_pat_events, all_events) = (parse(&by_pat), parse(&everything));
    assert!(!by_pat_events.is_empty(), "--user pat printed nothing; the whole trail:\n{everything}");
    assert!(all_events.iter().any(|e| e["userId"] == "sam"), "sam's events are in the trail: {everything}");
    let pats: Vec<&Value> = all_events.iter().filter(|e| e["userId"] == "pat").collect();
    assert_eq!(by_pat_events.iter().collect::<Vec<_>>(), pats, "--user pat:\n{by_pat}\nthe whole trail:\n{everything}");
    let actions: std::collections::BTreeSet<&str> = by_pat_events.iter().filter_map(|e| e["action"].as_str()).collect();
    for action in ["record-opened", "changes-rejected", "signed-off"] {
        assert!(actions.contains(action), "pat's {action} is in --user pat: {by_pat}");
    }

    // Append-only, enforced by the database itself.
    let db = app.db.connect().await;
    assert!(db.audit_trail(&Default::default()).await.is_ok());
    let tampered = app.db.raw_execute("UPDATE audit_events SET user_id = 'someone-else'").await;
    assert!(tampered.unwrap_err().contains("append-only"));
    let deleted = app.db.raw_execute("DELETE FROM audit_events").await;
    assert!(deleted.unwrap_err().contains("append-only"));
    db.close().await;
}

#[tokio::test]
async fn audit_trail_sqlite() {
    audit_trail_records_who_did_what(Backend::Sqlite).await;
}

#[tokio::test]
async fn audit_trail_postgres() {
    audit_trail_records_who_did_what(Backend::Postgres).await;
}
