//! Prometheus metrics on `--metrics-listen`: what an operator graphs for a node, including
//! what it hears from another node on the same database.

use std::time::{Duration, Instant};

use fieldbook_server::storage::Role;
use fieldbook_sync_core::DocumentId;
use fieldbook_tests::metrics::{free_address, scrape, value};
use fieldbook_tests::peer::{Outcome, Peer};
use fieldbook_tests::records::{document, observation};
use fieldbook_tests::{Backend, TestDatabase, TestServer};
use serde_json::json;

#[tokio::test]
async fn a_node_reports_its_traffic_commits_refusals_and_what_it_hears_from_others() {
    let db = TestDatabase::new(Backend::Postgres).await;
    let token = db.user("sam", Role::Supervisor).await;
    let metrics_addr = free_address();
    let node = TestServer::start_with(&db.url, &["--metrics-listen", &metrics_addr]);
    let other = TestServer::start(&db.url);

    // Through this node: two records accepted, one refused.
    let mut peer = Peer::connect(&node.ws_url(&token), "tablet").await;
    for n in 0..2 {
        let doc = document(&observation(json!({ "n": n })));
        assert_eq!(peer.push(DocumentId::random(), &doc).await, Outcome::Accepted);
    }
    let invalid = document(&observation(json!({ "status": "no-such-status" })));
    assert!(matches!(peer.push(DocumentId::random(), &invalid).await, Outcome::Rejected(_)));
    // Through the other node: heard here on the cross-node channel.
    let mut elsewhere = Peer::connect(&other.ws_url(&token), "phone").await;
    let doc = document(&observation(json!({ "n": "elsewhere" })));
    assert_eq!(elsewhere.push(DocumentId::random(), &doc).await, Outcome::Accepted);

    // The quarantine is sampled every few seconds.
    let deadline = Instant::now() + Duration::from_secs(15);
    let text = loop {
        let text = scrape(&metrics_addr).await;
        let ready = value(&text, "fieldbook_quarantine_entries") >= 1.0
            && value(&text, "fieldbook_cluster_notification_lag_seconds_count") >= 1.0;
        if ready || Instant::now() > deadline {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let at_least = |name: &str, min: f64| {
        let v = value(&text, name);
        assert!(v >= min, "{name} is {v}, expected at least {min}\n{text}");
    };
    at_least("fieldbook_connections", 1.0);
    at_least("fieldbook_joined_peers", 1.0);
    at_least("fieldbook_documents_cached", 3.0);
    at_least(r#"fieldbook_messages_received_total{type="join"}"#, 1.0);
    at_least(r#"fieldbook_messages_received_total{type="sync"}"#, 3.0);
    at_least(r#"fieldbook_bytes_received_total{type="sync"}"#, 100.0);
    at_least(r#"fieldbook_messages_sent_total{type="peer"}"#, 1.0);
    at_least(r#"fieldbook_messages_sent_total{type="sync"}"#, 3.0);
    at_least(r#"fieldbook_messages_sent_total{type="ephemeral"}"#, 1.0);
    at_least(r#"fieldbook_changes_total{outcome="accepted",rule=""}"#, 2.0);
    at_least(r#"fieldbook_changes_total{outcome="refused",rule="invalid-record"}"#, 1.0);
    at_least("fieldbook_commit_seconds_count", 2.0);
    at_least("fieldbook_commit_batch_size_count", 2.0);
    at_least("fieldbook_cluster_listening", 1.0);
    at_least("fieldbook_cluster_notification_lag_seconds_count", 1.0);
    at_least("fieldbook_quarantine_entries", 1.0);
    at_least("fieldbook_quarantine_bytes", 1.0);
    at_least(r#"fieldbook_database_connections{state="open"}"#, 1.0);
}
