//! `fieldbook-bench`: benchmarks that report figures, never timed tests.
//!
//! - `sync`: fresh-device pull, change propagation and server memory, against Fieldbook and
//!   the stock Node automerge-repo server.
//! - `ingest`: many devices pushing new observations at once, committed and projected, on
//!   SQLite and PostgreSQL, against the same automerge work in-process (the ceiling).
//! - `national`: the development-records API on a national-scale store.
//! - `checks`: what the server's per-message checks cost as a record grows.
//! - `cluster`: several server processes on one PostgreSQL database: committed changes per
//!   second at 1, 2 and 3 nodes, and propagation from a peer on one node to a peer on another.
//! - `js`: the stock JS client (what `clients/web` runs) pulling, uploading and propagating,
//!   against both servers and the client's own floor.
//! - `idle`: many joined, idle sync connections: memory per connection, `/readyz` meanwhile.
//! - `reconnect`: the 9 am reconnect of many devices holding records in sync, vs Node.
//! - `fleet`: many fresh devices pulling the same records at once, vs Node.
//! - `web-morning`: the web app in Chromium opened after a night offline with many records.
//!
//! Run with `scripts/bench` (builds release binaries first). Results are printed and written
//! as JSON under `bench-results/`.

mod checks;
mod cluster;
mod idle;
mod ingest;
mod js_client;
mod many_devices;
mod national;
mod peer;
mod servers;
mod stats;
mod sync_suite;
mod web_morning;

use clap::{Parser, Subcommand};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Fresh-device pull, propagation and memory, vs the stock Node server.
    Sync(sync_suite::SyncArgs),
    /// Durable ingest rate of new observations, vs the in-process ceiling.
    Ingest(ingest::IngestArgs),
    /// The development-records API on a national-scale store: CSV export, JSON page, feed
    /// catch-up, insights, on SQLite and PostgreSQL.
    National(national::NationalArgs),
    /// The server's checks per incoming message (one small edit) as a record grows.
    Checks(checks::ChecksArgs),
    /// Several server processes ("nodes") on one PostgreSQL database: throughput at 1, 2 and
    /// 3 nodes, and change propagation across nodes (p50/p99).
    Cluster(cluster::ClusterArgs),
    /// The stock JS client against Fieldbook and the Node server: fresh-device pull vs the
    /// client's own floor, upload, propagation with many records open.
    Js(js_client::JsClientArgs),
    /// Many joined, idle sync connections: server memory per connection, `/readyz` latency
    /// and a change syncing while they are held.
    Idle(idle::IdleArgs),
    /// The 9 am reconnect: devices holding records in sync all reconnect at once, vs the
    /// stock Node server.
    Reconnect(many_devices::ReconnectArgs),
    /// Fresh devices pulling the same records at once, vs the stock Node server.
    Fleet(many_devices::FleetArgs),
    /// The web app in Chromium: a supervisor with many records opens it after a night offline.
    WebMorning(web_morning::WebMorningArgs),
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Sync(args) => sync_suite::run(args).await,
        Command::Ingest(args) => ingest::run(args).await,
        Command::National(args) => national::run(args).await,
        Command::Checks(args) => checks::run(args).await,
        Command::Cluster(args) => cluster::run(args).await,
        Command::Js(args) => js_client::run(args).await,
        Command::Idle(args) => idle::run(args).await,
        Command::Reconnect(args) => many_devices::reconnect(args).await,
        Command::Fleet(args) => many_devices::fleet(args).await,
        Command::WebMorning(args) => web_morning::run(args).await,
    }
}

/// Writes `results` as JSON to `path`, with what the figures were measured on: the commit
/// (and whether the tree had changes beside it), the date, the cores and the memory.
fn write_results(path: &str, mut results: serde_json::Map<String, serde_json::Value>) -> anyhow::Result<()> {
    if let Some(dir) = std::path::Path::new(path).parent() {
        std::fs::create_dir_all(dir)?;
    }
    results.insert("measured".into(), measured_on()?);
    std::fs::write(path, serde_json::to_string_pretty(&results)? + "\n")?;
    println!("results written to {path}");
    Ok(())
}

fn measured_on() -> anyhow::Result<serde_json::Value> {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    let date = std::process::Command::new("date").args(["-u", "+%Y-%m-%dT%H:%M:%SZ"]).output()?;
    let meminfo = std::fs::read_to_string("/proc/meminfo")?;
    let memory_kib: Option<u64> = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok());
    Ok(serde_json::json!({
        "commit": git(&["rev-parse", "HEAD"]),
        // Results already in bench-results/ are not changes to what was measured.
        "uncommitted_changes": git(&["status", "--porcelain", "--untracked-files=no", "--", ".", ":!bench-results"])
            .map(|s| !s.is_empty()),
        "date": String::from_utf8_lossy(&date.stdout).trim(),
        "cores": std::thread::available_parallelism()?.get(),
        "memory_mib": memory_kib.map(|k| k / 1024),
    }))
}
