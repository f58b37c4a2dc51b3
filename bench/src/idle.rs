//! Idle connections: many joined sync connections held open at once. Reports the server's
//! memory per connection, how fast `/readyz` answers while they are held, and that a change
//! still syncs between two other devices meanwhile.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use automerge::Automerge;
use fieldbook_sync_core::{DocumentId, Message, PROTOCOL_VERSION, PeerMetadata};
use futures_util::{FutureExt, SinkExt, StreamExt, stream};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::peer::{Peer, observation};
use crate::servers::{FieldbookServer, ServerProcess};
use crate::stats::{Runs, quantile};

/// The targets the issue set: memory per idle connection and `/readyz` while they are held.
const KIB_PER_CONNECTION_TARGET: f64 = 32.0;
const READYZ_TARGET_MS: f64 = 50.0;

#[derive(clap::Args)]
pub struct IdleArgs {
    /// Joined connections held at once.
    #[arg(long, default_value_t = 10_000)]
    connections: usize,
    /// Runs, each on a fresh server.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Where to write the JSON results.
    #[arg(long, default_value = "bench-results/idle.json")]
    out: String,
}

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub async fn run(args: IdleArgs) -> anyhow::Result<()> {
    let (mut per_connection, mut readyz_p50, mut readyz_max, mut sync_ms) =
        (Runs::default(), Runs::default(), Runs::default(), Runs::default());
    let mut runs = Vec::new();
    for run in 1..=args.runs {
        let mut server = FieldbookServer::start(None).await?;
        // Let start-up settle, then take the baseline.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let before_kib = server.rss()?;
        let opened = Instant::now();
        let mut sockets = open_joined(&server.ws_url(), args.connections).await?;
        let open_seconds = opened.elapsed().as_secs_f64();
        tokio::time::sleep(Duration::from_secs(2)).await;
        let held_kib = server.rss()?;
        let kib_each = (held_kib.saturating_sub(before_kib)) as f64 / args.connections as f64;

        let readyz = readyz_latencies(&server.http_url(), 50).await?;
        let sync = sync_between_two_devices(&server.ws_url()).await?;
        let closed = still_closed(&mut sockets);
        if closed > 0 {
            bail!("{closed} of the idle connections were closed while held");
        }
        let (p50, max) = (quantile(&readyz, 0.5).unwrap_or(f64::NAN), quantile(&readyz, 1.0).unwrap_or(f64::NAN));
        println!(
            "run {run}: {} joined in {open_seconds:.1} s; server RSS {before_kib} → {held_kib} KiB ({kib_each:.1} KiB each); \
             /readyz p50 {p50:.2} ms, max {max:.2} ms; a change synced between two devices in {sync:.1} ms",
            args.connections
        );
        per_connection.push(kib_each);
        readyz_p50.push(p50);
        readyz_max.push(max);
        sync_ms.push(sync);
        runs.push(json!({
            "rss_kib_before": before_kib, "rss_kib_held": held_kib, "kib_per_connection": kib_each,
            "open_seconds": open_seconds, "readyz_ms": readyz, "sync_ms": sync,
        }));
        drop(sockets);
        server.stop().await?;
    }

    println!(
        "{} idle connections: {} KiB each (target ≤ {KIB_PER_CONNECTION_TARGET}); /readyz max {} ms (target < {READYZ_TARGET_MS}); \
         sync while held {} ms — medians (min–max) of {} runs",
        args.connections,
        per_connection.cell(1),
        readyz_max.cell(2),
        sync_ms.cell(1),
        args.runs
    );
    let mut results = serde_json::Map::new();
    results.insert("connections".into(), json!(args.connections));
    results.insert("kib_per_connection".into(), per_connection.json());
    results.insert("kib_per_connection_target_met".into(), json!(per_connection.max() <= KIB_PER_CONNECTION_TARGET));
    results.insert("readyz_p50_ms".into(), readyz_p50.json());
    results.insert("readyz_max_ms".into(), readyz_max.json());
    results.insert("readyz_target_met".into(), json!(readyz_max.max() < READYZ_TARGET_MS));
    results.insert("sync_while_held_ms".into(), sync_ms.json());
    results.insert("runs".into(), json!(runs));
    crate::write_results(&args.out, results)
}

/// Opens `count` connections, each sending `join` and waiting for the server's `peer`.
async fn open_joined(url: &str, count: usize) -> anyhow::Result<Vec<Socket>> {
    // Our side of each connection stays small too: nothing is read while they idle.
    let config = WebSocketConfig::default().read_buffer_size(4096).write_buffer_size(0);
    stream::iter(0..count)
        .map(|i| async move {
            let (mut socket, _) = tokio_tungstenite::connect_async_with_config(url, Some(config), true)
                .await
                .with_context(|| format!("connection {i}"))?;
            let join = Message::Join {
                sender_id: format!("idle-{i}"),
                peer_metadata: Some(PeerMetadata { storage_id: None, is_ephemeral: true }),
                supported_protocol_versions: vec![PROTOCOL_VERSION.into()],
            };
            socket.send(WsMessage::Binary(join.encode().into())).await?;
            match socket.next().await {
                Some(Ok(WsMessage::Binary(b))) if matches!(Message::decode(&b)?, Message::Peer { .. }) => Ok(socket),
                other => bail!("connection {i}: expected the server's peer message, got {other:?}"),
            }
        })
        .buffer_unordered(100)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect()
}

/// Connections the server has closed (or that failed) since they were opened.
fn still_closed(sockets: &mut [Socket]) -> usize {
    sockets
        .iter_mut()
        .map(|s| s.next().now_or_never())
        .filter(|next| matches!(next, Some(None | Some(Err(_)) | Some(Ok(WsMessage::Close(_))))))
        .count()
}

/// `samples` sequential `GET /readyz` answers, in milliseconds; each must be 200.
async fn readyz_latencies(base: &str, samples: usize) -> anyhow::Result<Vec<f64>> {
    let url = format!("{base}/readyz");
    tokio::task::spawn_blocking(move || {
        let agent = ureq::Agent::new_with_defaults();
        (0..samples)
            .map(|_| {
                let start = Instant::now();
                let response = agent.get(&url).call().context("/readyz")?;
                anyhow::ensure!(response.status() == 200, "/readyz answered {}", response.status());
                Ok(start.elapsed().as_secs_f64() * 1000.0)
            })
            .collect()
    })
    .await?
}

/// One device creates a record and another pulls it, both on new connections; returns the
/// milliseconds from the first device connecting to the second having the record.
async fn sync_between_two_devices(url: &str) -> anyhow::Result<f64> {
    let start = Instant::now();
    let id = DocumentId::random();
    let mut author = Peer::connect(url).await?;
    author.open(id, observation(0)).await?;
    author.settle().await.context("the author's record was not stored while the idle connections were held")?;
    let mut reader = Peer::connect(url).await?;
    reader.open(id, Automerge::new()).await?;
    reader.settle().await.context("the record did not reach a second device while the idle connections were held")?;
    Ok(start.elapsed().as_secs_f64() * 1000.0)
}
