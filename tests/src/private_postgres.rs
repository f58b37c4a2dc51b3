//! A PostgreSQL cluster of the test's own (`initdb` in a temp dir, on a free port), for tests
//! that stop and start the database under a running server. The machine's own PostgreSQL is
//! never touched. Run as root, the cluster belongs to the `postgres` user (initdb refuses
//! root); the cluster is stopped (`-m immediate`) and its directory removed when dropped.
//!
//! [`PrivatePostgres::start_with_tls`] starts one that speaks TLS only: a throwaway CA and a
//! server certificate for `localhost` / `127.0.0.1` made with the `openssl` CLI, `ssl = on`, and
//! a `pg_hba.conf` that accepts TCP connections over `hostssl` only.

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
    /// The CA that signed the server's certificate, when the cluster speaks TLS.
    tls: Option<CertificateAuthority>,
}

impl PrivatePostgres {
    /// `initdb` (trust authentication, superuser `postgres`) and start it.
    pub fn start() -> Self {
        Self::start_inner(false)
    }

    /// Like [`Self::start`], but TLS only: a fresh CA signs a certificate for `localhost` and
    /// `127.0.0.1`, the server has `ssl = on`, and `pg_hba.conf` refuses TCP connections that
    /// are not encrypted (`hostssl` only). [`Self::url`] then asks for `sslmode=verify-full`
    /// against that CA ([`Self::ca_cert`]).
    pub fn start_with_tls() -> Self {
        Self::start_inner(true)
    }

