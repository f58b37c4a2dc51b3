//! Service accounts: systems that call the development-records API, or provision people
//! over SCIM, with a key and scopes.

use std::fmt;
use std::str::FromStr;

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Database, StorageError, now_millis};

/// What a service account may call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub enum Scope {
    /// Minimised development records, the change feed, CSV and xAPI.
    #[serde(rename = "hr:read")]
    HrRead,
    /// Aggregates by team and component, small numbers suppressed.
    #[serde(rename = "insights:read")]
    InsightsRead,
    /// Provisioning people and teams over SCIM (`/scim/v2`).
    #[serde(rename = "scim")]
    Scim,
}

impl Scope {
    pub const ALL: [Scope; 3] = [Scope::HrRead, Scope::InsightsRead, Scope::Scim];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::HrRead => "hr:read",
            Scope::InsightsRead => "insights:read",
            Scope::Scim => "scim",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scope::ALL
            .into_iter()
            .find(|x| x.as_str() == s.trim())
            .ok_or_else(|| format!("unknown scope {s:?}; expected {}", Scope::ALL.map(Scope::as_str).join(", ")))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceAccount {
    pub id: String,
    pub name: String,
    pub scopes: Vec<Scope>,
    pub created_at: i64,
    pub rotated_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

impl ServiceAccount {
    pub fn may(&self, scope: Scope) -> bool {
        self.revoked_at.is_none() && self.scopes.contains(&scope)
    }
}

const COLUMNS: &str = "id, name, scopes, created_at, rotated_at, revoked_at";

impl Database {
    /// Adds an account whose key hashes to `key_hash`.
    pub async fn add_service_account(
        &self,
        id: &str,
        name: &str,
        scopes: &[Scope],
        key_hash: &str,
    ) -> Result<ServiceAccount, StorageError> {
        if name.trim().is_empty() {
            return Err(StorageError::Refused("a service account needs a name".into()));
        }
        if scopes.is_empty() {
            return Err(StorageError::Refused("a service account needs at least one scope".into()));
        }
        let scopes_text: Vec<&str> = scopes.iter().map(|s| s.as_str()).collect();
        sqlx::query(
            "INSERT INTO service_accounts (id, name, scopes, key_hash, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id)
        .bind(name)
        .bind(scopes_text.join(","))
        .bind(key_hash)
        .bind(now_millis())
        .execute(self.pool())
        .await?;
        self.service_account(id).await?.ok_or_else(|| StorageError::NotFound(format!("no service account {id:?}")))
    }

    pub async fn service_account(&self, id: &str) -> Result<Option<ServiceAccount>, StorageError> {
        let sql = format!("SELECT {COLUMNS} FROM service_accounts WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(self.pool()).await?;
        row.as_ref().map(account_from_row).transpose()
    }

    /// The account a key belongs to (revoked ones included: the caller refuses them).
    pub async fn service_account_by_key(&self, key_hash: &str) -> Result<Option<ServiceAccount>, StorageError> {
        let sql = format!("SELECT {COLUMNS} FROM service_accounts WHERE key_hash = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(key_hash).fetch_optional(self.pool()).await?;
        row.as_ref().map(account_from_row).transpose()
    }

    pub async fn service_accounts(&self) -> Result<Vec<ServiceAccount>, StorageError> {
        let sql = format!("SELECT {COLUMNS} FROM service_accounts ORDER BY created_at, id");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(self.pool()).await?;
        rows.iter().map(account_from_row).collect()
    }

    /// Replaces an active account's key; the old key stops working at once.
    pub async fn rotate_service_account(&self, id: &str, key_hash: &str) -> Result<(), StorageError> {
        let done = sqlx::query(
            "UPDATE service_accounts SET key_hash = $2, rotated_at = $3 WHERE id = $1 AND revoked_at IS NULL",
        )
        .bind(id)
        .bind(key_hash)
        .bind(now_millis())
        .execute(self.pool())
        .await?;
        if done.rows_affected() == 0 {
            return Err(StorageError::NotFound(format!("no active service account {id:?}")));
        }
        Ok(())
    }

    pub async fn revoke_service_account(&self, id: &str) -> Result<(), StorageError> {
        let done = sqlx::query("UPDATE service_accounts SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
            .bind(id)
            .bind(now_millis())
            .execute(self.pool())
            .await?;
        if done.rows_affected() == 0 {
            return Err(StorageError::NotFound(format!("no active service account {id:?}")));
        }
        Ok(())
    }
}

fn account_from_row(r: &AnyRow) -> Result<ServiceAccount, StorageError> {
    let scopes: String = r.try_get("scopes")?;
    Ok(ServiceAccount {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        scopes: scopes
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::parse)
            .collect::<Result<_, _>>()
            .map_err(StorageError::Internal)?,
        created_at: r.try_get("created_at")?,
        rotated_at: r.try_get("rotated_at")?,
        revoked_at: r.try_get("revoked_at")?,
    })
}
