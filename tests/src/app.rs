//! `TestApp::spawn`: a fresh database, one user with a token, and the server running on it.

use fieldbook_server::storage::Role;

use crate::{Backend, TestDatabase, TestServer};

pub struct TestApp {
    pub db: TestDatabase,
    /// A supervisor's token, valid for an hour.
    pub token: String,
    pub server: TestServer,
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> Self {
        Self::spawn_with(backend, &[]).await
    }

    /// With extra `fieldbook serve` flags.
    pub async fn spawn_with(backend: Backend, serve_args: &[&str]) -> Self {
        let db = TestDatabase::new(backend).await;
        let token = db.user("sam", Role::Supervisor).await;
        let server = TestServer::start_with(&db.url, serve_args);
        Self { db, token, server }
    }

    pub fn http_url(&self) -> String {
        self.server.http_url()
    }

    pub fn ws_url(&self) -> String {
        self.server.ws_url(&self.token)
    }

    /// Runs a `fieldbook` admin command with `input` on stdin (e.g. `users set-password`).
    pub fn fieldbook_with_stdin(&self, args: &[&str], input: &str) -> std::process::Output {
        let mut command = self.db.fieldbook_command();
        command.args(args);
        crate::run_with_stdin(command, input)
    }

    /// Runs a `fieldbook` admin command against this app's database; returns stdout.
    pub fn fieldbook(&self, args: &[&str]) -> String {
        self.db.fieldbook(args)
    }
}
