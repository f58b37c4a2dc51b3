//! The list parameters of `GET /Users` and `GET /Groups` (RFC 7644 §3.4.2): a `filter` of the
//! forms identity providers send (`userName eq "…"`, `externalId eq "…"`, `displayName eq
//! "…"`, `id eq "…"`), and `startIndex`/`count` paging.

use serde::Deserialize;

use super::error::ScimError;

/// The largest page a provider gets (it asks again for the rest).
const MAX_COUNT: usize = 1000;
const DEFAULT_COUNT: usize = 100;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListQuery {
    pub filter: Option<String>,
    pub start_index: Option<String>,
    pub count: Option<String>,
    pub excluded_attributes: Option<String>,
}

/// `attribute eq "value"`: the attribute as written (compared case-insensitively, as SCIM's
/// attribute names are) and the value.
#[derive(Debug, PartialEq, Eq)]
pub struct Equals {
    pub attribute: String,
    pub value: String,
}

impl Equals {
    pub fn is(&self, attribute: &str) -> bool {
        self.attribute.eq_ignore_ascii_case(attribute)
    }
}

/// Parses a filter; `supported` lists the attributes it may name.
pub fn parse_filter(filter: &str, supported: &[&str]) -> Result<Equals, ScimError> {
    let unsupported = || {
        ScimError::bad(
            "invalidFilter",
            format!("unsupported filter {filter:?}: use `ATTRIBUTE eq \"VALUE\"` with one of {}", supported.join(", ")),
        )
    };
    let mut parts = filter.trim().splitn(3, char::is_whitespace);
    let (Some(attribute), Some(op), Some(value)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(unsupported());
    };
    if !op.eq_ignore_ascii_case("eq") || !supported.iter().any(|s| s.eq_ignore_ascii_case(attribute)) {
        return Err(unsupported());
    }
    let value: String = serde_json::from_str(value.trim()).map_err(|_| unsupported())?;
    Ok(Equals { attribute: attribute.to_owned(), value })
}

/// The page of `items` the query asks for, and the total.
pub fn page<T>(items: Vec<T>, query: &ListQuery) -> Result<(Vec<T>, usize, usize), ScimError> {
    let number = |value: &Option<String>, name: &str| -> Result<Option<usize>, ScimError> {
        match value.as_deref().map(str::trim) {
            None | Some("") => Ok(None),
            Some(v) => v
                .parse::<i64>()
                .map(|n| Some(n.max(0) as usize))
                .map_err(|_| ScimError::bad("invalidValue", format!("{name} must be a number, not {v:?}"))),
        }
    };
    // 1-based; below 1 counts as 1, and a count below 0 as 0 (RFC 7644 §3.4.2.4).
    let start = number(&query.start_index, "startIndex")?.unwrap_or(1).max(1);
    let count = number(&query.count, "count")?.unwrap_or(DEFAULT_COUNT).min(MAX_COUNT);
    let total = items.len();
    let page = items.into_iter().skip(start - 1).take(count).collect();
    Ok((page, total, start))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_providers_send_are_read() {
        let f = parse_filter(r#"userName eq "Pat.Reid@council.example""#, &["userName", "externalId"]).unwrap();
        assert!(f.is("username"));
        assert_eq!(f.value, "Pat.Reid@council.example");
        let f = parse_filter(r#"externalId EQ "a \"quoted\" id""#, &["userName", "externalId"]).unwrap();
        assert_eq!(f.value, "a \"quoted\" id");
        for bad in [r#"userName co "pat""#, "userName eq pat", r#"title eq "x""#, "userName", ""] {
            assert!(parse_filter(bad, &["userName", "externalId"]).is_err(), "{bad}");
        }
    }

    #[test]
    fn pages_start_at_one() {
        let query = |start: &str, count: &str| ListQuery {
            start_index: Some(start.into()),
            count: Some(count.into()),
            ..ListQuery::default()
        };
        assert_eq!(page((1..=5).collect(), &query("2", "2")).unwrap(), (vec![2, 3], 5, 2));
        assert_eq!(page((1..=5).collect(), &query("0", "")).unwrap(), (vec![1, 2, 3, 4, 5], 5, 1));
        assert_eq!(page((1..=5).collect(), &query("9", "2")).unwrap(), (vec![], 5, 9));
        assert_eq!(page((1..=5).collect(), &query("1", "0")).unwrap(), (vec![], 5, 1));
        assert!(page((1..=5).collect::<Vec<i32>>(), &query("x", "1")).is_err());
    }
}
