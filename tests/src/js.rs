//! The stock JavaScript automerge-repo client (`tests/js/client.mjs`).

use std::process::Command;

use crate::repo_root;

/// Runs a client.mjs subcommand; returns its one JSON line, or the error text.
pub fn client(args: &[&str]) -> Result<serde_json::Value, String> {
    let script = repo_root().join("tests/js/client.mjs");
    assert!(
        repo_root().join("tests/js/node_modules").exists(),
        "tests/js/node_modules is missing: run tests/js/install.sh (scripts/test does)"
    );
    let out = Command::new("node").arg(script).args(args).output().expect("run node");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let stdout = String::from_utf8(out.stdout).expect("utf-8");
    serde_json::from_str(stdout.trim()).map_err(|e| format!("bad JSON from client.mjs ({e}): {stdout}"))
}

pub fn create(ws_url: &str, json: &serde_json::Value) -> String {
    let out = client(&["create", "--url", ws_url, "--json", &json.to_string()]).expect("js create");
    out["url"].as_str().expect("url").to_owned()
}

pub fn fetch(ws_url: &str, doc: &str) -> Result<serde_json::Value, String> {
    client(&["fetch", "--url", ws_url, "--doc", doc]).map(|out| out["doc"].clone())
}
