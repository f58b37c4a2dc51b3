//! The minimised development record (DOMAIN.md "What HR and leaders get"), read from the
//! central store for many practitioners at once: a handful of queries per batch, whatever
//! its size, so a national export is a few hundred round trips, not millions.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use sqlx::Row;

use super::{Database, MAX_PARAMETERS, StorageError, User};

/// Who a development record is about: identity for HR, no narrative.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Practitioner {
    pub id: String,
    pub employee_number: Option<String>,
    pub registration_number: Option<String>,
    pub role: String,
    pub team: Option<String>,
    pub line_manager: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DevelopmentRecord {
    pub practitioner: Practitioner,
    pub plans: Vec<PlanSummary>,
    pub observations: Vec<ObservationSummary>,
    pub counts: Counts,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanSummary {
    pub url: String,
    pub framework: String,
    pub period_from: Option<String>,
    pub period_to: Option<String>,
    pub source: Option<String>,
    pub status: String,
    pub goals: Vec<GoalSummary>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GoalSummary {
    pub id: String,
    pub components: Vec<String>,
    pub status: String,
    pub target_date: Option<String>,
    pub completed_at: Option<String>,
    pub evidence_count: usize,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObservationSummary {
    pub url: String,
    pub observed_at: Option<String>,
    pub setting: Option<String>,
    pub observer_role: Option<String>,
    pub framework: String,
    pub status: String,
    pub components: Vec<String>,
    /// Components judged `met`: what the observation evidences.
    pub components_evidenced: Vec<String>,
    pub observer_signed_off_at: Option<String>,
    pub practitioner_signed_off_at: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    pub observations: usize,
    pub observations_signed_off: usize,
    pub plans: usize,
    pub goals_by_status: BTreeMap<String, usize>,
}

/// Binds a list as `$start..` placeholders.
fn placeholders(start: usize, n: usize) -> String {
    (start..start + n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

impl Database {
    /// The records of `people` (with each one's current line manager), in their order.
    pub async fn minimised_records(
        &self,
        people: &[&User],
        line_managers: &HashMap<String, String>,
    ) -> Result<Vec<DevelopmentRecord>, StorageError> {
        let mut out = Vec::with_capacity(people.len());
        for chunk in people.chunks(MAX_PARAMETERS / 2) {
            out.extend(self.records_chunk(chunk, line_managers).await?);
        }
        Ok(out)
    }

    async fn records_chunk(
        &self,
        people: &[&User],
        line_managers: &HashMap<String, String>,
    ) -> Result<Vec<DevelopmentRecord>, StorageError> {
        let ids: Vec<&str> = people.iter().map(|u| u.id.as_str()).collect();
        let list = placeholders(1, ids.len());
        let query = |sql: String| {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for id in &ids {
                q = q.bind(*id);
            }
            q
        };
        let pool = self.pool();

        let mut observations: HashMap<String, Vec<ObservationSummary>> = HashMap::new();
        let mut by_url: HashMap<String, (String, usize)> = HashMap::new();
        let rows = query(format!(
            "SELECT o.practitioner_id, o.document_url, o.observed_at, o.setting, ou.role AS observer_role, o.framework,
                    o.status, o.observer_signed_off_at, o.practitioner_signed_off_at
             FROM observations o LEFT JOIN users ou ON ou.id = o.observer_id
             WHERE o.practitioner_id IN ({list}) ORDER BY o.practitioner_id, o.observed_at, o.document_url"
        ))
        .fetch_all(pool)
        .await?;
        for r in rows {
            let practitioner: String = r.try_get("practitioner_id")?;
            let list = observations.entry(practitioner.clone()).or_default();
            let url: String = r.try_get("document_url")?;
            by_url.insert(url.clone(), (practitioner, list.len()));
            list.push(ObservationSummary {
                url,
                observed_at: r.try_get("observed_at")?,
                setting: r.try_get("setting")?,
                observer_role: r.try_get("observer_role")?,
                framework: r.try_get("framework")?,
                status: r.try_get("status")?,
                components: Vec::new(),
                components_evidenced: Vec::new(),
                observer_signed_off_at: r.try_get("observer_signed_off_at")?,
                practitioner_signed_off_at: r.try_get("practitioner_signed_off_at")?,
            });
        }
        for (table, met_only) in [("observation_components", false), ("observation_judgements", true)] {
            let judged = if met_only { " AND x.judgement = 'met'" } else { "" };
            let rows = query(format!(
                "SELECT x.document_url, x.component_id FROM {table} x
                 JOIN observations o ON o.document_url = x.document_url
                 WHERE o.practitioner_id IN ({list}){judged} ORDER BY x.document_url, x.component_id"
            ))
            .fetch_all(pool)
            .await?;
            for r in rows {
                let url: String = r.try_get("document_url")?;
                let Some((practitioner, i)) = by_url.get(&url) else { continue };
                let observation = &mut observations.get_mut(practitioner).expect("indexed above")[*i];
                let target = if met_only { &mut observation.components_evidenced } else { &mut observation.components };
                target.push(r.try_get("component_id")?);
            }
        }

        let mut plans: HashMap<String, Vec<PlanSummary>> = HashMap::new();
        let mut plan_at: HashMap<String, (String, usize)> = HashMap::new();
        let rows = query(format!(
            "SELECT owner_id, document_url, framework, period_from, period_to, source, status FROM development_plans
             WHERE owner_id IN ({list}) ORDER BY owner_id, document_url"
        ))
        .fetch_all(pool)
        .await?;
        for r in rows {
            let owner: String = r.try_get("owner_id")?;
            let list = plans.entry(owner.clone()).or_default();
            let url: String = r.try_get("document_url")?;
            plan_at.insert(url.clone(), (owner, list.len()));
            list.push(PlanSummary {
                url,
                framework: r.try_get("framework")?,
                period_from: r.try_get("period_from")?,
                period_to: r.try_get("period_to")?,
                source: r.try_get("source")?,
                status: r.try_get("status")?,
                goals: Vec::new(),
            });
        }
        let rows = query(format!(
            "SELECT g.document_url, g.goal_id, g.status, g.target_date, g.completed_at,
                    (SELECT COUNT(*) FROM plan_goal_evidence e WHERE e.document_url = g.document_url AND e.goal_id = g.goal_id) AS evidence
             FROM plan_goals g JOIN development_plans p ON p.document_url = g.document_url
             WHERE p.owner_id IN ({list}) ORDER BY g.document_url, g.position"
        ))
        .fetch_all(pool)
        .await?;
        let mut goal_at: HashMap<(String, String), usize> = HashMap::new();
        for r in rows {
            let url: String = r.try_get("document_url")?;
            let Some((owner, i)) = plan_at.get(&url) else { continue };
            let plan = &mut plans.get_mut(owner).expect("indexed above")[*i];
            let id: String = r.try_get("goal_id")?;
            goal_at.insert((url, id.clone()), plan.goals.len());
            plan.goals.push(GoalSummary {
                id,
                components: Vec::new(),
                status: r.try_get("status")?,
                target_date: r.try_get("target_date")?,
                completed_at: r.try_get("completed_at")?,
                evidence_count: usize::try_from(r.try_get::<i64, _>("evidence")?).unwrap_or(0),
            });
        }
        let rows = query(format!(
            "SELECT x.document_url, x.goal_id, x.component_id FROM goal_components x
             JOIN development_plans p ON p.document_url = x.document_url
             WHERE p.owner_id IN ({list}) ORDER BY x.document_url, x.goal_id, x.component_id"
        ))
        .fetch_all(pool)
        .await?;
        for r in rows {
            let url: String = r.try_get("document_url")?;
            let goal: String = r.try_get("goal_id")?;
            let (Some((owner, i)), Some(g)) = (plan_at.get(&url), goal_at.get(&(url.clone(), goal))) else { continue };
            plans.get_mut(owner).expect("indexed above")[*i].goals[*g].components.push(r.try_get("component_id")?);
        }

        Ok(people
            .iter()
            .map(|user| {
                let observations = observations.remove(&user.id).unwrap_or_default();
                let plans = plans.remove(&user.id).unwrap_or_default();
                let mut counts = Counts {
                    observations: observations.len(),
                    observations_signed_off: observations.iter().filter(|o| o.status == "signed-off").count(),
                    plans: plans.len(),
                    goals_by_status: BTreeMap::new(),
                };
                for goal in plans.iter().flat_map(|p| &p.goals) {
                    *counts.goals_by_status.entry(goal.status.clone()).or_default() += 1;
                }
                DevelopmentRecord {
                    practitioner: Practitioner {
                        id: user.id.clone(),
                        employee_number: user.employee_number.clone(),
                        registration_number: user.registration_number.clone(),
                        role: user.role.as_str().to_owned(),
                        team: user.team_id.clone(),
                        line_manager: line_managers.get(&user.id).cloned(),
                    },
                    plans,
                    observations,
                    counts,
                }
            })
            .collect())
    }
}
