//! `fieldbook-bench cluster`: several `fieldbook serve` processes ("nodes") on one PostgreSQL
//! database. For each node count (1, 2, 3 by default), on a fresh database:
//!
//! - **Throughput:** writers (protocol peers, round-robin over the nodes; the same total at
//!   every node count) each push small changes to their own observation, one at a time, and
//!   count the changes the server acknowledged (its heads equal ours, which it reports only
//!   once committed) over a fixed window after a warm-up. The cost of running several nodes
//!   is `1 − rate(N) / rate(1)`. On a machine with few cores the nodes, PostgreSQL and this
//!   bench share them, so that figure includes contention as well as the cross-node path
//!   itself; the CPU time per committed change of the nodes and of PostgreSQL is measured
//!   beside it, and so are the cores busy with anything else (other work on the machine).
//! - **Propagation:** a writer on node X and a follower (the same supervisor on another
//!   connection) on node Y ≠ X follow one record; the time from the writer sending a change
//!   to the follower receiving it (one clock, this process's), idle and with the throughput
//!   load running on another thread. With one node, writer and follower share it: the
//!   same-node baseline. A change that does not arrive within the timeout counts as missing;
//!   after several misses in a row the phase gives up instead of waiting out every sample.
//!
//! Every figure is the median of `--runs` runs, each on its own database.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use automerge::transaction::Transactable;
use automerge::{Automerge, ChangeHash, ROOT, ReadDoc};
use fieldbook_sync_core::DocumentId;
use serde_json::{Value, json};
use sqlx::ConnectOptions;

use crate::peer::{Peer, observation};
use crate::servers::{FieldbookServer, ServerProcess};
use crate::stats::median;

/// The targets.
const OVERHEAD_TARGET: f64 = 0.20;
const P99_TARGET_MS: f64 = 50.0;
/// How long a writer waits for the server to acknowledge one change before the run fails.
const ACK_TIMEOUT: Duration = Duration::from_secs(30);
/// `/proc` counts CPU time in ticks of 1/100 s (`getconf CLK_TCK` on Linux).
const TICKS_PER_SECOND: f64 = 100.0;

#[derive(clap::Args)]
pub struct ClusterArgs {
    /// Node counts to measure (`1` is the reference for the overhead).
    #[arg(long, value_delimiter = ',', default_value = "1,2,3")]
    nodes: Vec<usize>,
    /// Runs per node count, each on a fresh database; figures are their medians.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Writers in all, spread round-robin over the nodes, one connection and record each.
    #[arg(long, default_value_t = 60)]
    writers: usize,
    /// Seconds of load before the window opens.
    #[arg(long, default_value_t = 3.0)]
    warmup: f64,
    /// Seconds the throughput window lasts.
    #[arg(long, default_value_t = 10.0)]
    window: f64,
    /// Changes timed for propagation, per phase (idle, under load).
    #[arg(long, default_value_t = 300)]
    samples: usize,
    /// Pause between two timed changes, in milliseconds.
    #[arg(long, default_value_t = 15)]
    spacing_ms: u64,
    /// A timed change that has not reached its follower after this long is missing.
    #[arg(long, default_value_t = 2000)]
    sample_timeout_ms: u64,
    /// Give up a propagation phase after this many missing changes in a row.
    #[arg(long, default_value_t = 5)]
    give_up_after: usize,
    /// Only time propagation idle, not under the throughput load.
    #[arg(long)]
    skip_under_load: bool,
    /// Pace the load behind the under-load propagation phase to this many changes per
    /// second in all (0: as fast as the writers go, the throughput load itself, which keeps
    /// the servers saturated).
    #[arg(long, default_value_t = 0.0)]
    under_load_rate: f64,
    /// PostgreSQL server to create the scratch databases on.
    #[arg(long, env = "FIELDBOOK_BENCH_POSTGRES_URL", default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    postgres: String,
    #[arg(long, default_value = "bench-results/cluster.json")]
    out: String,
}

