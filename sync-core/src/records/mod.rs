//! The record types Fieldbook understands (see DOMAIN.md "Records"), their validation, and
//! the lock rule. Field names are a public contract: third-party clients write them.
//!
//! Records are read through JSON (`crate::json::to_json`), so every string field accepts
//! both plain strings and automerge Text — JavaScript clients write all strings as Text.

pub mod dates;
pub mod events;
mod field_path;
mod group_session;
mod observation;
mod plan;
mod practice_theme;

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::frameworks::FrameworkCatalog;

pub use field_path::{FieldPath, SCHEMA_NAMES, schema_name};
pub use group_session::{GroupSession, SessionAction};
pub use observation::{Action, Consent, Observation, Side, SignOff, Signature};
pub use plan::{Agreement, DevelopmentPlan, GapRating, Goal, Period, Review};
pub use practice_theme::{PracticeTheme, Response};

pub const OBSERVATION: &str = "observation";
pub const DEVELOPMENT_PLAN: &str = "development-plan";
pub const GROUP_SESSION: &str = "group-session";
pub const PRACTICE_THEME: &str = "practice-theme";
pub const SCHEMA_VERSION: u32 = 1;

/// The record types, as `type` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordKind {
    Observation,
    DevelopmentPlan,
    GroupSession,
    PracticeTheme,
}

impl RecordKind {
    pub const ALL: [RecordKind; 4] =
        [RecordKind::Observation, RecordKind::DevelopmentPlan, RecordKind::GroupSession, RecordKind::PracticeTheme];
    /// Every `type` name, for messages.
    pub const NAMES: &[&str] = &[OBSERVATION, DEVELOPMENT_PLAN, GROUP_SESSION, PRACTICE_THEME];

    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::Observation => OBSERVATION,
            RecordKind::DevelopmentPlan => DEVELOPMENT_PLAN,
            RecordKind::GroupSession => GROUP_SESSION,
            RecordKind::PracticeTheme => PRACTICE_THEME,
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// Why a document is not a valid record: where, which rule, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {problem}", .at.exact())]
pub struct RecordError {
    pub at: FieldPath,
    /// A stable name for the rule broken (`one-of`, `timestamp`, `unknown-component`, …).
    pub rule: &'static str,
    /// The values the rule allows, where it names them (ours, never the client's).
    pub expected: &'static [&'static str],
    /// For the sender: may quote what they wrote.
    pub problem: String,
}

impl RecordError {
    pub fn new(at: FieldPath, rule: &'static str, problem: impl Into<String>) -> Self {
        Self { at, rule, expected: &[], problem: problem.into() }
    }

    /// Where, as the document names it.
    pub fn path(&self) -> &str {
        self.at.exact()
    }
}

// A record is parsed once per incoming change and dropped soon after; boxing the larger
// variant would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    Observation(Observation),
    DevelopmentPlan(DevelopmentPlan),
    GroupSession(GroupSession),
    PracticeTheme(PracticeTheme),
}

impl Record {
    /// Parses and validates a document's JSON form.
    pub fn parse(doc: &Value, frameworks: &impl FrameworkCatalog) -> Result<Self, RecordError> {
        let kind = doc
            .get("type")
            .ok_or_else(|| RecordError::new(FieldPath::field("type"), "required", "missing; a record needs `type`"))?;
        let record = match kind.as_str().and_then(RecordKind::parse) {
            Some(RecordKind::Observation) => Record::Observation(deserialize(doc)?),
            Some(RecordKind::DevelopmentPlan) => Record::DevelopmentPlan(deserialize(doc)?),
            Some(RecordKind::GroupSession) => Record::GroupSession(deserialize(doc)?),
            Some(RecordKind::PracticeTheme) => Record::PracticeTheme(deserialize(doc)?),
            None => {
                return Err(RecordError {
                    expected: RecordKind::NAMES,
                    ..RecordError::new(
                        FieldPath::field("type"),
                        "one-of",
                        format!("unknown record type {kind}; expected one of {}", RecordKind::NAMES.join(", ")),
                    )
                });
            }
        };
        let version = doc.get("schemaVersion").and_then(Value::as_f64);
        if version != Some(f64::from(SCHEMA_VERSION)) {
            return Err(RecordError::new(
                FieldPath::field("schemaVersion"),
                "schema-version",
                format!(
                    "unsupported schema version {}; this server understands {SCHEMA_VERSION}",
                    doc.get("schemaVersion").unwrap_or(&Value::Null)
                ),
            ));
        }
        match &record {
            Record::Observation(o) => o.validate(frameworks)?,
            Record::DevelopmentPlan(p) => p.validate(frameworks)?,
            Record::GroupSession(g) => g.validate(frameworks)?,
            Record::PracticeTheme(t) => t.validate(frameworks)?,
        }
        Ok(record)
    }

    pub fn kind(&self) -> RecordKind {
        match self {
            Record::Observation(_) => RecordKind::Observation,
            Record::DevelopmentPlan(_) => RecordKind::DevelopmentPlan,
            Record::GroupSession(_) => RecordKind::GroupSession,
            Record::PracticeTheme(_) => RecordKind::PracticeTheme,
        }
    }

