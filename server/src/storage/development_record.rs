//! Reading the central store: a practitioner's development record.

use serde_json::{Value, json};
use sqlx::Row;

use super::{Database, StorageError};

impl Database {
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
             FROM observations WHERE practitioner_id = $1 AND status <> 'draft' ORDER BY observed_at, document_url",
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
        let mut sessions = Vec::new();
        for g in sqlx::query(
            "SELECT g.document_url, g.facilitator_id, g.held_at, g.kind, g.framework, g.status, g.closed_at,
                    p.reflected, g.change_seq
             FROM group_sessions g JOIN group_session_participants p ON p.document_url = g.document_url
             WHERE p.user_id = $1 AND g.status <> 'draft' ORDER BY g.held_at, g.document_url",
        )
        .bind(practitioner)
        .fetch_all(pool)
        .await?
        {
            let url: String = g.try_get("document_url")?;
            let components = strings(
                sqlx::query(
                    "SELECT component_id FROM group_session_components WHERE document_url = $1 ORDER BY component_id",
                )
                .bind(&url)
                .fetch_all(pool)
                .await?,
                "component_id",
            )?;
            sessions.push(json!({
                "url": url,
                "facilitatorId": g.try_get::<String, _>("facilitator_id")?,
                "heldAt": g.try_get::<Option<String>, _>("held_at")?,
                "kind": g.try_get::<String, _>("kind")?,
                "framework": g.try_get::<Option<String>, _>("framework")?,
                "status": g.try_get::<String, _>("status")?,
                "closedAt": g.try_get::<Option<String>, _>("closed_at")?,
                "reflected": g.try_get::<i64, _>("reflected")? != 0,
                "changeSeq": g.try_get::<i64, _>("change_seq")?,
                "components": components,
            }));
        }
        let group_sessions = json!({"attended": sessions.len(), "sessions": sessions});
        Ok(json!({
            "practitionerId": practitioner, "plans": plans, "observations": observations, "groupSessions": group_sessions,
        }))
    }
}

fn strings(rows: Vec<sqlx::any::AnyRow>, column: &str) -> Result<Vec<String>, sqlx::Error> {
    rows.iter().map(|r| r.try_get(column)).collect()
}