pub async fn run(args: ClusterArgs) -> anyhow::Result<()> {
    anyhow::ensure!(!args.nodes.is_empty() && !args.nodes.contains(&0), "--nodes: one or more counts of at least 1");
    anyhow::ensure!(
        args.runs >= 1 && args.writers >= 1 && args.samples >= 1,
        "--runs, --writers, --samples: at least 1"
    );
    let cores = std::thread::available_parallelism()?.get();
    println!(
        "{} writers in all, round-robin over the nodes; {:.0} s warm-up, {:.0} s window; {} timed changes per \
         propagation phase, {} ms apart, missing after {} ms; {} run(s) per node count; {cores} cores shared by the \
         nodes, PostgreSQL and this bench",
        args.writers, args.warmup, args.window, args.samples, args.spacing_ms, args.sample_timeout_ms, args.runs
    );
    if args.under_load_rate > 0.0 {
        println!("the load behind the under-load propagation phase is paced to {:.0} changes/s", args.under_load_rate);
    }
    println!("node logs: {}", std::env::temp_dir().join("fieldbook-bench-node<i>.log").display());

    let mut measured: Vec<(usize, Vec<Run>)> = Vec::new();
    for &nodes in &args.nodes {
        println!("== {nodes} node{} ==", if nodes == 1 { "" } else { "s" });
        let mut runs = Vec::new();
        for r in 0..args.runs {
            let run = one_run(&args, nodes).await.with_context(|| format!("{nodes} node(s), run {}", r + 1))?;
            run.print(r + 1, &args);
            runs.push(run);
        }
        measured.push((nodes, runs));
    }

    let reference = measured.iter().find(|(n, _)| *n == 1).map(|(_, runs)| Summary::of(runs));
    let summaries: Vec<(usize, Summary)> = measured.iter().map(|(n, runs)| (*n, Summary::of(runs))).collect();
    print_table(&summaries, reference.as_ref(), &args);

    let mut results = serde_json::Map::new();
    results.insert(
        "config".into(),
        json!({
            "writers": args.writers, "warmup_seconds": args.warmup, "window_seconds": args.window,
            "samples": args.samples, "spacing_ms": args.spacing_ms, "sample_timeout_ms": args.sample_timeout_ms,
            "give_up_after": args.give_up_after, "runs": args.runs, "node_counts": args.nodes,
            "under_load_rate": (args.under_load_rate > 0.0).then_some(args.under_load_rate),
        }),
    );
    results
        .insert("targets".into(), json!({"overhead_below": OVERHEAD_TARGET, "cross_node_p99_below_ms": P99_TARGET_MS}));
    let per_count: Vec<Value> = measured
        .iter()
        .zip(&summaries)
        .map(|((nodes, runs), (_, summary))| {
            json!({
                "nodes": nodes,
                "median": summary.json(reference.as_ref()),
                "runs": runs.iter().map(Run::json).collect::<Vec<_>>(),
            })
        })
        .collect();
    results.insert("by_node_count".into(), json!(per_count));
    crate::write_results(&args.out, results)
}

/// One run at one node count, on its own database (dropped afterwards).
async fn one_run(args: &ClusterArgs, nodes: usize) -> anyhow::Result<Run> {
    let url = crate::ingest::scratch_postgres(&args.postgres).await?;
    let run = async {
        let token = FieldbookServer::prepare(&url).await?;
        let mut servers = Vec::with_capacity(nodes);
        for i in 0..nodes {
            let server = FieldbookServer::on_logging_to(&url, &format!("fieldbook-bench-node{i}.log"))
                .with_context(|| format!("start node {i}"))?;
            servers.push(server.with_token(token.clone()));
        }
        let urls: Vec<String> = servers.iter().map(|s| s.ws_url()).collect();
        let pids: Vec<u32> = servers.iter().map(FieldbookServer::pid).collect();

        let load = Load::start(&urls, args.writers, None).await.context("throughput: writers")?;
        tokio::time::sleep(Duration::from_secs_f64(args.warmup)).await;
        let before = Meter::read(&load, &pids)?;
        tokio::time::sleep(Duration::from_secs_f64(args.window)).await;
        let throughput = Meter::read(&load, &pids)?.since(&before);
        load.stop().await.context("throughput: writers")?;

        let mut pairs = Pair::all(&urls).await.context("propagation: setting up writers and followers")?;
        let idle = propagate(&mut pairs, args).await.context("propagation, idle")?;
        let loaded = if args.skip_under_load {
            None
        } else {
            let pace = (args.under_load_rate > 0.0)
                .then(|| Duration::from_secs_f64(args.writers as f64 / args.under_load_rate));
            let load = Load::start(&urls, args.writers, pace).await.context("propagation under load: writers")?;
            tokio::time::sleep(Duration::from_secs_f64(args.warmup)).await;
            let before = Meter::read(&load, &pids)?;
            let mut timed = propagate(&mut pairs, args).await.context("propagation under load")?;
            timed.load = Some(Meter::read(&load, &pids)?.since(&before));
            load.stop().await.context("propagation under load: writers")?;
            Some(timed)
        };
        for server in &mut servers {
            server.stop().await?;
        }
        anyhow::Ok(Run { nodes, throughput, idle, loaded })
    }
    .await;
    if let Err(e) = drop_scratch_postgres(&args.postgres, &url).await {
        eprintln!("could not drop the scratch database {url}: {e:#}");
    }
    run
}

