//! Administrative commands that read or change what the server holds: people, teams,
//! supervision, devices, the audit trail, frameworks and the quarantine. Changes made here
//! are audited as done "via the command line" (whoever runs it has the database itself).

use clap::{Args, Subcommand};
use fieldbook_sync_core::frameworks::Framework;
use fieldbook_sync_core::records::dates;
use fieldbook_sync_core::{DocumentId, json};
use serde_json::json;

use crate::cli::{DatabaseArg, FrameworksCommand, QuarantineCommand};
use crate::org::{self, Operator};
use crate::storage::{AuditEvent, AuditQuery, Database, Role, Scope, Team, User, UserStatus};

#[derive(Subcommand)]
pub(crate) enum UsersCommand {
    /// Add a user.
    Add {
        #[arg(long)]
        id: String,
        #[arg(long)]
        name: String,
        /// practitioner, supervisor, manager, principal-social-worker, hr or admin.
        #[arg(long)]
        role: Role,
        /// Their supervisor (an existing user id), from today or `--supervisor-from`.
        #[arg(long)]
        supervisor: Option<String>,
        #[arg(long, value_name = "YYYY-MM-DD")]
        supervisor_from: Option<String>,
        /// An existing team id.
        #[arg(long)]
        team: Option<String>,
        /// The identity the council's identity provider knows them by.
        #[arg(long)]
        external_id: Option<String>,
        #[arg(long)]
        employee_number: Option<String>,
        #[arg(long)]
        registration_number: Option<String>,
        #[command(flatten)]
        database: DatabaseArg,
    },
    /// List users (tab-separated).
    List {
        #[command(flatten)]
        database: DatabaseArg,
    },
    /// Change a user's details; only the options given change.
    Update {
        #[arg(long)]
        id: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        role: Option<Role>,
        #[arg(long)]
        team: Option<String>,
        /// active, suspended (refused everywhere, reversible) or deleted.
        #[arg(long)]
        status: Option<UserStatus>,
        #[arg(long)]
        external_id: Option<String>,
        #[arg(long)]
        employee_number: Option<String>,
        #[arg(long)]
        registration_number: Option<String>,
        #[command(flatten)]
        database: DatabaseArg,
    },
    /// Set a user's password for built-in sign-in, read from the first line of stdin
    /// (at least 12 characters); stored as an argon2 hash.
    SetPassword {
        #[arg(long)]
        id: String,
        #[command(flatten)]
        database: DatabaseArg,
    },
    /// Create or update a whole authority's people from CSV (columns in the README).
    Import {
        file: std::path::PathBuf,
        #[command(flatten)]
        database: DatabaseArg,
    },
}

#[derive(Subcommand)]
pub(crate) enum TeamsCommand {
    Add {
        #[arg(long)]
        id: String,
        #[arg(long)]
        name: String,
        #[command(flatten)]
        database: DatabaseArg,
    },
    List {
        #[command(flatten)]
        database: DatabaseArg,
    },
}

#[derive(Subcommand)]
pub(crate) enum SupervisionCommand {
    /// Give a user a new supervisor from a date (the old relationship ends that day).
    Set {
        #[arg(long)]
        user: String,
        /// The new supervisor; leave out with `--none` to end supervision.
        #[arg(long, required_unless_present = "none")]
        supervisor: Option<String>,
        #[arg(long, conflicts_with = "supervisor")]
        none: bool,
        /// Default: today.
        #[arg(long, value_name = "YYYY-MM-DD")]
        from: Option<String>,
        #[command(flatten)]
        database: DatabaseArg,
    },
    /// A user's supervision history, as supervisee and supervisor.
    History {
        #[arg(long)]
        user: String,
        #[command(flatten)]
        database: DatabaseArg,
    },
}

#[derive(Subcommand)]
pub(crate) enum DevicesCommand {
    List {
        #[arg(long)]
        user: String,
        #[command(flatten)]
        database: DatabaseArg,
    },
    /// Refuse the device's tokens, close its connections within a second, and tell it to
    /// wipe its local data on its next contact.
    Revoke {
        #[arg(long)]
        user: String,
        #[arg(long)]
        device: String,
        #[command(flatten)]
        database: DatabaseArg,
    },
}

#[derive(Subcommand)]
pub(crate) enum ServiceAccountsCommand {
    /// Add an account for a system; prints its key once (keep it secret).
    Add {
        #[arg(long)]
        name: String,
        /// Comma-separated: hr:read, insights:read.
        #[arg(long, value_delimiter = ',', required = true)]
        scopes: Vec<Scope>,
        #[command(flatten)]
        database: DatabaseArg,
    },
    List {
        #[command(flatten)]
        database: DatabaseArg,
    },
    /// Replace an account's key (prints the new one); the old key stops working at once.
    Rotate {
        #[arg(long)]
        id: String,
        #[command(flatten)]
        database: DatabaseArg,
    },
    /// Revoke an account: its key is refused from now on.
    Revoke {
        #[arg(long)]
        id: String,
        #[command(flatten)]
        database: DatabaseArg,
    },
}

