//! Built-in sign-in: `POST /v1/auth/login`, `/v1/auth/refresh`, `/v1/auth/logout`, and
//! `GET /v1/auth/me` (who the presented access token speaks for).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::passwords::{dummy_hash, verify_password};
use super::tokens::{new_secret, secret_hash};
use super::{Authenticated, ClientAddress, throttle};
use crate::error::{AppError, Problem};
use crate::state::AppState;
use crate::storage::{AuditEvent, now_millis};

/// One message for every wrong user id / password combination: no user enumeration.
const BAD_CREDENTIALS: &str = "wrong user id or password";
const MAX_ID_CHARS: usize = 200;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/auth/login", post(login))
        .route("/v1/auth/refresh", post(refresh))
        .route("/v1/auth/logout", post(logout))
        .route("/v1/auth/me", get(me))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct LoginRequest {
    user_id: String,
    password: String,
    /// The device signing in (at most 200 characters).
    #[schema(pattern = "\\S", max_length = 200)]
    device_id: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RefreshRequest {
    refresh_token: String,
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TokenResponse {
    access_token: String,
    token_type: &'static str,
    expires_in: u64,
    refresh_token: String,
    refresh_expires_in: u64,
    /// The device's storage key, on a password sign-in only (never on a refresh): it unlocks
    /// the key that encrypts the device's local copies.
    #[serde(skip_serializing_if = "Option::is_none")]
    device_key: Option<String>,
}

impl IntoResponse for TokenResponse {
    fn into_response(self) -> Response {
        ([(header::CACHE_CONTROL, "no-store")], Json(self)).into_response()
    }
}

/// Signs in with a user id and password (built-in passwords), binding the session to a device.
#[utoipa::path(post, path = "/v1/auth/login", tag = "sign-in", request_body = LoginRequest,
    responses((status = 200, body = TokenResponse), (status = 400, body = Problem), (status = 401, body = Problem, description = "Wrong user id or password"),
        (status = 429, body = Problem, description = "Too many failures from this address or for this user")))]
pub(crate) async fn login(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    body: Bytes,
) -> Result<TokenResponse, AppError> {
    let request: LoginRequest = parse(&body)?;
    let device = request.device_id.as_str();
    if device.trim().is_empty() || device.chars().count() > MAX_ID_CHARS {
        return Err(AppError::BadRequest(format!("deviceId is required, at most {MAX_ID_CHARS} characters")));
    }
    let user_id = request.user_id.as_str();
    let guard = &state.auth.sign_in;
    let mut keys = vec![throttle::Key::user(user_id)];
    keys.extend(address.map(throttle::Key::address));
    let attempt = guard.admit(&state.db, keys).await?;
    // An attempt names its user only if that user exists: what was typed for an unknown
    // user may be anything, even the password, and the audit trail keeps it forever.
    let failed = |reason: &'static str, known_user: bool| {
        let state = state.clone();
        let shown: String = user_id.chars().take(MAX_ID_CHARS).collect();
        let device = device.to_owned();
        async move {
            let event = if known_user {
                tracing::info!(user = %shown, device = %device, reason, "sign-in refused");
                AuditEvent::new("login-failed").by(&shown, Some(&device)).detail(json!({ "reason": reason }))
            } else {
                // Neither the user id nor the device id typed for an unknown user is kept:
                // both are whatever the client sent.
                tracing::info!(reason, "sign-in refused for an unknown user");
                AuditEvent::new("login-failed").detail(json!({ "reason": reason, "unknownUser": true }))
            };
            state.db.audit(event).await
        }
    };

    let user = if user_id.is_empty() || user_id.chars().count() > MAX_ID_CHARS {
        None
    } else {
        state.db.user(user_id).await?
    };
    let hash = match &user {
        Some(user) => state.db.password_hash(&user.id).await?,
        None => None,
    };
    // Always run one argon2 verification, so unknown users and users without a password
    // take as long as a wrong password.
    let password = request.password;
    let (known, hash) = match hash {
        Some(hash) => (true, hash),
        None => (false, dummy_hash().to_owned()),
    };
    let matches = guard.hash(move || verify_password(&password, &hash)).await?;
    let known_user = user.is_some();
    let Some(user) = user.filter(|_| known && matches) else {
        failed("bad-credentials", known_user).await?;
        return Err(AppError::unauthorized(BAD_CREDENTIALS));
    };
    if !user.is_active() {
        failed("account-not-active", true).await?;
        return Err(AppError::unauthorized(format!("this account is {}", user.status)));
    }
    if !state.db.device_seen(&user.id, device).await? {
        failed("device-revoked", true).await?;
        return Err(AppError::DeviceRevoked);
    }
    guard.succeeded(&state.db, attempt).await;
    let mut response = issue_session(&state, &user.id, device).await?;
    response.device_key = Some(state.db.device_storage_key(&user.id, device, &new_secret().0).await?);
    state.db.audit(AuditEvent::new("login").by(&user.id, Some(device)).detail(json!({ "method": "password" }))).await?;
    Ok(response)
}

/// A new access token (and refresh token) for a refresh token, which is used up.
#[utoipa::path(post, path = "/v1/auth/refresh", tag = "sign-in", request_body = RefreshRequest,
    responses((status = 200, body = TokenResponse), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 429, body = Problem)))]