    pub fn status(&self) -> &str {
        match self {
            Record::Observation(o) => &o.status,
            Record::DevelopmentPlan(p) => &p.status,
            Record::GroupSession(g) => &g.status,
            Record::PracticeTheme(t) => &t.status,
        }
    }

    /// A locked record accepts no further changes: an observation both parties signed off;
    /// a plan, group session or practice theme that is closed.
    pub fn is_locked(&self) -> bool {
        match self {
            Record::Observation(o) => o.is_locked(),
            _ => self.status() == "closed",
        }
    }
}

/// Whether `after` only brings a locked observation's status to `signed-off`. Both parties
/// can sign off at once, each before seeing the other's signature, so neither sets the
/// status; this is the one change a locked record still takes (from either party, more than
/// once if both notice).
pub fn completes_sign_off(before: &Value, after: &Value) -> bool {
    let (Some(before), Some(after)) = (before.as_object(), after.as_object()) else { return false };
    after.get("type").and_then(Value::as_str) == Some(OBSERVATION)
        && after.get("status").and_then(Value::as_str) == Some("signed-off")
        && before.len() == after.len()
        && after.iter().all(|(key, value)| key == "status" || before.get(key) == Some(value))
}

fn deserialize<T: DeserializeOwned>(doc: &Value) -> Result<T, RecordError> {
    serde_path_to_error::deserialize(doc).map_err(|e| {
        // serde names a missing field in the message; the path is then its parent.
        let at = FieldPath::of_serde(e.path());
        let problem = e.into_inner().to_string();
        let rule = if problem.starts_with("missing field") { "required" } else { "type" };
        RecordError::new(at, rule, problem)
    })
}

/// Helpers shared by the record validators.
pub(crate) mod check {
    use super::{FieldPath, FrameworkCatalog, RecordError, dates};

    pub fn one_of(at: &FieldPath, value: &str, allowed: &'static [&'static str]) -> Result<(), RecordError> {
        if allowed.contains(&value) {
            Ok(())
        } else {
            Err(RecordError {
                expected: allowed,
                ..RecordError::new(at.clone(), "one-of", format!("{value:?} is not one of {}", allowed.join(", ")))
            })
        }
    }

    pub fn not_blank(at: &FieldPath, value: &str) -> Result<(), RecordError> {
        if value.trim().is_empty() {
            Err(RecordError::new(at.clone(), "not-blank", "must not be empty"))
        } else {
            Ok(())
        }
    }

    pub fn timestamp(at: &FieldPath, value: Option<&str>) -> Result<(), RecordError> {
        match value {
            Some(v) if !dates::is_timestamp(v) => Err(RecordError::new(
                at.clone(),
                "timestamp",
                format!("{v:?} is not an RFC 3339 date-time (e.g. 2026-11-20T10:00:00Z)"),
            )),
            _ => Ok(()),
        }
    }

    /// A signature (`{at, by}`) must be dated and by the one person it stands for.
    pub fn signature(at: &FieldPath, signed: &super::Signature, expected: &str, what: &str) -> Result<(), RecordError> {
        timestamp(&at.key("at"), Some(&signed.at))?;
        if signed.by != expected {
            return Err(RecordError::new(
                at.key("by"),
                "signed-by",
                format!("the {what} must be by {expected:?}, not {:?}", signed.by),
            ));
        }
        Ok(())
    }

    pub fn date(at: &FieldPath, value: Option<&str>) -> Result<(), RecordError> {
        match value {
            Some(v) if !dates::is_date_or_timestamp(v) => {
                Err(RecordError::new(at.clone(), "date", format!("{v:?} is not an RFC 3339 date (e.g. 2027-03-31)")))
            }
            _ => Ok(()),
        }
    }

    pub fn framework(at: &FieldPath, framework: &str, frameworks: &impl FrameworkCatalog) -> Result<(), RecordError> {
        match frameworks.knows(framework, "") {
            Some(_) => Ok(()),
            None => Err(RecordError::new(at.clone(), "unknown-framework", format!("unknown framework {framework:?}"))),
        }
    }

    /// An optional framework and the components chosen from it (a session's, a theme's):
    /// components need the framework.
    pub fn framework_components(
        framework: Option<&str>,
        components: &[String],
        frameworks: &impl FrameworkCatalog,
    ) -> Result<(), RecordError> {
        let field = FieldPath::field;
        match framework {
            Some(framework) => {
                self::framework(&field("framework"), framework, frameworks)?;
                for (i, id) in components.iter().enumerate() {
                    component(&field("components").index(i), framework, id, frameworks)?;
                }
                Ok(())
            }
            None if !components.is_empty() => {
                Err(RecordError::new(field("framework"), "required", "components need a `framework`"))
            }
            None => Ok(()),
        }
    }

    pub fn component(
        at: &FieldPath,
        framework: &str,
        id: &str,
        frameworks: &impl FrameworkCatalog,
    ) -> Result<(), RecordError> {
        match frameworks.knows(framework, id) {
            Some(true) => Ok(()),
            Some(false) => Err(RecordError::new(
                at.clone(),
                "unknown-component",
                format!("{id:?} is not a component of {framework}"),
            )),
            None => Err(RecordError::new(at.clone(), "unknown-framework", format!("unknown framework {framework:?}"))),
        }
    }
}

#[cfg(test)]
mod tests;
