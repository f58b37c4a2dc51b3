//! Nothing acknowledged is lost: once a client has seen the server's heads include its
//! change, the change survives a graceful restart and a kill -9.

use fieldbook_server::storage::Role;
use fieldbook_tests::records::observation;
use fieldbook_tests::{Backend, Device, TestDatabase, TestServer, js, raw};
use serde_json::json;

async fn acknowledged_changes_survive_kill_9(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let token = db.user("sam", Role::Supervisor).await;
    let mut server = TestServer::start(&db.url);

    // Many documents and edits, each acknowledged (sync returns only when the server's
    // reported heads equal the device's).
    let device = Device::new();
    let mut urls = Vec::new();
    for i in 0..20 {
        urls.push(device.create(&observation(json!({"n": i, "text": format!("observation {i}")}))));
    }
    device.sync(&server.http_url(), &token, &[]);
    device.edit(&urls[0], &[("text", "edited just before the crash")]);
    device.sync(&server.http_url(), &token, &[]);
    let js_url = js::create(&server.ws_url(&token), &observation(json!({"from": "js"})));

    server.kill_9();
    let server = server.restart();

    let fresh = Device::new();
    let fetch: Vec<&str> = urls.iter().map(String::as_str).collect();
    fresh.sync(&server.http_url(), &token, &fetch);
    for (i, url) in urls.iter().enumerate() {
        assert_eq!(fresh.show(url)["n"], i, "{url}");
    }
    assert_eq!(fresh.show(&urls[0])["text"], "edited just before the crash");
    assert_eq!(js::fetch(&server.ws_url(&token), &js_url).unwrap()["from"], "js");
}

#[tokio::test]
async fn kill_9_sqlite() {
    acknowledged_changes_survive_kill_9(Backend::Sqlite).await;
}

#[tokio::test]
async fn kill_9_postgres() {
    acknowledged_changes_survive_kill_9(Backend::Postgres).await;
}

#[tokio::test]
async fn graceful_restart_keeps_data_and_storage_id() {
    let db = TestDatabase::new(Backend::Sqlite).await;
    let token = db.user("sam", Role::Supervisor).await;
    let mut server = TestServer::start(&db.url);
    let device = Device::new();
    let url = device.create(&observation(json!({"text": "kept"})));
    let before = device.sync(&server.http_url(), &token, &[]);
    // An idle peer still connected must not hold up shutdown.
    let mut idle = raw::connect(&server.ws_url(&token)).await;
    raw::send(&mut idle, raw::join_frame("idle")).await;
    assert!(matches!(raw::next(&mut idle).await, Some(fieldbook_sync_core::Message::Peer { .. })));
    assert!(server.terminate().success(), "SIGTERM exits cleanly");
    assert!(raw::next(&mut idle).await.is_none(), "the idle peer was disconnected");

    let server = server.restart();
    let fresh = Device::new();
    let after = fresh.sync(&server.http_url(), &token, &[&url]);
    assert_eq!(fresh.show(&url)["text"], "kept");
    let storage = |out: &str| out.lines().last().unwrap().rsplit_once("storage ").unwrap().1.to_owned();
    assert_eq!(storage(&before), storage(&after), "storage id is stable for a database");
}

/// A change that arrives before its dependency is queued by automerge, not applied. It must
/// still be stored, or it would vanish once the dependency arrives and the server restarts.
#[tokio::test]
async fn changes_arriving_before_their_dependencies_survive_kill_9() {
    use automerge::sync::{Message as SyncMessage, MessageVersion};
    use automerge::transaction::Transactable;
    use fieldbook_sync_core::{DocumentId, Message, SyncKind};

    let db = TestDatabase::new(Backend::Sqlite).await;
    let token = db.user("sam", Role::Supervisor).await;
    let mut server = TestServer::start(&db.url);

    let mut doc = automerge::Automerge::new();
    let mut tx = doc.transaction();
    fieldbook_sync_core::json::put_object(&mut tx, &observation(json!({"first": "a"}))).unwrap();
    tx.commit();
    let first = doc.get_last_local_change().unwrap();
    let mut tx = doc.transaction();
    tx.put(automerge::ROOT, "second", "b").unwrap();
    tx.commit();
    let second = doc.get_last_local_change().unwrap();

    let id = DocumentId::random();
    let mut socket = raw::connect(&server.ws_url(&token)).await;
    raw::send(&mut socket, raw::join_frame("raw")).await;
    assert!(matches!(raw::next(&mut socket).await, Some(Message::Peer { .. })));
    let send_change = |change: &automerge::Change| {
        let message = SyncMessage {
            heads: doc.get_heads(),
            need: vec![],
            have: vec![],
            changes: vec![change.raw_bytes().to_vec()].into(),
            flags: None,
            version: MessageVersion::V1,
        };
        Message::Sync {
            kind: SyncKind::Sync,
            sender_id: "raw".into(),
            target_id: "s".into(),
            document_id: id,
            data: message.encode(),
        }
        .encode()
    };
    // The dependent change first, then its dependency.
    raw::send(&mut socket, send_change(&second)).await;
    raw::send(&mut socket, send_change(&first)).await;
    // Wait until the server acknowledges both: its heads equal ours.
    loop {
        let Some(Message::Sync { data, .. }) = raw::next(&mut socket).await else { panic!("server closed") };
        if SyncMessage::decode(&data).unwrap().heads == doc.get_heads() {
            break;
        }
    }

    server.kill_9();
    let server = server.restart();
    let fresh = Device::new();
    fresh.sync(&server.http_url(), &token, &[&id.url()]);
    let shown = fresh.show(&id.url());
    assert_eq!((shown["first"].as_str(), shown["second"].as_str()), (Some("a"), Some("b")));
}
