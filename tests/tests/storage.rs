//! Storage on SQLite and PostgreSQL: chunks, compaction, stable ids, bounded memory.

use std::time::Duration;

use automerge::transaction::Transactable;
use automerge::{Automerge, ROOT, ReadDoc};
use fieldbook_server::Server;
use fieldbook_server::config::{CacheConfig, ServerConfig};
use fieldbook_server::storage::{ChunkKind, NewQuarantine, Role};
use fieldbook_sync_core::{DocumentId, Message, SyncKind};
use fieldbook_tests::records::{document, edit_notes, observation};
use fieldbook_tests::{Backend, Device, TestDatabase, raw};
use serde_json::json;

fn change(doc: &mut Automerge, key: &str, value: i64) -> Vec<u8> {
    let before = doc.get_heads();
    let mut tx = doc.transaction();
    tx.put(ROOT, key, value).unwrap();
    tx.commit();
    doc.save_after(&before)
}

async fn chunks_compaction_and_ids(backend: Backend) {
    let test_db = TestDatabase::new(backend).await;
    let db = test_db.connect().await;
    let id = DocumentId::random();
    assert!(db.load_chunks(id).await.unwrap().is_empty());

    let mut doc = Automerge::new();
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(db.append_chunk(id, ChunkKind::Incremental, &change(&mut doc, &format!("k{i}"), i)).await.unwrap());
    }
    // A chunk written by "another node" that this copy never saw.
    let mut other = Automerge::new();
    let foreign = db.append_chunk(id, ChunkKind::Incremental, &change(&mut other, "foreign", 1)).await.unwrap();

    let version = db.document_versions(&[id]).await.unwrap()[0].1;
    // A copy behind the stored version (another commit, or an erasure, came in) compacts nothing.
    assert_eq!(db.compact(id, &doc.save(), &ids, version - 1).await.unwrap(), None);
    assert_eq!(db.load_chunks(id).await.unwrap().len(), 6);
    assert!(db.compact(id, &doc.save(), &ids, version).await.unwrap().is_some());
    let chunks = db.load_chunks(id).await.unwrap();
    assert_eq!(chunks.len(), 2, "snapshot plus the foreign chunk");
    assert!(chunks.iter().any(|c| c.id == foreign && c.kind == ChunkKind::Incremental));
    let mut loaded = Automerge::new();
    for c in &chunks {
        loaded.load_incremental(&c.data).unwrap();
    }
    for i in 0..5 {
        assert!(loaded.get(ROOT, format!("k{i}").as_str()).unwrap().is_some());
    }
    assert!(loaded.get(ROOT, "foreign").unwrap().is_some());
    assert_eq!(db.document_count().await.unwrap(), 1);

    // Refused changes are kept aside once, however often a peer resends them.
    let hashes = vec!["ab12".to_string()];
    let entry = || NewQuarantine {
        document: id,
        user_id: "pat",
        device_id: Some("phone"),
        reason: "the record is locked",
        change_hashes: &hashes,
        changes: b"bytes",
    };
    let first = db.quarantine(entry()).await.unwrap();
    assert_eq!(db.quarantine(entry()).await.unwrap(), first);
    let kept = db.quarantined(Some(id)).await.unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!(
        (kept[0].user_id.as_str(), kept[0].device_id.as_deref(), kept[0].changes.as_slice()),
        ("pat", Some("phone"), &b"bytes"[..])
    );

    let storage_id = db.storage_id().await.unwrap();
    db.close().await;
    let again = test_db.connect().await;
    assert_eq!(again.storage_id().await.unwrap(), storage_id, "storage id is stable");
    assert!(again.is_ready().await);
}

#[tokio::test]
async fn storage_sqlite() {
    chunks_compaction_and_ids(Backend::Sqlite).await;
}

#[tokio::test]
async fn storage_postgres() {
    chunks_compaction_and_ids(Backend::Postgres).await;
}

async fn in_process_server(test_db: &TestDatabase, cache: CacheConfig) -> (String, Server) {
    let mut config = ServerConfig::new("127.0.0.1:0".parse().unwrap(), test_db.url.clone());
    config.cache = cache;
    config.auth.signing_key_file = Some(fieldbook_tests::database::key_file_for(&test_db.url));
    let server = Server::bind(config).await.unwrap();
    (format!("http://{}", server.local_addr()), server)
}

