//! Many devices at once, against Fieldbook and the stock Node server in the same run:
//!
//! - `reconnect` (the 9 am reconnect): every device holds its records, already in sync, and
//!   all reconnect at once, sending one sync message with their heads per record, as the JS
//!   client does. Timed until every device knows the server has what it has.
//! - `fleet`: fresh devices (empty stores) pull the same records at once, each sending a
//!   `request` per record, as the JS client does for a record it does not have, and a sync
//!   message with the record's heads once it has it. These devices do not load what they
//!   receive (see [`Peer::fetch_without_loading`]): the load generator shares the machine
//!   with the server and must cost far less than the server's side.
//!
//! Devices are protocol peers built on sync-core (the JS client cannot run hundreds of
//! devices on two cores), speaking what the JS client sends. Before each timed round
//! Fieldbook is restarted (its cache holds nothing, as after a night's idle eviction).
//! For `reconnect` the Node server is restarted too, on the same records written straight
//! into its storage; for `fleet` it keeps running with every record in memory.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use automerge::Automerge;
use fieldbook_sync_core::DocumentId;
use futures_util::{StreamExt, stream};
use serde_json::{Value, json};

use crate::peer::{Peer, observation};
use crate::servers::{FieldbookServer, NodeServer, ServerProcess};
use crate::stats::{Runs, quantile};

#[derive(clap::Args)]
pub struct ReconnectArgs {
    /// Devices reconnecting at once.
    #[arg(long, default_value_t = 500)]
    devices: usize,
    /// Records each device holds (its own; none shared).
    #[arg(long, default_value_t = 100)]
    records: usize,
    /// Timed reconnects per server.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Stop a Node server round that has not finished after this many seconds; the
    /// comparison is then reported as a lower bound.
    #[arg(long, default_value_t = 600)]
    node_limit_secs: u64,
    #[arg(long, default_value = "bench-results/reconnect.json")]
    out: String,
}

#[derive(clap::Args)]
pub struct FleetArgs {
    /// Fresh devices pulling at once.
    #[arg(long, default_value_t = 50)]
    devices: usize,
    /// Records each device pulls (the same records for every device).
    #[arg(long, default_value_t = 1000)]
    records: usize,
    /// Timed pulls per server.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    #[arg(long, default_value = "bench-results/fleet.json")]
    out: String,
}

pub async fn reconnect(args: ReconnectArgs) -> anyhow::Result<()> {
    println!("9 am reconnect: {} devices × {} records each, {} runs per server", args.devices, args.records, args.runs);
    let mut fieldbook_server = FieldbookServer::start(None).await?;
    let seeding = Instant::now();
    let holdings = seed_devices(&fieldbook_server.ws_url(), args.devices, args.records).await?;
    println!("fieldbook: seeded {} records in {:.1} s", args.devices * args.records, seeding.elapsed().as_secs_f64());
    let fieldbook = reconnect_on("fieldbook", &mut fieldbook_server, &holdings, None, &args).await?;
    // The Node server gets the very same records, written into its storage.
    let mut node_server = NodeServer::start()?;
    node_server.store_directly(holdings.iter().flatten().map(|(id, doc)| (id, doc)))?;
    let limit = Some(Duration::from_secs(args.node_limit_secs));
    let node = reconnect_on("node", &mut node_server, &holdings, limit, &args).await;
    report("9 am reconnect", &fieldbook, node, args.devices, args.records, &args.out)
}

pub async fn fleet(args: FleetArgs) -> anyhow::Result<()> {
    println!(
        "fresh devices: {} devices pulling the same {} records at once, {} runs per server",
        args.devices, args.records, args.runs
    );
    let fieldbook = fleet_on("fieldbook", &mut FieldbookServer::start(None).await?, true, &args).await?;
    let node = fleet_on("node", &mut NodeServer::start()?, false, &args).await;
    report("fresh devices at once", &fieldbook, node, args.devices, args.records, &args.out)
}

/// Times one server's reconnects of devices holding `holdings`, restarting it before each
/// round: both servers start each round with every record on disk and none in memory.
async fn reconnect_on(
    name: &'static str,
    server: &mut impl ServerProcess,
    holdings: &[Vec<(DocumentId, Automerge)>],
    round_limit: Option<Duration>,
    args: &ReconnectArgs,
) -> anyhow::Result<Summary> {
    let rounds = Rounds { restart: true, runs: args.runs, devices: args.devices, limit: round_limit };
    let summary = timed_rounds(name, server, rounds, |device, url| {
        // The device's own copies, made before its clock starts.
        let held: Vec<(DocumentId, Automerge)> = holdings[device].clone();
        async move {
            let mut peer = Peer::connect(&url).await?;
            for (id, doc) in held {
                peer.open(id, doc).await?;
            }
            peer.settle_within(Duration::from_secs(600)).await
        }
    })
    .await;
    server.stop().await?;
    summary
}

