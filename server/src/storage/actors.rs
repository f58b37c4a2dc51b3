//! Authorship: each automerge actor id belongs to the one user and device that first sent
//! a change made by it.

use std::collections::HashMap;

use sqlx::{Any, Row, Transaction};

use super::{Database, StorageError, now_millis};

/// The user and device an actor is bound to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Author {
    pub user_id: String,
    pub device_id: String,
}

impl Database {
    /// The bindings of those of `actors` (hex ids) that have one.
    pub async fn actor_bindings(&self, actors: &[String]) -> Result<HashMap<String, Author>, StorageError> {
        let mut out = HashMap::new();
        for part in actors.chunks(super::MAX_PARAMETERS) {
            let placeholders: Vec<String> = (1..=part.len()).map(|i| format!("${i}")).collect();
            let sql = format!(
                "SELECT actor_id, user_id, device_id FROM actors WHERE actor_id IN ({})",
                placeholders.join(", ")
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for actor in part {
                query = query.bind(actor);
            }
            for row in query.fetch_all(self.pool()).await? {
                let author = Author { user_id: row.try_get("user_id")?, device_id: row.try_get("device_id")? };
                out.insert(row.try_get("actor_id")?, author);
            }
        }
        Ok(out)
    }
}

/// Binds new actors in the transaction that commits their first changes. An actor bound
/// meanwhile by another commit keeps its first binding.
pub(crate) async fn bind(
    tx: &mut Transaction<'static, Any>,
    document_id: &str,
    actors: &[(String, Author)],
) -> Result<(), StorageError> {
    for (actor, author) in actors {
        sqlx::query(
            "INSERT INTO actors (actor_id, user_id, device_id, document_id, bound_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (actor_id) DO NOTHING",
        )
        .bind(actor)
        .bind(&author.user_id)
        .bind(&author.device_id)
        .bind(document_id)
        .bind(now_millis())
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}
