//! The central store: each accepted change is committed together with the projection of
//! the record it produced, in one transaction. Narrative fields are never projected.

use fieldbook_sync_core::records::{DevelopmentPlan, Observation};
use fieldbook_sync_core::{DocumentId, Record};
use serde_json::{json, Value};
use sqlx::{Any, Row, Transaction};

use super::{ChunkKind, Database, StorageError};

/// Every table a record projects into, keyed by `document_url`.
const PROJECTION_TABLES: [&str; 8] = [
    "observations",
    "observation_components",
    "observation_judgements",
    "observation_goal_links",
    "development_plans",
    "plan_goals",
    "goal_components",
    "plan_goal_evidence",
];

impl Database {
    /// Stores a chunk and, for a record, rewrites its projection, atomically. Returns the
    /// chunk id once committed.
    pub async fn commit_changes(
        &self,
        document: DocumentId,
        kind: ChunkKind,
        chunk: &[u8],
        record: Option<&Record>,
    ) -> Result<i64, StorageError> {
        let mut tx = self.pool().begin().await?;
        let chunk_id = Self::insert_chunk(&mut tx, document, kind, chunk).await?;
        if let Some(record) = record {
            project(&mut tx, &document.url(), record, true, chunk_id).await?;
        }
        tx.commit().await?;
        Ok(chunk_id)
    }

    /// Commits several documents' chunks and projections in one transaction; returns the
    /// chunk ids in order.
    pub async fn commit_batch(&self, jobs: &[super::committer::CommitJob]) -> Result<Vec<i64>, StorageError> {
        let mut tx = self.pool().begin().await?;
        let mut ids = Vec::with_capacity(jobs.len());
        for job in jobs {
            let id = Self::insert_chunk(&mut tx, job.document, job.kind, &job.chunk).await?;
            if let Some(record) = &job.record {
                project(&mut tx, &job.document.url(), record, job.replaces_projection, id).await?;
            }
            ids.push(id);
        }
        tx.commit().await?;
        Ok(ids)
    }

    /// How many observations the central store holds.
    pub async fn observation_count(&self) -> Result<i64, StorageError> {
        Ok(sqlx::query("SELECT COUNT(*) AS n FROM observations").fetch_one(self.pool()).await?.try_get("n")?)
    }

