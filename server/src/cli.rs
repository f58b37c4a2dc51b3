//! The `fieldbook` command line.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::admin::{AuditArgs, DevicesCommand, ServiceAccountsCommand, SupervisionCommand, TeamsCommand, UsersCommand};
use crate::app::{Server, shutdown_signal};
use crate::auth::keys::{self, KeySet, KeySource};
use crate::auth::{KeyFileArg, TokenKeys, parse_ttl};
use crate::config::{CacheConfig, DEFAULT_DATABASE_URL, Limits, ServerConfig};
use crate::storage::Database;

#[derive(Parser)]
#[command(name = "fieldbook", version, about = "Fieldbook: offline-first sync server for practice observation records")]
struct Cli {
    /// `text`, or `json` (one object per line, for a SIEM).
    #[arg(long, global = true, env = "FIELDBOOK_LOG_FORMAT", value_enum, default_value = "text")]
    log_format: crate::telemetry::LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone)]
pub(crate) struct DatabaseArg {
    /// `sqlite:PATH` (the embedded default) or `postgres://…`.
    #[arg(long, env = "FIELDBOOK_DATABASE_URL", default_value = DEFAULT_DATABASE_URL)]
    pub(crate) database_url: String,
}

// Parsed once at start: the size of its largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Run the sync server.
    Serve {
        /// Address to listen on.
        #[arg(long, env = "FIELDBOOK_LISTEN", default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        #[command(flatten)]
        database: DatabaseArg,
        /// Largest protocol frame accepted from a peer, in bytes.
        #[arg(long, env = "FIELDBOOK_MAX_FRAME_BYTES", default_value_t = Limits::default().max_frame_bytes)]
        max_frame_bytes: usize,
        #[command(flatten)]
        sync_limits: SyncLimitArgs,
        /// Development-records API calls per minute per account or person (bursts of up to a
        /// tenth of that at once).
        #[arg(long, env = "FIELDBOOK_API_CALLS_PER_MINUTE", default_value_t = Limits::default().api_calls_per_minute)]
        api_calls_per_minute: u32,
        /// Documents kept in memory at most.
        #[arg(long, env = "FIELDBOOK_CACHE_DOCUMENTS", default_value_t = CacheConfig::default().max_documents)]
        cache_documents: usize,
        /// Evict a document from memory after this long unused (e.g. 60s, 5m).
        #[arg(long, env = "FIELDBOOK_CACHE_IDLE", default_value = "60s", value_parser = parse_ttl)]
        cache_idle: Duration,
        #[command(flatten)]
        sign_in: crate::auth::SignInArgs,
        /// The address people and systems reach this server at (names records and people in
        /// xAPI statements). Default: http:// + the listen address.
        #[arg(long, env = "FIELDBOOK_PUBLIC_URL")]
        public_url: Option<String>,
        /// Serve the web app from this directory instead of the build inside the binary
        /// (while developing the app: `clients/web/dist`).
        #[arg(long, env = "FIELDBOOK_WEB_DIR")]
        web_dir: Option<std::path::PathBuf>,
        /// Serve Prometheus metrics at http://ADDR/metrics (off by default; keep it off the
        /// public network).
        #[arg(long, env = "FIELDBOOK_METRICS_LISTEN")]
        metrics_listen: Option<SocketAddr>,
        /// How often to delete records whose retention has ended (at start, then this often).
        #[arg(long, env = "FIELDBOOK_RETENTION_EVERY", default_value = "24h", value_parser = parse_ttl)]
        retention_every: Duration,
        /// A TOML file of settings named as these flags (`listen = "0.0.0.0:8080"`); flags and
        /// environment variables win over it.
        #[arg(long, env = crate::config_file::CONFIG_ENV)]
        config: Option<std::path::PathBuf>,
        /// Print the settings in force, and where each came from (secrets masked), then exit.
        #[arg(long)]
        print_config: bool,
    },
    /// People: add, list, change, import a whole authority from CSV.
    Users {
        #[command(subcommand)]
        command: UsersCommand,
    },
    /// Teams.
    Teams {
        #[command(subcommand)]
        command: TeamsCommand,
    },
    /// Who supervises whom, with history.
    Supervision {
        #[command(subcommand)]
        command: SupervisionCommand,
    },
    /// A user's devices; revoke one (it is told to wipe its data).
    Devices {
        #[command(subcommand)]
        command: DevicesCommand,
    },
    /// Accounts for systems that read the development-records API.
    ServiceAccounts {
        #[command(subcommand)]
        command: ServiceAccountsCommand,
    },
    /// Query the audit trail (JSON lines, oldest first).
    Audit(AuditArgs),
    /// Competency frameworks.
    Frameworks {
        #[command(subcommand)]
        command: FrameworksCommand,
    },
    /// Erase a record's history: rebuild it from its current state, with any named text fields
    /// cleared, so deleted or cleared text is kept nowhere; devices holding the old history
    /// are refused and told to take the server's copy. Prints the record's URL last.
    Erase {
        /// The record: an `automerge:` URL or document id.
        #[arg(long)]
        record: String,
        /// Why (kept in the audit trail and the erasure ledger; do not repeat the erased text).
        #[arg(long)]
        reason: String,
        /// A top-level text field to empty as well (repeatable), e.g. `--clear notes`.
        #[arg(long, value_name = "FIELD")]
        clear: Vec<String>,
        #[command(flatten)]
        database: DatabaseArg,
    },
    /// Export everything held about one person (subject access), third parties' content
    /// withheld: JSON to the file given, and a printable HTML page beside it (`.html`).
    SubjectAccess {
        #[arg(long)]
        user: String,
        /// The JSON file to write; the page goes beside it with the extension `.html`.
        #[arg(long, value_name = "FILE")]
        out: std::path::PathBuf,
        #[command(flatten)]
        database: DatabaseArg,
    },
    /// The erasure ledger as a file, for PostgreSQL restores: export it from the database a
    /// restore replaces, replay it on the restored one.
    Ledger {
        #[command(subcommand)]
        command: LedgerCommand,
    },
    /// Write a consistent copy of the SQLite database to a new file, while the server serves.
    Backup {
        /// The backup file to write (it must not exist).
        #[arg(long, value_name = "PATH")]
        to: std::path::PathBuf,
        #[command(flatten)]
        database: DatabaseArg,
    },
    /// Put a backup in place of the SQLite database (stop the server first). The database it
    /// replaces is kept beside it as `<file>.before-restore-<time>`.
    Restore {
        /// A file written by `fieldbook backup`.
        #[arg(long, value_name = "PATH")]
        from: std::path::PathBuf,
        #[command(flatten)]
        database: DatabaseArg,
    },
    /// How long each record type is kept, and deleting what has expired.
    Retention {
        #[command(subcommand)]
        command: crate::retention::commands::RetentionCommand,
    },
    /// Legal holds: records kept past their retention.
    Holds {
        #[command(subcommand)]
        command: crate::retention::commands::HoldsCommand,
    },
    /// ASYE: the counts of evidence the assessed and supported year asks for.
    Asye {
        #[command(subcommand)]
        command: crate::asye::AsyeCommand,
    },
    /// Research resources that plan goals cite.
    Resources {
        #[command(subcommand)]
        command: crate::resources::ResourcesCommand,
    },
    /// Practice champions: who is declared to hold expertise in a framework area.
    Champions {
        #[command(subcommand)]
        command: crate::expertise::ChampionsCommand,
    },
    /// Changes the server refused and kept aside.
    Quarantine {
        #[command(subcommand)]
        command: QuarantineCommand,
    },
    /// Development records from the central store.
    Records {
        #[command(subcommand)]
        command: RecordsCommand,
    },
    /// Print an access token for a user.
    Token {
        #[arg(long)]
        user: String,
        /// The device the token is for.
        #[arg(long)]
        device: Option<String>,
        /// How long the token is valid (s, m, h, d).
        #[arg(long, default_value = "8h", value_parser = parse_ttl)]
        ttl: Duration,
        #[command(flatten)]
        database: DatabaseArg,
        #[command(flatten)]
        keys: KeyFileArg,
    },
    /// The keys that sign access tokens (kept in a file or the environment, never the database).
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
}