#[derive(Args)]
pub(crate) struct AuditArgs {
    #[arg(long)]
    user: Option<String>,
    /// An `automerge:` URL or document id.
    #[arg(long)]
    record: Option<String>,
    /// RFC 3339 date or date-time, inclusive.
    #[arg(long)]
    since: Option<String>,
    /// RFC 3339 date or date-time, exclusive.
    #[arg(long)]
    until: Option<String>,
    /// Continue after this event id (the last `id` printed).
    #[arg(long)]
    after: Option<i64>,
    #[arg(long, default_value_t = 1000)]
    limit: i64,
    #[command(flatten)]
    database: DatabaseArg,
}

/// An audit event for something done from the command line.
pub(crate) fn cli_event(action: &'static str, detail: serde_json::Value) -> AuditEvent {
    Operator::CommandLine.event(action, detail)
}

pub(crate) async fn users(command: UsersCommand) -> anyhow::Result<()> {
    match command {
        UsersCommand::Add {
            id,
            name,
            role,
            supervisor,
            supervisor_from,
            team,
            external_id,
            employee_number,
            registration_number,
            database,
        } => {
            let db = Database::connect(&database.database_url).await?;
            let user =
                User { team_id: team, external_id, employee_number, registration_number, ..User::new(id, name, role) };
            org::add_user(&db, Operator::CommandLine, &user, supervisor.as_deref(), supervisor_from).await?;
            println!("added {} ({})", user.id, user.role);
            db.close().await;
        }
        UsersCommand::List { database } => {
            let db = Database::connect(&database.database_url).await?;
            for u in db.users().await? {
                let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}",
                    u.id,
                    u.name,
                    u.role,
                    u.status,
                    opt(&u.team_id),
                    opt(&u.external_id)
                );
            }
            db.close().await;
        }
        UsersCommand::Update {
            id,
            name,
            role,
            team,
            status,
            external_id,
            employee_number,
            registration_number,
            database,
        } => {
            let db = Database::connect(&database.database_url).await?;
            let mut user = db.user(&id).await?.ok_or_else(|| anyhow::anyhow!("no user {id:?}"))?;
            user.name = name.unwrap_or(user.name);
            user.role = role.unwrap_or(user.role);
            user.status = status.unwrap_or(user.status);
            user.team_id = team.or(user.team_id);
            user.external_id = external_id.or(user.external_id);
            user.employee_number = employee_number.or(user.employee_number);
            user.registration_number = registration_number.or(user.registration_number);
            org::update_user(&db, Operator::CommandLine, &user).await?;
            println!("updated {} ({}, {})", user.id, user.role, user.status);
            db.close().await;
        }
        UsersCommand::SetPassword { id, database } => {
            let mut line = String::new();
            std::io::stdin().read_line(&mut line)?;
            let password = line.strip_suffix('\n').unwrap_or(&line);
            let password = password.strip_suffix('\r').unwrap_or(password);
            let db = Database::connect(&database.database_url).await?;
            org::set_password(&db, Operator::CommandLine, &id, password.to_owned()).await?;
            println!("password set for {id}");
            db.close().await;
        }
        UsersCommand::Import { file, database } => {
            let text =
                std::fs::read_to_string(&file).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
            let db = Database::connect(&database.database_url).await?;
            let report = org::import(&db, Operator::CommandLine, &text).await?;
            println!(
                "{} users created, {} updated, {} teams created, {} supervisors changed",
                report.users_created, report.users_updated, report.teams_created, report.supervisors_changed
            );
            db.close().await;
        }
    }
    Ok(())
}

pub(crate) async fn teams(command: TeamsCommand) -> anyhow::Result<()> {
    match command {
        TeamsCommand::Add { id, name, database } => {
            let db = Database::connect(&database.database_url).await?;
            org::add_team(&db, Operator::CommandLine, &Team { id: id.clone(), name }).await?;
            println!("added team {id}");
            db.close().await;
        }
        TeamsCommand::List { database } => {
            let db = Database::connect(&database.database_url).await?;
            for t in db.teams().await? {
                println!("{}\t{}", t.id, t.name);
            }
            db.close().await;
        }
    }
    Ok(())
}

