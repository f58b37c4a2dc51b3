//! The learning loops beyond one observation (issue 15), through real devices and the real
//! server: a group session edited offline by its facilitator and participants at once, then
//! closed; a practice theme raised and answered.

use fieldbook_server::storage::Role;
use fieldbook_tests::{Backend, Device, TestApp};
use serde_json::json;

async fn group_session_offline_merge_and_close(backend: Backend) {
    let app = TestApp::spawn(backend).await; // sam, a practice supervisor
    let pat = app.db.user("pat", Role::Practitioner).await;
    let kim = app.db.user("kim", Role::Practitioner).await;
    let server = app.http_url();

    let tablet = Device::for_user("sam");
    let session = tablet.create(&json!({
        "type": "group-session", "schemaVersion": 1, "facilitatorId": "sam", "participantIds": ["pat", "kim"],
        "heldAt": "2026-11-20T10:00:00Z", "kind": "group-supervision", "framework": "kss-cf-2018",
        "components": ["kss-cf-2018/3"], "themes": [], "summary": "", "actions": [], "reflections": {},
        "status": "draft",
    }));
    tablet.sync(&server, &app.token, &[]);
    // A draft stays on the facilitator's side.
    let early = Device::for_user("pat");
    assert!(!early.try_sync(&server, &pat, &[&session]).status.success(), "a draft is not the participants' yet");
    tablet.edit(&session, &[("status", "shared")]);
    tablet.sync(&server, &app.token, &[]);
    let (pat_phone, kim_phone) = (Device::for_user("pat"), Device::for_user("kim"));
    pat_phone.sync(&server, &pat, &[&session]);
    kim_phone.sync(&server, &kim, &[&session]);

    // All three offline at once.
    tablet.edit(&session, &[("summary", "We talked about analysis under pressure."), ("themes.0", "Analysis")]);
    pat_phone.edit(&session, &[("reflections.pat", "I will slow down before deciding.")]);
    kim_phone.edit(&session, &[("reflections.kim", "I will ask for a second view.")]);
    for (device, token) in [(&kim_phone, &kim), (&tablet, &app.token), (&pat_phone, &pat)] {
        device.sync(&server, token, &[]);
    }
    for (device, token) in [(&tablet, &app.token), (&pat_phone, &pat), (&kim_phone, &kim)] {
        device.sync(&server, token, &[]);
        let merged = device.show(&session);
        assert_eq!(merged["summary"], "We talked about analysis under pressure.");
        assert_eq!(merged["themes"], json!(["Analysis"]));
        assert_eq!(
            merged["reflections"],
            json!({"pat": "I will slow down before deciding.", "kim": "I will ask for a second view."})
        );
    }
    // pat may not write kim's reflection: kept aside, the server's copy untouched.
    pat_phone.edit(&session, &[("reflections.kim", "Written for kim")]);
    let refused = pat_phone.try_sync(&server, &pat, &[]);
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success() && said.contains("refused"), "{said}");
    let fresh = Device::new();
    fresh.sync(&server, &kim, &[&session]);
    assert_eq!(fresh.show(&session)["reflections"]["kim"], "I will ask for a second view.");

    // Closed: nothing changes any more.
    tablet.edit(&session, &[("closedAt", "2026-11-21T09:00:00Z"), ("status", "closed")]);
    tablet.sync(&server, &app.token, &[]);
    kim_phone.sync(&server, &kim, &[]);
    kim_phone.edit(&session, &[("reflections.kim", "Too late")]);
    assert!(!kim_phone.try_sync(&server, &kim, &[]).status.success(), "a closed session takes no change");
    let fresh = Device::new();
    fresh.sync(&server, &kim, &[&session]);
    let stored = fresh.show(&session);
    assert_eq!(
        (stored["status"].as_str(), stored["reflections"]["kim"].as_str()),
        (Some("closed"), Some("I will ask for a second view."))
    );

    // Projected for the organisation: who took part, never what was said.
    let record: serde_json::Value =
        serde_json::from_str(&app.fieldbook(&["records", "show", "--practitioner", "kim"])).unwrap();
    assert_eq!(record["groupSessions"]["attended"], 1, "{record:#}");
    assert!(!record.to_string().contains("second view"), "{record:#}");
    // An HR system syncing what changed hears of kim, whose only record is the session.
    let key = app.fieldbook(&["service-accounts", "add", "--name", "HR", "--scopes", "hr:read"]);
    let key = key.lines().find_map(|l| l.strip_prefix("key: ")).expect("a key").trim().to_owned();
    let changed = app.server.get_with("/v1/api/development-records?updated_since=2020-01-01", Some(&key)).await.json();
    let ids: Vec<&str> =
        changed["records"].as_array().unwrap().iter().map(|r| r["practitioner"]["id"].as_str().unwrap()).collect();
    assert!(ids.contains(&"kim"), "{changed:#}");
}

#[tokio::test]
async fn group_session_offline_merge_and_close_sqlite() {
    group_session_offline_merge_and_close(Backend::Sqlite).await;
}

#[tokio::test]
async fn group_session_offline_merge_and_close_postgres() {
    group_session_offline_merge_and_close(Backend::Postgres).await;
}
