//! Sign-in and access tokens.
//!
//! Two kinds of access token reach every route through one extractor, [`Authenticated`]:
//! our own HS256 JWTs (from `/v1/auth/login`, `/v1/auth/refresh` or `fieldbook token`) and,
//! when configured, tokens from a council's identity provider (RS256, ES256, EdDSA). The
//! header's `alg` decides which verifier sees a token, and nothing else: HS256 goes to our key
//! only, so an IdP's public key can never be used as an HMAC secret.

pub mod keys;
pub mod oidc;
pub mod passwords;
pub mod routes;
pub mod throttle;
pub mod tokens;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use serde::Deserialize;

pub use keys::{KeySet, KeySource};
pub use oidc::{JwksSource, OidcConfig, OidcVerifier};
pub use routes::routes;
pub use tokens::{Claims, TokenError, TokenKeys, parse_ttl};

use crate::error::AppError;
use crate::state::AppState;
use crate::storage::User;

/// How sign-in behaves; part of [`crate::config::ServerConfig`].
#[derive(Debug, Clone)]
pub struct AuthConfig {
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    pub oidc: Option<OidcConfig>,
    /// The token-signing key file (see [`keys`]); the environment takes precedence.
    pub signing_key_file: Option<PathBuf>,
    pub trusted_proxies: Vec<IpAddr>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            access_token_ttl: Duration::from_secs(15 * 60),
            refresh_token_ttl: Duration::from_secs(30 * 86400),
            oidc: None,
            signing_key_file: None,
            trusted_proxies: Vec::new(),
        }
    }
}

/// Sign-in as the running server holds it (in [`AppState`]).
#[derive(Clone)]
pub struct AuthSettings {
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    pub oidc: Option<Arc<OidcVerifier>>,
    pub sign_in: Arc<throttle::SignInGuard>,
    /// Proxies whose `X-Forwarded-For` names the client (see [`client_address`]).
    pub trusted_proxies: Vec<IpAddr>,
}

/// Where our token-signing keys are (`fieldbook serve`, `token`, `keys`).
#[derive(clap::Args, Debug, Clone)]
pub struct KeyFileArg {
    /// The token-signing key set (JSON). Default on SQLite: signing-keys.json beside the
    /// database, created on first start. FIELDBOOK_SIGNING_KEYS (the JSON itself) wins.
    #[arg(long, env = keys::KEY_FILE_ENV)]
    pub signing_key_file: Option<PathBuf>,
}

/// `fieldbook serve` flags for sign-in.
#[derive(clap::Args, Debug, Clone)]
pub struct SignInArgs {
    /// How long an access token from /v1/auth/login or /v1/auth/refresh is valid (s, m, h, d).
    #[arg(long, env = "FIELDBOOK_ACCESS_TOKEN_TTL", default_value = "15m", value_parser = parse_ttl)]
    pub access_token_ttl: Duration,
    /// How long a refresh token is valid; each refresh issues a new one.
    #[arg(long, env = "FIELDBOOK_REFRESH_TOKEN_TTL", default_value = "30d", value_parser = parse_ttl)]
    pub refresh_token_ttl: Duration,
    /// External identity provider: the `iss` its tokens carry. Needs --oidc-audience and a JWKS.
    #[arg(long, env = "FIELDBOOK_OIDC_ISSUER")]
    pub oidc_issuer: Option<String>,
    /// The `aud` the identity provider's tokens must name (our client id there).
    #[arg(long, env = "FIELDBOOK_OIDC_AUDIENCE")]
    pub oidc_audience: Option<String>,
    /// Where the identity provider publishes its signing keys (JWKS).
    #[arg(long, env = "FIELDBOOK_OIDC_JWKS_URL", conflicts_with = "oidc_jwks_file")]
    pub oidc_jwks_url: Option<String>,
    /// The identity provider's signing keys (JWKS) in a file.
    #[arg(long, env = "FIELDBOOK_OIDC_JWKS_FILE")]
    pub oidc_jwks_file: Option<PathBuf>,
    /// The claim matched to a user's external id.
    #[arg(long, env = "FIELDBOOK_OIDC_USER_CLAIM", default_value = "sub")]
    pub oidc_user_claim: String,
    /// The claim naming the device, if the identity provider issues one.
    #[arg(long, env = "FIELDBOOK_OIDC_DEVICE_CLAIM")]
    pub oidc_device_claim: Option<String>,
    #[command(flatten)]
    pub keys: KeyFileArg,
    /// A reverse proxy (load balancer) in front of this server, by IP address: requests from
    /// it are throttled by the client its `X-Forwarded-For` names. Repeat or comma-separate.
    #[arg(long, env = "FIELDBOOK_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxy: Vec<IpAddr>,
}