pub(crate) async fn refresh(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    body: Bytes,
) -> Result<TokenResponse, AppError> {
    let request: RefreshRequest = parse(&body)?;
    // Refresh tokens cannot be guessed, but an address that keeps presenting bad ones is
    // throttled like a password guesser.
    let attempt =
        state.auth.sign_in.admit(&state.db, address.map(throttle::Key::address).into_iter().collect()).await?;
    let hash = secret_hash(&request.refresh_token);
    let invalid = || AppError::unauthorized("invalid refresh token: sign in again");
    let stored = state.db.refresh_token(&hash).await?.ok_or_else(invalid)?;
    let (user_id, device) = (stored.user_id.as_str(), stored.device_id.as_str());
    // Before the reuse check: revoking a device revokes its refresh tokens too, and such a
    // device must hear that it was revoked.
    if state.db.device_revoked(user_id, device).await? {
        return Err(AppError::DeviceRevoked);
    }
    if stored.revoked_at.is_some() {
        return Err(reused(&state, user_id, device).await?);
    }
    if stored.expires_at <= now_millis() {
        return Err(AppError::unauthorized("the refresh token has expired: sign in again"));
    }
    let user = state.db.user(user_id).await?.ok_or_else(invalid)?;
    if !user.is_active() {
        return Err(AppError::unauthorized(format!("this account is {}", user.status)));
    }
    let (token, new_hash) = new_secret();
    if !state.db.rotate_refresh_token(&hash, &new_hash, expires_at(&state)).await? {
        // Used by someone else between our read and our write.
        return Err(reused(&state, user_id, device).await?);
    }
    state.db.device_seen(user_id, device).await?;
    state.auth.sign_in.succeeded(&state.db, attempt).await;
    let response = token_response(&state, user_id, device, token)?;
    state.db.audit(AuditEvent::new("token-refreshed").by(user_id, Some(device))).await?;
    Ok(response)
}

/// A refresh token that was already rotated or revoked came back: it was copied. Sign the
/// device out everywhere (all its refresh tokens) and refuse.
async fn reused(state: &AppState, user_id: &str, device: &str) -> Result<AppError, AppError> {
    let revoked = state.db.revoke_device_refresh_tokens(user_id, device).await?;
    tracing::warn!(user = %user_id, device = %device, revoked, "refresh token reused; device signed out");
    state
        .db
        .audit(AuditEvent::new("refresh-token-reused").by(user_id, Some(device)).detail(json!({ "revoked": revoked })))
        .await?;
    Ok(AppError::unauthorized("this refresh token was already used; the device is signed out: sign in again"))
}

/// Ends the session the refresh token belongs to.
#[utoipa::path(post, path = "/v1/auth/logout", tag = "sign-in", request_body = RefreshRequest,
    responses((status = 204, description = "Signed out (also for a token already used up)"), (status = 400, body = Problem)))]
pub(crate) async fn logout(State(state): State<AppState>, body: Bytes) -> Result<StatusCode, AppError> {
    let request: RefreshRequest = parse(&body)?;
    let hash = secret_hash(&request.refresh_token);
    if let Some(stored) = state.db.refresh_token(&hash).await?
        && state.db.revoke_refresh_token(&hash).await?
    {
        state.db.audit(AuditEvent::new("logout").by(&stored.user_id, Some(&stored.device_id))).await?;
    }
    // Unknown and already revoked tokens get the same answer: there is nothing to undo.
    Ok(StatusCode::NO_CONTENT)
}

/// Who the access token speaks for: `{id, name, role, teamId, device}`.
#[utoipa::path(get, path = "/v1/auth/me", tag = "sign-in", security(("bearer" = [])),
    responses((status = 200, body = Me), (status = 401, body = Problem)))]
pub(crate) async fn me(auth: Authenticated) -> Json<Me> {
    Json(Me {
        id: auth.user.id,
        name: auth.user.name,
        role: auth.user.role.to_string(),
        team_id: auth.user.team_id,
        device: auth.device,
    })
}

/// Who an access token speaks for.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Me {
    id: String,
    name: String,
    role: String,
    team_id: Option<String>,
    /// The device the token is bound to.
    device: Option<String>,
}

/// Stores a new refresh token for (user, device) and issues an access token beside it.
async fn issue_session(state: &AppState, user_id: &str, device: &str) -> Result<TokenResponse, AppError> {
    let (token, hash) = new_secret();
    state.db.add_refresh_token(&hash, user_id, device, expires_at(state)).await?;
    token_response(state, user_id, device, token)
}

fn token_response(
    state: &AppState,
    user_id: &str,
    device: &str,
    refresh_token: String,
) -> Result<TokenResponse, AppError> {
    let access_token = state
        .tokens
        .issue(user_id, Some(device), state.auth.access_token_ttl)
        .map_err(|e| AppError::Internal(format!("cannot sign an access token: {e}")))?;
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: state.auth.access_token_ttl.as_secs(),
        refresh_token,
        refresh_expires_in: state.auth.refresh_token_ttl.as_secs(),
        device_key: None,
    })
}

fn expires_at(state: &AppState) -> i64 {
    now_millis().saturating_add(i64::try_from(state.auth.refresh_token_ttl.as_millis()).unwrap_or(i64::MAX))
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, AppError> {
    serde_json::from_slice(body).map_err(|e| AppError::BadRequest(format!("invalid request body: {e}")))
}
