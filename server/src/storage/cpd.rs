//! What a person's CPD record is built from: their signed-off observations, the group
//! sessions they reflected in and their plan goals met, as the projections list them (the
//! narrative is read from the documents, see `crate::cpd`).

use sqlx::Row;

use super::{Database, StorageError};

/// One record that may be a CPD activity, with the day it counts on (if known).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CpdSource {
    Observation { url: String, on: Option<String> },
    GroupSession { url: String, on: Option<String> },
    Goal { plan_url: String, goal_id: String, on: Option<String> },
}

impl Database {
    /// Every record of `user_id` that may be a CPD activity, whatever its day.
    pub async fn cpd_sources(&self, user_id: &str) -> Result<Vec<CpdSource>, StorageError> {
        let pool = self.pool();
        let mut sources = Vec::new();
        // Signed off by both: the later signature is when it was done with.
        let rows = sqlx::query(
            "SELECT document_url, observed_at, observer_signed_off_at, practitioner_signed_off_at FROM observations
             WHERE practitioner_id = $1 AND locked = 1 ORDER BY observed_at, document_url",
        )
        .bind(user_id)
        .fetch_all(pool)
        .await?;
        for r in rows {
            let signed: [Option<String>; 2] =
                [r.try_get("observer_signed_off_at")?, r.try_get("practitioner_signed_off_at")?];
            let on = r.try_get::<Option<String>, _>("observed_at")?.or_else(|| signed.into_iter().flatten().max());
            sources.push(CpdSource::Observation { url: r.try_get("document_url")?, on });
        }
        let rows = sqlx::query(
            "SELECT g.document_url, g.held_at FROM group_sessions g
             JOIN group_session_participants p ON p.document_url = g.document_url
             WHERE p.user_id = $1 AND p.reflected = 1 AND g.status <> 'draft' ORDER BY g.held_at, g.document_url",
        )
        .bind(user_id)
        .fetch_all(pool)
        .await?;
        for r in rows {
            sources.push(CpdSource::GroupSession { url: r.try_get("document_url")?, on: r.try_get("held_at")? });
        }
        let rows = sqlx::query(
            "SELECT g.document_url, g.goal_id, g.completed_at FROM plan_goals g
             JOIN development_plans p ON p.document_url = g.document_url
             WHERE p.owner_id = $1 AND g.status = 'met' ORDER BY g.completed_at, g.document_url, g.position",
        )
        .bind(user_id)
        .fetch_all(pool)
        .await?;
        for r in rows {
            sources.push(CpdSource::Goal {
                plan_url: r.try_get("document_url")?,
                goal_id: r.try_get("goal_id")?,
                on: r.try_get("completed_at")?,
            });
        }
        Ok(sources)
    }

    /// The person's assessed and supported year: their latest plan with `source:
    /// early-career-programme`, as (URL, period from, period to).
    pub async fn asye_plan(
        &self,
        user_id: &str,
    ) -> Result<Option<(String, Option<String>, Option<String>)>, StorageError> {
        let row = sqlx::query(
            "SELECT document_url, period_from, period_to FROM development_plans
             WHERE owner_id = $1 AND source = 'early-career-programme' ORDER BY period_from DESC, document_url LIMIT 1",
        )
        .bind(user_id)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| Ok((r.try_get("document_url")?, r.try_get("period_from")?, r.try_get("period_to")?))).transpose()
    }
}
