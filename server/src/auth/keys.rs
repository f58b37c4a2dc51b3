//! The keys that sign our access tokens (HS256), kept out of the database: whoever can read
//! a key can mint any user's token, so a database dump, replica or backup must not carry one.
//!
//! A key set is JSON, `{"keys": [{"kid", "secret", "createdAt"}, …]}` (secrets base64url, at
//! least 32 bytes). The newest key signs; every key in the set verifies tokens naming its
//! `kid`, so after a rotation the old key keeps verifying the tokens it signed until they
//! expire. The set comes from, in order:
//! 1. the environment variable `FIELDBOOK_SIGNING_KEYS` (the JSON itself);
//! 2. the file `--signing-key-file` / `FIELDBOOK_SIGNING_KEY_FILE`;
//! 3. on SQLite, `signing-keys.json` beside the database file, created on first start.
//!
//! PostgreSQL deployments name a file or set the variable: several nodes must share one set.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use serde::{Deserialize, Serialize};

pub const KEYS_ENV: &str = "FIELDBOOK_SIGNING_KEYS";
pub const KEY_FILE_ENV: &str = "FIELDBOOK_SIGNING_KEY_FILE";
const DEFAULT_FILE_NAME: &str = "signing-keys.json";
const MIN_SECRET_BYTES: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SigningKey {
    pub kid: String,
    /// base64url, no padding.
    pub secret: String,
    /// RFC 3339.
    pub created_at: String,
}

impl SigningKey {
    pub fn secret_bytes(&self) -> Result<Vec<u8>, String> {
        let bytes = URL_SAFE_NO_PAD
            .decode(self.secret.trim_end_matches('='))
            .map_err(|_| format!("key {:?}: the secret is not base64url", self.kid))?;
        if bytes.len() < MIN_SECRET_BYTES {
            return Err(format!("key {:?}: the secret must be at least {MIN_SECRET_BYTES} bytes", self.kid));
        }
        Ok(bytes)
    }

    fn generate() -> Self {
        let mut secret = [0u8; 32];
        rand::rng().fill_bytes(&mut secret);
        let now = time::OffsetDateTime::now_utc();
        let mut id = [0u8; 4];
        rand::rng().fill_bytes(&mut id);
        let kid = format!("k{}-{}", now.unix_timestamp(), id.iter().map(|b| format!("{b:02x}")).collect::<String>());
        Self { kid, secret: URL_SAFE_NO_PAD.encode(secret), created_at: rfc3339(now) }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeySet {
    pub keys: Vec<SigningKey>,
}

impl KeySet {
    /// A set of one new key.
    pub fn generate() -> Self {
        Self { keys: vec![SigningKey::generate()] }
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let set: KeySet = serde_json::from_str(text).map_err(|e| format!("not a key set: {e}"))?;
        if set.keys.is_empty() {
            return Err("the key set holds no key".into());
        }
        for (i, key) in set.keys.iter().enumerate() {
            key.secret_bytes()?;
            if key.kid.is_empty() || set.keys[..i].iter().any(|k| k.kid == key.kid) {
                return Err(format!("key ids must be present and unique ({:?})", key.kid));
            }
            time::OffsetDateTime::parse(&key.created_at, &time::format_description::well_known::Rfc3339)
                .map_err(|_| format!("key {:?}: createdAt is not an RFC 3339 date-time", key.kid))?;
        }
        Ok(set)
    }

    /// The key that signs: the newest (the last of equals).
    pub fn signing(&self) -> &SigningKey {
        let newest = self.keys.iter().map(created).max().unwrap_or(0);
        self.keys.iter().rev().find(|k| created(k) == newest).expect("a key set holds a key")
    }

    /// Adds a new signing key, and drops keys that stopped signing more than `retire_after`
    /// ago (every token they signed has long expired).
    pub fn rotated(&self, retire_after: Duration) -> Self {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let mut keys = self.keys.clone();
        keys.sort_by_key(created);
        let superseded_at: Vec<i64> = keys.iter().skip(1).map(created).chain([now]).collect();
        let kept = keys
            .into_iter()
            .zip(superseded_at)
            .filter(|(_, superseded)| now - superseded <= retire_after.as_secs() as i64)
            .map(|(key, _)| key);
        Self { keys: kept.chain([SigningKey::generate()]).collect() }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a key set serialises")
    }
}

fn created(key: &SigningKey) -> i64 {
    time::OffsetDateTime::parse(&key.created_at, &time::format_description::well_known::Rfc3339)
        .map(|t| t.unix_timestamp())
        .unwrap_or(0)
}

fn rfc3339(at: time::OffsetDateTime) -> String {
    at.replace_nanosecond(0)
        .unwrap_or(at)
        .format(&time::format_description::well_known::Rfc3339)
        .expect("formatting a UTC time")
}

/// Where a server's keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// [`KEYS_ENV`], read once at start.
    Env(String),
    /// A file; read again when it changes, so a rotation needs no restart.
    File(PathBuf),
}

impl KeySource {
    /// The environment first, then `file`, then (for SQLite only) the file beside the
    /// database, which is created with one new key (readable by its owner only) on first
    /// start. A file that is named but missing is an error, never made up: several nodes
    /// minting keys of their own would refuse each other's tokens.
    pub fn resolve(file: Option<PathBuf>, database_url: &str) -> Result<Self, String> {
        if let Ok(keys) = std::env::var(KEYS_ENV)
            && !keys.trim().is_empty()
        {
            return Ok(KeySource::Env(keys));
        }
        if let Some(file) = file {
            return Ok(KeySource::File(file));
        }
        let Some(default) = default_file(database_url) else {
            return Err(format!(
                "no token-signing keys: several nodes on PostgreSQL must share them, so give \
                 --signing-key-file (or {KEY_FILE_ENV}) or {KEYS_ENV}; `fieldbook keys rotate \
                 --signing-key-file PATH` makes a file"
            ));
        };
        if !default.exists() {
            create_new(&default, &KeySet::generate())?;
        }
        Ok(KeySource::File(default))
    }

