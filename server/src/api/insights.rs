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
use crate::error::{AppError, Problem};
use crate::state::AppState;
use crate::storage::{InsightFilter, Scope};

/// Counts below this are suppressed.
pub const SMALL_NUMBER: i64 = 5;

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/v1/api/insights", get(insights))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct InsightQuery {
    /// Only this team.
    team: Option<String>,
    /// Only this framework (e.g. `kss-cf-2018`).
    framework: Option<String>,
    /// Observations on or after this day (YYYY-MM-DD).
    #[param(value_type = Option<String>, format = Date)]
    from: Option<String>,
    /// Observations before this day (YYYY-MM-DD).
    #[param(value_type = Option<String>, format = Date)]
    to: Option<String>,
}

/// Counts for one team and component. Each count is a number, or `{"suppressed": true}`
/// when under five.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(super) struct InsightCell {
    team: String,
    component: String,
    #[schema(value_type = Object)]
    observations: Value,
    /// `met`, `not-met`, `insufficient-opportunity`.
    #[schema(value_type = Object)]
    judgements: Value,
    /// By goal status.
    #[schema(value_type = Object)]
    goals: Value,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct Insights {
    cells: Vec<InsightCell>,
    /// Counts under this are suppressed.
    suppressed_below: i64,
}

fn day(parameter: &'static str, value: Option<String>) -> Result<Option<String>, AppError> {
    match value {
        Some(v) if !dates::is_date(&v) => {
            Err(AppError::bad_parameter(parameter, format!("{parameter} must be a date, YYYY-MM-DD")))
        }
        other => Ok(other),
    }
}

fn cell(count: i64) -> Value {
    if count < SMALL_NUMBER { json!({ "suppressed": true }) } else { json!(count) }
}

/// Counts by team × framework component, small numbers suppressed.
#[utoipa::path(get, path = "/v1/api/insights", tag = "insights", security(("bearer" = ["insights:read"])), params(InsightQuery),
    responses((status = 200, body = Insights), (status = 400, body = Problem), (status = 403, body = Problem)))]
pub(super) async fn insights(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<InsightQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Insights>, AppError> {
    caller.require(Scope::InsightsRead)?;
    let Query(q) = query.map_err(|e| AppError::bad_parameter("query", e.body_text()))?;
    // Supervisors and managers see their own line (a supervisor attaches counts to a theme
    // they raise); principal social workers, admins and systems everyone.
    let people = match &caller {
        Caller::Person(p) if matches!(p.user.role, Role::Supervisor | Role::Manager) => {
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
    let cells: Vec<InsightCell> = cells
        .into_iter()
        .map(|((team, component), measures)| {
            let get = |m: &str| cell(measures.get(m).copied().unwrap_or(0));
            let goals: BTreeMap<&str, Value> = measures
                .iter()
                .filter_map(|(m, n)| m.strip_prefix("goals:").map(|status| (status, cell(*n))))
                .collect();
            InsightCell {
                observations: get("observations"),
                judgements: json!({"met": get("met"), "not-met": get("not-met"), "insufficient-opportunity": get("insufficient-opportunity")}),
                goals: json!(goals),
                team,
                component,
            }
        })
        .collect();
    state
        .audit
        .record(
            caller
                .event("api.insights-read", json!({ "team": q.team, "framework": q.framework, "cells": cells.len() })),
        )
        .await;
    Ok(Json(Insights { cells, suppressed_below: SMALL_NUMBER }))
}