async fn bounded_cache_and_compaction(backend: Backend) {
    let test_db = TestDatabase::new(backend).await;
    let token = test_db.user("sam", Role::Supervisor).await;
    let cache = CacheConfig { max_documents: 3, idle_timeout: Duration::from_secs(600), compact_after_chunks: 4 };
    let (url, server) = in_process_server(&test_db, cache).await;
    let hub = server.state().hub.clone();
    let handle = tokio::spawn(server.run(std::future::pending()));

    let device = Device::new();
    let docs: Vec<String> = (0..10).map(|i| device.create(&observation(json!({"n": i})))).collect();
    let first = docs[0].clone();
    let (device, first) = tokio::task::spawn_blocking(move || {
        device.sync(&url, &token, &[]);
        // Enough acknowledged edits to one document to trigger compaction.
        for i in 0..8 {
            device.edit(&first, &[("n", &format!("{}", 100 + i))]);
            device.sync(&url, &token, &[]);
        }
        let fresh = Device::new();
        let fetch: Vec<&str> = docs.iter().map(String::as_str).collect();
        fresh.sync(&url, &token, &fetch);
        assert_eq!(fresh.show(&docs[5])["n"], 5);
        assert_eq!(fresh.show(&first)["n"], 107);
        (device, first)
    })
    .await
    .unwrap();
    drop(device);
    assert!(hub.cached_documents() <= 3, "cache holds {} documents, limit 3", hub.cached_documents());

    let db = test_db.connect().await;
    let chunks = db.load_chunks(DocumentId::parse_url_or_id(&first).unwrap()).await.unwrap();
    assert!(chunks.len() <= 5, "compaction keeps chunk count bounded: {}", chunks.len());
    assert_eq!(chunks[0].kind, ChunkKind::Snapshot);
    handle.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bounded_cache_and_compaction_sqlite() {
    bounded_cache_and_compaction(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bounded_cache_and_compaction_postgres() {
    bounded_cache_and_compaction(Backend::Postgres).await;
}

/// A new record sent as one whole-document chunk, as the stock JS client uploads one, is
/// stored as it arrived; a chunk that carries a change after its document is saved afresh.
/// Either way the stored snapshot loads to what the device holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_document_sent_alone_is_stored_as_it_arrived() {
    let test_db = TestDatabase::new(Backend::Sqlite).await;
    let token = test_db.user("sam", Role::Supervisor).await;
    let (url, server) = in_process_server(&test_db, CacheConfig::default()).await;
    let handle = tokio::spawn(server.run(std::future::pending()));
    let mut socket = raw::connect(&format!("{}/v1/sync?token={token}", url.replacen("http", "ws", 1))).await;
    raw::send(&mut socket, raw::join_frame("tablet")).await;
    let Some(Message::Peer { sender_id: server_id, .. }) = raw::next(&mut socket).await else {
        panic!("expected `peer`")
    };

    let record = document(&observation(json!({"notes": "the family listened. ".repeat(100)})));
    // Sent uncompressed, so the bytes differ from the compressed ones the server would save.
    let whole = record.save_nocompress();
    assert_ne!(whole, record.save());
    let mut edited = record.fork();
    edit_notes(&mut edited, "second");
    let change = edited.get_last_local_change().unwrap().raw_bytes().to_vec();
    let db = test_db.connect().await;
    for (chunk, device, as_sent) in [(whole.clone(), &record, true), ([whole, change].concat(), &edited, false)] {
        let id = DocumentId::random();
        let data = automerge::sync::Message {
            heads: device.get_heads(),
            need: vec![],
            have: vec![],
            changes: vec![chunk.clone()].into(),
            flags: None,
            version: automerge::sync::MessageVersion::V2,
        };
        let message = Message::Sync {
            kind: SyncKind::Sync,
            sender_id: "tablet".into(),
            target_id: server_id.clone(),
            document_id: id,
            data: data.encode(),
        };
        raw::send(&mut socket, message.encode()).await;
        // Heads come back once the record is committed.
        loop {
            match raw::next(&mut socket).await {
                Some(Message::Sync { document_id, data, .. }) if document_id == id => {
                    if automerge::sync::Message::decode(&data).unwrap().heads == device.get_heads() {
                        break;
                    }
                }
                Some(_) => {}
                None => panic!("the server closed the connection"),
            }
        }
        let chunks = db.load_chunks(id).await.unwrap();
        assert_eq!(chunks.len(), 1);
        assert_eq!(chunks[0].kind, ChunkKind::Snapshot);
        assert_eq!(chunks[0].data == chunk, as_sent, "stored as it arrived: {as_sent}");
        assert_eq!(Automerge::load(&chunks[0].data).unwrap().get_heads(), device.get_heads());
    }
    handle.abort();
}

/// A sender's share of the quarantine is bounded: past 64 MiB a day their refusals keep their
/// rows (who, when, why, which changes) but not the bytes; other senders are unaffected.
#[tokio::test]
async fn the_quarantine_keeps_a_bounded_share_per_sender() {
    let test_db = TestDatabase::new(Backend::Sqlite).await;
    let db = test_db.connect().await;
    let document = fieldbook_sync_core::DocumentId::random();
    let mebibyte = vec![7u8; 1024 * 1024];
    let refuse = |user: &'static str, hash: String| {
        let (db, mebibyte) = (db.clone(), mebibyte.clone());
        async move {
            let hashes = vec![hash];
            let entry = NewQuarantine {
                document,
                user_id: user,
                device_id: None,
                reason: "the record is locked",
                change_hashes: &hashes,
                changes: &mebibyte,
            };
            db.quarantine(entry).await.unwrap()
        }
    };
    for i in 0..64 {
        refuse("eve", format!("eve-{i}")).await;
    }
    let over = refuse("eve", "eve-over".into()).await;
    let other = refuse("pat", "pat-0".into()).await;
    let kept = db.quarantined(Some(document)).await.unwrap();
    let row = |id: i64| kept.iter().find(|q| q.id == id).unwrap();
    assert_eq!(kept.iter().filter(|q| q.user_id == "eve" && q.changes.len() == mebibyte.len()).count(), 64);
    assert!(row(over).changes.is_empty(), "the 65th MiB is not kept");
    assert!(row(over).reason.contains("share for the day is full"), "{}", row(over).reason);
    assert_eq!(row(over).change_hashes, ["eve-over"], "but the record of the refusal is");
    assert_eq!(row(other).changes.len(), mebibyte.len(), "another sender is unaffected");
    db.close().await;
}
