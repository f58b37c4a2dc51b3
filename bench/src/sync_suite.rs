//! The sync benchmark: a fresh device pulling N observation-sized documents, change
//! propagation between two connected devices (p50/p99), and the server's resident memory
//! with few and many stored documents — against Fieldbook and against the stock Node
//! automerge-repo server (Repo + NodeFS storage + WebSocket server adapter).

use std::time::{Duration, Instant};

use anyhow::Context;
use automerge::transaction::Transactable;
use automerge::{Automerge, ROOT};
use fieldbook_sync_core::DocumentId;
use serde_json::json;

use crate::peer::{Peer, observation};
use crate::servers::{FieldbookServer, NodeServer, ServerProcess};

#[derive(clap::Args)]
pub struct SyncArgs {
    /// Documents a fresh device pulls.
    #[arg(long, default_value_t = 1000)]
    docs: usize,
    /// Documents stored in total for the memory comparison.
    #[arg(long, default_value_t = 10_000)]
    stored: usize,
    /// Changes timed for propagation.
    #[arg(long, default_value_t = 300)]
    changes: usize,
    /// Skip the Node baseline.
    #[arg(long)]
    skip_node: bool,
    /// Only run the Node baseline.
    #[arg(long, conflicts_with = "skip_node")]
    only_node: bool,
    /// Where to write the JSON results.
    #[arg(long, default_value = "bench-results/sync.json")]
    out: String,
}

pub async fn run(args: SyncArgs) -> anyhow::Result<()> {
    let mut results = serde_json::Map::new();

    if !args.only_node {
        println!("== Fieldbook (SQLite) ==");
        let mut fieldbook = FieldbookServer::start(None).await?;
        let fb = run_suite(&mut fieldbook, &args, true).await?;
        results.insert("fieldbook".into(), fb);
    }

    if !args.skip_node {
        println!("== stock Node automerge-repo server ==");
        let mut node = NodeServer::start()?;
        let nd = run_suite(&mut node, &args, false).await?;
        if let Some(fb) = results.get("fieldbook") {
            let ratio = nd["pull_seconds"].as_f64().unwrap() / fb["pull_seconds"].as_f64().unwrap();
            results.insert("pull_speedup_vs_node".into(), json!(ratio));
            println!("fresh-device pull: Fieldbook is {ratio:.1}x faster than the Node server");
        }
        results.insert("node".into(), nd);
    }

    crate::write_results(&args.out, results)
}

async fn run_suite(
    server: &mut impl ServerProcess,
    args: &SyncArgs,
    measure_many_stored: bool,
) -> anyhow::Result<serde_json::Value> {
    // Seed the documents the fresh device will pull.
    let seed_start = Instant::now();
    let ids = push_new_documents(&server.ws_url(), 0, args.docs).await?;
    let seed_rate = args.docs as f64 / seed_start.elapsed().as_secs_f64();
    println!("seeded {} documents over the protocol ({seed_rate:.0} docs/s)", args.docs);

    // Cold server, then a fresh device pulls them all.
    server.restart().await?;
    let rss_idle_few = server.rss_kib()?;
    let pull_time = pull(&server.ws_url(), &ids).await?;
    let rss_after_pull_few = server.rss_kib()?;
    println!(
        "fresh device pulled {} documents in {:.3} s; server RSS {} KiB idle, {} KiB after",
        ids.len(),
        pull_time.as_secs_f64(),
        rss_idle_few,
        rss_after_pull_few
    );

    let propagation = propagation(&server.ws_url(), args.changes).await?;
    println!("propagation over {} changes: p50 {:.2} ms, p99 {:.2} ms", args.changes, propagation.0, propagation.1);

    let mut result = json!({
        "documents_pulled": ids.len(),
        "pull_seconds": pull_time.as_secs_f64(),
        "pull_docs_per_second": ids.len() as f64 / pull_time.as_secs_f64(),
        "seed_docs_per_second": seed_rate,
        "propagation_p50_ms": propagation.0,
        "propagation_p99_ms": propagation.1,
        "rss_kib_idle": rss_idle_few,
        "rss_kib_after_pull": rss_after_pull_few,
    });

    if measure_many_stored && args.stored > args.docs {
        let more = push_new_documents(&server.ws_url(), args.docs, args.stored - args.docs).await?;
        server.restart().await?;
        let rss_idle_many = server.rss_kib()?;
        let pull_many = pull(&server.ws_url(), &ids).await?;
        let rss_after_many = server.rss_kib()?;
        println!(
            "with {} stored: RSS {} KiB idle, {} KiB after pulling {} ({:.3} s)",
            args.stored,
            rss_idle_many,
            rss_after_many,
            ids.len(),
            pull_many.as_secs_f64()
        );
        result["stored_documents_many"] = json!(args.stored);
        result["rss_kib_idle_many_stored"] = json!(rss_idle_many);
        result["rss_kib_after_pull_many_stored"] = json!(rss_after_many);
        result["pull_seconds_many_stored"] = json!(pull_many.as_secs_f64());

        // Touch every stored document: the bounded cache must keep memory where it was.
        let all: Vec<DocumentId> = ids.iter().chain(&more).copied().collect();
        let pull_all = pull(&server.ws_url(), &all).await?;
        let rss_after_all = server.rss_kib()?;
        println!("pulled all {} in {:.3} s; server RSS {} KiB after", all.len(), pull_all.as_secs_f64(), rss_after_all);
        result["rss_kib_after_pull_all"] = json!(rss_after_all);
        result["pull_all_seconds"] = json!(pull_all.as_secs_f64());
    }
    server.stop().await?;
    Ok(result)
}

