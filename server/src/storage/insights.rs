//! Counts for leaders: by team and framework component, from the central store. Small
//! numbers are suppressed by the caller (see `api::insights`), not here.

use sqlx::Row;

use super::{Database, MAX_PARAMETERS, StorageError};

/// What to count. Dates are `YYYY-MM-DD` (observation days; `to` exclusive).
#[derive(Debug, Clone, Default)]
pub struct InsightFilter {
    pub team: Option<String>,
    pub framework: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    /// Only these practitioners (a manager's line); `None`: everyone.
    pub people: Option<Vec<String>>,
}

/// One count: `measure` is `observations`, a judgement (`met`, `not-met`,
/// `insufficient-opportunity`) or `goals:<status>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InsightCount {
    pub team: Option<String>,
    pub component: String,
    pub measure: String,
    pub count: i64,
}

impl Database {
    pub async fn insight_counts(&self, filter: &InsightFilter) -> Result<Vec<InsightCount>, StorageError> {
        // A long line is counted a slice at a time: counts over disjoint people add up.
        if let Some(people) = filter.people.as_ref().filter(|p| p.len() > MAX_PARAMETERS - 8) {
            let mut out = Vec::new();
            for slice in people.chunks(MAX_PARAMETERS - 8) {
                let part = InsightFilter { people: Some(slice.to_vec()), ..filter.clone() };
                out.extend(Box::pin(self.insight_counts(&part)).await?);
            }
            return Ok(out);
        }
        let observations = "FROM observation_components x
             JOIN observations o ON o.document_url = x.document_url
             JOIN users u ON u.id = o.practitioner_id";
        let judgements = "FROM observation_judgements x
             JOIN observations o ON o.document_url = x.document_url
             JOIN users u ON u.id = o.practitioner_id";
        let goals = "FROM goal_components x
             JOIN plan_goals g ON g.document_url = x.document_url AND g.goal_id = x.goal_id
             JOIN development_plans p ON p.document_url = x.document_url
             JOIN users u ON u.id = p.owner_id";
        let mut out = Vec::new();
        // (rows, what is counted, its grouping column if any, whose, dated, framework column)
        for (from, measure, measure_group, owner, dated, framework) in [
            (observations, "'observations'", "", "o.practitioner_id", true, "o.framework"),
            (judgements, "x.judgement", ", x.judgement", "o.practitioner_id", true, "o.framework"),
            (goals, "'goals:' || g.status", ", g.status", "p.owner_id", false, "p.framework"),
        ] {
            let mut binds: Vec<String> = Vec::new();
            let mut conditions: Vec<String> = Vec::new();
            let bind = |value: &str, binds: &mut Vec<String>| {
                binds.push(value.to_owned());
                format!("${}", binds.len())
            };
            if dated {
                conditions.push("o.status <> 'draft'".into());
            }
            if let Some(team) = &filter.team {
                conditions.push(format!("u.team_id = {}", bind(team, &mut binds)));
            }
            if let Some(fw) = &filter.framework {
                conditions.push(format!("{framework} = {}", bind(fw, &mut binds)));
            }
            if dated {
                if let Some(day) = &filter.from {
                    conditions.push(format!("o.observed_at >= {}", bind(day, &mut binds)));
                }
                if let Some(day) = &filter.to {
                    conditions.push(format!("o.observed_at < {}", bind(day, &mut binds)));
                }
            }
            if let Some(people) = &filter.people {
                if people.is_empty() {
                    continue;
                }
                let list: Vec<String> = people.iter().map(|p| bind(p, &mut binds)).collect();
                conditions.push(format!("{owner} IN ({})", list.join(", ")));
            }
            let filter_sql =
                if conditions.is_empty() { String::new() } else { format!("WHERE {}", conditions.join(" AND ")) };
            let sql = format!(
                "SELECT u.team_id AS team, x.component_id AS component, {measure} AS measure, COUNT(*) AS n
                 {from} {filter_sql} GROUP BY u.team_id, x.component_id{measure_group}"
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for value in binds {
                query = query.bind(value);
            }
            for row in query.fetch_all(self.pool()).await? {
                out.push(InsightCount {
                    team: row.try_get("team")?,
                    component: row.try_get("component")?,
                    measure: row.try_get("measure")?,
                    count: row.try_get("n")?,
                });
            }
        }
        Ok(out)
    }
}
