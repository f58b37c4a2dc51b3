//! `type: "observation"`: one observation of practice, its feedback and the practitioner's side.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::RecordError;
use super::check;
use crate::frameworks::FrameworkCatalog;

pub const SETTINGS: &[&str] = &[
    "home-visit",
    "office-visit",
    "virtual",
    "meeting",
    "child-protection-conference",
    "court",
    "supervision-session",
    "other",
];
pub const STATUSES: &[&str] = &["draft", "shared", "signed-off"];
pub const JUDGEMENTS: &[&str] = &["met", "not-met", "insufficient-opportunity"];

/// Required: `type`, `schemaVersion`, `practitionerId`, `observerId`, `framework`, `status`.
/// Everything else may be filled in over time (a draft starts almost empty).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Observation {
    pub practitioner_id: String,
    pub observer_id: String,
    #[serde(default)]
    pub observed_at: Option<String>,
    #[serde(default)]
    pub setting: Option<String>,
    #[serde(default)]
    pub present: Option<String>,
    #[serde(default)]
    pub purpose: Option<String>,
    #[serde(default)]
    pub consent: Option<Consent>,
    pub framework: String,
    #[serde(default)]
    pub components: Vec<String>,
    #[serde(default)]
    pub notes: Option<String>,
    #[serde(default)]
    pub strengths: Vec<String>,
    #[serde(default)]
    pub development_areas: Vec<String>,
    #[serde(default)]
    pub judgements: BTreeMap<String, String>,
    #[serde(default)]
    pub feedback: Option<String>,
    #[serde(default)]
    pub feedback_given_at: Option<String>,
    #[serde(default)]
    pub reflection: Option<String>,
    #[serde(default)]
    pub response: Option<String>,
    /// Feedback from the child or family, anonymised: a string, or `{ text, how }`.
    #[serde(default)]
    pub family_voice: Option<Value>,
    #[serde(default)]
    pub actions: Vec<Action>,
    pub status: String,
    #[serde(default)]
    pub sign_off: Option<SignOff>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Consent {
    #[serde(default)]
    pub given: Option<bool>,
    #[serde(default)]
    pub by: Option<String>,
    #[serde(default)]
    pub how: Option<String>,
    #[serde(default)]
    pub withdrawn_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Action {
    pub id: String,
    pub text: String,
    #[serde(default)]
    pub goal_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SignOff {
    #[serde(default)]
    pub observer: Option<Signature>,
    #[serde(default)]
    pub practitioner: Option<Signature>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Signature {
    pub at: String,
    pub by: String,
}

impl Observation {
    pub fn is_locked(&self) -> bool {
        self.signed("observer") && self.signed("practitioner")
    }

    /// Whether `side` (`observer` or `practitioner`) has signed off.
    pub fn signed(&self, side: &str) -> bool {
        self.sign_off.as_ref().is_some_and(|s| match side {
            "observer" => s.observer.is_some(),
            "practitioner" => s.practitioner.is_some(),
            _ => false,
        })
    }

    pub(super) fn validate(&self, frameworks: &impl FrameworkCatalog) -> Result<(), RecordError> {
        check::not_blank("practitionerId", &self.practitioner_id)?;
        check::not_blank("observerId", &self.observer_id)?;
        check::timestamp("observedAt", self.observed_at.as_deref())?;
        if let Some(setting) = &self.setting {
            check::one_of("setting", setting, SETTINGS)?;
        }
        if let Some(consent) = &self.consent {
            check::timestamp("consent.withdrawnAt", consent.withdrawn_at.as_deref())?;
        }
        check::framework("framework", &self.framework, frameworks)?;
        for (i, id) in self.components.iter().enumerate() {
            check::component(&format!("components[{i}]"), &self.framework, id, frameworks)?;
        }
        for (id, judgement) in &self.judgements {
            let path = format!("judgements.{id}");
            check::component(&path, &self.framework, id, frameworks)?;
            check::one_of(&path, judgement, JUDGEMENTS)?;
        }
        check::timestamp("feedbackGivenAt", self.feedback_given_at.as_deref())?;
        match &self.family_voice {
            None | Some(Value::Null) | Some(Value::String(_)) => {}
            Some(Value::Object(fields)) if fields.values().all(|v| v.is_string() || v.is_null()) => {}
            Some(_) => return Err(RecordError::new("familyVoice", "must be text or { text, how }")),
        }
        for (i, action) in self.actions.iter().enumerate() {
            check::not_blank(&format!("actions[{i}].id"), &action.id)?;
        }
        check::one_of("status", &self.status, STATUSES)?;
        if let Some(sign_off) = &self.sign_off {
            for (party, signature, expected) in [
                ("observer", &sign_off.observer, &self.observer_id),
                ("practitioner", &sign_off.practitioner, &self.practitioner_id),
            ] {
                if let Some(sig) = signature {
                    let path = format!("signOff.{party}");
                    check::timestamp(&format!("{path}.at"), Some(&sig.at))?;
                    if &sig.by != expected {
                        return Err(RecordError::new(
                            format!("{path}.by"),
                            format!("the {party} sign-off must be by {expected:?}, not {:?}", sig.by),
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}