async fn drop_scratch_postgres(admin_url: &str, url: &str) -> anyhow::Result<()> {
    let name = url.rsplit('/').next().context("a database name")?;
    anyhow::ensure!(name.starts_with("fieldbook_bench_"), "not a scratch database: {name}");
    let mut admin = admin_url.parse::<sqlx::postgres::PgConnectOptions>()?.connect().await.context("PostgreSQL")?;
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
        .execute(&mut admin)
        .await?;
    Ok(())
}

/// One small change to a record (a field set), made by the peer holding it; returns the
/// peer's heads after it.
fn edit(peer: &mut Peer, id: DocumentId, i: u64) -> anyhow::Result<Vec<ChangeHash>> {
    let doc = peer.docs.get_mut(&id).context("unknown doc")?.doc_mut();
    let mut tx = doc.transaction();
    tx.put(ROOT, "purpose", format!("edit {i}"))?;
    tx.commit();
    Ok(doc.get_heads())
}

/// Pumps until the server says it holds (has committed) everything we have.
async fn acknowledged(peer: &mut Peer, id: DocumentId) -> anyhow::Result<()> {
    let waiting = async {
        while !peer.in_sync(&id) {
            peer.pump().await?;
        }
        anyhow::Ok(())
    };
    tokio::time::timeout(ACK_TIMEOUT, waiting)
        .await
        .map_err(|_| anyhow::anyhow!("a change was not acknowledged within {ACK_TIMEOUT:?}"))?
}

/// Writers pushing changes on a thread (and runtime) of their own, so that timing
/// propagation on the main thread beside them measures the servers, not a queue in here.
struct Load {
    acked: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<anyhow::Result<()>>>,
}

impl Load {
    /// Connects the writers (writer `w` to node `w % nodes`), has each create its record,
    /// and returns once all have been acknowledged and the changes begin: each writer's
    /// next as soon as the last is acknowledged, or one every `pace`.
    async fn start(urls: &[String], writers: usize, pace: Option<Duration>) -> anyhow::Result<Self> {
        let acked = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (ready, started) = tokio::sync::oneshot::channel();
        let (urls, counter, stopping) = (urls.to_vec(), acked.clone(), stop.clone());
        let thread = std::thread::Builder::new().name("cluster-load".into()).spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(write_until_stopped(urls, writers, pace, counter, stopping, ready))
        })?;
        let mut load = Self { acked, stop, thread: Some(thread) };
        if started.await.is_err() {
            // The thread ended before the writers were ready: its error says why.
            load.join().await?;
            bail!("the writers stopped before they started");
        }
        Ok(load)
    }

    fn acked(&self) -> u64 {
        self.acked.load(Ordering::Relaxed)
    }

    /// Stops the writers (each finishes the change it has in flight) and reports any failure.
    async fn stop(mut self) -> anyhow::Result<()> {
        self.stop.store(true, Ordering::Relaxed);
        self.join().await
    }

    async fn join(&mut self) -> anyhow::Result<()> {
        let Some(thread) = self.thread.take() else { return Ok(()) };
        tokio::task::spawn_blocking(move || thread.join())
            .await?
            .map_err(|_| anyhow::anyhow!("the writers' thread panicked"))?
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

async fn write_until_stopped(
    urls: Vec<String>,
    writers: usize,
    pace: Option<Duration>,
    acked: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    ready: tokio::sync::oneshot::Sender<()>,
) -> anyhow::Result<()> {
    let mut peers = Vec::with_capacity(writers);
    for w in 0..writers {
        let node = w % urls.len();
        let mut peer = Peer::connect(&urls[node]).await.with_context(|| format!("writer {w} on node {node}"))?;
        let id = DocumentId::random();
        peer.open(id, observation(w)).await?;
        peers.push((w, node, peer, id));
    }
    for (w, node, peer, _) in &mut peers {
        peer.settle().await.with_context(|| format!("writer {w} on node {node}: creating its record"))?;
    }
    let _ = ready.send(());
    let tasks: Vec<_> = peers
        .into_iter()
        .map(|(w, node, mut peer, id)| {
            let (acked, stop) = (acked.clone(), stop.clone());
            tokio::spawn(async move {
                // Paced writers start spread over one interval, not all at once.
                let mut ticker = pace.map(|every| {
                    let first = tokio::time::Instant::now() + every.mul_f64(w as f64 / writers as f64);
                    let mut ticker = tokio::time::interval_at(first, every);
                    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    ticker
                });
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    if let Some(ticker) = &mut ticker {
                        ticker.tick().await;
                    }
                    edit(&mut peer, id, i)?;
                    peer.flush(id).await?;
                    acknowledged(&mut peer, id).await.with_context(|| format!("writer {w} on node {node}"))?;
                    acked.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                }
                anyhow::Ok(())
            })
        })
        .collect();
    for task in tasks {
        task.await.context("writer task")??;
    }
    Ok(())
}

