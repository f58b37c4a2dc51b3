//! Refresh tokens, stored only as SHA-256 hashes and bound to one (user, device). A refresh
//! rotates: the presented token is revoked and a new one takes its place.

use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::{Database, StorageError, now_millis};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshToken {
    pub user_id: String,
    pub device_id: String,
    /// Unix milliseconds.
    pub issued_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
}

impl Database {
    pub async fn add_refresh_token(
        &self,
        token_hash: &str,
        user_id: &str,
        device_id: &str,
        expires_at: i64,
    ) -> Result<(), StorageError> {
        sqlx::query(
            "INSERT INTO refresh_tokens (token_hash, user_id, device_id, issued_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(token_hash)
        .bind(user_id)
        .bind(device_id)
        .bind(now_millis())
        .bind(expires_at)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub async fn refresh_token(&self, token_hash: &str) -> Result<Option<RefreshToken>, StorageError> {
        let row = sqlx::query(
            "SELECT user_id, device_id, issued_at, expires_at, revoked_at FROM refresh_tokens WHERE token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(refresh_token_from_row).transpose()
    }

    /// Revokes `old_hash` and stores `new_hash` for the same user and device, in one
    /// transaction. False (and nothing stored) if the old token was no longer active, e.g.
    /// because a concurrent refresh used it first.
    pub async fn rotate_refresh_token(
        &self,
        old_hash: &str,
        new_hash: &str,
        expires_at: i64,
    ) -> Result<bool, StorageError> {
        let now = now_millis();
        let mut tx = self.begin_write().await?;
        let done =
            sqlx::query("UPDATE refresh_tokens SET revoked_at = $2 WHERE token_hash = $1 AND revoked_at IS NULL")
                .bind(old_hash)
                .bind(now)
                .execute(&mut *tx)
                .await?;
        if done.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO refresh_tokens (token_hash, user_id, device_id, issued_at, expires_at)
             SELECT $2, user_id, device_id, $3, $4 FROM refresh_tokens WHERE token_hash = $1",
        )
        .bind(old_hash)
        .bind(new_hash)
        .bind(now)
        .bind(expires_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Revokes one refresh token; false if it was unknown or already revoked.
    pub async fn revoke_refresh_token(&self, token_hash: &str) -> Result<bool, StorageError> {
        let done =
            sqlx::query("UPDATE refresh_tokens SET revoked_at = $2 WHERE token_hash = $1 AND revoked_at IS NULL")
                .bind(token_hash)
                .bind(now_millis())
                .execute(self.pool())
                .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Revokes every active refresh token of one device (e.g. when a rotated one is reused,
    /// which means it was copied); returns how many.
    pub async fn revoke_device_refresh_tokens(&self, user_id: &str, device_id: &str) -> Result<u64, StorageError> {
        let mut tx = self.begin_write().await?;
        let revoked = revoke_for_device(&mut tx, user_id, device_id, now_millis()).await?;
        tx.commit().await?;
        Ok(revoked)
    }
}

/// Revokes a device's active refresh tokens inside a caller's transaction.
pub(crate) async fn revoke_for_device(
    tx: &mut Transaction<'static, Any>,
    user_id: &str,
    device_id: &str,
    now: i64,
) -> Result<u64, StorageError> {
    let done = sqlx::query(
        "UPDATE refresh_tokens SET revoked_at = $3 WHERE user_id = $1 AND device_id = $2 AND revoked_at IS NULL",
    )
    .bind(user_id)
    .bind(device_id)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected())
}

fn refresh_token_from_row(r: &AnyRow) -> Result<RefreshToken, StorageError> {
    Ok(RefreshToken {
        user_id: r.try_get("user_id")?,
        device_id: r.try_get("device_id")?,
        issued_at: r.try_get("issued_at")?,
        expires_at: r.try_get("expires_at")?,
        revoked_at: r.try_get("revoked_at")?,
    })
}
