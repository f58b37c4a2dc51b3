//! Retention and legal holds (`fieldbook retention`, `fieldbook holds`): what has expired is
//! deleted everywhere the server keeps it, except what a hold keeps; devices that hold a
//! deleted record are refused and told to remove it (the device client does); withdrawn
//! consent is listed and deleted in one command; a restore deletes again what was deleted
//! after the backup.

use std::time::Duration;

use fieldbook_server::storage::Role;
use fieldbook_sync_core::DocumentId;
use fieldbook_tests::peer::{Outcome, Peer};
use fieldbook_tests::records::{document, observation, plan, store};
use fieldbook_tests::{Backend, TempDir, TestDatabase, TestServer};
use serde_json::{Value, json};

/// An observation signed off by both on `day`, with `notes`.
fn signed_off(practitioner: &str, day: &str, notes: &str) -> Value {
    let at = format!("{day}T12:00:00Z");
    observation(json!({
        "practitionerId": practitioner, "observedAt": format!("{day}T10:00:00Z"), "notes": notes,
        "status": "signed-off",
        "signOff": { "observer": { "at": at, "by": "sam" }, "practitioner": { "at": at, "by": practitioner } },
    }))
}

/// A fresh device asking for `id` is told it was deleted, once the server has dropped its
/// copy (at once on PostgreSQL; on SQLite the server polls the ledger twice a second).
/// Returns the device.
async fn refused_as_deleted(server: &TestServer, token: &str, id: DocumentId) -> Peer {
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    loop {
        let mut fresh = Peer::connect(&server.ws_url(token), "fresh").await;
        match fresh.fetch(id).await {
            Err(Outcome::Rejected(reason)) if reason.contains("deleted") => return fresh,
            other => assert!(std::time::Instant::now() < deadline, "{id} is still served: {:?}", other.err()),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The JSON lines a command printed, keyed by record URL, with their `action`.
fn actions(out: &str) -> Vec<(String, String)> {
    out.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .map(|v| (v["record"].as_str().unwrap().to_owned(), v["action"].as_str().unwrap().to_owned()))
        .collect()
}

async fn retention_deletes_what_has_expired_except_what_is_on_hold(backend: Backend) {
    let test_db = TestDatabase::new(backend).await;
    let sam = test_db.user("sam", Role::Supervisor).await;
    for user in ["pat", "kim", "lee"] {
        test_db.user(user, Role::Practitioner).await;
    }
    let db = test_db.connect().await;
    let expired = store(&db, signed_off("pat", "2019-06-01", "Visit with the ZQXOLD family")).await;
    let recent = store(&db, signed_off("pat", "2025-09-01", "Recent visit")).await;
    let kims = store(&db, signed_off("kim", "2019-06-01", "Kim's old visit")).await;
    let held = store(&db, signed_off("pat", "2019-07-01", "Held visit")).await;
    let draft = store(&db, observation(json!({ "notes": "A draft changed today" }))).await;
    let leavers_plan = store(&db, plan(json!({ "ownerId": "lee" }))).await;
    let stayers_plan = store(&db, plan(json!({}))).await;
    db.close().await;
    drop(db); // its hold on the SQLite file, too
    // Lee left in 2020.
    test_db.fieldbook(&["users", "update", "--id", "lee", "--status", "deleted"]);
    test_db.raw_execute("UPDATE users SET left_at = 1577836800000 WHERE id = 'lee'").await.unwrap();

    let server = TestServer::start(&test_db.url);
    // A tablet holds the expired record.
    let mut tablet = Peer::connect(&server.ws_url(&sam), "tablet").await;
    let tablets_copy = tablet.fetch(expired).await.expect("the tablet holds the record");

    assert_eq!(
        test_db.fieldbook(&["retention", "run", "--dry-run"]).lines().last(),
        Some("would delete 0 records; 0 kept under legal holds"),
        "no policy, nothing expires"
    );
    test_db.fieldbook(&["retention", "set", "--type", "observation", "--keep", "6y", "--after", "sign-off"]);
    test_db.fieldbook(&["retention", "set", "--type", "development-plan", "--keep", "2y", "--after", "leaving"]);
    let policies = test_db.fieldbook(&["retention", "list"]);
    assert!(policies.contains(r#""recordType":"observation","keep":"6y","after":"sign-off""#), "{policies}");
    let bad = test_db
        .fieldbook_command()
        .args(["retention", "set", "--type", "observation", "--keep", "six years", "--after", "sign-off"])
        .output()
        .unwrap();
    assert!(!bad.status.success() && String::from_utf8_lossy(&bad.stderr).contains("not a period"));

    let on_kim = test_db.fieldbook(&["holds", "add", "--user", "kim", "--reason", "employment tribunal 2026/17"]);
    let on_record = test_db.fieldbook(&["holds", "add", "--record", &held.url(), "--reason", "complaint under review"]);
    let on_record = on_record.trim().to_owned();
    let holds = test_db.fieldbook(&["holds", "list"]);
    assert!(holds.contains("employment tribunal 2026/17") && holds.contains(&held.url()), "{holds}");
    let unknown =
        test_db.fieldbook_command().args(["holds", "add", "--user", "nobody", "--reason", "x"]).output().unwrap();
    assert!(!unknown.status.success(), "a hold on someone unknown is refused");

    // A dry run says what would go and touches nothing.
    let dry = test_db.fieldbook(&["retention", "run", "--dry-run"]);
    let mut planned = actions(&dry);
    planned.sort();
    let mut expected = vec![
        (expired.url(), "would delete".to_owned()),
        (leavers_plan.url(), "would delete".to_owned()),
        (kims.url(), "held".to_owned()),
        (held.url(), "held".to_owned()),
    ];
    expected.sort();
    assert_eq!(planned, expected, "{dry}");
    assert!(test_db.stores("ZQXOLD").await, "a dry run deletes nothing");

    let run = test_db.fieldbook(&["retention", "run"]);
    assert_eq!(run.lines().last(), Some("deleted 2 records; 2 kept under legal holds"), "{run}");
    assert!(!test_db.stores("ZQXOLD").await, "the expired record's text is stored nowhere");

    // Devices: a fresh one cannot fetch it; one holding it is told to remove it, and nothing
    // it sends is stored (not even aside).
    let mut fresh = refused_as_deleted(&server, &sam, expired).await;
    let mut returning = Peer::connect(&server.ws_url(&sam), "returning").await;
    match returning.push(expired, &tablets_copy).await {
        Outcome::Rejected(reason) => assert!(reason.contains("remove your copy"), "{reason}"),
        other => panic!("a deleted record's copy was not refused: {other:?}"),
    }
    assert!(!test_db.stores("ZQXOLD").await, "nothing of the returning copy was stored");
    assert!(test_db.fieldbook(&["quarantine", "list"]).trim().is_empty(), "not even in the quarantine");
    for kept in [recent, kims, held, draft, stayers_plan] {
        assert!(fresh.fetch(kept).await.is_ok(), "{kept} is kept");
    }
    let record = test_db.fieldbook(&["records", "show", "--practitioner", "pat"]);
    assert!(
        !record.contains(&expired.url()) && record.contains(&recent.url()),
        "the central store dropped it: {record}"
    );

    // The HR change feed tells systems that keep copies; xAPI statements leave it out.
    let hr = test_db.fieldbook(&["service-accounts", "add", "--name", "HR", "--scopes", "hr:read"]);
    let hr = hr.lines().find_map(|l| l.strip_prefix("key: ")).expect("a key").trim().to_owned();
    let feed = server.get_with("/v1/api/feed?after=0&limit=5000", Some(&hr)).await;
    assert_eq!(feed.status, 200, "{}", feed.body);
    let deletions: Vec<(String, String)> = feed.json()["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"].as_str().unwrap().ends_with(".deleted"))
        .map(|e| (e["kind"].as_str().unwrap().to_owned(), e["record"].as_str().unwrap().to_owned()))
        .collect();
    let mut expected_feed =
        vec![("observation.deleted".to_owned(), expired.url()), ("plan.deleted".to_owned(), leavers_plan.url())];
    expected_feed.sort();
    let mut deletions_sorted = deletions.clone();
    deletions_sorted.sort();
    assert_eq!(deletions_sorted, expected_feed, "{}", feed.body);
    let statements = server.get_with("/v1/api/xapi/statements?after=0&limit=5000", Some(&hr)).await;
    assert!(!statements.body.contains(&expired.to_string()), "no statement about a deleted record");

    // Audited with minimal metadata, never the text.
    let audit = test_db.fieldbook(&["audit", "--record", &expired.url()]);
    assert!(audit.contains("record-deleted") && audit.contains("retention: observation"), "{audit}");
    assert!(!audit.contains("ZQXOLD"));
    assert!(test_db.fieldbook(&["audit", "--limit", "100000"]).contains("retention-run"));

    // Released, the record goes at the next run.
    test_db.fieldbook(&["holds", "remove", &on_record]);
    assert!(!test_db.fieldbook(&["holds", "list"]).contains(&held.url()));
    assert!(test_db.fieldbook(&["holds", "list", "--all"]).contains(&held.url()), "released holds stay listed");
    let run = test_db.fieldbook(&["retention", "run"]);
    assert_eq!(actions(&run), vec![(held.url(), "deleted".to_owned()), (kims.url(), "held".to_owned())], "{run}");
    assert!(!on_kim.trim().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_deletes_what_has_expired_except_what_is_on_hold_sqlite() {
    retention_deletes_what_has_expired_except_what_is_on_hold(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_deletes_what_has_expired_except_what_is_on_hold_postgres() {
    retention_deletes_what_has_expired_except_what_is_on_hold(Backend::Postgres).await;
}

/// The server applies retention by itself; a device following the record is told at once,
/// and `fieldbook-device` removes its copy when it next syncs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daily_job_deletes_and_devices_drop_their_copies() {
    let test_db = TestDatabase::new(Backend::Sqlite).await;
    let sam = test_db.user("sam", Role::Supervisor).await;
    test_db.user("pat", Role::Practitioner).await;
    let db = test_db.connect().await;
    let followed = store(&db, signed_off("pat", "2019-06-01", "Visit with the ZQXOLD family")).await;
    db.close().await;
    drop(db); // its hold on the SQLite file, too
    let server = TestServer::start_with(&test_db.url, &["--retention-every", "1s"]);

    // The device client holds the record (and its sync state), offline from here.
    let url = server.http_url();
    let device = std::sync::Arc::new(fieldbook_tests::Device::new());
    let synced = {
        let (device, url, sam, record) = (device.clone(), url.clone(), sam.clone(), followed.url());
        tokio::task::spawn_blocking(move || device.sync(&url, &sam, &[&record])).await.unwrap()
    };
    assert!(synced.contains(&followed.url()), "{synced}");
    assert!(device.run_ok(&["list"]).contains(&followed.url()), "the device client holds the record");
    let mut tablet = Peer::connect(&server.ws_url(&sam), "tablet").await;
    tablet.fetch(followed).await.expect("the tablet follows the record");

    test_db.fieldbook(&["retention", "set", "--type", "observation", "--keep", "6y", "--after", "sign-off"]);
    let told = tablet
        .notice_about(followed, Duration::from_secs(10))
        .await
        .expect("the tablet was told the record was deleted");
    assert_eq!(told.rule.as_deref(), Some("deleted"));
    assert!(!test_db.stores("ZQXOLD").await);
    let audit = test_db.fieldbook(&["audit", "--record", &followed.url()]);
    assert!(audit.contains("scheduled job"), "{audit}");

    let (out, listed, set_aside) = {
        let (device, sam) = (device.clone(), sam.clone());
        tokio::task::spawn_blocking(move || {
            (device.sync(&url, &sam, &[]), device.run_ok(&["list"]), device.run_ok(&["set-aside"]))
        })
        .await
        .unwrap()
    };
    assert!(out.contains("deleted on the server") && out.contains(&followed.url()), "{out}");
    assert!(!listed.contains(&followed.url()), "the device client removed its copy: {listed}");
    assert!(!set_aside.contains(&followed.url()), "and kept nothing of it aside: {set_aside}");
}

/// Observations whose family withdrew consent are listed for review (those stored before the
/// projection kept it too) and deleted in one command, except what a hold keeps.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn withdrawn_consent_is_listed_and_deleted_in_one_command() {
    let test_db = TestDatabase::new(Backend::Sqlite).await;
    test_db.user("pat", Role::Practitioner).await;
    let db = test_db.connect().await;
    let withdrawn = |notes: &str| {
        observation(json!({ "notes": notes, "consent": { "given": true, "withdrawnAt": "2026-11-02T09:00:00Z" } }))
    };
    let first = store(&db, withdrawn("First ZQXCONSENT visit")).await;
    let second = store(&db, withdrawn("Second visit")).await;
    let given = store(&db, observation(json!({ "consent": { "given": true } }))).await;
    db.close().await;
    drop(db); // its hold on the SQLite file, too
    // As if stored before consent withdrawals were projected: filled in on the next start.
    test_db
        .raw_execute(&format!(
            "UPDATE observations SET consent_withdrawn_at = NULL WHERE document_url = '{}'",
            first.url()
        ))
        .await
        .unwrap();
    test_db.raw_execute("DELETE FROM server_settings WHERE name = 'consent_withdrawn_projected'").await.unwrap();

    let listed = test_db.fieldbook(&["records", "consent-withdrawn"]);
    let urls: Vec<String> = listed
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["record"].as_str().unwrap().to_owned())
        .collect();
    let mut expected = vec![first.url(), second.url()];
    expected.sort();
    let mut urls_sorted = urls.clone();
    urls_sorted.sort();
    assert_eq!(urls_sorted, expected, "{listed}");
    assert!(listed.contains("2026-11-02T09:00:00Z"));

    test_db.fieldbook(&["holds", "add", "--record", &second.url(), "--reason", "complaint"]);
    let deleted =
        test_db.fieldbook(&["records", "consent-withdrawn", "--delete", "--reason", "the family withdrew consent"]);
    assert!(deleted.contains(&format!("deleted {}", first.url())), "{deleted}");
    assert!(deleted.contains(&format!("kept {}", second.url())), "{deleted}");
    assert!(!test_db.stores("ZQXCONSENT").await);
    let left = test_db.fieldbook(&["records", "consent-withdrawn"]);
    assert!(!left.contains(&first.url()) && left.contains(&second.url()), "{left}");
    let needs_reason = test_db.fieldbook_command().args(["records", "consent-withdrawn", "--delete"]).output().unwrap();
    assert!(!needs_reason.status.success(), "--delete needs a reason");
    let by_hand = test_db.fieldbook(&["records", "delete", "--record", &given.url(), "--reason", "recorded in error"]);
    assert!(by_hand.contains("deleted"), "{by_hand}");
}

/// Admins delete through the API as the command does; a hold answers 409.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_delete_through_the_api() {
    let test_db = TestDatabase::new(Backend::Sqlite).await;
    let sam = test_db.user("sam", Role::Supervisor).await;
    let admin = test_db.user("ada", Role::Admin).await;
    let server = TestServer::start(&test_db.url);
    let mut tablet = Peer::connect(&server.ws_url(&sam), "tablet").await;
    let (id, held) = (DocumentId::random(), DocumentId::random());
    // Shared, so the HR feed has events about it.
    let doc = document(&observation(json!({ "notes": "Home visit.", "status": "shared" })));
    assert_eq!(tablet.push(id, &doc).await, Outcome::Accepted);
    assert_eq!(tablet.push(held, &doc).await, Outcome::Accepted);
    let hr = test_db.fieldbook(&["service-accounts", "add", "--name", "HR", "--scopes", "hr:read"]);
    let hr = hr.lines().find_map(|l| l.strip_prefix("key: ")).expect("a key").trim().to_owned();
    let feed_about = |body: String| -> Vec<String> {
        let page: serde_json::Value = serde_json::from_str(&body).unwrap();
        page["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["record"] == id.url().as_str())
            .map(|e| e["kind"].as_str().unwrap().to_owned())
            .collect()
    };
    let before = server.get_with("/v1/api/feed?after=0", Some(&hr)).await.body;
    assert!(feed_about(before).contains(&"observation.shared".to_owned()), "the feed had events about it");
    let statements = server.get_with("/v1/api/xapi/statements?after=0", Some(&hr)).await.body;
    assert!(statements.contains(&id.to_string()), "and so did the statements");
    test_db.fieldbook(&["holds", "add", "--record", &held.url(), "--reason", "claim"]);

    let body = json!({ "reason": "recorded in error" });
    let path = |id: DocumentId| format!("/v1/admin/records/{}/delete", id.url());
    assert_eq!(server.request("POST", &path(id), Some(&sam), Some(&body)).await.status, 403);
    assert_eq!(server.request("POST", &path(id), Some(&admin), Some(&json!({ "reason": "" }))).await.status, 400);
    assert_eq!(server.request("POST", &path(DocumentId::random()), Some(&admin), Some(&body)).await.status, 404);
    assert_eq!(server.request("POST", &path(held), Some(&admin), Some(&body)).await.status, 409);
    let deleted = server.request("POST", &path(id), Some(&admin), Some(&body)).await;
    assert_eq!(deleted.status, 200, "{}", deleted.body);
    // The tablet following it hears at once.
    let told = tablet.notice_about(id, Duration::from_secs(5)).await.expect("told");
    assert_eq!(told.rule.as_deref(), Some("deleted"));
    assert_eq!(server.request("POST", &path(id), Some(&admin), Some(&body)).await.status, 404, "deleted once");
    // The feed keeps only that it was deleted; no statement names it any more.
    let after = server.get_with("/v1/api/feed?after=0", Some(&hr)).await.body;
    assert_eq!(feed_about(after), vec!["observation.deleted".to_owned()]);
    let statements = server.get_with("/v1/api/xapi/statements?after=0", Some(&hr)).await.body;
    assert!(!statements.contains(&id.to_string()), "a statement still names the deleted record: {statements}");
}

/// A restore from a backup taken before a deletion deletes the record again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_deletes_again_what_was_deleted_after_the_backup() {
    let test_db = TestDatabase::new(Backend::Sqlite).await;
    let sam = test_db.user("sam", Role::Supervisor).await;
    test_db.user("pat", Role::Practitioner).await;
    let db = test_db.connect().await;
    let id = store(&db, signed_off("pat", "2019-06-01", "Visit with the ZQXOLD family")).await;
    db.close().await;
    drop(db); // its hold on the SQLite file, too
    let dir = TempDir::new("retention-backup");
    let backup = dir.path().join("before.sqlite");
    test_db.fieldbook(&["backup", "--to", backup.to_str().unwrap()]);
    test_db.fieldbook(&["records", "delete", "--record", &id.url(), "--reason", "recorded in error"]);

    let restored = test_db.fieldbook(&["restore", "--from", backup.to_str().unwrap()]);
    assert!(restored.contains("re-applied 1 erasures and deletions"), "{restored}");
    assert!(!test_db.stores("ZQXOLD").await, "deleted again");
    let server = TestServer::start(&test_db.url);
    refused_as_deleted(&server, &sam, id).await;
}

/// Two nodes on one PostgreSQL database run the job at the same time: each expired record is
/// deleted once (one ledger entry, one audit event), and both keep serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_running_the_job_together_delete_each_record_once() {
    let test_db = TestDatabase::new(Backend::Postgres).await;
    let sam = test_db.user("sam", Role::Supervisor).await;
    test_db.user("pat", Role::Practitioner).await;
    let db = test_db.connect().await;
    let mut expired = Vec::new();
    for n in 0..20 {
        expired.push(store(&db, signed_off("pat", "2019-06-01", &format!("Old visit {n}"))).await);
    }
    test_db.fieldbook(&["retention", "set", "--type", "observation", "--keep", "6y", "--after", "sign-off"]);
    let nodes: Vec<TestServer> =
        (0..2).map(|_| TestServer::start_with(&test_db.url, &["--retention-every", "1s"])).collect();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while db.ledger_after(0).await.unwrap().len() < expired.len() {
        assert!(std::time::Instant::now() < deadline, "the nodes did not delete every expired record");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await; // further runs on both nodes
    let ledger = db.ledger_after(0).await.unwrap();
    assert_eq!(ledger.len(), expired.len(), "one ledger entry per record: {ledger:?}");
    for id in &expired {
        let audit = test_db.fieldbook(&["audit", "--record", &id.url()]);
        assert_eq!(audit.matches("record-deleted").count(), 1, "{audit}");
    }
    for node in &nodes {
        refused_as_deleted(node, &sam, expired[0]).await;
    }
    db.close().await;
}

/// Devices following a record are told it was deleted even when their server no longer holds
/// it in memory (who could read it is kept in the ledger); followers who may not see it are
/// told nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn followers_are_told_of_a_deletion_and_only_those_who_may_see_it() {
    let test_db = TestDatabase::new(Backend::Sqlite).await;
    let sam = test_db.user("sam", Role::Supervisor).await;
    let pat = test_db.user("pat", Role::Practitioner).await;
    // Room for one record in memory.
    let server = TestServer::start_with(&test_db.url, &["--cache-documents", "1"]);
    let mut tablet = Peer::connect(&server.ws_url(&sam), "tablet").await;
    let deleted = DocumentId::random();
    let doc = document(&observation(json!({ "notes": "Home visit." })));
    assert_eq!(tablet.push(deleted, &doc).await, Outcome::Accepted);
    // Pat may not see sam's draft, but asking makes the connection follow it.
    let mut phone = Peer::connect(&server.ws_url(&pat), "phone").await;
    assert_eq!(phone.push(deleted, &doc).await, Outcome::Unavailable);
    // Another record takes the only place in memory.
    let other = document(&observation(json!({ "notes": "Office visit." })));
    assert_eq!(tablet.push(DocumentId::random(), &other).await, Outcome::Accepted);

    test_db.fieldbook(&["records", "delete", "--record", &deleted.url(), "--reason", "recorded in error"]);
    let told = tablet.notice_about(deleted, Duration::from_secs(5)).await.expect("the tablet was told");
    assert_eq!(told.rule.as_deref(), Some("deleted"));
    assert!(
        phone.notice_about(deleted, Duration::from_secs(1)).await.is_none(),
        "someone who may not see the record hears nothing of it"
    );
    // Nor when they ask: to them it never existed.
    let mut asking = Peer::connect(&server.ws_url(&pat), "asking").await;
    assert_eq!(asking.fetch(deleted).await.err(), Some(Outcome::Unavailable));
    let mut fresh = Peer::connect(&server.ws_url(&sam), "fresh").await;
    assert!(matches!(fresh.fetch(deleted).await, Err(Outcome::Rejected(r)) if r.contains("deleted")));
}

/// Group sessions count from their closing, themes from their last change; a hold on any
/// participant keeps a session; the feed says which people's sessions went.
#[tokio::test]
async fn group_sessions_and_themes_expire_too() {
    let test_db = TestDatabase::new(Backend::Sqlite).await;
    test_db.user("sam", Role::Supervisor).await;
    for user in ["pat", "kim"] {
        test_db.user(user, Role::Practitioner).await;
    }
    let session = |participants: Value| {
        json!({
            "type": "group-session", "schemaVersion": 1, "facilitatorId": "sam", "participantIds": participants,
            "heldAt": "2019-05-01T10:00:00Z", "kind": "team-development", "summary": "ZQXSESSION", "reflections": {},
            "status": "closed", "closedAt": "2019-05-02T10:00:00Z",
        })
    };
    let db = test_db.connect().await;
    let closed = store(&db, session(json!(["pat"]))).await;
    let with_kim = store(&db, session(json!(["pat", "kim"]))).await;
    let mut open = session(json!(["pat"]));
    open["status"] = json!("shared");
    open.as_object_mut().unwrap().remove("closedAt");
    let open = store(&db, open).await;
    let theme = store(
        &db,
        json!({"type": "practice-theme", "schemaVersion": 1, "raisedBy": "sam", "category": "workload",
               "summary": "ZQXTHEME", "status": "raised"}),
    )
    .await;
    db.close().await;
    drop(db);
    // The theme last changed in 2019 (2019-06-01); the open session changed today.
    test_db.raw_execute("UPDATE practice_themes SET updated_at = 1559347200000").await.unwrap();
    test_db.fieldbook(&["retention", "set", "--type", "group-session", "--keep", "6y", "--after", "sign-off"]);
    test_db.fieldbook(&["retention", "set", "--type", "practice-theme", "--keep", "1y", "--after", "sign-off"]);
    test_db.fieldbook(&["holds", "add", "--user", "kim", "--reason", "grievance"]);

    let dry = actions(&test_db.fieldbook(&["retention", "run", "--dry-run"]));
    let mut expected = vec![
        (closed.url(), "would delete".to_owned()),
        (with_kim.url(), "held".to_owned()),
        (theme.url(), "would delete".to_owned()),
    ];
    expected.sort();
    let mut planned = dry.clone();
    planned.sort();
    assert_eq!(planned, expected, "the open session is kept; a hold on a participant keeps theirs");
    test_db.fieldbook(&["retention", "run"]);
    assert!(!test_db.stores("ZQXTHEME").await, "the theme is gone");
    let db = test_db.connect().await;
    let events = db.feed(0, None, 100).await.unwrap();
    let deleted: Vec<(&str, &str)> = events
        .iter()
        .filter(|e| e.document_url == closed.url())
        .map(|e| (e.kind.as_str(), e.practitioner_id.as_str()))
        .collect();
    assert_eq!(deleted, [("group-session.deleted", "sam"), ("group-session.deleted", "pat")]);
    let left: Vec<DocumentId> = db.retained_records().await.unwrap().into_iter().map(|r| r.document).collect();
    let mut expected = vec![with_kim, open];
    expected.sort_by_key(|d| d.url());
    let mut left = left;
    left.sort_by_key(|d| d.url());
    assert_eq!(left, expected, "the held and the open session are kept; the closed one and the theme are gone");
}
