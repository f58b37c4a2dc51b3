//! `type: "practice-theme"`: a theme a supervisor sees across observations, raised to the
//! managers above them ("you said"), and what the organisation did about it ("we did").

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::check;
use super::{FieldPath, RecordError};
use crate::frameworks::FrameworkCatalog;

pub const CATEGORIES: &[&str] = &["practice", "workload", "environment", "organisation"];
pub const STATUSES: &[&str] = &["raised", "acknowledged", "acted", "closed"];
/// Evidence labels are identifiers (`observations`, `kss-cf-2018/3:not-met`), never prose.
const MAX_LABEL: usize = 80;

/// Required: `type`, `schemaVersion`, `raisedBy`, `category`, `status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PracticeTheme {
    pub raised_by: String,
    #[serde(default)]
    pub raised_at: Option<String>,
    /// The team whose members see the theme and its responses.
    #[serde(default)]
    pub team: Option<String>,
    pub category: String,
    #[serde(default)]
    pub framework: Option<String>,
    #[serde(default)]
    pub components: Vec<String>,
    /// Anonymised: no family identifiers.
    #[serde(default)]
    pub summary: Option<String>,
    /// Aggregate counts from insights: label → number. Numbers only.
    #[serde(default)]
    pub evidence: BTreeMap<String, f64>,
    #[serde(default)]
    pub responses: Vec<Response>,
    pub status: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    pub id: String,
    pub at: String,
    pub by: String,
    #[serde(default)]
    pub text: Option<String>,
}

impl PracticeTheme {
    pub(super) fn validate(&self, frameworks: &impl FrameworkCatalog) -> Result<(), RecordError> {
        let field = FieldPath::field;
        check::not_blank(&field("raisedBy"), &self.raised_by)?;
        check::timestamp(&field("raisedAt"), self.raised_at.as_deref())?;
        check::one_of(&field("category"), &self.category, CATEGORIES)?;
        check::framework_components(self.framework.as_deref(), &self.components, frameworks)?;
        for (label, count) in &self.evidence {
            let at = field("evidence").entry(label);
            let identifier = |c: char| c.is_ascii_alphanumeric() || "-_.:/".contains(c);
            if label.is_empty() || label.len() > MAX_LABEL || !label.chars().all(identifier) {
                return Err(RecordError::new(
                    at,
                    "evidence-label",
                    "evidence labels are identifiers (letters, digits, - _ . : /, up to 80), not prose",
                ));
            }
            if *count < 0.0 || count.fract() != 0.0 {
                return Err(RecordError::new(at, "count", format!("{count} is not a count")));
            }
        }
        let mut ids = BTreeSet::new();
        for (i, response) in self.responses.iter().enumerate() {
            let at = field("responses").index(i);
            check::not_blank(&at.key("id"), &response.id)?;
            if !ids.insert(response.id.as_str()) {
                return Err(RecordError::new(
                    at.key("id"),
                    "unique",
                    format!("response id {:?} is used twice", response.id),
                ));
            }
            check::timestamp(&at.key("at"), Some(&response.at))?;
            check::not_blank(&at.key("by"), &response.by)?;
        }
        check::one_of(&field("status"), &self.status, STATUSES)?;
        Ok(())
    }
}
