//! `fieldbook resources`: the research resources plan goals cite (issue 16).

use clap::Subcommand;
use fieldbook_sync_core::resources::ResourceFile;
use serde_json::json;

use crate::cli::DatabaseArg;
use crate::org::Operator;
use crate::storage::Database;

#[derive(Subcommand)]
pub(crate) enum ResourcesCommand {
    /// Add resources, or correct them, from a JSON file (format in the README). A retired
    /// resource in the file is current again; resources not in the file are left alone.
    Import {
        file: std::path::PathBuf,
        #[command(flatten)]
        database: DatabaseArg,
    },
    /// Retire a resource: goals that cite it keep it; the app stops suggesting it.
    Retire {
        id: String,
        #[command(flatten)]
        database: DatabaseArg,
    },
    /// Every resource (JSON lines), retired ones marked.
    List {
        #[command(flatten)]
        database: DatabaseArg,
    },
}

pub(crate) async fn command(command: ResourcesCommand) -> anyhow::Result<()> {
    let operator = Operator::CommandLine;
    match command {
        ResourcesCommand::Import { file, database } => {
            let text =
                std::fs::read_to_string(&file).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
            let db = Database::connect(&database.database_url).await?;
            let resources = ResourceFile::from_json(&text, &db.framework_catalog().await?)?;
            let report = db.import_resources(&resources).await?;
            let ids: Vec<&str> = resources.resources.iter().map(|r| r.id.as_str()).collect();
            db.audit(operator.event("resources-imported", json!({ "source": resources.source, "ids": ids }))).await?;
            db.close().await;
            println!(
                "{} resources added, {} updated, {} restored from retirement",
                report.added, report.updated, report.restored
            );
        }
        ResourcesCommand::Retire { id, database } => {
            let db = Database::connect(&database.database_url).await?;
            let retired = db.retire_resource(&id).await;
            if let Ok(true) = retired {
                db.audit(operator.event("resource-retired", json!({ "id": id }))).await?;
            }
            db.close().await;
            if retired? {
                println!("{id} is retired: goals that cite it keep it, and it is no longer suggested");
            } else {
                println!("{id} was retired already");
            }
        }
        ResourcesCommand::List { database } => {
            let db = Database::connect(&database.database_url).await?;
            for resource in db.resources().await? {
                println!("{}", serde_json::to_string(&resource)?);
            }
            db.close().await;
        }
    }
    Ok(())
}
