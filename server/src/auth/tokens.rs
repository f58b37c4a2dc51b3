//! Our own tokens: HS256 access tokens (JWTs signed with the newest key of our key set,
//! `kid` naming it; see [`super::keys`]) and opaque refresh tokens (random, stored only as
//! a SHA-256 hash).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::keys::{KeySet, KeySource};

/// Leeway for clock differences between the server nodes that issue and check our tokens
/// (they share NTP time; a sync session ends at `exp` itself).
const LEEWAY_SECONDS: u64 = 5;
/// A token naming a key we do not know makes us read the key file again, at most this often
/// (another node may have rotated).
const UNKNOWN_KID_RELOAD_GAP: Duration = Duration::from_secs(1);

#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: String,
    /// The device the token was issued for, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dev: Option<String>,
    pub iat: u64,
    pub exp: u64,
}

/// Why a token of ours was refused.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the access token has expired")]
    Expired,
    #[error("the access token names a signing key this server does not hold")]
    UnknownKey,
    #[error("invalid access token")]
    Invalid,
}

struct Loaded {
    set: KeySet,
    signing_kid: String,
    encoding: EncodingKey,
    decoding: HashMap<String, DecodingKey>,
}

impl Loaded {
    fn of(set: KeySet) -> Result<Self, String> {
        let signing = set.signing();
        let encoding = EncodingKey::from_secret(&signing.secret_bytes()?);
        let mut decoding = HashMap::new();
        for key in &set.keys {
            decoding.insert(key.kid.clone(), DecodingKey::from_secret(&key.secret_bytes()?));
        }
        Ok(Self { signing_kid: signing.kid.clone(), set, encoding, decoding })
    }
}

/// The key set a running server signs and verifies with, read again from its file when it
/// changes (see [`TokenKeys::reload`]).
#[derive(Clone)]
pub struct TokenKeys {
    source: Option<KeySource>,
    loaded: Arc<RwLock<Arc<Loaded>>>,
    /// When a token naming an unknown key last made us read the file.
    last_unknown_kid: Arc<Mutex<Option<Instant>>>,
}

impl TokenKeys {
    pub fn load(source: KeySource) -> Result<Self, String> {
        let loaded = Loaded::of(source.load()?)?;
        Ok(Self {
            source: Some(source),
            loaded: Arc::new(RwLock::new(Arc::new(loaded))),
            last_unknown_kid: Arc::default(),
        })
    }

    /// A fixed set (tests, tools).
    pub fn from_set(set: KeySet) -> Result<Self, String> {
        let loaded = Loaded::of(set)?;
        Ok(Self { source: None, loaded: Arc::new(RwLock::new(Arc::new(loaded))), last_unknown_kid: Arc::default() })
    }

    fn current(&self) -> Arc<Loaded> {
        self.loaded.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The id of the signing key, carried as `kid` in every token we issue.
    pub fn key_id(&self) -> String {
        self.current().signing_kid.clone()
    }

    /// Reads the key file again; true if the set changed. A file that no longer parses
    /// leaves the last good set in place (and says why).
    pub fn reload(&self) -> Result<bool, String> {
        let Some(source @ KeySource::File(_)) = &self.source else { return Ok(false) };
        let set = source.load()?;
        if set == self.current().set {
            return Ok(false);
        }
        let loaded = Loaded::of(set)?;
        tracing::info!(signing = %loaded.signing_kid, keys = loaded.decoding.len(), "token-signing keys reloaded");
        *self.loaded.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(loaded);
        Ok(true)
    }

    pub fn issue(
        &self,
        user: &str,
        device: Option<&str>,
        ttl: Duration,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        let claims =
            Claims { sub: user.to_owned(), dev: device.map(str::to_owned), iat: now, exp: now + ttl.as_secs() };
        let loaded = self.current();
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(loaded.signing_kid.clone());
        jsonwebtoken::encode(&header, &claims, &loaded.encoding)
    }

    /// Verifies a token against the key its `kid` names.
    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Invalid)?;
        let kid = header.kid.ok_or(TokenError::UnknownKey)?;
        let mut loaded = self.current();
        if !loaded.decoding.contains_key(&kid) {
            let now = Instant::now();
            let due = {
                let mut last = self.last_unknown_kid.lock().unwrap_or_else(|p| p.into_inner());
                let due = last.is_none_or(|at| now.duration_since(at) >= UNKNOWN_KID_RELOAD_GAP);
                if due {
                    *last = Some(now);
                }
                due
            };
            if due && let Err(e) = self.reload() {
                tracing::warn!(error = %e, "cannot read the token-signing keys; keeping the last good set");
            }
            loaded = self.current();
        }
        let key = loaded.decoding.get(&kid).ok_or(TokenError::UnknownKey)?;
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = LEEWAY_SECONDS;
        validation.set_required_spec_claims(&["exp", "sub"]);
        jsonwebtoken::decode::<Claims>(token, key, &validation).map(|t| t.claims).map_err(|e| match e.kind() {
            ErrorKind::ExpiredSignature => TokenError::Expired,
            _ => TokenError::Invalid,
        })
    }
}

