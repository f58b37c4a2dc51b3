//! Subject access (UK GDPR article 15; DOMAIN.md, data protection 6): everything held about
//! one person — their user record, supervision history, devices, every record in which they
//! are a party with its narrative, and the audit events about them — with third parties'
//! content withheld and each withholding listed with its reason. As JSON, and as a readable,
//! printable HTML page built from the same JSON.

use std::collections::HashSet;

use fieldbook_sync_core::DocumentId;
use fieldbook_sync_core::records::{RecordKind, dates};
use serde_json::{Value, json};

use crate::storage::{AuditQuery, Database, StorageError};

/// What replaces another person's identity.
const ANOTHER_PERSON: &str = "[another person]";
const FAMILY: &str = "feedback from a child or family: their information, not the subject's";
const OTHER_PARTY: &str = "written by the other party to the record, about their own practice";
const IDENTITY: &str = "another person's identity";
const PRESENT: &str = "who else was there: information about a child or family";
const CONSENT: &str = "who in the family gave consent, and how: their information";
const AUDIT_DETAIL: &str = "what an event changed may name other people; ask the data protection officer";
const OTHER_RECORD: &str = "a record about another person";
const OTHER_PARTICIPANT: &str = "other participants' own reflections";

/// The export for `user_id`, `None` if there is no such user.
pub async fn export(db: &Database, user_id: &str) -> Result<Option<Value>, StorageError> {
    let Some(user) = db.user(user_id).await? else { return Ok(None) };
    let mut withheld = Vec::new();
    let other = |id: &str| if id == user_id { Value::from(id) } else { Value::from(ANOTHER_PERSON) };

    let supervision: Vec<Value> = db
        .supervision_history(user_id)
        .await?
        .into_iter()
        .map(|s| {
            json!({
                "supervisee": other(&s.supervisee_id), "supervisor": other(&s.supervisor_id),
                "from": s.started_on, "until": s.ended_on,
            })
        })
        .collect();

    let mut records = Vec::new();
    let mut urls = HashSet::new();
    let mut after = 0;
    loop {
        let page = db.record_index(user_id, Some(&[]), after, 500).await?;
        for entry in page.entries {
            if urls.contains(&entry.document_url) {
                continue;
            }
            let Ok(document) = DocumentId::parse_url_or_id(&entry.document_url) else { continue };
            let doc = db.load_document(document).await?.doc;
            let mut record = fieldbook_sync_core::json::to_json(&doc);
            // The index holds every theme; a theme is the subject's if they raised or answered it.
            let answered =
                || record["responses"].as_array().is_some_and(|r| r.iter().any(|r| r["by"].as_str() == Some(user_id)));
            if entry.facts.kind == RecordKind::PracticeTheme && entry.facts.author_id != user_id && !answered() {
                continue;
            }
            urls.insert(entry.document_url.clone());
            let withheld_here = redact(&mut record, user_id);
            withheld.extend(
                withheld_here
                    .into_iter()
                    .map(|(field, reason)| json!({ "record": entry.document_url, "field": field, "reason": reason })),
            );
            records.push(json!({ "url": entry.document_url, "record": record }));
        }
        if !page.more {
            break;
        }
        after = page.cursor;
    }

    let mut events =
        db.audit_trail(&AuditQuery { user_id: Some(user_id.into()), limit: 100_000, ..Default::default() }).await?;
    for url in &urls {
        let id = DocumentId::parse_url_or_id(url).map(|d| d.to_string()).unwrap_or_default();
        events
            .extend(db.audit_trail(&AuditQuery { document_id: Some(id), limit: 100_000, ..Default::default() }).await?);
    }
    events.sort_by_key(|e| e.id);
    events.dedup_by_key(|e| e.id);
    let audit: Vec<Value> = events
        .into_iter()
        .map(|e| {
            let mine = e.user_id.as_deref() == Some(user_id);
            // A record the subject is not a party to (one a supervisor opened, say) is named
            // only as such; what an event changed is left out (it can name other people).
            let record = e.document_id.and_then(|d| d.parse::<DocumentId>().ok()).map(|d| {
                if urls.contains(&d.url()) {
                    Value::from(d.url())
                } else {
                    Value::from(format!("[withheld: {OTHER_RECORD}]"))
                }
            });
            json!({
                "at": dates::from_unix_millis(e.server_time),
                "deviceTime": e.device_time.map(dates::from_unix_millis),
                "by": e.user_id.as_deref().map(&other),
                "device": if mine { e.device_id.map(Value::from) } else { None },
                "action": e.action,
                "record": record,
            })
        })
        .collect();
    if supervision.iter().any(|s| s["supervisor"] == ANOTHER_PERSON || s["supervisee"] == ANOTHER_PERSON) {
        withheld.push(json!({ "field": "supervision", "reason": IDENTITY }));
    }
    if !audit.is_empty() {
        withheld.push(json!({ "field": "auditEvents.detail", "reason": AUDIT_DETAIL }));
    }
    if audit.iter().any(|e| e["by"] == ANOTHER_PERSON) {
        withheld.push(json!({ "field": "auditEvents.by", "reason": IDENTITY }));
    }

    Ok(Some(json!({
        "subject": user,
        "generatedAt": dates::now(),
        "supervision": supervision,
        "devices": db.devices(user_id).await?,
        "records": records,
        "auditEvents": audit,
        "withheld": withheld,
    })))
}

