//! The web app is served from inside the binary, so `fieldbook serve` needs nothing beside it:
//! the build as `scripts/build-web` made it, with the types, caching and policy the app needs;
//! `--web-dir` serves a directory instead.

use fieldbook_tests::{Backend, TempDir, TestApp, TestServer, repo_root};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_serves_the_app_built_into_it() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let server = &app.server;
    let built =
        std::fs::read_to_string(repo_root().join("clients/web/dist/index.html")).expect("scripts/build-web ran");

    let page = server.get_with("/", None).await;
    assert_eq!(page.status, 200);
    assert_eq!(page.body, built, "the page is the build's");
    assert!(page.header("content-type").unwrap().starts_with("text/html"));
    assert_eq!(page.header("cache-control"), Some("no-cache"), "the shell is revalidated on every load");
    assert!(page.header("content-security-policy").unwrap().contains("'wasm-unsafe-eval'"));
    let etag = page.header("etag").expect("an etag").to_owned();
    let again = server.get_with_headers("/", "-", &[("if-none-match", &etag)]).await;
    assert_eq!((again.status, again.body.as_str()), (304, ""), "revalidating an unchanged page costs nothing");

    let script = page.body.split("src=\"").nth(1).and_then(|s| s.split('"').next()).expect("a script");
    let script = script.trim_start_matches('.');
    assert!(script.starts_with("/assets/"), "{script}");
    let asset = server.get_with(script, None).await;
    assert_eq!(asset.status, 200);
    assert!(asset.header("content-type").unwrap().contains("javascript"), "{:?}", asset.header("content-type"));
    assert_eq!(asset.header("cache-control"), Some("public, max-age=31536000, immutable"));
    assert_eq!(server.get_with("/sw.js", None).await.header("cache-control"), Some("no-cache"));
    assert_eq!(server.get_with("/assets/gone-1234.js", None).await.header("cache-control"), Some("no-cache"));
    assert_eq!(server.get_with("/.build-inputs.sha256", None).await.status, 404, "the build's stamp is not served");
    let api = server.get_with("/v1/nothing-here", None).await;
    assert_eq!((api.status, api.header("content-type")), (404, Some("application/problem+json")));

    // --web-dir serves a directory instead, for work on the app.
    let dir = TempDir::new("web-dir");
    std::fs::write(dir.path().join("index.html"), "<!doctype html><h1>A build in progress</h1>").unwrap();
    let dev = TestServer::start_with(&app.db.url, &["--web-dir", dir.path().to_str().unwrap()]);
    assert!(dev.get_with("/", None).await.body.contains("A build in progress"));
}
