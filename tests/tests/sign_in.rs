//! Sign-in end to end: passwords, access and refresh tokens (rotation, reuse detection,
//! logout), suspended users and revoked devices, tokens from an external identity provider
//! (RS256, ES256, EdDSA against a JWKS from a URL or a file), the device client's `login`,
//! and a long list of tokens that must be refused.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use fieldbook_server::auth::KeySource;
use fieldbook_server::storage::{AuditQuery, Database, Role, UserStatus};
use fieldbook_tests::database::key_file_for;
use fieldbook_tests::records::observation;
use fieldbook_tests::server::HttpResponse;
use fieldbook_tests::{Backend, Device, TestApp, TestServer, repo_root};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

const PASSWORD: &str = "correct horse battery staple";
const ISSUER: &str = "https://idp.example.test";
const AUDIENCE: &str = "fieldbook";

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(repo_root().join("tests/fixtures/oidc").join(name)).expect("fixture")
}

fn set_password(app: &TestApp, user: &str, password: &str) -> std::process::Output {
    app.fieldbook_with_stdin(&["users", "set-password", "--id", user], &format!("{password}\n"))
}

async fn login(server: &TestServer, user: &str, password: &str, device: &str) -> HttpResponse {
    server.post("/v1/auth/login", &json!({ "userId": user, "password": password, "deviceId": device })).await
}

async fn refresh(server: &TestServer, refresh_token: &str) -> HttpResponse {
    server.post("/v1/auth/refresh", &json!({ "refreshToken": refresh_token })).await
}

async fn me(server: &TestServer, token: &str) -> HttpResponse {
    server.get_with("/v1/auth/me", Some(token)).await
}

fn assert_refused(response: &HttpResponse, expected: &str, case: &str) {
    assert_eq!(response.status, 401, "{case}: {response:?}");
    let error = response.json()["detail"].as_str().unwrap_or_default().to_owned();
    assert!(error.contains(expected), "{case}: error {error:?} should mention {expected:?}");
}

fn assert_wipe(response: &HttpResponse, case: &str) {
    assert_eq!(response.status, 401, "{case}: {response:?}");
    assert_eq!(response.header("fieldbook-wipe"), Some("1"), "{case}");
    let body = response.json();
    assert_eq!((body["code"].as_str(), body["wipe"].as_bool()), (Some("device-revoked"), Some(true)), "{case}");
}

async fn set_status(db: &Database, user: &str, status: UserStatus) {
    let mut row = db.user(user).await.unwrap().unwrap();
    row.status = status;
    db.update_user(&row).await.unwrap();
}

async fn audit_actions(db: &Database) -> Vec<(String, Option<String>, Value)> {
    let rows = db.audit_trail(&AuditQuery { limit: 1000, ..Default::default() }).await.unwrap();
    rows.into_iter().map(|r| (r.action, r.user_id, r.detail)).collect()
}

/// The HTTP status of a WebSocket upgrade to /v1/sync with a bearer token.
async fn upgrade_status(server: &TestServer, token: &str) -> u16 {
    upgrade_status_with(server, Some(token)).await
}

/// The HTTP status of a WebSocket upgrade to /v1/sync with a bearer token, or none.
async fn upgrade_status_with(server: &TestServer, token: Option<&str>) -> u16 {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = format!("ws://{}/v1/sync", server.addr).into_client_request().unwrap();
    if let Some(token) = token {
        request.headers_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((_, response)) => response.status().as_u16(),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(e) => panic!("unexpected upgrade failure: {e}"),
    }
}

