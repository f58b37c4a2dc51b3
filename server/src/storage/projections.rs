//! Writing the central store: accepted changes are committed together with the projection
//! of the record they produced, in one transaction. Narrative fields are never projected.
//!
//! A batch (see `committer`) is written with one multi-row statement per table, so a batch
//! of many documents costs a handful of round trips, not a few per document.

use std::collections::{BTreeMap, HashMap};

use fieldbook_sync_core::records::{DevelopmentPlan, GroupSession, Observation, PracticeTheme, SignOff, Signature};
use fieldbook_sync_core::{DocumentId, Record};
use sqlx::{Any, Row, Transaction};

use super::committer::CommitJob;
use super::rows::{Cell, Rows};
use super::{Backend, ChunkKind, Database, MAX_PARAMETERS, StorageError, now_millis, query_in};

/// Every table a record projects into, keyed by `document_url`.
pub(super) const PROJECTION_TABLES: [&str; 13] = [
    "observations",
    "observation_components",
    "observation_judgements",
    "observation_goal_links",
    "development_plans",
    "plan_goals",
    "goal_components",
    "plan_goal_evidence",
    "group_sessions",
    "group_session_participants",
    "group_session_components",
    "practice_themes",
    "practice_theme_components",
];

impl Database {
    /// Stores a chunk and, for a record, rewrites its projection, atomically, whatever the
    /// document's version. Returns the chunk id once committed.
    pub async fn commit_changes(
        &self,
        document: DocumentId,
        kind: ChunkKind,
        chunk: &[u8],
        record: Option<&Record>,
    ) -> Result<i64, StorageError> {
        let job = CommitJob {
            document,
            expected_version: None,
            kind,
            chunk: chunk.to_vec(),
            heads: None,
            record: record.cloned(),
            new_actors: Vec::new(),
            audit: Vec::new(),
            events: Vec::new(),
        };
        match self.commit_batch(std::slice::from_ref(&job)).await?[0] {
            CommitOutcome::Committed { chunk, .. } => Ok(chunk),
            CommitOutcome::Stale => Err(StorageError::Internal("an unconditional commit found a stale version".into())),
        }
    }

    /// Commits several documents' chunks and projections in one transaction; returns each
    /// job's outcome in job order. A job judged against a version that is no longer the
    /// document's is left out ([`CommitOutcome::Stale`]); the others still commit. A batch
    /// holds each document at most once.
    pub async fn commit_batch(&self, jobs: &[CommitJob]) -> Result<Vec<CommitOutcome>, StorageError> {
        let mut tx = self.begin_write().await?;
        let outcomes = self.write_batch(&mut tx, jobs).await?;
        if outcomes.iter().all(|o| *o == CommitOutcome::Stale) {
            tx.rollback().await?;
        } else {
            tx.commit().await?;
        }
        Ok(outcomes)
    }

    /// [`Self::commit_batch`] inside a transaction the caller commits.
    pub(super) async fn write_batch(
        &self,
        tx: &mut Transaction<'static, Any>,
        jobs: &[CommitJob],
    ) -> Result<Vec<CommitOutcome>, StorageError> {
        let versions = claim_versions(tx, jobs).await?;
        let live: Vec<&CommitJob> = jobs.iter().zip(&versions).filter(|(_, v)| v.is_some()).map(|(j, _)| j).collect();
        if live.is_empty() {
            return Ok(vec![CommitOutcome::Stale; jobs.len()]);
        }
        let ids = insert_chunks(tx, &live).await?;
        let replaced: Vec<String> = live
            .iter()
            .filter(|j| j.expected_version != Some(0) && j.record.is_some())
            .map(|j| j.document.url())
            .collect();
        if !replaced.is_empty() {
            for table in PROJECTION_TABLES {
                for urls in replaced.chunks(MAX_PARAMETERS) {
                    let sql = format!("DELETE FROM {table} WHERE document_url IN (LIST)");
                    query_in(&sql, urls).execute(&mut **tx).await?;
                }
            }
        }
        let mut rows = Rows::default();
        for (job, seq) in live.iter().zip(&ids) {
            match &job.record {
                Some(Record::Observation(o)) => rows.observation(&job.document.url(), o, *seq),
                Some(Record::DevelopmentPlan(p)) => rows.plan(&job.document.url(), p, *seq),
                Some(Record::GroupSession(g)) => rows.group_session(&job.document.url(), g, *seq),
                Some(Record::PracticeTheme(t)) => rows.practice_theme(&job.document.url(), t, *seq),
                None => {}
            }
        }
        let mut bound = std::collections::HashMap::new();
        for job in &live {
            for (actor, author) in &job.new_actors {
                // The same new actor in two documents of one batch is bound once (the hub
                // checked both against the database; a clash here fails the batch).
                if bound.insert(actor, author).is_none_or(|earlier| earlier == author) {
                    super::actors::add_binding(&mut rows, actor, author, &job.document.to_string());
                } else {
                    return Err(StorageError::Internal(format!("actor {actor} sent by two users in one batch")));
                }
            }
            super::audit::add_rows(&mut rows, &job.audit);
        }
        super::feed::add_events(tx, &mut rows, &live).await?;
        rows.insert(tx).await?;
        if self.backend() == Backend::Postgres {
            let committed: Vec<(String, i64)> = jobs
                .iter()
                .zip(&versions)
                .filter_map(|(job, version)| Some((job.document.to_string(), (*version)?)))
                .collect();
            announce(tx, &committed).await?;
        }
        let mut ids = ids.into_iter();
        Ok(versions
            .into_iter()
            .map(|version| match version {
                Some(version) => CommitOutcome::Committed { chunk: ids.next().unwrap_or_default(), version },
                None => CommitOutcome::Stale,
            })
            .collect())
    }
}

