//! Which records exist, with what access depends on, from the central store: the basis of
//! each user's record index (`GET /v1/records`).

use fieldbook_sync_core::access::RecordFacts;
use fieldbook_sync_core::records::RecordKind;
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
        // `column` names the user or one of `people`.
        let names = |column: &str| {
            let list: Vec<String> = (0..people.map_or(0, <[String]>::len)).map(|i| format!("${}", i + 4)).collect();
            if list.is_empty() {
                format!("{column} = $2")
            } else {
                format!("({column} = $2 OR {column} IN ({}))", list.join(", "))
            }
        };
        let filter = |condition: String| if people.is_some() { format!(" AND ({condition})") } else { String::new() };
        let participant = names("user_id");
        let conditions = [
            filter(format!("observer_id = $2 OR {}", names("practitioner_id"))),
            filter(format!("supervisor_id = $2 OR {}", names("owner_id"))),
            filter(format!(
                "{} OR document_url IN (SELECT document_url FROM group_session_participants WHERE {participant})",
                names("facilitator_id")
            )),
        ];
        // Observations, plans and group sessions (themes follow).
        let mut queries: Vec<(String, bool)> = FACT_SOURCES
            .iter()
            .zip(conditions)
            .map(|((table, columns), condition)| {
                let sql = format!(
                    "SELECT document_url, change_seq, {columns}
                     FROM {table} WHERE change_seq > $1{condition} ORDER BY change_seq LIMIT $3"
                );
                (sql, true)
            })
            .collect();
        // Themes are few, and their readers (a team, every principal social worker) are not
        // a list of people: the caller filters them.
        queries.push((
            format!(
                "SELECT document_url, change_seq, {PRACTICE_THEME_FACTS}
                 FROM practice_themes WHERE change_seq > $1 ORDER BY change_seq LIMIT $2"
            ),
            false,
        ));
        let mut entries = Vec::new();
        let mut full = false;
        for (sql, binds_user) in queries {
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(after);
            if binds_user {
                query = query.bind(user_id).bind(limit as i64);
                for person in people.unwrap_or_default() {
                    query = query.bind(person);
                }
            } else {
                query = query.bind(limit as i64);
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

/// The columns [`facts_of`] reads, from each projection that holds records.
const OBSERVATION_FACTS: &str = "CAST('observation' AS TEXT) AS kind, observer_id AS author,
    practitioner_id AS subject, CAST(NULL AS TEXT) AS members, CAST(NULL AS TEXT) AS team, status,
    observed_at AS day_from, observed_at AS day_to, locked";
const PLAN_FACTS: &str = "CAST('development-plan' AS TEXT) AS kind, supervisor_id AS author,
    owner_id AS subject, CAST(NULL AS TEXT) AS members, CAST(NULL AS TEXT) AS team, status,
    period_from AS day_from, period_to AS day_to, CAST(0 AS BIGINT) AS locked";
const GROUP_SESSION_FACTS: &str = "CAST('group-session' AS TEXT) AS kind, facilitator_id AS author,
    facilitator_id AS subject, participant_ids AS members, CAST(NULL AS TEXT) AS team, status,
    held_at AS day_from, held_at AS day_to, locked";
const PRACTICE_THEME_FACTS: &str = "CAST('practice-theme' AS TEXT) AS kind, raised_by AS author,
    raised_by AS subject, CAST(NULL AS TEXT) AS members, team, status,
    raised_at AS day_from, raised_at AS day_to, locked";

/// Each projection's table with the columns [`facts_of`] reads from it.
const FACT_SOURCES: [(&str, &str); 4] = [
    ("observations", OBSERVATION_FACTS),
    ("development_plans", PLAN_FACTS),
    ("group_sessions", GROUP_SESSION_FACTS),
    ("practice_themes", PRACTICE_THEME_FACTS),
];

/// A query for the facts of the record whose `document_url` is bound as `param`, whatever
/// its type: one row, or none if it is not projected.
pub(super) fn facts_by_url(param: &str) -> String {
    let parts: Vec<String> = FACT_SOURCES
        .iter()
        .map(|(table, columns)| format!("SELECT {columns} FROM {table} WHERE document_url = {param}"))
        .collect();
    parts.join(" UNION ALL ")
}

/// What access to a record depends on, as the projections keep it (and the ledger, for a
/// deleted record: entries written before group sessions existed say `observation`).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub(super) struct FactColumns {
    #[serde(default)]
    kind: Option<String>,
    #[serde(default, skip_serializing)]
    observation: bool,
    author: String,
    pub subject: String,
    #[serde(default)]
    pub members: Vec<String>,
    #[serde(default)]
    team: Option<String>,
    pub status: String,
    from: Option<String>,
    to: Option<String>,
    locked: bool,
}

impl FactColumns {
    pub fn read(row: &AnyRow) -> Result<Self, StorageError> {
        let members: Option<String> = row.try_get("members")?;
        Ok(Self {
            kind: Some(row.try_get("kind")?),
            observation: false,
            author: row.try_get("author")?,
            subject: row.try_get("subject")?,
            members: members.map(|m| m.split_whitespace().map(str::to_owned).collect()).unwrap_or_default(),
            team: row.try_get("team")?,
            status: row.try_get("status")?,
            from: row.try_get("day_from")?,
            to: row.try_get("day_to")?,
            locked: row.try_get::<i64, _>("locked")? != 0,
        })
    }

    pub fn kind(&self) -> RecordKind {
        match self.kind.as_deref().and_then(RecordKind::parse) {
            Some(kind) => kind,
            None if self.observation => RecordKind::Observation,
            None => RecordKind::DevelopmentPlan,
        }
    }

    pub fn facts(&self) -> RecordFacts {
        let (from, to) = (self.from.as_deref(), self.to.as_deref());
        match self.kind() {
            RecordKind::Observation => {
                RecordFacts::observation(&self.author, &self.subject, &self.status, from, self.locked)
            }
            RecordKind::DevelopmentPlan => RecordFacts::plan(&self.author, &self.subject, &self.status, from, to),
            RecordKind::GroupSession => {
                RecordFacts::group_session(&self.author, self.members.clone(), &self.status, from)
            }
            RecordKind::PracticeTheme => {
                RecordFacts::practice_theme(&self.author, self.team.clone(), &self.status, from)
            }
        }
    }
}

/// What access to a record depends on, from a row with the columns of [`FACT_SOURCES`].
pub(super) fn facts_of(row: &AnyRow) -> Result<RecordFacts, StorageError> {
    Ok(FactColumns::read(row)?.facts())
}
