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
//!
//! Run with `scripts/bench` (builds release binaries first). Results are printed and written
//! as JSON under `bench-results/`.

mod checks;
mod cluster;
mod ingest;
mod national;
mod peer;
mod servers;
mod sync_suite;

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
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Sync(args) => sync_suite::run(args).await,
        Command::Ingest(args) => ingest::run(args).await,
        Command::National(args) => national::run(args).await,
        Command::Checks(args) => checks::run(args).await,
        Command::Cluster(args) => cluster::run(args).await,
    }
}

fn write_results(path: &str, mut results: serde_json::Map<String, serde_json::Value>) -> anyhow::Result<()> {
    if let Some(dir) = std::path::Path::new(path).parent() {
        std::fs::create_dir_all(dir)?;
    }
    results.insert("machine".into(), serde_json::json!({"cores": std::thread::available_parallelism()?.get()}));
    std::fs::write(path, serde_json::to_string_pretty(&results)?)?;
    println!("results written to {path}");
    Ok(())
}
