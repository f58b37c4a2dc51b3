//! The tablet and phone app (`clients/web`, built to `clients/web/dist`), served at `/`. The
//! build is embedded in the binary, so `fieldbook serve` needs nothing beside it; `--web-dir`
//! serves a directory instead (while developing the app). Its service worker keeps the app
//! shell offline; the server only has to hand out files, with caching that never pins a stale
//! shell and a policy that lets the app reach no one but this server.

use std::path::Path;

use axum::Router;
use axum::extract::Request;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG, HeaderValue, IF_NONE_MATCH, X_CONTENT_TYPE_OPTIONS,
};
use axum::http::{Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use rust_embed::RustEmbed;
use tower_http::compression::CompressionLayer;
use tower_http::services::ServeDir;

/// The app as `scripts/build-web` built it when this binary was compiled (none if it was not).
#[derive(RustEmbed)]
#[folder = "../clients/web/dist"] // from this crate's directory
#[allow_missing = true]
struct Built;

/// `wasm-unsafe-eval`: automerge runs as WebAssembly. `connect-src 'self'` covers the sync
/// WebSocket on this origin (CSP 3), and no other host, so a script injected somehow could not
/// send tokens anywhere.
const POLICY: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; \
                      img-src 'self' data:; connect-src 'self'; worker-src 'self'; \
                      manifest-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// Serves the app from `dir`, or the one built into the binary; if neither has it, a page
/// that says how to build it.
pub fn app(dir: Option<&Path>) -> Router {
    let router = match dir {
        Some(dir) if dir.join("index.html").is_file() => Router::new().fallback_service(ServeDir::new(dir)),
        None if Built::get("index.html").is_some() => Router::new().fallback(built),
        _ => return not_built(dir),
    };
    // Gzip: automerge's wasm is 3.6 MB, 1.2 MB compressed, on a phone's first load.
    router.layer(middleware::from_fn(headers)).layer(CompressionLayer::new().gzip(true))
}

fn not_built(dir: Option<&Path>) -> Router {
    let place = match dir {
        Some(dir) => format!("in <code>{}</code>", html_escape(&dir.display().to_string())),
        None => "into this binary".to_owned(),
    };
    tracing::warn!("the web app is not built {place}; `/` explains how to build it");
    let page = Html(format!(
        "<!doctype html><title>Fieldbook</title><h1>Fieldbook</h1><p>The web app is not built {place}. \
         Run <code>scripts/build-web</code> and build the server again, or start it with \
         <code>--web-dir</code> pointing at a build.</p>"
    ));
    Router::new().fallback(move || {
        let page = page.clone();
        async move { (StatusCode::NOT_FOUND, page) }
    })
}

/// A file of the embedded build, with its type and an ETag (its hash), answering 304 when
/// the browser has it already.
async fn built(method: Method, request: Request) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return StatusCode::METHOD_NOT_ALLOWED.into_response();
    }
    let path = request.uri().path().trim_start_matches('/');
    let path = if path.is_empty() { "index.html" } else { path };
    // Dotfiles (the build's input stamp) are not part of the app.
    let file = (!path.split('/').any(|part| part.starts_with('.'))).then(|| Built::get(path)).flatten();
    let Some(file) = file else { return StatusCode::NOT_FOUND.into_response() };
    let etag = format!("\"{}\"", hex(&file.metadata.sha256_hash()[..16]));
    let cached = request.headers().get(IF_NONE_MATCH).is_some_and(|tags| {
        tags.to_str().is_ok_and(|tags| tags.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
    });
    let mut response =
        if cached { StatusCode::NOT_MODIFIED.into_response() } else { file.data.into_owned().into_response() };
    let headers = response.headers_mut();
    if let Ok(kind) = HeaderValue::from_str(file.metadata.mimetype()) {
        headers.insert(CONTENT_TYPE, kind);
    }
    if let Ok(etag) = HeaderValue::from_str(&etag) {
        headers.insert(ETAG, etag);
    }
    response
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Hashed assets never change, so browsers may keep them; everything else (the page, the
/// service worker, the manifest) is revalidated on every load so updates reach devices.
async fn headers(request: Request, next: Next) -> Response {
    let asset = request.uri().path().starts_with("/assets/");
    let mut response = next.run(request).await.into_response();
    // Not a 404: during a deploy a browser must not keep "missing" for a year.
    let immutable = asset && response.status().is_success();
    let headers = response.headers_mut();
    let cache = if immutable { "public, max-age=31536000, immutable" } else { "no-cache" };
    headers.insert(CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(POLICY));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}
