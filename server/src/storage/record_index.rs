//! Which records exist, with what access depends on, from the central store: the basis of
//! each user's record index (`GET /v1/records`).

use fieldbook_sync_core::access::RecordFacts;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Database, MAX_PARAMETERS, StorageError};

#[derive(Debug, Clone)]
pub struct IndexEntry {
    pub document_url: String,
    pub status: String,
    /// Increases with every commit that touches the record (see `change_seq`).
    pub change_seq: i64,
    pub facts: RecordFacts,
}

/// One page of candidates; callers filter them by access.
pub struct IndexPage {
    pub entries: Vec<IndexEntry>,
    /// Resume after this `change_seq`.
    pub cursor: i64,
    pub more: bool,
}

impl Database {
    /// Candidates among the records changed after `after`: those that concern `user_id` or
    /// one of `people`, or (`people` is `None`) all of them.
    pub async fn record_index(
        &self,
        user_id: &str,
        people: Option<&[String]>,
        after: i64,
        limit: usize,
    ) -> Result<IndexPage, StorageError> {
        // A line too long to bind (a director over tens of thousands) reads every record;
        // the caller filters by access either way.
        let people = people.filter(|p| p.len() <= MAX_PARAMETERS - 4);
        let filter = |author: &str, subject: &str| match people {
            None => String::new(),
            Some(people) => {
                let list: Vec<String> = (0..people.len()).map(|i| format!("${}", i + 4)).collect();
                let subjects =
                    if list.is_empty() { String::new() } else { format!(" OR {subject} IN ({})", list.join(", ")) };
                format!(" AND ({author} = $2 OR {subject} = $2{subjects})")
            }
        };
        let queries = [
            format!(
                "SELECT document_url, change_seq, {OBSERVATION_FACTS}
                 FROM observations WHERE change_seq > $1{} ORDER BY change_seq LIMIT $3",
                filter("observer_id", "practitioner_id")
            ),
            format!(
                "SELECT document_url, change_seq, {PLAN_FACTS}
                 FROM development_plans WHERE change_seq > $1{} ORDER BY change_seq LIMIT $3",
                filter("supervisor_id", "owner_id")
            ),
        ];
        let mut entries = Vec::new();
        let mut full = false;
        for sql in queries {
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(after).bind(user_id).bind(limit as i64);
            for person in people.unwrap_or_default() {
                query = query.bind(person);
            }
            let rows = query.fetch_all(self.pool()).await?;
            full |= rows.len() == limit;
            for r in rows {
                entries.push(IndexEntry {
                    document_url: r.try_get("document_url")?,
                    status: r.try_get("status")?,
                    change_seq: r.try_get("change_seq")?,
                    facts: facts_of(&r)?,
                });
            }
        }
        entries.sort_by_key(|e| e.change_seq);
        let more = full || entries.len() > limit;
        entries.truncate(limit);
        let cursor = entries.last().map_or(after, |e| e.change_seq);
        Ok(IndexPage { entries, cursor, more })
    }
}

/// The columns [`facts_of`] reads, from the `observations` projection.
pub(super) const OBSERVATION_FACTS: &str = "observer_id AS author, practitioner_id AS subject, status,
    observed_at AS day_from, observed_at AS day_to, locked, CAST(1 AS BIGINT) AS observation";
/// The columns [`facts_of`] reads, from the `development_plans` projection.
pub(super) const PLAN_FACTS: &str = "supervisor_id AS author, owner_id AS subject, status,
    period_from AS day_from, period_to AS day_to, CAST(0 AS BIGINT) AS locked, CAST(0 AS BIGINT) AS observation";

/// What access to a record depends on, from a row with the columns of [`OBSERVATION_FACTS`]
/// or [`PLAN_FACTS`].
pub(super) fn facts_of(row: &AnyRow) -> Result<RecordFacts, StorageError> {
    let author: String = row.try_get("author")?;
    let subject: String = row.try_get("subject")?;
    let status: String = row.try_get("status")?;
    let from: Option<String> = row.try_get("day_from")?;
    Ok(if row.try_get::<i64, _>("observation")? == 1 {
        let locked = row.try_get::<i64, _>("locked")? != 0;
        RecordFacts::observation(&author, &subject, &status, from.as_deref(), locked)
    } else {
        let to: Option<String> = row.try_get("day_to")?;
        RecordFacts::plan(&author, &subject, &status, from.as_deref(), to.as_deref())
    })
}
