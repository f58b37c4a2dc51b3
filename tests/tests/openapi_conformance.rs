//! The OpenAPI document (`/v1/openapi.json`) is exact: schemathesis, an OpenAPI conformance
//! fuzzer, generates requests from it against a running server, as each kind of caller, and
//! checks every answer against it (status codes, content types, response schemas, valid
//! requests accepted and invalid ones refused, no server errors). It must find nothing.
//! `scripts/test` installs the pinned schemathesis (`scripts/ensure-schemathesis`).

use std::path::PathBuf;
use std::process::Command;

use fieldbook_server::storage::Role;
use fieldbook_tests::{Backend, TestApp, TestServer, repo_root};

fn schemathesis() -> PathBuf {
    let path = std::env::var_os("FIELDBOOK_SCHEMATHESIS").map(PathBuf::from).unwrap_or_else(|| {
        let output =
            Command::new(repo_root().join("scripts/ensure-schemathesis")).output().expect("run ensure-schemathesis");
        PathBuf::from(String::from_utf8_lossy(&output.stdout).trim())
    });
    assert!(
        path.is_file(),
        "schemathesis is not installed at {path:?}: run scripts/ensure-schemathesis (scripts/test does)"
    );
    path
}

/// Runs schemathesis over the operations whose paths match `paths`, as `credential`.
fn fuzz(st: &PathBuf, server: &TestServer, credential: &str, paths: &str, seed: u32) {
    let workdir = fieldbook_tests::TempDir::new("schemathesis");
    let output = Command::new(st)
        .current_dir(workdir.path())
        .arg("--config-file")
        .arg(repo_root().join("tests/schemathesis.toml"))
        .args(["run", &format!("{}/v1/openapi.json", server.http_url())])
        // One worker: with two, schemathesis's threads parse Python source at the same time, and
        // Debian's Python 3.11 then sometimes fails inside the tool ("AST constructor recursion
        // depth mismatch", CPython gh-106905), which reads as a finding about the server.
        .args(["--max-time", "40", "--seed", &seed.to_string(), "--workers", "1"])
        .args(["--include-path-regex", paths])
        .args(["-H", &format!("Authorization: Bearer {credential}")])
        .env("NO_COLOR", "1")
        .output()
        .expect("run schemathesis");
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "schemathesis found problems with {paths}:\n{said}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(said.contains("Tested:"), "schemathesis tested nothing for {paths}:\n{said}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_matches_what_the_server_does() {
    let st = schemathesis();
    let app = TestApp::spawn_with(Backend::Sqlite, &["--api-calls-per-minute", "10000000"]).await;
    app.db.user("pat", Role::Practitioner).await;
    app.fieldbook(&["supervision", "set", "--user", "pat", "--supervisor", "sam", "--from", "2025-01-01"]);
    let admin = app.db.user("ada", Role::Admin).await;
    let hr = app.fieldbook(&["service-accounts", "add", "--name", "HR", "--scopes", "hr:read,insights:read"]);
    let hr_key = hr.lines().find_map(|l| l.strip_prefix("key: ")).expect("a key").trim().to_owned();

    // Each kind of caller over the operations that are theirs.
    fuzz(&st, &app.server, &admin, "^/v1/admin/", 1);
    fuzz(&st, &app.server, &hr_key, "^/v1/api/", 2);
    fuzz(&st, &app.server, &app.token, "^/v1/(auth|records|people|frameworks|resources|me|expertise|champions)", 3);
}