    /// Reads the set.
    pub fn load(&self) -> Result<KeySet, String> {
        match self {
            KeySource::Env(text) => KeySet::parse(text).map_err(|e| format!("{KEYS_ENV}: {e}")),
            KeySource::File(path) => match std::fs::read_to_string(path) {
                Ok(text) => KeySet::parse(&text).map_err(|e| format!("{}: {e}", path.display())),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(format!(
                    "{} does not exist; make it with `fieldbook keys rotate --signing-key-file {}`",
                    path.display(),
                    path.display()
                )),
                Err(e) => Err(format!("{}: {e}", path.display())),
            },
        }
    }

    /// Reads the set, first making a file with one new key if there is none (tools, tests).
    /// Two processes doing so at once agree on one file.
    pub fn load_or_create(&self) -> Result<KeySet, String> {
        if let KeySource::File(path) = self
            && !path.exists()
        {
            create_new(path, &KeySet::generate())?;
        }
        self.load()
    }
}

/// `signing-keys.json` beside a SQLite database file; `None` for other databases.
pub fn default_file(database_url: &str) -> Option<PathBuf> {
    let path = database_url.strip_prefix("sqlite://").or_else(|| database_url.strip_prefix("sqlite:"))?;
    let path = Path::new(path.split('?').next().unwrap_or_default());
    if path.as_os_str().is_empty() || path == Path::new(":memory:") {
        return None;
    }
    Some(path.parent().unwrap_or(Path::new("")).join(DEFAULT_FILE_NAME))
}

/// Writes `set` to `path` atomically, replacing what is there (for rotation).
pub fn write(path: &Path, set: &KeySet) -> Result<(), String> {
    let temp = temp_beside(path, set)?;
    std::fs::rename(&temp, path).map_err(|e| format!("{}: {e}", path.display()))
}

/// Writes `set` to `path` unless a file is there already (then that one stands).
fn create_new(path: &Path, set: &KeySet) -> Result<(), String> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let temp = temp_beside(path, set)?;
    let linked = std::fs::hard_link(&temp, path);
    let _ = std::fs::remove_file(&temp);
    match linked {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

fn temp_beside(path: &Path, set: &KeySet) -> Result<PathBuf, String> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or(DEFAULT_FILE_NAME);
    let temp = path.with_file_name(format!(".{name}.{}", uuid::Uuid::new_v4().simple()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&temp).map_err(|e| format!("{}: {e}", temp.display()))?;
    file.write_all(set.to_json().as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("{}: {e}", temp.display()))?;
    Ok(temp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_adds_a_signing_key_and_retires_long_superseded_ones() {
        let mut old = KeySet::generate();
        old.keys[0].created_at = "2020-01-01T00:00:00Z".into();
        let mut middle = SigningKey::generate();
        middle.created_at = "2020-06-01T00:00:00Z".into();
        old.keys.push(middle.clone());
        let rotated = old.rotated(Duration::from_secs(86_400));
        // The first was superseded in 2020: gone. The second signed until now: kept.
        assert_eq!(rotated.keys.len(), 2);
        assert_eq!(rotated.keys[0], middle);
        assert_ne!(rotated.signing().kid, middle.kid);
        assert_eq!(KeySet::parse(&rotated.to_json()).unwrap(), rotated);
    }

    #[test]
    fn weak_or_malformed_sets_are_refused() {
        assert!(KeySet::parse(r#"{"keys": []}"#).is_err());
        let short = r#"{"keys": [{"kid": "a", "secret": "c2hvcnQ", "createdAt": "2026-01-01T00:00:00Z"}]}"#;
        assert!(KeySet::parse(short).unwrap_err().contains("at least 32 bytes"));
        let mut twice = KeySet::generate();
        twice.keys.push(twice.keys[0].clone());
        assert!(KeySet::parse(&twice.to_json()).unwrap_err().contains("unique"));
    }

    #[test]
    fn sqlite_databases_keep_keys_beside_them_and_postgres_must_say() {
        assert_eq!(default_file("sqlite:data/fb.sqlite?mode=rwc"), Some(PathBuf::from("data/signing-keys.json")));
        assert_eq!(default_file("postgres://db/fieldbook"), None);
    }
}
