//! Retention: each record type is kept for a period after its sign-off or after its
//! practitioner leaves, then deleted everywhere (devices told to remove their copies), except
//! what a legal hold covers. `fieldbook retention run` and a daily job in the server both
//! come here; a dry run says what would go without touching anything. A record can also be
//! deleted by hand (`fieldbook records delete`), e.g. when the family withdrew consent.

pub mod commands;

use fieldbook_sync_core::DocumentId;
use fieldbook_sync_core::records::{RecordKind, dates};
use serde_json::json;
use time::{Date, Month};

use crate::org::Operator;
use crate::storage::{Database, DeleteOutcome, Deletion, RetainedRecord, RetentionPolicy, StorageError};

pub const RECORD_TYPES: &[&str] = RecordKind::NAMES;
pub const BASES: [&str; 2] = [SIGN_OFF, LEAVING];
/// Counted from an observation's sign-off by both, or a group session's closing (a plan's, a
/// theme's, or an unsigned observation's or open session's last change).
pub const SIGN_OFF: &str = "sign-off";
/// Counted from the day the practitioner the record is about left.
pub const LEAVING: &str = "leaving";

/// A retention period: `6y`, `18m` or `90d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    amount: u32,
    unit: char,
}

impl std::str::FromStr for Period {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?} is not a period: give years, months or days, e.g. 6y, 18m or 90d");
        let unit = s.chars().last().filter(|u| matches!(u, 'y' | 'm' | 'd')).ok_or_else(bad)?;
        let amount: u32 = s[..s.len() - 1].parse().map_err(|_| bad())?;
        if amount == 0 || amount > 100 * 366 {
            return Err(bad());
        }
        Ok(Period { amount, unit })
    }
}

impl Period {
    /// `date` plus this period (a month end or 29 February stays within its month).
    fn after(self, date: Date) -> Option<Date> {
        let add_months = |date: Date, months: u32| {
            let index = date.year() * 12 + i32::from(u8::from(date.month())) - 1 + months as i32;
            let (year, month) = (index.div_euclid(12), Month::try_from((index.rem_euclid(12) + 1) as u8).ok()?);
            let day = date.day().min(month.length(year));
            Date::from_calendar_date(year, month, day).ok()
        };
        match self.unit {
            'y' => add_months(date, self.amount * 12),
            'm' => add_months(date, self.amount),
            _ => date.checked_add(time::Duration::days(i64::from(self.amount))),
        }
    }
}

/// Checks a policy as given on the command line.
pub fn check_policy(record_type: &str, keep: &str, after: &str) -> Result<(), String> {
    if !RECORD_TYPES.contains(&record_type) {
        return Err(format!("unknown record type {record_type:?}; expected one of {}", RECORD_TYPES.join(", ")));
    }
    keep.parse::<Period>()?;
    if !BASES.contains(&after) {
        return Err(format!("retention counts from {}, not {after:?}", BASES.join(" or ")));
    }
    Ok(())
}

/// A record whose retention period has ended.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Expired {
    pub record: String,
    pub record_type: &'static str,
    /// `sign-off` or `leaving`, with the day it counts from and the day it ended.
    pub after: String,
    pub from: String,
    pub expired_on: String,
    /// The legal holds that keep it (empty: it is deleted, or would be in a dry run).
    pub holds: Vec<i64>,
}

/// What a retention run did (or, dry, would do).
#[derive(Debug, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunReport {
    pub dry_run: bool,
    pub deleted: Vec<Expired>,
    pub held: Vec<Expired>,
    /// Expired, but the deletion failed (tried again at the next run).
    pub failed: Vec<Expired>,
}

/// Records whose retention ended on or before `today` (`YYYY-MM-DD`), with the holds that
/// keep any of them.
pub async fn expired(db: &Database, today: &str) -> Result<Vec<Expired>, StorageError> {
    let policies = db.retention_policies().await?;
    if policies.is_empty() {
        return Ok(Vec::new());
    }
    let today = parse_day(today).ok_or_else(|| StorageError::Internal(format!("bad day {today}")))?;
    let holds = db.holds(false).await?;
    let mut expired = Vec::new();
    for record in db.retained_records().await? {
        let Some(policy) = policies.iter().find(|p| p.record_type == record.record_type) else { continue };
        let Some((from, expired_on)) = ends(policy, &record) else { continue };
        if expired_on > today {
            continue;
        }
        let url = record.document.url();
        let holding = holds
            .iter()
            .filter(|h| {
                h.record.as_deref() == Some(url.as_str())
                    || h.user_id
                        .as_deref()
                        .is_some_and(|u| u == record.subject_id || record.others.iter().any(|o| o == u))
            })
            .map(|h| h.id)
            .collect();
        expired.push(Expired {
            record: url,
            record_type: record.record_type,
            after: policy.after.clone(),
            from: day(from),
            expired_on: day(expired_on),
            holds: holding,
        });
    }
    Ok(expired)
}

