//! Erasure on both databases (`fieldbook erase`): a surname typed into an observation's notes
//! and edited out, and one still present (`--clear notes`), are afterwards held by no stored
//! chunk, quarantine row or audit row, nor by the copy a device fetches; a device that still
//! holds the old history is refused and nothing of it is stored.

use std::time::{Duration, Instant};

use automerge::Automerge;
use fieldbook_server::storage::Role;
use fieldbook_sync_core::{DocumentId, json};
use fieldbook_tests::peer::{Outcome, Peer};
use fieldbook_tests::records::{document, edit_notes, history_mentions, observation};
use fieldbook_tests::{Backend, TestDatabase, TestServer};
use serde_json::json as j;

const EDITED_OUT: &str = "Smithson";
const PRESENT: &str = "Okonjo";

/// A fresh device's copy of `id`, once the server has dropped its copy of the old history
/// (at once on PostgreSQL; on SQLite the server polls the ledger twice a second).
/// The rebuilt record is the one whose heads storage now holds (a record of one change has
/// one before the erasure too, so counting changes cannot tell them apart).
async fn fetch_rebuilt(server: &TestServer, db: &TestDatabase, token: &str, id: DocumentId) -> Automerge {
    let rebuilt = db.connect().await.committed_state(id).await.unwrap().expect("the rebuilt record's heads").heads;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut fresh = Peer::connect(&server.ws_url(token), "fresh").await;
        let doc = fresh.fetch(id).await.expect("the record is still there");
        if doc.get_heads() == rebuilt || Instant::now() > deadline {
            return doc;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn erased_text_is_kept_nowhere(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let sam = db.user("sam", Role::Supervisor).await;
    let pat = db.user("pat", Role::Practitioner).await;
    let server = TestServer::start(&db.url);
    let mut tablet = Peer::connect(&server.ws_url(&sam), "tablet").await;

    // A surname typed into the notes and edited out a minute later.
    let edited_id = DocumentId::random();
    let mut edited = document(&observation(j!({ "notes": "Home visit." })));
    assert_eq!(tablet.push(edited_id, &edited).await, Outcome::Accepted);
    for notes in [format!("Home visit. The {EDITED_OUT} family."), "Home visit.".to_owned()] {
        edit_notes(&mut edited, &notes);
        assert_eq!(tablet.push(edited_id, &edited).await, Outcome::Accepted);
    }
    // A name still in the notes.
    let present_id = DocumentId::random();
    let present = document(&observation(j!({ "notes": format!("Met Ms {PRESENT} at home.") })));
    assert_eq!(tablet.push(present_id, &present).await, Outcome::Accepted);
    // Someone who may not see the record sends the name too: kept aside in the quarantine.
    let mut phone = Peer::connect(&server.ws_url(&pat), "phone").await;
    assert_eq!(phone.push(edited_id, &edited).await, Outcome::Unavailable);
    let deadline = Instant::now() + Duration::from_secs(5);
    while db.fieldbook(&["quarantine", "list"]).trim().is_empty() {
        assert!(Instant::now() < deadline, "the refused changes were kept aside");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(db.stores(EDITED_OUT).await && db.stores(PRESENT).await, "the check sees the names before");

    let out = db.fieldbook(&["erase", "--record", &edited_id.url(), "--reason", "family name in the notes"]);
    assert_eq!(out.lines().last(), Some(edited_id.url().as_str()));
    let args = ["erase", "--record", &present_id.url(), "--reason", "family name", "--clear", "notes"];
    assert_eq!(db.fieldbook(&args).lines().last(), Some(present_id.url().as_str()));

    assert!(!db.stores(EDITED_OUT).await, "{EDITED_OUT} is stored nowhere");
    assert!(!db.stores(PRESENT).await, "{PRESENT} is stored nowhere");
    assert!(db.fieldbook(&["quarantine", "list"]).trim().is_empty(), "the record's quarantined changes went with it");

    // A device fetching the records gets them without the names, in any version.
    let copy = fetch_rebuilt(&server, &db, &sam, edited_id).await;
    assert_eq!(json::to_json(&copy)["notes"], "Home visit.");
    assert!(!history_mentions(&copy, EDITED_OUT));
    let copy = fetch_rebuilt(&server, &db, &sam, present_id).await;
    assert_eq!(json::to_json(&copy)["notes"], "");
    assert!(!history_mentions(&copy, PRESENT));

    // Someone who may not see the record sends the old history again: not kept aside this time.
    assert_eq!(phone.push(edited_id, &edited).await, Outcome::Unavailable);
    // The tablet still holds the old history: refused, told why, and nothing of it stored.
    match tablet.push(edited_id, &edited).await {
        Outcome::Rejected(reason) => assert!(reason.contains("erased"), "{reason}"),
        other => panic!("the old history was not refused: {other:?}"),
    }
    let mut again = Peer::connect(&server.ws_url(&sam), "tablet-again").await;
    match again.push(edited_id, &edited).await {
        Outcome::Rejected(reason) => assert!(reason.contains("erased"), "{reason}"),
        other => panic!("the old history was not refused after a reconnect: {other:?}"),
    }
    assert!(!db.stores(EDITED_OUT).await, "nothing of the old history was stored");
    assert!(db.fieldbook(&["quarantine", "list"]).trim().is_empty(), "not even in the quarantine");

    // Audited, without the text.
    let audit = db.fieldbook(&["audit", "--record", &edited_id.url()]);
    assert!(audit.contains("record-erased") && audit.contains("family name in the notes"), "{audit}");
    assert!(!audit.contains(EDITED_OUT));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erased_text_is_kept_nowhere_sqlite() {
    erased_text_is_kept_nowhere(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erased_text_is_kept_nowhere_postgres() {
    erased_text_is_kept_nowhere(Backend::Postgres).await;
}

/// Text SQLite left in a live page's unused space (as a page keeps stale copies of rows it gave
/// a neighbour when SQLite rebalanced its tree, which `secure_delete` does not clear) is gone
/// after an erasure: the file is rebuilt, not only its freed pages zeroed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_copies_inside_sqlite_pages_go_with_an_erasure() {
    const STALE: &str = "Qvoxstale";
    let db = TestDatabase::new(Backend::Sqlite).await;
    let sam = db.user("sam", Role::Supervisor).await;
    let id = DocumentId::random();
    {
        let server = TestServer::start(&db.url);
        let mut tablet = Peer::connect(&server.ws_url(&sam), "tablet").await;
        let mut doc = document(&observation(j!({ "notes": "Home visit." })));
        assert_eq!(tablet.push(id, &doc).await, Outcome::Accepted);
        edit_notes(&mut doc, &format!("Home visit. The {EDITED_OUT} family."));
        assert_eq!(tablet.push(id, &doc).await, Outcome::Accepted);
    }
    let storage = db.connect().await;
    storage.truncate_log().await.expect("checkpoint");
    storage.close().await;
    let file = db.url.strip_prefix("sqlite:").expect("a SQLite file");
    plant_in_unused_space(std::path::Path::new(file), STALE.as_bytes());
    assert!(db.stores(STALE).await, "the check sees the planted text");

    let out = db.fieldbook(&["erase", "--record", &id.url(), "--reason", "family name", "--clear", "notes"]);
    assert_eq!(out.lines().last(), Some(id.url().as_str()));
    assert!(!db.stores(EDITED_OUT).await, "{EDITED_OUT} is stored nowhere");
    assert!(!db.stores(STALE).await, "the stale copy inside a live page went with the erasure");
}

/// Writes `text` into the unused space (between the cell pointers and the cells) of the first
/// table leaf page that has room: bytes SQLite never reads, as a rebalanced page leaves them.
fn plant_in_unused_space(file: &std::path::Path, text: &[u8]) {
    let mut bytes = std::fs::read(file).expect("read the database file");
    let page_size = match u16::from_be_bytes([bytes[16], bytes[17]]) {
        1 => 65_536,
        size => usize::from(size),
    };
    let at = |offset: usize| usize::from(u16::from_be_bytes([bytes[offset], bytes[offset + 1]]));
    for (index, start) in (0..bytes.len()).step_by(page_size).enumerate() {
        let header = start + if index == 0 { 100 } else { 0 };
        const TABLE_LEAF: u8 = 0x0d;
        if bytes[header] != TABLE_LEAF {
            continue;
        }
        let unused_from = header + 8 + 2 * at(header + 3);
        let content = match at(header + 5) {
            0 => 65_536,
            offset => offset,
        };
        if start + content >= unused_from + text.len() {
            bytes[unused_from..unused_from + text.len()].copy_from_slice(text);
            std::fs::write(file, bytes).expect("write the database file");
            return;
        }
    }
    panic!("no table leaf page has unused space");
}

/// The admin API erases as the command does, and the node that erased drops its copy at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_erase_through_the_api() {
    let db = TestDatabase::new(Backend::Sqlite).await;
    let sam = db.user("sam", Role::Supervisor).await;
    let admin = db.user("ada", Role::Admin).await;
    let server = TestServer::start(&db.url);
    let id = DocumentId::random();
    let mut doc = document(&observation(j!({ "notes": "Home visit." })));
    let mut tablet = Peer::connect(&server.ws_url(&sam), "tablet").await;
    assert_eq!(tablet.push(id, &doc).await, Outcome::Accepted);
    edit_notes(&mut doc, &format!("Home visit. The {EDITED_OUT} family."));
    assert_eq!(tablet.push(id, &doc).await, Outcome::Accepted);

    let path = format!("/v1/admin/records/{}/erase", id.url());
    let body = j!({ "reason": "family name in the notes", "clear": ["notes"] });
    assert_eq!(server.request("POST", &path, Some(&sam), Some(&body)).await.status, 403);
    assert_eq!(server.request("POST", &path, Some(&admin), Some(&j!({ "reason": " " }))).await.status, 400);
    let unknown = format!("/v1/admin/records/{}/erase", DocumentId::random().url());
    assert_eq!(server.request("POST", &unknown, Some(&admin), Some(&body)).await.status, 404);
    let nothing_to_clear = j!({ "reason": "x", "clear": ["noSuchField"] });
    assert_eq!(server.request("POST", &path, Some(&admin), Some(&nothing_to_clear)).await.status, 400);

    let erased = server.request("POST", &path, Some(&admin), Some(&body)).await;
    assert_eq!(erased.status, 200, "{}", erased.body);
    assert_eq!(erased.json()["url"], id.url());
    // No wait: the node that erased serves the rebuilt record at once.
    let mut fresh = Peer::connect(&server.ws_url(&sam), "fresh").await;
    let copy = fresh.fetch(id).await.unwrap();
    assert_eq!(copy.get_changes(&[]).len(), 1);
    assert_eq!(json::to_json(&copy)["notes"], "");
    assert!(!db.stores(EDITED_OUT).await);
}

/// `fieldbook-device` holding the old history: refused, it takes the server's copy, keeps
/// only its unsent work aside, and nothing of the old history stays in its store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_device_client_takes_the_servers_copy_and_keeps_only_its_unsent_work() {
    let db = TestDatabase::new(Backend::Sqlite).await;
    let sam = db.user("sam", Role::Supervisor).await;
    let server = TestServer::start(&db.url);
    let url = server.http_url();
    let (device, record, out, shown) = tokio::task::spawn_blocking(move || {
        let device = fieldbook_tests::Device::new();
        let record = device.create(&observation(j!({ "notes": "Home visit." })));
        device.sync(&url, &sam, &[]);
        for notes in [format!("Home visit. The {EDITED_OUT} family."), "Home visit.".to_owned()] {
            device.edit(&record, &[("notes", &notes)]);
            device.sync(&url, &sam, &[]);
        }
        // Work done offline, not yet sent when the record is erased.
        device.edit(&record, &[("setting", "office-visit")]);
        db.fieldbook(&["erase", "--record", &record, "--reason", "family name in the notes"]);
        let out = device.try_sync(&url, &sam, &[]);
        let shown = device.show(&record);
        (device, record, out, shown)
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success() && stdout.contains("REJECTED") && stdout.contains("erased"), "{stdout}");
    assert_eq!(shown["notes"], "Home visit.", "the server's copy");
    assert_eq!(shown["setting"], "home-visit", "the server's copy");
    // The device's copy is the rebuilt one: one change, so none of the old history.
    let listed = device.run_ok(&["list"]);
    assert!(listed.contains(&format!("{record}\t1 changes")), "{listed}");
    // Set aside: exactly the unsent work, in a document without history.
    let set_aside = device.run_ok(&["set-aside"]);
    let line = set_aside.lines().find(|l| l.starts_with(&record)).expect("the unsent work is set aside");
    let fields: Vec<&str> = line.split('\t').collect();
    assert_eq!(fields[3], "1 changes", "{line}");
    assert_eq!(serde_json::from_str::<serde_json::Value>(fields[4]).unwrap(), j!({ "setting": "office-visit" }));
}

/// Devices following a record are told it was erased even when their server no longer holds
/// it in memory; followers who may not see the record are not told anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn followers_are_told_and_only_those_who_may_see_it() {
    let db = TestDatabase::new(Backend::Sqlite).await;
    let sam = db.user("sam", Role::Supervisor).await;
    let pat = db.user("pat", Role::Practitioner).await;
    // Room for one record in memory.
    let server = TestServer::start_with(&db.url, &["--cache-documents", "1"]);
    let mut tablet = Peer::connect(&server.ws_url(&sam), "tablet").await;
    let erased = DocumentId::random();
    let doc = document(&observation(j!({ "notes": "Home visit." })));
    assert_eq!(tablet.push(erased, &doc).await, Outcome::Accepted);
    // Pat may not see sam's draft, but asking makes the connection follow it.
    let mut phone = Peer::connect(&server.ws_url(&pat), "phone").await;
    assert_eq!(phone.push(erased, &doc).await, Outcome::Unavailable);
    // Another record takes the only place in memory.
    let other = document(&observation(j!({ "notes": "Office visit." })));
    assert_eq!(tablet.push(DocumentId::random(), &other).await, Outcome::Accepted);

    db.fieldbook(&["erase", "--record", &erased.url(), "--reason", "family name in the notes"]);
    let told = tablet.notice_about(erased, Duration::from_secs(5)).await.expect("the tablet was told");
    assert_eq!(told.rule.as_deref(), Some("erased"));
    let heard = tokio::time::timeout(Duration::from_secs(1), phone.next_message()).await;
    assert!(heard.is_err(), "someone who may not see the record hears nothing of it: {heard:?}");
}

/// An erasure rebuilt from a version that is no longer the record's (a device committed
/// meanwhile) writes nothing, and `fieldbook erase` rebuilds it from the new version.
async fn an_erasure_from_a_stale_version_writes_nothing(backend: Backend) {
    use fieldbook_server::storage::{AuditEvent, ChunkKind, NewErasure};
    let test_db = TestDatabase::new(backend).await;
    let db = test_db.connect().await;
    let id = DocumentId::random();
    let value = observation(j!({ "notes": "Home visit." }));
    let doc = document(&value);
    let record = fieldbook_sync_core::Record::parse(&value, &db.framework_catalog().await.unwrap()).unwrap();
    db.commit_changes(id, ChunkKind::Snapshot, &doc.save(), Some(&record)).await.unwrap();
    let version = db.document_versions(&[id]).await.unwrap()[0].1;
    let rebuilt = fieldbook_sync_core::erasure::rebuild(&doc, &[]).unwrap();
    let erasure = |version| NewErasure {
        document: id,
        reason: "family name in the notes",
        fields: &[],
        erased_by: "test",
        snapshot: rebuilt.doc.save(),
        heads: rebuilt.doc.get_heads(),
        version,
        record: record.clone(),
        erased: &rebuilt.erased,
        audit: AuditEvent::new("record-erased"),
    };
    assert_eq!(db.erase(erasure(version - 1)).await.unwrap(), None);
    assert!(db.ledger_after(0).await.unwrap().is_empty(), "no ledger entry");
    assert_eq!(db.load_chunks(id).await.unwrap()[0].data, doc.save(), "the history is untouched");
    assert!(db.erase(erasure(version)).await.unwrap().is_some());
    assert_eq!(db.load_chunks(id).await.unwrap()[0].data, rebuilt.doc.save());
}

#[tokio::test]
async fn an_erasure_from_a_stale_version_writes_nothing_sqlite() {
    an_erasure_from_a_stale_version_writes_nothing(Backend::Sqlite).await;
}

#[tokio::test]
async fn an_erasure_from_a_stale_version_writes_nothing_postgres() {
    an_erasure_from_a_stale_version_writes_nothing(Backend::Postgres).await;
}
