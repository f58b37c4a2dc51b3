//! The unmodified JS automerge-repo client syncs with our server, both ways, and documents
//! cross between it and `fieldbook-device`.

use fieldbook_tests::records::observation;
use fieldbook_tests::{Backend, Device, TestApp, js};
use serde_json::json;

#[tokio::test]
async fn stock_js_clients_and_the_device_client_share_documents() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let (token, server) = (app.token.as_str(), &app.server);
    let ws = server.ws_url(token);

    // A JS client creates documents; create returns once the server reports storing them.
    let first = js::create(&ws, &observation(json!({"title": "from js", "items": ["a", "b"]})));
    let second = js::create(&ws, &observation(json!({"title": "second"})));

    // A second, fresh JS client fetches them through the server.
    assert_eq!(js::fetch(&ws, &first).unwrap(), observation(json!({"title": "from js", "items": ["a", "b"]})));
    assert_eq!(js::fetch(&ws, &second).unwrap()["title"], "second");

    // The device client reads the JS document...
    let device = Device::new();
    device.sync(&server.http_url(), token, &[&first]);
    assert_eq!(device.show(&first)["items"], json!(["a", "b"]));

    // ...and JS reads one the device created, and an edit the device made to the JS one.
    let from_device = device.create(&observation(json!({"title": "from device", "count": 3})));
    device.edit(&first, &[("title", "edited on device")]);
    let out = device.sync(&server.http_url(), token, &[]);
    // The two it holds, and `second`, which the user's record index listed at the first sync.
    assert!(out.contains("synced 3 documents"), "{out}");
    assert_eq!(js::fetch(&ws, &from_device).unwrap(), observation(json!({"title": "from device", "count": 3})));
    assert_eq!(js::fetch(&ws, &first).unwrap()["title"], "edited on device");

    // A JS edit reaches the device on its next sync.
    js::client(&["edit", "--url", &ws, "--doc", &from_device, "--set", "title=edited in js"]).unwrap();
    device.sync(&server.http_url(), token, &[]);
    assert_eq!(device.show(&from_device)["title"], "edited in js");
}

#[tokio::test]
async fn unknown_documents_are_unavailable_to_js_and_device() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let (token, server) = (app.token.as_str(), &app.server);
    let missing = fieldbook_sync_core::DocumentId::random().url();

    let err = js::fetch(&server.ws_url(token), &missing).unwrap_err();
    assert!(err.contains("unavailable"), "{err}");

    let out = Device::new().try_sync(&server.http_url(), token, &[&missing]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("not on the server"));
}

/// The server pushes a change to a stock JS client that is already connected: the client is
/// connected and caught up before the change exists, then sends no request and never
/// reconnects (client.mjs checks both), and still sees the change arrive as a `change` event.
#[tokio::test]
async fn the_server_pushes_a_change_live_to_a_connected_js_client() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let (token, server) = (app.token.as_str(), &app.server);
    let ws = server.ws_url(token);
    let url = js::create(&ws, &observation(json!({})));

    // Returns once the watcher holds the document without the change.
    let watch = js::Watch::start(&ws, &url, "status", "shared");
    assert_eq!(watch.ready()["doc"]["status"], "draft", "{}", watch.ready());

    // Another client makes the change, through the server.
    let device = Device::new();
    device.sync(&server.http_url(), token, &[&url]);
    device.edit(&url, &[("status", "shared")]);
    device.sync(&server.http_url(), token, &[]);

    let seen =
        watch.finish().unwrap_or_else(|e| panic!("the server did not push the change to the connected JS client: {e}"));
    assert_eq!(seen["doc"], device.show(&url), "the pushed document is the one the device made: {seen}");
    assert_ne!(seen["headsAfter"], seen["headsBefore"], "{seen}");
    assert_eq!(seen["reconnects"], 0, "{seen}");
    let sent: Vec<&str> = seen["sentSinceReady"].as_array().unwrap().iter().filter_map(|t| t.as_str()).collect();
    assert!(!sent.iter().any(|t| *t == "request" || *t == "join"), "the watcher asked again: {seen}");
    assert!(seen["receivedSinceReady"].as_array().unwrap().contains(&json!("sync")), "{seen}");
}

/// Short fields written as registers (as the web app writes them) by two devices of one user
/// at once — one of them reconnecting from offline — come back to both as a conflict, and
/// writing one value again settles it on both, round after round
/// (`tests/js/register-conflict.mjs`).
#[tokio::test]
async fn a_register_written_on_two_devices_at_once_settles_on_both() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    app.db.user("pat", fieldbook_server::storage::Role::Practitioner).await;
    let out = js::node("register-conflict.mjs", &[&app.ws_url()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON line");
    assert_eq!(report["settled"], report["rounds"], "{report}");
    eprintln!("register conflicts settled on both devices; slowest {} ms", report["slowestMs"]);
}