/// Counters read at the start and end of a window.
struct Meter {
    at: Instant,
    acked: u64,
    servers: u64,
    bench: u64,
    /// Every PostgreSQL process's CPU ticks, by pid (backends come and go).
    postgres: HashMap<u32, u64>,
    machine_busy: u64,
    machine_total: u64,
}

impl Meter {
    fn read(load: &Load, server_pids: &[u32]) -> anyhow::Result<Self> {
        let servers = server_pids.iter().map(|&pid| cpu_ticks(pid)).sum::<anyhow::Result<u64>>()?;
        let (machine_busy, machine_total) = machine_ticks()?;
        Ok(Self {
            at: Instant::now(),
            acked: load.acked(),
            servers,
            bench: cpu_ticks(std::process::id())?,
            postgres: postgres_ticks(),
            machine_busy,
            machine_total,
        })
    }

    fn since(&self, start: &Meter) -> Window {
        let seconds = self.at.duration_since(start.at).as_secs_f64();
        let changes = self.acked - start.acked;
        let cores = |ticks: u64| ticks as f64 / TICKS_PER_SECOND / seconds;
        let server_ticks = self.servers - start.servers;
        let postgres_ticks: u64 = self
            .postgres
            .iter()
            .map(|(pid, ticks)| ticks.saturating_sub(start.postgres.get(pid).copied().unwrap_or(0)))
            .sum();
        let bench_ticks = self.bench - start.bench;
        let busy_ticks = self.machine_busy - start.machine_busy;
        let per_change = |ticks: u64| (changes > 0).then(|| ticks as f64 / TICKS_PER_SECOND * 1e6 / changes as f64);
        Window {
            seconds,
            changes,
            rate: changes as f64 / seconds,
            server_cores: cores(server_ticks),
            server_us_per_change: per_change(server_ticks),
            postgres_cores: cores(postgres_ticks),
            postgres_us_per_change: per_change(postgres_ticks),
            bench_cores: cores(bench_ticks),
            other_cores: cores(busy_ticks.saturating_sub(server_ticks + postgres_ticks + bench_ticks)),
            machine_busy: busy_ticks as f64 / (self.machine_total - start.machine_total).max(1) as f64,
        }
    }
}

/// CPU time a process has used so far, all its threads, in ticks.
fn cpu_ticks(pid: u32) -> anyhow::Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).with_context(|| format!("process {pid}"))?;
    stat_ticks(&stat).with_context(|| format!("/proc/{pid}/stat"))
}

/// utime + stime from a `/proc/<pid>/stat` line.
fn stat_ticks(stat: &str) -> anyhow::Result<u64> {
    // After the command name (in parentheses): state is field 3, utime 14, stime 15.
    let fields: Vec<&str> = stat.rsplit_once(')').context("no command name")?.1.split_whitespace().collect();
    anyhow::ensure!(fields.len() > 12, "too few fields");
    Ok(fields[11].parse::<u64>()? + fields[12].parse::<u64>()?)
}

