//! `fieldbook-device`: a device client with its own offline store.

mod index;
mod records;
mod session;
mod store;
mod sync;
mod vault;

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use fieldbook_sync_core::{DocumentId, json};

use crate::store::Store;

#[derive(Parser)]
#[command(name = "fieldbook-device", version, about = "Fieldbook device client: works offline, syncs when it can")]
struct Cli {
    /// The device's local store (a SQLite file).
    #[arg(long, env = "FIELDBOOK_DEVICE_STORE", default_value = "fieldbook-device.sqlite", global = true)]
    store: String,
    /// Who is using this device (a Fieldbook user id): the observer of new observations,
    /// the signer of sign-offs.
    #[arg(long, env = "FIELDBOOK_USER", global = true)]
    user: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create a document from a JSON object; prints its automerge: URL.
    Create {
        #[command(flatten)]
        document: records::JsonText,
    },
    /// Set fields of a document: `--set path=value`, the value as JSON or else a string.
    Edit {
        url: String,
        #[arg(long = "set", required = true, value_name = "PATH=VALUE")]
        sets: Vec<String>,
    },
    /// Observations: record, give feedback, reflect, share, sign off.
    Observation {
        #[command(subcommand)]
        command: records::ObservationCommand,
    },
    /// Development plans and their goals.
    Plan {
        #[command(subcommand)]
        command: records::PlanCommand,
    },
    /// Local copies set aside because the server refused their changes.
    SetAside,
    /// List the documents on this device.
    List,
    /// Print a document as JSON.
    Show { url: String },
    /// Sign this device in (password from stdin); `sync` then needs no --token.
    Login {
        /// The server, e.g. http://127.0.0.1:8080.
        #[arg(long, env = "FIELDBOOK_SERVER")]
        server: String,
        /// This device's id (default: the one used before, or one made for this store).
        #[arg(long)]
        device: Option<String>,
    },
    /// Sign out: revoke this device's refresh token and forget its tokens.
    Logout,
    /// Push and pull every document this device holds; exits when all are in sync.
    Sync {
        /// The server, e.g. http://127.0.0.1:8080 (default: the one signed in to).
        #[arg(long, env = "FIELDBOOK_SERVER")]
        server: Option<String>,
        /// An access token from `fieldbook token` (default: the one from `login`).
        #[arg(long, env = "FIELDBOOK_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// Also fetch this document from the server (repeatable).
        #[arg(long, value_name = "URL")]
        fetch: Vec<String>,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 60)]
        timeout_secs: u64,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into());
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let (mut store, locked) = match Store::open(&cli.store).await {
        Ok(store) => (store, false),
        Err(e) => match e.downcast_ref::<vault::Locked>() {
            Some(vault::Locked::TooManyTries) => {
                store::delete(&cli.store)?;
                anyhow::bail!("too many wrong passphrases: this device's store {} was deleted", cli.store);
            }
            // A forgotten passphrase: signing in with the password unlocks the store.
            Some(vault::Locked::Wrong { .. } | vault::Locked::TooSoon { .. })
                if matches!(cli.command, Command::Login { .. }) =>
            {
                (Store::open_locked(&cli.store).await?, true)
            }
            _ => return Err(e.context(format!("cannot open the store {}", cli.store))),
        },
    };
    let result = execute(&mut store, cli.user.as_deref(), cli.command, locked).await;
    store.close().await;
    if let Err(e) = &result
        && (e.downcast_ref::<sync::WipeRequested>().is_some()
            || e.downcast_ref::<session::TokenRefused>().is_some_and(|r| r.wipe))
    {
        // The administrator revoked this device: nothing of the records may stay on it.
        store::delete(&cli.store)?;
        anyhow::bail!("this device was revoked by an administrator; its local store {} was deleted", cli.store);
    }
    result
}