/// Seeds one server and times fresh devices pulling; `restart` restarts it before each round.
async fn fleet_on(
    name: &'static str,
    server: &mut impl ServerProcess,
    restart: bool,
    args: &FleetArgs,
) -> anyhow::Result<Summary> {
    let seeded = seed_devices(&server.ws_url(), 1, args.records).await?.remove(0);
    let ids: Vec<DocumentId> = seeded.into_iter().map(|(id, _)| id).collect();
    let rounds = Rounds { restart, runs: args.runs, devices: args.devices, limit: None };
    let summary = timed_rounds(name, server, rounds, |_, url| {
        let ids = ids.clone();
        async move {
            let mut peer = Peer::connect(&url).await?;
            tokio::time::timeout(Duration::from_secs(600), peer.fetch_without_loading(&ids))
                .await
                .context("a fresh device did not get its records within 10 minutes")?
        }
    })
    .await;
    server.stop().await?;
    summary
}

/// Puts `records` new records per device on the server, two devices at a time (the Node
/// server has reset connections with ten); returns what each device then holds, in sync.
async fn seed_devices(url: &str, devices: usize, records: usize) -> anyhow::Result<Vec<Vec<(DocumentId, Automerge)>>> {
    stream::iter(0..devices)
        .map(|device| async move {
            let mut peer = Peer::connect(url).await.context("seed: connect")?;
            let ids: Vec<DocumentId> = (0..records).map(|_| DocumentId::random()).collect();
            for (i, id) in ids.iter().enumerate() {
                peer.open(*id, observation(device * records + i)).await?;
            }
            peer.settle().await.context("seeding")?;
            Ok(ids.into_iter().map(|id| (id, peer.docs[&id].doc().clone())).collect())
        })
        .buffered(2)
        .collect::<Vec<anyhow::Result<_>>>()
        .await
        .into_iter()
        .collect()
}

/// The figures of one server over its rounds.
struct Summary {
    name: &'static str,
    seconds: Runs,
    device_p50: Runs,
    device_p99: Runs,
    peak_rss_mib: Runs,
    /// A round did not finish within this many seconds (and no further round was run).
    unfinished_after: Option<f64>,
}

impl Summary {
    fn json(&self, records: usize) -> Value {
        let rate = Runs(self.seconds.0.iter().map(|s| records as f64 / s).collect());
        if let Some(limit) = self.unfinished_after {
            return json!({
                "did_not_finish_within_seconds": limit,
                "finished_rounds": self.seconds.json(),
                "peak_rss_mib": self.peak_rss_mib.json(),
            });
        }
        json!({
            "seconds_until_every_device_done": self.seconds.json(),
            "records_per_second": rate.json(),
            "device_done_p50_seconds": self.device_p50.json(),
            "device_done_p99_seconds": self.device_p99.json(),
            "peak_rss_mib": self.peak_rss_mib.json(),
        })
    }
}

/// How [`timed_rounds`] runs: restart the server before each round or not, how many rounds
/// of how many devices at once, and how long a round may take (`None`: as long as it takes).
struct Rounds {
    restart: bool,
    runs: usize,
    devices: usize,
    limit: Option<Duration>,
}