impl SignInArgs {
    pub fn into_config(self) -> Result<AuthConfig, String> {
        let jwks = match (self.oidc_jwks_url, self.oidc_jwks_file) {
            (Some(url), None) => Some(JwksSource::Url(url)),
            (None, Some(path)) => Some(JwksSource::File(path)),
            (None, None) => None,
            (Some(_), Some(_)) => return Err("give --oidc-jwks-url or --oidc-jwks-file, not both".into()),
        };
        let oidc = match (self.oidc_issuer, self.oidc_audience, jwks) {
            (None, None, None) => None,
            (Some(issuer), Some(audience), Some(jwks)) => Some(OidcConfig {
                issuer,
                audience,
                jwks,
                user_claim: self.oidc_user_claim,
                device_claim: self.oidc_device_claim,
            }),
            _ => {
                return Err("an identity provider needs all of --oidc-issuer, --oidc-audience and \
                            --oidc-jwks-url (or --oidc-jwks-file)"
                    .into());
            }
        };
        Ok(AuthConfig {
            access_token_ttl: self.access_token_ttl,
            refresh_token_ttl: self.refresh_token_ttl,
            oidc,
            signing_key_file: self.keys.signing_key_file,
            trusted_proxies: self.trusted_proxy,
        })
    }
}

/// The user (and device) a request's token belongs to.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub user: User,
    pub device: Option<String>,
    /// When the token expires (Unix seconds): a sync session ends then unless renewed.
    pub expires_at: u64,
}

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let token = bearer_token(parts).or_else(|| query_token(parts)).ok_or(AppError::unauthorized(
            "missing access token: pass `Authorization: Bearer <token>` or `?token=<token>`",
        ))?;
        let authenticated = authenticate(state, &token).await?;
        crate::telemetry::record_caller(&authenticated.user.id, authenticated.device.as_deref());
        Ok(authenticated)
    }
}

/// The one check every access token goes through: signature and claims by the verifier its
/// `alg` selects, then the user (must exist and be active) and the device (not revoked).
pub async fn authenticate(state: &AppState, token: &str) -> Result<Authenticated, AppError> {
    let header = token_header(token).ok_or_else(|| AppError::unauthorized("invalid access token: not a JWT"))?;
    let (user, device, expires_at) = match header.alg.as_str() {
        "HS256" => {
            let claims = state.tokens.verify(token).map_err(|e| {
                tracing::info!(error = %e, "rejected access token");
                AppError::unauthorized(e.to_string())
            })?;
            let user =
                state.db.user(&claims.sub).await?.ok_or(AppError::unauthorized("the token's user does not exist"))?;
            (user, claims.dev, claims.exp)
        }
        "RS256" | "ES256" | "EdDSA" => {
            let Some(oidc) = &state.auth.oidc else {
                return Err(AppError::unauthorized(format!(
                    "token algorithm {} is not accepted: no identity provider is configured",
                    header.alg
                )));
            };
            let alg: Algorithm = header.alg.parse().map_err(|_| AppError::unauthorized("invalid access token"))?;
            let identity = oidc.verify(token, alg, header.kid.as_deref()).await?;
            let user = state.db.user_by_external_id(&identity.external_id).await?.ok_or_else(|| {
                tracing::info!(external_id = %identity.external_id, "identity provider token for no user");
                AppError::unauthorized("no Fieldbook user is linked to this identity")
            })?;
            (user, identity.device, identity.expires_at)
        }
        other => return Err(AppError::unauthorized(format!("token algorithm {other:?} is not accepted"))),
    };
    if !user.is_active() {
        return Err(AppError::unauthorized(format!("this account is {}", user.status)));
    }
    if let Some(device) = &device
        && state.db.device_revoked(&user.id, device).await?
    {
        return Err(AppError::DeviceRevoked);
    }
    Ok(Authenticated { user, device, expires_at })
}