/// Per-connection limits of the sync endpoint.
#[derive(Args)]
struct SyncLimitArgs {
    /// Largest a record may grow, in bytes as stored; a change beyond it is refused.
    #[arg(long, env = "FIELDBOOK_MAX_DOCUMENT_BYTES", default_value_t = Limits::default().max_document_bytes)]
    max_document_bytes: usize,
    /// Documents one connection follows at once (gets live changes of); the one used longest
    /// ago stops past it, until the peer next asks about it.
    #[arg(long, env = "FIELDBOOK_MAX_SUBSCRIPTIONS", default_value_t = Limits::default().max_subscriptions)]
    max_subscriptions: usize,
    /// Bytes waiting for one slow reader before it is disconnected.
    #[arg(long, env = "FIELDBOOK_MAX_QUEUED_BYTES", default_value_t = Limits::default().max_queued_bytes)]
    max_queued_bytes: usize,
    /// Protocol messages per second one connection may send, sustained; beyond it (and the
    /// burst) its messages are read more slowly.
    #[arg(long, env = "FIELDBOOK_SYNC_MESSAGES_PER_SECOND", default_value_t = Limits::default().messages_per_second)]
    sync_messages_per_second: u32,
    #[arg(long, env = "FIELDBOOK_SYNC_MESSAGE_BURST", default_value_t = Limits::default().message_burst)]
    sync_message_burst: u32,
}

