//! Logging: `RUST_LOG` filters (default `info`), to stderr so stdout stays for output; as
//! text for people, or as JSON lines for a SIEM (`--log-format json`). A request's events
//! carry its span: method, path (never the query, where browsers put tokens), request id, and
//! the user and device once it is authenticated; a sync connection's carry its user and device.
//! Nothing logs tokens, passwords or what records say.

use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    /// One JSON object per line: `timestamp`, `level`, `message` and fields, `target`, and the
    /// spans it happened in (`span` the innermost, `spans` all).
    Json,
}

pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(true).with_span_list(true).try_init(),
    };
}

/// Names the authenticated user (and device) on the request's span, so every later event of
/// the request says whose it was.
pub fn record_caller(user: &str, device: Option<&str>) {
    let span = tracing::Span::current();
    span.record("user", user);
    if let Some(device) = device {
        span.record("device", device);
    }
}
