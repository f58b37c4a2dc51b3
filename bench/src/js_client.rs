//! The stock JS client (`@automerge/automerge-repo` 2.5.6, what `clients/web` runs) against
//! Fieldbook and the stock Node server, side by side in each run, with the client's own
//! floor: the same client importing the same records from local binaries, no network.
//!
//! Per run and server: a fresh device pulls 1,000 and 5,000 records (server restarted
//! first, so nothing is cached), asking for all at once as the stock client's idiom does and
//! 64 at a time as `clients/web` opens a user's records; one device uploads 1,000 new records
//! (until the server's heads match); and a change goes from one device to another through the
//! server, with the 1,000 records open on both. Pulls and uploads also report how much of the
//! time the client's event loop was busy: near 100%, the client never waited for the server.
//! Each pull and upload is also timed against a server that does no work
//! (`tests/js/replay-server.mjs`): it answers from a recording of Fieldbook's answers the
//! moment each message arrives, so that time is what Fieldbook's answers cost the client
//! alone; what Fieldbook takes beyond it is the server's. The client is
//! `tests/js/bench-client.mjs`; each measurement is a fresh Node.js process.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use fieldbook_sync_core::DocumentId;
use serde_json::{Value, json};

use crate::peer::{Peer, observation};
use crate::servers::{FieldbookServer, NodeServer, ReplayServer, ServerProcess};
use crate::stats::Runs;

/// The targets: a pull within this factor of the client's floor; uploads this many
/// times faster than the Node server; propagation p99 under this many milliseconds.
const PULL_VS_FLOOR_TARGET: f64 = 1.25;
const UPLOAD_SPEEDUP_TARGET: f64 = 2.0;
const PROPAGATION_P99_TARGET_MS: f64 = 50.0;

#[derive(clap::Args)]
pub struct JsClientArgs {
    /// Record counts a fresh device pulls (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "1000,5000")]
    pull: Vec<usize>,
    /// Finds pending at once in the windowed pulls (`clients/web` OPEN_WINDOW); 0: none.
    #[arg(long, default_value_t = 64)]
    window: usize,
    /// Records one device uploads.
    #[arg(long, default_value_t = 1000)]
    upload: usize,
    /// Records open on both devices while changes propagate.
    #[arg(long, default_value_t = 1000)]
    open: usize,
    /// Changes timed for propagation, one after another.
    #[arg(long, default_value_t = 200)]
    rounds: usize,
    /// Runs; every figure is the median over them, with the spread.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    #[arg(long, default_value = "bench-results/js-client.json")]
    out: String,
}

/// One way of pulling: how many records, and how many finds pending at once (`None`: all).
#[derive(Clone, Copy)]
struct PullCase {
    records: usize,
    window: Option<usize>,
}

/// Every figure of the suite, per run; pull figures per server of [`WITH_REPLAY`] and
/// [`PullCase`], the floor per record count.
#[derive(Default)]
struct Figures {
    floor: Vec<Runs>,
    pull: [Vec<Runs>; 3],
    pull_cpu: [Vec<Runs>; 3],
    pull_busy: [Vec<Runs>; 3],
    first_record: [Vec<Runs>; 3],
    longest_silence: [Vec<Runs>; 3],
    pull_failures: [Vec<Vec<String>>; 3],
    /// Per server of [`WITH_REPLAY`].
    upload: [Runs; 3],
    upload_busy: [Runs; 3],
    p50: [Runs; 2],
    p99: [Runs; 2],
}

const SERVERS: [&str; 2] = ["fieldbook", "node"];
/// Pulls and uploads are timed against these: the two servers and the replay of Fieldbook's
/// answers (see the module docs).
const WITH_REPLAY: [&str; 3] = ["fieldbook", "node", "replay"];