    /// A practitioner's development record from the projection: plans with goals and the
    /// observations that evidence them, and observations with dates and components.
    pub async fn development_record(&self, practitioner: &str) -> Result<Value, StorageError> {
        let pool = self.pool();
        let mut plans = Vec::new();
        for p in sqlx::query(
            "SELECT document_url, supervisor_id, framework, period_from, period_to, source, status, change_seq
             FROM development_plans WHERE owner_id = $1 ORDER BY document_url",
        )
        .bind(practitioner)
        .fetch_all(pool)
        .await?
        {
            let url: String = p.try_get("document_url")?;
            let mut goals = Vec::new();
            for g in sqlx::query(
                "SELECT goal_id, status, target_date, completed_at FROM plan_goals WHERE document_url = $1 ORDER BY position",
            )
            .bind(&url)
            .fetch_all(pool)
            .await?
            {
                let goal_id: String = g.try_get("goal_id")?;
                let components = strings(
                    sqlx::query("SELECT component_id FROM goal_components WHERE document_url = $1 AND goal_id = $2 ORDER BY component_id")
                        .bind(&url)
                        .bind(&goal_id)
                        .fetch_all(pool)
                        .await?,
                    "component_id",
                )?;
                let evidence = sqlx::query(
                    "SELECT observation_url, via FROM goal_evidence WHERE plan_url = $1 AND goal_id = $2 ORDER BY observation_url, via",
                )
                .bind(&url)
                .bind(&goal_id)
                .fetch_all(pool)
                .await?
                .into_iter()
                .map(|e| Ok(json!({"observation": e.try_get::<String, _>("observation_url")?, "via": e.try_get::<String, _>("via")?})))
                .collect::<Result<Vec<_>, sqlx::Error>>()?;
                goals.push(json!({
                    "id": goal_id,
                    "status": g.try_get::<String, _>("status")?,
                    "targetDate": g.try_get::<Option<String>, _>("target_date")?,
                    "completedAt": g.try_get::<Option<String>, _>("completed_at")?,
                    "components": components,
                    "evidence": evidence,
                }));
            }
            plans.push(json!({
                "url": url,
                "supervisorId": p.try_get::<String, _>("supervisor_id")?,
                "framework": p.try_get::<String, _>("framework")?,
                "period": {"from": p.try_get::<Option<String>, _>("period_from")?, "to": p.try_get::<Option<String>, _>("period_to")?},
                "source": p.try_get::<Option<String>, _>("source")?,
                "status": p.try_get::<String, _>("status")?,
                "changeSeq": p.try_get::<i64, _>("change_seq")?,
                "goals": goals,
            }));
        }
        let mut observations = Vec::new();
        for o in sqlx::query(
            "SELECT document_url, observer_id, observed_at, setting, framework, status, consent_given, feedback_given_at,
                    observer_signed_off_at, practitioner_signed_off_at, locked, change_seq
             FROM observations WHERE practitioner_id = $1 ORDER BY observed_at, document_url",
        )
        .bind(practitioner)
        .fetch_all(pool)
        .await?
        {
            let url: String = o.try_get("document_url")?;
            let components = strings(
                sqlx::query("SELECT component_id FROM observation_components WHERE document_url = $1 ORDER BY component_id")
                    .bind(&url)
                    .fetch_all(pool)
                    .await?,
                "component_id",
            )?;
            let mut judgements = serde_json::Map::new();
            for j in sqlx::query("SELECT component_id, judgement FROM observation_judgements WHERE document_url = $1 ORDER BY component_id")
                .bind(&url)
                .fetch_all(pool)
                .await?
            {
                judgements.insert(j.try_get("component_id")?, Value::String(j.try_get("judgement")?));
            }
            let consent: Option<i64> = o.try_get("consent_given")?;
            observations.push(json!({
                "url": url,
                "observerId": o.try_get::<String, _>("observer_id")?,
                "observedAt": o.try_get::<Option<String>, _>("observed_at")?,
                "setting": o.try_get::<Option<String>, _>("setting")?,
                "framework": o.try_get::<String, _>("framework")?,
                "status": o.try_get::<String, _>("status")?,
                "consentGiven": consent.map(|c| c != 0),
                "feedbackGivenAt": o.try_get::<Option<String>, _>("feedback_given_at")?,
                "signedOff": {
                    "observer": o.try_get::<Option<String>, _>("observer_signed_off_at")?,
                    "practitioner": o.try_get::<Option<String>, _>("practitioner_signed_off_at")?,
                },
                "locked": o.try_get::<i64, _>("locked")? != 0,
                "changeSeq": o.try_get::<i64, _>("change_seq")?,
                "components": components,
                "judgements": judgements,
            }));
        }
        Ok(json!({"practitionerId": practitioner, "plans": plans, "observations": observations}))
    }
}