/// CPU ticks so far of every process named `postgres` on this machine (the server and its
/// backends), by pid; empty if PostgreSQL runs elsewhere.
fn postgres_ticks() -> HashMap<u32, u64> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return HashMap::new() };
    entries
        .flatten()
        .filter_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let (head, _) = stat.rsplit_once(')')?;
            (head.split_once('(')?.1 == "postgres").then_some(())?;
            Some((pid, stat_ticks(&stat).ok()?))
        })
        .collect()
}

/// The machine's busy and total CPU ticks so far, all cores.
fn machine_ticks() -> anyhow::Result<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat")?;
    let cpu: Vec<u64> = stat
        .lines()
        .next()
        .context("/proc/stat")?
        .split_whitespace()
        .skip(1)
        .take(8) // user nice system idle iowait irq softirq steal
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    let total: u64 = cpu.iter().sum();
    Ok((total - cpu[3] - cpu.get(4).copied().unwrap_or(0), total))
}

/// What one throughput window saw.
struct Window {
    seconds: f64,
    changes: u64,
    rate: f64,
    /// The nodes' CPU time (all nodes) per second of the window.
    server_cores: f64,
    server_us_per_change: Option<f64>,
    postgres_cores: f64,
    postgres_us_per_change: Option<f64>,
    bench_cores: f64,
    /// Busy cores not accounted for by the nodes, PostgreSQL or this bench: other work on
    /// the machine, competing with the benchmark.
    other_cores: f64,
    /// The fraction of all the machine's cores that were busy (anything).
    machine_busy: f64,
}

impl Window {
    fn json(&self) -> Value {
        json!({
            "seconds": self.seconds, "changes": self.changes, "changes_per_second": self.rate,
            "server_cpu_cores": self.server_cores, "server_cpu_us_per_change": self.server_us_per_change,
            "postgres_cpu_cores": self.postgres_cores, "postgres_cpu_us_per_change": self.postgres_us_per_change,
            "bench_cpu_cores": self.bench_cores, "other_cpu_cores": self.other_cores,
            "machine_busy": self.machine_busy,
        })
    }
}

/// A writer on one node and a follower on the next (the same one with a single node),
/// both following one record of the writer's.
struct Pair {
    writer: Peer,
    follower: Peer,
    id: DocumentId,
}

impl Pair {
    /// One pair per node as the writer's: node i writes, node (i + 1) % N follows.
    async fn all(urls: &[String]) -> anyhow::Result<Vec<Pair>> {
        let mut pairs = Vec::with_capacity(urls.len());
        for from in 0..urls.len() {
            let to = (from + 1) % urls.len();
            let id = DocumentId::random();
            let mut writer = Peer::connect(&urls[from]).await?;
            writer.open(id, observation(1_000_000 + from)).await?;
            writer.settle().await.with_context(|| format!("the writer on node {from} creating its record"))?;
            let mut follower = Peer::connect(&urls[to]).await?;
            follower.open(id, Automerge::new()).await?;
            follower
                .settle()
                .await
                .with_context(|| format!("the follower on node {to} fetching the record written on node {from}"))?;
            pairs.push(Pair { writer, follower, id });
        }
        Ok(pairs)
    }
}

/// One propagation phase: `samples` changes, taking turns over the pairs.
struct Propagation {
    cross_node: bool,
    requested: usize,
    /// Milliseconds from sending each change that arrived to its arrival, sorted.
    latencies: Vec<f64>,
    missed: usize,
    not_attempted: usize,
    timeout_ms: u64,
    /// The writers' load behind it, if any.
    load: Option<Window>,
}

impl Propagation {
    /// The `q` quantile of every requested change's latency, a missing change counting as
    /// slower than any; `None` when it falls on a missing one.
    fn quantile(&self, q: f64) -> Option<f64> {
        quantile(&self.latencies, self.requested, q)
    }

    fn json(&self) -> Value {
        json!({
            "cross_node": self.cross_node, "samples": self.requested, "received": self.latencies.len(),
            "missed": self.missed, "not_attempted": self.not_attempted, "timeout_ms": self.timeout_ms,
            "p50_ms": self.quantile(0.50), "p99_ms": self.quantile(0.99), "max_ms": self.latencies.last(),
            "load": self.load.as_ref().map(Window::json),
        })
    }

