//! Managing the organisation: people, teams, supervision, passwords, devices, and the bulk
//! import of a whole authority from CSV. The admin API and the command line both go through
//! here, so each change is made, checked and audited one way.

use std::collections::{HashMap, HashSet};

use fieldbook_sync_core::records::dates;
use serde_json::{Value, json};

use crate::storage::{AuditEvent, Database, Role, Scope, ServiceAccount, StorageError, Team, User, UserStatus};

/// Who makes a change, for the audit trail.
#[derive(Debug, Clone, Copy)]
pub enum Operator<'a> {
    /// Someone signed in, through the API: an admin, or an author discarding their draft.
    Person { user_id: &'a str, device_id: Option<&'a str> },
    /// Whoever runs `fieldbook` on the server (they hold the database itself).
    CommandLine,
    /// The server itself, running a scheduled job (e.g. `retention`).
    Scheduled(&'static str),
    /// A system, by service-account key (an identity provider provisioning people over SCIM).
    Service { account_id: &'a str },
}

impl Operator<'_> {
    /// Who this is, in words, for ledgers that name who acted.
    pub fn name(&self) -> String {
        match self {
            Operator::Person { user_id, .. } => (*user_id).to_owned(),
            Operator::CommandLine => format!("command line ({})", std::env::var("USER").unwrap_or_default()),
            Operator::Scheduled(job) => format!("scheduled job ({job})"),
            Operator::Service { account_id } => format!("service:{account_id}"),
        }
    }

    pub fn event(&self, action: &'static str, detail: Value) -> AuditEvent {
        match self {
            Operator::Person { user_id, device_id } => AuditEvent::new(action).by(user_id, *device_id).detail(detail),
            Operator::CommandLine => {
                let operator = std::env::var("USER").unwrap_or_default();
                AuditEvent::new(action).detail(json!({ "via": "command line", "operator": operator, "change": detail }))
            }
            Operator::Scheduled(job) => {
                AuditEvent::new(action).detail(json!({ "via": "scheduled job", "job": job, "change": detail }))
            }
            // As the development-records API names a service account reading (`Caller::event`).
            Operator::Service { .. } => {
                let mut event = AuditEvent::new(action).detail(detail);
                event.user_id = Some(self.name());
                event
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OrgError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Adds a user, and their first supervisor from `from` (default today).
pub async fn add_user(
    db: &Database,
    by: Operator<'_>,
    user: &User,
    supervisor: Option<&str>,
    from: Option<String>,
) -> Result<(), StorageError> {
    // Checked before anything is written, and even with no supervisor to start from it.
    let from = from.unwrap_or_else(dates::today);
    crate::storage::require_date(&from)?;
    db.add_user(user).await?;
    if let Some(supervisor) = supervisor {
        db.set_supervisor(&user.id, Some(supervisor), &from).await?;
    }
    db.audit(
        by.event("admin.user-added", json!({ "user": user.id, "role": user.role.as_str(), "supervisor": supervisor })),
    )
    .await
}

pub async fn update_user(db: &Database, by: Operator<'_>, user: &User) -> Result<(), StorageError> {
    db.update_user(user).await?;
    let detail = json!({ "user": user.id, "role": user.role.as_str(), "status": user.status.as_str() });
    db.audit(by.event("admin.user-updated", detail)).await
}

/// A new supervisor (or none) from `from` (default today); the old relationship ends then.
pub async fn set_supervisor(
    db: &Database,
    by: Operator<'_>,
    supervisee: &str,
    supervisor: Option<&str>,
    from: Option<String>,
) -> Result<String, StorageError> {
    let from = from.unwrap_or_else(dates::today);
    db.set_supervisor(supervisee, supervisor, &from).await?;
    db.audit(by.event("admin.supervisor-set", json!({ "user": supervisee, "supervisor": supervisor, "from": from })))
        .await?;
    Ok(from)
}

pub async fn add_team(db: &Database, by: Operator<'_>, team: &Team) -> Result<(), StorageError> {
    db.add_team(team).await?;
    db.audit(by.event("admin.team-added", json!({ "team": team.id }))).await
}

/// Sets a user's password for built-in sign-in (hashed with argon2 off the async threads).
pub async fn set_password(db: &Database, by: Operator<'_>, user_id: &str, password: String) -> Result<(), OrgError> {
    if db.user(user_id).await?.is_none() {
        return Err(StorageError::NotFound(format!("no user {user_id:?}")).into());
    }
    let hash = tokio::task::spawn_blocking(move || crate::auth::passwords::hash_password(&password))
        .await
        .map_err(|e| OrgError::Invalid(format!("could not hash the password: {e}")))?
        .map_err(|e| OrgError::Invalid(e.to_string()))?;
    db.set_password_hash(user_id, Some(&hash)).await?;
    db.audit(by.event("admin.password-set", json!({ "user": user_id }))).await?;
    Ok(())
}

/// Revokes a device: its tokens are refused, and every node closes its connections after
/// telling it to wipe (see `app::follow_revocations`).
pub async fn revoke_device(
    db: &Database,
    by: Operator<'_>,
    user_id: &str,
    device_id: &str,
) -> Result<(), StorageError> {
    if db.user(user_id).await?.is_none() {
        return Err(StorageError::NotFound(format!("no user {user_id:?}")));
    }
    db.revoke_device(user_id, device_id).await?;
    db.audit(by.event("admin.device-revoked", json!({ "user": user_id, "device": device_id }))).await
}

/// The prefix that marks a service-account key (as opposed to a person's JWT).
pub const SERVICE_KEY_PREFIX: &str = "fbsa_";

fn new_service_key() -> (String, String) {
    let (secret, _) = crate::auth::tokens::new_secret();
    let key = format!("{SERVICE_KEY_PREFIX}{secret}");
    let hash = crate::auth::tokens::secret_hash(&key);
    (key, hash)
}

/// Adds a service account; returns it with its key, which is shown this once only.
pub async fn add_service_account(
    db: &Database,
    by: Operator<'_>,
    name: &str,
    scopes: &[Scope],
) -> Result<(ServiceAccount, String), StorageError> {
    let id = format!("sa-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let (key, hash) = new_service_key();
    let account = db.add_service_account(&id, name, scopes, &hash).await?;
    let scopes: Vec<&str> = scopes.iter().map(|s| s.as_str()).collect();
    db.audit(by.event("admin.service-account-added", json!({ "account": id, "name": name, "scopes": scopes }))).await?;
    Ok((account, key))
}

/// Gives a service account a new key; the old one stops working at once.
pub async fn rotate_service_account(db: &Database, by: Operator<'_>, id: &str) -> Result<String, StorageError> {
    let (key, hash) = new_service_key();
    db.rotate_service_account(id, &hash).await?;
    db.audit(by.event("admin.service-account-rotated", json!({ "account": id }))).await?;
    Ok(key)
}

pub async fn revoke_service_account(db: &Database, by: Operator<'_>, id: &str) -> Result<(), StorageError> {
    db.revoke_service_account(id).await?;
    db.audit(by.event("admin.service-account-revoked", json!({ "account": id }))).await
}

/// [`import_csv`], audited.
pub async fn import(db: &Database, by: Operator<'_>, text: &str) -> Result<ImportReport, ImportError> {
    let report = import_csv(db, text).await?;
    db.audit(by.event("admin.users-imported", serde_json::to_value(&report).unwrap_or_default())).await?;
    Ok(report)
}

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

#[derive(Debug, Default, serde::Serialize, utoipa::ToSchema)]
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
    /// The columns the file has: an update changes only those.
    columns: HashSet<String>,
}

impl Row {
    /// The stored user with this row's columns applied.
    fn update(&self, mut stored: User) -> User {
        let has = |c: &str| self.columns.contains(c);
        stored.name = self.user.name.clone();
        stored.role = self.user.role;
        if has("team") {
            stored.team_id = self.user.team_id.clone();
        }
        if has("status") {
            stored.status = self.user.status;
        }
        if has("external_id") {
            stored.external_id = self.user.external_id.clone();
        }
        if has("employee_number") {
            stored.employee_number = self.user.employee_number.clone();
        }
        if has("registration_number") {
            stored.registration_number = self.user.registration_number.clone();
        }
        stored
    }
}

/// Creates or updates every user in the file (only the columns it has), creating teams as
/// needed, and moves supervision where the file names a different supervisor (history is
/// kept). Everything is checked first, including that no line of supervision would loop.
async fn import_csv(db: &Database, text: &str) -> Result<ImportReport, ImportError> {
    let rows = parse(text)?;
    let stored: HashMap<String, User> = db.users().await?.into_iter().map(|u| (u.id.clone(), u)).collect();
    let in_file: HashSet<&str> = rows.iter().map(|r| r.user.id.as_str()).collect();
    let mut problems = Vec::new();
    let mut supervisors = db.current_supervisors().await?;
    let starts = db.open_supervision_starts().await?;
    // A changed supervisor starts a new relationship, which may not start before the current
    // one did (history is kept, not rewritten; the same day replaces it): checked here, before
    // anything is written.
    for (line, row) in rows.iter().enumerate() {
        let changes = row.columns.contains("supervisor") && row.supervisor.as_ref() != supervisors.get(&row.user.id);
        if let Some(since) = starts.get(&row.user.id).filter(|since| changes && row.supervisor_from < **since) {
            problems.push(format!(
                "line {}: {:?}'s current supervision started {since}; a change may not start before that \
                 (supervisor_from, default today)",
                line + 2,
                row.user.id
            ));
        }
    }
    for (line, row) in rows.iter().enumerate() {
        if let Some(s) = &row.supervisor
            && !stored.contains_key(s)
            && !in_file.contains(s.as_str())
        {
            problems.push(format!("line {}: supervisor {s:?} is neither in the file nor a user", line + 2));
        }
        if row.columns.contains("supervisor") {
            match &row.supervisor {
                Some(s) => supervisors.insert(row.user.id.clone(), s.clone()),
                None => supervisors.remove(&row.user.id),
            };
        }
    }
    // External ids (what an identity provider's token names) belong to one user each.
    for (line, row) in rows.iter().enumerate() {
        let Some(external) = row.user.external_id.as_deref().filter(|_| row.columns.contains("external_id")) else {
            continue;
        };
        if let Some(owner) = stored.values().find(|u| u.external_id.as_deref() == Some(external) && u.id != row.user.id)
        {
            problems.push(format!(
                "line {}: external id {external:?} is {:?}'s; change theirs first (in another import)",
                line + 2,
                owner.id
            ));
        }
        if let Some(first) = rows[..line].iter().position(|r| r.user.external_id.as_deref() == Some(external)) {
            problems.push(format!("line {}: external id {external:?} is also on line {}", line + 2, first + 2));
        }
    }
    for (line, row) in rows.iter().enumerate() {
        if loops(&supervisors, &row.user.id) {
            problems.push(format!(
                "line {}: {:?}'s line of supervision would come back to them",
                line + 2,
                row.user.id
            ));
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
        match stored.get(&row.user.id) {
            Some(user) => {
                db.update_user(&row.update(user.clone())).await?;
                report.users_updated += 1;
            }
            None => {
                db.add_user(&row.user).await?;
                report.users_created += 1;
            }
        }
    }
    let current = db.current_supervisors().await?;
    for row in rows.iter().filter(|r| r.columns.contains("supervisor")) {
        if row.supervisor.as_ref() != current.get(&row.user.id) {
            db.set_supervisor(&row.user.id, row.supervisor.as_deref(), &row.supervisor_from).await?;
            report.supervisors_changed += 1;
        }
    }
    Ok(report)
}

/// Whether following supervisors up from `user` comes back to them.
fn loops(supervisors: &HashMap<String, String>, user: &str) -> bool {
    let mut seen = HashSet::new();
    let mut at = user;
    while let Some(next) = supervisors.get(at) {
        if next == user {
            return true;
        }
        if !seen.insert(next.as_str()) {
            return false; // a loop above them, reported for its own members
        }
        at = next;
    }
    false
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
    for (i, h) in headers.iter().enumerate() {
        if !CSV_COLUMNS.contains(&h.as_str()) {
            problems.push(format!("line 1: unknown column {h:?} (columns: {})", CSV_COLUMNS.join(", ")));
        } else if headers[..i].contains(h) {
            problems.push(format!("line 1: column {h:?} appears twice"));
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
            columns: headers.iter().cloned().collect(),
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
    fn loops_are_found() {
        let edges: HashMap<String, String> =
            [("a", "b"), ("b", "c"), ("c", "a"), ("d", "a")].map(|(x, y)| (x.to_owned(), y.to_owned())).into();
        assert!(loops(&edges, "a") && loops(&edges, "c"));
        assert!(!loops(&edges, "d"));
    }

    #[test]
    fn parse_accepts_columns_in_any_order() {
        let rows = parse("role,id,name,employee_number\npractitioner,pat,Pat Doe,E123\n").unwrap();
        assert_eq!(rows[0].user.id, "pat");
        assert_eq!(rows[0].user.employee_number.as_deref(), Some("E123"));
        assert_eq!(rows[0].user.role, Role::Practitioner);
    }
}
