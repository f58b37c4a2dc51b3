//! Competency frameworks as data: framework → areas → components, each with a stable id.
//!
//! Ids are a contract: a framework `kss-cf-2018`, an area `kss-cf-2018/6`, a component inside
//! it `kss-cf-2018/6.2`. Records keep the ids they were made with, so a correction that drops
//! an id retires it (still valid for records) rather than deleting it.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::records::dates;
use crate::resources::ResourceFile;

/// The frameworks Fieldbook ships with (see `frameworks/` at the repository root).
pub const SHIPPED: [&str; 3] = [
    include_str!("../../frameworks/kss-cf-2018.json"),
    include_str!("../../frameworks/kss-ps-2018.json"),
    include_str!("../../frameworks/pcf-2018.json"),
];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Framework {
    pub id: String,
    pub title: String,
    pub version: String,
    pub publisher: String,
    pub effective_from: String,
    #[serde(default)]
    pub effective_to: Option<String>,
    pub source: String,
    #[serde(default)]
    pub note: Option<String>,
    pub areas: Vec<Area>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Area {
    pub id: String,
    pub number: u32,
    pub title: String,
    #[serde(default)]
    pub components: Vec<Component>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Component {
    pub id: String,
    pub title: String,
}

#[derive(Debug, thiserror::Error)]
pub enum FrameworkError {
    #[error("not a framework file: {0}")]
    Json(#[from] serde_json::Error),
    #[error("invalid framework: {0}")]
    Invalid(String),
}

impl Framework {
    /// Parses and checks a framework file (the format is documented in the README).
    pub fn from_json(text: &str) -> Result<Self, FrameworkError> {
        let framework: Framework = serde_json::from_str(text)?;
        framework.check()?;
        Ok(framework)
    }

    fn check(&self) -> Result<(), FrameworkError> {
        let bad = |m: String| Err(FrameworkError::Invalid(m));
        let id_ok =
            |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !id_ok(&self.id) {
            return bad(format!("framework id {:?} must be lowercase letters, digits and dashes", self.id));
        }
        for (field, value) in [
            ("title", &self.title),
            ("version", &self.version),
            ("publisher", &self.publisher),
            ("source", &self.source),
        ] {
            if value.trim().is_empty() {
                return bad(format!("`{field}` is empty"));
            }
        }
        if !dates::is_date(&self.effective_from) {
            return bad(format!("effectiveFrom {:?} is not a date (YYYY-MM-DD)", self.effective_from));
        }
        if let Some(to) = &self.effective_to
            && !dates::is_date(to)
        {
            return bad(format!("effectiveTo {to:?} is not a date (YYYY-MM-DD)"));
        }
        if self.areas.is_empty() {
            return bad("a framework needs at least one area".into());
        }
        let mut seen = BTreeSet::new();
        for area in &self.areas {
            let expected = format!("{}/{}", self.id, area.number);
            if area.id != expected {
                return bad(format!("area {:?} should have id {expected:?}", area.title));
            }
            if !seen.insert(area.id.clone()) {
                return bad(format!("area id {} appears twice", area.id));
            }
            for component in &area.components {
                let valid = component
                    .id
                    .strip_prefix(&format!("{expected}."))
                    .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()));
                if !valid {
                    return bad(format!("component id {:?} should look like {expected}.N", component.id));
                }
                if !seen.insert(component.id.clone()) {
                    return bad(format!("component id {} appears twice", component.id));
                }
            }
        }
        Ok(())
    }

    /// Every area and component id, with its title.
    pub fn ids(&self) -> BTreeMap<String, String> {
        let mut ids = BTreeMap::new();
        for area in &self.areas {
            ids.insert(area.id.clone(), area.title.clone());
            for c in &area.components {
                ids.insert(c.id.clone(), c.title.clone());
            }
        }
        ids
    }
}

/// What validation needs to know about reference data: frameworks, and the research
/// resources that plan goals cite.
pub trait FrameworkCatalog {
    /// `None` if the framework is unknown; otherwise whether `id` (an area or component,
    /// current or retired) belongs to it.
    fn knows(&self, framework: &str, id: &str) -> Option<bool>;
    /// Whether `id` is an imported research resource, current or retired.
    fn knows_resource(&self, id: &str) -> bool;
}

/// An in-memory catalog: framework id → its valid ids, and the valid resource ids.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub frameworks: BTreeMap<String, BTreeSet<String>>,
    pub resources: BTreeSet<String>,
}

impl Catalog {
    /// What a fresh server knows: the shipped frameworks and starter resources.
    pub fn shipped() -> Self {
        let mut catalog = Catalog::default();
        for text in SHIPPED {
            let f = Framework::from_json(text).expect("shipped frameworks are valid");
            catalog.frameworks.insert(f.id.clone(), f.ids().into_keys().collect());
        }
        let resources =
            ResourceFile::from_json(crate::resources::SHIPPED, &catalog).expect("shipped resources are valid");
        catalog.resources = resources.resources.into_iter().map(|r| r.id).collect();
        catalog
    }
}

impl FrameworkCatalog for Catalog {
    fn knows(&self, framework: &str, id: &str) -> Option<bool> {
        self.frameworks.get(framework).map(|ids| ids.contains(id))
    }

    fn knows_resource(&self, id: &str) -> bool {
        self.resources.contains(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_frameworks_have_the_documented_areas() {
        let catalog = Catalog::shipped();
        assert_eq!(catalog.frameworks["kss-cf-2018"].len(), 10);
        assert_eq!(catalog.frameworks["kss-ps-2018"].len(), 8);
        assert_eq!(catalog.frameworks["pcf-2018"].len(), 9);
        assert_eq!(catalog.knows("kss-cf-2018", "kss-cf-2018/6"), Some(true));
        assert_eq!(catalog.knows("pcf-2018", "pcf-2018/4"), Some(true));
        assert_eq!(catalog.knows("kss-cf-2018", "kss-cf-2018/11"), Some(false));
        assert_eq!(catalog.knows("nope", "nope/1"), None);
    }

    #[test]
    fn bad_frameworks_are_explained() {
        let mut f: Framework = serde_json::from_str(SHIPPED[0]).unwrap();
        f.areas[1].id = "kss-cf-2018/9".into();
        assert!(f.check().unwrap_err().to_string().contains("should have id"));
        let mut f: Framework = serde_json::from_str(SHIPPED[0]).unwrap();
        f.areas[0].components.push(Component { id: "kss-cf-2018/2.1".into(), title: "x".into() });
        assert!(f.check().unwrap_err().to_string().contains("should look like kss-cf-2018/1.N"));
        assert!(Framework::from_json("{}").is_err());
    }
}