pub async fn run(args: JsClientArgs) -> anyhow::Result<()> {
    let most = args.pull.iter().copied().chain([args.open]).max().unwrap_or(0);
    let dir = std::env::temp_dir().join(format!("fieldbook-bench-js-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir)?;
    let records: Vec<automerge::Automerge> = (0..most.max(args.upload)).map(observation).collect();
    let bins = |n: usize, name: &str| write_bins(&dir.join(name), &records[..n]);
    let upload_bins = bins(args.upload, "upload.bin")?;

    let mut fieldbook = FieldbookServer::start(None).await?;
    let mut node = NodeServer::start()?;
    let ids = [seed(&fieldbook.ws_url(), &records[..most]).await?, seed(&node.ws_url(), &records[..most]).await?];
    println!("seeded {most} records on both servers");
    let pulled = args.pull.iter().copied().max().unwrap_or(0);
    let replay = replay_of(&dir, &mut fieldbook, &ids[0][..pulled], args.window, &upload_bins).await?;
    println!("recorded Fieldbook's answers to a pull of {pulled} records and an upload of {}, to replay", args.upload);

    let windows = [None].into_iter().chain((args.window > 0).then_some(Some(args.window)));
    let cases: Vec<PullCase> =
        windows.flat_map(|window| args.pull.iter().map(move |&records| PullCase { records, window })).collect();
    let per_case = || vec![Runs::default(); cases.len()];
    let mut figures = Figures {
        floor: vec![Runs::default(); args.pull.len()],
        pull: std::array::from_fn(|_| per_case()),
        pull_cpu: std::array::from_fn(|_| per_case()),
        pull_busy: std::array::from_fn(|_| per_case()),
        first_record: std::array::from_fn(|_| per_case()),
        longest_silence: std::array::from_fn(|_| per_case()),
        pull_failures: std::array::from_fn(|_| vec![Vec::new(); cases.len()]),
        ..Figures::default()
    };
    for run in 1..=args.runs {
        for (p, &n) in args.pull.iter().enumerate() {
            let id_file = write_ids(&dir.join(format!("floor-{n}.ids")), &ids[0][..n])?;
            let floor =
                client(&["floor", "--bins", path(&bins(n, &format!("floor-{n}.bin"))?), "--ids", path(&id_file)])?;
            figures.floor[p].push(seconds(&floor)?);
        }
        for (c, case) in cases.iter().enumerate() {
            let n = case.records;
            for (s, server) in WITH_REPLAY.iter().enumerate() {
                // The replay answers with Fieldbook's recording, so for Fieldbook's ids.
                let (url, server_ids) = match s {
                    2 => (replay.ws_url(), &ids[0]),
                    _ => (restarted(s, &mut fieldbook, &mut node).await?, &ids[s]),
                };
                let id_file = write_ids(&dir.join(format!("{server}-{n}.ids")), &server_ids[..n])?;
                let mut command = vec!["pull", "--url", &url, "--ids", path(&id_file)];
                let window = case.window.map(|w| w.to_string());
                if let Some(window) = &window {
                    command.extend(["--window", window]);
                }
                let how = window.as_ref().map_or("all at once".to_owned(), |w| format!("{w} at a time"));
                // A pull the client gives up on (automerge-repo marks a record unavailable when
                // it has waited 60 s for it) counts as slower than any, and is reported.
                match client(&command) {
                    Ok(pull) => {
                        figures.pull[s][c].push(seconds(&pull)?);
                        figures.pull_cpu[s][c].push(number(&pull, "client_cpu_seconds")?);
                        figures.pull_busy[s][c].push(number(&pull, "client_busy")?);
                        figures.first_record[s][c].push(number(&pull, "first_document_seconds")?);
                        figures.longest_silence[s][c].push(number(&pull, "longest_silence_seconds")?);
                        println!(
                            "run {run}: {server}: fresh device pulled {n}, {how}, in {:.2} s (client busy {:.1}%)",
                            seconds(&pull)?,
                            100.0 * number(&pull, "client_busy")?
                        );
                    }
                    Err(e) => {
                        println!("run {run}: {server}: fresh device pulling {n}, {how}, failed: {e}");
                        figures.pull[s][c].push(f64::INFINITY);
                        figures.pull_failures[s][c].push(e.to_string());
                    }
                }
            }
        }
        for (s, server) in SERVERS.iter().enumerate() {
            let url = restarted(s, &mut fieldbook, &mut node).await?;
            let upload = client(&["upload", "--url", &url, "--bins", path(&upload_bins)])?;
            figures.upload[s].push(seconds(&upload)?);
            figures.upload_busy[s].push(number(&upload, "client_busy")?);
            let id_file = write_ids(&dir.join(format!("{server}-open.ids")), &ids[s][..args.open])?;
            let rounds = args.rounds.to_string();
            let propagation = client(&["propagation", "--url", &url, "--ids", path(&id_file), "--rounds", &rounds])?;
            figures.p50[s].push(number(&propagation, "p50_ms")?);
            figures.p99[s].push(number(&propagation, "p99_ms")?);
            println!(
                "run {run}: {server}: uploaded {} in {:.2} s; propagation p50 {:.1} ms, p99 {:.1} ms",
                args.upload,
                seconds(&upload)?,
                number(&propagation, "p50_ms")?,
                number(&propagation, "p99_ms")?
            );
        }
        let upload = client(&["upload", "--url", &replay.ws_url(), "--bins", path(&upload_bins)])?;
        figures.upload[2].push(seconds(&upload)?);
        figures.upload_busy[2].push(number(&upload, "client_busy")?);
        println!("run {run}: replay: uploaded {} in {:.2} s", args.upload, seconds(&upload)?);
    }
    fieldbook.stop().await?;
    node.stop().await?;
    drop(replay);
    let _ = std::fs::remove_dir_all(&dir);
    crate::write_results(&args.out, summarise(&args, &cases, &figures))
}

fn summarise(args: &JsClientArgs, cases: &[PullCase], f: &Figures) -> serde_json::Map<String, Value> {
    println!("\nmedians (min–max) of {} runs:", args.runs);
    let mut pulls = Vec::new();
    for (c, case) in cases.iter().enumerate() {
        let n = case.records;
        let floor = &f.floor[args.pull.iter().position(|&p| p == n).expect("a floor per record count")];
        let vs_floor = f.pull[0][c].median() / floor.median();
        let vs_node = f.pull[1][c].median() / f.pull[0][c].median();
        let vs_replay = f.pull[0][c].median() / f.pull[2][c].median();
        let replay_vs_floor = f.pull[2][c].median() / floor.median();
        let how = case.window.map_or("all at once".to_owned(), |w| format!("{w} at a time"));
        println!(
            "fresh device pulls {n}, {how}: Fieldbook {} s (client busy {}, longest silence {} s), Node {} s, \
             replay of Fieldbook's answers {} s, client floor {} s — {vs_floor:.2}× the floor \
             ({vs_replay:.2}× the replay, which is {replay_vs_floor:.2}× the floor), {vs_node:.2}× faster than Node",
            f.pull[0][c].cell(2),
            f.pull_busy[0][c].cell(3),
            f.longest_silence[0][c].cell(2),
            f.pull[1][c].cell(2),
            f.pull[2][c].cell(2),
            floor.cell(2)
        );
        pulls.push(json!({
            "records": n,
            "window": case.window,
            "client_floor_seconds": floor.json(),
            "fieldbook_seconds": f.pull[0][c].json(),
            "node_seconds": f.pull[1][c].json(),
            "replay_seconds": f.pull[2][c].json(),
            "fieldbook_first_record_seconds": f.first_record[0][c].json(),
            "node_first_record_seconds": f.first_record[1][c].json(),
            "fieldbook_client_cpu_seconds": f.pull_cpu[0][c].json(),
            "node_client_cpu_seconds": f.pull_cpu[1][c].json(),
            "fieldbook_client_busy": f.pull_busy[0][c].json(),
            "node_client_busy": f.pull_busy[1][c].json(),
            "replay_client_busy": f.pull_busy[2][c].json(),
            "fieldbook_longest_silence_seconds": f.longest_silence[0][c].json(),
            "node_longest_silence_seconds": f.longest_silence[1][c].json(),
            "fieldbook_failed_runs": f.pull_failures[0][c],
            "node_failed_runs": f.pull_failures[1][c],
            "replay_failed_runs": f.pull_failures[2][c],
            "fieldbook_vs_floor": vs_floor,
            "fieldbook_vs_replay": vs_replay,
            "replay_vs_floor": replay_vs_floor,
            "fieldbook_speedup_vs_node": vs_node,
            "target_met": vs_floor <= PULL_VS_FLOOR_TARGET && vs_node > 1.0,
        }));
    }
    let upload_speedup = f.upload[1].median() / f.upload[0].median();
    let upload_vs_replay = f.upload[0].median() / f.upload[2].median();
    println!(
        "one device uploads {}: Fieldbook {} s (client busy {}), Node {} s, replay of Fieldbook's answers {} s \
         — {upload_speedup:.2}× faster ({upload_vs_replay:.2}× the replay)",
        args.upload,
        f.upload[0].cell(2),
        f.upload_busy[0].cell(3),
        f.upload[1].cell(2),
        f.upload[2].cell(2)
    );
    println!(
        "propagation with {} open, {} rounds: Fieldbook p50 {} / p99 {} ms; Node p50 {} / p99 {} ms",
        args.open,
        args.rounds,
        f.p50[0].cell(1),
        f.p99[0].cell(1),
        f.p50[1].cell(1),
        f.p99[1].cell(1)
    );
    let mut results = serde_json::Map::new();
    results.insert("runs".into(), json!(args.runs));
    results
        .insert("client".into(), json!("@automerge/automerge-repo 2.5.6 (tests/js/bench-client.mjs), in-memory repo"));
    results.insert(
        "replay".into(),
        json!(
            "tests/js/replay-server.mjs answering from a recording of Fieldbook's answers, at once and doing no work"
        ),
    );
    results.insert("pull".into(), json!(pulls));
    results.insert(
        "upload".into(),
        json!({
            "records": args.upload,
            "fieldbook_seconds": f.upload[0].json(),
            "node_seconds": f.upload[1].json(),
            "replay_seconds": f.upload[2].json(),
            "fieldbook_client_busy": f.upload_busy[0].json(),
            "node_client_busy": f.upload_busy[1].json(),
            "replay_client_busy": f.upload_busy[2].json(),
            "fieldbook_speedup_vs_node": upload_speedup,
            "fieldbook_vs_replay": upload_vs_replay,
            "target_met": upload_speedup >= UPLOAD_SPEEDUP_TARGET,
        }),
    );
    results.insert(
        "propagation".into(),
        json!({
            "records_open": args.open,
            "rounds": args.rounds,
            "fieldbook_p50_ms": f.p50[0].json(),
            "fieldbook_p99_ms": f.p99[0].json(),
            "node_p50_ms": f.p50[1].json(),
            "node_p99_ms": f.p99[1].json(),
            "target_met": f.p99[0].median() < PROPAGATION_P99_TARGET_MS,
        }),
    );
    results
}

/// Restarts server `s` (0: Fieldbook, 1: Node), so nothing is cached; returns its URL.
async fn restarted(s: usize, fieldbook: &mut FieldbookServer, node: &mut NodeServer) -> anyhow::Result<String> {
    if s == 0 {
        fieldbook.restart().await?;
        Ok(fieldbook.ws_url())
    } else {
        node.restart().await?;
        Ok(node.ws_url())
    }
}

/// Records, untimed, Fieldbook's answers to a fresh device pulling `ids` (`window` at a time;
/// 0: all at once) and to a device uploading `upload_bins`, and starts a [`ReplayServer`] on them.
async fn replay_of(
    dir: &Path,
    fieldbook: &mut FieldbookServer,
    ids: &[DocumentId],
    window: usize,
    upload_bins: &Path,
) -> anyhow::Result<ReplayServer> {
    fieldbook.restart().await?;
    let url = fieldbook.ws_url();
    let id_file = write_ids(&dir.join("recorded.ids"), ids)?;
    let recordings = [dir.join("fieldbook-pull.jsonl"), dir.join("fieldbook-upload.jsonl")];
    let window = (window > 0).then(|| window.to_string());
    let mut pull = vec!["pull", "--url", &url, "--ids", path(&id_file), "--record", path(&recordings[0])];
    if let Some(window) = &window {
        pull.extend(["--window", window]);
    }
    client(&pull)?;
    client(&["upload", "--url", &url, "--bins", path(upload_bins), "--record", path(&recordings[1])])?;
    ReplayServer::start(&recordings)
}

/// Stores `records` on the server under new ids, through the protocol; returns the ids.
async fn seed(url: &str, records: &[automerge::Automerge]) -> anyhow::Result<Vec<DocumentId>> {
    let mut ids = Vec::with_capacity(records.len());
    for batch in records.chunks(500) {
        let mut peer = Peer::connect(url).await.context("seed: connect")?;
        for record in batch {
            let id = DocumentId::random();
            peer.open(id, record.clone()).await?;
            ids.push(id);
        }
        peer.settle().await.context("seeding")?;
    }
    Ok(ids)
}

/// Writes each record's `save()`, as a 4-byte big-endian length and the bytes.
fn write_bins(file: &Path, records: &[automerge::Automerge]) -> anyhow::Result<PathBuf> {
    let mut bytes = Vec::new();
    for record in records {
        let saved = record.save();
        bytes.extend_from_slice(&u32::try_from(saved.len())?.to_be_bytes());
        bytes.extend_from_slice(&saved);
    }
    std::fs::write(file, bytes)?;
    Ok(file.to_owned())
}

/// Writes one `automerge:` URL per line.
fn write_ids(file: &Path, ids: &[DocumentId]) -> anyhow::Result<PathBuf> {
    let lines: Vec<String> = ids.iter().map(DocumentId::url).collect();
    std::fs::write(file, lines.join("\n") + "\n")?;
    Ok(file.to_owned())
}

fn path(file: &Path) -> &str {
    file.to_str().expect("temp paths are UTF-8")
}

/// Runs the JS client once; returns its JSON line.
fn client(args: &[&str]) -> anyhow::Result<Value> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/js/bench-client.mjs");
    let output = Command::new("node").arg(script).args(args).output().context("running node")?;
    if !output.status.success() {
        bail!("bench-client {} failed: {}", args[0], String::from_utf8_lossy(&output.stderr));
    }
    let line = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(line.trim()).with_context(|| format!("bench-client {} printed {line:?}", args[0]))
}

fn number(result: &Value, field: &str) -> anyhow::Result<f64> {
    result[field].as_f64().with_context(|| format!("no {field} in {result}"))
}

fn seconds(result: &Value) -> anyhow::Result<f64> {
    number(result, "seconds")
}