/// Runs timed rounds; `device(i, url)` makes device `i`'s part (before the clock starts). A
/// round ends when the last device is done. A round over the limit ends the rounds, noted
/// in the summary with the peak memory it reached.
async fn timed_rounds<Device>(
    name: &'static str,
    server: &mut impl ServerProcess,
    rounds: Rounds,
    device: impl Fn(usize, String) -> Device,
) -> anyhow::Result<Summary>
where
    Device: Future<Output = anyhow::Result<()>>,
{
    let mut summary = Summary {
        name,
        seconds: Runs::default(),
        device_p50: Runs::default(),
        device_p99: Runs::default(),
        peak_rss_mib: Runs::default(),
        unfinished_after: None,
    };
    for run in 1..=rounds.runs {
        if rounds.restart {
            server.restart().await?;
        }
        let url = server.ws_url();
        let parts: Vec<Device> = (0..rounds.devices).map(|i| device(i, url.clone())).collect();
        let peak = PeakRss::sample(server.child().id());
        let start = Instant::now();
        let all_done = stream::iter(parts)
            .map(|part| async move {
                part.await?;
                anyhow::Ok(start.elapsed().as_secs_f64())
            })
            .buffer_unordered(usize::MAX)
            .collect::<Vec<_>>();
        let finished = match rounds.limit {
            Some(limit) => tokio::time::timeout(limit, all_done).await.ok(),
            None => Some(all_done.await),
        };
        let seconds = start.elapsed().as_secs_f64();
        let peak_mib = peak.stop() as f64 / 1024.0;
        summary.peak_rss_mib.push(peak_mib);
        let Some(finished) = finished else {
            println!("{name} run {run}: not done after {seconds:.0} s; peak RSS {peak_mib:.0} MiB");
            summary.unfinished_after = Some(seconds);
            break;
        };
        let times: Vec<f64> = finished.into_iter().collect::<anyhow::Result<_>>()?;
        let (p50, p99) = (quantile(&times, 0.5).unwrap_or(f64::NAN), quantile(&times, 0.99).unwrap_or(f64::NAN));
        println!(
            "{name} run {run}: every device done after {seconds:.2} s (device p50 {p50:.2} s, p99 {p99:.2} s); peak RSS {peak_mib:.0} MiB"
        );
        summary.seconds.push(seconds);
        summary.device_p50.push(p50);
        summary.device_p99.push(p99);
    }
    Ok(summary)
}

/// Prints the comparison and writes both servers' figures to `out`. The Node server failing
/// (it has dropped connections and crashed under these loads) is reported, not fatal.
fn report(
    what: &str,
    fieldbook: &Summary,
    node: anyhow::Result<Summary>,
    devices: usize,
    records: usize,
    out: &str,
) -> anyhow::Result<()> {
    let mut results = serde_json::Map::new();
    results.insert(fieldbook.name.into(), fieldbook.json(devices * records));
    match node {
        Ok(node) if node.unfinished_after.is_some() => {
            let limit = node.unfinished_after.unwrap_or_default();
            let at_least = limit / fieldbook.seconds.median();
            println!(
                "{what}: {} {} s (median, min–max), peak RSS {} MiB; {} did not finish a round in {limit:.0} s \
                 (peak RSS {} MiB): Fieldbook at least {at_least:.0}× faster",
                fieldbook.name,
                fieldbook.seconds.cell(2),
                fieldbook.peak_rss_mib.cell(0),
                node.name,
                node.peak_rss_mib.cell(0)
            );
            results.insert(node.name.into(), node.json(devices * records));
            results.insert("fieldbook_speedup_vs_node_at_least".into(), json!(at_least));
        }
        Ok(node) => {
            let speedup = node.seconds.median() / fieldbook.seconds.median();
            println!(
                "{what}: {} {} s, {} {} s (medians, min–max): Fieldbook {speedup:.1}× faster; peak RSS {} vs {} MiB",
                fieldbook.name,
                fieldbook.seconds.cell(2),
                node.name,
                node.seconds.cell(2),
                fieldbook.peak_rss_mib.cell(0),
                node.peak_rss_mib.cell(0)
            );
            results.insert(node.name.into(), node.json(devices * records));
            results.insert("fieldbook_speedup_vs_node".into(), json!(speedup));
        }
        Err(e) => {
            println!(
                "{what}: {} {} s (median, min–max), peak RSS {} MiB; the Node server failed: {e:#}",
                fieldbook.name,
                fieldbook.seconds.cell(2),
                fieldbook.peak_rss_mib.cell(0)
            );
            results.insert("node_failed".into(), json!(format!("{e:#}")));
        }
    }
    results.insert("devices".into(), json!(devices));
    results.insert("records_per_device".into(), json!(records));
    crate::write_results(out, results)
}

/// The highest resident memory of a process, sampled every 20 ms on a thread of its own.
struct PeakRss {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    thread: std::thread::JoinHandle<()>,
}

impl PeakRss {
    fn sample(pid: u32) -> Self {
        let (stop, peak) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)));
        let thread = std::thread::spawn({
            let (stop, peak) = (stop.clone(), peak.clone());
            move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Ok(kib) = crate::servers::rss_kib(pid) {
                        peak.fetch_max(kib, Ordering::Relaxed);
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        });
        Self { stop, peak, thread }
    }

    /// The peak, in KiB.
    fn stop(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
        self.peak.load(Ordering::Relaxed)
    }
}