async fn execute(store: &mut Store, user: Option<&str>, command: Command, locked: bool) -> anyhow::Result<()> {
    match command {
        Command::Observation { command } => records::observation(store, user, command).await?,
        Command::Plan { command } => records::plan(store, user, command).await?,
        Command::SetAside => {
            for kept in store.set_aside_list().await? {
                let changes = kept.kept.get_changes(&[]).len();
                let json = json::to_json(&kept.kept);
                println!("{}\t{}\t{}\t{changes} changes\t{json}", kept.document.url(), kept.at, kept.reason);
            }
        }
        Command::Create { document } => {
            let value: serde_json::Value =
                serde_json::from_str(&document.read()?).context("the document is not valid JSON")?;
            records::create(store, value).await?;
        }
        Command::Edit { url, sets } => {
            records::edit(store, &url, |_, tx| {
                for set in &sets {
                    let (path, raw) =
                        set.split_once('=').with_context(|| format!("--set {set:?}: expected PATH=VALUE"))?;
                    let value = serde_json::from_str(raw).unwrap_or_else(|_| serde_json::Value::String(raw.to_owned()));
                    json::set_path(tx, path, &value)?;
                }
                Ok(())
            })
            .await?;
        }
        Command::List => {
            for stored in store.all().await? {
                println!(
                    "{}\t{} changes\tsaved {}",
                    stored.id.url(),
                    stored.doc.get_changes(&[]).len(),
                    stored.updated_at
                );
            }
        }
        Command::Show { url } => {
            let id = DocumentId::parse_url_or_id(&url)?;
            let doc = store.load(id).await?.with_context(|| format!("{url} is not on this device"))?;
            println!("{}", serde_json::to_string_pretty(&json::to_json(&doc))?);
        }
        Command::Login { server, device } => {
            let user = user.context("--user is required: the user id to sign in as")?;
            println!("{}", session::login(store, &server, user, device, locked).await?);
        }
        Command::Logout => println!("{}", session::logout(store).await?),
        Command::Sync { server, token, fetch, timeout_secs } => {
            let fetch = fetch.iter().map(|u| DocumentId::parse_url_or_id(u)).collect::<Result<Vec<_>, _>>()?;
            let mut session = session::Session::resolve(store, server, token).await?;
            let timeout = Duration::from_secs(timeout_secs);
            let mut result =
                sync::sync(store, &session.server, &session.token, session.renewal(store), &fetch, timeout).await;
            if session.retry_after(store, &result).await? {
                result =
                    sync::sync(store, &session.server, &session.token, session.renewal(store), &fetch, timeout).await;
            }
            let (server, report) = (session.server, result?);
            let mut unavailable = Vec::new();
            let mut rejected = Vec::new();
            for (id, doc) in &report.documents {
                if doc.deleted {
                    println!(
                        "{}\tdeleted on the server (retention or data protection): removed from this device",
                        id.url()
                    );
                } else if let Some(reason) = &doc.rejected {
                    rejected.push(id.url());
                    println!("{}\tREJECTED: {reason}", id.url());
                    println!(
                        "{}\tyour copy is set aside (see `fieldbook-device set-aside`); this device now has the server's",
                        id.url()
                    );
                } else if doc.unavailable && report.discovered.contains(id) {
                    println!("{}\tlisted, but no longer yours to see", id.url());
                } else if doc.unavailable {
                    unavailable.push(id.url());
                    println!("{}\tnot on the server", id.url());
                } else if report.discovered.contains(id) {
                    println!("{}\tnew: received {} changes", id.url(), doc.changes_received);
                } else {
                    println!("{}\tsent {} changes, received {}", id.url(), doc.changes_sent, doc.changes_received);
                }
            }
            println!(
                "synced {} documents with {} (storage {})",
                report.documents.values().filter(|d| !d.deleted).count() - unavailable.len(),
                server,
                report.server_storage_id.as_deref().unwrap_or("unknown")
            );
            if !rejected.is_empty() {
                anyhow::bail!("the server refused changes to: {}", rejected.join(", "));
            }
            if !unavailable.is_empty() {
                anyhow::bail!("not on the server (or not yours to see): {}", unavailable.join(", "));
            }
        }
    }
    Ok(())
}
