//! `--log-format json`: one JSON object per line, with the time, level, request id, and the
//! user and device once known, and never a token, a password or what a record says.

use fieldbook_server::storage::Role;
use fieldbook_sync_core::DocumentId;
use fieldbook_tests::peer::{Outcome, Peer};
use fieldbook_tests::records::document;
use fieldbook_tests::{Backend, TempDir, TestDatabase, TestServer};
use serde_json::{Value, json};

const PASSWORD: &str = "correct horse battery staple";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_say_who_and_what_but_no_secrets_or_narrative() {
    let test_db = TestDatabase::new(Backend::Sqlite).await;
    test_db.user("pat", Role::Practitioner).await;
    let mut set_password = test_db.fieldbook_command();
    set_password.args(["users", "set-password", "--id", "pat"]);
    assert!(fieldbook_tests::run_with_stdin(set_password, PASSWORD).status.success());
    let dir = TempDir::new("json-logs");
    let log = dir.path().join("server.log");
    let mut server = TestServer::start_logging_to(&test_db.url, &["--log-format", "json"], &log);

    let login = json!({"userId": "pat", "password": PASSWORD, "deviceId": "pat-phone"});
    let signed_in = server.post("/v1/auth/login", &login).await;
    assert_eq!(signed_in.status, 200, "{}", signed_in.body);
    let token = signed_in.json()["accessToken"].as_str().unwrap().to_owned();
    let refresh = signed_in.json()["refreshToken"].as_str().unwrap().to_owned();
    assert_eq!(server.get("/v1/records", Some(&token)).await.0, 200);
    assert_eq!(server.get("/v1/records", Some("not-a-token")).await.0, 401);
    // A sync session (its token in the URL, as browsers send it) and a refused record.
    let mut phone = Peer::connect(&server.ws_url(&token), "pat-phone").await;
    let narrative = document(&json!({"type": "observation", "notes": "ZQXNARRATIVE about the family"}));
    assert!(matches!(phone.push(DocumentId::random(), &narrative).await, Outcome::Rejected(_)));
    drop(phone);
    server.terminate();

    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect();
    assert!(lines.len() > 5, "{text}");
    for line in &lines {
        assert!(line["timestamp"].is_string() && line["level"].is_string() && line["message"].is_string(), "{line}");
    }
    let finished = |path: &str, user: Option<&str>| {
        lines.iter().any(|l| {
            l["message"] == "finished processing request"
                && l["span"]["path"] == path
                && !l["span"]["request_id"].as_str().unwrap_or("").is_empty()
                && l["span"]["user"].as_str() == user
        })
    };
    assert!(finished("/v1/records", Some("pat")), "the request, its id and its user: {text}");
    assert!(finished("/v1/auth/login", None), "{text}");
    assert!(
        lines.iter().any(|l| l["message"] == "rejected changes"
            && l["span"]["user"] == "pat"
            && l["span"]["device"] == "pat-phone"),
        "the sync session's events say whose they are: {text}"
    );
    for secret in [token.as_str(), refresh.as_str(), PASSWORD, "ZQXNARRATIVE"] {
        assert!(!text.contains(secret), "the log holds {secret:?}");
    }
}
