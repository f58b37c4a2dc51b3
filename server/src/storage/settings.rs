//! Per-database settings, created once by whichever node starts first. (No secrets: the
//! token-signing keys live outside the database, see `auth::keys`.)

use sqlx::Row;

use super::{Database, StorageError};

impl Database {
    /// The storage id this database reports to peers. Every node on one database reports the
    /// same one, so a client can tell which of its changes the server has stored.
    pub async fn storage_id(&self) -> Result<String, StorageError> {
        let candidate = uuid::Uuid::new_v4().to_string();
        self.setting_or_insert("storage_id", &candidate).await
    }

    /// A setting's value, if set.
    pub async fn setting(&self, name: &str) -> Result<Option<String>, StorageError> {
        let row = sqlx::query("SELECT value FROM server_settings WHERE name = $1")
            .bind(name)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.map(|r| r.try_get("value")).transpose()?)
    }

    pub async fn set_setting(&self, name: &str, value: &str) -> Result<(), StorageError> {
        sqlx::query(
            "INSERT INTO server_settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = $2",
        )
        .bind(name)
        .bind(value)
        .execute(self.pool())
        .await?;
        Ok(())
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
}