/// Withholds third parties' content from one record, for `subject`; returns what was withheld
/// (field, reason).
fn redact(record: &mut Value, subject: &str) -> Vec<(String, &'static str)> {
    let mut withheld = Vec::new();
    let Some(fields) = record.as_object_mut() else { return withheld };
    if let Some(Value::Object(consent)) = fields.get_mut("consent") {
        for field in ["by", "how"] {
            if let Some(value) = consent.get_mut(field).filter(|v| !v.is_null() && *v != "") {
                *value = Value::from(format!("[withheld: {CONSENT}]"));
                withheld.push((format!("consent.{field}"), CONSENT));
            }
        }
    }
    let mut hide = |fields: &mut serde_json::Map<String, Value>, field: &str, reason: &'static str| {
        if let Some(value) = fields.get_mut(field).filter(|v| !v.is_null() && *v != "") {
            *value = Value::from(format!("[withheld: {reason}]"));
            withheld.push((field.to_owned(), reason));
        }
    };
    hide(fields, "familyVoice", FAMILY);
    hide(fields, "present", PRESENT);
    if fields.get("observerId").and_then(Value::as_str) == Some(subject) {
        hide(fields, "reflection", OTHER_PARTY);
        hide(fields, "response", OTHER_PARTY);
    }
    for field in ["observerId", "practitionerId", "ownerId", "supervisorId", "facilitatorId", "raisedBy"] {
        if fields.get(field).and_then(Value::as_str).is_some_and(|id| id != subject) {
            hide(fields, field, IDENTITY);
        }
    }
    // A group session: the subject's own reflection; the others only as "another person".
    if let Some(Value::Object(reflections)) = fields.get_mut("reflections") {
        let before = reflections.len();
        reflections.retain(|who, _| who == subject);
        if reflections.len() < before {
            withheld.push(("reflections".to_owned(), OTHER_PARTICIPANT));
        }
    }
    if let Some(Value::Array(participants)) = fields.get_mut("participantIds") {
        let mut others = false;
        for id in participants.iter_mut().filter(|id| id.as_str() != Some(subject)) {
            *id = Value::from(ANOTHER_PERSON);
            others = true;
        }
        if others {
            withheld.push(("participantIds".to_owned(), IDENTITY));
        }
    }
    // Who signed or reviewed: another person by id.
    let mut others = false;
    for by in by_fields(record) {
        if by.as_str().is_some_and(|id| id != subject) {
            *by = Value::from(ANOTHER_PERSON);
            others = true;
        }
    }
    if others {
        withheld.push(("signOff.*.by, reviews.*.by, responses.*.by, actions.*.ownerId".to_owned(), IDENTITY));
    }
    withheld
}

/// Every `by` value of sign-offs, plan reviews and theme responses, and every action's owner.
fn by_fields(record: &mut Value) -> Vec<&mut Value> {
    let mut found = Vec::new();
    let Some(fields) = record.as_object_mut() else { return found };
    for (key, value) in fields.iter_mut() {
        match (key.as_str(), value) {
            ("signOff", Value::Object(sides)) => found.extend(sides.values_mut().filter_map(|s| s.get_mut("by"))),
            ("reviews" | "responses", Value::Array(items)) => {
                found.extend(items.iter_mut().filter_map(|r| r.get_mut("by")));
            }
            ("actions", Value::Array(actions)) => {
                found.extend(actions.iter_mut().filter_map(|a| a.get_mut("ownerId")));
            }
            _ => {}
        }
    }
    found
}