    fn describe(&self) -> String {
        let received = self.latencies.len();
        let mut line = format!(
            "p50 {}, p99 {} ({received} of {} arrived",
            ms(self.quantile(0.50)),
            ms(self.quantile(0.99)),
            self.requested
        );
        if received < self.requested {
            line.push_str(&format!(
                "; MISSING {}: {} not within {} ms",
                self.requested - received,
                self.missed,
                self.timeout_ms
            ));
            if self.not_attempted > 0 {
                line.push_str(&format!(", then gave up: {} not attempted", self.not_attempted));
            }
            if self.cross_node && received == 0 {
                line.push_str("; no change reached another node's follower: is cross-node fan-out running?");
            }
        }
        line.push(')');
        line
    }
}

fn quantile(sorted: &[f64], requested: usize, q: f64) -> Option<f64> {
    let at = ((requested as f64 * q).ceil() as usize).saturating_sub(1);
    sorted.get(at).copied()
}

fn ms(value: Option<f64>) -> String {
    value.map_or_else(|| "missing".into(), |v| format!("{v:.1} ms"))
}

async fn propagate(pairs: &mut [Pair], args: &ClusterArgs) -> anyhow::Result<Propagation> {
    let timeout = Duration::from_millis(args.sample_timeout_ms);
    let mut result = Propagation {
        cross_node: pairs.len() > 1,
        requested: args.samples,
        latencies: Vec::with_capacity(args.samples),
        missed: 0,
        not_attempted: 0,
        timeout_ms: args.sample_timeout_ms,
        load: None,
    };
    let mut misses_in_a_row = 0;
    let turns = pairs.len();
    for k in 0..args.samples {
        if misses_in_a_row >= args.give_up_after {
            result.not_attempted = args.samples - k;
            break;
        }
        let Pair { writer, follower, id } = &mut pairs[k % turns];
        let id = *id;
        let target = edit(writer, id, k as u64)?;
        let sent = Instant::now();
        writer.flush(id).await?;
        // Arrived once the follower holds the change (a late, earlier one does not count).
        let arrived = async {
            while !target.iter().all(|h| follower.docs[&id].doc().get_change_by_hash(h).is_some()) {
                follower.pump().await?;
            }
            anyhow::Ok(())
        };
        match tokio::time::timeout(timeout, arrived).await {
            Ok(done) => {
                done.context("the follower")?;
                result.latencies.push(sent.elapsed().as_secs_f64() * 1000.0);
                misses_in_a_row = 0;
            }
            Err(_) => {
                result.missed += 1;
                misses_in_a_row += 1;
            }
        }
        // The writer's change must be committed before the next, arrived or not.
        acknowledged(writer, id).await.context("the timed writer")?;
        tokio::time::sleep(Duration::from_millis(args.spacing_ms)).await;
    }
    result.latencies.sort_by(f64::total_cmp);
    Ok(result)
}

/// Everything one run at one node count measured.
struct Run {
    nodes: usize,
    throughput: Window,
    idle: Propagation,
    loaded: Option<Propagation>,
}

impl Run {
    fn print(&self, number: usize, args: &ClusterArgs) {
        let t = &self.throughput;
        println!(
            "run {number}: {:.0} committed changes/s ({} in {:.1} s, {} writers over {} node(s)); CPU per change: nodes \
             {}, PostgreSQL {}; cores busy: nodes {:.2}, PostgreSQL {:.2}, bench {:.2}, anything else {:.2} \
             (machine {:.0}% busy)",
            t.rate,
            t.changes,
            t.seconds,
            args.writers,
            self.nodes,
            micros(t.server_us_per_change),
            micros(t.postgres_us_per_change),
            t.server_cores,
            t.postgres_cores,
            t.bench_cores,
            t.other_cores,
            t.machine_busy * 100.0
        );
        if t.other_cores > 0.25 {
            println!(
                "       WARNING: {:.2} cores were busy with other work on this machine during the window: this run's \
                 figures are not reliable",
                t.other_cores
            );
        }
        let path = if self.nodes > 1 { "cross-node" } else { "same node" };
        println!("       propagation ({path}), idle: {}", self.idle.describe());
        if let Some(loaded) = &self.loaded {
            let rate = loaded.load.as_ref().map_or(0.0, |w| w.rate);
            println!("       propagation ({path}), under load ({rate:.0} changes/s): {}", loaded.describe());
        }
    }