/// Pushes `count` new observation documents through one connection; returns their ids.
async fn push_new_documents(url: &str, offset: usize, count: usize) -> anyhow::Result<Vec<DocumentId>> {
    let mut ids = Vec::with_capacity(count);
    for batch in (0..count).collect::<Vec<_>>().chunks(500) {
        let mut peer = Peer::connect(url).await.context("seed: connect")?;
        for i in batch {
            let id = DocumentId::random();
            peer.open(id, observation(offset + i)).await?;
            ids.push(id);
        }
        peer.settle().await.context("seeding")?;
    }
    Ok(ids)
}

/// A fresh device (empty store) fetches every document; returns the wall time until all
/// are in sync.
async fn pull(url: &str, ids: &[DocumentId]) -> anyhow::Result<Duration> {
    let start = Instant::now();
    let mut peer = Peer::connect(url).await.context("pull: connect")?;
    for id in ids {
        peer.open(*id, Automerge::new()).await?;
    }
    peer.settle().await.context("pulling")?;
    Ok(start.elapsed())
}

/// Time from one device sending a change to another connected device applying it.
async fn propagation(url: &str, changes: usize) -> anyhow::Result<(f64, f64)> {
    let id = DocumentId::random();
    let mut author = Peer::connect(url).await?;
    author.open(id, observation(0)).await?;
    author.settle().await?;
    let mut reader = Peer::connect(url).await?;
    reader.open(id, Automerge::new()).await?;
    reader.settle().await?;

    let mut samples = Vec::with_capacity(changes);
    for i in 0..changes {
        let doc = author.docs.get_mut(&id).unwrap().doc_mut();
        let mut tx = doc.transaction();
        tx.put(ROOT, "purpose", format!("edit {i}"))?;
        tx.commit();
        let target = doc.get_heads();
        let start = Instant::now();
        author.flush(id).await?;
        let arrived = async {
            while reader.docs[&id].heads() != target {
                reader.pump().await?;
            }
            anyhow::Ok(())
        };
        tokio::time::timeout(Duration::from_secs(10), arrived).await.context("change did not arrive within 10 s")??;
        samples.push(start.elapsed().as_secs_f64() * 1000.0);
        // Let the author see the server's acknowledgement before its next change.
        while !author.in_sync(&id) {
            author.pump().await?;
        }
    }
    samples.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| samples[((samples.len() as f64 * q).ceil() as usize).saturating_sub(1).min(samples.len() - 1)];
    Ok((at(0.50), at(0.99)))
}