/// The day a record's retention counts from under `policy`, and the day it ends; `None` if
/// it does not run yet (its practitioner has not left).
fn ends(policy: &RetentionPolicy, record: &RetainedRecord) -> Option<(Date, Date)> {
    let from = match policy.after.as_str() {
        LEAVING => millis_day(record.subject_left_at.filter(|at| *at > 0)?)?,
        _ => match &record.signed_off_at {
            Some(at) => parse_day(&dates::utc_day(at)?)?,
            // 0: the projection was written before it kept when (it is set on the next change);
            // a record whose date is unknown is kept, never deleted as if changed in 1970.
            None if record.last_change <= 0 => return None,
            None => millis_day(record.last_change)?,
        },
    };
    Some((from, policy.keep.parse::<Period>().ok()?.after(from)?))
}

/// Deletes every expired record not under a hold (or, with `dry_run`, only says which);
/// audits the run. The caller tells this server's connections (see `DocumentHub::removed`);
/// other servers hear of it from the ledger.
pub async fn run(db: &Database, operator: Operator<'_>, dry_run: bool) -> Result<RunReport, StorageError> {
    let mut report = RunReport { dry_run, ..RunReport::default() };
    for mut record in expired(db, &dates::today()).await? {
        if !record.holds.is_empty() {
            report.held.push(record);
            continue;
        }
        if !dry_run {
            let document =
                DocumentId::parse_url_or_id(&record.record).map_err(|e| StorageError::Internal(e.to_string()))?;
            let reason =
                format!("retention: {} kept after {} until {}", record.record_type, record.after, record.expired_on);
            let detail =
                json!({ "reason": reason, "after": record.after, "from": record.from, "expiredOn": record.expired_on });
            let deletion = Deletion {
                document,
                reason: &reason,
                deleted_by: &operator.name(),
                audit: operator.event("record-deleted", detail),
                despite_holds: false,
                only_draft_of: None,
            };
            match db.delete_record(deletion).await {
                Ok(DeleteOutcome::Deleted(_)) => {}
                // A hold placed since the records were listed.
                Ok(DeleteOutcome::Held(holds)) => {
                    record.holds = holds;
                    report.held.push(record);
                    continue;
                }
                // Gone meanwhile (a discard is not asked for here).
                Ok(DeleteOutcome::NotFound | DeleteOutcome::NotDiscardable(_)) => continue,
                // The others still go, and the run is still audited; this one is tried again
                // at the next run.
                Err(e) => {
                    tracing::warn!(record = %record.record, error = %e, "could not delete an expired record");
                    report.failed.push(record);
                    continue;
                }
            }
        }
        report.deleted.push(record);
    }
    if !dry_run {
        if !report.deleted.is_empty() {
            overwrite_freed(db).await;
        }
        let deleted: Vec<&str> = report.deleted.iter().map(|e| e.record.as_str()).collect();
        let held: Vec<&str> = report.held.iter().map(|e| e.record.as_str()).collect();
        let failed: Vec<&str> = report.failed.iter().map(|e| e.record.as_str()).collect();
        db.audit(operator.event("retention-run", json!({ "deleted": deleted, "held": held, "failed": failed })))
            .await?;
    }
    Ok(report)
}

/// Deletes one record by hand, unless a legal hold covers it; with `only_draft_of`, a
/// discard: only while the record is a draft by that user.
pub async fn delete(
    db: &Database,
    operator: Operator<'_>,
    document: DocumentId,
    reason: &str,
    only_draft_of: Option<&str>,
) -> Result<DeleteOutcome, StorageError> {
    let deletion = Deletion {
        document,
        reason,
        deleted_by: &operator.name(),
        audit: operator.event("record-deleted", json!({ "reason": reason })),
        despite_holds: false,
        only_draft_of,
    };
    let outcome = db.delete_record(deletion).await?;
    if matches!(outcome, DeleteOutcome::Deleted(_)) {
        overwrite_freed(db).await;
    }
    Ok(outcome)
}

