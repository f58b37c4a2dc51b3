//! `type: "group-session"`: reflective group supervision, a team development session or a
//! practice discussion, run by a facilitator with several participants.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::check;
use super::{FieldPath, RecordError};
use crate::frameworks::FrameworkCatalog;

pub const KINDS: &[&str] = &["group-supervision", "team-development", "practice-discussion"];
pub const STATUSES: &[&str] = &["draft", "shared", "closed"];

/// Required: `type`, `schemaVersion`, `facilitatorId`, `kind`, `status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupSession {
    pub facilitator_id: String,
    #[serde(default)]
    pub participant_ids: Vec<String>,
    #[serde(default)]
    pub held_at: Option<String>,
    pub kind: String,
    #[serde(default)]
    pub framework: Option<String>,
    #[serde(default)]
    pub components: Vec<String>,
    /// Short texts naming what the group worked on.
    #[serde(default)]
    pub themes: Vec<String>,
    /// Anonymised: no family identifiers.
    #[serde(default)]
    pub summary: Option<String>,
    #[serde(default)]
    pub actions: Vec<SessionAction>,
    /// Participant id → their own reflection.
    #[serde(default)]
    pub reflections: BTreeMap<String, String>,
    pub status: String,
    #[serde(default)]
    pub closed_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionAction {
    pub id: String,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub owner_id: Option<String>,
}

impl GroupSession {
    pub(super) fn validate(&self, frameworks: &impl FrameworkCatalog) -> Result<(), RecordError> {
        let field = FieldPath::field;
        check::not_blank(&field("facilitatorId"), &self.facilitator_id)?;
        let mut participants = BTreeSet::new();
        for (i, id) in self.participant_ids.iter().enumerate() {
            let at = field("participantIds").index(i);
            check::not_blank(&at, id)?;
            if id.chars().any(char::is_whitespace) {
                return Err(RecordError::new(at, "user-id", format!("{id:?} is not a user id (it holds a space)")));
            }
            if *id == self.facilitator_id {
                return Err(RecordError::new(at, "not-facilitator", "the facilitator is not one of the participants"));
            }
            if !participants.insert(id.as_str()) {
                return Err(RecordError::new(at, "unique", format!("participant {id:?} is listed twice")));
            }
        }
        check::timestamp(&field("heldAt"), self.held_at.as_deref())?;
        check::one_of(&field("kind"), &self.kind, KINDS)?;
        check::framework_components(self.framework.as_deref(), &self.components, frameworks)?;
        let mut action_ids = BTreeSet::new();
        for (i, action) in self.actions.iter().enumerate() {
            let at = field("actions").index(i);
            check::not_blank(&at.key("id"), &action.id)?;
            if !action_ids.insert(action.id.as_str()) {
                return Err(RecordError::new(
                    at.key("id"),
                    "unique",
                    format!("action id {:?} is used twice", action.id),
                ));
            }
            if let Some(owner) = &action.owner_id
                && *owner != self.facilitator_id
                && !participants.contains(owner.as_str())
            {
                return Err(RecordError::new(
                    at.key("ownerId"),
                    "participant",
                    format!("{owner:?} is neither the facilitator nor a participant"),
                ));
            }
        }
        for who in self.reflections.keys() {
            if !participants.contains(who.as_str()) {
                return Err(RecordError::new(
                    field("reflections").entry(who),
                    "participant",
                    format!("{who:?} is not a participant; only participants reflect"),
                ));
            }
        }
        check::one_of(&field("status"), &self.status, STATUSES)?;
        check::timestamp(&field("closedAt"), self.closed_at.as_deref())?;
        if self.status == "closed" && self.closed_at.is_none() {
            return Err(RecordError::new(field("closedAt"), "required", "a closed session says when it closed"));
        }
        Ok(())
    }
}
