//! `fieldbook serve --config fieldbook.toml`: settings from a file, under environment
//! variables and flags; `--print-config` says what is in force and where it came from,
//! secrets masked.

use fieldbook_tests::{Backend, TempDir, TestApp, TestServer, binary};

fn print_config(args: &[&str], envs: &[(&str, &str)]) -> std::process::Output {
    std::process::Command::new(binary("fieldbook"))
        .arg("serve")
        .args(args)
        .arg("--print-config")
        .envs(envs.iter().copied())
        .output()
        .expect("run fieldbook")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_file_sits_under_environment_variables_and_flags() {
    let dir = TempDir::new("config");
    let file = dir.path().join("fieldbook.toml");
    std::fs::write(
        &file,
        r#"
listen = "0.0.0.0:8443"
database-url = "postgres://fieldbook:hunter2@db.council.example/fieldbook"
cache-documents = 7
api_calls_per_minute = 10
cache-idle = "5m"
trusted-proxy = ["10.0.0.2", "10.0.0.3"]
public-url = "https://fieldbook.council.example"
log-format = "json"
"#,
    )
    .unwrap();
    let file_arg = file.to_str().unwrap();
    let out = print_config(&["--config", file_arg, "--api-calls-per-minute", "42"], &[("FIELDBOOK_CACHE_IDLE", "90s")]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed = String::from_utf8_lossy(&out.stdout);
    let line =
        |name: &str| printed.lines().find(|l| l.starts_with(&format!("{name} = "))).unwrap_or_default().to_owned();
    assert_eq!(line("api-calls-per-minute"), r#"api-calls-per-minute = "42"  # flag"#, "a flag beats the file");
    assert_eq!(line("cache-idle"), r#"cache-idle = "90s"  # environment FIELDBOOK_CACHE_IDLE"#, "so does a variable");
    assert!(line("cache-documents").starts_with(r#"cache-documents = "7"  # config file "#), "{printed}");
    assert!(
        line("trusted-proxy").starts_with(r#"trusted-proxy = ["10.0.0.2", "10.0.0.3"]  # config file"#),
        "{printed}"
    );
    assert!(line("log-format").starts_with(r#"log-format = "json"  # config file"#), "{printed}");
    assert_eq!(line("max-frame-bytes"), r#"max-frame-bytes = "8388608"  # default"#);
    assert!(
        line("database-url").starts_with(r#"database-url = "postgres://fieldbook:****@db.council.example/fieldbook""#)
    );
    assert!(printed.contains("# oidc-issuer: not set"), "{printed}");
    assert!(!printed.contains("hunter2"), "the password is masked: {printed}");
    // The environment names the file too; signing keys given there are never printed.
    let secret = r#"{"keys":[{"kid":"k1","secret":"c2lnbmluZy1rZXktdGhhdC1tdXN0LW5vdC1iZS1zaG93bg"}]}"#;
    let out = print_config(&[], &[("FIELDBOOK_CONFIG", file_arg), ("FIELDBOOK_SIGNING_KEYS", secret)]);
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(printed.contains(r#"listen = "0.0.0.0:8443"  # config file"#), "{printed}");
    assert!(printed.contains("# token-signing keys: from FIELDBOOK_SIGNING_KEYS (not shown)"), "{printed}");
    assert!(!printed.contains("c2lnbmluZy1rZXk"), "{printed}");

    // Mistakes name the setting.
    std::fs::write(&file, "listen = \"127.0.0.1:0\"\ncache-size = 7\n").unwrap();
    let out = print_config(&["--config", file_arg], &[]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && said.contains("unknown setting \"cache-size\""), "{said}");
    std::fs::write(&file, "cache-documents = \"lots\"\n").unwrap();
    let out = print_config(&["--config", file_arg], &[]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && said.contains("--cache-documents"), "{said}");
    std::fs::write(&file, "listen = [\n").unwrap();
    assert!(!print_config(&["--config", file_arg], &[]).status.success());

    // A server takes its settings from the file (the test harness gives --listen and
    // --database-url as flags, which win).
    let app = TestApp::spawn(Backend::Sqlite).await;
    std::fs::write(&file, "public-url = \"https://fieldbook.council.example\"\nlisten = \"0.0.0.0:1\"\n").unwrap();
    let server = TestServer::start_with(&app.db.url, &["--config", file_arg]);
    let config = server.get_with("/scim/v2/ServiceProviderConfig", None).await.json();
    assert_eq!(config["documentationUri"], "https://fieldbook.council.example/v1/openapi.json");
}
