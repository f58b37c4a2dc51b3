//! The server reaches PostgreSQL over TLS, verifying the database's certificate:
//! `--database-url 'postgres://…@localhost/…?sslmode=verify-full&sslrootcert=<ca.pem>'`.
//!
//! On a private cluster that speaks TLS only ([`PrivatePostgres::start_with_tls`]: a throwaway
//! CA, a certificate for `localhost`, `hostssl` the only TCP entry in `pg_hba.conf`), never the
//! machine's own PostgreSQL:
//! - with the right CA the server starts, is ready, stores a record written through sync, and
//!   every connection it holds is encrypted (`pg_stat_ssl`, seen from another verified
//!   connection);
//! - with a CA that did not sign the database's certificate it refuses to start, saying why;
//! - without TLS (`sslmode=disable`) the cluster refuses the server, so the first test cannot
//!   pass over a plain connection.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use fieldbook_server::storage::Role;
use fieldbook_sync_core::DocumentId;
use fieldbook_tests::database::key_file_for;
use fieldbook_tests::peer::{Outcome, Peer};
use fieldbook_tests::private_postgres::{CertificateAuthority, PrivatePostgres};
use fieldbook_tests::records::{document, observation};
use fieldbook_tests::{TempDir, TestServer, binary, repo_root};
use serde_json::json;
use sqlx::postgres::PgConnection;
use sqlx::{Connection, Row};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_stores_records_over_verified_tls() {
    let started = Instant::now();
    let postgres = PrivatePostgres::start_with_tls();
    let cluster_up = started.elapsed();
    let db = postgres.create_database().await;
    let ca = postgres.ca_cert().expect("a TLS cluster has a CA");
    assert!(
        db.url.starts_with("postgres://postgres@localhost:")
            && db.url.ends_with(&format!("?sslmode=verify-full&sslrootcert={}", ca.display())),
        "not a verify-full URL for localhost: {}",
        db.url
    );
    let token = db.user("sam", Role::Supervisor).await;

    let server_started = Instant::now();
    let mut server = TestServer::start(&db.url);
    let server_up = server_started.elapsed();
    // Ready once every connection it needs (the pool, the cross-node listener) is up.
    let ready_after = wait_until_ready(&mut server, Duration::from_secs(30)).await - server_started;

    // A record written through sync is acknowledged: committed to the database.
    let id = DocumentId::random();
    let record = document(&observation(json!({})));
    let mut device = Peer::connect(&server.ws_url(&token), "tls-device").await;
    assert_eq!(device.push(id, &record).await, Outcome::Accepted);

    // From a separate connection, itself TLS with verify-full: the record's chunks are stored,
    // and every connection to this database (the server's pool) is encrypted, over TCP.
    let mut check = PgConnection::connect(&db.url).await.expect("a verified TLS connection of the test's own");
    let own_ssl: bool = sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(&mut check)
        .await
        .expect("own pg_stat_ssl");
    assert!(own_ssl, "the test's own connection is not encrypted");
    let chunks: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM document_chunks WHERE document_id = $1")
        .bind(id.to_string())
        .fetch_one(&mut check)
        .await
        .expect("count the record's chunks");
    assert!(chunks > 0, "the acknowledged record is not in the database");
    let connections = sqlx::query(
        "SELECT a.pid, host(a.client_addr) AS client, s.ssl, s.version, s.cipher, left(a.query, 40) AS query \
         FROM pg_stat_activity a LEFT JOIN pg_stat_ssl s USING (pid) \
         WHERE a.datname = current_database() AND a.backend_type = 'client backend' AND a.pid <> pg_backend_pid()",
    )
    .fetch_all(&mut check)
    .await
    .expect("the server's connections");
    type Backend = (i32, Option<String>, Option<bool>, Option<String>, Option<String>, Option<String>);
    let connections: Vec<Backend> = connections
        .iter()
        .map(|row| {
            let text = |column| row.get::<Option<String>, _>(column);
            (row.get("pid"), text("client"), row.get("ssl"), text("version"), text("cipher"), text("query"))
        })
        .collect();
    assert!(!connections.is_empty(), "the server holds no connection to its database");
    for (pid, client, ssl, version, cipher, _last_query) in &connections {
        assert_eq!(client.as_deref(), Some("127.0.0.1"), "backend {pid} is not a TCP connection: {connections:?}");
        assert_eq!(*ssl, Some(true), "backend {pid} is not encrypted: {connections:?}");
        assert!(
            version.as_deref().is_some_and(|v| v.starts_with("TLSv1.")) && cipher.is_some(),
            "backend {pid}: no TLS version or cipher: {connections:?}"
        );
    }
    check.close().await.expect("close the check connection");

    // Read back through a second server process (nothing in its memory), also over TLS.
    let reader = server.restart();
    let copy = Peer::connect(&reader.ws_url(&token), "tls-reader")
        .await
        .fetch(id)
        .await
        .unwrap_or_else(|o| panic!("the stored record did not come back: {o:?}"));
    assert_eq!(copy.get_heads(), record.get_heads(), "the record came back different");
    let mut reader = reader;
    wait_until_ready(&mut reader, Duration::from_secs(30)).await;
    assert_eq!(server.exit_status(), None, "the first server exited");

    eprintln!(
        "TLS cluster up in {cluster_up:.1?}; server listening after {server_up:.1?}, ready after \
         {ready_after:.1?}; record stored ({chunks} chunk(s)); server connections {connections:?}; {:.1?} in all",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_refuses_a_database_certificate_its_ca_did_not_sign() {
    let started = Instant::now();
    let postgres = PrivatePostgres::start_with_tls();
    // create_database connected with the cluster's own CA (verify-full): the cluster is fine.
    let db = postgres.create_database().await;
    // The signing keys exist, so only the database connection can stop the server.
    db.keys();
    let other_dir = TempDir::new("other-ca");
    let other = CertificateAuthority::new(other_dir.path(), "other-ca", "Some other CA");
    let url = postgres.tls_url(database_name(&db.url), other.cert());

    let failed = serve_expecting_failure(&url);
    assert!(!failed.status.success(), "exit status {}", failed.status);
    // rustls' verdict on a certificate no trusted CA signed.
    assert!(
        failed.stderr.contains("invalid peer certificate") && failed.stderr.contains("UnknownIssuer"),
        "the error does not say the database's certificate was not trusted:\n{}",
        failed.stderr
    );
    assert!(
        !failed.stderr.contains("pg_hba.conf"),
        "refused by pg_hba.conf, not by certificate verification:\n{}",
        failed.stderr
    );
    eprintln!(
        "wrong CA: {} after {:.1?}: {}; {:.1?} in all",
        failed.status,
        failed.took,
        failed.stderr.trim(),
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_refuses_a_plain_connection() {
    let started = Instant::now();
    let postgres = PrivatePostgres::start_with_tls();
    let db = postgres.create_database().await;
    db.keys();
    let url = postgres.plain_url(database_name(&db.url));

    let failed = serve_expecting_failure(&url);
    assert!(!failed.status.success(), "exit status {}", failed.status);
    assert!(
        failed.stderr.contains("pg_hba.conf") && failed.stderr.contains("no encryption"),
        "the cluster did not refuse the plain connection as unencrypted:\n{}",
        failed.stderr
    );
    eprintln!(
        "sslmode=disable: {} after {:.1?}: {}; {:.1?} in all",
        failed.status,
        failed.took,
        failed.stderr.trim(),
        started.elapsed()
    );
}

/// Polls `GET /readyz` until it answers 200; returns when it did. Panics with the last answer
/// if it does not within `within`, or if the server exits.
async fn wait_until_ready(server: &mut TestServer, within: Duration) -> Instant {
    let deadline = Instant::now() + within;
    loop {
        let (status, body) = server.get("/readyz", None).await;
        if status == 200 {
            return Instant::now();
        }
        if let Some(exit) = server.exit_status() {
            panic!("the server exited ({exit}) before it was ready");
        }
        assert!(Instant::now() < deadline, "/readyz did not answer 200 within {within:?}; last {status}: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The database name in a PostgreSQL URL (the last path segment, before the query).
fn database_name(url: &str) -> &str {
    let path = url.split('?').next().unwrap_or(url);
    path.rsplit('/').next().expect("a database name")
}

/// How a `fieldbook serve` that did not start ended.
struct Failed {
    status: ExitStatus,
    stderr: String,
    took: Duration,
}

/// Runs `fieldbook serve` on `database_url` (with its test signing keys, as [`TestServer`] does)
/// and waits for it to exit; panics if it starts listening or is still running after a minute.
fn serve_expecting_failure(database_url: &str) -> Failed {
    let started = Instant::now();
    let mut child = Command::new(binary("fieldbook"))
        .args(["serve", "--listen", "127.0.0.1:0", "--database-url", database_url])
        .arg("--signing-key-file")
        .arg(key_file_for(database_url))
        .env("RUST_LOG", "warn")
        .env("FIELDBOOK_WEB_DIR", repo_root().join("clients/web/dist"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start fieldbook");
    // stdout says "fieldbook listening on …" once the server is up: then stop waiting.
    let stdout = child.stdout.take().expect("stdout");
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    let stdout = std::thread::spawn(move || {
        let mut text = String::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.starts_with("fieldbook listening on") {
                let _ = started_tx.send(());
            }
            text.push_str(&line);
            text.push('\n');
        }
        text
    });
    let mut stderr_pipe = child.stderr.take().expect("stderr");
    let stderr = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr_pipe.read_to_string(&mut text);
        text
    });
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break Some(status);
        }
        if started_rx.try_recv().is_ok() || started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let took = started.elapsed();
    let stdout = stdout.join().expect("stdout reader");
    let stderr = stderr.join().expect("stderr reader");
    assert!(!stdout.contains("fieldbook listening on"), "the server started:\n{stdout}\n{stderr}");
    let status = status.unwrap_or_else(|| panic!("the server was still running after 60 s:\n{stdout}\n{stderr}"));
    Failed { status, stderr, took }
}
