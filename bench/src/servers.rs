//! The two servers under test, as child processes.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use anyhow::{Context, bail};
use automerge::Automerge;
use fieldbook_server::auth::{KeySource, TokenKeys};
use fieldbook_server::storage::{Database, Role, User};
use fieldbook_sync_core::DocumentId;

/// A server under test, running as a child process that can be restarted.
pub trait ServerProcess {
    fn ws_url(&self) -> String;
    fn child(&mut self) -> &mut Child;
    /// Starts the process again on the same data.
    fn respawn(&mut self) -> anyhow::Result<()>;

    fn rss_kib(&mut self) -> anyhow::Result<u64> {
        rss_kib(self.child().id())
    }

    async fn restart(&mut self) -> anyhow::Result<()> {
        self.stop().await?;
        self.respawn()
    }

    async fn stop(&mut self) -> anyhow::Result<()> {
        terminate(self.child())
    }
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf()
}

fn temp_dir(label: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("fieldbook-bench-{label}-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

pub fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).context("no VmRSS")?;
    Ok(line.split_whitespace().nth(1).context("VmRSS value")?.parse()?)
}

/// Spawns a server and reads its port from the first stdout line that has one; its stderr
/// goes to `log` in the temp dir.
fn spawn(mut command: Command, prefix: &str, log: &str) -> anyhow::Result<(Child, String)> {
    let log = std::fs::File::create(std::env::temp_dir().join(log))?;
    let mut child = command.stdout(Stdio::piped()).stderr(log).spawn()?;
    let mut reader = BufReader::new(child.stdout.take().context("stdout")?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let Some(addr) = line.trim().strip_prefix(prefix).map(str::to_owned) else {
        bail!("server did not start: {line:?}")
    };
    // Keep draining stdout: a closed pipe would kill a server that logs there (Node does).
    std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
    Ok((child, addr))
}

/// The token-signing keys of a bench database: beside a SQLite file, or one file per
/// PostgreSQL database in the temp dir.
fn key_file(database_url: &str) -> PathBuf {
    fieldbook_server::auth::keys::default_file(database_url).unwrap_or_else(|| {
        let name = database_url.rsplit('/').next().unwrap_or("postgres");
        std::env::temp_dir().join("fieldbook-bench-keys").join(format!("{name}.json"))
    })
}

pub struct FieldbookServer {
    child: Child,
    addr: String,
    database_url: String,
    token: String,
    log: String,
    dir: PathBuf,
}

const SERVER_LOG: &str = "fieldbook-bench-server.log";

impl FieldbookServer {
    /// Starts on `database_url`, or on a new SQLite file when `None`.
    pub async fn start(database_url: Option<String>) -> anyhow::Result<Self> {
        let dir = temp_dir("fieldbook");
        let database_url = database_url.unwrap_or_else(|| format!("sqlite:{}", dir.join("fieldbook.sqlite").display()));
        let token = Self::prepare(&database_url).await?;
        let (child, addr) = Self::spawn(&database_url, SERVER_LOG)?;
        Ok(Self { child, addr, database_url, token, log: SERVER_LOG.into(), dir })
    }

    /// Migrates `database_url`, adds the supervisor `bench` and the signing keys every server
    /// on it shares (see [`key_file`]); returns a day-long access token for `bench`.
    pub async fn prepare(database_url: &str) -> anyhow::Result<String> {
        let db = Database::connect(database_url).await?;
        db.add_user(&User::new("bench", "Bench", Role::Supervisor)).await?;
        let source = KeySource::File(key_file(database_url));
        source.load_or_create().map_err(anyhow::Error::msg)?;
        let keys = TokenKeys::load(source).map_err(anyhow::Error::msg)?;
        let token = keys.issue("bench", None, std::time::Duration::from_secs(86400))?;
        db.close().await;
        Ok(token)
    }

    /// Starts on an existing database, as it is.
    pub fn on(database_url: &str) -> anyhow::Result<Self> {
        Self::on_logging_to(database_url, SERVER_LOG)
    }

    /// Starts on an existing database, as it is, with its log in the temp dir's `log` (for
    /// several servers at once).
    pub fn on_logging_to(database_url: &str, log: &str) -> anyhow::Result<Self> {
        let (child, addr) = Self::spawn(database_url, log)?;
        Ok(Self {
            child,
            addr,
            database_url: database_url.to_owned(),
            token: String::new(),
            log: log.into(),
            dir: temp_dir("fieldbook"),
        })
    }

    /// The access token [`ServerProcess::ws_url`] carries (see [`Self::prepare`]).
    pub fn with_token(mut self, token: String) -> Self {
        self.token = token;
        self
    }

    fn spawn(database_url: &str, log: &str) -> anyhow::Result<(Child, String)> {
        let binary = repo_root().join("target/release/fieldbook");
        anyhow::ensure!(
            binary.exists(),
            "{} missing: run scripts/bench (it builds release binaries)",
            binary.display()
        );
        let mut command = Command::new(binary);
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--database-url", database_url, "--signing-key-file"])
            .arg(key_file(database_url))
            // FIELDBOOK_BENCH_LOG (a RUST_LOG filter) for diagnosis; the log goes to the temp dir.
            .env("RUST_LOG", std::env::var("FIELDBOOK_BENCH_LOG").unwrap_or_else(|_| "warn".into()));
        spawn(command, "fieldbook listening on http://", log)
    }

    pub fn database_url(&self) -> &str {
        &self.database_url
    }

    /// `http://host:port`.
    pub fn http_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The server's resident memory now, in KiB.
    pub fn rss(&self) -> anyhow::Result<u64> {
        rss_kib(self.child.id())
    }
}

impl ServerProcess for FieldbookServer {
    fn ws_url(&self) -> String {
        format!("ws://{}/v1/sync?token={}", self.addr, self.token)
    }

    fn child(&mut self) -> &mut Child {
        &mut self.child
    }

    fn respawn(&mut self) -> anyhow::Result<()> {
        (self.child, self.addr) = Self::spawn(&self.database_url, &self.log)?;
        Ok(())
    }
}

pub struct NodeServer {
    child: Child,
    port: String,
    dir: PathBuf,
}

impl NodeServer {
    pub fn start() -> anyhow::Result<Self> {
        let dir = temp_dir("node");
        let (child, port) = Self::spawn(&dir)?;
        Ok(Self { child, port, dir })
    }

    /// Puts documents straight into the server's storage, one snapshot each, laid out as its
    /// `NodeFSStorageAdapter` lays them out (`<first 2 characters of the id>/<the rest>/
    /// snapshot/<name>`; the name is not read back). Seeding through the protocol slows
    /// down as the server holds more: 21,800 of 50,000 records after 15 minutes here. The
    /// server reads them from disk when a peer asks, as after a restart.
    pub fn store_directly<'a>(
        &self,
        documents: impl IntoIterator<Item = (&'a DocumentId, &'a Automerge)>,
    ) -> anyhow::Result<()> {
        for (id, doc) in documents {
            let id = id.to_string();
            let dir = self.dir.join(&id[..2]).join(&id[2..]).join("snapshot");
            std::fs::create_dir_all(&dir)?;
            std::fs::write(dir.join("seed"), doc.save())?;
        }
        Ok(())
    }

    fn spawn(dir: &std::path::Path) -> anyhow::Result<(Child, String)> {
        let mut command = Command::new("node");
        command.arg(repo_root().join("tests/js/node-server.mjs")).args(["--port", "0", "--dir"]).arg(dir);
        spawn(command, "listening ", SERVER_LOG)
    }
}

