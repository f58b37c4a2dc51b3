//! The web app in Chromium: a supervisor with many records opens it after a night offline.
//!
//! The records are on the server; in the evening the supervisor signs in on a fresh tablet
//! profile and the app fetches them all; overnight, offline, they edit a few; in the morning
//! the app opens online and every record must show "Stored on the server" again. The browser
//! side is `clients/web/tests/bench-morning.mjs` (playwright-core, Debian's Chromium), which
//! reads what the home screen shows; each run is a fresh browser profile on the same server.

use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, bail};
use fieldbook_sync_core::DocumentId;
use serde_json::{Value, json};

use crate::peer::Peer;
use crate::servers::{FieldbookServer, ServerProcess, repo_root};
use crate::stats::Runs;

const SUPERVISOR: &str = "sam";
const PRACTITIONER: &str = "pat";
const PASSWORD: &str = "bench-morning-password";

#[derive(clap::Args)]
pub struct WebMorningArgs {
    /// Records the supervisor made, all on the server.
    #[arg(long, default_value_t = 300)]
    records: usize,
    /// Records edited offline overnight.
    #[arg(long, default_value_t = 10)]
    offline_edits: usize,
    /// Runs, each a fresh browser profile.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    #[arg(long, default_value = "bench-results/web-morning.json")]
    out: String,
}

pub async fn run(args: WebMorningArgs) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("fieldbook-bench-web-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir)?;
    let database_url = format!("sqlite:{}", dir.join("fieldbook.sqlite").display());
    let admin = |args: &[&str], stdin: Option<&str>| fieldbook_command(&database_url, args, stdin);
    admin(&["users", "add", "--id", SUPERVISOR, "--name", "Sam Okafor", "--role", "supervisor"], None)?;
    admin(&["users", "add", "--id", PRACTITIONER, "--name", "Pat Reid", "--role", "practitioner"], None)?;
    admin(&["supervision", "set", "--user", PRACTITIONER, "--supervisor", SUPERVISOR, "--from", "2025-01-01"], None)?;
    admin(&["users", "set-password", "--id", SUPERVISOR], Some(PASSWORD))?;
    let token = admin(&["token", "--user", SUPERVISOR, "--ttl", "1d"], None)?;
    let token = token.lines().last().context("a token")?.trim().to_owned();
    let server = FieldbookServer::on(&database_url)?.with_token(token);
    seed(&server.ws_url(), args.records).await?;
    println!("{} records of {SUPERVISOR} on the server", args.records);

    let (mut evening, mut first_screen, mut all_stored) = (Runs::default(), Runs::default(), Runs::default());
    let mut edited_stored = Runs::default();
    let mut runs = Vec::new();
    for run in 1..=args.runs {
        let profile = dir.join(format!("profile-{run}"));
        let result = browser(&server.http_url(), &profile, &args)?;
        let seconds = |field: &str| result[field].as_f64().with_context(|| format!("no {field} in {result}"));
        println!(
            "run {run}: evening {:.1} s; morning: first screen {:.2} s, every record stored on the server {:.1} s",
            seconds("evening_seconds")?,
            seconds("first_screen_seconds")?,
            seconds("all_stored_seconds")?
        );
        evening.push(seconds("evening_seconds")?);
        first_screen.push(seconds("first_screen_seconds")?);
        all_stored.push(seconds("all_stored_seconds")?);
        edited_stored.push(seconds("edited_stored_seconds")?);
        runs.push(result);
    }
    println!(
        "{} records, {} edited offline: morning first screen {} s, the edited ones stored on the server {} s, all {} s; evening {} s — medians (min–max) of {} runs",
        args.records,
        args.offline_edits,
        first_screen.cell(2),
        edited_stored.cell(1),
        all_stored.cell(1),
        evening.cell(1),
        args.runs
    );
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
    let mut results = serde_json::Map::new();
    results.insert("records".into(), json!(args.records));
    results.insert("offline_edits".into(), json!(args.offline_edits));
    results.insert("evening_seconds".into(), evening.json());
    results.insert("morning_first_screen_seconds".into(), first_screen.json());
    results.insert("morning_all_stored_seconds".into(), all_stored.json());
    results.insert("morning_edited_stored_seconds".into(), edited_stored.json());
    results.insert("runs".into(), json!(runs));
    crate::write_results(&args.out, results)
}

/// Runs `fieldbook ARGS --database-url URL`, with `stdin` if given; returns its stdout.
fn fieldbook_command(database_url: &str, args: &[&str], stdin: Option<&str>) -> anyhow::Result<String> {
    let mut child = Command::new(repo_root().join("target/release/fieldbook"))
        .args(args)
        .args(["--database-url", database_url])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    if let Some(input) = stdin {
        std::io::Write::write_all(child.stdin.as_mut().context("stdin")?, input.as_bytes())?;
    }
    drop(child.stdin.take());
    let output = child.wait_with_output()?;
    if !output.status.success() {
        bail!("fieldbook {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Stores `count` draft observations by the supervisor, shaped as the web app makes them.
async fn seed(url: &str, count: usize) -> anyhow::Result<()> {
    let mut peer = Peer::connect(url).await?;
    for i in 0..count {
        let observed_at = format!("2026-11-{:02}T{:02}:00:00Z", 20 - (i / 24) % 19, i % 24);
        let record = json!({
            "type": "observation", "schemaVersion": 1, "practitionerId": PRACTITIONER, "observerId": SUPERVISOR,
            "framework": "kss-cf-2018", "components": ["kss-cf-2018/1"], "status": "draft", "signOff": {},
            "observedAt": observed_at, "setting": "home-visit", "present": "", "purpose": "",
            "consent": {"by": "", "how": ""}, "notes": format!("Seeded observation {}.", i + 1), "feedback": "",
            "reflection": "", "response": "", "familyVoice": {"text": "", "how": ""}, "strengths": [],
            "developmentAreas": [], "judgements": {}, "actions": [],
        });
        let mut doc = automerge::Automerge::new();
        let mut tx = doc.transaction();
        fieldbook_sync_core::json::put_object(&mut tx, &record)?;
        tx.commit();
        peer.open(DocumentId::random(), doc).await?;
    }
    peer.settle().await.context("seeding the supervisor's records")
}

/// One evening, night and morning in a fresh browser profile; returns the script's JSON.
fn browser(base: &str, profile: &Path, args: &WebMorningArgs) -> anyhow::Result<Value> {
    let output = Command::new("node")
        .arg(repo_root().join("clients/web/tests/bench-morning.mjs"))
        .env("FIELDBOOK_URL", base)
        .env("USER_ID", SUPERVISOR)
        .env("PASSWORD", PASSWORD)
        .env("RECORDS", args.records.to_string())
        .env("OFFLINE_EDITS", args.offline_edits.to_string())
        .env("PROFILE_DIR", profile)
        .output()
        .context("running node")?;
    if !output.status.success() {
        bail!("bench-morning failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    // The script's timeline of what the screen showed, for the bench log.
    eprint!("{}", String::from_utf8_lossy(&output.stderr));
    let line = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(line.trim()).with_context(|| format!("bench-morning printed {line:?}"))
}
