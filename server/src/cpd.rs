//! The practitioner's own CPD record (issue 16), in the shape of Social Work England's CPD
//! form, so entries can be copied across: each signed-off observation of them, each group
//! session they reflected in and each plan goal they met, within one registration year
//! (1 December to 30 November), with their own reflection and response.

use fieldbook_sync_core::DocumentId;
use fieldbook_sync_core::records::dates;
use serde::Serialize;
use serde_json::Value;

use crate::storage::{CpdSource, Database, StorageError};

/// A registration year, by the year it ends in: 1 December of the year before to 30
/// November (both days included).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RegistrationYear {
    pub from: String,
    pub to: String,
}

impl RegistrationYear {
    pub fn ending(year: i32) -> Self {
        Self { from: format!("{}-12-01", year - 1), to: format!("{year}-11-30") }
    }

    /// The registration year `day` (`YYYY-MM-DD`) falls in.
    pub fn of(day: &str) -> Option<i32> {
        let year: i32 = day.get(..4)?.parse().ok()?;
        Some(if day.get(5..7)? == "12" { year + 1 } else { year })
    }

    fn holds(&self, day: &str) -> bool {
        self.from.as_str() <= day && day <= self.to.as_str()
    }
}

/// One piece of CPD, field by field as the Social Work England form asks for it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CpdEntry {
    /// Form: "Title".
    pub title: String,
    /// Form: "Date" (`YYYY-MM-DD`).
    pub date: String,
    /// Form: "Type of CPD".
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Form: "Description" (what it was, and why it is relevant).
    pub description: String,
    /// Form: "What did you learn?": the person's own reflection.
    pub learning: String,
    /// Form: "Impact on your practice": their response to the feedback, where there is one.
    pub impact: String,
    /// Form: "Peer reflection": reflected on with a supervisor or peers.
    pub peer_reflection: bool,
    pub components: Vec<String>,
    /// The records it comes from (`automerge:` URLs).
    pub evidence: Vec<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CpdRecord {
    pub registration_year: RegistrationYear,
    pub entries: Vec<CpdEntry>,
    /// At least one piece with peer reflection is needed each year.
    pub peer_reflection_met: bool,
}

/// `user_id`'s CPD entries for the registration year ending in `year`, oldest first.
pub async fn record(db: &Database, user_id: &str, year: i32) -> Result<CpdRecord, StorageError> {
    let registration_year = RegistrationYear::ending(year);
    let mut entries = Vec::new();
    for source in db.cpd_sources(user_id).await? {
        let (url, on) = match &source {
            CpdSource::Observation { url, on } | CpdSource::GroupSession { url, on } => (url, on),
            CpdSource::Goal { plan_url, on, .. } => (plan_url, on),
        };
        let Some(day) = on.as_deref().and_then(dates::utc_day) else { continue };
        if !registration_year.holds(&day) {
            continue;
        }
        let Ok(document) = DocumentId::parse_url_or_id(url) else { continue };
        let doc = fieldbook_sync_core::json::to_json(&db.load_document(document).await?.doc);
        let entry = match &source {
            CpdSource::Observation { .. } => observation(db, &doc, url, day).await?,
            CpdSource::GroupSession { .. } => group_session(db, &doc, user_id, url, day).await?,
            CpdSource::Goal { goal_id, .. } => goal(&doc, goal_id, url, day),
        };
        entries.extend(entry);
    }
    entries.sort_by(|a, b| a.date.cmp(&b.date));
    let peer_reflection_met = entries.iter().any(|e| e.peer_reflection);
    Ok(CpdRecord { registration_year, entries, peer_reflection_met })
}

fn text(doc: &Value, key: &str) -> String {
    doc.get(key).and_then(Value::as_str).unwrap_or_default().trim().to_owned()
}