impl SyncLimitArgs {
    fn apply(&self, limits: &mut Limits) {
        limits.max_document_bytes = self.max_document_bytes.max(1);
        limits.max_subscriptions = self.max_subscriptions.max(1);
        limits.max_queued_bytes = self.max_queued_bytes.max(1);
        limits.messages_per_second = self.sync_messages_per_second.max(1);
        limits.message_burst = self.sync_message_burst.max(1);
    }
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Add a new signing key to the key file (creating the file if missing). Running servers
    /// sign with it within five seconds; older keys keep verifying the tokens they signed.
    Rotate {
        #[command(flatten)]
        database: DatabaseArg,
        #[command(flatten)]
        keys: KeyFileArg,
        /// Drop keys that stopped signing longer ago than this (keep it above the access-token
        /// lifetime).
        #[arg(long, default_value = "24h", value_parser = parse_ttl)]
        retire_after: Duration,
    },
    /// The keys in use: id, created, which one signs (never the secrets).
    List {
        #[command(flatten)]
        database: DatabaseArg,
        #[command(flatten)]
        keys: KeyFileArg,
    },
}

#[derive(Subcommand)]
pub(crate) enum FrameworksCommand {
    /// Add a framework, or correct one, from a JSON file (format in the README).
    Import {
        file: std::path::PathBuf,
        #[command(flatten)]
        database: DatabaseArg,
    },
    /// List frameworks with their versions and sources.
    List {
        #[command(flatten)]
        database: DatabaseArg,
    },
}

#[derive(Subcommand)]
enum LedgerCommand {
    /// Write every erasure and deletion (with erased records as they are now) to a new file.
    Export {
        #[arg(long, value_name = "FILE")]
        to: std::path::PathBuf,
        #[command(flatten)]
        database: DatabaseArg,
    },
    /// Re-apply the erasures and deletions of a ledger file that this database lacks (after
    /// restoring a dump taken before them).
    Replay {
        #[arg(long, value_name = "FILE")]
        from: std::path::PathBuf,
        #[command(flatten)]
        database: DatabaseArg,
    },
}

#[derive(Subcommand)]
pub(crate) enum QuarantineCommand {
    /// List changes kept aside, newest last.
    List {
        /// Only this document (automerge: URL or id).
        #[arg(long)]
        document: Option<String>,
        #[command(flatten)]
        database: DatabaseArg,
    },
    /// Show one quarantined change: who, why, and the record as it would have become.
    Show {
        id: i64,
        #[command(flatten)]
        database: DatabaseArg,
    },
}

