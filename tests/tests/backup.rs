//! Backups of the embedded database: `fieldbook backup` while a device keeps writing, and
//! `fieldbook restore` with the server stopped. PostgreSQL is backed up with its own tools.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use automerge::Automerge;
use fieldbook_server::storage::Role;
use fieldbook_sync_core::DocumentId;
use fieldbook_tests::peer::{Outcome, Peer};
use fieldbook_tests::records::{document, edit_notes, history_mentions, observation};
use fieldbook_tests::{Backend, TempDir, TestDatabase, TestServer};
use serde_json::json;

type Acknowledged = Arc<Mutex<Vec<(DocumentId, Automerge)>>>;

/// Waits until the writer has had at least `count` records acknowledged.
async fn until_acknowledged(acknowledged: &Acknowledged, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while acknowledged.lock().unwrap().len() < count {
        assert!(Instant::now() < deadline, "the writer stalled");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_while_writing_restores_everything_acknowledged_before_it() {
    let db = TestDatabase::new(Backend::Sqlite).await;
    let sam = db.user("sam", Role::Supervisor).await;
    let mut server = TestServer::start(&db.url);

    // A tablet keeps recording; each record counts once the server holds all of it.
    let acknowledged: Acknowledged = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = tokio::spawn({
        let (url, acknowledged, stop) = (server.ws_url(&sam), acknowledged.clone(), stop.clone());
        async move {
            let mut tablet = Peer::connect(&url, "tablet").await;
            for n in 0.. {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let (id, doc) =
                    (DocumentId::random(), document(&observation(json!({ "notes": format!("record {n}") }))));
                assert_eq!(tablet.push(id, &doc).await, Outcome::Accepted);
                acknowledged.lock().unwrap().push((id, doc));
            }
        }
    });
    until_acknowledged(&acknowledged, 20).await;
    // A surname typed into the notes before the backup (and edited out after it).
    let named = DocumentId::random();
    let mut named_doc = document(&observation(json!({ "notes": "Home visit. The Smithson family." })));
    let mut laptop = Peer::connect(&server.ws_url(&sam), "laptop").await;
    assert_eq!(laptop.push(named, &named_doc).await, Outcome::Accepted);

    let dir = TempDir::new("backup");
    let backup = dir.path().join("monday.sqlite");
    let before = acknowledged.lock().unwrap().len();
    let mut command = db.fieldbook_command();
    command.args(["backup", "--to"]).arg(&backup);
    let taken = tokio::task::spawn_blocking(move || command.output().expect("run fieldbook backup")).await.unwrap();
    assert!(taken.status.success(), "backup failed: {}", String::from_utf8_lossy(&taken.stderr));
    assert_eq!(String::from_utf8_lossy(&taken.stdout).lines().last(), Some(backup.display().to_string().as_str()));
    let after = acknowledged.lock().unwrap().len();
    until_acknowledged(&acknowledged, after + 10).await;
    stop.store(true, Ordering::Relaxed);
    writer.await.unwrap();
    let all = acknowledged.lock().unwrap().clone();

    // A backup never overwrites a file, and a restore never replaces a database in use.
    let again = db.fieldbook_command().args(["backup", "--to"]).arg(&backup).output().unwrap();
    assert!(!again.status.success() && String::from_utf8_lossy(&again.stderr).contains("exists already"));
    let refused = db.fieldbook_command().args(["restore", "--from"]).arg(&backup).output().unwrap();
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("in use"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let mut tablet = Peer::connect(&server.ws_url(&sam), "tablet").await;
    assert!(tablet.fetch(all[all.len() - 1].0).await.is_ok(), "the refused restore changed nothing");
    drop(tablet);

    assert!(db.fieldbook(&["audit", "--limit", "100000"]).contains("backup-taken"), "the backup is audited");
    // Edited out and erased after the backup was taken.
    edit_notes(&mut named_doc, "Home visit.");
    assert_eq!(laptop.push(named, &named_doc).await, Outcome::Accepted);
    drop(laptop);
    db.fieldbook(&["erase", "--record", &named.url(), "--reason", "family name in the notes"]);

    server.terminate();
    assert!(!db.stores("Smithson").await, "erased before the restore");
    let restored = db.fieldbook(&["restore", "--from", backup.to_str().unwrap()]);
    assert!(restored.contains("re-applied 1 erasures and deletions"), "{restored}");
    let kept = restored.lines().last().and_then(|l| l.strip_prefix("the database it replaced is kept as ")).unwrap();
    assert!(std::path::Path::new(kept).is_file(), "the replaced database is kept: {restored}");
    let server = TestServer::start(&db.url);
    let mut tablet = Peer::connect(&server.ws_url(&sam), "tablet").await;
    for (id, doc) in &all[..before] {
        let held = tablet.fetch(*id).await.unwrap_or_else(|e| panic!("{id}, acknowledged before the backup: {e:?}"));
        assert_eq!(held.get_heads(), doc.get_heads(), "{id} as acknowledged");
    }
    // The erasure made after the backup is made again: the name is nowhere, and a device
    // holding the old history is refused.
    assert!(!db.stores("Smithson").await, "the erasure was re-applied");
    let copy = tablet.fetch(named).await.unwrap();
    assert!(!history_mentions(&copy, "Smithson"));
    let mut laptop = Peer::connect(&server.ws_url(&sam), "laptop").await;
    assert!(matches!(laptop.push(named, &named_doc).await, Outcome::Rejected(r) if r.contains("erased")));
    // What was written after the backup finished is not in it.
    assert_eq!(tablet.fetch(all[all.len() - 1].0).await.err(), Some(Outcome::Unavailable));
    let events = db.fieldbook(&["audit", "--limit", "100000"]);
    assert!(events.contains("backup-restored"), "the restore is audited: {events}");
}

#[tokio::test]
async fn postgres_is_backed_up_with_its_own_tools() {
    let db = TestDatabase::new(Backend::Postgres).await;
    let dir = TempDir::new("backup");
    let out = db.fieldbook_command().args(["backup", "--to"]).arg(dir.path().join("b.sqlite")).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("pg_dump"), "{}", String::from_utf8_lossy(&out.stderr));
}

/// PostgreSQL: a dump taken before an erasure and a deletion, restored into a new database,
/// gets both again from the ledger exported from the database it replaces.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_restore_replays_the_ledger() {
    let live = TestDatabase::new(Backend::Postgres).await;
    let sam = live.user("sam", Role::Supervisor).await;
    let server = TestServer::start(&live.url);
    let mut tablet = Peer::connect(&server.ws_url(&sam), "tablet").await;
    let (named, deleted) = (DocumentId::random(), DocumentId::random());
    let mut named_doc = document(&observation(json!({ "notes": "Home visit. The Smithson family." })));
    assert_eq!(tablet.push(named, &named_doc).await, Outcome::Accepted);
    let deleted_doc = document(&observation(json!({ "notes": "Recorded in error ZQXERROR" })));
    assert_eq!(tablet.push(deleted, &deleted_doc).await, Outcome::Accepted);

    let dir = TempDir::new("pg-backup");
    let dump = dir.path().join("monday.dump");
    let out = std::process::Command::new("pg_dump").args(["-Fc", "-f"]).arg(&dump).arg(&live.url).output().unwrap();
    assert!(out.status.success(), "pg_dump: {}", String::from_utf8_lossy(&out.stderr));
    // After the dump: the name is edited out and erased, the other record deleted.
    edit_notes(&mut named_doc, "Home visit.");
    assert_eq!(tablet.push(named, &named_doc).await, Outcome::Accepted);
    drop(tablet);
    live.fieldbook(&["erase", "--record", &named.url(), "--reason", "family name in the notes"]);
    live.fieldbook(&["records", "delete", "--record", &deleted.url(), "--reason", "recorded in error"]);
    let ledger = dir.path().join("ledger.json");
    let exported = live.fieldbook(&["ledger", "export", "--to", ledger.to_str().unwrap()]);
    assert!(exported.contains("exported 2 ledger entries"), "{exported}");
    drop(server);

    // Restored into a new database, then the ledger replayed.
    let restored = TestDatabase::new(Backend::Postgres).await;
    let out = std::process::Command::new("pg_restore").arg("-d").arg(&restored.url).arg(&dump).output().unwrap();
    assert!(out.status.success(), "pg_restore: {}", String::from_utf8_lossy(&out.stderr));
    assert!(restored.stores("Smithson").await && restored.stores("ZQXERROR").await, "the dump holds both");
    let replayed = restored.fieldbook(&["ledger", "replay", "--from", ledger.to_str().unwrap()]);
    assert!(replayed.contains("re-applied 2 erasures and deletions"), "{replayed}");
    assert!(!restored.stores("Smithson").await && !restored.stores("ZQXERROR").await, "both are gone again");
    let again = restored.fieldbook(&["ledger", "replay", "--from", ledger.to_str().unwrap()]);
    assert!(again.contains("re-applied 0 erasures"), "replaying twice changes nothing: {again}");

    let sam = restored.token(&restored.connect().await, "sam", std::time::Duration::from_secs(600)).await;
    let server = TestServer::start(&restored.url);
    let mut fresh = Peer::connect(&server.ws_url(&sam), "fresh").await;
    let copy = fresh.fetch(named).await.expect("the erased record is there");
    assert!(!history_mentions(&copy, "Smithson"));
    assert!(matches!(fresh.fetch(deleted).await, Err(Outcome::Rejected(r)) if r.contains("deleted")));
    let mut old_tablet = Peer::connect(&server.ws_url(&sam), "old-tablet").await;
    assert!(matches!(old_tablet.push(named, &named_doc).await, Outcome::Rejected(r) if r.contains("erased")));
}
