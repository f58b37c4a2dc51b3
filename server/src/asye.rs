//! ASYE progress (issue 16): for a practitioner in their assessed and supported year in
//! employment (a plan with `source: early-career-programme`), the programme's evidence so far
//! — direct observations signed off by both, feedback from families (family voice) and the
//! practitioner's own reflections — against the counts the employer's programme asks for,
//! which are data (`fieldbook asye set`).

use clap::Subcommand;
use fieldbook_sync_core::DocumentId;
use fieldbook_sync_core::records::dates;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::cli::DatabaseArg;
use crate::org::Operator;
use crate::storage::{CpdSource, Database, StorageError};

const SETTING: &str = "asye_requirements";

/// How many of each piece of evidence the programme asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    /// Direct observations of practice, signed off by both.
    pub observations: u32,
    /// Feedback from people with lived experience: observations with family voice recorded.
    pub family_voice: u32,
    /// The practitioner's own written reflections (on observations, in group sessions).
    pub reflections: u32,
}

/// Commonly asked for (Skills for Care's ASYE framework; employers vary).
pub const DEFAULT: Counts = Counts { observations: 3, family_voice: 3, reflections: 2 };

pub async fn requirements(db: &Database) -> Result<Counts, StorageError> {
    Ok(db.setting(SETTING).await?.and_then(|v| serde_json::from_str(&v).ok()).unwrap_or(DEFAULT))
}

/// `user_id`'s ASYE progress; `inAsye: false` without an early-career-programme plan.
pub async fn progress(db: &Database, user_id: &str) -> Result<Value, StorageError> {
    let required = requirements(db).await?;
    let Some((plan, from, to)) = db.asye_plan(user_id).await? else {
        return Ok(json!({ "userId": user_id, "inAsye": false, "requirements": required }));
    };
    let within = |day: &str| from.as_deref().is_none_or(|f| f <= day) && to.as_deref().is_none_or(|t| day <= t);
    let mut done = Counts { observations: 0, family_voice: 0, reflections: 0 };
    for source in db.cpd_sources(user_id).await? {
        let (url, on, observation) = match &source {
            CpdSource::Observation { url, on } => (url, on, true),
            CpdSource::GroupSession { url, on } => (url, on, false),
            CpdSource::Goal { .. } => continue,
        };
        let Some(day) = on.as_deref().and_then(dates::utc_day) else { continue };
        if !within(&day) {
            continue;
        }
        if !observation {
            done.reflections += 1; // a session is a source only once they reflected in it
            continue;
        }
        let Ok(document) = DocumentId::parse_url_or_id(url) else { continue };
        let doc = fieldbook_sync_core::json::to_json(&db.load_document(document).await?.doc);
        let written = |v: &Value| v.as_str().or_else(|| v["text"].as_str()).is_some_and(|t| !t.trim().is_empty());
        done.observations += 1;
        done.family_voice += u32::from(written(&doc["familyVoice"]));
        done.reflections += u32::from(written(&doc["reflection"]));
    }
    let needed = |want: u32, have: u32| want.saturating_sub(have);
    Ok(json!({
        "userId": user_id,
        "inAsye": true,
        "plan": plan,
        "period": { "from": from, "to": to },
        "requirements": required,
        "evidence": done,
        "stillNeeded": {
            "observations": needed(required.observations, done.observations),
            "familyVoice": needed(required.family_voice, done.family_voice),
            "reflections": needed(required.reflections, done.reflections),
        },
    }))
}

#[derive(Subcommand)]
pub(crate) enum AsyeCommand {
    /// Set the counts the programme asks for.
    Set {
        #[arg(long)]
        observations: u32,
        #[arg(long)]
        family_voice: u32,
        #[arg(long)]
        reflections: u32,
        #[command(flatten)]
        database: DatabaseArg,
    },
    /// Print the counts in force (JSON).
    Show {
        #[command(flatten)]
        database: DatabaseArg,
    },
}

pub(crate) async fn command(command: AsyeCommand) -> anyhow::Result<()> {
    match command {
        AsyeCommand::Set { observations, family_voice, reflections, database } => {
            let db = Database::connect(&database.database_url).await?;
            let counts = Counts { observations, family_voice, reflections };
            db.set_setting(SETTING, &serde_json::to_string(&counts)?).await?;
            let operator = Operator::CommandLine;
            db.audit(operator.event("asye-requirements-set", json!(counts))).await?;
            db.close().await;
            println!("{}", serde_json::to_string(&counts)?);
        }
        AsyeCommand::Show { database } => {
            let db = Database::connect(&database.database_url).await?;
            println!("{}", serde_json::to_string(&requirements(&db).await?)?);
            db.close().await;
        }
    }
    Ok(())
}
