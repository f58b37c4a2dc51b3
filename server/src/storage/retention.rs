//! Retention in storage: a policy per record type, legal holds, and what each record's
//! retention counts from. Deciding what has expired is `crate::retention`'s.

use fieldbook_sync_core::records::RecordKind;
use fieldbook_sync_core::{DocumentId, Record};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Database, StorageError, now_millis};

/// How long one record type is kept, and from when (see migration 0009).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RetentionPolicy {
    /// `observation` or `development-plan`.
    pub record_type: String,
    /// A period: `6y`, `18m` or `90d`.
    pub keep: String,
    /// `sign-off` or `leaving`.
    pub after: String,
    pub set_by: String,
    pub set_at: i64,
}

/// A legal hold on a person (every record they are a party to) or on one record.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LegalHold {
    pub id: i64,
    pub user_id: Option<String>,
    /// The record's `automerge:` URL.
    pub record: Option<String>,
    pub reason: String,
    pub placed_by: String,
    pub placed_at: i64,
    pub released_by: Option<String>,
    pub released_at: Option<i64>,
}

/// What retention needs to know about one stored record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetainedRecord {
    pub document: DocumentId,
    pub record_type: &'static str,
    /// The practitioner it is about (an observation's practitioner, a plan's owner).
    pub subject_id: String,
    /// The other parties (observer, supervisor; a group session's participants).
    pub others: Vec<String>,
    /// When both signed an observation off (the later signature); `None` otherwise.
    pub signed_off_at: Option<String>,
    /// When the record last changed (Unix ms).
    pub last_change: i64,
    /// When its practitioner left (Unix ms), if they have.
    pub subject_left_at: Option<i64>,
}

/// An observation whose family withdrew consent.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsentWithdrawn {
    pub record: String,
    pub practitioner_id: String,
    pub observer_id: String,
    pub observed_at: Option<String>,
    pub withdrawn_at: String,
}

