//! Signing this device in: `login` trades a password for an access token and a refresh token
//! (kept in the store's settings with the server and the device id); `sync` uses them when no
//! `--token` is given, refreshing them when the access token has expired or the server
//! refuses it. A server that says the device was revoked (`"wipe": true` or the
//! `fieldbook-wipe` header) ends the command with a `device revoked` error.

use std::io::{BufRead, IsTerminal, Write};
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::http::{HeaderMap, Response};

use crate::store::Store;

const SERVER: &str = "session.server";
const USER: &str = "session.user";
const DEVICE: &str = "session.device";
const ACCESS_TOKEN: &str = "session.access_token";
const ACCESS_EXPIRES_AT: &str = "session.access_expires_at";
const REFRESH_TOKEN: &str = "session.refresh_token";
const TOKENS: &[&str] = &[ACCESS_TOKEN, ACCESS_EXPIRES_AT, REFRESH_TOKEN];
/// Refresh a little before the access token expires, for clock differences and slow links.
const EXPIRY_MARGIN_SECS: u64 = 30;
const WIPE_HEADER: &str = "fieldbook-wipe";

/// The server refused a token (HTTP 401); `wipe` if it said this device was revoked.
#[derive(Debug)]
pub struct TokenRefused {
    pub wipe: bool,
}

impl std::fmt::Display for TokenRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.wipe {
            f.write_str("device revoked: the server refused this device (401) and asks it to delete its local data")
        } else {
            f.write_str(
                "the server refused the token (401): sign in with `fieldbook-device login`, or get a fresh one with `fieldbook token`",
            )
        }
    }
}

impl std::error::Error for TokenRefused {}

/// The error for a 401 answer to the WebSocket upgrade.
pub fn refused(response: &Response<Option<Vec<u8>>>) -> anyhow::Error {
    let body = response.body().as_deref().and_then(|b| serde_json::from_slice::<Value>(b).ok());
    TokenRefused { wipe: says_wipe(response.headers(), body.as_ref()) }.into()
}

fn says_wipe(headers: &HeaderMap, body: Option<&Value>) -> bool {
    headers.contains_key(WIPE_HEADER) || body.is_some_and(|b| b["wipe"] == Value::Bool(true))
}

/// The server and access token a sync uses.
pub struct Session {
    pub server: String,
    pub token: String,
    /// From `login` (so it can be refreshed), not from `--token`.
    stored: bool,
    retried: bool,
}

impl Session {
    /// `--token` (with `--server` or the signed-in server) if given, else the stored
    /// sign-in, refreshed first if its access token has expired.
    pub async fn resolve(store: &Store, server: Option<String>, token: Option<String>) -> anyhow::Result<Self> {
        let stored_server = store.setting(SERVER).await?;
        if let Some(token) = token {
            let server = server.or(stored_server).context("--server is required (or sign in with `login`)")?;
            return Ok(Session { server, token, stored: false, retried: false });
        }
        let (Some(stored_server), Some(token)) = (stored_server, store.setting(ACCESS_TOKEN).await?) else {
            bail!("this device is not signed in: run `fieldbook-device login`, or pass --token");
        };
        if let Some(server) = &server
            && base_url(server)? != base_url(&stored_server)?
        {
            bail!("this device is signed in to {stored_server}, not {server}: run `fieldbook-device login` again");
        }
        let mut session = Session { server: stored_server, token, stored: true, retried: false };
        let expires_at: u64 = store.setting(ACCESS_EXPIRES_AT).await?.and_then(|s| s.parse().ok()).unwrap_or(0);
        if now_secs() + EXPIRY_MARGIN_SECS >= expires_at {
            session.token = refresh(store, &session.server).await?;
        }
        Ok(session)
    }

    /// For a stored sign-in, how to renew the sync session before its token expires.
    pub fn renewal<'a>(&'a self, store: &'a Store) -> Option<Renewal<'a>> {
        self.stored.then_some(Renewal { store, server: &self.server })
    }

