//! Throttling of sign-in (password login, device login, token refresh): per user and per
//! address, shared by every node through the database, and a bound on the password hashing
//! running at once, so a flood can neither guess nor take every core.
//!
//! Each attempt is counted before it is checked (so a burst sent at once is counted at
//! once); a successful one gives its count back. The first few failures are free; after that
//! each attempt must wait twice as long as the last (1 s, 2 s, 4 s, … at most 15 minutes),
//! until 15 minutes pass without an attempt, and one sent sooner is answered 429 with
//! `Retry-After` — even with the right password. The audit trail gets one row per throttled burst, not
//! one per attempt: it is append-only and must not be floodable.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::json;
use tokio::sync::Semaphore;

use crate::error::AppError;
use crate::storage::{AuditEvent, Database, StorageError, ThrottlePolicy, Throttled, now_millis};

const WINDOW_MS: i64 = 15 * 60 * 1000;
const MAX_DELAY_MS: i64 = 15 * 60 * 1000;
/// Password checks that may wait for a core before sign-in answers "busy".
const MAX_WAITING_HASHES: usize = 64;

/// Whose failures a key counts, and how many are free.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// One user id (as typed, so unknown ids are throttled alike).
    User,
    /// One client address: many users may share one (an office), so more are free.
    Address,
}

impl Scope {
    fn policy(self) -> ThrottlePolicy {
        let free = match self {
            Scope::User => 5,
            Scope::Address => 20,
        };
        ThrottlePolicy { free, window_ms: WINDOW_MS, max_delay_ms: MAX_DELAY_MS }
    }

    fn as_str(self) -> &'static str {
        match self {
            Scope::User => "user",
            Scope::Address => "address",
        }
    }
}

/// A key in the throttle table: a hash of the scope and what it names, never what was typed.
#[derive(Debug, Clone)]
pub struct Key {
    scope: Scope,
    hash: String,
    /// The user id, kept (in memory only) to name a known user in the audit trail.
    user_id: Option<String>,
}

impl Key {
    pub fn user(user_id: &str) -> Self {
        let hash = super::tokens::secret_hash(&format!("user:{user_id}"));
        Key { scope: Scope::User, hash: format!("u:{hash}"), user_id: Some(user_id.to_owned()) }
    }

    /// An IPv4 address, or the /64 of an IPv6 one (one network hands out a whole /64).
    pub fn address(address: IpAddr) -> Self {
        let network = match address {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        };
        let hash = super::tokens::secret_hash(&format!("address:{network}"));
        Key { scope: Scope::Address, hash: format!("a:{hash}"), user_id: None }
    }
}

/// A place in the queue for a core; given up when dropped, however the wait ends.
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn enter(waiting: &'a AtomicUsize) -> Result<Self, AppError> {
        if waiting.fetch_add(1, Ordering::AcqRel) >= MAX_WAITING_HASHES {
            waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(AppError::Unavailable("sign-in is busy".into()));
        }
        Ok(Waiting(waiting))
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The attempts counted for one sign-in, to give back if it succeeds.
#[must_use]
pub struct Admitted(Vec<Key>);

pub struct SignInGuard {
    /// Keys this node knows to be throttled, until when (ms): answered without the database.
    blocked: Mutex<HashMap<String, i64>>,
    hashing: Arc<Semaphore>,
    waiting: AtomicUsize,
}

impl Default for SignInGuard {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self { blocked: Mutex::default(), hashing: Arc::new(Semaphore::new(cores)), waiting: AtomicUsize::new(0) }
    }
}

impl SignInGuard {
    /// Counts an attempt against every key, or refuses it (429) if one is throttled.
    pub async fn admit(&self, db: &Database, keys: Vec<Key>) -> Result<Admitted, AppError> {
        let now = now_millis();
        for key in &keys {
            let until = self.blocked.lock().unwrap_or_else(|p| p.into_inner()).get(&key.hash).copied();
            if let Some(until) = until.filter(|until| *until > now) {
                return Err(throttled(key.scope, until - now));
            }
        }
        // Now and then, forget keys nobody has tried for a day.
        if rand::random::<u16>() < 64 {
            let _ = db.purge_attempts(now - 24 * 3600 * 1000).await;
        }
        let mut counted = Vec::new();
        for key in keys {
            match db.count_attempt(&key.hash, key.scope.policy()).await? {
                Ok(()) => counted.push(key),
                Err(blocked) => {
                    self.remember_blocked(&key.hash, blocked.next_allowed, now);
                    if db.mark_burst_audited(&key.hash).await? {
                        self.audit_burst(db, &key, blocked).await?;
                    }
                    // Give back what this attempt counted on the other keys.
                    self.give_back(db, &counted).await;
                    return Err(throttled(key.scope, blocked.next_allowed - now));
                }
            }
        }
        Ok(Admitted(counted))
    }

