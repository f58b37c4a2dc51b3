//! Authorship: each automerge actor id belongs to the one user and device that first sent
//! a change made by it.

use std::collections::HashMap;

use sqlx::{Any, Row, Transaction};

use super::{Database, StorageError, now_millis};

/// The user and device an actor is bound to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Author {
    pub user_id: String,
    /// `None` for tokens that name no device.
    pub device_id: Option<String>,
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

/// Binds new actors in the transaction that commits their first changes. If another commit
/// (another document, another node) bound one of them meanwhile to someone else, this
/// commit fails rather than let their changes in.
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
        .bind(author.device_id.clone())
        .bind(document_id)
        .bind(now_millis())
        .execute(&mut **tx)
        .await?;
        let row = sqlx::query("SELECT user_id, device_id FROM actors WHERE actor_id = $1")
            .bind(actor)
            .fetch_one(&mut **tx)
            .await?;
        let bound = Author { user_id: row.try_get("user_id")?, device_id: row.try_get("device_id")? };
        if bound != *author {
            return Err(StorageError::Invalid(format!(
                "actor {actor} was bound to another user or device at the same moment; send the changes again"
            )));
        }
    }
    Ok(())
}