impl Database {
    /// Sets (or replaces) the policy for a record type.
    pub async fn set_retention_policy(&self, policy: &RetentionPolicy) -> Result<(), StorageError> {
        sqlx::query(
            "INSERT INTO retention_policies (record_type, keep, after, set_by, set_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (record_type) DO UPDATE
             SET keep = excluded.keep, after = excluded.after, set_by = excluded.set_by, set_at = excluded.set_at",
        )
        .bind(&policy.record_type)
        .bind(&policy.keep)
        .bind(&policy.after)
        .bind(&policy.set_by)
        .bind(policy.set_at)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Removes a record type's policy (its records are then kept until one is set); false
    /// if it had none.
    pub async fn remove_retention_policy(&self, record_type: &str) -> Result<bool, StorageError> {
        let done = sqlx::query("DELETE FROM retention_policies WHERE record_type = $1")
            .bind(record_type)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn retention_policies(&self) -> Result<Vec<RetentionPolicy>, StorageError> {
        let rows =
            sqlx::query("SELECT record_type, keep, after, set_by, set_at FROM retention_policies ORDER BY record_type")
                .fetch_all(self.pool())
                .await?;
        rows.iter()
            .map(|r| {
                Ok(RetentionPolicy {
                    record_type: r.try_get("record_type")?,
                    keep: r.try_get("keep")?,
                    after: r.try_get("after")?,
                    set_by: r.try_get("set_by")?,
                    set_at: r.try_get("set_at")?,
                })
            })
            .collect()
    }

    /// Places a hold on a person or a record; returns its id.
    pub async fn add_hold(
        &self,
        user_id: Option<&str>,
        document: Option<DocumentId>,
        reason: &str,
        placed_by: &str,
    ) -> Result<i64, StorageError> {
        let row = sqlx::query(
            "INSERT INTO legal_holds (user_id, document_id, reason, placed_by, placed_at) VALUES ($1, $2, $3, $4, $5)
             RETURNING id",
        )
        .bind(user_id)
        .bind(document.map(|d| d.to_string()))
        .bind(reason)
        .bind(placed_by)
        .bind(now_millis())
        .fetch_one(self.pool())
        .await?;
        Ok(row.try_get("id")?)
    }

    /// Releases a hold (it stays listed, released); false if there is no such hold in force.
    pub async fn release_hold(&self, id: i64, released_by: &str) -> Result<bool, StorageError> {
        let done = sqlx::query(
            "UPDATE legal_holds SET released_by = $2, released_at = $3 WHERE id = $1 AND released_at IS NULL",
        )
        .bind(id)
        .bind(released_by)
        .bind(now_millis())
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Holds in force (and released ones too, if asked), oldest first.
    pub async fn holds(&self, with_released: bool) -> Result<Vec<LegalHold>, StorageError> {
        let rows = sqlx::query(
            "SELECT id, user_id, document_id, reason, placed_by, placed_at, released_by, released_at FROM legal_holds
             WHERE released_at IS NULL OR $1 = 1 ORDER BY id",
        )
        .bind(i64::from(with_released))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(hold).collect()
    }

    /// Every stored record with what its retention counts from.
    pub async fn retained_records(&self) -> Result<Vec<RetainedRecord>, StorageError> {
        let rows = sqlx::query(
            "SELECT r.*, u.left_at FROM (
                 SELECT document_url, 'observation' AS record_type, practitioner_id AS subject_id,
                        observer_id AS other_id, observer_signed_off_at, practitioner_signed_off_at, locked,
                        updated_at
                 FROM observations
                 UNION ALL
                 SELECT document_url, 'development-plan', owner_id, supervisor_id, NULL, NULL, 0, updated_at
                 FROM development_plans
                 UNION ALL
                 SELECT document_url, 'group-session', facilitator_id, participant_ids, closed_at, NULL, locked, updated_at
                 FROM group_sessions
                 UNION ALL
                 SELECT document_url, 'practice-theme', raised_by, NULL, NULL, NULL, 0, updated_at
                 FROM practice_themes
             ) r LEFT JOIN users u ON u.id = r.subject_id
             ORDER BY r.document_url",
        )
        .fetch_all(self.pool())
        .await?;
        let mut records = Vec::with_capacity(rows.len());
        for r in rows {
            let Ok(document) = DocumentId::parse_url_or_id(&r.try_get::<String, _>("document_url")?) else { continue };
            let Some(kind) = RecordKind::parse(&r.try_get::<String, _>("record_type")?) else { continue };
            let record_type = kind.as_str();
            let signatures: [Option<String>; 2] =
                [r.try_get("observer_signed_off_at")?, r.try_get("practitioner_signed_off_at")?];
            let both_signed = r.try_get::<i64, _>("locked")? == 1;
            records.push(RetainedRecord {
                document,
                record_type,
                subject_id: r.try_get("subject_id")?,
                others: r
                    .try_get::<Option<String>, _>("other_id")?
                    .map(|o| o.split_whitespace().map(str::to_owned).collect())
                    .unwrap_or_default(),
                // RFC 3339 in UTC sorts by time; a locked observation carries both, a closed
                // session its closing.
                signed_off_at: if both_signed { signatures.into_iter().flatten().max() } else { None },
                last_change: r.try_get("updated_at")?,
                subject_left_at: r.try_get("left_at")?,
            });
        }
        Ok(records)
    }

    /// Observations whose family withdrew consent, oldest withdrawal first.
    pub async fn consent_withdrawn(&self) -> Result<Vec<ConsentWithdrawn>, StorageError> {
        let rows = sqlx::query(
            "SELECT document_url, practitioner_id, observer_id, observed_at, consent_withdrawn_at FROM observations
             WHERE consent_withdrawn_at IS NOT NULL ORDER BY consent_withdrawn_at, document_url",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ConsentWithdrawn {
                    record: r.try_get("document_url")?,
                    practitioner_id: r.try_get("practitioner_id")?,
                    observer_id: r.try_get("observer_id")?,
                    observed_at: r.try_get("observed_at")?,
                    withdrawn_at: r.try_get("consent_withdrawn_at")?,
                })
            })
            .collect()
    }

    /// Fills `observations.consent_withdrawn_at` for records stored before it was projected
    /// (migration 0009), once: each observation is read from its document.
    pub(super) async fn project_consent_withdrawn(&self) -> Result<(), StorageError> {
        const DONE: &str = "consent_withdrawn_projected";
        let done = sqlx::query("SELECT 1 AS x FROM server_settings WHERE name = $1")
            .bind(DONE)
            .fetch_optional(self.pool())
            .await?
            .is_some();
        if done {
            return Ok(());
        }
        let rows = sqlx::query("SELECT document_url FROM observations").fetch_all(self.pool()).await?;
        let catalog = self.framework_catalog().await?;
        for row in rows {
            let url: String = row.try_get("document_url")?;
            let Ok(document) = DocumentId::parse_url_or_id(&url) else { continue };
            let stored = self.load_document(document).await?;
            let json = fieldbook_sync_core::json::to_json(&stored.doc);
            let Ok(Record::Observation(o)) = Record::parse(&json, &catalog) else { continue };
            if let Some(at) = o.consent.and_then(|c| c.withdrawn_at) {
                sqlx::query("UPDATE observations SET consent_withdrawn_at = $2 WHERE document_url = $1")
                    .bind(&url)
                    .bind(at)
                    .execute(self.pool())
                    .await?;
            }
        }
        sqlx::query("INSERT INTO server_settings (name, value) VALUES ($1, '1') ON CONFLICT (name) DO NOTHING")
            .bind(DONE)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}

fn hold(r: &AnyRow) -> Result<LegalHold, StorageError> {
    let document: Option<String> = r.try_get("document_id")?;
    Ok(LegalHold {
        id: r.try_get("id")?,
        user_id: r.try_get("user_id")?,
        record: document.map(|d| d.parse::<DocumentId>().map(|d| d.url()).unwrap_or(d)),
        reason: r.try_get("reason")?,
        placed_by: r.try_get("placed_by")?,
        placed_at: r.try_get("placed_at")?,
        released_by: r.try_get("released_by")?,
        released_at: r.try_get("released_at")?,
    })
}
