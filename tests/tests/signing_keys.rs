//! Token-signing keys live outside the database (a key file, or the environment, which wins),
//! rotate without a restart, and old keys verify the tokens they signed until those expire.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use fieldbook_server::auth::{KeySet, KeySource, TokenKeys};
use fieldbook_server::storage::Role;
use fieldbook_tests::database::key_file_for;
use fieldbook_tests::{Backend, TestApp, TestDatabase, TestServer, binary};
use serde_json::Value;

fn kid_of(token: &str) -> String {
    let header = token.split('.').next().unwrap();
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
    header["kid"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn the_database_holds_no_key_and_a_rotation_needs_no_restart() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    // Nothing in the database can sign a token.
    let in_db = app.db.raw_execute("SELECT * FROM signing_keys").await;
    assert!(in_db.unwrap_err().contains("no such table"));
    let file = key_file_for(&app.db.url);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the key file is readable by its owner only");
    }
    let old_token = app.token.clone();
    let old_kid = kid_of(&old_token);
    assert_eq!(app.server.get("/v1/auth/me", Some(&old_token)).await.0, 200);

    // Rotate while the server runs: it signs with the new key within seconds, and the old
    // key keeps verifying the tokens it signed.
    let new_kid = app.fieldbook(&["keys", "rotate"]).trim().to_owned();
    assert_ne!(new_kid, old_kid);
    let listed = app.fieldbook(&["keys", "list"]);
    assert!(listed.contains(&old_kid) && listed.contains(&new_kid), "{listed}");
    assert!(!listed.contains(&KeySource::File(file.clone()).load().unwrap().keys[0].secret), "no secrets listed");
    let pat = app.db.user("pat", Role::Practitioner).await;
    assert_eq!(kid_of(&pat), new_kid, "tokens minted from the file now use the new key");
    assert_eq!(app.server.get("/v1/auth/me", Some(&pat)).await.0, 200, "a token of the new key verifies at once");
    let out = app.fieldbook_with_stdin(&["users", "set-password", "--id", "sam"], "correct horse battery staple");
    assert!(out.status.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let body = serde_json::json!({"userId": "sam", "password": "correct horse battery staple", "deviceId": "t"});
        let issued = app.server.post("/v1/auth/login", &body).await.json();
        if kid_of(issued["accessToken"].as_str().unwrap()) == new_kid {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the server never started signing with the new key");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(app.server.get("/v1/auth/me", Some(&old_token)).await.0, 200, "the old key still verifies");
}

#[tokio::test]
async fn keys_from_the_environment_take_precedence_and_postgres_must_name_them() {
    let db = TestDatabase::new(Backend::Sqlite).await;
    db.user("sam", Role::Supervisor).await;
    let set = KeySet::generate();
    let from_env = TokenKeys::from_set(set.clone()).unwrap().issue("sam", None, Duration::from_secs(600)).unwrap();
    let from_file = db.keys().issue("sam", None, Duration::from_secs(600)).unwrap();
    let server = TestServer::start_with_env(&db.url, &[], &[("FIELDBOOK_SIGNING_KEYS", &set.to_json())]);
    assert_eq!(server.get("/v1/auth/me", Some(&from_env)).await.0, 200);
    let (status, body) = server.get("/v1/auth/me", Some(&from_file)).await;
    assert_eq!(status, 401, "the file's key does not count when the environment names keys: {body}");

    // PostgreSQL has no default: nodes must share keys, and the server says how.
    let pg = TestDatabase::new(Backend::Postgres).await;
    let out = std::process::Command::new(binary("fieldbook"))
        .args(["serve", "--listen", "127.0.0.1:0", "--database-url", &pg.url])
        .env_remove("FIELDBOOK_SIGNING_KEYS")
        .env_remove("FIELDBOOK_SIGNING_KEY_FILE")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("--signing-key-file") && said.contains("FIELDBOOK_SIGNING_KEYS"), "{said}");
    // A named file that is missing is an error, never made up (each node would mint its own).
    let missing = std::env::temp_dir().join(format!("no-such-keys-{}.json", uuid::Uuid::new_v4().simple()));
    let out = std::process::Command::new(binary("fieldbook"))
        .args(["serve", "--listen", "127.0.0.1:0", "--database-url", &pg.url, "--signing-key-file"])
        .arg(&missing)
        .env_remove("FIELDBOOK_SIGNING_KEYS")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("does not exist"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!missing.exists(), "no key file was made up");
}
