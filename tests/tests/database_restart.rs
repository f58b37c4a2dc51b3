//! The server rides out a PostgreSQL restart: while the database is down `/readyz` says so
//! and nothing is acknowledged; once it is back the same process is ready again by itself,
//! the devices' writes resume, and every change acknowledged at any point is stored.
//!
//! On a private cluster the test starts and stops (never the machine's own PostgreSQL).

use std::time::Duration;

use automerge::Automerge;
use automerge::transaction::Transactable;
use fieldbook_server::storage::Role;
use fieldbook_sync_core::{DocumentId, Message};
use fieldbook_tests::TestServer;
use fieldbook_tests::peer::{Outcome, Peer};
use fieldbook_tests::private_postgres::PrivatePostgres;
use fieldbook_tests::records::observation;
use fieldbook_tests::writers::{self, Acknowledged, Writers, marker_value};
use serde_json::json;
use tokio::time::Instant;

const WRITERS: usize = 2;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_rides_out_a_database_restart() {
    let started = Instant::now();
    let mut postgres = PrivatePostgres::start();
    let db = postgres.create_database().await;
    let token = db.user("sam", Role::Supervisor).await;
    let mut server = TestServer::start(&db.url);
    let pid = server.pid();
    let ws_url = server.ws_url(&token);

    // Before: devices syncing.
    let mut writers = Writers::start(WRITERS, &ws_url);
    writers.wait_for_acks(started, 5, Duration::from_secs(30)).await;
    // Two more devices, connected before the outage: one with a record the server holds
    // (and has in memory), one about to create a record.
    let mut stored_probe = Peer::connect(&ws_url, "stored-probe").await;
    let (stored_id, mut stored_doc) = new_record();
    assert_eq!(stored_probe.push(stored_id, &stored_doc).await, Outcome::Accepted);
    let stored_probe_acknowledged = Acknowledged { markers: 1, heads: stored_doc.get_heads() };
    let mut new_probe = Peer::connect(&ws_url, "new-probe").await;
    // And one that renews its session while the database is down: the server cannot check
    // the token, which is its own fault, so the session carries on rather than being refused.
    let mut renewing = Peer::connect(&ws_url, "renewing").await;
    let fresh = db.keys().issue("sam", Some("test-device"), Duration::from_secs(600)).unwrap();

    // The database goes away.
    let stopping_at = Instant::now();
    postgres.stop();
    let stopped_at = Instant::now();
    let unready_at = wait_for_readyz(&mut server, 503, Duration::from_secs(30)).await;
    renewing.send_frame(Message::Renew { sender_id: "renewing".into(), token: fresh }.encode()).await;

    // Nothing sent while it is down is acknowledged: the probes' changes (a change to the
    // stored record, a new record) get an error, a close or silence, never our heads.
    let mut tx = stored_doc.transaction();
    tx.put(automerge::ROOT, "marker1", marker_value(stored_id, 1)).unwrap();
    tx.commit();
    let (new_id, new_doc) = new_record();
    let within = Duration::from_secs(20);
    let (stored_outcome, new_outcome) = tokio::join!(
        stored_probe.try_push(stored_id, &stored_doc, within),
        new_probe.try_push(new_id, &new_doc, within)
    );
    assert_ne!(
        stored_outcome,
        Ok(Outcome::Accepted),
        "a change to a stored record was acknowledged while the database was down"
    );
    assert_ne!(new_outcome, Ok(Outcome::Accepted), "a new record was acknowledged while the database was down");
    let restarting_at = Instant::now();
    assert_eq!(status(&server.addr, "/livez").await, Ok(200), "the server stopped while the database was down");
    let acknowledged_while_down: Vec<_> =
        writers.acks_since(unready_at).into_iter().filter(|a| a.at < restarting_at).collect();
    assert!(
        acknowledged_while_down.is_empty(),
        "acknowledged while the database was down: {acknowledged_while_down:?}"
    );
    let cut_off = writers.interrupted().into_iter().filter(|i| i.at >= stopping_at && i.at < restarting_at).count();
    assert!(cut_off > 0, "the writers were not writing during the outage: the test did not exercise it");

    // The database comes back: ready again, by itself, and writing again.
    postgres.start_again();
    let back_at = Instant::now();
    let ready_at = wait_for_readyz(&mut server, 200, Duration::from_secs(40)).await;
    writers.wait_for_acks(back_at, 5, Duration::from_secs(60)).await;
    let resumed_at = Instant::now();
    let (renewed_id, renewed_doc) = new_record();
    let renewed = renewing.try_push(renewed_id, &renewed_doc, Duration::from_secs(30)).await;
    assert_eq!(renewed, Ok(Outcome::Accepted), "a renewal the server could not check ended the session");

    // The same process throughout.
    assert_eq!(server.exit_status(), None, "the server exited");
    assert_eq!(server.pid(), pid);
    assert_eq!(status(&server.addr, "/livez").await, Ok(200));

    // Everything acknowledged, before, during and after, is in the database: read back
    // through a second server process on it (nothing in its memory).
    writers.stop().await;
    let mut acknowledged = writers.acknowledged();
    acknowledged.insert(stored_id, stored_probe_acknowledged);
    acknowledged.insert(renewed_id, Acknowledged { markers: 1, heads: renewed_doc.get_heads() });
    let reader = server.restart();
    let checked = writers::verify(&reader.ws_url(&token), &acknowledged)
        .await
        .unwrap_or_else(|missing| panic!("acknowledged changes are missing from the database:\n{missing}"));

    eprintln!(
        "database down {:.1?} (503 after {:.1?}); while down: stored-record probe {stored_outcome:?}, new-record \
         probe {new_outcome:?}, {cut_off} writer pushes cut off, none acknowledged; ready {:.1?} after the \
         restart, writers acknowledged again after {:.1?}; {checked} acknowledged changes in {} documents all \
         stored; {:.1?} in all",
        back_at - stopped_at,
        unready_at - stopped_at,
        ready_at - back_at,
        resumed_at - back_at,
        acknowledged.len(),
        started.elapsed()
    );
}

/// A new observation of `sam`'s whose first change carries marker 0.
fn new_record() -> (DocumentId, Automerge) {
    let id = DocumentId::random();
    let mut doc = Automerge::new();
    let mut tx = doc.transaction();
    let record = observation(json!({"probe": true, "marker0": marker_value(id, 0)}));
    fieldbook_sync_core::json::put_object(&mut tx, &record).unwrap();
    tx.commit();
    (id, doc)
}

/// Polls `GET /readyz` until it answers `expected`; returns when it first did. The server
/// process must stay up meanwhile.
async fn wait_for_readyz(server: &mut TestServer, expected: u16, within: Duration) -> Instant {
    let deadline = Instant::now() + within;
    let mut last = None;
    while Instant::now() < deadline {
        let answer = tokio::time::timeout_at(deadline, status(&server.addr, "/readyz")).await;
        if let Some(exit) = server.exit_status() {
            panic!("the server exited ({exit}) while waiting for /readyz to answer {expected}");
        }
        match answer {
            Ok(Ok(answered)) if answered == expected => return Instant::now(),
            Ok(answer) => last = Some(answer),
            Err(_) => break,
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("/readyz did not answer {expected} within {within:?}; last answer {last:?}")
}

/// The status `GET path` answers, or why there was none.
async fn status(addr: &str, path: &str) -> Result<u16, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.map_err(|e| e.to_string())?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.map_err(|e| e.to_string())?;
    let response = String::from_utf8_lossy(&response);
    response.split_whitespace().nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| format!("no status in {response:?}"))
}
