//! The development-records API described: `GET /v1/openapi.json`, generated from the
//! handlers' own types (utoipa), and `GET /v1/api/docs`, the same rendered as a plain HTML
//! page that needs nothing from the internet.

use axum::Json;
use axum::Router;
use axum::response::Html;
use axum::routing::get;
use serde_json::Value;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{feed, hr, insights};
use crate::state::AppState;
use crate::storage::{DevelopmentRecord, Practitioner};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Fieldbook development records API",
        description = "Minimised development records for HR, workforce systems and learning record stores, \
                       and insights for leaders. Never narrative, never anything about a family."
    ),
    paths(
        hr::list_practitioners,
        hr::development_record,
        hr::development_records,
        feed::feed,
        feed::statements,
        insights::insights
    ),
    components(schemas(Practitioner, DevelopmentRecord, crate::error::Problem)),
    modifiers(&BearerKeys)
)]
struct ApiDoc;

/// Service-account keys (`fbsa_…`) and people's access tokens, as bearer credentials.
struct BearerKeys;

impl Modify for BearerKeys {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("A service-account key (fbsa_…) or a person's access token"))
                    .build(),
            ),
        );
    }
}

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/v1/openapi.json", get(openapi_json)).route("/v1/api/docs", get(docs))
}

fn document() -> Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    doc["info"]["version"] = Value::String(env!("CARGO_PKG_VERSION").to_owned());
    doc
}

async fn openapi_json() -> Json<Value> {
    Json(document())
}

/// The OpenAPI document as a readable page: each operation with its parameters and answers,
/// and the schemas.
async fn docs() -> Html<String> {
    let doc = document();
    let escape = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    let text = |v: &Value| escape(v.as_str().unwrap_or_default());
    let mut html = String::from(
        "<!doctype html><html lang=\"en\"><meta charset=\"utf-8\"><title>Fieldbook API</title>\
         <style>body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;line-height:1.4}\
         code,pre{background:#f4f4f4;padding:.1rem .3rem}pre{padding:.6rem;overflow:auto}\
         table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2rem .5rem;text-align:left}</style>",
    );
    html.push_str(&format!("<h1>{}</h1><p>{}</p>", text(&doc["info"]["title"]), text(&doc["info"]["description"])));
    html.push_str("<p>Machine-readable: <a href=\"/v1/openapi.json\"><code>/v1/openapi.json</code></a>. Send <code>Authorization: Bearer &lt;key or token&gt;</code>.</p>");
    for (path, operations) in doc["paths"].as_object().into_iter().flatten() {
        for (method, op) in operations.as_object().into_iter().flatten() {
            html.push_str(&format!("<h2><code>{} {}</code></h2>", method.to_uppercase(), escape(path)));
            for key in ["summary", "description"] {
                if op[key].is_string() {
                    html.push_str(&format!("<p>{}</p>", text(&op[key])));
                }
            }
            if let Some(params) = op["parameters"].as_array() {
                html.push_str("<table><tr><th>parameter</th><th>in</th><th>meaning</th></tr>");
                for p in params {
                    html.push_str(&format!(
                        "<tr><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
                        text(&p["name"]),
                        text(&p["in"]),
                        text(&p["description"])
                    ));
                }
                html.push_str("</table>");
            }
            html.push_str("<p>Answers:</p><ul>");
            for (status, response) in op["responses"].as_object().into_iter().flatten() {
                let schema = response["content"]
                    .as_object()
                    .and_then(|c| c.values().next())
                    .map(|c| c["schema"].to_string())
                    .unwrap_or_default();
                html.push_str(&format!(
                    "<li><b>{status}</b> {} <code>{}</code></li>",
                    text(&response["description"]),
                    escape(&schema)
                ));
            }
            html.push_str("</ul>");
        }
    }
    html.push_str("<h2>Schemas</h2>");
    for (name, schema) in doc["components"]["schemas"].as_object().into_iter().flatten() {
        let pretty = serde_json::to_string_pretty(schema).unwrap_or_default();
        html.push_str(&format!("<h3 id=\"{0}\">{0}</h3><pre>{1}</pre>", escape(name), escape(&pretty)));
    }
    html.push_str("</html>");
    Html(html)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_endpoint_is_described() {
        let doc = document();
        for path in [
            "/v1/api/practitioners",
            "/v1/api/practitioners/{id}/development-record",
            "/v1/api/development-records",
            "/v1/api/feed",
            "/v1/api/xapi/statements",
            "/v1/api/insights",
        ] {
            assert!(doc["paths"][path]["get"].is_object(), "{path} is missing");
        }
        assert!(doc["components"]["schemas"]["DevelopmentRecord"].is_object());
        assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    }
}
