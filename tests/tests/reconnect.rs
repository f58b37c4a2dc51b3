//! Devices reconnecting with records already in sync, and new devices asking for records
//! stored as one snapshot, are answered without the server loading the records
//! (`sync::in_sync`), on both databases: with the same heads automerge would give (the
//! stored snapshot, for a new device), the same need-to-know check, live changes
//! afterwards, and records whose heads storage did not know yet (written before heads were
//! kept) learnt on their next load.

use std::time::Duration;

use automerge::Automerge;
use automerge::transaction::Transactable;
use fieldbook_server::storage::Role;
use fieldbook_sync_core::{DocumentId, Message};
use fieldbook_tests::metrics::{free_address, scrape, value};
use fieldbook_tests::peer::{Outcome, Peer};
use fieldbook_tests::records::{document, observation, plan};
use fieldbook_tests::{Backend, TestDatabase, TestServer, js};
use serde_json::json;

const ANSWERED_UNLOADED: &str = "fieldbook_answered_unloaded_total";

/// A node with metrics, started afresh (nothing in memory); returns it and its metrics address.
fn fresh_node(db: &TestDatabase) -> (TestServer, String) {
    let metrics = free_address();
    (TestServer::start_with(&db.url, &["--metrics-listen", &metrics]), metrics)
}

/// Reconnects as `token` holding `records`; every one must be in sync.
async fn reconnect(node: &TestServer, token: &str, records: &[(DocumentId, Automerge)]) -> Peer {
    let mut peer = Peer::connect(&node.ws_url(token), "tablet").await;
    for (id, doc) in records {
        assert_eq!(peer.push(*id, doc).await, Outcome::Accepted, "{id} is in sync");
    }
    peer
}

/// Records of sam's, new: four observations and a plan.
fn four_observations_and_a_plan() -> Vec<(DocumentId, Automerge)> {
    let mut records: Vec<(DocumentId, Automerge)> =
        (0..4).map(|n| (DocumentId::random(), document(&observation(json!({ "notes": format!("n{n}") }))))).collect();
    records.push((DocumentId::random(), document(&plan(json!({})))));
    records
}

/// `doc` with `key` set to `value`, as an edit on another device.
fn edited(doc: &Automerge, key: &str, value: &str) -> Automerge {
    let mut doc = doc.clone();
    let mut tx = doc.transaction();
    tx.put(automerge::ROOT, key, value).unwrap();
    tx.commit();
    doc
}

