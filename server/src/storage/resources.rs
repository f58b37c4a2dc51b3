//! Research resources in the database (issue 16): imported lists and the shipped starter set.

use fieldbook_sync_core::resources::{Resource, ResourceFile, SHIPPED};
use serde::Serialize;
use sqlx::Row;

use super::{Database, StorageError, now_millis};

/// A resource as stored: the imported entry, where its list came from, and whether it is
/// retired (still valid on the goals that cite it, no longer suggested).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredResource {
    #[serde(flatten)]
    pub resource: Resource,
    pub source: String,
    pub retired: bool,
}

/// What an import changed.
#[derive(Debug, Default, PartialEq)]
pub struct ResourceImportReport {
    pub added: usize,
    pub updated: usize,
    /// Retired ones the file brought back.
    pub restored: usize,
}

impl Database {
    /// Adds the starter set's resources that are not in the database yet; ones already there
    /// (possibly corrected or retired by an administrator) are left alone.
    pub async fn install_shipped_resources(&self) -> Result<(), StorageError> {
        let mut file = ResourceFile::from_json(SHIPPED, &self.framework_catalog().await?)
            .map_err(|e| StorageError::Refused(e.to_string()))?;
        let known: std::collections::BTreeSet<String> = self.resource_ids().await?;
        file.resources.retain(|r| !known.contains(&r.id));
        if !file.resources.is_empty() {
            self.import_resources(&file).await?;
        }
        Ok(())
    }

    /// Adds or corrects the file's resources; a retired one in the file is current again.
    /// Resources missing from the file are left as they are: lists may be partial.
    pub async fn import_resources(&self, file: &ResourceFile) -> Result<ResourceImportReport, StorageError> {
        let now = now_millis();
        let mut report = ResourceImportReport::default();
        let mut tx = self.begin_write().await?;
        for r in &file.resources {
            let existing = sqlx::query("SELECT retired_at FROM resources WHERE id = $1")
                .bind(&r.id)
                .fetch_optional(&mut *tx)
                .await?
                .map(|row| row.try_get::<Option<i64>, _>("retired_at"))
                .transpose()?;
            match existing {
                None => report.added += 1,
                Some(Some(_)) => report.restored += 1,
                Some(None) => report.updated += 1,
            }
            let components = serde_json::to_string(&r.components).map_err(|e| StorageError::Internal(e.to_string()))?;
            sqlx::query(
                "INSERT INTO resources (id, title, url, publisher, components, summary, added_at, source, imported_at, retired_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL)
                 ON CONFLICT (id) DO UPDATE SET title = excluded.title, url = excluded.url,
                     publisher = excluded.publisher, components = excluded.components, summary = excluded.summary,
                     added_at = excluded.added_at, source = excluded.source, imported_at = excluded.imported_at,
                     retired_at = NULL",
            )
            .bind(&r.id)
            .bind(&r.title)
            .bind(&r.url)
            .bind(&r.publisher)
            .bind(components)
            .bind(r.summary.clone())
            .bind(&r.added_at)
            .bind(&file.source)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(report)
    }

    /// Retires a resource: `Ok(false)` if it was retired already; `NotFound` if there is none.
    pub async fn retire_resource(&self, id: &str) -> Result<bool, StorageError> {
        let done = sqlx::query("UPDATE resources SET retired_at = $1 WHERE id = $2 AND retired_at IS NULL")
            .bind(now_millis())
            .bind(id)
            .execute(self.pool())
            .await?
            .rows_affected()
            > 0;
        if !done && !self.resource_ids().await?.contains(id) {
            return Err(StorageError::NotFound(format!("no resource {id:?}")));
        }
        Ok(done)
    }

    /// Every resource, current and retired, by id.
    pub async fn resources(&self) -> Result<Vec<StoredResource>, StorageError> {
        let rows = sqlx::query(
            "SELECT id, title, url, publisher, components, summary, added_at, source, retired_at FROM resources ORDER BY id",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                let components: String = r.try_get("components")?;
                Ok(StoredResource {
                    resource: Resource {
                        id: r.try_get("id")?,
                        title: r.try_get("title")?,
                        url: r.try_get("url")?,
                        publisher: r.try_get("publisher")?,
                        components: serde_json::from_str(&components)
                            .map_err(|e| StorageError::Internal(format!("stored resource components: {e}")))?,
                        summary: r.try_get("summary")?,
                        added_at: r.try_get("added_at")?,
                    },
                    source: r.try_get("source")?,
                    retired: r.try_get::<Option<i64>, _>("retired_at")?.is_some(),
                })
            })
            .collect()
    }

    pub(super) async fn resource_ids(&self) -> Result<std::collections::BTreeSet<String>, StorageError> {
        sqlx::query("SELECT id FROM resources")
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(|r| Ok(r.try_get("id")?))
            .collect()
    }
}
