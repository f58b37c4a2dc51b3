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

#[tokio::test]
async fn a_live_js_client_sees_another_clients_change() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let (token, server) = (app.token.as_str(), &app.server);
    let ws = server.ws_url(token);
    let url = js::create(&ws, &observation(json!({})));

    let watcher = {
        let (ws, url) = (ws.clone(), url.clone());
        std::thread::spawn(move || js::client(&["watch", "--url", &ws, "--doc", &url, "--until", "status=shared"]))
    };
    std::thread::sleep(std::time::Duration::from_millis(700));
    let device = Device::new();
    device.sync(&server.http_url(), token, &[&url]);
    device.edit(&url, &[("status", "shared")]);
    device.sync(&server.http_url(), token, &[]);
    let seen = watcher.join().unwrap().expect("watcher saw the change");
    assert_eq!(seen["doc"]["status"], "shared", "{seen}");
}