pub(crate) async fn supervision(command: SupervisionCommand) -> anyhow::Result<()> {
    match command {
        SupervisionCommand::Set { user, supervisor, none: _, from, database } => {
            let db = Database::connect(&database.database_url).await?;
            let from = org::set_supervisor(&db, Operator::CommandLine, &user, supervisor.as_deref(), from).await?;
            match supervisor {
                Some(s) => println!("{user} is supervised by {s} from {from}"),
                None => println!("{user}'s supervision ends on {from}"),
            }
            db.close().await;
        }
        SupervisionCommand::History { user, database } => {
            let db = Database::connect(&database.database_url).await?;
            for s in db.supervision_history(&user).await? {
                let to = s.ended_on.as_deref().unwrap_or("now");
                println!("{} supervised by {}\t{} .. {}", s.supervisee_id, s.supervisor_id, s.started_on, to);
            }
            db.close().await;
        }
    }
    Ok(())
}

pub(crate) async fn devices(command: DevicesCommand) -> anyhow::Result<()> {
    match command {
        DevicesCommand::List { user, database } => {
            let db = Database::connect(&database.database_url).await?;
            for d in db.devices(&user).await? {
                let state = if d.revoked_at.is_some() { "revoked" } else { "active" };
                println!("{}\t{}\tfirst seen {}\tlast seen {}", d.device_id, state, d.first_seen_at, d.last_seen_at);
            }
            db.close().await;
        }
        DevicesCommand::Revoke { user, device, database } => {
            let db = Database::connect(&database.database_url).await?;
            org::revoke_device(&db, Operator::CommandLine, &user, &device).await?;
            println!("revoked {device} of {user}; running servers close its connections within a second");
            db.close().await;
        }
    }
    Ok(())
}

pub(crate) async fn service_accounts(command: ServiceAccountsCommand) -> anyhow::Result<()> {
    match command {
        ServiceAccountsCommand::Add { name, scopes, database } => {
            let db = Database::connect(&database.database_url).await?;
            let (account, key) = org::add_service_account(&db, Operator::CommandLine, &name, &scopes).await?;
            println!(
                "added {} ({})\nkey: {key}\nThe key is shown only now; send it as `Authorization: Bearer <key>`.",
                account.id, account.name
            );
            db.close().await;
        }
        ServiceAccountsCommand::List { database } => {
            let db = Database::connect(&database.database_url).await?;
            for a in db.service_accounts().await? {
                let scopes: Vec<&str> = a.scopes.iter().map(|s| s.as_str()).collect();
                let state = if a.revoked_at.is_some() { "revoked" } else { "active" };
                println!("{}\t{}\t{}\t{state}", a.id, a.name, scopes.join(","));
            }
            db.close().await;
        }
        ServiceAccountsCommand::Rotate { id, database } => {
            let db = Database::connect(&database.database_url).await?;
            let key = org::rotate_service_account(&db, Operator::CommandLine, &id).await?;
            println!("new key for {id}: {key}");
            db.close().await;
        }
        ServiceAccountsCommand::Revoke { id, database } => {
            let db = Database::connect(&database.database_url).await?;
            org::revoke_service_account(&db, Operator::CommandLine, &id).await?;
            println!("revoked {id}");
            db.close().await;
        }
    }
    Ok(())
}

pub(crate) async fn audit(args: AuditArgs) -> anyhow::Result<()> {
    let db = Database::connect(&args.database.database_url).await?;
    let query = AuditQuery {
        user_id: args.user,
        document_id: args.record.as_deref().map(document_id).transpose().map_err(anyhow::Error::msg)?,
        since: args.since.as_deref().map(millis).transpose().map_err(anyhow::Error::msg)?,
        until: args.until.as_deref().map(millis).transpose().map_err(anyhow::Error::msg)?,
        after_id: args.after,
        limit: args.limit.max(1),
    };
    let rows = db.audit_trail(&query).await?;
    for row in &rows {
        println!("{}", serde_json::to_string(row)?);
    }
    let read = json!({ "user": query.user_id, "record": query.document_id, "rows": rows.len() });
    db.audit(cli_event("audit-read", read)).await?;
    db.close().await;
    Ok(())
}

/// A document id from an `automerge:` URL or a bare id, as the audit trail stores it.
pub(crate) fn document_id(input: &str) -> Result<String, String> {
    DocumentId::parse_url_or_id(input).map(|d| d.to_string()).map_err(|e| e.to_string())
}

