//! `fieldbook retention`, `fieldbook holds`, and deleting records by hand
//! (`fieldbook records delete`, `fieldbook records consent-withdrawn --delete`).

use clap::Subcommand;
use fieldbook_sync_core::DocumentId;
use serde_json::json;

use crate::cli::DatabaseArg;
use crate::org::Operator;
use crate::storage::{Database, DeleteOutcome, RetentionPolicy, now_millis};

#[derive(Subcommand)]
pub(crate) enum RetentionCommand {
    /// Set how long a record type is kept, and from when (replacing its policy).
    Set {
        /// `observation` or `development-plan`.
        #[arg(long = "type", value_name = "TYPE")]
        record_type: String,
        /// How long: years, months or days, e.g. `6y`, `18m`, `90d`.
        #[arg(long)]
        keep: String,
        /// `sign-off` (an observation signed off by both, else the record's last change) or
        /// `leaving` (the practitioner it is about left).
        #[arg(long)]
        after: String,
        #[command(flatten)]
        database: DatabaseArg,
    },
    /// List the policies (JSON lines). A record type without one is kept.
    List {
        #[command(flatten)]
        database: DatabaseArg,
    },
    /// Remove a record type's policy: its records are kept until one is set again.
    Remove {
        #[arg(long = "type", value_name = "TYPE")]
        record_type: String,
        #[command(flatten)]
        database: DatabaseArg,
    },
    /// Delete every record whose retention has ended, except what a legal hold keeps; devices
    /// holding one are told to remove it. One JSON line per record, then a summary.
    Run {
        /// Only say what would be deleted.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        database: DatabaseArg,
    },
}

#[derive(Subcommand)]
pub(crate) enum HoldsCommand {
    /// Keep a person's records (every record they are a party to) or one record past their
    /// retention, until the hold is removed. Prints the hold's id.
    Add {
        #[arg(long, required_unless_present = "record", conflicts_with = "record")]
        user: Option<String>,
        /// An `automerge:` URL or document id.
        #[arg(long)]
        record: Option<String>,
        /// Why (e.g. the case or claim it is for).
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        database: DatabaseArg,
    },
    /// Release a hold (it stays listed with `--all`).
    Remove {
        id: i64,
        #[command(flatten)]
        database: DatabaseArg,
    },
    /// Holds in force (JSON lines).
    List {
        /// Released holds too.
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        database: DatabaseArg,
    },
}

pub(crate) async fn retention(command: RetentionCommand) -> anyhow::Result<()> {
    let operator = Operator::CommandLine;
    match command {
        RetentionCommand::Set { record_type, keep, after, database } => {
            super::check_policy(&record_type, &keep, &after).map_err(anyhow::Error::msg)?;
            let db = Database::connect(&database.database_url).await?;
            let policy = RetentionPolicy { record_type, keep, after, set_by: operator.name(), set_at: now_millis() };
            db.set_retention_policy(&policy).await?;
            let detail = json!({ "type": policy.record_type, "keep": policy.keep, "after": policy.after });
            db.audit(operator.event("retention-policy-set", detail)).await?;
            db.close().await;
            println!("{} records are kept {} after {}", policy.record_type, policy.keep, policy.after);
        }
        RetentionCommand::List { database } => {
            let db = Database::connect(&database.database_url).await?;
            for policy in db.retention_policies().await? {
                println!("{}", serde_json::to_string(&policy)?);
            }
            db.close().await;
        }
        RetentionCommand::Remove { record_type, database } => {
            let db = Database::connect(&database.database_url).await?;
            let removed = db.remove_retention_policy(&record_type).await?;
            if removed {
                db.audit(operator.event("retention-policy-removed", json!({ "type": record_type }))).await?;
            }
            db.close().await;
            anyhow::ensure!(removed, "{record_type:?} has no retention policy");
            println!("{record_type} records are now kept until a policy is set");
        }
        RetentionCommand::Run { dry_run, database } => {
            let db = Database::connect(&database.database_url).await?;
            let report = super::run(&db, operator, dry_run).await;
            db.close().await;
            let report = report?;
            let deleted = if dry_run { "would delete" } else { "deleted" };
            for (action, records) in [(deleted, &report.deleted), ("held", &report.held), ("failed", &report.failed)] {
                for record in records {
                    let mut line = serde_json::to_value(record)?;
                    line["action"] = json!(action);
                    println!("{line}");
                }
            }
            println!("{deleted} {} records; {} kept under legal holds", report.deleted.len(), report.held.len());
            anyhow::ensure!(report.failed.is_empty(), "{} expired records could not be deleted", report.failed.len());
        }
    }
    Ok(())
}

