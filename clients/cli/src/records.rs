//! The supervisor's and practitioner's workflow on records, all offline: each command edits
//! the local copy; `sync` shares it later. The server checks every change again.

use anyhow::{Context, bail};
use automerge::transaction::Transactable;
use automerge::{Automerge, ReadDoc};
use clap::{Args, Subcommand, ValueEnum};
use fieldbook_sync_core::records::{Observation, dates};
use fieldbook_sync_core::{DocumentId, json};
use serde_json::{Value, json};

use crate::store::Store;

/// Long text: inline, from a file, or from stdin (`--file -`).
#[derive(Args, Debug)]
#[group(required = true, multiple = false)]
pub struct LongText {
    #[arg(long)]
    text: Option<String>,
    /// Read the text from a file, or `-` for stdin.
    #[arg(long)]
    file: Option<String>,
}

/// A JSON document: inline, from a file, or from stdin (`--file -`).
#[derive(Args, Debug)]
#[group(required = true, multiple = false)]
pub struct JsonText {
    #[arg(long)]
    json: Option<String>,
    /// Read the JSON from a file, or `-` for stdin.
    #[arg(long)]
    file: Option<String>,
}

impl LongText {
    fn read(self) -> anyhow::Result<String> {
        read_inline_or_file(self.text, self.file)
    }
}

impl JsonText {
    pub fn read(self) -> anyhow::Result<String> {
        read_inline_or_file(self.json, self.file)
    }
}

fn read_inline_or_file(inline: Option<String>, file: Option<String>) -> anyhow::Result<String> {
    match (inline, file) {
        (Some(text), _) => Ok(text),
        (None, Some(path)) if path == "-" => Ok(std::io::read_to_string(std::io::stdin())?),
        (None, Some(path)) => std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}")),
        (None, None) => bail!("nothing given: use the inline option or --file"),
    }
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Party {
    Observer,
    Practitioner,
}

#[derive(Subcommand, Debug)]
pub enum ObservationCommand {
    /// Start an observation (as the observer, `--user`); prints its URL.
    New {
        #[arg(long)]
        practitioner: String,
        #[arg(long)]
        framework: String,
        /// Component ids the observation looks for, comma-separated.
        #[arg(long, value_delimiter = ',')]
        components: Vec<String>,
        #[arg(long)]
        setting: String,
        /// When it happened (RFC 3339); default now.
        #[arg(long)]
        observed_at: Option<String>,
        /// Who was present, by role only (e.g. "mother, two children under 5"). Never names.
        #[arg(long)]
        present: Option<String>,
        #[arg(long)]
        purpose: Option<String>,
        /// Who gave consent to observe, by role.
        #[arg(long)]
        consent_by: Option<String>,
        /// How consent was given.
        #[arg(long)]
        consent_how: Option<String>,
    },
    /// The observer's notes.
    Notes {
        url: String,
        #[command(flatten)]
        text: LongText,
    },
    /// Record a judgement against a component.
    Judge {
        url: String,
        #[arg(long)]
        component: String,
        /// met, not-met or insufficient-opportunity.
        #[arg(long)]
        judgement: String,
    },
    /// The observer's constructive feedback.
    Feedback {
        url: String,
        #[command(flatten)]
        text: LongText,
    },
    /// Add a development action, optionally linked to a plan goal.
    Action {
        url: String,
        #[arg(long)]
        text: String,
        #[arg(long)]
        goal: Option<String>,
    },
    /// The practitioner's reflection (and optional response to the feedback).
    Reflect {
        url: String,
        #[command(flatten)]
        text: LongText,
        #[arg(long)]
        response: Option<String>,
    },
    /// Feedback from the child or family, anonymised, with how it was gathered.
    FamilyVoice {
        url: String,
        #[arg(long)]
        text: String,
        #[arg(long)]
        how: String,
    },
    /// Share a draft with the practitioner.
    Share { url: String },
    /// Sign off as the observer or the practitioner; both sign-offs lock the record. A
    /// sign-off covers the record as it stands: what it covers is frozen until withdrawn.
    SignOff {
        url: String,
        #[arg(long = "as")]
        party: Party,
    },
    /// Withdraw your sign-off (before the other party's locks the record), to change your
    /// part again; the other party sees that you withdrew it.
    WithdrawSignOff {
        url: String,
        #[arg(long = "as")]
        party: Party,
    },
}

