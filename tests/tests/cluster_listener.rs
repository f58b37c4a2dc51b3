//! What nodes hear from each other besides documents, and what a node does when it cannot
//! hear: a framework or resource import or a suspension made by a `fieldbook` command takes effect on
//! every node within a second (their polling fallback runs every 30 s while they listen, so
//! only the cross-node notice can do it); a node that loses its listener says so in its
//! readiness, and when it listens again it catches up with what was committed meanwhile and
//! pushes it to its connections.

use std::time::{Duration, Instant};

use fieldbook_sync_core::{DocumentId, json as amjson};
use fieldbook_tests::cluster::Cluster;
use fieldbook_tests::peer::{Outcome, Peer};
use fieldbook_tests::records::document;
use fieldbook_tests::records::{observation, plan};
use fieldbook_tests::{TempDir, TestServer, js, raw};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_lost_its_listener_is_unready_then_pushes_what_it_missed() {
    let cluster = Cluster::start(2).await;
    let (a, b) = (cluster.ws_url(0), cluster.ws_url(1));
    let url = js::create(&a, &observation(json!({})));
    let watch = js::Watch::start_within(&b, &url, "status", "shared", Duration::from_secs(20));
    let (seen_tx, seen_rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let _ = seen_tx.send(watch.finish());
    });
    assert_eq!(readyz(cluster.node(1)).await, 200, "node B is ready before the cut");

    // Cut both nodes' listening connections behind their backs, then commit through A at
    // once: B is not listening, so the notice of this commit never reaches it.
    let cut = terminate_listeners(&cluster.db.url).await;
    assert_eq!(cut, 2, "each node holds one listening connection");
    let id = DocumentId::parse_url_or_id(&url).expect("a document URL");
    let mut tablet = Peer::connect(&a, "sam-tablet").await;
    let doc = tablet.fetch(id).await.expect("sam reads the record through A");
    let mut shared = doc.fork();
    let mut tx = shared.transaction();
    amjson::set_path(&mut tx, "status", &json!("shared")).expect("set status");
    tx.commit();
    assert_eq!(tablet.push(id, &shared).await, Outcome::Accepted);

    // Meanwhile B says it is not ready; then it listens again, catches up, and is ready.
    let unready = wait_for_readyz(cluster.node(1), 503, Duration::from_secs(2)).await;
    assert!(unready.is_some(), "node B never said it was not following the other nodes");
    let ready = wait_for_readyz(cluster.node(1), 200, Duration::from_secs(15)).await;
    assert!(ready.is_some(), "node B did not become ready again after listening again");

    let seen = tokio::time::timeout(Duration::from_secs(20), seen_rx)
        .await
        .expect("the JS client on node B never got the change committed while B was not listening")
        .expect("the watcher thread ended")
        .unwrap_or_else(|e| panic!("the change made while node B was deaf never reached its client: {e}"));
    assert_eq!(seen["doc"]["status"], "shared", "{seen}");
    assert_eq!(seen["reconnects"], 0, "pushed on the open connection, not found by reconnecting: {seen}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_framework_imported_by_command_is_in_force_on_every_node_within_a_second() {
    let cluster = Cluster::start(2).await;
    let mut tablet = Peer::connect(&cluster.ws_url(1), "sam-tablet").await;
    let with_new_component = || document(&observation(json!({ "components": ["kss-cf-2018/6.1"] })));
    let refused = tablet.push(DocumentId::random(), &with_new_component()).await;
    assert!(matches!(refused, Outcome::Rejected(_)), "the component does not exist yet: {refused:?}");

    // A corrected framework with a new component, imported by command beside the nodes.
    let mut framework: serde_json::Value =
        serde_json::from_str(include_str!("../../frameworks/kss-cf-2018.json")).expect("shipped framework");
    framework["version"] = json!("2018-corrected");
    framework["areas"][5]["components"] =
        json!([{"id": "kss-cf-2018/6.1", "title": "Assessment that hears the child"}]);
    let dir = TempDir::new("framework");
    let path = dir.path().join("kss.json");
    std::fs::write(&path, framework.to_string()).expect("write framework");
    cluster.fieldbook(&["frameworks", "import", path.to_str().expect("utf-8 path")]);
    accepted_within_a_second(&mut tablet, "the new component", with_new_component).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resource_imported_by_command_is_in_force_on_every_node_within_a_second() {
    let cluster = Cluster::start(2).await;
    cluster.add_practitioner("pat").await;
    let mut tablet = Peer::connect(&cluster.ws_url(1), "sam-tablet").await;
    let citing = || {
        document(&plan(json!({ "goals": [{"id": "g1", "components": ["kss-cf-2018/6"], "status": "in-progress",
                                          "evidence": [], "resources": ["local-guide"]}] })))
    };
    let refused = tablet.push(DocumentId::random(), &citing()).await;
    assert!(matches!(refused, Outcome::Rejected(_)), "the resource does not exist yet: {refused:?}");

    let dir = TempDir::new("resources");
    let path = dir.path().join("resources.json");
    let list = json!({"source": "Our library", "resources": [{"id": "local-guide", "title": "Our guide",
        "url": "https://intranet.example/guide", "publisher": "Us", "components": ["kss-cf-2018/6"], "addedAt": "2026-11-01"}]});
    std::fs::write(&path, list.to_string()).expect("write resources");
    cluster.fieldbook(&["resources", "import", path.to_str().expect("utf-8 path")]);
    accepted_within_a_second(&mut tablet, "the new resource", citing).await;
}

/// Pushes new records made by `make` until the node accepts one: it must within a second of
/// the command that made them valid, which has just run.
async fn accepted_within_a_second(tablet: &mut Peer, what: &str, make: impl Fn() -> automerge::Automerge) {
    let imported = Instant::now();
    loop {
        match tablet.push(DocumentId::random(), &make()).await {
            Outcome::Accepted => break,
            other if imported.elapsed() > Duration::from_secs(1) => {
                panic!("node B still refused {what} {:?} after the import: {other:?}", imported.elapsed())
            }
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    eprintln!("{what} was in force on node B {:?} after the command", imported.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suspending_a_user_by_command_disconnects_them_on_every_node_within_a_second() {
    let cluster = Cluster::start(2).await;
    let pat = cluster.add_practitioner("pat").await;
    let mut sockets = Vec::new();
    for node in 0..2 {
        let mut socket = raw::connect(&cluster.node(node).ws_url(&pat)).await;
        raw::send(&mut socket, raw::join_frame("pat-phone")).await;
        assert!(raw::next(&mut socket).await.is_some(), "pat joined node {node}");
        sockets.push(socket);
    }

    cluster.fieldbook(&["users", "update", "--id", "pat", "--status", "suspended"]);
    let suspended = Instant::now();
    for (node, mut socket) in sockets.into_iter().enumerate() {
        let closed =
            tokio::time::timeout(Duration::from_secs(5), async { while raw::next(&mut socket).await.is_some() {} })
                .await;
        assert!(closed.is_ok(), "pat's connection to node {node} was still open 5 s after the suspension");
        let after = suspended.elapsed();
        assert!(after < Duration::from_secs(1), "pat's connection to node {node} closed only {after:?} after");
    }
}

/// Terminates every `LISTEN` connection to the database; returns how many.
async fn terminate_listeners(url: &str) -> i64 {
    let pool = sqlx::PgPool::connect(url).await.expect("connect");
    let cut: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = current_database() AND query LIKE 'LISTEN%' AND pid <> pg_backend_pid()) AS t",
    )
    .fetch_one(&pool)
    .await
    .expect("terminate listeners");
    pool.close().await;
    cut
}

async fn readyz(node: &TestServer) -> u16 {
    node.get("/readyz", None).await.0
}

/// Polls `/readyz` until it answers `status`; when it first did, or `None` within `within`.
async fn wait_for_readyz(node: &TestServer, status: u16, within: Duration) -> Option<Instant> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if readyz(node).await == status {
            return Some(Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}
