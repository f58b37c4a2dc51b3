//! A PostgreSQL cluster of the test's own (`initdb` in a temp dir, on a free port), for tests
//! that stop and start the database under a running server. The machine's own PostgreSQL is
//! never touched. Run as root, the cluster belongs to the `postgres` user (initdb refuses
//! root); the cluster is stopped (`-m immediate`) and its directory removed when dropped.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::str::FromStr;

use sqlx::{ConnectOptions, Connection};

use crate::TempDir;
use crate::database::TestDatabase;

/// Where Debian's PostgreSQL 15 puts `initdb` and `pg_ctl`.
const BIN_DIR: &str = "/usr/lib/postgresql/15/bin";

pub struct PrivatePostgres {
    dir: TempDir,
    port: u16,
    running: bool,
}

impl PrivatePostgres {
    /// `initdb` (trust authentication, superuser `postgres`) and start it.
    pub fn start() -> Self {
        let dir = TempDir::new("postgres");
        if running_as_root() {
            let status = Command::new("chown").arg("postgres:postgres").arg(dir.path()).status().expect("run chown");
            assert!(status.success(), "chown postgres {} failed", dir.path().display());
        }
        let port = free_port();
        let cluster = Self { dir, port, running: false };
        let data = cluster.data_dir();
        cluster.pg("initdb", &["-D", path_str(&data), "-A", "trust", "-U", "postgres", "--no-sync"]);
        let mut cluster = cluster;
        cluster.start_again();
        cluster
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of database `name` in this cluster.
    pub fn url(&self, name: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    /// A new, empty database in this cluster.
    pub async fn create_database(&self) -> TestDatabase {
        let name = format!("fieldbook_test_{}", uuid::Uuid::new_v4().simple());
        let options = sqlx::postgres::PgConnectOptions::from_str(&self.url("postgres")).expect("postgres URL");
        let mut admin = options.connect().await.expect("connect to the private cluster");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .expect("create database");
        admin.close().await.expect("close admin connection");
        TestDatabase::existing(self.url(&name))
    }

    /// `pg_ctl stop -m fast`: open transactions are rolled back, clients disconnected.
    pub fn stop(&mut self) {
        self.pg("pg_ctl", &["-D", path_str(&self.data_dir()), "-m", "fast", "-w", "stop"]);
        self.running = false;
    }

    /// `pg_ctl start` on the same port; returns once it accepts connections.
    pub fn start_again(&mut self) {
        let options = format!("-p {} -k {} -c listen_addresses=127.0.0.1", self.port, path_str(self.dir.path()));
        let log = self.dir.path().join("postgres.log");
        self.pg("pg_ctl", &["-D", path_str(&self.data_dir()), "-o", &options, "-l", path_str(&log), "-w", "start"]);
        self.running = true;
    }

    /// The cluster's server log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("postgres.log")).unwrap_or_default()
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Runs a PostgreSQL program as the `postgres` user; panics with its output on failure.
    fn pg(&self, program: &str, args: &[&str]) -> Output {
        let output = self.pg_command(program, args).output().unwrap_or_else(|e| panic!("run {program}: {e}"));
        assert!(
            output.status.success(),
            "{program} {args:?} failed: {}{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
            self.log()
        );
        output
    }

    fn pg_command(&self, program: &str, args: &[&str]) -> Command {
        let program = Path::new(BIN_DIR).join(program);
        let mut command = if running_as_root() {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            Command::new(program)
        };
        // The postgres user may not be able to enter the test's working directory.
        command.args(args).current_dir(self.dir.path());
        command
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        if self.data_dir().join("postmaster.pid").exists() || self.running {
            let _ = self
                .pg_command("pg_ctl", &["-D", path_str(&self.data_dir()), "-m", "immediate", "-w", "stop"])
                .output();
        }
        // The TempDir removes the directory.
    }
}

fn running_as_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port").local_addr().expect("local addr").port()
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("temp paths are UTF-8")
}
