//! Research resources as data, like frameworks: public publications tagged with the framework
//! areas or components they speak to, which plan goals cite by id (`goals[].resources`).
//!
//! Ids are a contract, as framework ids are: a resource is retired rather than deleted, so a
//! goal that cites it stays valid.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::frameworks::FrameworkCatalog;
use crate::records::dates;

/// The starter set Fieldbook ships with (`resources/starter.json` at the repository root).
pub const SHIPPED: &str = include_str!("../../resources/starter.json");

/// A file for `fieldbook resources import`: where the list comes from, and its entries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResourceFile {
    /// Where the titles and links were taken from (a URL or a short description).
    pub source: String,
    pub resources: Vec<Resource>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Resource {
    pub id: String,
    pub title: String,
    pub url: String,
    pub publisher: String,
    /// Framework area or component ids (`kss-cf-2018/6`, `kss-cf-2018/6.2`).
    pub components: Vec<String>,
    /// Our own words on why it helps; never text copied from the publication.
    #[serde(default)]
    pub summary: Option<String>,
    /// The day it was added to the list (YYYY-MM-DD).
    pub added_at: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ResourceError {
    #[error("not a resource file: {0}")]
    Json(#[from] serde_json::Error),
    #[error("invalid resource file: {0}")]
    Invalid(String),
}

impl ResourceFile {
    /// Parses and checks a resource file against the frameworks its entries name (the format
    /// is documented in the README).
    pub fn from_json(text: &str, frameworks: &impl FrameworkCatalog) -> Result<Self, ResourceError> {
        let file: ResourceFile = serde_json::from_str(text)?;
        file.check(frameworks)?;
        Ok(file)
    }

    fn check(&self, frameworks: &impl FrameworkCatalog) -> Result<(), ResourceError> {
        let bad = |m: String| Err(ResourceError::Invalid(m));
        if self.source.trim().is_empty() {
            return bad("`source` is empty".into());
        }
        let mut ids = BTreeSet::new();
        for r in &self.resources {
            let id_ok =
                !r.id.is_empty() && r.id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            if !id_ok {
                return bad(format!("resource id {:?} must be lowercase letters, digits and dashes", r.id));
            }
            if !ids.insert(r.id.as_str()) {
                return bad(format!("resource id {} appears twice", r.id));
            }
            for (field, value) in [("title", &r.title), ("publisher", &r.publisher)] {
                if value.trim().is_empty() {
                    return bad(format!("{}: `{field}` is empty", r.id));
                }
            }
            if !(r.url.starts_with("https://") || r.url.starts_with("http://")) || r.url.contains(char::is_whitespace) {
                return bad(format!("{}: url {:?} is not an http(s) link", r.id, r.url));
            }
            if !dates::is_date(&r.added_at) {
                return bad(format!("{}: addedAt {:?} is not a date (YYYY-MM-DD)", r.id, r.added_at));
            }
            if r.components.is_empty() {
                return bad(format!("{}: name at least one framework area or component", r.id));
            }
            for component in &r.components {
                let framework = component.split_once('/').map_or("", |(f, _)| f);
                if frameworks.knows(framework, component) != Some(true) {
                    return bad(format!("{}: {component:?} is not an area or component of a known framework", r.id));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frameworks::Catalog;

    #[test]
    fn the_starter_set_is_valid_and_names_known_areas() {
        let file = ResourceFile::from_json(SHIPPED, &Catalog::shipped()).unwrap();
        assert!(file.resources.len() >= 8, "a small starter set, not a token one");
        assert!(file.resources.iter().all(|r| r.summary.is_none()), "titles and links only: no copied text");
        // Every area of the practitioners' and the supervisors' statements has something to read.
        let areas = (1..=10).map(|n| format!("kss-cf-2018/{n}")).chain((1..=8).map(|n| format!("kss-ps-2018/{n}")));
        for id in areas {
            assert!(file.resources.iter().any(|r| r.components.contains(&id)), "nothing for {id}");
        }
    }

    #[test]
    fn bad_entries_are_explained() {
        let catalog = Catalog::shipped();
        let entry = serde_json::json!({"id": "a-1", "title": "T", "url": "https://example.org/a", "publisher": "P",
                                        "components": ["kss-cf-2018/6"], "addedAt": "2026-11-30"});
        let file = |edit: &dyn Fn(&mut serde_json::Value)| {
            let mut e = entry.clone();
            edit(&mut e);
            let text = serde_json::json!({"source": "test", "resources": [e]}).to_string();
            ResourceFile::from_json(&text, &catalog).map(|_| ()).map_err(|e| e.to_string())
        };
        assert_eq!(file(&|_| {}), Ok(()));
        assert!(file(&|e| e["id"] = "A 1".into()).unwrap_err().contains("lowercase"));
        assert!(file(&|e| e["url"] = "javascript:alert(1)".into()).unwrap_err().contains("http(s) link"));
        assert!(
            file(&|e| e["components"] = serde_json::json!(["kss-cf-2018/11"])).unwrap_err().contains("known framework")
        );
        assert!(file(&|e| e["components"] = serde_json::json!([])).unwrap_err().contains("at least one"));
        assert!(file(&|e| e["addedAt"] = "yesterday".into()).unwrap_err().contains("addedAt"));
        assert!(file(&|e| e["text"] = "copied".into()).unwrap_err().contains("unknown field"));
    }
}
