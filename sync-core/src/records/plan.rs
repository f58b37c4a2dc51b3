//! `type: "development-plan"`: a practitioner's plan of learning, with goals and evidence.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::check;
use super::observation::Signature;
use super::{FieldPath, RecordError};
use crate::document_id::DocumentId;
use crate::frameworks::FrameworkCatalog;

pub const SOURCES: &[&str] = &["appraisal", "observation", "supervision", "early-career-programme"];
pub const GOAL_STATUSES: &[&str] = &["not-started", "in-progress", "met", "not-met", "withdrawn"];
pub const STATUSES: &[&str] = &["draft", "agreed", "closed"];

/// Required: `type`, `schemaVersion`, `ownerId`, `supervisorId`, `framework`, `status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DevelopmentPlan {
    pub owner_id: String,
    pub supervisor_id: String,
    pub framework: String,
    #[serde(default)]
    pub period: Option<Period>,
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub gap_analysis: BTreeMap<String, GapRating>,
    #[serde(default)]
    pub goals: Vec<Goal>,
    #[serde(default)]
    pub reviews: Vec<Review>,
    pub status: String,
    /// Set by the supervisor with `status: "agreed"`, replaced whole each time they agree
    /// it and removed when they reopen it; the owner then agrees too, inside it.
    #[serde(default)]
    pub agreement: Option<Agreement>,
}

/// The supervisor's agreement to the plan as it stands, and the owner's to the same.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Agreement {
    #[serde(flatten)]
    pub supervisor: Signature,
    #[serde(default)]
    pub owner: Option<Signature>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Period {
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub to: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct GapRating {
    #[serde(default, rename = "self")]
    pub self_rating: Option<f64>,
    #[serde(default)]
    pub supervisor: Option<f64>,
    #[serde(default)]
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Goal {
    pub id: String,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub components: Vec<String>,
    #[serde(default)]
    pub success_measure: Option<String>,
    #[serde(default)]
    pub target_date: Option<String>,
    #[serde(default)]
    pub support: Option<String>,
    pub status: String,
    #[serde(default)]
    pub completed_at: Option<String>,
    /// The owner's reflection on their progress.
    #[serde(default)]
    pub reflection: Option<String>,
    /// Observation document URLs that evidence this goal.
    #[serde(default)]
    pub evidence: Vec<String>,
    /// Research resource ids (see `crate::resources`) the goal cites.
    #[serde(default)]
    pub resources: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Review {
    pub at: String,
    pub by: String,
    #[serde(default)]
    pub note: Option<String>,
}

impl DevelopmentPlan {
    pub(super) fn validate(&self, frameworks: &impl FrameworkCatalog) -> Result<(), RecordError> {
        let field = FieldPath::field;
        check::not_blank(&field("ownerId"), &self.owner_id)?;
        check::not_blank(&field("supervisorId"), &self.supervisor_id)?;
        check::framework(&field("framework"), &self.framework, frameworks)?;
        if let Some(period) = &self.period {
            check::date(&field("period").key("from"), period.from.as_deref())?;
            check::date(&field("period").key("to"), period.to.as_deref())?;
        }
        if let Some(source) = &self.source {
            check::one_of(&field("source"), source, SOURCES)?;
        }
        for (id, rating) in &self.gap_analysis {
            let at = field("gapAnalysis").entry(id);
            check::component(&at, &self.framework, id, frameworks)?;
            for (who, value) in [("self", rating.self_rating), ("supervisor", rating.supervisor)] {
                if let Some(v) = value
                    && (!(1.0..=4.0).contains(&v) || v.fract() != 0.0)
                {
                    return Err(RecordError::new(at.key(who), "rating", format!("{v} is not a rating from 1 to 4")));
                }
            }
        }
        let mut goal_ids = std::collections::BTreeSet::new();
        for (i, goal) in self.goals.iter().enumerate() {
            let at = field("goals").index(i);
            check::not_blank(&at.key("id"), &goal.id)?;
            if !goal_ids.insert(goal.id.as_str()) {
                return Err(RecordError::new(at.key("id"), "unique", format!("goal id {:?} is used twice", goal.id)));
            }
            for (j, id) in goal.components.iter().enumerate() {
                check::component(&at.key("components").index(j), &self.framework, id, frameworks)?;
            }
            check::date(&at.key("targetDate"), goal.target_date.as_deref())?;
            check::one_of(&at.key("status"), &goal.status, GOAL_STATUSES)?;
            check::timestamp(&at.key("completedAt"), goal.completed_at.as_deref())?;
            for (j, url) in goal.evidence.iter().enumerate() {
                if !url.starts_with("automerge:") || DocumentId::parse_url_or_id(url).is_err() {
                    return Err(RecordError::new(
                        at.key("evidence").index(j),
                        "document-url",
                        format!("{url:?} is not an automerge: document URL"),
                    ));
                }
            }
            for (j, id) in goal.resources.iter().enumerate() {
                if !frameworks.knows_resource(id) {
                    return Err(RecordError::new(
                        at.key("resources").index(j),
                        "unknown-resource",
                        format!("{id:?} is not an imported resource (`fieldbook resources list`)"),
                    ));
                }
            }
        }
        for (i, review) in self.reviews.iter().enumerate() {
            let at = field("reviews").index(i);
            check::timestamp(&at.key("at"), Some(&review.at))?;
            check::not_blank(&at.key("by"), &review.by)?;
        }
        check::one_of(&field("status"), &self.status, STATUSES)?;
        if let Some(agreement) = &self.agreement {
            let at = field("agreement");
            if self.status == "draft" {
                let problem = "a draft plan is not agreed: remove the agreement when reopening the plan";
                return Err(RecordError::new(at, "agreed-draft", problem));
            }
            check::signature(&at, &agreement.supervisor, &self.supervisor_id, "supervisor's agreement")?;
            if let Some(owner) = &agreement.owner {
                check::signature(&at.key("owner"), owner, &self.owner_id, "owner's agreement")?;
            }
        }
        Ok(())
    }
}