/// Overwrites the space deleted records freed (once for a whole run: on PostgreSQL it vacuums
/// the tables). The deletions are made; a failure here is retried by the next one.
async fn overwrite_freed(db: &Database) {
    if let Err(e) = db.overwrite_freed().await {
        tracing::warn!(error = %e, "records deleted, but the space they freed is not overwritten yet");
    }
}

/// A `YYYY-MM-DD` day.
fn parse_day(day: &str) -> Option<Date> {
    if !dates::is_date(day) {
        return None;
    }
    let nanos = i128::from(dates::unix_millis(day)?) * 1_000_000;
    Some(time::OffsetDateTime::from_unix_timestamp_nanos(nanos).ok()?.date())
}

fn millis_day(ms: i64) -> Option<Date> {
    parse_day(&dates::utc_day(&dates::from_unix_millis(ms))?)
}

fn day(date: Date) -> String {
    format!("{:04}-{:02}-{:02}", date.year(), u8::from(date.month()), date.day())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(s: &str) -> Date {
        parse_day(s).unwrap()
    }

    #[test]
    fn periods_count_in_calendar_years_months_and_days() {
        let p = |s: &str| s.parse::<Period>().unwrap();
        assert_eq!(p("6y").after(date("2020-03-15")), Some(date("2026-03-15")));
        assert_eq!(p("1y").after(date("2024-02-29")), Some(date("2025-02-28")));
        assert_eq!(p("18m").after(date("2025-08-31")), Some(date("2027-02-28")));
        assert_eq!(p("90d").after(date("2026-01-01")), Some(date("2026-04-01")));
        for bad in ["", "6", "y", "0y", "6w", "-1d", "6 y"] {
            assert!(bad.parse::<Period>().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn policies_are_checked() {
        assert!(check_policy("observation", "6y", "sign-off").is_ok());
        assert!(check_policy("development-plan", "2y", "leaving").is_ok());
        assert!(check_policy("note", "6y", "sign-off").unwrap_err().contains("record type"));
        assert!(check_policy("observation", "6y", "creation").unwrap_err().contains("sign-off or leaving"));
        assert!(check_policy("observation", "six", "sign-off").unwrap_err().contains("not a period"));
    }

    fn record(signed_off_at: Option<&str>, last_change: &str, left: Option<&str>) -> RetainedRecord {
        let millis = |d: &str| dates::unix_millis(d).unwrap();
        RetainedRecord {
            document: DocumentId::random(),
            record_type: fieldbook_sync_core::records::OBSERVATION,
            subject_id: "pat".into(),
            others: vec!["sam".into()],
            signed_off_at: signed_off_at.map(str::to_owned),
            last_change: millis(last_change),
            subject_left_at: left.map(millis),
        }
    }

    fn policy(keep: &str, after: &str) -> RetentionPolicy {
        RetentionPolicy {
            record_type: fieldbook_sync_core::records::OBSERVATION.into(),
            keep: keep.into(),
            after: after.into(),
            set_by: "dpo".into(),
            set_at: 0,
        }
    }

    #[test]
    fn retention_counts_from_sign_off_else_last_change_or_from_leaving() {
        let signed = record(Some("2019-06-30T23:30:00-02:00"), "2020-01-01", None);
        assert_eq!(ends(&policy("6y", SIGN_OFF), &signed), Some((date("2019-07-01"), date("2025-07-01"))));
        let unsigned = record(None, "2021-05-04T10:00:00Z", None);
        assert_eq!(ends(&policy("1y", SIGN_OFF), &unsigned), Some((date("2021-05-04"), date("2022-05-04"))));
        assert_eq!(ends(&policy("1y", LEAVING), &unsigned), None, "not left: it does not run");
        let left = record(None, "2021-05-04", Some("2023-01-31"));
        assert_eq!(ends(&policy("1m", LEAVING), &left), Some((date("2023-01-31"), date("2023-02-28"))));
        let unknown = RetainedRecord { last_change: 0, subject_left_at: Some(0), ..unsigned };
        assert_eq!(ends(&policy("1y", SIGN_OFF), &unknown), None, "an unknown date is not 1970");
        assert_eq!(ends(&policy("1y", LEAVING), &unknown), None);
    }
}
