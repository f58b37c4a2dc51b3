//! The verdict on one incoming message's changes: the sender's part in the record, whether
//! the record stays valid, whether they write only what their part allows (and what no
//! signature covers), and what accepting it would do. Pure: the server adds what needs its
//! database (who each automerge actor writes for) and commits.
//!
//! A message costs what its changes cost, not what the document holds: the record as stored
//! is kept as JSON beside the document ([`Stored`]), and only the top-level fields the
//! changes write to are read back from the document.

use std::collections::BTreeSet;

use automerge::{Automerge, Change, ChangeHash, ChangeMetadata, Prop};
use serde_json::Value;

use super::sign_off;
use super::writes::{Write, WriteCheck, check_write, writes_of};
use super::{Party, RecordFacts, Viewer};
use crate::frameworks::FrameworkCatalog;
use crate::json::{field_json, to_json};
use crate::records::events::{RecordEvent, events};
use crate::records::{self, Record, Side};
use crate::refusal::{Refusal, rule};

/// A record as the server holds it.
#[derive(Debug, Clone)]
pub struct Stored {
    pub json: Value,
    /// `None` if the stored document no longer parses (e.g. a legacy record).
    pub record: Option<Record>,
    pub facts: RecordFacts,
}

impl Stored {
    /// Reads a stored document once (when it loads); `None` if it is not a record.
    pub fn of(doc: &Automerge, frameworks: &impl FrameworkCatalog) -> Option<Self> {
        let facts = RecordFacts::of_document(doc)?;
        let json = to_json(doc);
        let record = Record::parse(&json, frameworks).ok();
        Some(Self { json, record, facts })
    }
}

/// One message, applied to a scratch copy of the document.
pub struct Proposal<'a> {
    pub viewer: &'a Viewer,
    /// `YYYY-MM-DD`, for the viewer's line of supervision.
    pub today: &'a str,
    /// The record as stored; `None` if the message creates it.
    pub stored: Option<&'a Stored>,
    pub before_heads: &'a [ChangeHash],
    /// The document with the message applied.
    pub after: &'a Automerge,
    /// The changes the message adds, as sent.
    pub changes: &'a [Change],
    /// Their metadata (actor, hash, ops), in the same order.
    pub metadata: &'a [ChangeMetadata<'static>],
}

/// What accepting a message does.
#[derive(Debug)]
pub struct Judgement {
    /// The record as it will be stored.
    pub stored: Stored,
    pub party: Party,
    /// Top-level fields touched, as the schema names them (`*` for others).
    pub fields: Vec<String>,
    pub signed: Vec<Side>,
    pub withdrawn: Vec<Side>,
    pub events: Vec<RecordEvent>,
}

pub fn judge(p: &Proposal<'_>, frameworks: &impl FrameworkCatalog) -> Result<Judgement, Refusal> {
    let empty = Value::Object(Default::default());
    let before_json = p.stored.map_or(&empty, |s| &s.json);
    let writes = match p.stored {
        Some(_) => writes_of(p.after, p.changes)?,
        None => Vec::new(),
    };
    let after_json = match p.stored {
        Some(stored) => with_fields_read_again(&stored.json, p.after, &writes),
        None => to_json(p.after),
    };
    let locked = p.stored.is_some_and(|s| s.facts.locked);
    if locked && !records::completes_sign_off(before_json, &after_json) {
        return Err(Refusal::new(
            rule::LOCKED,
            "the record is locked (signed off by both parties, or closed); the change was kept aside for review",
        ));
    }
    let record = Record::parse(&after_json, frameworks)?;
    let facts = RecordFacts::of(&record);
    // The sender's part is fixed by the record as stored; a new record names it itself.
    let party = p.viewer.party(p.stored.map_or(&facts, |s| &s.facts), p.today);
    let before_record = p.stored.and_then(|s| s.record.as_ref());
    let write = WriteCheck {
        party,
        user_id: &p.viewer.user_id,
        role: p.viewer.role,
        today: p.today,
        team: p.viewer.team.as_deref(),
        before_record,
        after_record: &record,
        before_json,
        after_json: &after_json,
        writes: &writes,
    };
    let fields = check_write(&write)?;
    // On a locked record, not even a write that stays hidden in a conflict.
    if locked && fields.iter().any(|f| f != "status") {
        return Err(Refusal::new(
            rule::LOCKED,
            "the record is locked (signed off by both parties); only its status may catch up",
        ));
    }
    let (mut signed, mut withdrawn) = (Vec::new(), Vec::new());
    if let Record::Observation(_) = &record {
        let sender_side = match party {
            Party::Observer => Some(Side::Observer),
            Party::Practitioner => Some(Side::Practitioner),
            _ => None,
        };
        let jsons = (before_json, &after_json);
        sign_off::check_covered_writes(p.after, p.before_heads, jsons, &writes, p.changes, |side| {
            sender_side == Some(side)
        })?;
        signed = sign_off::check_new_signatures(p.after, p.before_heads, &after_json, p.metadata)?;
        withdrawn = sign_off::withdrawn(before_json, &after_json, &writes);
    }
    let events = events(before_record, &record);
    Ok(Judgement {
        stored: Stored { json: after_json, record: Some(record), facts },
        party,
        fields,
        signed,
        withdrawn,
        events,
    })
}

/// The stored JSON with every top-level field the writes touch read again from `after`.
fn with_fields_read_again(stored: &Value, after: &Automerge, writes: &[Write]) -> Value {
    let touched: BTreeSet<&str> = writes
        .iter()
        .filter_map(|w| match w.path.first() {
            Some(Prop::Map(key)) => Some(key.as_str()),
            _ => None,
        })
        .collect();
    let mut json = stored.clone();
    if let Value::Object(map) = &mut json {
        for key in touched {
            match field_json(after, key) {
                Some(value) => map.insert(key.to_owned(), value),
                None => map.remove(key),
            };
        }
    }
    json
}