    /// The attempt succeeded: the user's failures are forgotten, the address's attempt given back.
    pub async fn succeeded(&self, db: &Database, admitted: Admitted) {
        for key in admitted.0.iter().filter(|k| k.scope == Scope::User) {
            if let Err(e) = db.clear_attempts(&key.hash).await {
                tracing::warn!(error = %e, "could not clear sign-in failures");
            }
            self.blocked.lock().unwrap_or_else(|p| p.into_inner()).remove(&key.hash);
        }
        let addresses: Vec<Key> = admitted.0.into_iter().filter(|k| k.scope == Scope::Address).collect();
        self.give_back(db, &addresses).await;
    }

    /// Runs a password check when a core is free; "busy" (503) rather than an endless queue.
    /// The core is held by the check itself, so a request abandoned meanwhile (the client
    /// went away) neither frees it early nor leaves a place in the queue taken.
    pub async fn hash<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Result<T, AppError> {
        let permit = {
            let _waiting = Waiting::enter(&self.waiting)?;
            self.hashing.clone().acquire_owned().await
        };
        let permit = permit.map_err(|_| AppError::Internal("the hashing pool is closed".into()))?;
        tokio::task::spawn_blocking(move || {
            let result = work();
            drop(permit);
            result
        })
        .await
        .map_err(|e| AppError::Internal(format!("hashing task: {e}")))
    }

    fn remember_blocked(&self, key: &str, until: i64, now: i64) {
        let mut blocked = self.blocked.lock().unwrap_or_else(|p| p.into_inner());
        if blocked.len() >= 10_000 {
            blocked.retain(|_, until| *until > now);
            if blocked.len() >= 10_000 {
                blocked.clear(); // only a shortcut: the database still knows
            }
        }
        blocked.insert(key.to_owned(), until);
    }

    /// The one audit row of a throttled burst.
    async fn audit_burst(&self, db: &Database, key: &Key, blocked: Throttled) -> Result<(), StorageError> {
        let mut event = AuditEvent::new("sign-in-throttled").detail(json!({
            "scope": key.scope.as_str(),
            "failures": blocked.failures,
            "retryAfterSeconds": ((blocked.next_allowed - now_millis()).max(0) as u64).div_ceil(1000),
        }));
        // A user is named only if they exist: what was typed may be anything.
        if let Some(user_id) = &key.user_id
            && db.user(user_id).await?.is_some()
        {
            event.user_id = Some(user_id.clone());
        }
        tracing::warn!(scope = key.scope.as_str(), failures = blocked.failures, "sign-in throttled");
        db.audit(event).await
    }

    async fn give_back(&self, db: &Database, keys: &[Key]) {
        for key in keys {
            if let Err(e) = db.uncount_attempt(&key.hash).await {
                tracing::warn!(error = %e, "could not give back a sign-in attempt");
            }
        }
    }
}

fn throttled(scope: Scope, wait_ms: i64) -> AppError {
    let seconds = (wait_ms.max(0) as u64).div_ceil(1000).max(1);
    let whose = match scope {
        Scope::User => "for this user id",
        Scope::Address => "from this address",
    };
    AppError::TooManyRequests {
        detail: format!("too many failed sign-ins {whose}; try again in {seconds} s"),
        retry_after: seconds,
        code: Some("throttled"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ipv6_network_counts_as_one_address() {
        let key = |a: &str| Key::address(a.parse().unwrap()).hash;
        assert_eq!(key("2001:db8:1:2::1"), key("2001:db8:1:2:ffff::9"), "one /64");
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_ne!(key("192.0.2.1"), key("192.0.2.2"));
    }

    /// A sign-in abandoned while it waits for a core (an HTTP/2 stream reset, a timeout) gives
    /// its place back, and one abandoned while hashing keeps its core until the hash is done.
    #[tokio::test]
    async fn abandoned_password_checks_give_their_place_back() {
        let guard = Arc::new(SignInGuard::default());
        let cores = guard.hashing.available_permits();
        let (release, held) = std::sync::mpsc::channel::<()>();
        let held = Arc::new(Mutex::new(held));
        // Every core busy with a check that waits to be released.
        let mut busy = Vec::new();
        for _ in 0..cores {
            let (guard, held) = (guard.clone(), held.clone());
            busy.push(tokio::spawn(async move { guard.hash(move || held.lock().unwrap().recv().ok()).await }));
        }
        while guard.hashing.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        // 100 more wait for a core, and are abandoned.
        for _ in 0..100 {
            let waiting = guard.hash(|| ());
            let _ = tokio::time::timeout(std::time::Duration::from_millis(1), waiting).await;
        }
        assert_eq!(guard.waiting.load(Ordering::Acquire), 0, "abandoned waits left their places taken");
        // Checks abandoned mid-hash keep their cores until each hash is done.
        for task in &busy {
            task.abort();
        }
        tokio::task::yield_now().await;
        assert_eq!(guard.hashing.available_permits(), 0, "an abandoned hash gave up its core while running");
        for _ in 0..cores {
            release.send(()).unwrap();
        }
        while guard.hashing.available_permits() < cores {
            tokio::task::yield_now().await;
        }
        assert!(guard.hash(|| 1).await.is_ok());
    }
}
