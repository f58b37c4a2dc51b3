//! Per-database settings and secrets, created once by whichever node starts first.

use rand::RngCore;
use sqlx::Row;

use super::{Database, StorageError, now_millis};

/// A secret that signs access tokens.
#[derive(Clone)]
pub struct SigningKey {
    pub id: String,
    pub secret: Vec<u8>,
}

impl Database {
    /// The storage id this database reports to peers. Every node on one database reports the
    /// same one, so a client can tell which of its changes the server has stored.
    pub async fn storage_id(&self) -> Result<String, StorageError> {
        let candidate = uuid::Uuid::new_v4().to_string();
        self.setting_or_insert("storage_id", &candidate).await
    }

    async fn setting_or_insert(&self, name: &str, candidate: &str) -> Result<String, StorageError> {
        sqlx::query("INSERT INTO server_settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
            .bind(name)
            .bind(candidate)
            .execute(self.pool())
            .await?;
        let row =
            sqlx::query("SELECT value FROM server_settings WHERE name = $1").bind(name).fetch_one(self.pool()).await?;
        Ok(row.try_get("value")?)
    }

    /// The newest token-signing key, created on first use.
    pub async fn signing_key(&self) -> Result<SigningKey, StorageError> {
        if let Some(key) = self.newest_signing_key().await? {
            return Ok(key);
        }
        let mut secret = vec![0u8; 32];
        rand::rng().fill_bytes(&mut secret);
        // A fixed id for the first key makes concurrent first starts agree on one key.
        sqlx::query(
            "INSERT INTO signing_keys (id, secret, created_at) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING",
        )
        .bind("key-1")
        .bind(secret)
        .bind(now_millis())
        .execute(self.pool())
        .await?;
        self.newest_signing_key().await?.ok_or_else(|| StorageError::Invalid("signing key vanished".into()))
    }

    async fn newest_signing_key(&self) -> Result<Option<SigningKey>, StorageError> {
        let row = sqlx::query("SELECT id, secret FROM signing_keys ORDER BY created_at DESC, id DESC LIMIT 1")
            .fetch_optional(self.pool())
            .await?;
        row.map(|r| Ok(SigningKey { id: r.try_get("id")?, secret: r.try_get("secret")? })).transpose()
    }
}
