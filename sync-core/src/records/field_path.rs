//! A place in a record, kept twice: as the document names it, for the sender of a change
//! (`judgements.kss-cf-2018/6`, `goals[2].status`), and generalised, for the audit trail
//! (`judgements.*`, `goals[].status`). The general form is assembled only from the schema's
//! own field names, `*` and `[]`, so nothing a client wrote — a map key, an extension field's
//! name — can reach the audit trail through it.

use automerge::Prop;

/// Every field name the record schemas define, at any depth (DOMAIN.md "Records").
pub const SCHEMA_NAMES: &[&str] = &[
    "type",
    "schemaVersion",
    "practitionerId",
    "observerId",
    "observedAt",
    "setting",
    "present",
    "purpose",
    "consent",
    "given",
    "by",
    "how",
    "withdrawnAt",
    "framework",
    "components",
    "notes",
    "strengths",
    "developmentAreas",
    "judgements",
    "feedback",
    "feedbackGivenAt",
    "reflection",
    "response",
    "familyVoice",
    "text",
    "actions",
    "id",
    "goalId",
    "status",
    "signOff",
    "observer",
    "practitioner",
    "at",
    "ownerId",
    "supervisorId",
    "period",
    "from",
    "to",
    "source",
    "gapAnalysis",
    "self",
    "supervisor",
    "note",
    "goals",
    "title",
    "successMeasure",
    "targetDate",
    "support",
    "completedAt",
    "evidence",
    "reviews",
    "facilitatorId",
    "participantIds",
    "heldAt",
    "kind",
    "themes",
    "summary",
    "reflections",
    "closedAt",
    "raisedBy",
    "raisedAt",
    "team",
    "category",
    "responses",
];

/// The schema's own copy of `name`, if it is one of its field names.
pub fn schema_name(name: &str) -> Option<&'static str> {
    SCHEMA_NAMES.iter().copied().find(|known| *known == name)
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldPath {
    exact: String,
    general: String,
}

impl FieldPath {
    /// A top-level field of the schema.
    pub fn field(name: &'static str) -> Self {
        Self::default().key(name)
    }

    /// The whole record (e.g. a missing required field, which serde names in its message).
    pub fn record() -> Self {
        Self { exact: "record".into(), general: "record".into() }
    }

    /// A field of the schema inside this one.
    pub fn key(&self, name: &'static str) -> Self {
        let mut next = self.clone();
        push_key(&mut next.exact, name);
        push_key(&mut next.general, name);
        next
    }

    /// An entry of a map whose keys a client chooses (component ids, extension fields).
    pub fn entry(&self, key: &str) -> Self {
        let mut next = self.clone();
        push_key(&mut next.exact, key);
        push_key(&mut next.general, "*");
        next
    }

    /// An element of a list.
    pub fn index(&self, index: usize) -> Self {
        let mut next = self.clone();
        next.exact.push_str(&format!("[{index}]"));
        next.general.push_str("[]");
        next
    }

    /// A list element whose position is not known (operations name elements by id).
    pub fn element(&self) -> Self {
        let mut next = self.clone();
        next.exact.push_str("[]");
        next.general.push_str("[]");
        next
    }

    /// A key that is the schema's name where it is one, and a client's otherwise.
    pub fn key_or_entry(&self, key: &str) -> Self {
        match schema_name(key) {
            Some(name) => self.key(name),
            None => self.entry(key),
        }
    }

    /// The path of an automerge property path (`ANY` list positions become `[]`).
    pub fn of_props(props: &[Prop]) -> Self {
        props.iter().fold(Self::default(), |path, prop| match prop {
            Prop::Map(key) => path.key_or_entry(key),
            Prop::Seq(usize::MAX) => path.element(),
            Prop::Seq(index) => path.index(*index),
        })
    }

    /// The path serde reports for a deserialisation error.
    pub fn of_serde(path: &serde_path_to_error::Path) -> Self {
        use serde_path_to_error::Segment;
        let mut out = Self::default();
        for segment in path.iter() {
            out = match segment {
                Segment::Seq { index } => out.index(*index),
                Segment::Map { key } => out.key_or_entry(key),
                Segment::Enum { variant } => out.key_or_entry(variant),
                Segment::Unknown => out.entry("?"),
            };
        }
        if out.exact.is_empty() { Self::record() } else { out }
    }

    /// As the document names it: for the sender, who wrote it.
    pub fn exact(&self) -> &str {
        &self.exact
    }

    /// With client-chosen keys as `*` and positions as `[]`: safe to keep in the audit trail.
    pub fn general(&self) -> &str {
        &self.general
    }
}

fn push_key(out: &mut String, key: &str) {
    if !out.is_empty() {
        out.push('.');
    }
    out.push_str(key);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_keys_never_reach_the_general_form() {
        let path = FieldPath::field("judgements").entry("Mother B said \"no\"");
        assert_eq!(path.exact(), "judgements.Mother B said \"no\"");
        assert_eq!(path.general(), "judgements.*");
        let props = [Prop::Map("goals".into()), Prop::Seq(2), Prop::Map("status".into())];
        assert_eq!(FieldPath::of_props(&props).exact(), "goals[2].status");
        assert_eq!(FieldPath::of_props(&props).general(), "goals[].status");
        let extension = [Prop::Map("surname Smith".into()), Prop::Seq(usize::MAX)];
        assert_eq!(FieldPath::of_props(&extension).general(), "*[]");
    }
}
