//! External identity providers (OpenID Connect): a council's IdP signs the tokens (RS256,
//! ES256 or EdDSA), we check them against its published keys (JWKS) and map one claim to
//! `users.external_id`.
//!
//! JWKS from a URL is fetched at start, refreshed every ten minutes, and refetched when a
//! token names a key we do not know (at most once per 30 s, so unknown `kid`s cannot make us
//! hammer the IdP). A failed fetch keeps the last good set. A JWKS file is read the same way.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

use crate::error::AppError;

/// Clock skew tolerated between the IdP and us.
pub const LEEWAY_SECONDS: u64 = 60;
/// The only algorithms accepted from an identity provider.
pub const ALGORITHMS: &[Algorithm] = &[Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA];
const REFRESH_EVERY: Duration = Duration::from_secs(600);
const UNKNOWN_KID_REFETCH_GAP: Duration = Duration::from_secs(30);
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_JWKS_BYTES: u64 = 1024 * 1024;

#[derive(Debug, Clone)]
pub struct OidcConfig {
    /// Tokens must carry exactly this `iss`.
    pub issuer: String,
    /// Tokens must name this in `aud`.
    pub audience: String,
    pub jwks: JwksSource,
    /// The claim whose value is a user's `external_id` (default `sub`).
    pub user_claim: String,
    /// The claim naming the device, if the IdP issues one.
    pub device_claim: Option<String>,
}

#[derive(Debug, Clone)]
pub enum JwksSource {
    Url(String),
    File(PathBuf),
}

impl std::fmt::Display for JwksSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JwksSource::Url(url) => f.write_str(url),
            JwksSource::File(path) => write!(f, "{}", path.display()),
        }
    }
}

/// Who an IdP token speaks for: the user claim's value and the device claim's, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalIdentity {
    pub external_id: String,
    pub device: Option<String>,
    /// The token's `exp` (Unix seconds).
    pub expires_at: u64,
}

pub struct OidcVerifier {
    config: OidcConfig,
    keys: RwLock<Arc<JwkSet>>,
    /// When we last tried a fetch; held across a fetch so concurrent requests wait for it.
    last_fetch: tokio::sync::Mutex<Option<Instant>>,
}

impl OidcVerifier {
    /// Loads the key set. A JWKS file that cannot be read or parsed stops the start; an
    /// unreachable URL is logged and retried (built-in sign-in keeps working meanwhile).
    pub async fn start(config: OidcConfig) -> Result<Arc<Self>, String> {
        let verifier = Arc::new(OidcVerifier {
            config,
            keys: RwLock::new(Arc::new(JwkSet { keys: Vec::new() })),
            last_fetch: tokio::sync::Mutex::new(None),
        });
        let mut last = verifier.last_fetch.lock().await;
        match verifier.load_into_cache(&mut last).await {
            Ok(count) => tracing::info!(jwks = %verifier.config.jwks, keys = count, "identity provider keys loaded"),
            Err(e) if matches!(verifier.config.jwks, JwksSource::File(_)) => return Err(e),
            Err(e) => {
                tracing::error!(jwks = %verifier.config.jwks, error = %e, "cannot fetch the identity provider's keys; will retry")
            }
        }
        drop(last);
        Ok(verifier)
    }

    pub fn config(&self) -> &OidcConfig {
        &self.config
    }

    /// Refreshes the key set every ten minutes, until the task is aborted.
    pub async fn refresh_periodically(self: Arc<Self>) {
        let mut tick = tokio::time::interval(REFRESH_EVERY);
        tick.tick().await; // the first tick is immediate; `start` has just loaded
        loop {
            tick.tick().await;
            let mut last = self.last_fetch.lock().await;
            self.refresh_logged(&mut last).await;
        }
    }

