//! The real `fieldbook-device` binary with its own store.

use std::process::{Command, Output};

use crate::{TempDir, binary};

/// The passphrase test devices keep their stores encrypted with.
pub const PASSPHRASE: &str = "test device passphrase";

pub struct Device {
    dir: TempDir,
}

impl Device {
    pub fn new() -> Self {
        Self { dir: TempDir::new("device") }
    }

    /// A device used by `user` (the observer of its new observations, the signer of its
    /// sign-offs).
    pub fn for_user(user: &str) -> Self {
        let device = Self::new();
        std::fs::write(device.dir.path().join("user"), user).expect("write user");
        device
    }

    /// The passphrase the next commands give (the store's, or a wrong one).
    pub fn set_passphrase(&self, passphrase: &str) {
        std::fs::write(self.dir.path().join("passphrase"), passphrase).expect("write passphrase");
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run fieldbook-device")
    }

    /// A command with this device's store and user, and its passphrase (see
    /// [`Self::set_passphrase`]).
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(binary("fieldbook-device"));
        command.arg("--store").arg(self.store_path());
        let passphrase = std::fs::read_to_string(self.dir.path().join("passphrase"));
        command.env("FIELDBOOK_DEVICE_PASSPHRASE", passphrase.as_deref().unwrap_or(PASSPHRASE));
        if let Ok(user) = std::fs::read_to_string(self.dir.path().join("user")) {
            command.args(["--user", &user]);
        }
        command.args(args);
        command
    }

    /// Runs a command with `input` on its stdin (e.g. a password).
    pub fn run_with_stdin(&self, args: &[&str], input: &str) -> Output {
        crate::run_with_stdin(self.command(args), input)
    }

    /// The device's SQLite store.
    pub fn store_path(&self) -> std::path::PathBuf {
        self.dir.path().join("device.sqlite")
    }

    /// Runs a command that must succeed; returns stdout.
    pub fn run_ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "fieldbook-device {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8 output")
    }

    /// Creates a document offline; returns its URL.
    pub fn create(&self, json: &serde_json::Value) -> String {
        self.run_ok(&["create", "--json", &json.to_string()]).trim().to_owned()
    }

    pub fn edit(&self, url: &str, sets: &[(&str, &str)]) {
        let mut args = vec!["edit".to_string(), url.to_string()];
        for (path, value) in sets {
            args.push("--set".into());
            args.push(format!("{path}={value}"));
        }
        self.run_ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    }

    pub fn show(&self, url: &str) -> serde_json::Value {
        serde_json::from_str(&self.run_ok(&["show", url])).expect("show prints JSON")
    }

    /// Syncs everything (and fetches `fetch`); returns stdout. Panics on failure.
    pub fn sync(&self, server: &str, token: &str, fetch: &[&str]) -> String {
        let out = self.try_sync(server, token, fetch);
        assert!(out.status.success(), "sync failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).expect("utf-8")
    }

    pub fn try_sync(&self, server: &str, token: &str, fetch: &[&str]) -> Output {
        let mut args = vec!["sync", "--server", server, "--token", token, "--timeout-secs", "30"];
        for url in fetch {
            args.extend(["--fetch", url]);
        }
        self.run(&args)
    }
}

impl Default for Device {
    fn default() -> Self {
        Self::new()
    }
}
