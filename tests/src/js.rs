//! The stock JavaScript automerge-repo client (`tests/js/client.mjs`).

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use crate::repo_root;

fn script() -> std::path::PathBuf {
    assert!(
        repo_root().join("tests/js/node_modules").exists(),
        "tests/js/node_modules is missing: run tests/js/install.sh (scripts/test does)"
    );
    repo_root().join("tests/js/client.mjs")
}

/// Runs a script of `tests/js` (with the stock client's packages) with `args`.
pub fn node(script: &str, args: &[&str]) -> std::process::Output {
    Command::new("node").arg(repo_root().join("tests/js").join(script)).args(args).output().expect("run node")
}

/// Runs a client.mjs subcommand; returns its one JSON line, or the error text.
pub fn client(args: &[&str]) -> Result<serde_json::Value, String> {
    let out = node("client.mjs", args);
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let stdout = String::from_utf8(out.stdout).expect("utf-8");
    serde_json::from_str(stdout.trim()).map_err(|e| format!("bad JSON from client.mjs ({e}): {stdout}"))
}

/// Creates a document with a fresh JS client and returns its URL once the server has stored
/// it (its reported heads equal the client's). Panics if the server refused it (a
/// `fieldbook/rejected` notice) or never reported storing it. To see a refusal, run
/// `client(&["create", …])` and check its `rejected` notice.
pub fn create(ws_url: &str, json: &serde_json::Value) -> String {
    let out = client(&["create", "--url", ws_url, "--json", &json.to_string()])
        .unwrap_or_else(|e| panic!("js create: the server did not report storing the document: {e}"));
    if !out["rejected"].is_null() {
        panic!("js create: the server refused the document: {}", out["rejected"]);
    }
    let heads = out["heads"].as_array().unwrap_or_else(|| panic!("js create: no heads in {out}"));
    assert!(!heads.is_empty(), "js create: the stored document has no heads: {out}");
    out["url"].as_str().unwrap_or_else(|| panic!("js create: no url in {out}")).to_owned()
}

pub fn fetch(ws_url: &str, doc: &str) -> Result<serde_json::Value, String> {
    client(&["fetch", "--url", ws_url, "--doc", doc]).map(|out| out["doc"].clone())
}

/// A JS client that stays connected to a document and waits for the server to push a change
/// to it (`client.mjs watch`). [`Watch::start`] returns once the client is connected, has
/// caught up with the server's heads, and the awaited value is not there yet; from then on
/// the client sends no request and never reconnects, so only a live push can satisfy it.
pub struct Watch {
    child: Child,
    lines: Receiver<String>,
    stderr: std::thread::JoinHandle<String>,
    ready: serde_json::Value,
    timeout: Duration,
}

impl Watch {
    /// Watches `doc` until its top-level `key` equals `value`.
    pub fn start(ws_url: &str, doc: &str, key: &str, value: &str) -> Watch {
        Self::start_within(ws_url, doc, key, value, Duration::from_secs(20))
    }

    /// Like [`Watch::start`], but the client gives up after `timeout` (connecting and
    /// catching up, then again waiting for the push).
    pub fn start_within(ws_url: &str, doc: &str, key: &str, value: &str, timeout: Duration) -> Watch {
        let mut child = Command::new("node")
            .arg(script())
            .args(["watch", "--url", ws_url, "--doc", doc, "--until", &format!("{key}={value}")])
            .args(["--timeout-ms", &timeout.as_millis().to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run node");
        let (tx, lines) = std::sync::mpsc::channel();
        let stdout = child.stdout.take().expect("stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut stderr = child.stderr.take().expect("stderr");
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        let mut watch = Watch { child, lines, stderr, ready: serde_json::Value::Null, timeout };
        let ready = watch.next_line("the watching JS client to connect and catch up");
        let ready = ready.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(ready["ready"], true, "first line of client.mjs watch: {ready}");
        watch.ready = ready;
        watch
    }

    /// What the client held when it was ready: `{"ready", "url", "heads", "doc"}`.
    pub fn ready(&self) -> &serde_json::Value {
        &self.ready
    }

    /// Waits for the pushed change: `{"url", "doc", "headsBefore", "headsAfter",
    /// "sentSinceReady", "receivedSinceReady", "reconnects"}`, or why it did not come.
    pub fn finish(mut self) -> Result<serde_json::Value, String> {
        self.next_line("the server to push the change to the connected JS client")
    }

    fn next_line(&mut self, what: &str) -> Result<serde_json::Value, String> {
        // client.mjs gives up after `timeout` by itself; this deadline only guards against a hung node.
        let deadline = Instant::now() + self.timeout + Duration::from_secs(10);
        let line = match self.lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) => line,
            Err(RecvTimeoutError::Timeout) => {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return Err(format!("timed out waiting for {what}"));
            }
            Err(RecvTimeoutError::Disconnected) => {
                let status = self.child.wait().expect("wait for node");
                let stderr = std::mem::replace(&mut self.stderr, std::thread::spawn(String::new));
                let stderr = stderr.join().unwrap_or_default();
                return Err(format!("client.mjs watch exited ({status}) while waiting for {what}: {}", stderr.trim()));
            }
        };
        serde_json::from_str(&line).map_err(|e| format!("bad JSON from client.mjs watch ({e}): {line}"))
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
