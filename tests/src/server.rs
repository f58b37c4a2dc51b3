//! The real `fieldbook` binary as a child process.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::binary;

pub struct TestServer {
    child: Child,
    pub addr: String,
    pub database_url: String,
    extra_args: Vec<String>,
    envs: Vec<(String, String)>,
}

impl TestServer {
    pub fn start(database_url: &str) -> Self {
        Self::start_with(database_url, &[])
    }

    /// Starts `fieldbook serve --listen 127.0.0.1:0` with extra flags and waits until it
    /// prints the address it bound.
    pub fn start_with(database_url: &str, extra_args: &[&str]) -> Self {
        Self::spawn(database_url, extra_args.iter().map(|s| s.to_string()).collect(), Vec::new())
    }

    /// With extra flags and environment variables.
    pub fn start_with_env(database_url: &str, extra_args: &[&str], envs: &[(&str, &str)]) -> Self {
        let envs = envs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Self::spawn(database_url, extra_args.iter().map(|s| s.to_string()).collect(), envs)
    }

    /// Logging at `info` into `log` instead of the test's stderr (to read what it logged).
    pub fn start_logging_to(database_url: &str, extra_args: &[&str], log: &std::path::Path) -> Self {
        let file = std::fs::File::create(log).expect("create the log file");
        let args = extra_args.iter().map(|s| s.to_string()).collect();
        Self::spawn_with_stderr(database_url, args, vec![("RUST_LOG".into(), "info".into())], file.into())
    }

    fn spawn(database_url: &str, extra_args: Vec<String>, envs: Vec<(String, String)>) -> Self {
        Self::spawn_with_stderr(database_url, extra_args, envs, Stdio::inherit())
    }

    fn spawn_with_stderr(
        database_url: &str,
        extra_args: Vec<String>,
        envs: Vec<(String, String)>,
        stderr: Stdio,
    ) -> Self {
        let mut child = Command::new(binary("fieldbook"))
            .args(["serve", "--listen", "127.0.0.1:0", "--database-url", database_url])
            .arg("--signing-key-file")
            .arg(crate::database::key_file_for(database_url))
            .args(&extra_args)
            .env("RUST_LOG", std::env::var("FIELDBOOK_TEST_LOG").unwrap_or_else(|_| "warn".into()))
            // The web app is the one built into the binary, as shipped (scripts/test builds it
            // before the binary).
            .env_remove("FIELDBOOK_WEB_DIR")
            .envs(envs.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("start fieldbook");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).expect("read server stdout");
        let addr = line
            .trim()
            .strip_prefix("fieldbook listening on http://")
            .unwrap_or_else(|| panic!("server did not start: {line:?}"))
            .to_owned();
        Self { child, addr, database_url: database_url.to_owned(), extra_args, envs }
    }

    pub fn http_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn ws_url(&self, token: &str) -> String {
        format!("ws://{}/v1/sync?token={token}", self.addr)
    }

    /// SIGKILL: no shutdown handler runs, nothing is flushed.
    pub fn kill_9(&mut self) {
        self.child.kill().expect("kill -9");
        self.child.wait().expect("reap");
    }

    /// SIGTERM and wait for a graceful exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().expect("kill -TERM");
        for _ in 0..100 {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("server did not shut down within 5 s of SIGTERM");
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The exit status if the process has exited (without waiting), `None` while it runs.
    pub fn exit_status(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().expect("wait")
    }

    /// A new server process on the same database (a new port).
    pub fn restart(&self) -> Self {
        Self::spawn(&self.database_url, self.extra_args.clone(), self.envs.clone())
    }

    /// POST JSON to a path.
    pub async fn post(&self, path: &str, json: &serde_json::Value) -> HttpResponse {
        self.request("POST", path, None, Some(json)).await
    }

    /// GET a path with a bearer token.
    pub async fn get_with(&self, path: &str, bearer: Option<&str>) -> HttpResponse {
        self.request("GET", path, bearer, None).await
    }

    /// GET a path; returns (status, body).
    pub async fn get(&self, path: &str, bearer: Option<&str>) -> (u16, String) {
        let response = self.get_with(path, bearer).await;
        (response.status, response.body)
    }

    /// Any method, with a bearer token and a JSON body.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        bearer: Option<&str>,
        json: Option<&serde_json::Value>,
    ) -> HttpResponse {
        let body = json.map(|j| ("application/json", j.to_string()));
        http_request(&self.addr, method, path, bearer, body, &[]).await
    }

    /// GET with a bearer token and extra headers (`Accept`, `If-None-Match`, …).
    pub async fn get_with_headers(&self, path: &str, bearer: &str, headers: &[(&str, &str)]) -> HttpResponse {
        http_request(&self.addr, "GET", path, Some(bearer), None, headers).await
    }

    /// Any method with a bearer token and a body of the given content type.
    pub async fn request_as(
        &self,
        method: &str,
        path: &str,
        bearer: &str,
        content_type: &str,
        body: &serde_json::Value,
    ) -> HttpResponse {
        http_request(&self.addr, method, path, Some(bearer), Some((content_type, body.to_string())), &[]).await
    }

    /// POST a CSV body with a bearer token.
    pub async fn post_csv(&self, path: &str, bearer: &str, csv: &str) -> HttpResponse {
        http_request(&self.addr, "POST", path, Some(bearer), Some(("text/csv", csv.to_owned())), &[]).await
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP answer: status, headers (names lowercase) and body.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// The body as JSON (`null` if it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// A minimal HTTP/1.1 request with an optional bearer token and (content type, body).
async fn http_request(
    addr: &str,
    method: &str,
    path: &str,
    bearer: Option<&str>,
    body: Option<(&str, String)>,
    headers: &[(&str, &str)],
) -> HttpResponse {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let auth = bearer.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    let content = body.as_ref().map(|(t, _)| format!("Content-Type: {t}\r\n")).unwrap_or_default();
    let body = body.map(|(_, b)| b).unwrap_or_default();
    let extra: String = headers.iter().map(|(n, v)| format!("{n}: {v}\r\n")).collect();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}{content}{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read");
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let mut lines = head.lines();
    let status = lines.next().and_then(|l| l.split_whitespace().nth(1)).and_then(|s| s.parse().ok()).expect("status");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let chunked = headers.iter().any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let body = if chunked { dechunk(body) } else { body.to_owned() };
    HttpResponse { status, headers, body }
}

/// A chunked body (streamed responses), joined.
fn dechunk(mut rest: &str) -> String {
    let mut body = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).expect("chunk size");
        if size == 0 {
            break;
        }
        body.push_str(&after[..size]);
        rest = &after[size + 2..];
    }
    body
}