    fn json(&self) -> Value {
        json!({
            "throughput": self.throughput.json(),
            "propagation_idle": self.idle.json(),
            "propagation_under_load": self.loaded.as_ref().map(Propagation::json),
        })
    }
}

/// The median of each figure over a node count's runs.
struct Summary {
    rate: f64,
    rates: Vec<f64>,
    server_us_per_change: Option<f64>,
    server_cores: f64,
    postgres_us_per_change: Option<f64>,
    other_cores: f64,
    machine_busy: f64,
    idle: PhaseSummary,
    loaded: Option<PhaseSummary>,
}

/// A propagation phase over the runs: median p50 and p99 (a run whose quantile is missing
/// counts as slowest), and every sample counted.
struct PhaseSummary {
    cross_node: bool,
    p50: Option<f64>,
    p99: Option<f64>,
    received: usize,
    requested: usize,
    load_rate: Option<f64>,
}

impl PhaseSummary {
    fn of<'a>(phases: impl Iterator<Item = &'a Propagation> + Clone) -> Option<Self> {
        let first = phases.clone().next()?;
        Some(Self {
            cross_node: first.cross_node,
            p50: median_or_missing(phases.clone().map(|p| p.quantile(0.50))),
            p99: median_or_missing(phases.clone().map(|p| p.quantile(0.99))),
            received: phases.clone().map(|p| p.latencies.len()).sum(),
            requested: phases.clone().map(|p| p.requested).sum(),
            load_rate: median(phases.filter_map(|p| p.load.as_ref().map(|w| w.rate))),
        })
    }

    fn json(&self) -> Value {
        json!({
            "cross_node": self.cross_node, "p50_ms": self.p50, "p99_ms": self.p99,
            "received": self.received, "samples": self.requested, "load_changes_per_second": self.load_rate,
            "p99_target_met": self.cross_node.then(|| self.p99.is_some_and(|p| p < P99_TARGET_MS)),
        })
    }

    fn cell(&self) -> String {
        format!("{} / {} ({}/{})", short(self.p50), short(self.p99), self.received, self.requested)
    }
}

fn micros(value: Option<f64>) -> String {
    value.map_or_else(|| "-".into(), |us| format!("{us:.0} µs"))
}

fn short(value: Option<f64>) -> String {
    value.map_or_else(|| "missing".into(), |v| format!("{v:.1}"))
}

impl Summary {
    fn of(runs: &[Run]) -> Self {
        let rates: Vec<f64> = runs.iter().map(|r| r.throughput.rate).collect();
        Self {
            rate: median(rates.iter().copied()).expect("at least one run"),
            rates,
            server_us_per_change: median(runs.iter().filter_map(|r| r.throughput.server_us_per_change)),
            server_cores: median(runs.iter().map(|r| r.throughput.server_cores)).expect("at least one run"),
            postgres_us_per_change: median(runs.iter().filter_map(|r| r.throughput.postgres_us_per_change)),
            other_cores: median(runs.iter().map(|r| r.throughput.other_cores)).expect("at least one run"),
            machine_busy: median(runs.iter().map(|r| r.throughput.machine_busy)).expect("at least one run"),
            idle: PhaseSummary::of(runs.iter().map(|r| &r.idle)).expect("at least one run"),
            loaded: PhaseSummary::of(runs.iter().filter_map(|r| r.loaded.as_ref())),
        }
    }

    /// `1 − rate / reference rate`, and the same for CPU per change (`cost / reference − 1`).
    fn overheads(&self, reference: Option<&Summary>) -> (Option<f64>, Option<f64>) {
        let Some(reference) = reference else { return (None, None) };
        let rate = 1.0 - self.rate / reference.rate;
        let cpu =
            self.server_us_per_change.zip(reference.server_us_per_change).map(|(ours, theirs)| ours / theirs - 1.0);
        (Some(rate), cpu)
    }