/// A new secret token (32 random bytes, base64url: refresh tokens, service-account keys) and
/// the hash to store for it.
pub fn new_secret() -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let hash = secret_hash(&token);
    (token, hash)
}

/// What the database stores for a secret token: its SHA-256, lowercase hex.
pub fn secret_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// Parses `8h`, `30m`, `90s`, `7d`.
pub fn parse_ttl(input: &str) -> Result<Duration, String> {
    let input = input.trim();
    let split = input.find(|c: char| !c.is_ascii_digit()).unwrap_or(input.len());
    let (number, unit) = input.split_at(split);
    let n: u64 = number.parse().map_err(|_| format!("bad duration {input:?}: expected e.g. 8h, 30m, 7d"))?;
    let seconds = match unit {
        "s" | "" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => return Err(format!("bad duration unit in {input:?}: use s, m, h or d")),
    };
    Ok(Duration::from_secs(n * seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_tokens_verify_and_others_do_not() {
        let k = TokenKeys::from_set(KeySet::generate()).unwrap();
        let token = k.issue("alice", Some("tablet-1"), Duration::from_secs(60)).unwrap();
        let claims = k.verify(&token).unwrap();
        assert_eq!((claims.sub.as_str(), claims.dev.as_deref()), ("alice", Some("tablet-1")));
        let other = TokenKeys::from_set(KeySet::generate()).unwrap();
        assert!(matches!(other.verify(&token), Err(TokenError::UnknownKey)));
        // The same kid with another secret: a forgery.
        let mut forged_set = KeySet::generate();
        forged_set.keys[0].kid = k.key_id();
        assert!(matches!(TokenKeys::from_set(forged_set).unwrap().verify(&token), Err(TokenError::Invalid)));
        assert!(k.verify("not.a.token").is_err());
        let expired = k.issue("alice", None, Duration::ZERO).unwrap();
        // Within leeway an instant expiry still verifies; tests of real expiry use the server.
        assert!(k.verify(&expired).is_ok());
    }

    #[test]
    fn after_a_rotation_old_tokens_verify_and_new_ones_use_the_new_key() {
        let dir = std::env::temp_dir().join(format!("fieldbook-keys-{}", uuid::Uuid::new_v4().simple()));
        let path = dir.join("signing-keys.json");
        KeySource::File(path.clone()).load_or_create().unwrap();
        let keys = TokenKeys::load(KeySource::File(path.clone())).unwrap();
        let old_token = keys.issue("alice", None, Duration::from_secs(60)).unwrap();
        let old_kid = keys.key_id();
        let set = KeySource::File(path.clone()).load().unwrap();
        super::super::keys::write(&path, &set.rotated(Duration::from_secs(3600))).unwrap();
        // Another node rotated; a token naming the new key makes this one read the file.
        let other_node = TokenKeys::load(KeySource::File(path.clone())).unwrap();
        let new_token = other_node.issue("alice", None, Duration::from_secs(60)).unwrap();
        assert!(keys.verify(&new_token).is_ok());
        assert_ne!(keys.key_id(), old_kid, "signs with the new key now");
        assert!(keys.verify(&old_token).is_ok(), "the old key still verifies its tokens");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn refresh_tokens_are_random_and_stored_hashed() {
        let (a, hash_a) = new_secret();
        let (b, _) = new_secret();
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert_eq!(hash_a, secret_hash(&a));
        assert_eq!(hash_a.len(), 64);
        assert!(!hash_a.contains(&a));
    }

    #[test]
    fn ttl_parses() {
        assert_eq!(parse_ttl("8h").unwrap(), Duration::from_secs(8 * 3600));
        assert_eq!(parse_ttl("30m").unwrap(), Duration::from_secs(1800));
        assert!(parse_ttl("8 weeks").is_err());
    }
}