#[derive(Deserialize)]
struct TokenHeader {
    alg: String,
    kid: Option<String>,
}

/// The JOSE header of a compact JWS (three base64url parts), read without verifying.
fn token_header(token: &str) -> Option<TokenHeader> {
    let mut parts = token.split('.');
    let (header, _payload, _signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).ok()?).ok()
}

/// Where a request comes from, for throttling (see [`client_address`]); `None` when the
/// server runs without connection info (in-process tests).
pub struct ClientAddress(pub Option<IpAddr>);

impl FromRequestParts<AppState> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        Ok(ClientAddress(client_address(parts, &state.auth.trusted_proxies)))
    }
}

/// The client a request comes from: the peer, or — when the peer is a trusted proxy — the
/// last address in `X-Forwarded-For` that is not one of ours.
pub fn client_address(parts: &Parts, trusted_proxies: &[IpAddr]) -> Option<IpAddr> {
    let peer = parts.extensions.get::<axum::extract::ConnectInfo<SocketAddr>>()?.0.ip();
    if !trusted_proxies.contains(&peer) {
        return Some(peer);
    }
    // Hops are appended by each proxy, so the last one not ours is the client. One that does
    // not parse ends the walk: anything before it could have been written by the client.
    let forwarded = parts.headers.get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok());
    let hops: Vec<&str> = forwarded.flat_map(|v| v.split(',')).map(str::trim).collect();
    for hop in hops.iter().rev() {
        let Some(address) = parse_hop(hop) else { return Some(peer) };
        if !trusted_proxies.contains(&address) {
            return Some(address);
        }
    }
    Some(peer)
}

/// An address as proxies write it: `203.0.113.7`, `203.0.113.7:4711`, `[2001:db8::1]:4711`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    hop.parse().ok().or_else(|| hop.parse::<SocketAddr>().ok().map(|s| s.ip()))
}

pub(crate) fn bearer_token(parts: &Parts) -> Option<String> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_addresses_name_the_last_hop_that_is_not_ours() {
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let parts = |forwarded: &str| {
            let mut request = axum::http::Request::builder().header("x-forwarded-for", forwarded).body(()).unwrap();
            request.extensions_mut().insert(axum::extract::ConnectInfo(SocketAddr::from(([10, 0, 0, 1], 5000))));
            request.into_parts().0
        };
        let client = |forwarded: &str| client_address(&parts(forwarded), &[proxy]).unwrap().to_string();
        assert_eq!(client("198.51.100.9, 203.0.113.7"), "203.0.113.7", "the client cannot choose an earlier hop");
        assert_eq!(client("203.0.113.7:4711"), "203.0.113.7");
        assert_eq!(client("[2001:db8::1]:4711, 10.0.0.1"), "2001:db8::1");
        assert_eq!(client("198.51.100.9, garbage"), "10.0.0.1", "an unreadable hop stops the walk");
        // Not from a trusted proxy: the header is ignored.
        assert_eq!(client_address(&parts("203.0.113.7"), &[]).unwrap().to_string(), "10.0.0.1");
    }

    #[test]
    fn headers_are_read_only_from_three_part_tokens() {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        assert_eq!(token_header(&format!("{header}.e30.")).unwrap().alg, "none");
        assert!(token_header(&format!("{header}.e30")).is_none());
        assert!(token_header("not-a-jwt").is_none());
        assert!(token_header("a.b.c").is_none());
    }
}
