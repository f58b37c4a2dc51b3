//! Helpers for end-to-end tests: a fresh database per test, the real `fieldbook` binary
//! started on `127.0.0.1:0`, and the real clients (the `fieldbook-device` binary, the stock
//! JS automerge-repo client in `tests/js`, raw WebSockets).
//!
//! Binaries are taken from the cargo target directory; `scripts/test` builds them first.

pub mod app;
pub mod cluster;
pub mod database;
pub mod device;
pub mod js;
pub mod metrics;
pub mod peer;
pub mod private_postgres;
pub mod raw;
pub mod records;
pub mod server;
pub mod writers;

pub use app::TestApp;
pub use database::{Backend, TestDatabase};
pub use device::Device;
pub use server::TestServer;

use std::path::PathBuf;

/// `target/debug` (or whichever profile built the running test).
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    exe.parent().and_then(|deps| deps.parent()).expect("target/<profile>/deps").to_path_buf()
}

/// A binary of this workspace, which must already be built.
pub fn binary(name: &str) -> PathBuf {
    let path = target_dir().join(name);
    assert!(
        path.exists(),
        "{} is missing: build it first (`cargo build --workspace --bins`, which scripts/test runs)",
        path.display()
    );
    path
}

/// Runs a command with `input` on its stdin and waits for it.
pub fn run_with_stdin(mut command: std::process::Command, input: &str) -> std::process::Output {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
    child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("write stdin");
    child.wait_with_output().expect("wait")
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf()
}

/// A fresh temporary directory, removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(label: &str) -> Self {
        let path = std::env::temp_dir().join(format!("fieldbook-test-{label}-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&path).expect("create temp dir");
        Self(path)
    }

    pub fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
