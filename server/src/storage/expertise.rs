//! Who has expertise in a framework area or component: practice champions (declared, or
//! nominated and confirmed) and the evidence the central store holds — signed-off
//! observations judging it `met`, plan goals on it `met`. Counts only, never narrative.

use std::collections::BTreeMap;

use serde::Serialize;
use sqlx::Row;

use super::{Database, StorageError, User, now_millis};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Champion {
    pub user_id: String,
    pub component_id: String,
    /// `nominated` (by themself, awaiting a manager) or `confirmed`.
    pub status: String,
    pub nominated_by: String,
    pub nominated_at: i64,
    pub confirmed_by: Option<String>,
    pub confirmed_at: Option<i64>,
}

/// One person's standing in a component.
#[derive(Debug, Clone)]
pub struct Expert {
    pub user: User,
    pub observations_met: i64,
    pub goals_met: i64,
    pub champion: bool,
    pub nominated: bool,
}

/// `component`, or anything within it (an area's components), as SQL matches it on
/// `column`: binds `$1` (the id) and `$2` (the pattern for what lies within).
fn within(column: &str) -> String {
    format!("({column} = $1 OR {column} LIKE $2)")
}

impl Database {
    /// Records a nomination; `false` if the person is already nominated or a champion there.
    pub async fn nominate_champion(&self, user_id: &str, component: &str, by: &str) -> Result<bool, StorageError> {
        let done = sqlx::query(
            "INSERT INTO champions (user_id, component_id, status, nominated_by, nominated_at)
             VALUES ($1, $2, 'nominated', $3, $4) ON CONFLICT (user_id, component_id) DO NOTHING",
        )
        .bind(user_id)
        .bind(component)
        .bind(by)
        .bind(now_millis())
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Declares a champion, confirming a nomination if there is one.
    pub async fn confirm_champion(&self, user_id: &str, component: &str, by: &str) -> Result<(), StorageError> {
        sqlx::query(
            "INSERT INTO champions (user_id, component_id, status, nominated_by, nominated_at, confirmed_by, confirmed_at)
             VALUES ($1, $2, 'confirmed', $3, $4, $3, $4)
             ON CONFLICT (user_id, component_id) DO UPDATE SET status = 'confirmed', confirmed_by = $3, confirmed_at = $4",
        )
        .bind(user_id)
        .bind(component)
        .bind(by)
        .bind(now_millis())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// `false` if there was no such champion or nomination.
    pub async fn remove_champion(&self, user_id: &str, component: &str) -> Result<bool, StorageError> {
        let done = sqlx::query("DELETE FROM champions WHERE user_id = $1 AND component_id = $2")
            .bind(user_id)
            .bind(component)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Champions and nominations, by component and person.
    pub async fn champions(&self) -> Result<Vec<Champion>, StorageError> {
        let rows = sqlx::query(
            "SELECT user_id, component_id, status, nominated_by, nominated_at, confirmed_by, confirmed_at
             FROM champions ORDER BY component_id, user_id",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Champion {
                    user_id: r.try_get("user_id")?,
                    component_id: r.try_get("component_id")?,
                    status: r.try_get("status")?,
                    nominated_by: r.try_get("nominated_by")?,
                    nominated_at: r.try_get("nominated_at")?,
                    confirmed_by: r.try_get("confirmed_by")?,
                    confirmed_at: r.try_get("confirmed_at")?,
                })
            })
            .collect()
    }

    /// Everyone with evidence in `component` (or within it), or declared or nominated a
    /// champion for it (or for the area holding it); active people only.
    pub async fn expertise(&self, component: &str) -> Result<Vec<Expert>, StorageError> {
        let inside = format!("{component}.%");
        let area = component.split_once('.').map_or(component, |(area, _)| area);
        let pool = self.pool();
        let counts = |sql: String| {
            sqlx::query(sqlx::AssertSqlSafe(sql)).bind(component.to_owned()).bind(inside.clone()).fetch_all(pool)
        };
        let observations = counts(format!(
            "SELECT o.practitioner_id AS id, COUNT(DISTINCT o.document_url) AS n
             FROM observations o JOIN observation_judgements j ON j.document_url = o.document_url
             WHERE o.locked = 1 AND j.judgement = 'met' AND {} GROUP BY o.practitioner_id",
            within("j.component_id")
        ))
        .await?;
        let goals = counts(format!(
            "SELECT p.owner_id AS id, COUNT(*) AS n
             FROM plan_goals g JOIN development_plans p ON p.document_url = g.document_url
             WHERE g.status = 'met' AND EXISTS (
                 SELECT 1 FROM goal_components c
                 WHERE c.document_url = g.document_url AND c.goal_id = g.goal_id AND {})
             GROUP BY p.owner_id",
            within("c.component_id")
        ))
        .await?;
        let champions = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT user_id, status FROM champions WHERE {} OR component_id = $3",
            within("component_id")
        )))
        .bind(component)
        .bind(&inside)
        .bind(area)
        .fetch_all(pool)
        .await?;
        let mut by_person: BTreeMap<String, (i64, i64, bool, bool)> = BTreeMap::new();
        for r in observations {
            by_person.entry(r.try_get("id")?).or_default().0 = r.try_get("n")?;
        }
        for r in goals {
            by_person.entry(r.try_get("id")?).or_default().1 = r.try_get("n")?;
        }
        for r in champions {
            let entry = by_person.entry(r.try_get("user_id")?).or_default();
            if r.try_get::<String, _>("status")? == "confirmed" {
                entry.2 = true;
            } else {
                entry.3 = true;
            }
        }
        let mut experts = Vec::new();
        for (id, (observations_met, goals_met, champion, nominated)) in by_person {
            let Some(user) = self.user(&id).await? else { continue };
            if user.is_active() && user.role.works_with_records() {
                experts.push(Expert { user, observations_met, goals_met, champion, nominated: nominated && !champion });
            }
        }
        experts.sort_by_key(|e| (!e.champion, -(e.observations_met + e.goals_met), e.user.name.clone()));
        Ok(experts)
    }
}
