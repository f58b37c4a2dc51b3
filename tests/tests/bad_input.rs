//! Bad input gets a clear error and harms nothing else: malformed frames close only their
//! own connection; bad tokens are refused with 401 before the upgrade.

use fieldbook_server::storage::Role;
use fieldbook_sync_core::{DocumentId, Message, SyncKind};
use fieldbook_tests::raw::{self, expect_error_and_close};
use fieldbook_tests::records::observation;
use fieldbook_tests::{Backend, Device, TestApp, TestDatabase, TestServer};
use serde_json::json;

const FRAME_LIMIT: &str = "65536";

#[tokio::test]
async fn malformed_frames_get_an_error_and_close_only_that_connection() {
    let app = TestApp::spawn_with(Backend::Sqlite, &["--max-frame-bytes", FRAME_LIMIT]).await;
    let (token, server) = (app.token.as_str(), &app.server);
    let ws = server.ws_url(token);

    // A well-behaved peer that stays connected throughout.
    let mut bystander = raw::connect(&ws).await;
    raw::send(&mut bystander, raw::join_frame("bystander")).await;
    assert!(matches!(raw::next(&mut bystander).await, Some(Message::Peer { .. })));

    let valid_id = DocumentId::random();
    let sync = |document: &str, data: Vec<u8>| {
        let frame = Message::Sync {
            kind: SyncKind::Sync,
            sender_id: "bad".into(),
            target_id: "server".into(),
            document_id: valid_id,
            data,
        }
        .encode();
        // Swap in a document id of the same length (CBOR text length is unchanged).
        let valid = valid_id.to_string();
        assert_eq!(document.len(), valid.len());
        let at = frame.windows(valid.len()).position(|w| w == valid.as_bytes()).unwrap();
        let mut patched = frame.clone();
        patched[at..at + valid.len()].copy_from_slice(document.as_bytes());
        patched
    };
    let bad_id = "0".repeat(valid_id.to_string().len()); // '0' is not in the base58 alphabet
    let cases: Vec<(&str, Vec<Vec<u8>>, &str)> = vec![
        ("oversized frame", vec![raw::join_frame("bad"), vec![0u8; 100_000]], "exceeds the limit"),
        ("malformed CBOR", vec![vec![0xff, 0x00, 0x13, 0x37]], "not valid CBOR"),
        ("not a map", vec![vec![0x83, 0x01, 0x02, 0x03]], "not a CBOR map"),
        ("unsupported version", vec![unsupported_join()], "unsupported protocol version"),
        ("message before join", vec![sync(&valid_id.to_string(), vec![])], "expected `join` first"),
        ("malformed document id", vec![raw::join_frame("bad"), sync(&bad_id, vec![])], "invalid document id"),
        (
            "garbage sync payload",
            vec![raw::join_frame("bad"), sync(&valid_id.to_string(), vec![1, 2, 3])],
            "invalid sync message",
        ),
    ];
    for (case, frames, expected) in cases {
        let mut socket = raw::connect(&ws).await;
        let last = frames.len() - 1;
        for (i, frame) in frames.into_iter().enumerate() {
            raw::send(&mut socket, frame).await;
            if i < last {
                assert!(matches!(raw::next(&mut socket).await, Some(Message::Peer { .. })), "{case}");
            }
        }
        let error = expect_error_and_close(&mut socket).await;
        assert!(error.contains(expected), "{case}: error {error:?} should mention {expected:?}");
    }

    // Text frames are refused too.
    let mut socket = raw::connect(&ws).await;
    futures_util::SinkExt::send(&mut socket, tokio_tungstenite::tungstenite::Message::Text("{}".into())).await.unwrap();
    assert!(expect_error_and_close(&mut socket).await.contains("text frames"));

    // Everyone else is unaffected: the bystander still syncs, and so does a device.
    let request = Message::Sync {
        kind: SyncKind::Request,
        sender_id: "bystander".into(),
        target_id: "server".into(),
        document_id: DocumentId::random(),
        data: automerge_empty_request(),
    };
    raw::send(&mut bystander, request.encode()).await;
    assert!(matches!(raw::next(&mut bystander).await, Some(Message::DocUnavailable { .. })));
    let device = Device::new();
    let url = device.create(&observation(json!({"still": "working"})));
    device.sync(&server.http_url(), token, &[]);
    let fresh = Device::new();
    fresh.sync(&server.http_url(), token, &[&url]);
    assert_eq!(fresh.show(&url)["still"], "working");
}

fn unsupported_join() -> Vec<u8> {
    Message::Join { sender_id: "bad".into(), peer_metadata: None, supported_protocol_versions: vec!["2".into()] }
        .encode()
}

fn automerge_empty_request() -> Vec<u8> {
    use automerge::sync::SyncDoc;
    let doc = automerge::Automerge::new();
    doc.generate_sync_message(&mut automerge::sync::State::new()).unwrap().encode()
}

