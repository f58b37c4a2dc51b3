//! Prometheus metrics, served on `--metrics-listen` (off by default: a separate address, so
//! it need not be public). Without it no recorder is installed and every call here is a
//! no-op. Label values come from fixed lists, never from what a client sent.

use std::net::SocketAddr;
use std::time::Duration;

use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;

use crate::storage::Database;

/// Seconds: from a tenth of a millisecond to ten seconds.
const LATENCY_BUCKETS: &[f64] =
    &[0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];

/// Message types counted by name; anything else is "other".
const MESSAGE_TYPES: &[&str] = &[
    "join",
    "peer",
    "leave",
    "error",
    "sync",
    "request",
    "doc-unavailable",
    "ephemeral",
    "remote-subscription-change",
    "remote-heads-changed",
    fieldbook_sync_core::message::RENEW,
    "invalid",
];

/// Installs the recorder and binds the metrics address; serve with [`serve`].
pub async fn bind(addr: SocketAddr) -> Result<(TcpListener, PrometheusHandle), String> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
        .and_then(|b| b.set_buckets_for_metric(Matcher::Full("fieldbook_commit_batch_size".into()), BATCH_BUCKETS))
        .map_err(|e| e.to_string())?
        .install_recorder()
        .map_err(|e| format!("cannot install the metrics recorder: {e}"))?;
    describe();
    let listener = TcpListener::bind(addr).await.map_err(|e| format!("cannot listen on {addr} for metrics: {e}"))?;
    Ok((listener, handle))
}

/// Serves `GET /metrics` in the Prometheus text format, and samples what is read from the
/// database (quarantine, connection pool) every few seconds.
pub async fn serve(listener: TcpListener, handle: PrometheusHandle, db: Database) {
    let render = handle.clone();
    let app = axum::Router::new().route("/metrics", axum::routing::get(move || std::future::ready(render.render())));
    let sampler = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tick.tick().await;
            handle.run_upkeep();
            let (size, idle) = db.pool_use();
            gauge!("fieldbook_database_connections", "state" => "open").set(size as f64);
            gauge!("fieldbook_database_connections", "state" => "idle").set(idle as f64);
            match db.quarantine_size().await {
                Ok((entries, bytes)) => {
                    gauge!("fieldbook_quarantine_entries").set(entries as f64);
                    gauge!("fieldbook_quarantine_bytes").set(bytes as f64);
                }
                Err(e) => tracing::debug!(error = %e, "could not sample the quarantine"),
            }
        }
    });
    if let Err(e) = axum::serve(listener, app).await {
        tracing::error!(error = %e, "the metrics endpoint stopped");
    }
    sampler.abort();
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_gauge!("fieldbook_connections", "Open sync connections");
    describe_gauge!("fieldbook_joined_peers", "Sync connections whose peer has joined");
    describe_gauge!("fieldbook_documents_cached", "Documents in memory");
    describe_counter!("fieldbook_messages_received_total", "Protocol messages received, by type");
    describe_counter!("fieldbook_bytes_received_total", "Bytes of protocol messages received, by type");
    describe_counter!("fieldbook_messages_sent_total", "Protocol messages sent, by type");
    describe_counter!("fieldbook_bytes_sent_total", "Bytes of protocol messages sent, by type");
    describe_histogram!("fieldbook_commit_batch_size", "Documents committed in one transaction");
    describe_histogram!("fieldbook_commit_seconds", "Time to commit one batch");
    describe_counter!("fieldbook_commit_failures_total", "Batches whose transaction failed");
    describe_counter!("fieldbook_changes_total", "Changes accepted, and refused by rule");
    describe_counter!("fieldbook_stale_commits_total", "Commits that found another node had committed first");
    describe_counter!(
        "fieldbook_answered_unloaded_total",
        "Devices in sync, or new to a record stored as one snapshot, answered without loading it"
    );
    describe_histogram!("fieldbook_cluster_notification_lag_seconds", "From another node's commit to hearing of it");
    describe_gauge!("fieldbook_cluster_listening", "1 while following other nodes' changes");
    describe_gauge!("fieldbook_quarantine_entries", "Refused changes kept aside");
    describe_gauge!("fieldbook_quarantine_bytes", "Bytes of refused changes kept aside");
    describe_gauge!("fieldbook_database_connections", "Database pool connections, open and idle");
}

fn message_type(name: &str) -> &'static str {
    MESSAGE_TYPES.iter().find(|t| **t == name).copied().unwrap_or("other")
}

pub fn connections(open: usize) {
    gauge!("fieldbook_connections").set(open as f64);
}

pub fn peer_joined(joined: bool) {
    let gauge = gauge!("fieldbook_joined_peers");
    if joined { gauge.increment(1.0) } else { gauge.decrement(1.0) }
}

pub fn documents_cached(count: usize) {
    gauge!("fieldbook_documents_cached").set(count as f64);
}

pub fn message_in(name: &str, bytes: usize) {
    let kind = message_type(name);
    counter!("fieldbook_messages_received_total", "type" => kind).increment(1);
    counter!("fieldbook_bytes_received_total", "type" => kind).increment(bytes as u64);
}

pub fn message_out(name: &str, bytes: usize) {
    let kind = message_type(name);
    counter!("fieldbook_messages_sent_total", "type" => kind).increment(1);
    counter!("fieldbook_bytes_sent_total", "type" => kind).increment(bytes as u64);
}

pub fn commit_batch(size: usize, took: Duration, committed: bool) {
    histogram!("fieldbook_commit_batch_size").record(size as f64);
    histogram!("fieldbook_commit_seconds").record(took.as_secs_f64());
    if !committed {
        counter!("fieldbook_commit_failures_total").increment(1);
    }
}

pub fn changes_accepted(count: usize) {
    counter!("fieldbook_changes_total", "outcome" => "accepted", "rule" => "").increment(count as u64);
}

/// `rule` is one of sync-core's `refusal::rule` names.
pub fn changes_refused(rule: &'static str, count: usize) {
    counter!("fieldbook_changes_total", "outcome" => "refused", "rule" => rule).increment(count as u64);
}

pub fn stale_commit() {
    counter!("fieldbook_stale_commits_total").increment(1);
}

pub fn answered_unloaded() {
    counter!("fieldbook_answered_unloaded_total").increment(1);
}

pub fn notification_lag(lag: Duration) {
    histogram!("fieldbook_cluster_notification_lag_seconds").record(lag.as_secs_f64());
}

pub fn cluster_listening(listening: bool) {
    gauge!("fieldbook_cluster_listening").set(if listening { 1.0 } else { 0.0 });
}
