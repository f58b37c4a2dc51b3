//! `GET /v1/api/insights`: themes across teams for leaders — counts by team × framework
//! component of observations, judgements and goals by status. A count under five is
//! reported as suppressed, never as a number, so nobody can be singled out.

use std::collections::BTreeMap;

use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use fieldbook_sync_core::access::Role;
use fieldbook_sync_core::records::dates;
use serde::Deserialize;
use serde_json::{Value, json};

use super::caller::Caller;
use super::problem::Problem;
use crate::state::AppState;
use crate::storage::{InsightFilter, Scope};

/// Counts below this are suppressed.
pub const SMALL_NUMBER: i64 = 5;

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/v1/api/insights", get(insights))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InsightQuery {
    team: Option<String>,
    framework: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

fn day(parameter: &'static str, value: Option<String>) -> Result<Option<String>, Problem> {
    match value {
        Some(v) if !dates::is_date(&v) => {
            Err(Problem::bad_parameter(parameter, format!("{parameter} must be a date, YYYY-MM-DD")))
        }
        other => Ok(other),
    }
}

fn cell(count: i64) -> Value {
    if count < SMALL_NUMBER { json!({ "suppressed": true }) } else { json!(count) }
}

async fn insights(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<InsightQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, Problem> {
    caller.require(Scope::InsightsRead)?;
    let Query(q) = query.map_err(|e| Problem::bad_parameter("query", e.body_text()))?;
    // Managers see their own line; principal social workers, admins and systems everyone.
    let people = match &caller {
        Caller::Person(p) if p.user.role == Role::Manager => {
            let viewer = state.db.viewer(&p.user).await?;
            let today = dates::today();
            let mut line: Vec<String> = viewer
                .line
                .iter()
                .filter(|g| g.to.as_deref().is_none_or(|to| today.as_str() < to))
                .map(|g| g.subject_id.clone())
                .collect();
            line.sort();
            line.dedup();
            Some(line)
        }
        _ => None,
    };
    let filter = InsightFilter {
        team: q.team.clone(),
        framework: q.framework.clone(),
        from: day("from", q.from)?,
        to: day("to", q.to)?,
        people,
    };
    let counts = state.db.insight_counts(&filter).await?;
    let mut cells: BTreeMap<(String, String), BTreeMap<String, i64>> = BTreeMap::new();
    for c in counts {
        let team = c.team.unwrap_or_else(|| "(no team)".into());
        *cells.entry((team, c.component)).or_default().entry(c.measure).or_default() += c.count;
    }
    let cells: Vec<Value> = cells
        .into_iter()
        .map(|((team, component), measures)| {
            let get = |m: &str| cell(measures.get(m).copied().unwrap_or(0));
            let goals: BTreeMap<&str, Value> = measures
                .iter()
                .filter_map(|(m, n)| m.strip_prefix("goals:").map(|status| (status, cell(*n))))
                .collect();
            json!({
                "team": team,
                "component": component,
                "observations": get("observations"),
                "judgements": {"met": get("met"), "not-met": get("not-met"), "insufficient-opportunity": get("insufficient-opportunity")},
                "goals": goals,
            })
        })
        .collect();
    state
        .audit
        .record(
            caller
                .event("api.insights-read", json!({ "team": q.team, "framework": q.framework, "cells": cells.len() })),
        )
        .await;
    Ok(Json(json!({ "cells": cells, "suppressedBelow": SMALL_NUMBER })))
}