/// What became of one [`CommitJob`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitOutcome {
    /// Committed as chunk `chunk`; the document is now at `version`.
    Committed { chunk: i64, version: i64 },
    /// Someone (another node) committed to the document since the version the job was
    /// judged against: nothing was written; catch up, judge again and retry.
    Stale,
}

/// Bumps each job's document version if it is still the one the job was judged against,
/// and returns the new versions (`None`: stale). The version rows stay locked until the
/// commit, so committers of one document take turns across nodes. Two statements a batch
/// however many documents it holds: one update of those that exist, listed in document
/// order, and one insert of the new ones. (Were two batches ever to lock rows in opposite
/// orders, PostgreSQL would abort one, and the committer retries its jobs one by one.)
async fn claim_versions(
    tx: &mut Transaction<'static, Any>,
    jobs: &[CommitJob],
) -> Result<Vec<Option<i64>>, StorageError> {
    let mut order: Vec<(String, usize)> = jobs.iter().enumerate().map(|(i, j)| (j.document.to_string(), i)).collect();
    order.sort();
    let index: HashMap<&str, usize> = order.iter().map(|(id, i)| (id.as_str(), *i)).collect();
    let mut versions = vec![None; jobs.len()];
    let mut claimed = |rows: Vec<sqlx::any::AnyRow>| -> Result<(), StorageError> {
        for row in rows {
            let id: String = row.try_get("document_id")?;
            if let Some(i) = index.get(id.as_str()) {
                versions[*i] = Some(row.try_get("version")?);
            }
        }
        Ok(())
    };
    let (mut existing, mut new, mut any) = (Vec::new(), Vec::new(), Vec::new());
    for (id, i) in &order {
        let heads = jobs[*i].heads.as_deref().map(super::documents::encode_heads);
        match jobs[*i].expected_version {
            Some(0) => new.push((id.as_str(), heads)),
            Some(version) => existing.push((id.as_str(), version, heads)),
            None => any.push((id.as_str(), heads)),
        }
    }
    for part in existing.chunks(MAX_PARAMETERS / 3) {
        let n = part.len();
        let ids: Vec<String> = (1..=n).map(|k| format!("${k}")).collect();
        let pairs: Vec<String> = (1..=n).map(|k| format!("(${k}, ${})", n + k)).collect();
        let heads: Vec<String> = (1..=n).map(|k| format!("WHEN ${k} THEN ${}", 2 * n + k)).collect();
        // The plain `IN` list lets the primary key find the rows.
        let sql = format!(
            "UPDATE document_versions SET version = version + 1, heads = CASE document_id {} END
             WHERE document_id IN ({}) AND (document_id, version) IN (VALUES {})
             RETURNING document_id, version",
            heads.join(" "),
            ids.join(", "),
            pairs.join(", ")
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (id, _, _) in part {
            query = query.bind(*id);
        }
        for (_, version, _) in part {
            query = query.bind(*version);
        }
        for (_, _, heads) in part {
            query = query.bind(heads.clone());
        }
        claimed(query.fetch_all(&mut **tx).await?)?;
    }
    // A document created at once through two nodes: the second insert waits for the first
    // and then finds it there, so that job is stale and is judged again.
    for part in new.chunks(MAX_PARAMETERS / 2) {
        let values: Vec<String> = (1..=part.len()).map(|k| format!("(${}, 1, ${})", 2 * k - 1, 2 * k)).collect();
        let sql = format!(
            "INSERT INTO document_versions (document_id, version, heads) VALUES {}
             ON CONFLICT (document_id) DO NOTHING
             RETURNING document_id, version",
            values.join(", ")
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (id, heads) in part {
            query = query.bind(*id).bind(heads.clone());
        }
        claimed(query.fetch_all(&mut **tx).await?)?;
    }
    // Unconditional writes (tools and tests): whatever the version is.
    for (id, heads) in any {
        let query = sqlx::query(
            "INSERT INTO document_versions (document_id, version, heads) VALUES ($1, 1, $2)
             ON CONFLICT (document_id) DO UPDATE SET version = document_versions.version + 1, heads = $2
             RETURNING document_id, version",
        )
        .bind(id)
        .bind(heads);
        claimed(query.fetch_all(&mut **tx).await?)?;
    }
    Ok(versions)
}

/// Tells the other nodes which documents this batch committed, at commit (PostgreSQL's
/// `NOTIFY` is sent only if the transaction commits): one notice per batch, not one per
/// document, split to stay under PostgreSQL's 8,000-byte payload limit. See `crate::cluster`.
async fn announce(tx: &mut Transaction<'static, Any>, committed: &[(String, i64)]) -> Result<(), StorageError> {
    const MAX_PAYLOAD: usize = 7_000;
    let at = now_millis();
    let mut payload = String::new();
    for (i, (document, version)) in committed.iter().enumerate() {
        if payload.is_empty() {
            payload = format!("d {at}");
        }
        payload.push_str(&format!(" {document}:{version}"));
        if payload.len() > MAX_PAYLOAD || i + 1 == committed.len() {
            sqlx::query("SELECT pg_notify('fieldbook', $1)")
                .bind(std::mem::take(&mut payload))
                .execute(&mut **tx)
                .await?;
        }
    }
    Ok(())
}

/// One multi-row insert for the batch's chunks; ids come back matched by document.
async fn insert_chunks(tx: &mut Transaction<'static, Any>, jobs: &[&CommitJob]) -> Result<Vec<i64>, StorageError> {
    let now = now_millis();
    let mut by_document = BTreeMap::new();
    for part in jobs.chunks(MAX_PARAMETERS / 4) {
        let placeholders: Vec<String> = (0..part.len())
            .map(|r| format!("(${}, ${}, ${}, ${})", 4 * r + 1, 4 * r + 2, 4 * r + 3, 4 * r + 4))
            .collect();
        let sql = format!(
            "INSERT INTO document_chunks (document_id, kind, data, created_at) VALUES {} RETURNING id, document_id",
            placeholders.join(", ")
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for job in part {
            query = query.bind(job.document.to_string()).bind(job.kind.as_str()).bind(job.chunk.as_slice()).bind(now);
        }
        for row in query.fetch_all(&mut **tx).await? {
            by_document.insert(row.try_get::<String, _>("document_id")?, row.try_get::<i64, _>("id")?);
        }
    }
    jobs.iter()
        .map(|j| {
            by_document
                .get(&j.document.to_string())
                .copied()
                .ok_or_else(|| StorageError::Internal(format!("no chunk id came back for {}", j.document)))
        })
        .collect()
}

impl Rows {
    fn observation(&mut self, url: &str, o: &Observation, seq: i64) {
        let signed = |s: fn(&SignOff) -> &Option<Signature>| {
            o.sign_off.as_ref().and_then(|x| s(x).as_ref()).map(|sig| sig.at.clone())
        };
        self.add(
            "observations",
            &[
                "document_url",
                "practitioner_id",
                "observer_id",
                "observed_at",
                "setting",
                "framework",
                "status",
                "consent_given",
                "consent_withdrawn_at",
                "feedback_given_at",
                "observer_signed_off_at",
                "practitioner_signed_off_at",
                "locked",
                "change_seq",
                "updated_at",
            ],
            vec![
                url.into(),
                (&o.practitioner_id).into(),
                (&o.observer_id).into(),
                (&o.observed_at).into(),
                (&o.setting).into(),
                (&o.framework).into(),
                (&o.status).into(),
                Cell::OptInt(o.consent.as_ref().and_then(|c| c.given).map(i64::from)),
                Cell::OptText(o.consent.as_ref().and_then(|c| c.withdrawn_at.clone())),
                (&o.feedback_given_at).into(),
                Cell::OptText(signed(|s| &s.observer)),
                Cell::OptText(signed(|s| &s.practitioner)),
                i64::from(o.is_locked()).into(),
                seq.into(),
                now_millis().into(),
            ],
        );
        for component in sorted_unique(o.components.iter()) {
            self.add(
                "observation_components",
                &["document_url", "component_id", "change_seq"],
                vec![url.into(), component.into(), seq.into()],
            );
        }
        for (component, judgement) in &o.judgements {
            self.add(
                "observation_judgements",
                &["document_url", "component_id", "judgement", "change_seq"],
                vec![url.into(), component.into(), judgement.into(), seq.into()],
            );
        }
        for goal in sorted_unique(o.actions.iter().filter_map(|a| a.goal_id.as_ref())) {
            self.add(
                "observation_goal_links",
                &["document_url", "goal_id", "change_seq"],
                vec![url.into(), goal.into(), seq.into()],
            );
        }
    }

    fn plan(&mut self, url: &str, p: &DevelopmentPlan, seq: i64) {
        let period = p.period.clone().unwrap_or_default();
        self.add(
            "development_plans",
            &[
                "document_url",
                "owner_id",
                "supervisor_id",
                "framework",
                "period_from",
                "period_to",
                "source",
                "status",
                "change_seq",
                "updated_at",
            ],
            vec![
                url.into(),
                (&p.owner_id).into(),
                (&p.supervisor_id).into(),
                (&p.framework).into(),
                (&period.from).into(),
                (&period.to).into(),
                (&p.source).into(),
                (&p.status).into(),
                seq.into(),
                now_millis().into(),
            ],
        );
        let mut seen = std::collections::BTreeSet::new();
        for (position, goal) in p.goals.iter().enumerate() {
            if !seen.insert(&goal.id) {
                continue; // validation refuses duplicate ids; never project one twice
            }
            self.add(
                "plan_goals",
                &["document_url", "goal_id", "position", "status", "target_date", "completed_at", "change_seq"],
                vec![
                    url.into(),
                    (&goal.id).into(),
                    (position as i64).into(),
                    (&goal.status).into(),
                    (&goal.target_date).into(),
                    (&goal.completed_at).into(),
                    seq.into(),
                ],
            );
            for component in sorted_unique(goal.components.iter()) {
                self.add(
                    "goal_components",
                    &["document_url", "goal_id", "component_id", "change_seq"],
                    vec![url.into(), (&goal.id).into(), component.into(), seq.into()],
                );
            }
            // Evidence may be written as a URL with heads; the projection keys on the document.
            let evidence: Vec<String> = goal
                .evidence
                .iter()
                .map(|e| DocumentId::parse_url_or_id(e).map(|d| d.url()).unwrap_or_else(|_| e.clone()))
                .collect();
            for observation in sorted_unique(evidence.iter()) {
                self.add(
                    "plan_goal_evidence",
                    &["document_url", "goal_id", "observation_url", "change_seq"],
                    vec![url.into(), (&goal.id).into(), observation.into(), seq.into()],
                );
            }
        }
    }
}

impl Rows {
    fn group_session(&mut self, url: &str, g: &GroupSession, seq: i64) {
        self.add(
            "group_sessions",
            &[
                "document_url",
                "facilitator_id",
                "participant_ids",
                "held_at",
                "kind",
                "framework",
                "status",
                "closed_at",
                "locked",
                "change_seq",
                "updated_at",
            ],
            vec![
                url.into(),
                (&g.facilitator_id).into(),
                Cell::Text(g.participant_ids.join(" ")),
                (&g.held_at).into(),
                (&g.kind).into(),
                (&g.framework).into(),
                (&g.status).into(),
                (&g.closed_at).into(),
                i64::from(g.status == "closed").into(),
                seq.into(),
                now_millis().into(),
            ],
        );
        for participant in sorted_unique(g.participant_ids.iter()) {
            let reflected = g.reflections.get(participant).is_some_and(|r| !r.trim().is_empty());
            self.add(
                "group_session_participants",
                &["document_url", "user_id", "reflected", "change_seq"],
                vec![url.into(), participant.into(), i64::from(reflected).into(), seq.into()],
            );
        }
        for component in sorted_unique(g.components.iter()) {
            self.add(
                "group_session_components",
                &["document_url", "component_id", "change_seq"],
                vec![url.into(), component.into(), seq.into()],
            );
        }
    }

    fn practice_theme(&mut self, url: &str, t: &PracticeTheme, seq: i64) {
        self.add(
            "practice_themes",
            &[
                "document_url",
                "raised_by",
                "raised_at",
                "team",
                "category",
                "framework",
                "status",
                "response_count",
                "locked",
                "change_seq",
                "updated_at",
            ],
            vec![
                url.into(),
                (&t.raised_by).into(),
                (&t.raised_at).into(),
                (&t.team).into(),
                (&t.category).into(),
                (&t.framework).into(),
                (&t.status).into(),
                (t.responses.len() as i64).into(),
                i64::from(t.status == "closed").into(),
                seq.into(),
                now_millis().into(),
            ],
        );
        for component in sorted_unique(t.components.iter()) {
            self.add(
                "practice_theme_components",
                &["document_url", "component_id", "change_seq"],
                vec![url.into(), component.into(), seq.into()],
            );
        }
    }
}

fn sorted_unique<'a>(items: impl Iterator<Item = &'a String>) -> Vec<&'a String> {
    let mut items: Vec<&String> = items.collect();
    items.sort();
    items.dedup();
    items
}
