//! Bulk import of a whole authority's people from CSV (admin API and `fieldbook users
//! import`). The file is checked in full before anything is written.

use std::collections::{HashMap, HashSet};

use fieldbook_sync_core::records::dates;

use crate::storage::{Database, Role, StorageError, Team, User, UserStatus};

/// Column names; `id`, `name` and `role` are required, the rest optional and in any order.
pub const CSV_COLUMNS: &[&str] = &[
    "id",
    "name",
    "role",
    "team",
    "supervisor",
    "supervisor_from",
    "external_id",
    "employee_number",
    "registration_number",
    "status",
];

#[derive(Debug, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportReport {
    pub users_created: usize,
    pub users_updated: usize,
    pub teams_created: usize,
    pub supervisors_changed: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("the CSV file has problems; nothing was imported:\n{}", .0.join("\n"))]
    Invalid(Vec<String>),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

struct Row {
    user: User,
    supervisor: Option<String>,
    supervisor_from: String,
}

/// Creates or updates every user in the file, creating teams as needed, and moves
/// supervision where the file names a different supervisor (history is kept).
pub async fn import_csv(db: &Database, text: &str) -> Result<ImportReport, ImportError> {
    let rows = parse(text)?;
    let known: HashSet<String> = db.users().await?.into_iter().map(|u| u.id).collect();
    let in_file: HashSet<&str> = rows.iter().map(|r| r.user.id.as_str()).collect();
    let mut problems = Vec::new();
    for (line, row) in rows.iter().enumerate() {
        if let Some(s) = &row.supervisor
            && !known.contains(s)
            && !in_file.contains(s.as_str())
        {
            problems.push(format!("line {}: supervisor {s:?} is neither in the file nor a user", line + 2));
        }
    }
    if !problems.is_empty() {
        return Err(ImportError::Invalid(problems));
    }
    let mut report = ImportReport::default();
    let teams: HashSet<String> = db.teams().await?.into_iter().map(|t| t.id).collect();
    let new_teams: HashSet<&String> =
        rows.iter().filter_map(|r| r.user.team_id.as_ref()).filter(|t| !teams.contains(*t)).collect();
    for team in new_teams {
        db.add_team(&Team { id: team.clone(), name: team.clone() }).await?;
        report.teams_created += 1;
    }
    for row in &rows {
        if known.contains(&row.user.id) {
            db.update_user(&row.user).await?;
            report.users_updated += 1;
        } else {
            db.add_user(&row.user).await?;
            report.users_created += 1;
        }
    }
    let current: HashMap<String, String> = current_supervisors(db, &rows).await?;
    for row in &rows {
        if row.supervisor.as_ref() != current.get(&row.user.id) {
            db.set_supervisor(&row.user.id, row.supervisor.as_deref(), &row.supervisor_from).await?;
            report.supervisors_changed += 1;
        }
    }
    Ok(report)
}

async fn current_supervisors(db: &Database, rows: &[Row]) -> Result<HashMap<String, String>, StorageError> {
    let mut out = HashMap::new();
    for row in rows {
        let history = db.supervision_history(&row.user.id).await?;
        if let Some(s) = history.iter().find(|s| s.supervisee_id == row.user.id && s.ended_on.is_none()) {
            out.insert(row.user.id.clone(), s.supervisor_id.clone());
        }
    }
    Ok(out)
}

fn parse(text: &str) -> Result<Vec<Row>, ImportError> {
    let mut reader = csv::ReaderBuilder::new().trim(csv::Trim::All).from_reader(text.as_bytes());
    let headers: Vec<String> = match reader.headers() {
        Ok(h) => h.iter().map(|h| h.to_ascii_lowercase()).collect(),
        Err(e) => return Err(ImportError::Invalid(vec![format!("cannot read the header line: {e}")])),
    };
    let mut problems = Vec::new();
    for required in ["id", "name", "role"] {
        if !headers.iter().any(|h| h == required) {
            problems.push(format!("line 1: missing column {required:?} (columns: {})", CSV_COLUMNS.join(", ")));
        }
    }
    for h in &headers {
        if !CSV_COLUMNS.contains(&h.as_str()) {
            problems.push(format!("line 1: unknown column {h:?} (columns: {})", CSV_COLUMNS.join(", ")));
        }
    }
    if !problems.is_empty() {
        return Err(ImportError::Invalid(problems));
    }
    let today = dates::today();
    let mut rows = Vec::new();
    let mut seen = HashSet::new();
    for (i, record) in reader.records().enumerate() {
        let line = i + 2;
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                problems.push(format!("line {line}: {e}"));
                continue;
            }
        };
        let field =
            |name: &str| headers.iter().position(|h| h == name).and_then(|p| record.get(p)).filter(|v| !v.is_empty());
        let owned = |name: &str| field(name).map(str::to_owned);
        let (Some(id), Some(name), Some(role)) = (field("id"), field("name"), field("role")) else {
            problems.push(format!("line {line}: id, name and role are required"));
            continue;
        };
        if !seen.insert(id.to_owned()) {
            problems.push(format!("line {line}: user {id:?} appears twice"));
        }
        let role: Role = match role.parse() {
            Ok(r) => r,
            Err(e) => {
                problems.push(format!("line {line}: {e}"));
                continue;
            }
        };
        let status: UserStatus = match field("status").unwrap_or("active").parse() {
            Ok(s) => s,
            Err(e) => {
                problems.push(format!("line {line}: {e}"));
                continue;
            }
        };
        let supervisor_from = owned("supervisor_from").unwrap_or_else(|| today.clone());
        if !dates::is_date(&supervisor_from) {
            problems.push(format!("line {line}: supervisor_from {supervisor_from:?} is not a date (YYYY-MM-DD)"));
        }
        let supervisor = owned("supervisor");
        if supervisor.as_deref() == Some(id) {
            problems.push(format!("line {line}: {id:?} cannot supervise themselves"));
        }
        rows.push(Row {
            user: User {
                team_id: owned("team"),
                status,
                external_id: owned("external_id"),
                employee_number: owned("employee_number"),
                registration_number: owned("registration_number"),
                ..User::new(id, name, role)
            },
            supervisor,
            supervisor_from,
        });
    }
    if problems.is_empty() { Ok(rows) } else { Err(ImportError::Invalid(problems)) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_reports_every_problem_with_its_line() {
        let text = "id,name,role,team,supervisor\nsam,Sam,supervisor,north,\npat,Pat,wizard,north,sam\npat,Pat,practitioner,,pat\n";
        let Err(ImportError::Invalid(problems)) = parse(text) else { panic!("should fail") };
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems[0].starts_with("line 3: unknown role \"wizard\""));
        assert!(problems[1].contains("line 4: user \"pat\" appears twice"));
        assert!(problems[2].contains("cannot supervise themselves"));
    }

    #[test]
    fn parse_accepts_columns_in_any_order() {
        let rows = parse("role,id,name,employee_number\npractitioner,pat,Pat Doe,E123\n").unwrap();
        assert_eq!(rows[0].user.id, "pat");
        assert_eq!(rows[0].user.employee_number.as_deref(), Some("E123"));
        assert_eq!(rows[0].user.role, Role::Practitioner);
    }
}
