//! What SCIM provisioning keeps beside people and teams: a person's `userName` (their
//! `externalId` is `users.external_id`) and a team's `externalId`, and whether the identity
//! provider deleted the team.

use sqlx::Row;

use super::{Database, StorageError, Team, User, now_millis};

impl Database {
    /// The `userName` each person provisioned over SCIM has (user id → userName).
    pub async fn scim_user_names(&self) -> Result<std::collections::HashMap<String, String>, StorageError> {
        let rows = sqlx::query("SELECT user_id, user_name FROM scim_users").fetch_all(self.pool()).await?;
        rows.iter().map(|r| Ok((r.try_get("user_id")?, r.try_get("user_name")?))).collect()
    }

    /// The person a `userName` names (matched case-insensitively); a person added another way
    /// (CSV, the admin API) whose external id is that name is matched too, so a provider adopts
    /// them instead of creating them twice.
    pub async fn user_by_scim_name(&self, user_name: &str) -> Result<Option<User>, StorageError> {
        let row = sqlx::query("SELECT user_id FROM scim_users WHERE user_name_key = $1")
            .bind(user_name.to_lowercase())
            .fetch_optional(self.pool())
            .await?;
        if let Some(row) = row {
            return self.user(&row.try_get::<String, _>("user_id")?).await;
        }
        let Some(adopted) = self.user_by_external_id(user_name).await? else { return Ok(None) };
        // Provisioned under another userName: that one names them, not this.
        let provisioned = sqlx::query("SELECT 1 AS x FROM scim_users WHERE user_id = $1")
            .bind(&adopted.id)
            .fetch_optional(self.pool())
            .await?
            .is_some();
        Ok((!provisioned).then_some(adopted))
    }

    /// Records the person's `userName`; another person's (case aside) is a conflict.
    pub async fn set_scim_user_name(&self, user_id: &str, user_name: &str) -> Result<(), StorageError> {
        if let Some(holder) = self.user_by_scim_name(user_name).await?
            && holder.id != user_id
        {
            return Err(StorageError::Conflict(format!("userName {user_name:?} is {:?}'s", holder.id)));
        }
        let now = now_millis();
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM scim_users WHERE user_id = $1").bind(user_id).execute(&mut *tx).await?;
        sqlx::query(
            "INSERT INTO scim_users (user_id, user_name, user_name_key, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $4)",
        )
        .bind(user_id)
        .bind(user_name)
        .bind(user_name.to_lowercase())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// A team as SCIM sees it, with the provider's `externalId`; `None` if there is no such
    /// team or the provider deleted it.
    pub async fn scim_group(&self, team_id: &str) -> Result<Option<(Team, Option<String>)>, StorageError> {
        Ok(self.scim_groups().await?.into_iter().find(|(team, _)| team.id == team_id))
    }

    /// Every team the provider has not deleted, with its `externalId`.
    pub async fn scim_groups(&self) -> Result<Vec<(Team, Option<String>)>, StorageError> {
        let rows = sqlx::query(
            "SELECT teams.id, teams.name, scim_groups.external_id FROM teams
             LEFT JOIN scim_groups ON scim_groups.team_id = teams.id
             WHERE scim_groups.deleted_at IS NULL ORDER BY teams.id",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| Ok((Team { id: r.try_get("id")?, name: r.try_get("name")? }, r.try_get("external_id")?)))
            .collect()
    }

    /// Names a team anew and records the provider's `externalId` for it (the team is SCIM's
    /// again if it had been deleted).
    pub async fn set_scim_group(&self, team: &Team, external_id: Option<&str>) -> Result<(), StorageError> {
        let now = now_millis();
        let mut tx = self.begin_write().await?;
        sqlx::query("UPDATE teams SET name = $2 WHERE id = $1")
            .bind(&team.id)
            .bind(&team.name)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM scim_groups WHERE team_id = $1").bind(&team.id).execute(&mut *tx).await?;
        sqlx::query("INSERT INTO scim_groups (team_id, external_id, created_at, updated_at) VALUES ($1, $2, $3, $3)")
            .bind(&team.id)
            .bind(external_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The provider deleted the team: it is hidden from SCIM (its members were moved out first).
    pub async fn delete_scim_group(&self, team_id: &str) -> Result<(), StorageError> {
        let now = now_millis();
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM scim_groups WHERE team_id = $1").bind(team_id).execute(&mut *tx).await?;
        sqlx::query("INSERT INTO scim_groups (team_id, created_at, updated_at, deleted_at) VALUES ($1, $2, $2, $2)")
            .bind(team_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}