async fn login_refresh_logout(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.db.user("pat", Role::Practitioner).await;
    let server = &app.server;
    let db = app.db.connect().await;

    // Passwords: too short is refused, the stored value is an argon2 hash.
    let short = set_password(&app, "pat", "too short");
    assert!(!short.status.success());
    assert!(String::from_utf8_lossy(&short.stderr).contains("at least 12 characters"));
    assert!(set_password(&app, "pat", PASSWORD).status.success());
    let stored = db.password_hash("pat").await.unwrap().expect("a password hash");
    assert!(stored.starts_with("$argon2id$"), "{stored}");
    assert!(!stored.contains(PASSWORD) && !stored.contains("horse"));

    // Wrong password, unknown user and a user without a password look the same.
    let wrong = login(server, "pat", "wrong password here", "pat-phone").await;
    let unknown = login(server, "nobody", PASSWORD, "pat-phone").await;
    let no_password = login(server, "sam", PASSWORD, "sam-tablet").await;
    for (case, response) in [("wrong password", &wrong), ("unknown user", &unknown), ("no password", &no_password)] {
        assert_refused(response, "wrong user id or password", case);
        assert_eq!(response.body, wrong.body, "{case}");
    }
    for (case, device) in
        [("no device", json!(null)), ("empty device", json!("  ")), ("long device", json!("d".repeat(201)))]
    {
        let body = json!({ "userId": "pat", "password": PASSWORD, "deviceId": device });
        assert_eq!(server.post("/v1/auth/login", &body).await.status, 400, "{case}");
    }

    // Sign in: a short-lived access token bound to the device, and a refresh token.
    let tokens = login(server, "pat", PASSWORD, "pat-phone").await;
    assert_eq!(tokens.status, 200, "{tokens:?}");
    let tokens = tokens.json();
    assert_eq!(tokens["tokenType"], "Bearer");
    assert_eq!(tokens["expiresIn"], 900);
    assert_eq!(tokens["refreshExpiresIn"], 30 * 86400);
    let access = tokens["accessToken"].as_str().unwrap().to_owned();
    let refresh_1 = tokens["refreshToken"].as_str().unwrap().to_owned();
    let who = me(server, &access).await;
    assert_eq!(who.status, 200, "{who:?}");
    assert_eq!(
        who.json(),
        json!({"id": "pat", "name": "Test pat", "role": "practitioner", "teamId": null, "device": "pat-phone"})
    );
    assert_eq!(upgrade_status(server, &access).await, 101);
    assert!(db.devices("pat").await.unwrap().iter().any(|d| d.device_id == "pat-phone"));

    // Refresh rotates: a new access token and a new refresh token.
    let rotated = refresh(server, &refresh_1).await;
    assert_eq!(rotated.status, 200, "{rotated:?}");
    let refresh_2 = rotated.json()["refreshToken"].as_str().unwrap().to_owned();
    assert_ne!(refresh_2, refresh_1);
    assert_eq!(me(server, rotated.json()["accessToken"].as_str().unwrap()).await.status, 200);
    // The device's storage key comes with a password sign-in only, never with a refresh, and
    // stays the same for the device.
    let device_key = tokens["deviceKey"].as_str().expect("a password sign-in gives the device key").to_owned();
    assert_eq!(device_key.len(), 43, "32 bytes, base64url");
    assert!(rotated.json().get("deviceKey").is_none(), "a refresh must not give the device key: {rotated:?}");

    // Reuse of a rotated token: refused, and the device's current refresh token dies too.
    assert_refused(&refresh(server, &refresh_1).await, "already used", "reused refresh token");
    assert_refused(&refresh(server, &refresh_2).await, "already used", "refresh token after reuse");
    assert_refused(&refresh(server, "made-up").await, "invalid refresh token", "unknown refresh token");

    // Logout revokes the refresh token.
    let tokens = login(server, "pat", PASSWORD, "pat-phone").await.json();
    assert_eq!(tokens["deviceKey"], device_key.as_str(), "the same device keeps its key");
    let other = login(server, "pat", PASSWORD, "pat-laptop").await.json();
    assert_ne!(other["deviceKey"], device_key.as_str(), "each device has its own");
    let refresh_3 = tokens["refreshToken"].as_str().unwrap();
    assert_eq!(server.post("/v1/auth/logout", &json!({ "refreshToken": refresh_3 })).await.status, 204);
    assert_eq!(refresh(server, refresh_3).await.status, 401);
    assert_eq!(server.post("/v1/auth/logout", &json!({ "refreshToken": "made-up" })).await.status, 204);

    // The audit trail has every step, and never a password or a token.
    let trail = audit_actions(&db).await;
    for action in ["login", "login-failed", "token-refreshed", "refresh-token-reused", "logout"] {
        assert!(trail.iter().any(|(a, _, _)| a == action), "no {action} in {trail:?}");
    }
    // An attempt for an unknown user does not keep what was typed as the user id.
    assert!(
        trail.iter().any(|(a, user, detail)| a == "login-failed" && user.is_none() && detail["unknownUser"] == true)
    );
    assert!(!format!("{trail:?}").contains("nobody"));
    let text = format!("{trail:?}");
    for secret in [PASSWORD, "wrong password here", &access, &refresh_1, refresh_3, &device_key] {
        assert!(!text.contains(secret), "the audit trail holds a secret");
    }
    db.close().await;
}