    /// After a failed attempt: true if the server refused a stored token (or ended the
    /// session when it expired) and we have now refreshed it, so the attempt is worth one
    /// retry (only one).
    pub async fn retry_after<T>(&mut self, store: &Store, result: &anyhow::Result<T>) -> anyhow::Result<bool> {
        let Err(e) = result else { return Ok(false) };
        // One more try with a fresh token, even if this one was refreshed just before: a very
        // short-lived token can expire on the way (refused at the upgrade, or the session
        // ended at its expiry).
        let refused = e.downcast_ref::<TokenRefused>().is_some_and(|r| !r.wipe)
            || e.downcast_ref::<crate::sync::SessionExpired>().is_some();
        if !refused || !self.stored || self.retried {
            return Ok(false);
        }
        self.retried = true;
        self.token = refresh(store, &self.server).await?;
        Ok(true)
    }
}

/// `fieldbook-device login`: reads the password from stdin (first line). The server's device
/// key then also wraps the store's data key (see `vault`); a store whose passphrase was
/// forgotten (`locked`) is unlocked by it and wrapped under the passphrase given now.
pub async fn login(
    store: &mut Store,
    server: &str,
    user: &str,
    device: Option<String>,
    locked: bool,
) -> anyhow::Result<String> {
    let base = base_url(server)?;
    let device = match device {
        Some(device) => device,
        None if locked => anyhow::bail!(
            "this store is locked (the passphrase is not right): sign in with --device and this device's id to choose a new passphrase"
        ),
        None => match store.setting(DEVICE).await? {
            Some(device) => device,
            None => format!("device-{}", store.storage_id().await?),
        },
    };
    let password = read_password()?;
    let reply =
        post(format!("{base}/v1/auth/login"), json!({ "userId": user, "password": password, "deviceId": device }))
            .await?;
    let tokens = expect_ok(reply, "sign-in")?;
    let device_key = tokens["deviceKey"].as_str().context("the server did not give this device its storage key")?;
    store.signed_in(device_key).await?;
    store.set_settings(&[(SERVER, &base), (USER, user), (DEVICE, &device)]).await?;
    save_tokens(store, &tokens).await?;
    Ok(format!("signed in to {base} as {user} on device {device}"))
}

/// `fieldbook-device logout`: revokes the refresh token on the server (if reachable) and
/// forgets the tokens.
pub async fn logout(store: &Store) -> anyhow::Result<String> {
    let server = store.setting(SERVER).await?;
    let refresh_token = store.setting(REFRESH_TOKEN).await?;
    let mut message = "signed out".to_owned();
    if let (Some(server), Some(refresh_token)) = (&server, refresh_token) {
        match post(format!("{}/v1/auth/logout", base_url(server)?), json!({ "refreshToken": refresh_token })).await {
            Ok(reply) if reply.status == 204 => message = format!("signed out of {server}"),
            Ok(reply) => message = format!("signed out here; the server answered {}", reply.status),
            Err(e) => message = format!("signed out here; could not reach {server} to revoke the token: {e:#}"),
        }
    }
    store.delete_settings(TOKENS).await?;
    Ok(message)
}

/// Renews a running sync session's access token (sent in-band, see `sync`).
pub struct Renewal<'a> {
    store: &'a Store,
    server: &'a str,
}

impl Renewal<'_> {
    /// When the stored access token expires (Unix seconds).
    pub async fn expires_at(&self) -> anyhow::Result<u64> {
        Ok(self.store.setting(ACCESS_EXPIRES_AT).await?.and_then(|s| s.parse().ok()).unwrap_or(0))
    }

    /// A fresh access token (the refresh token rotates).
    pub async fn renew(&self) -> anyhow::Result<String> {
        refresh(self.store, self.server).await
    }
}

async fn refresh(store: &Store, server: &str) -> anyhow::Result<String> {
    let refresh_token = store.setting(REFRESH_TOKEN).await?.context("not signed in: run `fieldbook-device login`")?;
    let reply =
        post(format!("{}/v1/auth/refresh", base_url(server)?), json!({ "refreshToken": refresh_token })).await?;
    if reply.status == 401 && !reply.wipe {
        // Expired, reused or revoked: this sign-in is over.
        store.delete_settings(TOKENS).await?;
    }
    let tokens = expect_ok(reply, "token refresh")?;
    save_tokens(store, &tokens).await?;
    tokens["accessToken"].as_str().map(str::to_owned).context("the server sent no access token")
}