/// The export as a printable page.
pub fn html(export: &Value) -> String {
    let subject = &export["subject"];
    let mut page = String::from(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Subject access export</title>\
         <style>body{font:14px/1.5 system-ui,sans-serif;max-width:52rem;margin:2rem auto;padding:0 1rem}\
         table{border-collapse:collapse;width:100%}td,th{border:1px solid #bbb;padding:.25rem .5rem;text-align:left;vertical-align:top}\
         section{break-inside:avoid}.withheld{font-style:italic;color:#555}</style></head><body>",
    );
    page += &format!(
        "<h1>Subject access export: {}</h1><p>Generated {} for user <code>{}</code>. Everything Fieldbook holds about \
         this person. Other people's information is withheld where marked, with the reason.</p>",
        escape(subject["name"].as_str().unwrap_or_default()),
        escape(export["generatedAt"].as_str().unwrap_or_default()),
        escape(subject["id"].as_str().unwrap_or_default()),
    );
    page += "<h2>Personal details</h2>";
    page += &table(subject);
    page += "<h2>Supervision</h2>";
    page += &rows(&export["supervision"]);
    page += "<h2>Devices</h2>";
    page += &rows(&export["devices"]);
    page += "<h2>Records</h2>";
    for record in export["records"].as_array().into_iter().flatten() {
        page += &format!(
            "<section><h3>{}</h3>{}</section>",
            escape(record["url"].as_str().unwrap_or_default()),
            table(&record["record"])
        );
    }
    page += "<h2>Withheld</h2>";
    page += &rows(&export["withheld"]);
    page += "<h2>Activity (audit trail)</h2>";
    page += &rows(&export["auditEvents"]);
    page + "</body></html>"
}

/// An object as a two-column table (nested values as compact JSON).
fn table(object: &Value) -> String {
    let mut out = String::from("<table>");
    for (key, value) in object.as_object().into_iter().flatten() {
        out += &format!("<tr><th>{}</th><td>{}</td></tr>", escape(key), cell(value));
    }
    out + "</table>"
}

/// A list of objects as a table with a column per key.
fn rows(list: &Value) -> String {
    let items = list.as_array().map(Vec::as_slice).unwrap_or_default();
    if items.is_empty() {
        return "<p>None.</p>".into();
    }
    let mut keys: Vec<&String> = Vec::new();
    for key in items.iter().filter_map(Value::as_object).flat_map(|o| o.keys()) {
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    let mut out = String::from("<table><tr>");
    for key in &keys {
        out += &format!("<th>{}</th>", escape(key));
    }
    out += "</tr>";
    for item in items {
        out += "<tr>";
        for key in &keys {
            out += &format!("<td>{}</td>", cell(&item[key.as_str()]));
        }
        out += "</tr>";
    }
    out + "</table>"
}

fn cell(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) if s.starts_with("[withheld") => format!("<span class=\"withheld\">{}</span>", escape(s)),
        Value::String(s) => escape(s),
        other => escape(&other.to_string()),
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn family_voice_the_other_partys_words_and_other_people_are_withheld() {
        let record = json!({
            "type": "observation", "observerId": "sam", "practitionerId": "pat",
            "notes": "Good rapport.", "familyVoice": "Mum said it helped", "reflection": "I listened.",
            "present": "mother, two children", "consent": { "given": true, "by": "mother", "how": "at the door" },
            "signOff": { "observer": { "at": "2026-11-20T10:00:00Z", "by": "sam" } },
        });
        let mut for_pat = record.clone();
        let withheld = redact(&mut for_pat, "pat");
        assert_eq!(for_pat["notes"], "Good rapport.");
        assert_eq!(for_pat["reflection"], "I listened.");
        assert!(for_pat["familyVoice"].as_str().unwrap().starts_with("[withheld"));
        assert!(for_pat["observerId"].as_str().unwrap().starts_with("[withheld"));
        assert_eq!(for_pat["signOff"]["observer"]["by"], ANOTHER_PERSON);
        for family in ["mother", "two children", "at the door"] {
            assert!(!for_pat.to_string().contains(family), "{family}");
        }
        assert_eq!(for_pat["consent"]["given"], true);
        // familyVoice, present, consent.by, consent.how, observerId, who signed.
        assert_eq!(withheld.len(), 6);
        let mut for_sam = record;
        redact(&mut for_sam, "sam");
        assert_eq!(for_sam["notes"], "Good rapport.");
        assert!(for_sam["reflection"].as_str().unwrap().starts_with("[withheld"));
        assert_eq!(for_sam["signOff"]["observer"]["by"], "sam");
        assert!(!for_sam.to_string().contains("pat"));
    }

    #[test]
    fn a_participant_gets_their_own_reflection_and_nobody_elses() {
        let mut session = json!({
            "type": "group-session", "facilitatorId": "sam", "participantIds": ["pat", "kim"],
            "summary": "We talked about analysis.", "actions": [{"id": "a1", "text": "Read", "ownerId": "kim"}],
            "reflections": { "pat": "I will slow down.", "kim": "Kim's own words" },
        });
        let withheld = redact(&mut session, "pat");
        assert_eq!(session["reflections"], json!({ "pat": "I will slow down." }));
        assert_eq!(session["participantIds"], json!(["pat", ANOTHER_PERSON]));
        assert_eq!(session["actions"][0]["ownerId"], ANOTHER_PERSON);
        assert!(session["facilitatorId"].as_str().unwrap().starts_with("[withheld"));
        assert_eq!(session["summary"], "We talked about analysis.");
        assert!(!session.to_string().contains("kim") && !session.to_string().contains("Kim"), "{session}");
        let fields: Vec<&str> = withheld.iter().map(|(field, _)| field.as_str()).collect();
        assert!(fields.contains(&"reflections") && fields.contains(&"participantIds"), "{fields:?}");
    }

    #[test]
    fn the_page_escapes_what_records_hold() {
        let export = json!({ "subject": { "id": "pat", "name": "<script>x</script>" }, "records": [
            { "url": "automerge:1", "record": { "notes": "a < b & c" } } ] });
        let page = html(&export);
        assert!(!page.contains("<script>x"));
        assert!(page.contains("a &lt; b &amp; c"));
    }
}