#[tokio::test]
async fn login_refresh_logout_on_sqlite() {
    login_refresh_logout(Backend::Sqlite).await;
}

#[tokio::test]
async fn login_refresh_logout_on_postgres() {
    login_refresh_logout(Backend::Postgres).await;
}

#[tokio::test]
async fn suspended_users_and_revoked_devices() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    app.db.user("pat", Role::Practitioner).await;
    assert!(set_password(&app, "pat", PASSWORD).status.success());
    let (server, db) = (&app.server, app.db.connect().await);
    let tokens = login(server, "pat", PASSWORD, "pat-phone").await.json();
    let access = tokens["accessToken"].as_str().unwrap().to_owned();
    let refresh_token = tokens["refreshToken"].as_str().unwrap().to_owned();

    set_status(&db, "pat", UserStatus::Suspended).await;
    assert_refused(&me(server, &access).await, "suspended", "suspended user's access token");
    assert_eq!(upgrade_status(server, &access).await, 401);
    assert_refused(&login(server, "pat", PASSWORD, "pat-phone").await, "suspended", "suspended user signing in");
    assert_refused(&refresh(server, &refresh_token).await, "suspended", "suspended user refreshing");
    set_status(&db, "pat", UserStatus::Active).await;
    assert_eq!(me(server, &access).await.status, 200);

    // A revoked device is told to wipe: on any route, on refresh and on sign-in.
    db.revoke_device("pat", "pat-phone").await.unwrap();
    assert_wipe(&me(server, &access).await, "revoked device's access token");
    assert_wipe(&refresh(server, &refresh_token).await, "revoked device refreshing");
    assert_wipe(&login(server, "pat", PASSWORD, "pat-phone").await, "revoked device signing in");
    assert_eq!(login(server, "pat", PASSWORD, "pat-laptop").await.status, 200, "other devices still sign in");
    db.close().await;
}