impl ServerProcess for NodeServer {
    fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}/v1/sync", self.port)
    }

    fn child(&mut self) -> &mut Child {
        &mut self.child
    }

    fn respawn(&mut self) -> anyhow::Result<()> {
        (self.child, self.port) = Self::spawn(&self.dir)?;
        Ok(())
    }
}

/// `tests/js/replay-server.mjs`: answers the stock client from recordings of another server's
/// answers, at once and doing no work, so a pull or upload with it is what it costs the client
/// alone. It keeps nothing between connections, so it is never restarted.
pub struct ReplayServer {
    child: Child,
    port: String,
}

impl ReplayServer {
    pub fn start(recordings: &[PathBuf]) -> anyhow::Result<Self> {
        let mut command = Command::new("node");
        command.arg(repo_root().join("tests/js/replay-server.mjs")).args(["--port", "0"]);
        for recording in recordings {
            command.arg("--recording").arg(recording);
        }
        let (child, port) = spawn(command, "listening ", SERVER_LOG)?;
        Ok(Self { child, port })
    }

    pub fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}/v1/sync", self.port)
    }
}

impl Drop for ReplayServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn terminate(child: &mut Child) -> anyhow::Result<()> {
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status()?;
    for _ in 0..200 {
        if child.try_wait()?.is_some() {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.kill()?;
    child.wait()?;
    Ok(())
}

// A benchmark that fails half-way must not leave servers running behind it, nor their
// data (tens of thousands of records each).
impl Drop for FieldbookServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Drop for NodeServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
