//! Authorship: each automerge actor id belongs to the one user and device that first sent
//! a change made by it.

use std::collections::HashMap;

use sqlx::Row;

use super::rows::Rows;
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
            let query =
                super::query_in("SELECT actor_id, user_id, device_id FROM actors WHERE actor_id IN (LIST)", part);
            for row in query.fetch_all(self.pool()).await? {
                let author = Author { user_id: row.try_get("user_id")?, device_id: row.try_get("device_id")? };
                out.insert(row.try_get("actor_id")?, author);
            }
        }
        Ok(out)
    }
}

/// Adds an actor's binding to a commit's rows. The actor id is the primary key: if another
/// commit (another document, another node) bound it meanwhile, this commit fails rather
/// than let their changes in, and the sender is refused when it sends them again.
pub(crate) fn add_binding(rows: &mut Rows, actor: &str, author: &Author, document_id: &str) {
    rows.add(
        "actors",
        &["actor_id", "user_id", "device_id", "document_id", "bound_at"],
        vec![
            actor.into(),
            (&author.user_id).into(),
            (&author.device_id).into(),
            document_id.into(),
            now_millis().into(),
        ],
    );
}