#[tokio::test]
async fn the_device_client_signs_in_refreshes_and_hears_it_was_revoked() {
    // Access tokens that live 10 s, within the client's 30 s margin: every sync has to refresh
    // first. (One second was too short: `exp` is in whole seconds, so a token issued late in a
    // second could expire before a loaded machine's retry reached the server.)
    let app = TestApp::spawn_with(Backend::Sqlite, &["--access-token-ttl", "10s"]).await;
    app.db.user("pat", Role::Practitioner).await;
    assert!(set_password(&app, "pat", PASSWORD).status.success());
    let url = app.http_url();
    let db = app.db.connect().await;

    let device = Device::new();
    let bad = device.run_with_stdin(&["--user", "pat", "login", "--server", &url], "not the password\n");
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("wrong user id or password"));
    let out = device.run_with_stdin(
        &["--user", "pat", "login", "--server", &url, "--device", "pat-phone"],
        &format!("{PASSWORD}\n"),
    );
    assert!(out.status.success(), "login: {}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("signed in"));

    // pat observes sam (peer observation) and shares it, so sam's device may fetch it.
    let doc = device.create(&observation(
        json!({"observerId": "pat", "practitionerId": "sam", "status": "shared", "notes": "signed in"}),
    ));
    device.run_ok(&["sync", "--timeout-secs", "30"]);
    let refreshed =
        |trail: &[(String, Option<String>, Value)]| trail.iter().filter(|(a, _, _)| a == "token-refreshed").count();
    assert!(refreshed(&audit_actions(&db).await) >= 1, "the expired access token was refreshed");
    let fresh = Device::new();
    fresh.sync(&url, &app.token, &[&doc]);
    assert_eq!(fresh.show(&doc)["notes"], "signed in");

    // A stored access token the server refuses is refreshed and the sync retried.
    let store = sqlx::sqlite::SqlitePool::connect(&format!("sqlite:{}", device.store_path().display())).await.unwrap();
    sqlx::query("UPDATE settings SET value = 'eyJhbGciOiJIUzI1NiJ9.e30.AAAA' WHERE name = 'session.access_token'")
        .execute(&store)
        .await
        .unwrap();
    sqlx::query("UPDATE settings SET value = '99999999999' WHERE name = 'session.access_expires_at'")
        .execute(&store)
        .await
        .unwrap();
    store.close().await;
    let before = refreshed(&audit_actions(&db).await);
    device.run_ok(&["sync", "--timeout-secs", "30"]);
    assert_eq!(refreshed(&audit_actions(&db).await), before + 1);

    // Revoked: on its next contact the device is told to wipe, and does.
    db.revoke_device("pat", "pat-phone").await.unwrap();
    assert!(device.store_path().exists());
    let out = device.run(&["sync", "--timeout-secs", "30"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("revoked by an administrator") && stderr.contains("was deleted"), "{stderr}");
    assert!(!device.store_path().exists(), "the local store is wiped");

    // Logout forgets the tokens.
    let other = Device::new();
    let out = other.run_with_stdin(
        &["--user", "pat", "login", "--server", &url, "--device", "pat-tablet"],
        &format!("{PASSWORD}\n"),
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    other.run_ok(&["logout"]);
    assert!(audit_actions(&db).await.iter().any(|(a, _, _)| a == "logout"));
    let out = other.run(&["sync", "--timeout-secs", "30"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("not signed in"));
    db.close().await;
}

// --- External identity provider -------------------------------------------------------

fn sign(alg: Algorithm, kid: Option<&str>, key_file: &str, claims: &Value) -> String {
    // The DER twins of the PEM fixtures (see make_fixtures.py): no PEM parser needed.
    let der = fixture(&key_file.replace(".pem", ".der"));
    let key = match alg {
        Algorithm::ES256 => EncodingKey::from_ec_der(&der),
        Algorithm::EdDSA => EncodingKey::from_ed_der(&der),
        _ => EncodingKey::from_rsa_der(&der),
    };
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, &key).expect("sign")
}

fn idp_claims(sub: &str) -> Value {
    json!({ "iss": ISSUER, "aud": AUDIENCE, "sub": sub, "iat": now(), "exp": now() + 600, "device_id": "pat-tablet" })
}

fn with(mut claims: Value, key: &str, value: Value) -> Value {
    if value.is_null() {
        claims.as_object_mut().unwrap().remove(key);
    } else {
        claims[key] = value;
    }
    claims
}

fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

/// Serves the fixture JWKS at /jwks.json on 127.0.0.1:0, counting requests.
async fn serve_jwks() -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let jwks = String::from_utf8(fixture("jwks.json")).unwrap();
    let app = axum::Router::new().route(
        "/jwks.json",
        axum::routing::get(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            let jwks = jwks.clone();
            async move { ([("content-type", "application/json")], jwks) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, hits)
}

/// Users the IdP knows: pat (active), gone (deleted), paused (suspended).
async fn idp_users(app: &TestApp) -> Database {
    let db = app.db.connect().await;
    for (id, external, status) in [
        ("pat", "idp|pat", UserStatus::Active),
        ("gone", "idp|gone", UserStatus::Deleted),
        ("paused", "idp|paused", UserStatus::Suspended),
    ] {
        app.db.user(id, Role::Practitioner).await;
        let mut user = db.user(id).await.unwrap().unwrap();
        user.external_id = Some(external.into());
        user.status = status;
        db.update_user(&user).await.unwrap();
    }
    db
}

// Multi-threaded: the JWKS server must answer while the test thread waits for the server to
// start (it fetches the keys before it listens).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_provider_tokens_are_accepted_and_bad_tokens_refused() {
    let (jwks_url, jwks_hits) = serve_jwks().await;
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        &[
            "--oidc-issuer",
            ISSUER,
            "--oidc-audience",
            AUDIENCE,
            "--oidc-jwks-url",
            &jwks_url,
            "--oidc-device-claim",
            "device_id",
        ],
    )
    .await;
    let db = idp_users(&app).await;
    let server = &app.server;
    assert_eq!(jwks_hits.load(Ordering::SeqCst), 1, "the JWKS is fetched at start");

    // Each kind of IdP key signs a token the server accepts, for the linked user and device.
    let pat = idp_claims("idp|pat");
    for (alg, kid, key) in [
        (Algorithm::RS256, "rsa-1", "rsa.pem"),
        (Algorithm::ES256, "ec-1", "ec.pem"),
        (Algorithm::EdDSA, "ed-1", "ed25519.pem"),
    ] {
        let token = sign(alg, Some(kid), key, &pat);
        let who = me(server, &token).await;
        assert_eq!(who.status, 200, "{alg:?}: {who:?}");
        assert_eq!(
            (who.json()["id"].as_str(), who.json()["device"].as_str()),
            (Some("pat"), Some("pat-tablet")),
            "{alg:?}"
        );
        assert_eq!(upgrade_status(server, &token).await, 101, "{alg:?} on /v1/sync");
    }

    // Our own tokens keep working beside the IdP's.
    assert_eq!(me(server, &app.token).await.status, 200);

    // Our key's id is no secret (every token names it); the secret is.
    let key_set = KeySource::File(key_file_for(&app.db.url)).load().unwrap();
    let (kid, secret) = (key_set.signing().kid.clone(), key_set.signing().secret_bytes().unwrap());
    let hs256 = |claims: &Value, key: &[u8]| {
        let header = Header { kid: Some(kid.clone()), ..Header::new(Algorithm::HS256) };
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(key)).unwrap()
    };
    let good_rsa = sign(Algorithm::RS256, Some("rsa-1"), "rsa.pem", &pat);
    let mut parts = good_rsa.split('.');
    let (header, _, signature) = (parts.next().unwrap(), parts.next().unwrap(), parts.next().unwrap());
    let tampered = format!("{header}.{}.{signature}", b64(&with(pat.clone(), "sub", json!("idp|admin"))));
    let alg_none = format!("{}.{}.", b64(&json!({"alg": "none", "typ": "JWT"})), b64(&pat));
    let builtin = |exp: Value| json!({"sub": "pat", "iat": now(), "exp": exp, "dev": "pat-phone"});
    let refresh_token = {
        assert!(set_password(&app, "pat", PASSWORD).status.success());
        login(server, "pat", PASSWORD, "pat-phone").await.json()["refreshToken"].as_str().unwrap().to_owned()
    };
    db.revoke_device("pat", "lost-tablet").await.unwrap();

    // Each token, and the exact reason the server must give for refusing it (the built-in
    // verifier gives one reason for every bad HS256 token but an expired one).
    let invalid_hs256 = "invalid access token";
    let cases: Vec<(&str, Option<String>, &str)> = vec![
        ("missing token", None, "missing access token: pass `Authorization: Bearer <token>` or `?token=<token>`"),
        ("garbage", Some("garbage".into()), "invalid access token: not a JWT"),
        ("alg none", Some(alg_none), r#"token algorithm "none" is not accepted"#),
        (
            "HS256 signed with the IdP's RSA public key (alg confusion)",
            Some(hs256(&pat, &fixture("rsa.pub.pem"))),
            invalid_hs256,
        ),
        (
            "HS256 with a wrong secret",
            Some(hs256(&builtin(json!(now() + 600)), b"not the server's key at all!!!!!")),
            invalid_hs256,
        ),
        ("expired built-in token", Some(hs256(&builtin(json!(now() - 3600)), &secret)), "the access token has expired"),
        (
            "built-in token without exp",
            Some(hs256(&with(builtin(json!(0)), "exp", Value::Null), &secret)),
            invalid_hs256,
        ),
        (
            "expired IdP token",
            Some(sign(Algorithm::RS256, Some("rsa-1"), "rsa.pem", &with(pat.clone(), "exp", json!(now() - 3600)))),
            "the token has expired",
        ),
        (
            "IdP token without exp",
            Some(sign(Algorithm::ES256, Some("ec-1"), "ec.pem", &with(pat.clone(), "exp", Value::Null))),
            r#"the token has no "exp" claim"#,
        ),
        (
            "nbf in the future",
            Some(sign(Algorithm::RS256, Some("rsa-1"), "rsa.pem", &with(pat.clone(), "nbf", json!(now() + 3600)))),
            "the token is not valid yet (nbf)",
        ),
        (
            "wrong issuer",
            Some(sign(
                Algorithm::RS256,
                Some("rsa-1"),
                "rsa.pem",
                &with(pat.clone(), "iss", json!("https://evil.test")),
            )),
            "the token is from the wrong issuer",
        ),
        (
            "wrong audience",
            Some(sign(Algorithm::EdDSA, Some("ed-1"), "ed25519.pem", &with(pat.clone(), "aud", json!("someone-else")))),
            "the token is for another audience",
        ),
        ("unknown kid", Some(sign(Algorithm::RS256, Some("rsa-9"), "rsa.pem", &pat)), r#"unknown signing key "rsa-9""#),
        ("no kid", Some(sign(Algorithm::RS256, None, "rsa.pem", &pat)), "the token names no signing key (kid)"),
        (
            "known kid signed by the attacker's key",
            Some(sign(Algorithm::RS256, Some("rsa-1"), "attacker-rsa.pem", &pat)),
            "the token's signature is invalid",
        ),
        (
            "ES256 header naming the RSA key",
            Some(sign(Algorithm::ES256, Some("rsa-1"), "ec.pem", &pat)),
            r#"signing key "rsa-1" is for RS256, not ES256"#,
        ),
        (
            "EdDSA header naming the EC key",
            Some(sign(Algorithm::EdDSA, Some("ec-1"), "ed25519.pem", &pat)),
            r#"signing key "ec-1" is for ES256, not EdDSA"#,
        ),
        (
            "RS384",
            Some(sign(Algorithm::RS384, Some("rsa-1"), "rsa.pem", &pat)),
            r#"token algorithm "RS384" is not accepted"#,
        ),
        ("tampered payload", Some(tampered), "the token's signature is invalid"),
        (
            "deleted user",
            Some(sign(Algorithm::RS256, Some("rsa-1"), "rsa.pem", &idp_claims("idp|gone"))),
            "this account is deleted",
        ),
        (
            "suspended user",
            Some(sign(Algorithm::ES256, Some("ec-1"), "ec.pem", &idp_claims("idp|paused"))),
            "this account is suspended",
        ),
        (
            "claim mapping to no user",
            Some(sign(Algorithm::RS256, Some("rsa-1"), "rsa.pem", &idp_claims("idp|stranger"))),
            "no Fieldbook user is linked to this identity",
        ),
        (
            "no user claim",
            Some(sign(Algorithm::EdDSA, Some("ed-1"), "ed25519.pem", &with(pat.clone(), "sub", Value::Null))),
            r#"the token has no "sub" claim to identify the user"#,
        ),
        ("refresh token used as an access token", Some(refresh_token), "invalid access token: not a JWT"),
    ];
    // Every case is checked, and all are reported together: the status and the exact reason
    // on /v1/auth/me, and the refused upgrade on /v1/sync.
    let mut wrong = Vec::new();
    for (case, token, expected) in &cases {
        let response = server.get_with("/v1/auth/me", token.as_deref()).await;
        let error = response.json()["detail"].as_str().map(str::to_owned);
        if (response.status, error.as_deref()) != (401, Some(*expected)) {
            wrong.push(format!("{case}: expected 401 {expected:?}, got {} {:?}", response.status, response.body));
        }
        let upgrade = upgrade_status_with(server, token.as_deref()).await;
        if upgrade != 401 {
            wrong.push(format!("{case}: the /v1/sync upgrade answered {upgrade}, not 401"));
        }
    }
    assert!(wrong.is_empty(), "tokens not refused as they should be:\n{}", wrong.join("\n"));

    // A revoked device, named by the IdP's device claim: refused and told to wipe.
    let lost = sign(Algorithm::RS256, Some("rsa-1"), "rsa.pem", &with(pat.clone(), "device_id", json!("lost-tablet")));
    assert_wipe(&me(server, &lost).await, "IdP token for a revoked device");
    assert_eq!(upgrade_status(server, &lost).await, 401);

    // Unknown kids do not make the server hammer the IdP: at most one refetch per 30 s,
    // and the start-up fetch was less than 30 s ago.
    assert_eq!(jwks_hits.load(Ordering::SeqCst), 1, "no refetch within 30 s of the last fetch");
    db.close().await;
}

#[tokio::test]
async fn jwks_from_a_file_and_a_custom_user_claim() {
    let jwks = repo_root().join("tests/fixtures/oidc/jwks.json");
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        &[
            "--oidc-issuer",
            ISSUER,
            "--oidc-audience",
            AUDIENCE,
            "--oidc-jwks-file",
            jwks.to_str().unwrap(),
            "--oidc-user-claim",
            "email",
        ],
    )
    .await;
    let db = idp_users(&app).await;
    let claims = with(idp_claims("opaque-subject"), "email", json!("idp|pat"));
    for (alg, kid, key) in [
        (Algorithm::RS256, "rsa-1", "rsa.pem"),
        (Algorithm::ES256, "ec-1", "ec.pem"),
        (Algorithm::EdDSA, "ed-1", "ed25519.pem"),
    ] {
        let who = me(&app.server, &sign(alg, Some(kid), key, &claims)).await;
        assert_eq!(who.status, 200, "{alg:?}: {who:?}");
        assert_eq!(who.json()["id"], "pat");
        assert_eq!(who.json()["device"], Value::Null, "no device claim configured");
    }
    let by_sub = sign(Algorithm::RS256, Some("rsa-1"), "rsa.pem", &idp_claims("idp|pat"));
    assert_refused(&me(&app.server, &by_sub).await, "no \"email\" claim", "sub is not the configured claim");
    db.close().await;
}

#[tokio::test]
async fn without_an_identity_provider_only_our_tokens_count() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let token = sign(Algorithm::RS256, Some("rsa-1"), "rsa.pem", &idp_claims("idp|sam"));
    assert_refused(&me(&app.server, &token).await, "no identity provider is configured", "RS256 without OIDC");
    assert_eq!(me(&app.server, &app.token).await.status, 200);
}

