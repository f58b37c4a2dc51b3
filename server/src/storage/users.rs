//! People who use Fieldbook. Minimal for now: identity, role, supervisor, team.

use std::fmt;
use std::str::FromStr;

use sqlx::Row;

use super::{Database, StorageError, now_millis};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Practitioner,
    Supervisor,
    Manager,
    Hr,
    Admin,
}

impl Role {
    pub const ALL: [Role; 5] = [Role::Practitioner, Role::Supervisor, Role::Manager, Role::Hr, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Practitioner => "practitioner",
            Role::Supervisor => "supervisor",
            Role::Manager => "manager",
            Role::Hr => "hr",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown role {s:?}; expected one of practitioner, supervisor, manager, hr, admin"))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: String,
    pub name: String,
    pub role: Role,
    pub supervisor_id: Option<String>,
    pub team: Option<String>,
}

impl Database {
    pub async fn add_user(&self, user: &User) -> Result<(), StorageError> {
        if let Some(supervisor) = &user.supervisor_id
            && self.user(supervisor).await?.is_none()
        {
            return Err(StorageError::Invalid(format!("supervisor {supervisor:?} does not exist; add them first")));
        }
        if self.user(&user.id).await?.is_some() {
            return Err(StorageError::Invalid(format!("user {:?} already exists", user.id)));
        }
        sqlx::query(
            "INSERT INTO users (id, name, role, supervisor_id, team, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&user.id)
        .bind(&user.name)
        .bind(user.role.as_str())
        .bind(user.supervisor_id.clone())
        .bind(user.team.clone())
        .bind(now_millis())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub async fn user(&self, id: &str) -> Result<Option<User>, StorageError> {
        let row = sqlx::query("SELECT id, name, role, supervisor_id, team FROM users WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        row.map(|r| {
            let role: String = r.try_get("role")?;
            Ok(User {
                id: r.try_get("id")?,
                name: r.try_get("name")?,
                role: role.parse().map_err(StorageError::Invalid)?,
                supervisor_id: r.try_get("supervisor_id")?,
                team: r.try_get("team")?,
            })
        })
        .transpose()
    }
}