pub(crate) async fn holds(command: HoldsCommand) -> anyhow::Result<()> {
    let operator = Operator::CommandLine;
    match command {
        HoldsCommand::Add { user, record, reason, database } => {
            anyhow::ensure!(!reason.trim().is_empty(), "give a reason for the hold");
            let db = Database::connect(&database.database_url).await?;
            let document = record.as_deref().map(DocumentId::parse_url_or_id).transpose()?;
            if let Some(user) = &user {
                anyhow::ensure!(db.user(user).await?.is_some(), "no user {user:?}");
            }
            if let Some(document) = document {
                anyhow::ensure!(!db.load_chunks(document).await?.is_empty(), "no record {}", document.url());
            }
            let id = db.add_hold(user.as_deref(), document, reason.trim(), &operator.name()).await?;
            let detail =
                json!({ "hold": id, "user": user, "record": document.map(|d| d.url()), "reason": reason.trim() });
            db.audit(operator.event("legal-hold-placed", detail)).await?;
            db.close().await;
            println!("{id}");
        }
        HoldsCommand::Remove { id, database } => {
            let db = Database::connect(&database.database_url).await?;
            let released = db.release_hold(id, &operator.name()).await?;
            if released {
                db.audit(operator.event("legal-hold-released", json!({ "hold": id }))).await?;
            }
            db.close().await;
            anyhow::ensure!(released, "no hold {id} in force");
            println!("released hold {id}");
        }
        HoldsCommand::List { all, database } => {
            let db = Database::connect(&database.database_url).await?;
            for hold in db.holds(all).await? {
                println!("{}", serde_json::to_string(&hold)?);
            }
            db.close().await;
        }
    }
    Ok(())
}

/// `fieldbook records delete`: one record, by hand.
pub(crate) async fn delete_record(record: &str, reason: &str, database: &DatabaseArg) -> anyhow::Result<()> {
    anyhow::ensure!(!reason.trim().is_empty(), "give a reason: it is kept in the audit trail and the ledger");
    let document = DocumentId::parse_url_or_id(record)?;
    let db = Database::connect(&database.database_url).await?;
    let outcome = super::delete(&db, Operator::CommandLine, document, reason.trim(), None).await;
    db.close().await;
    let outcome = outcome?;
    anyhow::ensure!(outcome != DeleteOutcome::NotFound, "no record {} (or it was deleted already)", document.url());
    println!("{}", describe(document, &outcome));
    Ok(())
}

/// `fieldbook records consent-withdrawn`: observations whose family withdrew consent, for
/// review; with `--delete`, each is deleted (except what a hold keeps).
pub(crate) async fn consent_withdrawn(delete: Option<&str>, database: &DatabaseArg) -> anyhow::Result<()> {
    if let Some(reason) = delete {
        anyhow::ensure!(!reason.trim().is_empty(), "give a reason: it is kept in the audit trail and the ledger");
    }
    let db = Database::connect(&database.database_url).await?;
    let listed = db.consent_withdrawn().await;
    let result = async {
        for record in listed? {
            let mut line = serde_json::to_value(&record)?;
            if let Some(reason) = delete {
                let document = DocumentId::parse_url_or_id(&record.record)?;
                let outcome = super::delete(&db, Operator::CommandLine, document, reason, None).await?;
                line["outcome"] = json!(describe(document, &outcome));
            }
            println!("{line}");
        }
        anyhow::Ok(())
    }
    .await;
    db.close().await;
    result
}

fn describe(document: DocumentId, outcome: &DeleteOutcome) -> String {
    match outcome {
        DeleteOutcome::Deleted(_) => format!("deleted {}", document.url()),
        DeleteOutcome::Held(holds) => format!("kept {}: legal holds {holds:?} cover it", document.url()),
        DeleteOutcome::NotFound => format!("{} was deleted already", document.url()),
        DeleteOutcome::NotDiscardable(refusal) => format!("kept {}: {refusal}", document.url()),
    }
}
