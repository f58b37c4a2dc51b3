//! The development-records API at national scale: seed a central store the size of England's
//! child and family workforce (35,000 practitioners, 500,000 observations, 100,000 plans),
//! then time a full CSV export (watching server memory), a JSON page, a feed catch-up from
//! zero and an insights query, on SQLite and PostgreSQL.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use fieldbook_server::org::{self, Operator};
use fieldbook_server::storage::{Cell, Database, Rows, Scope};
use fieldbook_sync_core::DocumentId;
use serde_json::{Value, json};
use sqlx::AnyPool;

use crate::servers::FieldbookServer;

#[derive(clap::Args)]
pub struct NationalArgs {
    #[arg(long, default_value_t = 35_000)]
    practitioners: usize,
    #[arg(long, default_value_t = 500_000)]
    observations: usize,
    #[arg(long, default_value_t = 100_000)]
    plans: usize,
    #[arg(long, env = "FIELDBOOK_BENCH_POSTGRES_URL", default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    postgres: String,
    #[arg(long)]
    skip_postgres: bool,
    #[arg(long, default_value = "bench-results/national.json")]
    out: String,
    /// Keep the seeded SQLite store (its path is printed), to study queries on it.
    #[arg(long)]
    keep: bool,
}

const TEAMS: usize = 153;
const PER_SUPERVISOR: usize = 10;

