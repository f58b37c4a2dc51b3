//! `type: "observation"`: one observation of practice, its feedback and the practitioner's side.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::check;
use super::dates;
use super::{FieldPath, RecordError};
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
/// The rule `ready_to_share` names.
const RULE: &str = "ready-to-share";

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
        self.signed(Side::Observer) && self.signed(Side::Practitioner)
    }

    /// Whether `side` has signed off.
    pub fn signed(&self, side: Side) -> bool {
        self.signature(side).is_some()
    }

    pub fn signature(&self, side: Side) -> Option<&Signature> {
        let sign_off = self.sign_off.as_ref()?;
        match side {
            Side::Observer => sign_off.observer.as_ref(),
            Side::Practitioner => sign_off.practitioner.as_ref(),
        }
    }

    /// What sharing needs beyond a valid record: when and where the visit was, the family's
    /// consent recorded (and not withdrawn), and dates that could be true — the visit not
    /// after `today` (with a day's slack for time zones and clocks) and feedback not before
    /// the visit. The error names the field and what is missing.
    pub fn ready_to_share(&self, today: &str) -> Result<(), RecordError> {
        let field = FieldPath::field;
        let missing = |at: FieldPath, what: &str| Err(RecordError::new(at, RULE, format!("{what} before sharing")));
        let blank = |s: &Option<String>| s.as_deref().is_none_or(|s| s.trim().is_empty());
        let Some(observed) = self.observed_at.as_deref().and_then(dates::unix_millis) else {
            return missing(field("observedAt"), "record when the observation took place");
        };
        if blank(&self.setting) {
            return missing(field("setting"), "record the setting");
        }
        // A supervision session observes staff only: no family's consent to record.
        if self.setting.as_deref() == Some("supervision-session") {
            return self.dates_could_be_true(observed, today);
        }
        let consent = self.consent.clone().unwrap_or_default();
        if consent.given != Some(true) || consent.withdrawn_at.is_some() {
            return missing(field("consent").key("given"), "record that the family agreed to the observation");
        }
        if blank(&consent.by) {
            return missing(field("consent").key("by"), "record who gave consent");
        }
        if blank(&consent.how) {
            return missing(field("consent").key("how"), "record how consent was given");
        }
        self.dates_could_be_true(observed, today)
    }

    /// The visit not after `today` (a day's slack), and feedback between the visit and then.
    fn dates_could_be_true(&self, observed: i64, today: &str) -> Result<(), RecordError> {
        let field = FieldPath::field;
        let latest = dates::unix_millis(today).map_or(i64::MAX, |midnight| midnight + 2 * 86_400_000);
        if observed >= latest {
            return Err(RecordError::new(field("observedAt"), RULE, "the observation is dated in the future"));
        }
        if let Some(given) = self.feedback_given_at.as_deref().and_then(dates::unix_millis) {
            if given < observed {
                return Err(RecordError::new(
                    field("feedbackGivenAt"),
                    RULE,
                    "feedback is dated before the observation",
                ));
            }
            if given >= latest {
                return Err(RecordError::new(field("feedbackGivenAt"), RULE, "feedback is dated in the future"));
            }
        }
        Ok(())
    }

    pub(super) fn validate(&self, frameworks: &impl FrameworkCatalog) -> Result<(), RecordError> {
        let field = FieldPath::field;
        check::not_blank(&field("practitionerId"), &self.practitioner_id)?;
        check::not_blank(&field("observerId"), &self.observer_id)?;
        check::timestamp(&field("observedAt"), self.observed_at.as_deref())?;
        if let Some(setting) = &self.setting {
            check::one_of(&field("setting"), setting, SETTINGS)?;
        }
        if let Some(consent) = &self.consent {
            check::timestamp(&field("consent").key("withdrawnAt"), consent.withdrawn_at.as_deref())?;
        }
        check::framework(&field("framework"), &self.framework, frameworks)?;
        for (i, id) in self.components.iter().enumerate() {
            check::component(&field("components").index(i), &self.framework, id, frameworks)?;
        }
        for (id, judgement) in &self.judgements {
            let at = field("judgements").entry(id);
            check::component(&at, &self.framework, id, frameworks)?;
            check::one_of(&at, judgement, JUDGEMENTS)?;
        }
        check::timestamp(&field("feedbackGivenAt"), self.feedback_given_at.as_deref())?;
        match &self.family_voice {
            None | Some(Value::Null) | Some(Value::String(_)) => {}
            Some(Value::Object(fields)) if fields.values().all(|v| v.is_string() || v.is_null()) => {}
            Some(_) => return Err(RecordError::new(field("familyVoice"), "type", "must be text or { text, how }")),
        }
        for (i, action) in self.actions.iter().enumerate() {
            check::not_blank(&field("actions").index(i).key("id"), &action.id)?;
        }
        check::one_of(&field("status"), &self.status, STATUSES)?;
        if let Some(sign_off) = &self.sign_off {
            for (side, signature, expected) in [
                (Side::Observer, &sign_off.observer, &self.observer_id),
                (Side::Practitioner, &sign_off.practitioner, &self.practitioner_id),
            ] {
                if let Some(signed) = signature {
                    let at = field("signOff").key(side.as_str());
                    check::signature(&at, signed, expected, &format!("{side} sign-off"))?;
                }
            }
        }
        Ok(())
    }
}

/// The two parties who sign an observation off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Side {
    Observer,
    Practitioner,
}

impl Side {
    pub const BOTH: [Side; 2] = [Side::Observer, Side::Practitioner];

    /// The key under `signOff`, and the name the audit trail uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Observer => "observer",
            Side::Practitioner => "practitioner",
        }
    }

    pub fn other(self) -> Side {
        match self {
            Side::Observer => Side::Practitioner,
            Side::Practitioner => Side::Observer,
        }
    }
}

impl std::fmt::Display for Side {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