fn strings(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

async fn name(db: &Database, id: &str) -> Result<String, StorageError> {
    Ok(db.user(id).await?.map_or_else(|| id.to_owned(), |u| u.name))
}

async fn observation(db: &Database, doc: &Value, url: &str, day: String) -> Result<Option<CpdEntry>, StorageError> {
    let setting = text(doc, "setting").replace('-', " ");
    let observer = name(db, &text(doc, "observerId")).await?;
    let framework = text(doc, "framework");
    let mut description = format!(
        "Direct observation of my practice ({}) by {observer}, against {framework}.",
        if setting.is_empty() { "setting not recorded" } else { &setting }
    );
    let feedback = text(doc, "feedback");
    if !feedback.is_empty() {
        description.push_str(&format!(" Feedback: {feedback}"));
    }
    Ok(Some(CpdEntry {
        title: format!("Observed practice: {}", if setting.is_empty() { "observation" } else { &setting }),
        date: day,
        kind: "Direct observation and feedback",
        description,
        learning: text(doc, "reflection"),
        impact: text(doc, "response"),
        peer_reflection: true,
        components: strings(doc.get("components")),
        evidence: vec![url.to_owned()],
    }))
}

async fn group_session(
    db: &Database,
    doc: &Value,
    user_id: &str,
    url: &str,
    day: String,
) -> Result<Option<CpdEntry>, StorageError> {
    let learning = doc["reflections"][user_id].as_str().unwrap_or_default().trim().to_owned();
    if learning.is_empty() {
        return Ok(None);
    }
    let kind = match text(doc, "kind").as_str() {
        "team-development" => "Team development",
        "practice-discussion" => "Practice discussion",
        _ => "Group supervision",
    };
    let themes = strings(doc.get("themes")).into_iter().filter(|t| !t.trim().is_empty()).collect::<Vec<_>>();
    let facilitator = name(db, &text(doc, "facilitatorId")).await?;
    let mut description = format!("{kind} facilitated by {facilitator}.");
    let summary = text(doc, "summary");
    if !summary.is_empty() {
        description.push_str(&format!(" {summary}"));
    }
    Ok(Some(CpdEntry {
        title: match themes.first() {
            Some(theme) => format!("{kind}: {theme}"),
            None => kind.to_owned(),
        },
        date: day,
        kind,
        description,
        learning,
        impact: String::new(),
        peer_reflection: true,
        components: strings(doc.get("components")),
        evidence: vec![url.to_owned()],
    }))
}

fn goal(doc: &Value, goal_id: &str, plan_url: &str, day: String) -> Option<CpdEntry> {
    let goal = doc["goals"].as_array()?.iter().find(|g| g["id"].as_str() == Some(goal_id))?;
    let field = |key: &str| goal[key].as_str().unwrap_or_default().trim().to_owned();
    let title = field("title");
    let mut evidence = vec![plan_url.to_owned()];
    evidence.extend(strings(goal.get("evidence")));
    Some(CpdEntry {
        title: if title.is_empty() { "Development goal met".to_owned() } else { title },
        date: day,
        kind: "Development goal",
        description: field("successMeasure"),
        learning: field("reflection"),
        impact: String::new(),
        peer_reflection: false,
        components: strings(goal.get("components")),
        evidence,
    })
}

/// The same entries as CSV, one line each, with a header naming the form's fields.
pub fn csv(record: &CpdRecord) -> Result<String, csv::Error> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record([
        "title",
        "date",
        "type",
        "description",
        "learning",
        "impact",
        "peer_reflection",
        "components",
        "evidence",
    ])?;
    for e in &record.entries {
        writer.write_record([
            e.title.as_str(),
            &e.date,
            e.kind,
            &e.description,
            &e.learning,
            &e.impact,
            if e.peer_reflection { "yes" } else { "no" },
            &e.components.join(";"),
            &e.evidence.join(" "),
        ])?;
    }
    let bytes = writer.into_inner().map_err(|e| csv::Error::from(e.into_error()))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registration_years_run_from_december_to_november() {
        let year = RegistrationYear::ending(2026);
        assert_eq!((year.from.as_str(), year.to.as_str()), ("2025-12-01", "2026-11-30"));
        assert!(year.holds("2025-12-01") && year.holds("2026-11-30"));
        assert!(!year.holds("2025-11-30") && !year.holds("2026-12-01"));
        assert_eq!(RegistrationYear::of("2026-11-30"), Some(2026));
        assert_eq!(RegistrationYear::of("2026-12-01"), Some(2027));
    }
}
