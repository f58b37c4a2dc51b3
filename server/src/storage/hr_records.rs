//! The minimised development record (DOMAIN.md "What HR and leaders get"), read from the
//! central store for many practitioners at once: a handful of queries per batch, whatever
//! its size, so a national export is a few hundred round trips, not millions.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use sqlx::Row;

use super::{Database, MAX_PARAMETERS, StorageError, User};

/// Who a development record is about: identity for HR, no narrative.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Practitioner {
    pub id: String,
    pub employee_number: Option<String>,
    pub registration_number: Option<String>,
    pub role: String,
    pub team: Option<String>,
    pub line_manager: Option<String>,
}

impl Practitioner {
    pub fn of(user: &User, line_managers: &HashMap<String, String>) -> Self {
        Practitioner {
            id: user.id.clone(),
            employee_number: user.employee_number.clone(),
            registration_number: user.registration_number.clone(),
            role: user.role.as_str().to_owned(),
            team: user.team_id.clone(),
            line_manager: line_managers.get(&user.id).cloned(),
        }
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DevelopmentRecord {
    pub practitioner: Practitioner,
    pub plans: Vec<PlanSummary>,
    pub observations: Vec<ObservationSummary>,
    pub counts: Counts,
    pub group_sessions: GroupSessionCounts,
}

/// Group sessions someone took part in, once shared: counts and component ids, never text.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GroupSessionCounts {
    pub attended: usize,
    pub facilitated: usize,
    /// By kind (`group-supervision`, `team-development`, `practice-discussion`), either part.
    pub by_kind: BTreeMap<String, usize>,
    /// Component id → sessions (either part) that worked on it.
    pub components: BTreeMap<String, usize>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
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

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GoalSummary {
    pub id: String,
    pub components: Vec<String>,
    pub status: String,
    pub target_date: Option<String>,
    pub completed_at: Option<String>,
    pub evidence_count: usize,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
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

#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    pub observations: usize,
    pub observations_signed_off: usize,
    pub plans: usize,
    pub goals_by_status: BTreeMap<String, usize>,
}

/// A batch of practitioner ids bound as `$1..$n`: every query of a batch filters on them.
struct IdList<'a>(Vec<&'a str>);

impl<'a> IdList<'a> {
    fn of(people: &[&'a User]) -> Self {
        IdList(people.iter().map(|u| u.id.as_str()).collect())
    }

    fn placeholders(&self) -> String {
        (1..=self.0.len()).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
    }

    fn query(&self, sql: String) -> sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments> {
        self.0.iter().fold(sqlx::query(sqlx::AssertSqlSafe(sql)), |q, id| q.bind(*id))
    }
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
        let ids = IdList::of(people);
        let (list, query) = (ids.placeholders(), |sql: String| ids.query(sql));
        let pool = self.pool();

        let mut observations: HashMap<String, Vec<ObservationSummary>> = HashMap::new();
        let mut by_url: HashMap<String, (String, usize)> = HashMap::new();
        let rows = query(format!(
            "SELECT o.practitioner_id, o.document_url, o.observed_at, o.setting, ou.role AS observer_role, o.framework,
                    o.status, o.observer_signed_off_at, o.practitioner_signed_off_at
             FROM observations o LEFT JOIN users ou ON ou.id = o.observer_id
             WHERE o.practitioner_id IN ({list}) AND o.status <> 'draft' ORDER BY o.practitioner_id, o.observed_at, o.document_url"
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
            // Driven from the practitioners' observations (by index), not by scanning `table`.
            let rows = query(format!(
                "SELECT x.document_url, x.component_id FROM {table} x
                 WHERE x.document_url IN (SELECT document_url FROM observations
                                          WHERE practitioner_id IN ({list}) AND status <> 'draft'){judged}
                 ORDER BY x.document_url, x.component_id"
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
                    (SELECT COUNT(*) FROM plan_goal_evidence e
                     WHERE e.document_url = g.document_url AND e.goal_id = g.goal_id
                       AND NOT EXISTS (SELECT 1 FROM observations d
                                       WHERE d.document_url = e.observation_url AND d.status = 'draft')) AS evidence
             FROM plan_goals g
             WHERE g.document_url IN (SELECT document_url FROM development_plans WHERE owner_id IN ({list}))
             ORDER BY g.document_url, g.position"
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
             WHERE x.document_url IN (SELECT document_url FROM development_plans WHERE owner_id IN ({list}))
             ORDER BY x.document_url, x.goal_id, x.component_id"
        ))
        .fetch_all(pool)
        .await?;
        for r in rows {
            let url: String = r.try_get("document_url")?;
            let goal: String = r.try_get("goal_id")?;
            let (Some((owner, i)), Some(g)) = (plan_at.get(&url), goal_at.get(&(url.clone(), goal))) else { continue };
            plans.get_mut(owner).expect("indexed above")[*i].goals[*g].components.push(r.try_get("component_id")?);
        }

        let mut group_sessions = self.group_session_counts(&ids).await?;
        Ok(people
            .iter()
            .map(|user| {
                let group_sessions = group_sessions.remove(&user.id).unwrap_or_default();
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
                let practitioner = Practitioner::of(user, line_managers);
                DevelopmentRecord { practitioner, plans, observations, counts, group_sessions }
            })
            .collect())
    }

    /// The shared and closed group sessions each of `ids` facilitated or attended.
    async fn group_session_counts(
        &self,
        ids: &IdList<'_>,
    ) -> Result<HashMap<String, GroupSessionCounts>, StorageError> {
        let list = ids.placeholders();
        let sessions = format!(
            "SELECT p.user_id AS id, g.document_url, g.kind, CAST(0 AS BIGINT) AS facilitated
             FROM group_session_participants p JOIN group_sessions g ON g.document_url = p.document_url
             WHERE p.user_id IN ({list}) AND g.status <> 'draft'
             UNION ALL
             SELECT facilitator_id AS id, document_url, kind, CAST(1 AS BIGINT) AS facilitated FROM group_sessions
             WHERE facilitator_id IN ({list}) AND status <> 'draft'"
        );
        let rows = ids.query(sessions.clone()).fetch_all(self.pool()).await?;
        let components = ids
            .query(format!(
                "SELECT s.id, c.component_id FROM ({sessions}) s
                 JOIN group_session_components c ON c.document_url = s.document_url"
            ))
            .fetch_all(self.pool())
            .await?;
        let mut out: HashMap<String, GroupSessionCounts> = HashMap::new();
        for r in rows {
            let counts = out.entry(r.try_get("id")?).or_default();
            if r.try_get::<i64, _>("facilitated")? == 1 {
                counts.facilitated += 1;
            } else {
                counts.attended += 1;
            }
            *counts.by_kind.entry(r.try_get("kind")?).or_default() += 1;
        }
        for r in components {
            *out.entry(r.try_get("id")?).or_default().components.entry(r.try_get("component_id")?).or_default() += 1;
        }
        Ok(out)
    }
}

/// One practitioner's record in one line (the CSV export): counts and ids, no narrative.
#[derive(Debug, Clone, Default)]
pub struct RecordSummary {
    pub practitioner: Option<Practitioner>,
    pub observations: i64,
    pub observations_signed_off: i64,
    pub last_observed_at: Option<String>,
    pub plans: i64,
    pub goals: i64,
    pub goals_met: i64,
    pub goals_in_progress: i64,
    pub components_evidenced: Vec<String>,
}

impl Database {
    /// Summaries of `people`, in their order, counted in the database: a few rows per
    /// practitioner whatever their number of records, so a national export stays quick.
    pub async fn record_summaries(
        &self,
        people: &[&User],
        line_managers: &HashMap<String, String>,
    ) -> Result<Vec<RecordSummary>, StorageError> {
        let mut out = Vec::with_capacity(people.len());
        for chunk in people.chunks(MAX_PARAMETERS / 2) {
            out.extend(self.summaries_chunk(chunk, line_managers).await?);
        }
        Ok(out)
    }

    async fn summaries_chunk(
        &self,
        people: &[&User],
        line_managers: &HashMap<String, String>,
    ) -> Result<Vec<RecordSummary>, StorageError> {
        let ids = IdList::of(people);
        let (list, query) = (ids.placeholders(), |sql: String| ids.query(sql));
        let pool = self.pool();
        // Four independent counts, run at once (each on its own pooled connection).
        let (observations, evidenced, plans, goals) = tokio::try_join!(
            query(format!(
                "SELECT practitioner_id AS id, COUNT(*) AS n,
                        SUM(CASE WHEN status = 'signed-off' THEN 1 ELSE 0 END) AS signed, MAX(observed_at) AS last
                 FROM observations WHERE practitioner_id IN ({list}) AND status <> 'draft' GROUP BY practitioner_id"
            ))
            .fetch_all(pool),
            query(format!(
                "SELECT o.practitioner_id AS id, j.component_id AS component
                 FROM observations o CROSS JOIN observation_judgements j
                 WHERE o.practitioner_id IN ({list}) AND o.status <> 'draft' AND j.document_url = o.document_url
                       AND j.judgement = 'met'
                 GROUP BY o.practitioner_id, j.component_id ORDER BY o.practitioner_id, j.component_id"
            ))
            .fetch_all(pool),
            query(format!(
                "SELECT owner_id AS id, COUNT(*) AS n FROM development_plans WHERE owner_id IN ({list}) GROUP BY owner_id"
            ))
            .fetch_all(pool),
            query(format!(
                "SELECT p.owner_id AS id, COUNT(*) AS n,
                        SUM(CASE WHEN g.status = 'met' THEN 1 ELSE 0 END) AS met,
                        SUM(CASE WHEN g.status = 'in-progress' THEN 1 ELSE 0 END) AS in_progress
                 FROM development_plans p CROSS JOIN plan_goals g
                 WHERE p.owner_id IN ({list}) AND g.document_url = p.document_url GROUP BY p.owner_id"
            ))
            .fetch_all(pool),
        )?;
        let mut by_id: HashMap<String, RecordSummary> = HashMap::new();
        for r in observations {
            let s = by_id.entry(r.try_get("id")?).or_default();
            s.observations = r.try_get("n")?;
            s.observations_signed_off = r.try_get::<Option<i64>, _>("signed")?.unwrap_or(0);
            s.last_observed_at = r.try_get("last")?;
        }
        for r in evidenced {
            by_id.entry(r.try_get("id")?).or_default().components_evidenced.push(r.try_get("component")?);
        }
        for r in plans {
            by_id.entry(r.try_get("id")?).or_default().plans = r.try_get("n")?;
        }
        for r in goals {
            let s = by_id.entry(r.try_get("id")?).or_default();
            s.goals = r.try_get("n")?;
            s.goals_met = r.try_get::<Option<i64>, _>("met")?.unwrap_or(0);
            s.goals_in_progress = r.try_get::<Option<i64>, _>("in_progress")?.unwrap_or(0);
        }
        Ok(people
            .iter()
            .map(|user| {
                let mut summary = by_id.remove(&user.id).unwrap_or_default();
                summary.practitioner = Some(Practitioner::of(user, line_managers));
                summary
            })
            .collect())
    }
}
