//! Sign-in attempts per key (a user, an address), shared by every node on the database.
//! Counting an attempt is one statement, so attempts arriving at once — on one node or
//! several — are each counted, and each sees the others'.

use sqlx::Row;

use super::{Database, StorageError, now_millis};

/// How a key's attempts are throttled.
#[derive(Debug, Clone, Copy)]
pub struct ThrottlePolicy {
    /// Failures before delays start.
    pub free: i64,
    /// A key is forgotten once this long passes without an attempt.
    pub window_ms: i64,
    /// The longest wait between attempts.
    pub max_delay_ms: i64,
}

/// A throttled key: when it may try again, and how many failures it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled {
    pub next_allowed: i64,
    pub failures: i64,
}

impl Database {
    /// Counts an attempt on `key`, unless it must wait (then `Err` says until when). After
    /// `free` failures, each attempt must wait twice as long as the last (one second first, at
    /// most `max_delay_ms`), until the window passes without an attempt.
    pub async fn count_attempt(
        &self,
        key: &str,
        policy: ThrottlePolicy,
    ) -> Result<Result<(), Throttled>, StorageError> {
        let now = now_millis();
        let reset = "sign_in_throttle.last_attempt <= $3";
        let sql = format!(
            "INSERT INTO sign_in_throttle (key, failures, last_attempt, next_allowed, delay_ms, burst_audited)
             VALUES ($1, 1, $2, $2, 0, 0)
             ON CONFLICT (key) DO UPDATE SET
                 failures = CASE WHEN {reset} THEN 1 ELSE sign_in_throttle.failures + 1 END,
                 last_attempt = $2,
                 delay_ms = {delay},
                 next_allowed = $2 + {delay},
                 burst_audited = CASE WHEN {reset} THEN 0 ELSE sign_in_throttle.burst_audited END
             WHERE {reset} OR sign_in_throttle.failures < $4 OR sign_in_throttle.next_allowed <= $2
             RETURNING failures",
            delay = format!(
                "CASE WHEN {reset} OR sign_in_throttle.failures + 1 < $4 THEN 0
                      WHEN sign_in_throttle.delay_ms = 0 THEN 1000
                      WHEN sign_in_throttle.delay_ms * 2 > $5 THEN $5
                      ELSE sign_in_throttle.delay_ms * 2 END"
            ),
        );
        let counted = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(key)
            .bind(now)
            .bind(now - policy.window_ms)
            .bind(policy.free)
            .bind(policy.max_delay_ms)
            .fetch_optional(self.pool())
            .await?;
        if counted.is_some() {
            return Ok(Ok(()));
        }
        let row = sqlx::query("SELECT failures, next_allowed FROM sign_in_throttle WHERE key = $1")
            .bind(key)
            .fetch_one(self.pool())
            .await?;
        Ok(Err(Throttled { next_allowed: row.try_get("next_allowed")?, failures: row.try_get("failures")? }))
    }

    /// Marks `key`'s current throttled burst as audited; true for the one caller (on any
    /// node) that marks it first.
    pub async fn mark_burst_audited(&self, key: &str) -> Result<bool, StorageError> {
        let done = sqlx::query("UPDATE sign_in_throttle SET burst_audited = 1 WHERE key = $1 AND burst_audited = 0")
            .bind(key)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Gives back one counted attempt (it succeeded).
    pub async fn uncount_attempt(&self, key: &str) -> Result<(), StorageError> {
        sqlx::query("UPDATE sign_in_throttle SET failures = failures - 1 WHERE key = $1 AND failures > 0")
            .bind(key)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Forgets keys with no attempt since `before` (Unix ms).
    pub async fn purge_attempts(&self, before: i64) -> Result<u64, StorageError> {
        let done = sqlx::query("DELETE FROM sign_in_throttle WHERE last_attempt < $1")
            .bind(before)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected())
    }

    /// Forgets `key`'s attempts (a successful sign-in as that user).
    pub async fn clear_attempts(&self, key: &str) -> Result<(), StorageError> {
        sqlx::query("DELETE FROM sign_in_throttle WHERE key = $1").bind(key).execute(self.pool()).await?;
        Ok(())
    }
}
