//! Our own tokens: HS256 access tokens (JWTs signed with the database's key, `kid` = that
//! key's id) and opaque refresh tokens (random, stored only as a SHA-256 hash).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::storage::SigningKey;

/// Leeway for clock differences between devices and the server.
const LEEWAY_SECONDS: u64 = 30;

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

#[derive(Clone)]
pub struct TokenKeys {
    key_id: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl TokenKeys {
    pub fn new(key: &SigningKey) -> Self {
        Self {
            key_id: key.id.clone(),
            encoding: EncodingKey::from_secret(&key.secret),
            decoding: DecodingKey::from_secret(&key.secret),
        }
    }

    /// The id of the signing key, carried as `kid` in every token we issue.
    pub fn key_id(&self) -> &str {
        &self.key_id
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
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(self.key_id.clone());
        jsonwebtoken::encode(&header, &claims, &self.encoding)
    }

    pub fn verify(&self, token: &str) -> Result<Claims, jsonwebtoken::errors::Error> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = LEEWAY_SECONDS;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Ok(jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)?.claims)
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

    fn keys(secret: &[u8]) -> TokenKeys {
        TokenKeys::new(&SigningKey { id: "k".into(), secret: secret.to_vec() })
    }

    #[test]
    fn issued_tokens_verify_and_others_do_not() {
        let k = keys(b"0123456789abcdef0123456789abcdef");
        let token = k.issue("alice", Some("tablet-1"), Duration::from_secs(60)).unwrap();
        let claims = k.verify(&token).unwrap();
        assert_eq!((claims.sub.as_str(), claims.dev.as_deref()), ("alice", Some("tablet-1")));
        assert!(keys(b"another key entirely, 32 bytes!!").verify(&token).is_err());
        assert!(k.verify("not.a.token").is_err());
        let expired = k.issue("alice", None, Duration::ZERO).unwrap();
        // Within leeway an instant expiry still verifies; tests of real expiry use the server.
        assert!(k.verify(&expired).is_ok());
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