pub async fn run(args: NationalArgs) -> anyhow::Result<()> {
    let mut results = serde_json::Map::new();
    let mut backends = vec![("sqlite", None)];
    if !args.skip_postgres {
        backends.push(("postgres", Some(crate::ingest::scratch_postgres(&args.postgres).await?)));
    }
    for (name, url) in backends {
        println!("== {name} ==");
        let dir = std::env::temp_dir().join(format!("fieldbook-bench-national-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir)?;
        let url = url.unwrap_or_else(|| format!("sqlite:{}", dir.join("fieldbook.sqlite").display()));
        let db = Database::connect(&url).await?;
        let started = Instant::now();
        seed(&url, &args).await?;
        let seed_seconds = started.elapsed().as_secs_f64();
        println!(
            "seeded {} practitioners, {} observations, {} plans in {seed_seconds:.1} s",
            args.practitioners, args.observations, args.plans
        );
        let (_, key) =
            org::add_service_account(&db, Operator::CommandLine, "bench", &[Scope::HrRead, Scope::InsightsRead])
                .await?;
        db.close().await;
        let server = FieldbookServer::on(&url)?;
        let practitioners = args.practitioners;
        let measured = tokio::task::spawn_blocking(move || measure(&server, &key, practitioners)).await??;
        results.insert(name.into(), json!({ "seed_seconds": seed_seconds, "measures": measured }));
        if args.keep {
            println!("kept the store in {}", dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
    results.insert(
        "store".into(),
        json!({"practitioners": args.practitioners, "observations": args.observations, "plans": args.plans}),
    );
    crate::write_results(&args.out, results)
}

fn get(agent: &ureq::Agent, url: &str, key: &str) -> anyhow::Result<Value> {
    let mut response = agent.get(url).header("authorization", &format!("Bearer {key}")).call()?;
    anyhow::ensure!(response.status() == 200, "{url}: {}", response.status());
    Ok(serde_json::from_str(&response.body_mut().with_config().limit(1 << 30).read_to_string()?)?)
}

fn median(samples: Vec<f64>) -> f64 {
    crate::stats::median(samples.into_iter()).expect("at least one sample")
}

fn measure(server: &FieldbookServer, key: &str, practitioners: usize) -> anyhow::Result<Value> {
    let base = server.http_url();
    let agent: ureq::Agent =
        ureq::Agent::config_builder().timeout_global(Some(Duration::from_secs(600))).build().into();
    let idle_kib = server.rss()?;

    // Full CSV export, twice (the first warms SQLite's page caches), with the server's
    // memory sampled against progress: flat means no growth from the first tenth to the end.
    let cold = export(&agent, server, &base, key, practitioners)?;
    let warm = export(&agent, server, &base, key, cold.lines)?;
    let lines = warm.lines;
    let (export_seconds, bytes) = (warm.seconds, warm.bytes);
    for (name, run) in [("cold", &cold), ("warm", &warm)] {
        println!(
            "CSV export ({name}): {} records, {:.1} MiB in {:.2} s; server RSS {:.1} MiB before, {:.1} MiB at a tenth, \
             {:.1} MiB at the end, peak {:.1} MiB",
            run.lines.saturating_sub(1),
            run.bytes as f64 / 1048576.0,
            run.seconds,
            run.rss_before as f64 / 1024.0,
            run.rss_at_tenth as f64 / 1024.0,
            run.rss_at_end as f64 / 1024.0,
            run.rss_peak as f64 / 1024.0
        );
    }

    let mut page = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let body = get(&agent, &format!("{base}/v1/api/development-records?limit=100"), key)?;
        let expected = lines.saturating_sub(1).min(100);
        anyhow::ensure!(body["records"].as_array().map(Vec::len) == Some(expected), "a full page");
        page.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    println!("JSON page of 100 records: median {:.1} ms", median(page.clone()));

    let t = Instant::now();
    let (mut after, mut events) = (0i64, 0usize);
    loop {
        let body = get(&agent, &format!("{base}/v1/api/feed?after={after}&limit=5000"), key)?;
        events += body["events"].as_array().map_or(0, Vec::len);
        after = body["next"].as_i64().context("next")?;
        if body["more"] != true {
            break;
        }
    }
    let feed_seconds = t.elapsed().as_secs_f64();
    println!("feed catch-up from zero: {events} events in {feed_seconds:.2} s");

    let mut insights = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        get(&agent, &format!("{base}/v1/api/insights?framework=kss-cf-2018"), key)?;
        insights.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    println!("insights by team x component: median {:.0} ms", median(insights.clone()));

    Ok(json!({
        "csv_export_seconds": export_seconds,
        "csv_export_cold_seconds": cold.seconds,
        "csv_records": lines.saturating_sub(1),
        "csv_bytes": bytes,
        "rss_kib_idle": idle_kib,
        "csv_export_rss_kib": {
            "cold": { "before": cold.rss_before, "at_tenth": cold.rss_at_tenth, "at_end": cold.rss_at_end, "peak": cold.rss_peak },
            "warm": { "before": warm.rss_before, "at_tenth": warm.rss_at_tenth, "at_end": warm.rss_at_end, "peak": warm.rss_peak },
        },
        "json_page_100_ms_median": median(page),
        "feed_events": events,
        "feed_catch_up_seconds": feed_seconds,
        "insights_ms_median": median(insights),
    }))
}

/// One full CSV export: its time and size, and the server's RSS (KiB) as it went.
struct Export {
    seconds: f64,
    bytes: usize,
    lines: usize,
    rss_before: u64,
    rss_at_tenth: u64,
    rss_at_end: u64,
    rss_peak: u64,
}

/// `expected_lines`: about how many lines the export has (one per practitioner).
fn export(
    agent: &ureq::Agent,
    server: &FieldbookServer,
    base: &str,
    key: &str,
    expected_lines: usize,
) -> anyhow::Result<Export> {
    let pid = server.pid();
    let rss_before = crate::servers::rss_kib(pid)?;
    // A sampler thread catches peaks between reads; progress points are read inline.
    let peak = Arc::new(AtomicU64::new(rss_before));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, done) = (peak.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                if let Ok(kib) = crate::servers::rss_kib(pid) {
                    peak.fetch_max(kib, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let started = Instant::now();
    let mut response = agent
        .get(&format!("{base}/v1/api/development-records"))
        .header("authorization", &format!("Bearer {key}"))
        .header("accept", "text/csv")
        .call()?;
    let mut reader = response.body_mut().as_reader();
    let mut buffer = vec![0u8; 64 * 1024];
    let (mut bytes, mut lines) = (0usize, 0usize);
    let mut rss_at_tenth = None;
    loop {
        let n = std::io::Read::read(&mut reader, &mut buffer)?;
        if n == 0 {
            break;
        }
        bytes += n;
        lines += buffer[..n].iter().filter(|b| **b == b'\n').count();
        // The export is one line per practitioner, so lines measure progress.
        if rss_at_tenth.is_none() && lines * 10 >= expected_lines {
            rss_at_tenth = Some(crate::servers::rss_kib(pid)?);
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let rss_at_end = crate::servers::rss_kib(pid)?;
    done.store(true, Ordering::Relaxed);
    sampler.join().ok();
    Ok(Export {
        seconds,
        bytes,
        lines,
        rss_before,
        rss_at_tenth: rss_at_tenth.unwrap_or(rss_at_end),
        rss_at_end,
        rss_peak: peak.load(Ordering::Relaxed),
    })
}

/// Rows for one table, written in one transaction with the server's own multi-row inserts.
struct Table {
    name: &'static str,
    columns: &'static [&'static str],
    rows: Vec<Vec<Cell>>,
}

impl Table {
    fn new(name: &'static str, columns: &'static [&'static str]) -> Self {
        Table { name, columns, rows: Vec::new() }
    }

    async fn write(self, pool: &AnyPool) -> anyhow::Result<()> {
        let mut rows = Rows::default();
        for row in self.rows {
            rows.add(self.name, self.columns, row);
        }
        let mut tx = pool.begin().await?;
        rows.insert(&mut tx).await?;
        tx.commit().await?;
        Ok(())
    }
}

const NULL: Cell = Cell::OptText(None);

fn t(s: impl Into<String>) -> Cell {
    Cell::Text(s.into())
}

/// Writes the central store directly (projections, users, events): what the API reads.
async fn seed(url: &str, args: &NationalArgs) -> anyhow::Result<()> {
    sqlx::any::install_default_drivers();
    let pool = AnyPool::connect(url).await?;
    let supervisors = args.practitioners.div_ceil(PER_SUPERVISOR);
    let supervisor_of = |p: usize| format!("s{:05}", p / PER_SUPERVISOR);
    let practitioner = |p: usize| format!("p{p:05}");
    let team_of = |p: usize| format!("t{:03}", (p / PER_SUPERVISOR) % TEAMS);

    let mut teams = Table::new("teams", &["id", "name", "created_at"]);
    for i in 0..TEAMS {
        teams.rows.push(vec![t(format!("t{i:03}")), t(format!("Team {i}")), Cell::Int(0)]);
    }
    teams.write(&pool).await?;
    let mut users = Table::new(
        "users",
        &[
            "id",
            "name",
            "role",
            "team_id",
            "status",
            "employee_number",
            "registration_number",
            "created_at",
            "updated_at",
        ],
    );
    let mut supervision = Table::new("supervision", &["supervisee_id", "supervisor_id", "started_on", "created_at"]);
    for s in 0..supervisors {
        let id = format!("s{s:05}");
        users.rows.push(vec![
            t(&id),
            t(format!("Supervisor {s}")),
            t("supervisor"),
            t(format!("t{:03}", s % TEAMS)),
            t("active"),
            t(format!("E9{s:06}")),
            NULL,
            Cell::Int(0),
            Cell::Int(0),
        ]);
    }
    for p in 0..args.practitioners {
        users.rows.push(vec![
            t(practitioner(p)),
            t(format!("Practitioner {p}")),
            t("practitioner"),
            t(team_of(p)),
            t("active"),
            t(format!("E{p:07}")),
            t(format!("SW{p:06}")),
            Cell::Int(0),
            Cell::Int(0),
        ]);
        supervision.rows.push(vec![t(practitioner(p)), t(supervisor_of(p)), t("2024-01-01"), Cell::Int(0)]);
    }
    users.write(&pool).await?;
    supervision.write(&pool).await?;

    let mut observations = Table::new(
        "observations",
        &[
            "document_url",
            "practitioner_id",
            "observer_id",
            "observed_at",
            "setting",
            "framework",
            "status",
            "consent_given",
            "feedback_given_at",
            "observer_signed_off_at",
            "practitioner_signed_off_at",
            "locked",
            "change_seq",
        ],
    );
    let mut components = Table::new("observation_components", &["document_url", "component_id", "change_seq"]);
    let mut judgements =
        Table::new("observation_judgements", &["document_url", "component_id", "judgement", "change_seq"]);
    let mut events = Table::new("record_events", &["seq", "document_url", "practitioner_id", "kind", "at", "detail"]);
    let verdicts = ["met", "not-met", "insufficient-opportunity", "met"];
    for i in 0..args.observations {
        let p = (i * 7919) % args.practitioners;
        let url = DocumentId::random().url();
        let day = format!("2026-{:02}-{:02}T10:00:00Z", 1 + i % 11, 1 + i % 28);
        let seq = i as i64 + 1;
        let (c1, c2) = (format!("kss-cf-2018/{}", 1 + i % 10), format!("kss-cf-2018/{}", 1 + (i + 3) % 10));
        observations.rows.push(vec![
            t(&url),
            t(practitioner(p)),
            t(supervisor_of(p)),
            t(&day),
            t("home-visit"),
            t("kss-cf-2018"),
            t("signed-off"),
            Cell::Int(1),
            t(&day),
            t(&day),
            t(&day),
            Cell::Int(1),
            Cell::Int(seq),
        ]);
        components.rows.push(vec![t(&url), t(&c1), Cell::Int(seq)]);
        components.rows.push(vec![t(&url), t(&c2), Cell::Int(seq)]);
        judgements.rows.push(vec![t(&url), t(&c1), t(verdicts[i % 4]), Cell::Int(seq)]);
        judgements.rows.push(vec![t(&url), t(&c2), t(verdicts[(i + 1) % 4]), Cell::Int(seq)]);
        let detail =
            json!({"observedAt": day, "framework": "kss-cf-2018", "components": [c1, c2], "componentsEvidenced": [c1]});
        events.rows.push(vec![
            Cell::Int(seq),
            t(&url),
            t(practitioner(p)),
            t("observation.signed-off"),
            Cell::Int(1_770_000_000_000 + seq),
            t(detail.to_string()),
        ]);
    }
    observations.write(&pool).await?;
    components.write(&pool).await?;
    judgements.write(&pool).await?;
    events.write(&pool).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("UPDATE feed_state SET last_seq = {}", args.observations)))
        .execute(&pool)
        .await?;

    let mut plans = Table::new(
        "development_plans",
        &[
            "document_url",
            "owner_id",
            "supervisor_id",
            "framework",
            "period_from",
            "period_to",
            "source",
            "status",
            "change_seq",
        ],
    );
    let mut goals = Table::new(
        "plan_goals",
        &["document_url", "goal_id", "position", "status", "target_date", "completed_at", "change_seq"],
    );
    let mut goal_components = Table::new("goal_components", &["document_url", "goal_id", "component_id", "change_seq"]);
    let statuses = ["not-started", "in-progress", "met", "not-met"];
    for i in 0..args.plans {
        let p = (i * 104_729) % args.practitioners;
        let url = DocumentId::random().url();
        let seq = (args.observations + i) as i64 + 1;
        plans.rows.push(vec![
            t(&url),
            t(practitioner(p)),
            t(supervisor_of(p)),
            t("kss-cf-2018"),
            t("2026-09-01"),
            t("2027-08-31"),
            t("appraisal"),
            t("agreed"),
            Cell::Int(seq),
        ]);
        for g in 0..3 {
            let goal = format!("g{g}");
            goals.rows.push(vec![
                t(&url),
                t(&goal),
                Cell::Int(g as i64),
                t(statuses[(i + g) % 4]),
                t("2027-03-31"),
                NULL,
                Cell::Int(seq),
            ]);
            goal_components.rows.push(vec![
                t(&url),
                t(&goal),
                t(format!("kss-cf-2018/{}", 1 + (i + g) % 10)),
                Cell::Int(seq),
            ]);
        }
    }
    plans.write(&pool).await?;
    goals.write(&pool).await?;
    goal_components.write(&pool).await?;
    // Statistics, as a store in service has them (PostgreSQL's autovacuum gathers them;
    // SQLite's planner uses them once gathered).
    sqlx::query("ANALYZE").execute(&pool).await?;
    pool.close().await;
    Ok(())
}
