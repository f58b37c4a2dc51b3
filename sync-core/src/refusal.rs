//! Why changes are refused, in two forms: a message for the sender, which may quote what it
//! sent, and structured parts for the audit trail — the rule, the field as the schema names
//! it, the party and the values the rule allows — built only from the server's own names,
//! so nothing a client wrote can reach the trail through a refusal.

use serde_json::{Value, json};

use crate::access::Party;
use crate::records::{FieldPath, RecordError};

/// Stable names of the rules a change can break (the audit trail's `rule`).
pub mod rule {
    /// The document would not be a valid record; `check` says which validation.
    pub const INVALID_RECORD: &str = "invalid-record";
    /// The sender's part in the record does not write this field.
    pub const NOT_WRITABLE: &str = "not-writable";
    /// Only the observer creates an observation; the owner or supervisor a plan.
    pub const NOT_CREATOR: &str = "not-creator";
    /// Status moves one way, by the party whose move it is.
    pub const STATUS: &str = "status";
    /// An observation is shared only with its date, setting and consent recorded, and
    /// plausible dates.
    pub const NOT_READY_TO_SHARE: &str = "not-ready-to-share";
    /// Signed off by both (or a closed plan): nothing changes.
    pub const LOCKED: &str = "locked";
    /// An agreed plan's shape and goals are settled until it is reopened for review.
    pub const AGREED: &str = "agreed";
    /// A signature is in force over this field: withdraw it first.
    pub const SIGNED: &str = "signed";
    /// A new signature does not cover the record as it now stands.
    pub const SIGNATURE_OUT_OF_DATE: &str = "signature-out-of-date";
    /// The change's automerge actor writes for another user or device.
    pub const ACTOR_BOUND: &str = "actor-bound";
    /// The change builds on changes that were refused.
    pub const DEPENDS_ON_REFUSED: &str = "depends-on-refused";
    /// The change completes changes another connection sent before their dependencies.
    pub const COMPLETES_OTHERS: &str = "completes-others";
    /// The record would be larger than the server allows.
    pub const TOO_LARGE: &str = "too-large";
    /// Sent by someone who may not see the record.
    pub const NO_ACCESS: &str = "no-access";
    /// The record's history was erased and the sender holds (or builds on) it: its changes
    /// are refused without being kept anywhere.
    pub const ERASED: &str = "erased";
    /// The record was deleted (its retention period ended, or for data protection): every
    /// change to it is refused without being kept, and devices remove their copies.
    pub const DELETED: &str = "deleted";
}

#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub rule: &'static str,
    /// For [`rule::INVALID_RECORD`]: which validation failed (`one-of`, `timestamp`, …).
    pub check: Option<&'static str>,
    pub field: Option<Box<FieldPath>>,
    pub party: Option<Party>,
    /// The values the rule allows, where it names them.
    pub expected: &'static [&'static str],
    /// For the sender, in plain words; may quote what it sent.
    pub message: String,
}

impl Refusal {
    pub fn new(rule: &'static str, message: impl Into<String>) -> Self {
        Self { rule, check: None, field: None, party: None, expected: &[], message: message.into() }
    }

    pub fn at(mut self, field: FieldPath) -> Self {
        self.field = Some(Box::new(field));
        self
    }

    pub fn by(mut self, party: Party) -> Self {
        self.party = Some(party);
        self
    }

    /// What the audit trail keeps: rule, check, field (generalised), party and expected
    /// values. Never the message, which may quote the client.
    pub fn audit_detail(&self) -> Value {
        let mut detail = json!({ "rule": self.rule });
        if let Some(check) = self.check {
            detail["check"] = json!(check);
        }
        if let Some(field) = &self.field {
            detail["field"] = json!(field.general());
        }
        if let Some(party) = self.party {
            detail["party"] = json!(party.as_str());
        }
        if !self.expected.is_empty() {
            detail["expected"] = json!(self.expected);
        }
        detail
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<RecordError> for Refusal {
    fn from(e: RecordError) -> Self {
        Refusal {
            rule: rule::INVALID_RECORD,
            check: Some(e.rule),
            expected: e.expected,
            message: format!("invalid record: {e}"),
            field: Some(Box::new(e.at)),
            party: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frameworks::Catalog;
    use crate::records::Record;

    #[test]
    fn the_audit_detail_never_holds_what_the_client_wrote() {
        let marker = "pub\\\" and then Mother B said";
        let doc = json!({"type": "observation", "schemaVersion": 1, "practitionerId": "pat", "observerId": "sam",
                         "framework": "kss-cf-2018", "status": "draft", "setting": marker});
        let refusal = Refusal::from(Record::parse(&doc, &Catalog::shipped()).unwrap_err());
        assert!(refusal.message.contains("Mother B said"), "the sender is told what it sent: {}", refusal.message);
        let detail = refusal.audit_detail().to_string();
        assert!(!detail.contains("Mother"), "{detail}");
        assert_eq!(refusal.audit_detail()["field"], "setting");
        assert_eq!(refusal.audit_detail()["check"], "one-of");
        assert!(refusal.audit_detail()["expected"].as_array().unwrap().contains(&json!("home-visit")));

        let keyed = json!({"type": "observation", "schemaVersion": 1, "practitionerId": "pat", "observerId": "sam",
                           "framework": "kss-cf-2018", "status": "draft", "judgements": {marker: "met"}});
        let refusal = Refusal::from(Record::parse(&keyed, &Catalog::shipped()).unwrap_err());
        assert!(!refusal.audit_detail().to_string().contains("Mother"));
        assert_eq!(refusal.audit_detail()["field"], "judgements.*");
    }
}
