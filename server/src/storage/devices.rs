//! A user's devices: seen on sign-in and sync, revocable by an admin.

use sqlx::Row;

use super::{Database, StorageError, now_millis};

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Device {
    pub user_id: String,
    pub device_id: String,
    /// Unix milliseconds.
    pub first_seen_at: i64,
    pub last_seen_at: i64,
    pub revoked_at: Option<i64>,
}

impl Database {
    /// Notes that a device made contact; returns false if it is revoked.
    pub async fn device_seen(&self, user_id: &str, device_id: &str) -> Result<bool, StorageError> {
        let now = now_millis();
        sqlx::query(
            "INSERT INTO devices (user_id, device_id, first_seen_at, last_seen_at) VALUES ($1, $2, $3, $3)
             ON CONFLICT (user_id, device_id) DO UPDATE SET last_seen_at = excluded.last_seen_at",
        )
        .bind(user_id)
        .bind(device_id)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(!self.device_revoked(user_id, device_id).await?)
    }

    /// The device's storage key (see migration 0010): `candidate` is kept the first time it is
    /// asked for, and the same key is returned ever after.
    pub async fn device_storage_key(
        &self,
        user_id: &str,
        device_id: &str,
        candidate: &str,
    ) -> Result<String, StorageError> {
        sqlx::query("UPDATE devices SET storage_key = COALESCE(storage_key, $3) WHERE user_id = $1 AND device_id = $2")
            .bind(user_id)
            .bind(device_id)
            .bind(candidate)
            .execute(self.pool())
            .await?;
        let row = sqlx::query("SELECT storage_key FROM devices WHERE user_id = $1 AND device_id = $2")
            .bind(user_id)
            .bind(device_id)
            .fetch_one(self.pool())
            .await?;
        Ok(row.try_get("storage_key")?)
    }

    pub async fn device_revoked(&self, user_id: &str, device_id: &str) -> Result<bool, StorageError> {
        let row = sqlx::query("SELECT revoked_at FROM devices WHERE user_id = $1 AND device_id = $2")
            .bind(user_id)
            .bind(device_id)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.map(|r| r.try_get::<Option<i64>, _>("revoked_at")).transpose()?.flatten().is_some())
    }

    pub async fn devices(&self, user_id: &str) -> Result<Vec<Device>, StorageError> {
        let rows = sqlx::query(
            "SELECT user_id, device_id, first_seen_at, last_seen_at, revoked_at FROM devices
             WHERE user_id = $1 ORDER BY first_seen_at",
        )
        .bind(user_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Device {
                    user_id: r.try_get("user_id")?,
                    device_id: r.try_get("device_id")?,
                    first_seen_at: r.try_get("first_seen_at")?,
                    last_seen_at: r.try_get("last_seen_at")?,
                    revoked_at: r.try_get("revoked_at")?,
                })
            })
            .collect()
    }

    /// Revokes a device and its refresh tokens. A device never seen is recorded as revoked,
    /// so a token issued for it but not yet used is refused too.
    pub async fn revoke_device(&self, user_id: &str, device_id: &str) -> Result<(), StorageError> {
        let now = now_millis();
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO devices (user_id, device_id, first_seen_at, last_seen_at, revoked_at) VALUES ($1, $2, $3, $3, $3)
             ON CONFLICT (user_id, device_id) DO UPDATE SET revoked_at = excluded.revoked_at",
        )
        .bind(user_id)
        .bind(device_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query("INSERT INTO revocations (user_id, device_id, revoked_at) VALUES ($1, $2, $3)")
            .bind(user_id)
            .bind(device_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        super::refresh_tokens::revoke_for_device(&mut tx, user_id, device_id, now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The id of the latest revocation (0 if none): follow on from here.
    pub async fn last_revocation(&self) -> Result<i64, StorageError> {
        let row = sqlx::query("SELECT CAST(COALESCE(MAX(id), 0) AS BIGINT) AS id FROM revocations")
            .fetch_one(self.pool())
            .await?;
        Ok(row.try_get("id")?)
    }

    /// Revocations after `after` (a revocation id), as (id, user, device), for every node to
    /// close the device's connections.
    pub async fn revocations_after(&self, after: i64) -> Result<Vec<(i64, String, String)>, StorageError> {
        let rows = sqlx::query("SELECT id, user_id, device_id FROM revocations WHERE id > $1 ORDER BY id")
            .bind(after)
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(|r| Ok((r.try_get("id")?, r.try_get("user_id")?, r.try_get("device_id")?))).collect()
    }
}