#[derive(Subcommand, Debug)]
pub enum PlanCommand {
    /// Start a development plan; prints its URL.
    New {
        #[arg(long)]
        owner: String,
        /// Default: the device user.
        #[arg(long)]
        supervisor: Option<String>,
        #[arg(long)]
        framework: String,
        #[arg(long)]
        from: Option<String>,
        #[arg(long)]
        to: Option<String>,
        /// appraisal, observation, supervision or early-career-programme.
        #[arg(long)]
        source: Option<String>,
    },
    /// Goals of a plan.
    Goal {
        #[command(subcommand)]
        command: GoalCommand,
    },
    /// Agree the plan (supervisor), reopen it for review (`draft`) or close it (locks it).
    Status {
        url: String,
        /// draft, agreed or closed.
        #[arg(long)]
        status: String,
    },
    /// Agree the plan its supervisor agreed (its owner).
    Agree { url: String },
}

#[derive(Subcommand, Debug)]
pub enum GoalCommand {
    Add {
        url: String,
        #[arg(long)]
        id: String,
        #[arg(long)]
        title: String,
        #[arg(long, value_delimiter = ',')]
        components: Vec<String>,
        #[arg(long)]
        target_date: Option<String>,
        #[arg(long)]
        success_measure: Option<String>,
        #[arg(long)]
        support: Option<String>,
    },
    /// Record an observation as evidence for a goal.
    Link {
        url: String,
        #[arg(long)]
        goal: String,
        #[arg(long)]
        observation: String,
    },
    /// not-started, in-progress, met, not-met or withdrawn.
    Status {
        url: String,
        #[arg(long)]
        goal: String,
        #[arg(long)]
        status: String,
    },
}

fn require_user(user: Option<&str>) -> anyhow::Result<&str> {
    user.context("say who you are with --user ID (or FIELDBOOK_USER)")
}

/// Commits with the device's clock (seconds, as automerge's JavaScript does): the server's
/// audit trail shows it as the device time of the change.
fn commit(tx: automerge::transaction::Transaction<'_>) {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    tx.commit_with(automerge::transaction::CommitOptions::default().with_time(now as i64));
}

/// Creates a document from JSON on this device; prints its URL.
pub async fn create(store: &Store, value: Value) -> anyhow::Result<()> {
    let mut doc = Automerge::new();
    let mut tx = doc.transaction();
    json::put_object(&mut tx, &value)?;
    commit(tx);
    let id = DocumentId::random();
    store.save(id, &doc).await?;
    println!("{}", id.url());
    Ok(())
}