#[tokio::test]
async fn bad_tokens_get_401_before_the_upgrade() {
    let db = TestDatabase::new(Backend::Sqlite).await;
    let good = db.user("sam", Role::Supervisor).await;
    let server = TestServer::start(&db.url);
    let key_set =
        fieldbook_server::auth::KeySource::File(fieldbook_tests::database::key_file_for(&db.url)).load().unwrap();
    let (kid, secret) = (key_set.signing().kid.clone(), key_set.signing().secret_bytes().unwrap());

    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let sign = |sub: &str, exp: u64, key: &[u8]| {
        let claims = json!({"sub": sub, "iat": now, "exp": exp});
        let header = jsonwebtoken::Header { kid: Some(kid.clone()), ..Default::default() };
        jsonwebtoken::encode(&header, &claims, &jsonwebtoken::EncodingKey::from_secret(key)).unwrap()
    };
    let expired = sign("sam", now - 3600, &secret);
    let wrong_key = sign("sam", now + 3600, b"not the server's key, but 32 b!!");
    let unknown_user = sign("nobody", now + 3600, &secret);
    let (header, _, signature) = {
        let mut parts = good.split('.');
        (parts.next().unwrap().to_owned(), parts.next().unwrap().to_owned(), parts.next().unwrap().to_owned())
    };
    let tampered = format!("{header}.{}.{signature}", base64_json(&json!({"sub": "admin", "exp": now + 3600})));

    for (case, token) in [
        ("expired", expired.as_str()),
        ("badly signed", wrong_key.as_str()),
        ("unknown user", unknown_user.as_str()),
        ("malformed", "not-a-jwt"),
        ("tampered payload", tampered.as_str()),
        ("empty", ""),
    ] {
        assert_eq!(upgrade_status(&server, Some(token), false).await, 401, "{case}");
        assert_eq!(upgrade_status(&server, Some(token), true).await, 401, "{case} as bearer header");
    }
    assert_eq!(upgrade_status(&server, None, false).await, 401, "missing token");
    assert_eq!(upgrade_status(&server, Some(&good), false).await, 101, "valid token in query");
    assert_eq!(upgrade_status(&server, Some(&good), true).await, 101, "valid token as bearer header");

    // The device client explains a refused token.
    let out = Device::new().try_sync(&server.http_url(), &expired, &[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("401"));

    assert_eq!(server.get("/livez", None).await.0, 200);
    assert_eq!(server.get("/readyz", None).await, (200, "ready".into()));
}

fn base64_json(value: &serde_json::Value) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bytes = value.to_string().into_bytes();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// The HTTP status of a WebSocket upgrade attempt.
async fn upgrade_status(server: &TestServer, token: Option<&str>, as_header: bool) -> u16 {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let url = match (token, as_header) {
        (Some(t), false) => format!("ws://{}/v1/sync?token={t}", server.addr),
        _ => format!("ws://{}/v1/sync", server.addr),
    };
    let mut request = url.into_client_request().unwrap();
    if let (Some(t), true) = (token, as_header) {
        request.headers_mut().insert("authorization", format!("Bearer {t}").parse().unwrap());
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((_, response)) => response.status().as_u16(),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(e) => panic!("unexpected upgrade failure: {e}"),
    }
}

/// One error shape for every REST endpoint, whoever raised the error: problem+json with the
/// status, 5xx only for the server's own faults (saying nothing of their cause).
#[tokio::test]
async fn every_rest_error_answers_problem_json() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let admin = app.db.user("ada", Role::Admin).await;
    let server = &app.server;
    let problem = |response: &fieldbook_tests::server::HttpResponse, status: u16, case: &str| {
        assert_eq!(response.status, status, "{case}: {}", response.body);
        assert_eq!(response.header("content-type"), Some("application/problem+json"), "{case}");
        let body = response.json();
        assert_eq!(body["status"], status, "{case}: {body}");
        assert!(body["title"].is_string() && body["detail"].is_string(), "{case}: {body}");
        body
    };
    // An unknown path under /v1/ is an API error, not the web app's page.
    problem(&server.get_with("/v1/no-such-endpoint", Some(&app.token)).await, 404, "unknown /v1/ path");
    problem(&server.get_with("/v1/api/practitioners/pat/nothing", None).await, 404, "unknown nested path");
    let page = server.get_with("/", None).await;
    assert_eq!(page.status, 200, "the web app is still served at /");
    // Errors axum itself raises: a method a route does not take, a body that is not JSON.
    let wrong_method = server.request("DELETE", "/v1/auth/login", None, None).await;
    problem(&wrong_method, 405, "method not allowed");
    assert!(wrong_method.header("allow").is_some(), "405 keeps Allow");
    let not_json = server.request("POST", "/v1/admin/teams", Some(&admin), Some(&json!("not an object"))).await;
    problem(&not_json, 422, "a JSON body of the wrong shape");
    problem(&server.request("POST", "/v1/auth/login", None, Some(&json!({"userId": 1}))).await, 400, "bad login body");
    // Who and what: 401 (with WWW-Authenticate), 403, 409.
    let unauthorised = server.get_with("/v1/records", None).await;
    problem(&unauthorised, 401, "no token");
    assert_eq!(unauthorised.header("www-authenticate"), Some("Bearer"));
    problem(&server.get_with("/v1/admin/users", Some(&app.token)).await, 403, "not an admin");
    let team = json!({"id": "north", "name": "North"});
    assert_eq!(server.request("POST", "/v1/admin/teams", Some(&admin), Some(&team)).await.status, 201);
    problem(&server.request("POST", "/v1/admin/teams", Some(&admin), Some(&team)).await, 409, "already exists");
    // A start of supervision that is not a date is refused, with no supervisor named too, and
    // nobody is added (found by the OpenAPI conformance run).
    let bad_start = json!({"id": "lee", "name": "Lee", "role": "practitioner", "supervisorFrom": "ê"});
    problem(
        &server.request("POST", "/v1/admin/users", Some(&admin), Some(&bad_start)).await,
        400,
        "a start that is not a date",
    );
    problem(&server.get_with("/v1/admin/users/lee", Some(&admin)).await, 404, "nobody was added");
    // The server's own fault (a stored framework it cannot read) is a 500 that names nothing.
    app.db.raw_execute("UPDATE frameworks SET definition = 'not json'").await.unwrap();
    let broken = server.get_with("/v1/frameworks", Some(&app.token)).await;
    let body = problem(&broken, 500, "the server's own fault");
    assert!(!broken.body.contains("framework") && !broken.body.contains("json"), "{body}");
}