    fn start_inner(tls: bool) -> Self {
        let dir = TempDir::new("postgres");
        if running_as_root() {
            let status = Command::new("chown").arg("postgres:postgres").arg(dir.path()).status().expect("run chown");
            assert!(status.success(), "chown postgres {} failed", dir.path().display());
        }
        let port = free_port();
        let cluster = Self { dir, port, running: false, tls: None };
        let data = cluster.data_dir();
        cluster.pg("initdb", &["-D", path_str(&data), "-A", "trust", "-U", "postgres", "--no-sync"]);
        let mut cluster = cluster;
        if tls {
            cluster.tls = Some(cluster.configure_tls());
        }
        cluster.start_again();
        cluster
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of database `name` in this cluster; for a TLS cluster, `localhost` with
    /// `sslmode=verify-full` against the cluster's CA.
    pub fn url(&self, name: &str) -> String {
        match &self.tls {
            Some(ca) => self.tls_url(name, ca.cert()),
            None => format!("postgres://postgres@127.0.0.1:{}/{name}", self.port),
        }
    }

    /// Database `name` over TLS, verifying the server's certificate (and that it names
    /// `localhost`) against the CA certificate at `root_cert`.
    pub fn tls_url(&self, name: &str, root_cert: &Path) -> String {
        format!(
            "postgres://postgres@localhost:{}/{name}?sslmode=verify-full&sslrootcert={}",
            self.port,
            path_str(root_cert)
        )
    }

    /// Database `name` over TCP without TLS (`sslmode=disable`).
    pub fn plain_url(&self, name: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{name}?sslmode=disable", self.port)
    }

    /// The certificate of the CA that signed the server's, for a TLS cluster.
    pub fn ca_cert(&self) -> Option<&Path> {
        self.tls.as_ref().map(CertificateAuthority::cert)
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

    /// Makes the CA and the server's certificate, turns `ssl` on and allows TCP over
    /// `hostssl` only. Runs after `initdb`, before the first start.
    fn configure_tls(&self) -> CertificateAuthority {
        let tls = self.dir.path().join("tls");
        std::fs::create_dir_all(&tls).expect("create the TLS directory");
        let ca = CertificateAuthority::new(&tls, "ca", "Fieldbook test CA");
        let (cert, key) = ca.issue_server_cert(&tls, "server");
        // PostgreSQL refuses a key others can read, or one it does not own.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod 600 the server key");
        if running_as_root() {
            let status = Command::new("chown").arg("postgres:postgres").arg(&key).status().expect("run chown");
            assert!(status.success(), "chown postgres {} failed", key.display());
        }
        let data = self.data_dir();
        let mut conf = std::fs::read_to_string(data.join("postgresql.conf")).expect("read postgresql.conf");
        conf.push_str(&format!(
            "\n# Added by the test: TLS.\nssl = on\nssl_cert_file = '{}'\nssl_key_file = '{}'\n",
            path_str(&cert),
            path_str(&key)
        ));
        std::fs::write(data.join("postgresql.conf"), conf).expect("write postgresql.conf");
        // Socket connections stay open (pg_ctl uses them); TCP must be encrypted.
        let hba = "# Written by the test: TCP connections only over TLS.\n\
                   local     all all              trust\n\
                   hostssl   all all 127.0.0.1/32 trust\n\
                   hostssl   all all ::1/128      trust\n\
                   hostnossl all all 0.0.0.0/0    reject\n\
                   hostnossl all all ::/0         reject\n";
        std::fs::write(data.join("pg_hba.conf"), hba).expect("write pg_hba.conf");
        ca
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

/// A throwaway certificate authority made with the `openssl` CLI (EC P-256, valid two days).
pub struct CertificateAuthority {
    cert: PathBuf,
    key: PathBuf,
}

impl CertificateAuthority {
    /// A new self-signed CA named `common_name`: `<stem>.pem` and `<stem>.key` in `dir`.
    pub fn new(dir: &Path, stem: &str, common_name: &str) -> Self {
        let cert = dir.join(format!("{stem}.pem"));
        let key = dir.join(format!("{stem}.key"));
        let config = dir.join(format!("{stem}.cnf"));
        std::fs::write(
            &config,
            format!(
                "[req]\nprompt = no\ndistinguished_name = dn\nx509_extensions = ext\n\
                 [dn]\nCN = {common_name}\n\
                 [ext]\nbasicConstraints = critical, CA:TRUE\nkeyUsage = critical, keyCertSign, cRLSign\n\
                 subjectKeyIdentifier = hash\n"
            ),
        )
        .expect("write the CA's openssl config");
        openssl(&[
            &["req", "-x509", "-new", "-nodes", "-days", "2"],
            NEW_KEY,
            &["-config", path_str(&config), "-keyout", path_str(&key), "-out", path_str(&cert)],
        ]);
        Self { cert, key }
    }

    /// The CA's certificate (what clients put in `sslrootcert`).
    pub fn cert(&self) -> &Path {
        &self.cert
    }

    /// A server certificate signed by this CA, for `CN=localhost` with the subject alternative
    /// names `DNS:localhost` and `IP:127.0.0.1`: returns (`<stem>.crt`, `<stem>.key`) in `dir`.
    pub fn issue_server_cert(&self, dir: &Path, stem: &str) -> (PathBuf, PathBuf) {
        let cert = dir.join(format!("{stem}.crt"));
        let key = dir.join(format!("{stem}.key"));
        let request = dir.join(format!("{stem}.csr"));
        let config = dir.join(format!("{stem}.cnf"));
        std::fs::write(
            &config,
            "[req]\nprompt = no\ndistinguished_name = dn\n\
             [dn]\nCN = localhost\n\
             [ext]\nbasicConstraints = critical, CA:FALSE\n\
             keyUsage = critical, digitalSignature, keyEncipherment\nextendedKeyUsage = serverAuth\n\
             subjectAltName = DNS:localhost, IP:127.0.0.1\n\
             subjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid\n",
        )
        .expect("write the server certificate's openssl config");
        openssl(&[
            &["req", "-new", "-nodes"],
            NEW_KEY,
            &["-config", path_str(&config), "-keyout", path_str(&key), "-out", path_str(&request)],
        ]);
        let serial = format!("0x{}", &uuid::Uuid::new_v4().simple().to_string()[..16]);
        openssl(&[
            &["x509", "-req", "-in", path_str(&request), "-out", path_str(&cert), "-days", "2"],
            &["-CA", path_str(&self.cert), "-CAkey", path_str(&self.key), "-set_serial", serial.as_str()],
            &["-extfile", path_str(&config), "-extensions", "ext"],
        ]);
        (cert, key)
    }
}

/// `openssl req` arguments for a new EC P-256 key.
const NEW_KEY: &[&str] = &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];

/// Runs `/usr/bin/openssl` with the groups of arguments in turn; panics with its output on failure.
fn openssl(args: &[&[&str]]) {
    let args = args.concat();
    let output = Command::new("/usr/bin/openssl").args(&args).output().expect("run /usr/bin/openssl");
    assert!(
        output.status.success(),
        "openssl {args:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
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
