//! Frameworks in the database: imported (or shipped) definitions and their ids.

use std::collections::{BTreeMap, BTreeSet};

use fieldbook_sync_core::frameworks::{Catalog, Framework, SHIPPED};
use sqlx::Row;

use super::{Database, StorageError, now_millis};

/// One line of `fieldbook frameworks list`.
#[derive(Debug, Clone)]
pub struct FrameworkSummary {
    pub id: String,
    pub title: String,
    pub version: String,
    pub publisher: String,
    pub effective_from: String,
    pub effective_to: Option<String>,
    pub source: String,
    pub items: i64,
    pub retired: i64,
}

/// What an import changed.
#[derive(Debug, Default)]
pub struct ImportReport {
    pub created: bool,
    pub added: usize,
    pub retitled: usize,
    pub retired: usize,
}

impl Database {
    /// Adds the shipped frameworks that are not in the database yet. Ones already there
    /// are left alone: they may carry an administrator's corrections.
    pub async fn install_shipped_frameworks(&self) -> Result<(), StorageError> {
        for text in SHIPPED {
            let framework = Framework::from_json(text).map_err(|e| StorageError::Refused(e.to_string()))?;
            let exists = sqlx::query("SELECT 1 AS x FROM frameworks WHERE id = $1")
                .bind(&framework.id)
                .fetch_optional(self.pool())
                .await?
                .is_some();
            if !exists {
                self.import_framework(&framework).await?;
            }
        }
        Ok(())
    }

    /// Adds a framework, or corrects one: titles and metadata are replaced, new ids added,
    /// and ids missing from the new definition retired (records that use them stay valid).
    pub async fn import_framework(&self, framework: &Framework) -> Result<ImportReport, StorageError> {
        let definition = serde_json::to_string(framework).map_err(|e| StorageError::Internal(e.to_string()))?;
        let now = now_millis();
        let mut tx = self.begin_write().await?;
        let created = sqlx::query("SELECT 1 AS x FROM frameworks WHERE id = $1")
            .bind(&framework.id)
            .fetch_optional(&mut *tx)
            .await?
            .is_none();
        sqlx::query(
            "INSERT INTO frameworks (id, title, version, publisher, effective_from, effective_to, source, definition, imported_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (id) DO UPDATE SET title = excluded.title, version = excluded.version,
                 publisher = excluded.publisher, effective_from = excluded.effective_from,
                 effective_to = excluded.effective_to, source = excluded.source,
                 definition = excluded.definition, imported_at = excluded.imported_at",
        )
        .bind(&framework.id)
        .bind(&framework.title)
        .bind(&framework.version)
        .bind(&framework.publisher)
        .bind(&framework.effective_from)
        .bind(framework.effective_to.clone())
        .bind(&framework.source)
        .bind(definition)
        .bind(now)
        .execute(&mut *tx)
        .await?;

        let existing: BTreeMap<String, (String, Option<i64>)> =
            sqlx::query("SELECT id, title, retired_at FROM framework_items WHERE framework_id = $1")
                .bind(&framework.id)
                .fetch_all(&mut *tx)
                .await?
                .into_iter()
                .map(|r| Ok((r.try_get("id")?, (r.try_get("title")?, r.try_get("retired_at")?))))
                .collect::<Result<_, sqlx::Error>>()?;
        let mut report = ImportReport { created, ..Default::default() };
        let mut current = BTreeSet::new();
        for area in &framework.areas {
            let items = std::iter::once((&area.id, "area", &area.title))
                .chain(area.components.iter().map(|c| (&c.id, "component", &c.title)));
            for (id, kind, title) in items {
                current.insert(id.clone());
                match existing.get(id) {
                    None => report.added += 1,
                    Some((old, retired)) if old != title || retired.is_some() => report.retitled += 1,
                    Some(_) => {}
                }
                sqlx::query(
                    "INSERT INTO framework_items (framework_id, id, kind, title, retired_at) VALUES ($1, $2, $3, $4, NULL)
                     ON CONFLICT (framework_id, id) DO UPDATE SET kind = excluded.kind, title = excluded.title, retired_at = NULL",
                )
                .bind(&framework.id)
                .bind(id)
                .bind(kind)
                .bind(title)
                .execute(&mut *tx)
                .await?;
            }
        }
        for (id, (_, retired)) in &existing {
            if !current.contains(id) && retired.is_none() {
                sqlx::query("UPDATE framework_items SET retired_at = $1 WHERE framework_id = $2 AND id = $3")
                    .bind(now)
                    .bind(&framework.id)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                report.retired += 1;
            }
        }
        tx.commit().await?;
        Ok(report)
    }

    pub async fn frameworks(&self) -> Result<Vec<FrameworkSummary>, StorageError> {
        let rows = sqlx::query(
            "SELECT f.id, f.title, f.version, f.publisher, f.effective_from, f.effective_to, f.source,
                    (SELECT COUNT(*) FROM framework_items i WHERE i.framework_id = f.id AND i.retired_at IS NULL) AS items,
                    (SELECT COUNT(*) FROM framework_items i WHERE i.framework_id = f.id AND i.retired_at IS NOT NULL) AS retired
             FROM frameworks f ORDER BY f.id",
        )
        .fetch_all(self.pool())
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(FrameworkSummary {
                    id: r.try_get("id")?,
                    title: r.try_get("title")?,
                    version: r.try_get("version")?,
                    publisher: r.try_get("publisher")?,
                    effective_from: r.try_get("effective_from")?,
                    effective_to: r.try_get("effective_to")?,
                    source: r.try_get("source")?,
                    items: r.try_get("items")?,
                    retired: r.try_get("retired")?,
                })
            })
            .collect()
    }

    /// Every framework as last imported (areas and current components), by id.
    pub async fn framework_definitions(&self) -> Result<Vec<Framework>, StorageError> {
        let rows = sqlx::query("SELECT definition FROM frameworks ORDER BY id").fetch_all(self.pool()).await?;
        rows.iter()
            .map(|r| {
                let text: String = r.try_get("definition")?;
                serde_json::from_str(&text).map_err(|e| StorageError::Internal(format!("stored framework: {e}")))
            })
            .collect()
    }

    /// Every valid id (current and retired) of every framework and resource, for validation.
    pub async fn framework_catalog(&self) -> Result<Catalog, StorageError> {
        let mut catalog = Catalog::default();
        for r in sqlx::query("SELECT id FROM frameworks").fetch_all(self.pool()).await? {
            catalog.frameworks.entry(r.try_get("id")?).or_default();
        }
        for r in sqlx::query("SELECT framework_id, id FROM framework_items").fetch_all(self.pool()).await? {
            catalog.frameworks.entry(r.try_get("framework_id")?).or_default().insert(r.try_get("id")?);
        }
        for r in sqlx::query("SELECT id FROM resources").fetch_all(self.pool()).await? {
            catalog.resources.insert(r.try_get("id")?);
        }
        Ok(catalog)
    }
}