#[derive(Subcommand)]
enum RecordsCommand {
    /// A practitioner's development record as JSON, from the central store.
    Show {
        #[arg(long)]
        practitioner: String,
        #[command(flatten)]
        database: DatabaseArg,
    },
    /// Delete one record everywhere (devices holding it are told to remove it), unless a
    /// legal hold covers it.
    Delete {
        /// An `automerge:` URL or document id.
        #[arg(long)]
        record: String,
        /// Why (kept in the audit trail and the ledger).
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        database: DatabaseArg,
    },
    /// Observations whose family withdrew consent (JSON lines), for review; `--delete`
    /// deletes them all (except what a legal hold keeps).
    ConsentWithdrawn {
        #[arg(long, requires = "reason")]
        delete: bool,
        /// Why, with `--delete`.
        #[arg(long, requires = "delete")]
        reason: Option<String>,
        #[command(flatten)]
        database: DatabaseArg,
    },
}

pub fn main() -> ExitCode {
    let command = Cli::command();
    let (args, sources) = match crate::config_file::layer(std::env::args_os().collect(), &command) {
        Ok(layered) => layered,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let matches = command.clone().get_matches_from(args);
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    if let (Command::Serve { print_config: true, .. }, Some(serve)) =
        (&cli.command, matches.subcommand_matches("serve"))
    {
        print!("{}", crate::config_file::describe(&command, &matches, serve, &sources));
        return ExitCode::SUCCESS;
    }
    crate::telemetry::init(cli.log_format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve {
            listen,
            database,
            max_frame_bytes,
            sync_limits,
            api_calls_per_minute,
            cache_documents,
            cache_idle,
            sign_in,
            public_url,
            web_dir,
            metrics_listen,
            retention_every,
            config: _,
            print_config: _,
        } => {
            let mut config = ServerConfig::new(listen, database.database_url);
            config.auth = sign_in.into_config().map_err(anyhow::Error::msg)?;
            config.public_url = public_url;
            config.web_dir = web_dir;
            config.metrics_listen = metrics_listen;
            config.retention_every = retention_every;
            config.limits.max_frame_bytes = max_frame_bytes;
            sync_limits.apply(&mut config.limits);
            config.limits.api_calls_per_minute = api_calls_per_minute.max(1);
            config.cache.max_documents = cache_documents.max(1);
            config.cache.idle_timeout = cache_idle;
            let server = Server::bind(config).await?;
            // Machine-readable: tests and scripts read the bound address from this line.
            println!("fieldbook listening on http://{}", server.local_addr());
            tracing::info!(addr = %server.local_addr(), storage_id = %server.state().storage_id, "serving");
            server.run(shutdown_signal()).await?;
        }
        Command::Users { command } => crate::admin::users(command).await?,
        Command::Teams { command } => crate::admin::teams(command).await?,
        Command::Supervision { command } => crate::admin::supervision(command).await?,
        Command::Devices { command } => crate::admin::devices(command).await?,
        Command::ServiceAccounts { command } => crate::admin::service_accounts(command).await?,
        Command::Audit(args) => crate::admin::audit(args).await?,
        Command::Frameworks { command } => crate::admin::frameworks(command).await?,
        Command::Quarantine { command } => crate::admin::quarantine(command).await?,
        Command::Erase { record, reason, clear, database } => {
            let db = Database::connect(&database.database_url).await?;
            let erased = crate::erasure::erase(&db, crate::org::Operator::CommandLine, &record, &reason, &clear).await;
            db.close().await;
            let url = erased?.url();
            println!(
                "erased the history of {url}{}",
                if clear.is_empty() { String::new() } else { format!(" and cleared {}", clear.join(", ")) }
            );
            println!("{url}");
        }
        Command::SubjectAccess { user, out, database } => {
            let db = Database::connect(&database.database_url).await?;
            let export = crate::subject_access::export(&db, &user).await?;
            let Some(export) = export else { anyhow::bail!("no user {user:?}") };
            let page = out.with_extension("html");
            anyhow::ensure!(page != out, "give the JSON file another extension than .html");
            std::fs::write(&out, serde_json::to_string_pretty(&export)?)?;
            std::fs::write(&page, crate::subject_access::html(&export))?;
            db.audit(crate::admin::cli_event("subject-access-exported", serde_json::json!({ "user": user }))).await?;
            db.close().await;
            println!("{}", page.display());
            println!("{}", out.display());
        }
        Command::Ledger { command: LedgerCommand::Export { to, database } } => {
            let db = Database::connect(&database.database_url).await?;
            let exported = crate::ledger_file::export(&db, &to).await;
            db.close().await;
            println!("exported {} ledger entries to", exported?);
            println!("{}", to.display());
        }
        Command::Ledger { command: LedgerCommand::Replay { from, database } } => {
            let db = Database::connect(&database.database_url).await?;
            let replayed = crate::ledger_file::replay(&db, &from).await;
            if let Ok(n) = &replayed {
                let detail = serde_json::json!({ "from": from.display().to_string(), "reapplied": n });
                db.audit(crate::admin::cli_event("ledger-replayed", detail)).await?;
            }
            db.close().await;
            println!("re-applied {} erasures and deletions from {}", replayed?, from.display());
        }
        Command::Backup { to, database } => crate::admin::backup(&to, &database.database_url).await?,
        Command::Restore { from, database } => crate::admin::restore(&from, &database.database_url).await?,
        Command::Retention { command } => crate::retention::commands::retention(command).await?,
        Command::Holds { command } => crate::retention::commands::holds(command).await?,
        Command::Champions { command } => crate::expertise::champions(command).await?,
        Command::Resources { command } => crate::resources::command(command).await?,
        Command::Asye { command } => crate::asye::command(command).await?,
        Command::Records { command: RecordsCommand::Delete { record, reason, database } } => {
            crate::retention::commands::delete_record(&record, &reason, &database).await?
        }
        Command::Records { command: RecordsCommand::ConsentWithdrawn { delete, reason, database } } => {
            let reason = reason.filter(|_| delete);
            crate::retention::commands::consent_withdrawn(reason.as_deref(), &database).await?
        }
        Command::Records { command: RecordsCommand::Show { practitioner, database } } => {
            let db = Database::connect(&database.database_url).await?;
            println!("{}", serde_json::to_string_pretty(&db.development_record(&practitioner).await?)?);
            let read = serde_json::json!({ "practitioner": practitioner });
            db.audit(crate::admin::cli_event("development-record-read", read)).await?;
            db.close().await;
        }
        Command::Token { user, device, ttl, database, keys } => {
            let source =
                KeySource::resolve(keys.signing_key_file, &database.database_url).map_err(anyhow::Error::msg)?;
            let db = Database::connect(&database.database_url).await?;
            if db.user(&user).await?.is_none() {
                anyhow::bail!("no user {user:?}; add it with `fieldbook users add`");
            }
            let keys = TokenKeys::load(source).map_err(anyhow::Error::msg)?;
            println!("{}", keys.issue(&user, device.as_deref(), ttl)?);
            db.close().await;
        }
        Command::Keys { command: KeysCommand::Rotate { database, keys, retire_after } } => {
            let source =
                KeySource::resolve(keys.signing_key_file, &database.database_url).map_err(anyhow::Error::msg)?;
            let KeySource::File(path) = &source else {
                anyhow::bail!(
                    "the keys come from {}; rotate a copy in a file (--signing-key-file) and set the variable from it",
                    keys::KEYS_ENV
                );
            };
            // A file that does not exist yet starts with one key.
            let rotated = if path.exists() {
                source.load().map_err(anyhow::Error::msg)?.rotated(retire_after)
            } else {
                KeySet::generate()
            };
            keys::write(path, &rotated).map_err(anyhow::Error::msg)?;
            println!("{}", rotated.signing().kid);
        }
        Command::Keys { command: KeysCommand::List { database, keys } } => {
            let source =
                KeySource::resolve(keys.signing_key_file, &database.database_url).map_err(anyhow::Error::msg)?;
            let set = source.load().map_err(anyhow::Error::msg)?;
            let signing = set.signing().kid.clone();
            for key in &set.keys {
                let line =
                    serde_json::json!({"kid": key.kid, "createdAt": key.created_at, "signs": key.kid == signing});
                println!("{line}");
            }
        }
    }
    Ok(())
}
