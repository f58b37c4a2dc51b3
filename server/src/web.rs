//! The tablet and phone app (`clients/web`, built to `clients/web/dist`), served at `/`.
//! Its service worker keeps the app shell offline; the server only has to hand out files,
//! with caching that never pins a stale shell and a policy that lets the app reach no one
//! but this server.

use std::path::Path;

use axum::Router;
use axum::extract::Request;
use axum::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, HeaderValue, X_CONTENT_TYPE_OPTIONS};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use tower_http::compression::CompressionLayer;
use tower_http::services::ServeDir;

/// Where `scripts/build-web` puts the app, relative to the repository root.
pub const DEFAULT_WEB_DIR: &str = "clients/web/dist";

/// `wasm-unsafe-eval`: automerge runs as WebAssembly. `connect-src 'self'` covers the sync
/// WebSocket on this origin (CSP 3), and no other host, so a script injected somehow could not
/// send tokens anywhere.
const POLICY: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; \
                      img-src 'self' data:; connect-src 'self'; worker-src 'self'; \
                      manifest-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// Serves the built app from `dir`, or, if it was never built, a page that says how to build it.
pub fn app(dir: &Path) -> Router {
    if !dir.join("index.html").is_file() {
        tracing::warn!(dir = %dir.display(), "the web app is not built; `/` explains how to build it");
        let page = Html(format!(
            "<!doctype html><title>Fieldbook</title><h1>Fieldbook</h1><p>The web app is not built in \
             <code>{}</code>. Run <code>scripts/build-web</code>, or start the server with \
             <code>--web-dir</code> pointing at a build.</p>",
            html_escape(&dir.display().to_string())
        ));
        return Router::new().fallback(move || {
            let page = page.clone();
            async move { (axum::http::StatusCode::NOT_FOUND, page) }
        });
    }
    // Gzip: automerge's wasm is 3.6 MB, 1.2 MB compressed, on a phone's first load.
    Router::new()
        .fallback_service(ServeDir::new(dir))
        .layer(middleware::from_fn(headers))
        .layer(CompressionLayer::new().gzip(true))
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
