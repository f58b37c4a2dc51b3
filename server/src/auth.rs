//! Access tokens: HS256 JWTs signed with the database's key, and the extractor that checks
//! them before a WebSocket upgrade (query `token=` for browsers, or `Authorization: Bearer`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::error::AppError;
use crate::state::AppState;
use crate::storage::{SigningKey, User};

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

/// The user (and device) a request's token belongs to.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub user: User,
    pub device: Option<String>,
}

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let token = bearer_token(parts).or_else(|| query_token(parts)).ok_or(AppError::unauthorized(
            "missing access token: pass `Authorization: Bearer <token>` or `?token=<token>`",
        ))?;
        let claims = state.tokens.verify(&token).map_err(|e| {
            tracing::info!(error = %e, "rejected access token");
            AppError::unauthorized("invalid or expired access token")
        })?;
        let user =
            state.db.user(&claims.sub).await?.ok_or(AppError::unauthorized("the token's user does not exist"))?;
        Ok(Authenticated { user, device: claims.dev })
    }
}

fn bearer_token(parts: &Parts) -> Option<String> {
    let value = parts.headers.get(axum::http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_owned())
}

#[derive(Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

fn query_token(parts: &Parts) -> Option<String> {
    axum::extract::Query::<TokenQuery>::try_from_uri(&parts.uri).ok()?.0.token
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
    fn ttl_parses() {
        assert_eq!(parse_ttl("8h").unwrap(), Duration::from_secs(8 * 3600));
        assert_eq!(parse_ttl("30m").unwrap(), Duration::from_secs(1800));
        assert!(parse_ttl("8 weeks").is_err());
    }
}