/// Loads a document, applies `edit` in one transaction, and saves it.
pub async fn edit(
    store: &Store,
    url: &str,
    edit: impl FnOnce(&Value, &mut automerge::transaction::Transaction<'_>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let id = DocumentId::parse_url_or_id(url)?;
    let mut doc =
        store.load(id).await?.with_context(|| format!("{url} is not on this device; sync with --fetch first"))?;
    let current = json::to_json(&doc);
    let mut tx = doc.transaction();
    edit(&current, &mut tx)?;
    commit(tx);
    store.save(id, &doc).await?;
    println!("{}", id.url());
    Ok(())
}

fn expect_type(current: &Value, kind: &str) -> anyhow::Result<()> {
    if current["type"] != kind {
        bail!("this document is not a {kind}");
    }
    Ok(())
}

pub async fn observation(store: &Store, user: Option<&str>, command: ObservationCommand) -> anyhow::Result<()> {
    use ObservationCommand::*;
    match command {
        New {
            practitioner,
            framework,
            components,
            setting,
            observed_at,
            present,
            purpose,
            consent_by,
            consent_how,
        } => {
            let observer = require_user(user)?;
            let mut value = json!({
                "type": "observation", "schemaVersion": 1,
                "practitionerId": practitioner, "observerId": observer,
                "observedAt": observed_at.unwrap_or_else(dates::now), "setting": setting,
                "framework": framework, "components": components, "status": "draft",
                // Laid out now, so both parties' offline sign-offs land in one map (two
                // devices each creating `signOff` would conflict, and one would be refused).
                "signOff": {}, "judgements": {}, "actions": [],
            });
            if let Some(p) = present {
                value["present"] = json!(p);
            }
            if let Some(p) = purpose {
                value["purpose"] = json!(p);
            }
            if consent_by.is_some() || consent_how.is_some() {
                value["consent"] = json!({"given": true, "by": consent_by, "how": consent_how});
            }
            create(store, value).await
        }
        Notes { url, text } => set_text(store, &url, "notes", text.read()?).await,
        Judge { url, component, judgement } => {
            edit(store, &url, |current, tx| {
                expect_type(current, "observation")?;
                Ok(json::put_in_map(tx, "judgements", &component, &json!(judgement))?)
            })
            .await
        }
        Feedback { url, text } => {
            let text = text.read()?;
            edit(store, &url, |current, tx| {
                expect_type(current, "observation")?;
                json::set_path(tx, "feedback", &json!(text))?;
                Ok(json::set_path(tx, "feedbackGivenAt", &json!(dates::now()))?)
            })
            .await
        }
        Action { url, text, goal } => {
            edit(store, &url, |current, tx| {
                expect_type(current, "observation")?;
                let n = current["actions"].as_array().map_or(0, Vec::len);
                let mut action = json!({"id": format!("a{}", n + 1), "text": text});
                if let Some(goal) = goal {
                    action["goalId"] = json!(goal);
                }
                Ok(json::append(tx, "actions", &action)?)
            })
            .await
        }
        Reflect { url, text, response } => {
            let text = text.read()?;
            edit(store, &url, |current, tx| {
                expect_type(current, "observation")?;
                json::set_path(tx, "reflection", &json!(text))?;
                if let Some(response) = response {
                    json::set_path(tx, "response", &json!(response))?;
                }
                Ok(())
            })
            .await
        }
        FamilyVoice { url, text, how } => {
            edit(store, &url, |current, tx| {
                expect_type(current, "observation")?;
                Ok(json::set_path(tx, "familyVoice", &json!({"text": text, "how": how}))?)
            })
            .await
        }
        Share { url } => {
            edit(store, &url, |current, tx| {
                expect_type(current, "observation")?;
                if current["status"] != "draft" {
                    bail!("only a draft can be shared (this one is {})", current["status"]);
                }
                // The server's rule, checked here first so it is heard offline.
                let observation: Observation = serde_json::from_value(current.clone())?;
                if let Err(e) = observation.ready_to_share(&dates::today()) {
                    bail!("not shared: {} ({})", e.problem, e.path());
                }
                Ok(json::set_path(tx, "status", &json!("shared"))?)
            })
            .await
        }
        SignOff { url, party } => {
            let user = require_user(user)?.to_owned();
            edit(store, &url, |current, tx| {
                expect_type(current, "observation")?;
                let (key, owner, other) = sides(party);
                if current[owner] != user.as_str() {
                    bail!("only {} can sign off as the {key}", current[owner]);
                }
                json::put_in_map(tx, "signOff", key, &json!({"at": dates::now(), "by": user}))?;
                if !current["signOff"][other].is_null() {
                    json::set_path(tx, "status", &json!("signed-off"))?;
                }
                Ok(())
            })
            .await
        }
        WithdrawSignOff { url, party } => {
            let user = require_user(user)?.to_owned();
            edit(store, &url, |current, tx| {
                expect_type(current, "observation")?;
                let (key, owner, other) = sides(party);
                if current[owner] != user.as_str() {
                    bail!("only {} can withdraw the {key}'s sign-off", current[owner]);
                }
                if current["signOff"][key].is_null() {
                    bail!("the {key} has not signed off");
                }
                if !current["signOff"][other].is_null() {
                    bail!("both parties signed off: the record is locked");
                }
                let sign_off = match tx.get(automerge::ROOT, "signOff")? {
                    Some((automerge::Value::Object(_), id)) => id,
                    _ => bail!("the record has no sign-offs"),
                };
                tx.delete(&sign_off, key)?;
                Ok(())
            })
            .await
        }
    }
}

/// A party's key under `signOff`, the field naming them, and the other party's key.
fn sides(party: Party) -> (&'static str, &'static str, &'static str) {
    match party {
        Party::Observer => ("observer", "observerId", "practitioner"),
        Party::Practitioner => ("practitioner", "practitionerId", "observer"),
    }
}

async fn set_text(store: &Store, url: &str, field: &str, text: String) -> anyhow::Result<()> {
    edit(store, url, |current, tx| {
        expect_type(current, "observation")?;
        Ok(json::set_path(tx, field, &json!(text))?)
    })
    .await
}

pub async fn plan(store: &Store, user: Option<&str>, command: PlanCommand) -> anyhow::Result<()> {
    match command {
        PlanCommand::New { owner, supervisor, framework, from, to, source } => {
            let supervisor = match supervisor {
                Some(s) => s,
                None => require_user(user)?.to_owned(),
            };
            let mut value = json!({
                "type": "development-plan", "schemaVersion": 1,
                "ownerId": owner, "supervisorId": supervisor, "framework": framework,
                "goals": [], "reviews": [], "gapAnalysis": {}, "status": "draft",
            });
            if from.is_some() || to.is_some() {
                value["period"] = json!({"from": from, "to": to});
            }
            if let Some(source) = source {
                value["source"] = json!(source);
            }
            create(store, value).await
        }
        PlanCommand::Status { url, status } => {
            let agreed_by = if status == "agreed" { Some(require_user(user)?.to_owned()) } else { None };
            edit(store, &url, |current, tx| {
                expect_type(current, "development-plan")?;
                json::set_path(tx, "status", &json!(status))?;
                if let Some(by) = agreed_by {
                    // Agreed afresh: the owner agrees again.
                    json::set_path(tx, "agreement", &json!({"at": dates::now(), "by": by}))?;
                } else if status == "draft" && !current["agreement"].is_null() {
                    // Reopened for review: nobody's agreement stands.
                    tx.delete(automerge::ROOT, "agreement")?;
                }
                Ok(())
            })
            .await
        }
        PlanCommand::Agree { url } => {
            let user = require_user(user)?.to_owned();
            edit(store, &url, |current, tx| {
                expect_type(current, "development-plan")?;
                if current["ownerId"] != user.as_str() {
                    bail!("only the plan's owner, {}, agrees it here; its supervisor agrees with `plan status --status agreed`", current["ownerId"]);
                }
                if current["status"] != "agreed" || current["agreement"].is_null() {
                    bail!("the plan is not agreed by its supervisor yet");
                }
                Ok(json::put_in_map(tx, "agreement", "owner", &json!({"at": dates::now(), "by": user}))?)
            })
            .await
        }
        PlanCommand::Goal { command } => goal(store, command).await,
    }
}

fn goal_index(current: &Value, goal: &str) -> anyhow::Result<usize> {
    current["goals"]
        .as_array()
        .and_then(|goals| goals.iter().position(|g| g["id"] == goal))
        .with_context(|| format!("the plan has no goal {goal:?}"))
}

async fn goal(store: &Store, command: GoalCommand) -> anyhow::Result<()> {
    match command {
        GoalCommand::Add { url, id, title, components, target_date, success_measure, support } => {
            edit(store, &url, |current, tx| {
                expect_type(current, "development-plan")?;
                if goal_index(current, &id).is_ok() {
                    bail!("the plan already has a goal {id:?}");
                }
                let goal = json!({
                    "id": id, "title": title, "components": components, "targetDate": target_date,
                    "successMeasure": success_measure, "support": support,
                    "status": "not-started", "evidence": [],
                });
                Ok(json::append(tx, "goals", &goal)?)
            })
            .await
        }
        GoalCommand::Link { url, goal, observation } => {
            let observation = DocumentId::parse_url_or_id(&observation)?.url();
            edit(store, &url, |current, tx| {
                expect_type(current, "development-plan")?;
                let i = goal_index(current, &goal)?;
                if current["goals"][i]["evidence"]
                    .as_array()
                    .is_some_and(|e| e.iter().any(|u| u == observation.as_str()))
                {
                    return Ok(());
                }
                Ok(json::append(tx, &format!("goals.{i}.evidence"), &json!(observation))?)
            })
            .await
        }
        GoalCommand::Status { url, goal, status } => {
            edit(store, &url, |current, tx| {
                expect_type(current, "development-plan")?;
                let i = goal_index(current, &goal)?;
                json::set_path(tx, &format!("goals.{i}.status"), &json!(status))?;
                if status == "met" {
                    json::set_path(tx, &format!("goals.{i}.completedAt"), &json!(dates::now()))?;
                }
                Ok(())
            })
            .await
        }
    }
}