/// `INSERT INTO table (document_url, <columns>, change_seq) VALUES …` for many rows in one
/// statement (one round trip), skipping nothing but an empty list.
async fn insert_rows(
    tx: &mut Transaction<'static, Any>,
    table: &str,
    columns: &[&str],
    url: &str,
    rows: &[Vec<&str>],
    seq: i64,
) -> Result<(), StorageError> {
    if rows.is_empty() {
        return Ok(());
    }
    let width = columns.len() + 2;
    let placeholders: Vec<String> = (0..rows.len())
        .map(|r| format!("({})", (1..=width).map(|c| format!("${}", r * width + c)).collect::<Vec<_>>().join(", ")))
        .collect();
    let sql = format!(
        "INSERT INTO {table} (document_url, {}, change_seq) VALUES {}",
        columns.join(", "),
        placeholders.join(", ")
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for row in rows {
        query = query.bind(url);
        for value in row {
            query = query.bind(*value);
        }
        query = query.bind(seq);
    }
    query.execute(&mut **tx).await?;
    Ok(())
}

fn strings(rows: Vec<sqlx::any::AnyRow>, column: &str) -> Result<Vec<String>, sqlx::Error> {
    rows.iter().map(|r| r.try_get(column)).collect()
}

/// Rewrites a record's projection. `seq` is the id of the chunk being committed.
async fn project(tx: &mut Transaction<'static, Any>, url: &str, record: &Record, replace: bool, seq: i64) -> Result<(), StorageError> {
    for table in PROJECTION_TABLES.iter().filter(|_| replace) {
        sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {table} WHERE document_url = $1")))
            .bind(url)
            .execute(&mut **tx)
            .await?;
    }
    match record {
        Record::Observation(o) => project_observation(tx, url, o, seq).await?,
        Record::DevelopmentPlan(p) => project_plan(tx, url, p, seq).await?,
    }
    Ok(())
}

async fn project_observation(tx: &mut Transaction<'static, Any>, url: &str, o: &Observation, seq: i64) -> Result<(), StorageError> {
    let signed = |party: fn(&fieldbook_sync_core::records::SignOff) -> &Option<fieldbook_sync_core::records::Signature>| {
        o.sign_off.as_ref().and_then(|s| party(s).as_ref()).map(|sig| sig.at.clone())
    };
    sqlx::query(
        "INSERT INTO observations (document_url, practitioner_id, observer_id, observed_at, setting, framework, status,
             consent_given, feedback_given_at, observer_signed_off_at, practitioner_signed_off_at, locked, change_seq)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(url)
    .bind(&o.practitioner_id)
    .bind(&o.observer_id)
    .bind(o.observed_at.clone())
    .bind(o.setting.clone())
    .bind(&o.framework)
    .bind(&o.status)
    .bind(o.consent.as_ref().and_then(|c| c.given).map(i64::from))
    .bind(o.feedback_given_at.clone())
    .bind(signed(|s| &s.observer))
    .bind(signed(|s| &s.practitioner))
    .bind(i64::from(o.is_locked()))
    .bind(seq)
    .execute(&mut **tx)
    .await?;
    let mut components: Vec<Vec<&str>> = o.components.iter().map(|c| vec![c.as_str()]).collect();
    components.sort();
    components.dedup();
    insert_rows(tx, "observation_components", &["component_id"], url, &components, seq).await?;
    let judgements: Vec<Vec<&str>> = o.judgements.iter().map(|(c, j)| vec![c.as_str(), j.as_str()]).collect();
    insert_rows(tx, "observation_judgements", &["component_id", "judgement"], url, &judgements, seq).await?;
    let mut goals: Vec<Vec<&str>> = o.actions.iter().filter_map(|a| a.goal_id.as_deref()).map(|g| vec![g]).collect();
    goals.sort();
    goals.dedup();
    insert_rows(tx, "observation_goal_links", &["goal_id"], url, &goals, seq).await?;
    Ok(())
}

async fn project_plan(tx: &mut Transaction<'static, Any>, url: &str, p: &DevelopmentPlan, seq: i64) -> Result<(), StorageError> {
    let period = p.period.clone().unwrap_or_default();
    sqlx::query(
        "INSERT INTO development_plans (document_url, owner_id, supervisor_id, framework, period_from, period_to, source, status, change_seq)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(url)
    .bind(&p.owner_id)
    .bind(&p.supervisor_id)
    .bind(&p.framework)
    .bind(period.from)
    .bind(period.to)
    .bind(p.source.clone())
    .bind(&p.status)
    .bind(seq)
    .execute(&mut **tx)
    .await?;
    for (position, goal) in p.goals.iter().enumerate() {
        sqlx::query(
            "INSERT INTO plan_goals (document_url, goal_id, position, status, target_date, completed_at, change_seq)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(url)
        .bind(&goal.id)
        .bind(position as i64)
        .bind(&goal.status)
        .bind(goal.target_date.clone())
        .bind(goal.completed_at.clone())
        .bind(seq)
        .execute(&mut **tx)
        .await?;
        let mut components: Vec<Vec<&str>> = goal.components.iter().map(|c| vec![goal.id.as_str(), c.as_str()]).collect();
        components.sort();
        components.dedup();
        insert_rows(tx, "goal_components", &["goal_id", "component_id"], url, &components, seq).await?;
        let mut evidence: Vec<&String> = goal.evidence.iter().collect();
        evidence.sort();
        evidence.dedup();
        for observation in evidence {
            // Evidence may be written as a URL with heads; the projection keys on the document.
            let observation = DocumentId::parse_url_or_id(observation).map(|d| d.url()).unwrap_or_else(|_| observation.clone());
            sqlx::query(
                "INSERT INTO plan_goal_evidence (document_url, goal_id, observation_url, change_seq) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (document_url, goal_id, observation_url) DO NOTHING",
            )
            .bind(url)
            .bind(&goal.id)
            .bind(observation)
            .bind(seq)
            .execute(&mut **tx)
            .await?;
        }
    }
    Ok(())
}
