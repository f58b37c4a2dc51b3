//! The organisation: users, teams and supervision with its history.

use std::fmt;
use std::str::FromStr;

use fieldbook_sync_core::access::{LineGrant, Viewer};
use fieldbook_sync_core::records::dates;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Database, StorageError, now_millis};

pub use fieldbook_sync_core::access::Role;

/// Suspended and deleted users are refused everywhere; deleted ones stay for the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserStatus {
    Active,
    Suspended,
    Deleted,
}

impl UserStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            UserStatus::Active => "active",
            UserStatus::Suspended => "suspended",
            UserStatus::Deleted => "deleted",
        }
    }
}

impl fmt::Display for UserStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for UserStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [UserStatus::Active, UserStatus::Suspended, UserStatus::Deleted]
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown status {s:?}; expected active, suspended or deleted"))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: String,
    pub name: String,
    /// `practitioner`, `supervisor`, `manager`, `principal-social-worker`, `hr` or `admin`.
    #[serde(serialize_with = "display")]
    #[schema(value_type = String)]
    pub role: Role,
    pub team_id: Option<String>,
    /// `active`, `suspended` or `deleted`.
    #[serde(serialize_with = "display")]
    #[schema(value_type = String)]
    pub status: UserStatus,
    /// The identity a council's identity provider knows them by.
    pub external_id: Option<String>,
    pub employee_number: Option<String>,
    pub registration_number: Option<String>,
}

fn display<T: fmt::Display, S: serde::Serializer>(value: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(value)
}

impl User {
    /// A new active user with only the required fields.
    pub fn new(id: impl Into<String>, name: impl Into<String>, role: Role) -> Self {
        User {
            id: id.into(),
            name: name.into(),
            role,
            team_id: None,
            status: UserStatus::Active,
            external_id: None,
            employee_number: None,
            registration_number: None,
        }
    }

    pub fn is_active(&self) -> bool {
        self.status == UserStatus::Active
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Team {
    pub id: String,
    pub name: String,
}

/// One supervision relationship: `ended_on` is exclusive, `None` while current.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Supervision {
    pub supervisee_id: String,
    pub supervisor_id: String,
    pub started_on: String,
    pub ended_on: Option<String>,
}

const USER_COLUMNS: &str = "id, name, role, team_id, status, external_id, employee_number, registration_number";

/// How far up a line of supervision reaches (it also stops cycles).
const MAX_LINE_DEPTH: usize = 12;

impl Database {
    pub async fn add_user(&self, user: &User) -> Result<(), StorageError> {
        if self.user(&user.id).await?.is_some() {
            return Err(StorageError::Conflict(format!("user {:?} already exists", user.id)));
        }
        self.check_team(user.team_id.as_deref()).await?;
        let now = now_millis();
        sqlx::query(
            "INSERT INTO users (id, name, role, team_id, status, external_id, employee_number, registration_number,
                                created_at, updated_at, left_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, CASE WHEN $5 = 'deleted' THEN $9 END)",
        )
        .bind(&user.id)
        .bind(&user.name)
        .bind(user.role.as_str())
        .bind(user.team_id.clone())
        .bind(user.status.as_str())
        .bind(user.external_id.clone())
        .bind(user.employee_number.clone())
        .bind(user.registration_number.clone())
        .bind(now)
        .execute(self.pool())
        .await?;
        self.bump_access_version().await
    }

    /// Replaces a user's details (not their password or supervision).
    pub async fn update_user(&self, user: &User) -> Result<(), StorageError> {
        self.check_team(user.team_id.as_deref()).await?;
        let done = sqlx::query(
            "UPDATE users SET name = $2, role = $3, team_id = $4, status = $5, external_id = $6,
                              employee_number = $7, registration_number = $8, updated_at = $9,
                              left_at = CASE WHEN $5 = 'deleted' THEN COALESCE(left_at, $9) END
             WHERE id = $1",
        )
        .bind(&user.id)
        .bind(&user.name)
        .bind(user.role.as_str())
        .bind(user.team_id.clone())
        .bind(user.status.as_str())
        .bind(user.external_id.clone())
        .bind(user.employee_number.clone())
        .bind(user.registration_number.clone())
        .bind(now_millis())
        .execute(self.pool())
        .await?;
        if done.rows_affected() == 0 {
            return Err(StorageError::NotFound(format!("no user {:?}", user.id)));
        }
        self.bump_access_version().await
    }