async fn devices_in_sync_are_answered_without_loading(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let sam = db.user("sam", Role::Supervisor).await;
    let pat = db.user("pat", Role::Practitioner).await;
    let mut records = four_observations_and_a_plan();
    let (node, _) = fresh_node(&db);
    reconnect(&node, &sam, &records).await;
    drop(node);

    // The next morning: every record answered from storage's heads.
    let (node, metrics) = fresh_node(&db);
    let mut tablet = reconnect(&node, &sam, &records).await;
    assert_eq!(value(&scrape(&metrics).await, ANSWERED_UNLOADED), 5.0);

    // Need to know still holds: pat may not read sam's drafts, so holding a copy of one
    // gets pat nothing, not even confirmation that the server holds it.
    let mut phone = Peer::connect(&node.ws_url(&pat), "phone").await;
    assert_eq!(phone.push(records[0].0, &records[0].1).await, Outcome::Unavailable);
    assert_eq!(value(&scrape(&metrics).await, ANSWERED_UNLOADED), 5.0);

    // The tablet follows the records it reconnected with: a change made on another device
    // reaches it live.
    let (id, changed) = (records[1].0, edited(&records[1].1, "setting", "office-visit"));
    let mut laptop = Peer::connect(&node.ws_url(&sam), "laptop").await;
    assert_eq!(laptop.push(id, &changed).await, Outcome::Accepted);
    assert!(
        hears(&mut tablet, id, &changed.get_heads()).await,
        "the change reached the device that reconnected in sync"
    );
    drop((tablet, phone, laptop, node));

    // Records stored before heads were kept: loaded once, then known.
    db.raw_execute("UPDATE document_versions SET heads = NULL").await.unwrap();
    records[1].1 = changed;
    let (node, metrics) = fresh_node(&db);
    reconnect(&node, &sam, &records).await;
    assert_eq!(value(&scrape(&metrics).await, ANSWERED_UNLOADED), 0.0, "heads unknown: loaded");
    // Heads are kept off the load's path; a moment may pass before they are.
    let store = db.connect().await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    for (id, _) in &records {
        while store.committed_state(*id).await.unwrap().is_none() {
            assert!(std::time::Instant::now() < deadline, "the heads of {id} were kept on load");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    drop(node);
    let (node, metrics) = fresh_node(&db);
    reconnect(&node, &sam, &records).await;
    assert_eq!(value(&scrape(&metrics).await, ANSWERED_UNLOADED), 5.0, "heads learnt on load");
}

#[tokio::test]
async fn devices_in_sync_are_answered_without_loading_sqlite() {
    devices_in_sync_are_answered_without_loading(Backend::Sqlite).await;
}

#[tokio::test]
async fn devices_in_sync_are_answered_without_loading_postgres() {
    devices_in_sync_are_answered_without_loading(Backend::Postgres).await;
}

/// Waits until `peer` hears the server's heads for `id` equal `heads`.
async fn hears(peer: &mut Peer, id: DocumentId, heads: &[automerge::ChangeHash]) -> bool {
    let wait = async {
        loop {
            match peer.next_message().await {
                Some(Message::Sync { document_id, data, .. }) if document_id == id => {
                    if automerge::sync::Message::decode(&data).unwrap().heads == heads {
                        return;
                    }
                }
                Some(_) => {}
                None => panic!("the server closed the connection"),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), wait).await.is_ok()
}

async fn new_devices_are_answered_from_the_stored_snapshot(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let sam = db.user("sam", Role::Supervisor).await;
    let pat = db.user("pat", Role::Practitioner).await;
    let mut records = four_observations_and_a_plan();
    let (node, _) = fresh_node(&db);
    reconnect(&node, &sam, &records).await;
    // One record edited after it was stored: two chunks, so it is loaded to be answered.
    records[4].1 = edited(&records[4].1, "status", "agreed");
    reconnect(&node, &sam, &records[4..]).await;
    drop(node);

    // A new tablet gets every record; the four stored as one snapshot unloaded (each of its
    // answers, its new heads, may be answered unloaded too, as a device in sync).
    let (node, metrics) = fresh_node(&db);
    let mut tablet = Peer::connect(&node.ws_url(&sam), "tablet").await;
    for (id, doc) in &records {
        let got = tablet.fetch(*id).await.expect("sam may read it");
        assert_eq!(got.get_heads(), doc.get_heads());
        assert_eq!(fieldbook_sync_core::json::to_json(&got), fieldbook_sync_core::json::to_json(doc));
    }
    let unloaded = value(&scrape(&metrics).await, ANSWERED_UNLOADED);
    assert!((4.0..=8.0).contains(&unloaded), "four answered from their snapshot: {unloaded}");

    // Need to know still holds: to pat, sam's draft does not exist.
    let mut phone = Peer::connect(&node.ws_url(&pat), "phone").await;
    assert_eq!(phone.fetch(records[0].0).await.err(), Some(Outcome::Unavailable));
    assert_eq!(value(&scrape(&metrics).await, ANSWERED_UNLOADED), unloaded);

    // The tablet follows what it was given: a change made elsewhere reaches it live.
    let (id, changed) = (records[1].0, edited(&records[1].1, "setting", "office-visit"));
    let mut laptop = Peer::connect(&node.ws_url(&sam), "laptop").await;
    assert_eq!(laptop.push(id, &changed).await, Outcome::Accepted);
    assert!(hears(&mut tablet, id, &changed.get_heads()).await, "the change reached the new device");
    drop((tablet, phone, laptop, node));

    // The stock JS client, new, gets a record answered from its snapshot.
    let (node, metrics) = fresh_node(&db);
    let fetched = js::fetch(&node.ws_url(&sam), &records[2].0.url()).unwrap();
    assert_eq!(fetched, fieldbook_sync_core::json::to_json(&records[2].1));
    assert!(value(&scrape(&metrics).await, ANSWERED_UNLOADED) >= 1.0);
}

#[tokio::test]
async fn new_devices_are_answered_from_the_stored_snapshot_sqlite() {
    new_devices_are_answered_from_the_stored_snapshot(Backend::Sqlite).await;
}

#[tokio::test]
async fn new_devices_are_answered_from_the_stored_snapshot_postgres() {
    new_devices_are_answered_from_the_stored_snapshot(Backend::Postgres).await;
}