#[tokio::test]
async fn password_guessing_is_throttled_per_user_on_sqlite() {
    password_guessing_is_throttled_per_user(Backend::Sqlite).await;
}

#[tokio::test]
async fn password_guessing_is_throttled_per_user_on_postgres() {
    password_guessing_is_throttled_per_user(Backend::Postgres).await;
}

fn audit_rows(app: &TestApp, action: &str) -> Vec<Value> {
    app.fieldbook(&["audit"])
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["action"] == action)
        .collect()
}

/// 60 wrong passwords for one user, sent at once: a few are checked, the rest wait (429 with
/// `Retry-After`), the right password waits too, and the trail gets one row for the burst.
async fn password_guessing_is_throttled_per_user(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.db.user("pat", Role::Practitioner).await;
    assert!(set_password(&app, "pat", PASSWORD).status.success());
    assert!(set_password(&app, "sam", PASSWORD).status.success());
    let server = &app.server;
    let guesses = (0..60).map(|i| {
        let device = format!("guess-{i}");
        async move { login(server, "pat", "not the password, surely", &device).await }
    });
    let answers = futures_util::future::join_all(guesses).await;
    let checked = answers.iter().filter(|r| r.status == 401).count();
    let throttled: Vec<&HttpResponse> = answers.iter().filter(|r| r.status == 429).collect();
    assert!(checked <= 5, "only the free failures are checked: {checked} answered 401");
    assert_eq!(checked + throttled.len(), 60, "{:?}", answers.iter().map(|r| r.status).collect::<Vec<_>>());
    for answer in &throttled {
        let wait: u64 = answer.header("retry-after").expect("Retry-After").parse().unwrap();
        assert!(wait >= 1, "{answer:?}");
        assert_eq!(answer.header("content-type"), Some("application/problem+json"));
        assert_eq!(answer.json()["code"], "throttled");
        assert!(answer.json()["detail"].as_str().unwrap().contains("for this user id"), "{}", answer.body);
    }
    let right = login(server, "pat", PASSWORD, "pat-phone").await;
    assert_eq!(right.status, 429, "the right password waits too while throttled: {}", right.body);
    // Someone else at the same address signs in as usual.
    assert_eq!(login(server, "sam", PASSWORD, "sam-tablet").await.status, 200);
    // Unknown user ids are throttled alike (so throttling tells nothing about who exists).
    let mut unknown = Vec::new();
    for i in 0..7 {
        unknown.push(login(server, "nobody-here", "guess", &format!("d{i}")).await.status);
    }
    assert!(unknown.contains(&429), "{unknown:?}");
    // One audit row per throttled burst, not one per attempt; an unknown id is not named.
    let rows = audit_rows(&app, "sign-in-throttled");
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!((rows[0]["userId"].as_str(), rows[0]["detail"]["scope"].as_str()), (Some("pat"), Some("user")));
    assert_eq!(rows[1]["userId"], Value::Null, "{rows:?}");
    assert!(!app.fieldbook(&["audit"]).contains("nobody-here"), "what was typed stays out of the trail");
    let unknown_failures: Vec<Value> =
        audit_rows(&app, "login-failed").into_iter().filter(|e| e["detail"]["unknownUser"] == true).collect();
    assert!(!unknown_failures.is_empty());
    assert!(
        unknown_failures.iter().all(|e| e["userId"].is_null() && e["deviceId"].is_null()),
        "neither the typed user id nor device id is kept: {unknown_failures:?}"
    );
}

