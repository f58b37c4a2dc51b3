//! Practice champions and the expertise map (issue 16): `fieldbook champions`, and the
//! check that a component id names an area or component of a known framework.

use clap::Subcommand;
use fieldbook_sync_core::frameworks::FrameworkCatalog;
use serde_json::json;

use crate::cli::DatabaseArg;
use crate::org::Operator;
use crate::storage::{Database, StorageError};

/// Whether `component` is an area or component id of an imported framework
/// (`kss-cf-2018/6`, `kss-cf-2018/6.2`).
pub async fn known_component(db: &Database, component: &str) -> Result<bool, StorageError> {
    let Some((framework, _)) = component.split_once('/') else { return Ok(false) };
    Ok(db.framework_catalog().await?.knows(framework, component) == Some(true))
}

#[derive(Subcommand)]
pub(crate) enum ChampionsCommand {
    /// Declare a practice champion for a framework area or component (confirming their
    /// nomination, if they made one).
    Add {
        #[arg(long)]
        user: String,
        /// An area or component id, e.g. `kss-cf-2018/6`.
        #[arg(long)]
        component: String,
        #[command(flatten)]
        database: DatabaseArg,
    },
    /// Remove a champion (or a nomination).
    Remove {
        #[arg(long)]
        user: String,
        #[arg(long)]
        component: String,
        #[command(flatten)]
        database: DatabaseArg,
    },
    /// Champions and nominations (JSON lines).
    List {
        #[command(flatten)]
        database: DatabaseArg,
    },
}

pub(crate) async fn champions(command: ChampionsCommand) -> anyhow::Result<()> {
    let operator = Operator::CommandLine;
    match command {
        ChampionsCommand::Add { user, component, database } => {
            let db = Database::connect(&database.database_url).await?;
            anyhow::ensure!(db.user(&user).await?.is_some(), "no user {user:?}");
            anyhow::ensure!(
                known_component(&db, &component).await?,
                "{component:?} is not an area or component of an imported framework"
            );
            db.confirm_champion(&user, &component, &operator.name()).await?;
            db.audit(operator.event("champion-declared", json!({ "user": user, "component": component }))).await?;
            db.close().await;
            println!("{user} is a practice champion for {component}");
        }
        ChampionsCommand::Remove { user, component, database } => {
            let db = Database::connect(&database.database_url).await?;
            let removed = db.remove_champion(&user, &component).await?;
            if removed {
                db.audit(operator.event("champion-removed", json!({ "user": user, "component": component }))).await?;
            }
            db.close().await;
            anyhow::ensure!(removed, "{user} is not a champion for {component}");
            println!("{user} is no longer a practice champion for {component}");
        }
        ChampionsCommand::List { database } => {
            let db = Database::connect(&database.database_url).await?;
            for champion in db.champions().await? {
                println!("{}", serde_json::to_string(&champion)?);
            }
            db.close().await;
        }
    }
    Ok(())
}