    fn json(&self, reference: Option<&Summary>) -> Value {
        let (overhead, cpu_overhead) = self.overheads(reference);
        json!({
            "changes_per_second": self.rate,
            "changes_per_second_runs": self.rates,
            "overhead_vs_1_node": overhead,
            "overhead_target_met": overhead.map(|o| o < OVERHEAD_TARGET),
            "server_cpu_us_per_change": self.server_us_per_change,
            "server_cpu_per_change_vs_1_node": cpu_overhead,
            "server_cpu_cores": self.server_cores,
            "postgres_cpu_us_per_change": self.postgres_us_per_change,
            "other_cpu_cores": self.other_cores,
            "machine_busy": self.machine_busy,
            "propagation_idle": self.idle.json(),
            "propagation_under_load": self.loaded.as_ref().map(PhaseSummary::json),
        })
    }
}

fn print_table(summaries: &[(usize, Summary)], reference: Option<&Summary>, args: &ClusterArgs) {
    println!();
    println!(
        "medians of {} run(s); {} writers in all at every node count; propagation p50 / p99 in ms (arrived/timed, all runs)",
        args.runs, args.writers
    );
    println!(
        "{:>5} | {:>28} | {:>8} | {:>10} | {:>9} | {:>10} | {:>5} | {:>26} | {:>26} | {:>7}",
        "nodes",
        "committed changes/s (runs)",
        "overhead",
        "nodes CPU",
        "vs 1 node",
        "PG CPU",
        "else",
        "propagation, idle",
        "propagation, under load",
        "load/s"
    );
    for (nodes, s) in summaries {
        let (overhead, cpu_overhead) = s.overheads(reference);
        let runs = s.rates.iter().map(|r| format!("{r:.0}")).collect::<Vec<_>>().join(", ");
        let percent = |v: Option<f64>| v.map_or("-".into(), |v| format!("{:+.0}%", v * 100.0));
        println!(
            "{nodes:>5} | {:>28} | {:>8} | {:>10} | {:>9} | {:>10} | {:>5.2} | {:>26} | {:>26} | {:>7}",
            format!("{:.0} ({runs})", s.rate),
            overhead.map_or("-".into(), |o| format!("{:.0}%", o * 100.0)),
            micros(s.server_us_per_change),
            percent(cpu_overhead),
            micros(s.postgres_us_per_change),
            s.other_cores,
            s.idle.cell(),
            s.loaded.as_ref().map_or("-".into(), PhaseSummary::cell),
            s.loaded.as_ref().and_then(|l| l.load_rate).map_or("-".into(), |r| format!("{r:.0}")),
        );
    }
    println!(
        "(overhead: 1 − rate / the 1-node rate. Nodes / PG CPU: CPU time per committed change, all nodes / all \
         PostgreSQL processes: the cost of the path itself, free of the CPU contention the rate suffers when \
         several nodes share few cores. else: cores busy with anything but the nodes, PostgreSQL and this bench, \
         i.e. other work competing. Propagation with N > 1: writer and follower on different nodes; N = 1: the \
         same node.)"
    );
    for (nodes, s) in summaries.iter().filter(|(n, _)| *n > 1) {
        let (overhead, _) = s.overheads(reference);
        let verdict = |met: bool| if met { "met" } else { "NOT met" };
        let throughput = overhead.map_or("no 1-node reference".into(), |o| {
            format!("overhead {:.0}% ({} < {:.0}%)", o * 100.0, verdict(o < OVERHEAD_TARGET), OVERHEAD_TARGET * 100.0)
        });
        let p99 = |phase: &PhaseSummary| match phase.p99 {
            Some(p) => format!("p99 {p:.1} ms ({})", verdict(p < P99_TARGET_MS)),
            None => format!("p99 missing: {} of {} changes arrived (NOT met)", phase.received, phase.requested),
        };
        let mut line = format!("target, {nodes} nodes: {throughput}; cross-node propagation idle {}", p99(&s.idle));
        if let Some(loaded) = &s.loaded {
            line.push_str(&format!(", under load {}", p99(loaded)));
        }
        println!("{line} (targets: overhead < {:.0}%, p99 < {P99_TARGET_MS:.0} ms)", OVERHEAD_TARGET * 100.0);
    }
}

/// The median with `None` (missing) as slower than any figure; `None` if it lands there.
fn median_or_missing(values: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    median(values.map(|v| v.unwrap_or(f64::INFINITY))).filter(|m| m.is_finite())
}
