//! RFC 3339 dates and times, as records carry them.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// An RFC 3339 date-time with offset, e.g. `2026-11-20T10:00:00Z`.
pub fn is_timestamp(s: &str) -> bool {
    OffsetDateTime::parse(s, &Rfc3339).is_ok()
}

/// An RFC 3339 full-date, e.g. `2027-03-31`.
pub fn is_date(s: &str) -> bool {
    s.len() == 10 && is_timestamp(&format!("{s}T00:00:00Z"))
}

/// A date, or a date-time (some clients write dates as midnight timestamps).
pub fn is_date_or_timestamp(s: &str) -> bool {
    is_date(s) || is_timestamp(s)
}

/// The UTC calendar day (`YYYY-MM-DD`) of a date or date-time.
pub fn utc_day(s: &str) -> Option<String> {
    if is_date(s) {
        return Some(s.to_owned());
    }
    let at = OffsetDateTime::parse(s, &Rfc3339).ok()?.to_offset(time::UtcOffset::UTC);
    Some(format_day(at.date()))
}

/// Unix milliseconds of a date (midnight UTC) or date-time.
pub fn unix_millis(s: &str) -> Option<i64> {
    let full = if is_date(s) { format!("{s}T00:00:00Z") } else { s.to_owned() };
    let at = OffsetDateTime::parse(&full, &Rfc3339).ok()?;
    Some((at.unix_timestamp_nanos() / 1_000_000) as i64)
}

/// Unix milliseconds as an RFC 3339 UTC timestamp with milliseconds.
pub fn from_unix_millis(ms: i64) -> String {
    let at =
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    at.format(&Rfc3339).expect("UTC timestamps format")
}

/// Today in UTC, as `YYYY-MM-DD`.
pub fn today() -> String {
    format_day(OffsetDateTime::now_utc().date())
}

fn format_day(date: time::Date) -> String {
    format!("{:04}-{:02}-{:02}", date.year(), u8::from(date.month()), date.day())
}

/// Now, as an RFC 3339 UTC timestamp.
pub fn now() -> String {
    OffsetDateTime::now_utc().format(&Rfc3339).expect("UTC timestamps format")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339() {
        assert!(is_timestamp("2026-11-20T10:00:00Z"));
        assert!(is_timestamp("2026-11-20T10:00:00.123+01:00"));
        assert!(!is_timestamp("2026-11-20 10:00"));
        assert!(!is_timestamp("2026-13-20T10:00:00Z"));
        assert!(is_date("2024-02-29"));
        assert!(!is_date("2023-02-29"));
        assert!(!is_date("20-02-2023"));
        assert!(is_timestamp(&now()));
        assert_eq!(utc_day("2026-11-20T23:30:00-02:00").as_deref(), Some("2026-11-21"));
        assert_eq!(utc_day("2027-03-31").as_deref(), Some("2027-03-31"));
        assert!(is_date(&today()));
        assert_eq!(from_unix_millis(unix_millis("2026-11-20T10:00:00.5Z").unwrap()), "2026-11-20T10:00:00.5Z");
    }
}