/// Unix milliseconds from an RFC 3339 date (midnight UTC) or date-time.
pub(crate) fn millis(input: &str) -> Result<i64, String> {
    dates::unix_millis(input).ok_or_else(|| format!("{input:?} is not an RFC 3339 date or date-time (e.g. 2026-11-20)"))
}
pub(crate) async fn frameworks(command: FrameworksCommand) -> anyhow::Result<()> {
    match command {
        FrameworksCommand::Import { file, database } => {
            let text =
                std::fs::read_to_string(&file).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
            let framework = Framework::from_json(&text)?;
            let db = Database::connect(&database.database_url).await?;
            let report = db.import_framework(&framework).await?;
            println!(
                "{} {} ({}): {} ids added, {} retitled, {} retired (retired ids stay valid for existing records)",
                if report.created { "imported" } else { "corrected" },
                framework.id,
                framework.version,
                report.added,
                report.retitled,
                report.retired
            );
            db.close().await;
        }
        FrameworksCommand::List { database } => {
            let db = Database::connect(&database.database_url).await?;
            for f in db.frameworks().await? {
                let to = f.effective_to.as_deref().unwrap_or("");
                println!(
                    "{}\t{}\tversion {}\t{}\t{}..{}\t{} ids ({} retired)\t{}",
                    f.id, f.title, f.version, f.publisher, f.effective_from, to, f.items, f.retired, f.source
                );
            }
            db.close().await;
        }
    }
    Ok(())
}

pub(crate) async fn quarantine(command: QuarantineCommand) -> anyhow::Result<()> {
    match command {
        QuarantineCommand::List { document, database } => {
            let db = Database::connect(&database.database_url).await?;
            let document = document.map(|d| DocumentId::parse_url_or_id(&d)).transpose()?;
            for q in db.quarantined(document).await? {
                println!(
                    "{}\tautomerge:{}\t{}\t{}\t{} changes\t{}",
                    q.id,
                    q.document_id,
                    q.user_id,
                    q.device_id.as_deref().unwrap_or("-"),
                    q.change_hashes.len(),
                    q.reason
                );
            }
            db.close().await;
        }
        QuarantineCommand::Show { id, database } => {
            let db = Database::connect(&database.database_url).await?;
            let q = db.quarantined_change(id).await?.ok_or_else(|| anyhow::anyhow!("no quarantined change {id}"))?;
            // The stored record with the refused changes applied, for a reviewer to compare.
            let document: DocumentId = q.document_id.parse()?;
            let mut doc = db.load_document(document).await?.doc;
            let stored = json::to_json(&doc);
            doc.load_incremental(&q.changes)?;
            db.audit(cli_event("quarantine-read", json!({ "quarantine": q.id })).document(document)).await?;
            let out = serde_json::json!({
                "id": q.id,
                "document": document.url(),
                "user": q.user_id,
                "device": q.device_id,
                "reason": q.reason,
                "changeHashes": q.change_hashes,
                "receivedAtMillis": q.received_at,
                "stored": stored,
                "withRefusedChanges": json::to_json(&doc),
            });
            println!("{}", serde_json::to_string_pretty(&out)?);
            db.close().await;
        }
    }
    Ok(())
}

/// `fieldbook backup`: a consistent copy of the SQLite database, taken while serving.
pub(crate) async fn backup(to: &std::path::Path, database_url: &str) -> anyhow::Result<()> {
    let db = Database::connect(database_url).await?;
    let summary = db.backup_into(to).await?;
    let detail = json!({ "to": to.display().to_string(), "documents": summary.documents });
    db.audit(cli_event("backup-taken", detail)).await?;
    db.close().await;
    println!("backed up {} records and {} audit events to", summary.documents, summary.audit_events);
    println!("{}", to.display());
    Ok(())
}

/// `fieldbook restore`: a backup in place of the SQLite database, with no process using it.
/// Erasures the backup lacks are made again on its copy before it is put in place, so a
/// server never serves the backup without them.
pub(crate) async fn restore(from: &std::path::Path, database_url: &str) -> anyhow::Result<()> {
    let Some(path) = crate::storage::sqlite_path(database_url) else {
        anyhow::bail!("restore puts back SQLite backups; on PostgreSQL use pg_restore (see the README, \"Backups\")");
    };
    let restore = crate::storage::backup::Restore::begin(from, &path).await?;
    // Opening the copy brings an older backup's schema up to date.
    let staged = Database::open_for_restore(&restore.staged_url()).await?;
    let reapplied = match restore.live_url() {
        Some(live) => {
            let source = Database::open_for_restore(&live).await?;
            let reapplied = match crate::erasure::foreign_ledger(&source).await {
                Ok(ledger) => crate::erasure::reapply_ledger(&staged, &ledger).await,
                Err(e) => Err(e),
            };
            source.close().await;
            reapplied?
        }
        None => 0,
    };
    let detail = json!({ "from": from.display().to_string(), "erasuresReapplied": reapplied });
    staged.audit(cli_event("backup-restored", detail)).await?;
    staged.truncate_log().await?;
    staged.close().await;
    let kept = restore.finish()?;
    println!("restored {} from {}", path.display(), from.display());
    println!("re-applied {reapplied} erasures and deletions from the ledger of the database it replaced");
    if let Some(kept) = kept {
        println!("the database it replaced is kept as {}", kept.display());
    }
    Ok(())
}