    /// Checks an IdP token whose header says `alg` (one of [`ALGORITHMS`]) and `kid`.
    pub async fn verify(&self, token: &str, alg: Algorithm, kid: Option<&str>) -> Result<ExternalIdentity, AppError> {
        if !ALGORITHMS.contains(&alg) {
            return Err(AppError::unauthorized(format!("token algorithm {alg:?} is not accepted")));
        }
        let kid = kid.ok_or_else(|| AppError::unauthorized("the token names no signing key (kid)"))?;
        let jwk = match self.find(kid) {
            Some(jwk) => jwk,
            None => {
                self.refetch_for_unknown_kid().await;
                self.find(kid).ok_or_else(|| AppError::unauthorized(format!("unknown signing key {kid:?}")))?
            }
        };
        let key = decoding_key(&jwk, alg).map_err(AppError::unauthorized)?;
        let mut validation = Validation::new(alg);
        validation.leeway = LEEWAY_SECONDS;
        validation.validate_nbf = true;
        validation.set_issuer(&[&self.config.issuer]);
        validation.set_audience(&[&self.config.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        let claims = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation)
            .map_err(|e| {
                tracing::info!(error = %e, kid, "rejected identity provider token");
                AppError::unauthorized(describe(e.kind()))
            })?
            .claims;
        let external_id = match claims.get(&self.config.user_claim) {
            Some(Value::String(id)) if !id.is_empty() => id.clone(),
            _ => {
                return Err(AppError::unauthorized(format!(
                    "the token has no {:?} claim to identify the user",
                    self.config.user_claim
                )));
            }
        };
        let device = self
            .config
            .device_claim
            .as_ref()
            .and_then(|claim| claims.get(claim))
            .and_then(Value::as_str)
            .filter(|d| !d.is_empty())
            .map(str::to_owned);
        let expires_at = claims.get("exp").and_then(Value::as_u64).unwrap_or_default();
        Ok(ExternalIdentity { external_id, device, expires_at })
    }

    fn find(&self, kid: &str) -> Option<Jwk> {
        self.keys.read().unwrap_or_else(|e| e.into_inner()).find(kid).cloned()
    }

    /// Refetches unless a fetch happened less than 30 s ago.
    async fn refetch_for_unknown_kid(&self) {
        let mut last = self.last_fetch.lock().await;
        if last.is_some_and(|at| at.elapsed() < UNKNOWN_KID_REFETCH_GAP) {
            return;
        }
        self.refresh_logged(&mut last).await;
    }

    async fn refresh_logged(&self, last_fetch: &mut Option<Instant>) {
        if let Err(e) = self.load_into_cache(last_fetch).await {
            tracing::warn!(jwks = %self.config.jwks, error = %e, "cannot refresh the identity provider's keys; keeping the last good set");
        }
    }

    async fn load_into_cache(&self, last_fetch: &mut Option<Instant>) -> Result<usize, String> {
        *last_fetch = Some(Instant::now());
        let set = load(&self.config.jwks).await?;
        let count = set.keys.len();
        *self.keys.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(set);
        tracing::debug!(jwks = %self.config.jwks, keys = count, "identity provider keys refreshed");
        Ok(count)
    }
}

/// The verification key for `alg`, if this JWK may be used with it: the JWK's own `alg` (if
/// given) must be `alg`, its key type and curve must fit, and it must be a signing key.
fn decoding_key(jwk: &Jwk, alg: Algorithm) -> Result<DecodingKey, String> {
    let kid = jwk.common.key_id.as_deref().unwrap_or("?");
    if let Some(key_use) = &jwk.common.public_key_use
        && *key_use != PublicKeyUse::Signature
    {
        return Err(format!("signing key {kid:?} is not for signatures"));
    }
    if let Some(key_alg) = jwk.common.key_algorithm
        && key_alg.to_string() != format!("{alg:?}")
    {
        return Err(format!("signing key {kid:?} is for {key_alg}, not {alg:?}"));
    }
    let fits = match (&jwk.algorithm, alg) {
        (AlgorithmParameters::RSA(_), Algorithm::RS256) => true,
        (AlgorithmParameters::EllipticCurve(p), Algorithm::ES256) => p.curve == EllipticCurve::P256,
        (AlgorithmParameters::OctetKeyPair(p), Algorithm::EdDSA) => p.curve == EllipticCurve::Ed25519,
        _ => false,
    };
    if !fits {
        return Err(format!("signing key {kid:?} is not a key for {alg:?}"));
    }
    DecodingKey::from_jwk(jwk).map_err(|e| format!("signing key {kid:?} is unusable: {e}"))
}

fn describe(kind: &ErrorKind) -> String {
    match kind {
        ErrorKind::ExpiredSignature => "the token has expired".into(),
        ErrorKind::ImmatureSignature => "the token is not valid yet (nbf)".into(),
        ErrorKind::InvalidIssuer => "the token is from the wrong issuer".into(),
        ErrorKind::InvalidAudience => "the token is for another audience".into(),
        ErrorKind::InvalidSignature => "the token's signature is invalid".into(),
        ErrorKind::MissingRequiredClaim(claim) => format!("the token has no {claim:?} claim"),
        ErrorKind::InvalidAlgorithm => "the token's algorithm does not match its key".into(),
        _ => "invalid token".into(),
    }
}

async fn load(source: &JwksSource) -> Result<JwkSet, String> {
    let text = match source {
        JwksSource::File(path) => {
            tokio::fs::read_to_string(path).await.map_err(|e| format!("cannot read {}: {e}", path.display()))?
        }
        JwksSource::Url(url) => {
            let url = url.clone();
            tokio::task::spawn_blocking(move || fetch(&url)).await.map_err(|e| format!("fetch task failed: {e}"))??
        }
    };
    parse_jwks(&text)
}

fn fetch(url: &str) -> Result<String, String> {
    let agent: ureq::Agent = ureq::Agent::config_builder().timeout_global(Some(FETCH_TIMEOUT)).build().into();
    let mut response =
        agent.get(url).header("accept", "application/json").call().map_err(|e| format!("GET {url}: {e}"))?;
    response.body_mut().with_config().limit(MAX_JWKS_BYTES).read_to_string().map_err(|e| format!("GET {url}: {e}"))
}

/// Parses a JWKS, skipping (and logging) keys we cannot use rather than refusing the set.
pub fn parse_jwks(text: &str) -> Result<JwkSet, String> {
    #[derive(serde::Deserialize)]
    struct Raw {
        keys: Vec<Value>,
    }
    let raw: Raw = serde_json::from_str(text).map_err(|e| format!("not a JWKS: {e}"))?;
    let mut keys = Vec::new();
    for value in raw.keys {
        match serde_json::from_value::<Jwk>(value) {
            Ok(jwk) if jwk.common.key_id.is_some() => keys.push(jwk),
            Ok(_) => tracing::warn!("skipping a JWKS key without a kid"),
            Err(e) => tracing::warn!(error = %e, "skipping a JWKS key we cannot read"),
        }
    }
    if keys.is_empty() {
        return Err("the JWKS has no usable keys".into());
    }
    Ok(JwkSet { keys })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_must_fit_the_algorithm() {
        let set = parse_jwks(
            r#"{"keys": [
                {"kty":"EC","crv":"P-256","kid":"ec","alg":"ES256","use":"sig",
                 "x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
                {"kty":"EC","crv":"P-256","kid":"enc","use":"enc",
                 "x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
                {"kty":"weird","kid":"w"}
            ]}"#,
        )
        .unwrap();
        let ec = set.find("ec").unwrap();
        assert!(decoding_key(ec, Algorithm::ES256).is_ok());
        assert!(decoding_key(ec, Algorithm::RS256).unwrap_err().contains("is for ES256"));
        assert!(decoding_key(set.find("enc").unwrap(), Algorithm::ES256).unwrap_err().contains("not for signatures"));
        assert!(parse_jwks(r#"{"keys": []}"#).is_err());
        assert!(parse_jwks("nonsense").is_err());
    }

    fn ec_jwks(kid: &str) -> String {
        format!(
            r#"{{"keys": [{{"kty":"EC","crv":"P-256","kid":"{kid}","alg":"ES256",
                "x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}}]}}"#
        )
    }

    #[tokio::test]
    async fn unknown_kids_refetch_at_most_every_30_seconds() {
        let path = std::env::temp_dir().join(format!("fieldbook-jwks-{}.json", uuid::Uuid::new_v4().simple()));
        std::fs::write(&path, ec_jwks("old")).unwrap();
        let verifier = OidcVerifier::start(OidcConfig {
            issuer: "iss".into(),
            audience: "aud".into(),
            jwks: JwksSource::File(path.clone()),
            user_claim: "sub".into(),
            device_claim: None,
        })
        .await
        .unwrap();
        // The IdP rotates its key; a token naming the new one arrives right after a fetch.
        std::fs::write(&path, ec_jwks("new")).unwrap();
        let unknown = |e: AppError| e.to_string().contains("unknown signing key");
        let error = verifier.verify("a.b.c", Algorithm::ES256, Some("new")).await.unwrap_err();
        assert!(unknown(error), "no refetch within 30 s of the last");
        // 30 s later, the unknown kid triggers a refetch and the key is found (the made-up
        // token then fails on its own merits).
        *verifier.last_fetch.lock().await = Some(Instant::now() - UNKNOWN_KID_REFETCH_GAP);
        let error = verifier.verify("a.b.c", Algorithm::ES256, Some("new")).await.unwrap_err();
        assert!(!unknown(error));
        assert!(verifier.find("old").is_none());
        // A failed refresh keeps the last good set.
        std::fs::write(&path, "not json").unwrap();
        let mut last = verifier.last_fetch.lock().await;
        assert!(verifier.load_into_cache(&mut last).await.is_err());
        drop(last);
        assert!(verifier.find("new").is_some());
        let _ = std::fs::remove_file(&path);
    }
}