#[tokio::test]
async fn an_address_that_keeps_failing_is_throttled_for_sign_in_and_refresh() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    assert!(set_password(&app, "sam", PASSWORD).status.success());
    let server = &app.server;
    let session = login(server, "sam", PASSWORD, "sam-tablet").await.json();
    // Twenty free failures from one address (a few each for many ids, or bad refresh tokens).
    let mut statuses = Vec::new();
    for i in 0..12 {
        statuses.push(login(server, &format!("user-{i}"), "guess", "d").await.status);
    }
    for _ in 0..12 {
        statuses.push(refresh(server, "a-token-nobody-issued").await.status);
    }
    assert!(statuses[..20].iter().all(|s| *s == 401), "{statuses:?}");
    assert!(statuses[20..].contains(&429), "{statuses:?}");
    let right = login(server, "sam", PASSWORD, "sam-tablet").await;
    assert_eq!(right.status, 429, "{}", right.body);
    assert!(right.json()["detail"].as_str().unwrap().contains("from this address"), "{}", right.body);
    let renewal = refresh(server, session["refreshToken"].as_str().unwrap()).await;
    assert_eq!(renewal.status, 429, "{}", renewal.body);
    let rows = audit_rows(&app, "sign-in-throttled");
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["detail"]["scope"], "address");
}