async fn save_tokens(store: &Store, tokens: &Value) -> anyhow::Result<()> {
    let (Some(access), Some(refresh)) = (tokens["accessToken"].as_str(), tokens["refreshToken"].as_str()) else {
        bail!("the server's answer has no tokens");
    };
    let expires_at = (now_secs() + tokens["expiresIn"].as_u64().unwrap_or(0)).to_string();
    store.set_settings(&[(ACCESS_TOKEN, access), (REFRESH_TOKEN, refresh), (ACCESS_EXPIRES_AT, &expires_at)]).await
}

struct Reply {
    status: u16,
    wipe: bool,
    body: Value,
}

fn expect_ok(reply: Reply, what: &str) -> anyhow::Result<Value> {
    if reply.wipe {
        return Err(TokenRefused { wipe: true }.into());
    }
    if reply.status != 200 {
        let reason = reply.body["detail"].as_str().unwrap_or("no reason given");
        bail!("{what} refused ({}): {reason}", reply.status);
    }
    Ok(reply.body)
}

/// `GET` with a bearer token; a 401 becomes [`TokenRefused`], like the sync upgrade's.
pub(crate) async fn get(url: String, token: &str) -> anyhow::Result<Value> {
    let auth = format!("Bearer {token}");
    let reply = tokio::task::spawn_blocking(move || -> anyhow::Result<Reply> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        let mut response =
            agent.get(&url).header("authorization", &auth).call().with_context(|| format!("cannot reach {url}"))?;
        Ok(reply(&mut response))
    })
    .await??;
    if reply.status == 401 || reply.wipe {
        return Err(TokenRefused { wipe: reply.wipe }.into());
    }
    if reply.status != 200 {
        let reason = reply.body["detail"].as_str().unwrap_or("no reason given");
        bail!("the server answered {}: {reason}", reply.status);
    }
    Ok(reply.body)
}

fn reply(response: &mut ureq::http::Response<ureq::Body>) -> Reply {
    let status = response.status().as_u16();
    let wipe_header = response.headers().contains_key(WIPE_HEADER);
    let text = response.body_mut().read_to_string().unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    let wipe = wipe_header || body["wipe"] == Value::Bool(true);
    Reply { status, wipe, body }
}

async fn post(url: String, body: Value) -> anyhow::Result<Reply> {
    tokio::task::spawn_blocking(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        let mut response = agent
            .post(&url)
            .header("content-type", "application/json")
            .send(body.to_string())
            .with_context(|| format!("cannot reach {url}"))?;
        Ok(reply(&mut response))
    })
    .await?
}

/// `http://host:port` for a server given as http(s):// or ws(s)://, with or without `/v1/sync`.
pub(crate) fn base_url(server: &str) -> anyhow::Result<String> {
    let server = server.trim_end_matches('/');
    let server = server.strip_suffix("/v1/sync").unwrap_or(server);
    let (scheme, rest) = server.split_once("://").context("server URL needs a scheme, e.g. http://127.0.0.1:8080")?;
    let scheme = match scheme {
        "http" | "ws" => "http",
        "https" | "wss" => "https",
        other => bail!("unsupported URL scheme {other:?}"),
    };
    Ok(format!("{scheme}://{rest}"))
}

fn read_password() -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("Password: ");
        std::io::stderr().flush()?;
    }
    let mut line = String::new();
    stdin.lock().read_line(&mut line).context("cannot read the password from stdin")?;
    let password = line.trim_end_matches(['\n', '\r']).to_owned();
    if password.is_empty() {
        bail!("no password on stdin");
    }
    Ok(password)
}

fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls() {
        assert_eq!(base_url("http://127.0.0.1:8080/").unwrap(), "http://127.0.0.1:8080");
        assert_eq!(base_url("ws://h:1/v1/sync").unwrap(), "http://h:1");
        assert_eq!(base_url("wss://h").unwrap(), "https://h");
        assert!(base_url("h:1").is_err());
    }
}