    pub async fn user(&self, id: &str) -> Result<Option<User>, StorageError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(self.pool()).await?;
        row.as_ref().map(user_from_row).transpose()
    }

    pub async fn user_by_external_id(&self, external_id: &str) -> Result<Option<User>, StorageError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE external_id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(external_id).fetch_optional(self.pool()).await?;
        row.as_ref().map(user_from_row).transpose()
    }

    pub async fn users(&self) -> Result<Vec<User>, StorageError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users ORDER BY id");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(self.pool()).await?;
        rows.iter().map(user_from_row).collect()
    }

    /// People development records are kept for (every role but HR and admin), in id order
    /// after `after`, optionally of one team: one page of the development-records API.
    pub async fn practitioners_after(
        &self,
        after: Option<&str>,
        team: Option<&str>,
        updated_since: Option<i64>,
        limit: usize,
    ) -> Result<Vec<User>, StorageError> {
        let mut conditions = vec!["role NOT IN ('hr', 'admin')".to_owned()];
        if let Some(since) = updated_since {
            // Whose observations, plans or group sessions changed since then (an integer, not
            // user input).
            conditions.push(format!(
                "id IN (SELECT practitioner_id FROM observations WHERE updated_at >= {since} AND status <> 'draft'
                        UNION SELECT owner_id FROM development_plans WHERE updated_at >= {since}
                        UNION SELECT facilitator_id FROM group_sessions WHERE updated_at >= {since} AND status <> 'draft'
                        UNION SELECT p.user_id FROM group_session_participants p
                              JOIN group_sessions g ON g.document_url = p.document_url
                              WHERE g.updated_at >= {since} AND g.status <> 'draft')"
            ));
        }
        let mut binds: Vec<&str> = Vec::new();
        if let Some(after) = after {
            binds.push(after);
            conditions.push(format!("id > ${}", binds.len()));
        }
        if let Some(team) = team {
            binds.push(team);
            conditions.push(format!("team_id = ${}", binds.len()));
        }
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM users WHERE {} ORDER BY id LIMIT {}",
            conditions.join(" AND "),
            limit as i64
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for value in binds {
            query = query.bind(value);
        }
        query.fetch_all(self.pool()).await?.iter().map(user_from_row).collect()
    }

    /// The users among `ids` (unknown ids are left out).
    pub async fn users_by_id(&self, ids: &[&str]) -> Result<std::collections::HashMap<String, User>, StorageError> {
        let mut out = std::collections::HashMap::new();
        for part in ids.chunks(super::MAX_PARAMETERS) {
            let list: Vec<String> = (1..=part.len()).map(|i| format!("${i}")).collect();
            let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id IN ({})", list.join(", "));
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for id in part {
                query = query.bind(*id);
            }
            for row in query.fetch_all(self.pool()).await? {
                let user = user_from_row(&row)?;
                out.insert(user.id.clone(), user);
            }
        }
        Ok(out)
    }

    /// The current supervisors of `ids` (supervisee → supervisor).
    pub async fn supervisors_of(
        &self,
        ids: &[&str],
    ) -> Result<std::collections::HashMap<String, String>, StorageError> {
        let mut out = std::collections::HashMap::new();
        for part in ids.chunks(super::MAX_PARAMETERS) {
            let list: Vec<String> = (1..=part.len()).map(|i| format!("${i}")).collect();
            let sql = format!(
                "SELECT supervisee_id, supervisor_id FROM supervision WHERE ended_on IS NULL AND supervisee_id IN ({})",
                list.join(", ")
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for id in part {
                query = query.bind(*id);
            }
            for row in query.fetch_all(self.pool()).await? {
                out.insert(row.try_get("supervisee_id")?, row.try_get("supervisor_id")?);
            }
        }
        Ok(out)
    }

    /// Stores an argon2 PHC string (see `auth::passwords`), or clears it with `None`.
    pub async fn set_password_hash(&self, user_id: &str, hash: Option<&str>) -> Result<(), StorageError> {
        let done = sqlx::query("UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1")
            .bind(user_id)
            .bind(hash.map(str::to_owned))
            .bind(now_millis())
            .execute(self.pool())
            .await?;
        if done.rows_affected() == 0 {
            return Err(StorageError::NotFound(format!("no user {user_id:?}")));
        }
        Ok(())
    }

    pub async fn password_hash(&self, user_id: &str) -> Result<Option<String>, StorageError> {
        let row = sqlx::query("SELECT password_hash FROM users WHERE id = $1")
            .bind(user_id)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.map(|r| r.try_get::<Option<String>, _>("password_hash")).transpose()?.flatten())
    }

    pub async fn add_team(&self, team: &Team) -> Result<(), StorageError> {
        let exists =
            sqlx::query("SELECT id FROM teams WHERE id = $1").bind(&team.id).fetch_optional(self.pool()).await?;
        if exists.is_some() {
            return Err(StorageError::Conflict(format!("team {:?} already exists", team.id)));
        }
        sqlx::query("INSERT INTO teams (id, name, created_at) VALUES ($1, $2, $3)")
            .bind(&team.id)
            .bind(&team.name)
            .bind(now_millis())
            .execute(self.pool())
            .await?;
        Ok(())
    }

    pub async fn teams(&self) -> Result<Vec<Team>, StorageError> {
        let rows = sqlx::query("SELECT id, name FROM teams ORDER BY id").fetch_all(self.pool()).await?;
        rows.iter().map(|r| Ok(Team { id: r.try_get("id")?, name: r.try_get("name")? })).collect()
    }

    async fn check_team(&self, team: Option<&str>) -> Result<(), StorageError> {
        let Some(team) = team else { return Ok(()) };
        let row = sqlx::query("SELECT id FROM teams WHERE id = $1").bind(team).fetch_optional(self.pool()).await?;
        match row {
            Some(_) => Ok(()),
            None => Err(StorageError::NotFound(format!("no team {team:?}; add it first"))),
        }
    }

    /// Makes `supervisor` the supervisee's supervisor from `from` (`YYYY-MM-DD`), ending the
    /// current relationship that day (or replacing it, if it began that day); `None` ends supervision without a successor. Old
    /// records keep the access they had: the ended relationship stays in the history.
    pub async fn set_supervisor(
        &self,
        supervisee: &str,
        supervisor: Option<&str>,
        from: &str,
    ) -> Result<(), StorageError> {
        require_date(from)?;
        for id in std::iter::once(supervisee).chain(supervisor) {
            if self.user(id).await?.is_none() {
                return Err(StorageError::NotFound(format!("no user {id:?}; add them first")));
            }
        }
        if supervisor == Some(supervisee) {
            return Err(StorageError::Conflict("nobody supervises themselves".into()));
        }
        if let Some(supervisor) = supervisor
            && self.line_edges_below(supervisee).await?.iter().any(|e| e.supervisee_id == supervisor)
        {
            return Err(StorageError::Conflict(format!(
                "{supervisor:?} is in {supervisee:?}'s own line; that would make a cycle"
            )));
        }
        let current = self.supervision_history(supervisee).await?;
        if let Some(open) = current.iter().find(|s| s.supervisee_id == supervisee && s.ended_on.is_none())
            && from < open.started_on.as_str()
        {
            return Err(StorageError::Conflict(format!(
                "{supervisee:?} has been supervised by {:?} since {}; a change may not start before that (history is kept, not rewritten)",
                open.supervisor_id, open.started_on
            )));
        }
        let mut tx = self.begin_write().await?;
        // Changed again on the day it began: that one never ran, and goes (it gave no access).
        sqlx::query("DELETE FROM supervision WHERE supervisee_id = $1 AND ended_on IS NULL AND started_on = $2")
            .bind(supervisee)
            .bind(from)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE supervision SET ended_on = $2 WHERE supervisee_id = $1 AND ended_on IS NULL")
            .bind(supervisee)
            .bind(from)
            .execute(&mut *tx)
            .await?;
        if let Some(supervisor) = supervisor {
            sqlx::query(
                "INSERT INTO supervision (supervisee_id, supervisor_id, started_on, created_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(supervisee)
            .bind(supervisor)
            .bind(from)
            .bind(now_millis())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        self.bump_access_version().await
    }

    /// Everyone's current supervisor (supervisee → supervisor).
    /// Since when each supervisee's open supervision runs (`YYYY-MM-DD`).
    pub async fn open_supervision_starts(&self) -> Result<std::collections::HashMap<String, String>, StorageError> {
        let rows = sqlx::query("SELECT supervisee_id, started_on FROM supervision WHERE ended_on IS NULL")
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(|r| Ok((r.try_get("supervisee_id")?, r.try_get("started_on")?))).collect()
    }

    pub async fn current_supervisors(&self) -> Result<std::collections::HashMap<String, String>, StorageError> {
        let rows = sqlx::query("SELECT supervisee_id, supervisor_id FROM supervision WHERE ended_on IS NULL")
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(|r| Ok((r.try_get("supervisee_id")?, r.try_get("supervisor_id")?))).collect()
    }

    /// The active people `user_id` supervises on `today`, and who supervises them, by name
    /// (a relationship set to start later counts from its start).
    pub async fn supervision_on(&self, user_id: &str, today: &str) -> Result<(Vec<User>, Vec<User>), StorageError> {
        let columns = USER_COLUMNS.split(", ").map(|c| format!("u.{c}")).collect::<Vec<_>>().join(", ");
        let sql = format!(
            "SELECT {columns}, s.supervisor_id AS above FROM supervision s
             JOIN users u ON u.id = CASE WHEN s.supervisor_id = $1 THEN s.supervisee_id ELSE s.supervisor_id END
             WHERE (s.supervisor_id = $1 OR s.supervisee_id = $1) AND u.status = 'active'
               AND s.started_on <= $2 AND (s.ended_on IS NULL OR s.ended_on > $2)
             ORDER BY u.name, u.id"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(user_id).bind(today).fetch_all(self.pool()).await?;
        let (mut supervisees, mut supervisors) = (Vec::new(), Vec::new());
        for row in &rows {
            let above: String = row.try_get("above")?;
            let person = user_from_row(row)?;
            if above == user_id { supervisees.push(person) } else { supervisors.push(person) }
        }
        Ok((supervisees, supervisors))
    }

    /// A user's supervision history, as supervisee and as supervisor, oldest first.
    pub async fn supervision_history(&self, user_id: &str) -> Result<Vec<Supervision>, StorageError> {
        let rows = sqlx::query(
            "SELECT supervisee_id, supervisor_id, started_on, ended_on FROM supervision
             WHERE supervisee_id = $1 OR supervisor_id = $1 ORDER BY started_on, id",
        )
        .bind(user_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(supervision_from_row).collect()
    }

    /// Every supervision relationship below `user_id`, through any number of levels.
    async fn line_edges_below(&self, user_id: &str) -> Result<Vec<Supervision>, StorageError> {
        let rows = sqlx::query(
            "WITH RECURSIVE below (id) AS (
                 SELECT CAST($1 AS TEXT)
                 UNION SELECT s.supervisee_id FROM supervision s JOIN below b ON s.supervisor_id = b.id
             )
             SELECT supervisee_id, supervisor_id, started_on, ended_on FROM supervision
             WHERE supervisor_id IN (SELECT id FROM below)",
        )
        .bind(user_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(supervision_from_row).collect()
    }

    /// The user as access checks see them: role and the spans of time they were in each
    /// colleague's line (directly, or above a supervisor, where both spans overlap).
    pub async fn viewer(&self, user: &User) -> Result<Viewer, StorageError> {
        let edges = self.line_edges_below(&user.id).await?;
        let mut line = Vec::new();
        // (person, from, to) spans to walk down from, starting with the user, always.
        let mut frontier = vec![(user.id.clone(), "0000-01-01".to_string(), None::<String>)];
        for _ in 0..MAX_LINE_DEPTH {
            let mut next = Vec::new();
            for (above, from, to) in &frontier {
                for edge in edges.iter().filter(|e| &e.supervisor_id == above) {
                    let start = std::cmp::max(from.clone(), edge.started_on.clone());
                    let end = match (to, &edge.ended_on) {
                        (Some(a), Some(b)) => Some(std::cmp::min(a, b).clone()),
                        (a, b) => a.clone().or_else(|| b.clone()),
                    };
                    if end.as_ref().is_some_and(|end| *end <= start) {
                        continue;
                    }
                    let grant = LineGrant { subject_id: edge.supervisee_id.clone(), from: start, to: end };
                    if !line.contains(&grant) {
                        next.push((grant.subject_id.clone(), grant.from.clone(), grant.to.clone()));
                        line.push(grant);
                    }
                }
            }
            if next.is_empty() {
                break;
            }
            frontier = next;
        }
        Ok(Viewer { user_id: user.id.clone(), role: user.role, line, team: user.team_id.clone() })
    }

    /// Tells every server node to drop what it cached about who may read what.
    pub(crate) async fn bump_access_version(&self) -> Result<(), StorageError> {
        sqlx::query(
            "UPDATE server_settings SET value = CAST(CAST(value AS BIGINT) + 1 AS TEXT) WHERE name = 'access_version'",
        )
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub async fn access_version(&self) -> Result<i64, StorageError> {
        let row = sqlx::query("SELECT value FROM server_settings WHERE name = 'access_version'")
            .fetch_one(self.pool())
            .await?;
        let value: String = row.try_get("value")?;
        value.parse().map_err(|_| StorageError::Internal(format!("bad access_version {value:?}")))
    }
}

fn user_from_row(r: &AnyRow) -> Result<User, StorageError> {
    let role: String = r.try_get("role")?;
    let status: String = r.try_get("status")?;
    Ok(User {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        role: role.parse().map_err(StorageError::Internal)?,
        team_id: r.try_get("team_id")?,
        status: status.parse().map_err(StorageError::Internal)?,
        external_id: r.try_get("external_id")?,
        employee_number: r.try_get("employee_number")?,
        registration_number: r.try_get("registration_number")?,
    })
}

fn supervision_from_row(r: &AnyRow) -> Result<Supervision, StorageError> {
    Ok(Supervision {
        supervisee_id: r.try_get("supervisee_id")?,
        supervisor_id: r.try_get("supervisor_id")?,
        started_on: r.try_get("started_on")?,
        ended_on: r.try_get("ended_on")?,
    })
}

/// Refuses a start of supervision that is not a `YYYY-MM-DD` date.
pub fn require_date(from: &str) -> Result<(), StorageError> {
    if dates::is_date(from) {
        Ok(())
    } else {
        Err(StorageError::Refused(format!("{from:?} is not a date (YYYY-MM-DD)")))
    }
}
