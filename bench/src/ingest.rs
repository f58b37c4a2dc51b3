//! Durable ingest: many devices push new observations at once; each is validated,
//! committed and projected before the server acknowledges it. Compared with the same
//! automerge work done in-process with no database and no network (the ceiling).

use std::time::Instant;

use anyhow::Context;
use automerge::Automerge;
use fieldbook_server::storage::Database;
use fieldbook_sync_core::frameworks::Catalog;
use fieldbook_sync_core::{DocSync, DocumentId, Record, json};
use serde_json::json;
use sqlx::ConnectOptions;

use crate::peer::{Peer, observation};
use crate::servers::{FieldbookServer, ServerProcess};
use crate::stats::Runs;

const RUNS: usize = 3;

#[derive(clap::Args)]
pub struct IngestArgs {
    /// Devices pushing at once, one connection each.
    #[arg(long, default_value_t = 50)]
    devices: usize,
    /// New observations per device.
    #[arg(long, default_value_t = 40)]
    per_device: usize,
    /// PostgreSQL server to create a scratch database on.
    #[arg(long, env = "FIELDBOOK_BENCH_POSTGRES_URL", default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    postgres: String,
    /// Skip PostgreSQL.
    #[arg(long)]
    skip_postgres: bool,
    #[arg(long, default_value = "bench-results/ingest.json")]
    out: String,
}

pub async fn run(args: IngestArgs) -> anyhow::Result<()> {
    let total = args.devices * args.per_device;
    let mut results = serde_json::Map::new();

    // Every figure is the median of `RUNS`, with the spread beside it.
    let ceiling = Runs((0..RUNS).map(|_| ceiling(total)).collect::<anyhow::Result<_>>()?);
    println!(
        "ceiling: the server's automerge work for {total} observations in-process on {} threads (as many as the server's runtime): {} obs/s",
        threads(),
        ceiling.cell(0)
    );
    results.insert("ceiling_obs_per_second".into(), ceiling.json());
    results.insert("ceiling_threads".into(), json!(threads()));

    let mut backends = vec![("sqlite", None)];
    if !args.skip_postgres {
        backends.push(("postgres", Some(scratch_postgres(&args.postgres).await?)));
    }
    for (name, url) in backends {
        let mut server = FieldbookServer::start(url).await?;
        let mut rates = Runs::default();
        for _ in 0..RUNS {
            rates.push(ingest(&server, args.devices, args.per_device).await?);
        }
        let db = Database::connect(server.database_url()).await?;
        let projected = db.observation_count().await?;
        db.close().await;
        anyhow::ensure!(projected as usize == total * RUNS, "{projected} of {} observations projected", total * RUNS);
        let fraction = rates.median() / ceiling.median();
        println!(
            "{name}: {total} observations from {} devices at once, committed and projected: {} obs/s ({:.0}% of the ceiling)",
            args.devices,
            rates.cell(0),
            100.0 * fraction
        );
        results.insert(name.into(), json!({"obs_per_second": rates.json(), "fraction_of_ceiling": fraction}));
        server.stop().await?;
    }
    results.insert("observations".into(), json!(total));
    results.insert("devices".into(), json!(args.devices));
    crate::write_results(&args.out, results)
}

/// Every device connects, then all push their observations at once; returns obs/s until
/// the last is acknowledged (the server reports heads only after the commit).
async fn ingest(server: &FieldbookServer, devices: usize, per_device: usize) -> anyhow::Result<f64> {
    let mut peers = Vec::with_capacity(devices);
    for d in 0..devices {
        let docs: Vec<Automerge> = (0..per_device).map(|i| observation(d * per_device + i)).collect();
        peers.push((Peer::connect(&server.ws_url()).await?, docs));
    }
    let start = Instant::now();
    let tasks: Vec<_> = peers
        .into_iter()
        .map(|(mut peer, docs)| {
            tokio::spawn(async move {
                for doc in docs {
                    peer.open(DocumentId::random(), doc).await?;
                }
                peer.settle().await
            })
        })
        .collect();
    for task in tasks {
        task.await.context("device task")??;
    }
    Ok((devices * per_device) as f64 / start.elapsed().as_secs_f64())
}

/// The server's runtime runs one worker thread per core; so does the ceiling.
fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The server's per-observation automerge work — receive the device's messages on a
/// scratch copy, validate the record, answer, and save the snapshot it stores — on as many
/// threads as the server's runtime, without database or network.
fn ceiling(total: usize) -> anyhow::Result<f64> {
    // Record each device's messages once, so the timed part is the server side only.
    let exchanges: Vec<Vec<Vec<u8>>> = (0..total)
        .map(|i| {
            let mut device: DocSync<()> = DocSync::new(observation(i));
            let mut server: DocSync<()> = DocSync::new(Automerge::new());
            let mut sent = Vec::new();
            while let Some(out) = device.outgoing_for(&()) {
                server.receive(&(), out.kind, &out.data).expect("valid");
                sent.push(out.data);
                if let Some(reply) = server.outgoing_for(&()) {
                    device.receive(&(), reply.kind, &reply.data).expect("valid");
                }
            }
            sent
        })
        .collect();
    let catalog = Catalog::shipped();
    let start = Instant::now();
    std::thread::scope(|scope| {
        for share in exchanges.chunks(total.div_ceil(threads())) {
            let catalog = &catalog;
            scope.spawn(move || {
                for messages in share {
                    let mut server: DocSync<()> = DocSync::new(Automerge::new());
                    for data in messages {
                        let received = server
                            .receive_checked(&(), fieldbook_sync_core::SyncKind::Sync, data, |_, after| {
                                Record::parse(&json::to_json(after), catalog).map(|_| ()).map_err(Into::into)
                            })
                            .expect("valid");
                        if !received.received_bytes.is_empty() {
                            std::hint::black_box(server.doc().save());
                        }
                        std::hint::black_box(server.outgoing_for(&()));
                    }
                }
            });
        }
    });
    Ok(total as f64 / start.elapsed().as_secs_f64())
}

pub(crate) async fn scratch_postgres(admin_url: &str) -> anyhow::Result<String> {
    let name = format!("fieldbook_bench_{}", uuid::Uuid::new_v4().simple());
    let mut admin = admin_url.parse::<sqlx::postgres::PgConnectOptions>()?.connect().await.context("PostgreSQL")?;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut admin).await?;
    let (base, _) = admin_url.rsplit_once('/').context("postgres URL has a database")?;
    Ok(format!("{base}/{name}"))
}
