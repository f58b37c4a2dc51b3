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

use super::{admin, expertise, feed, frameworks, hr, insights, me, people, records};
use crate::auth::routes as auth_routes;
use crate::state::AppState;
use crate::storage::{DevelopmentRecord, Practitioner};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Fieldbook API",
        description = "Sign-in, each user's record index, people, frameworks and resources for apps, the expertise map, \
                       the CPD record, administration, and the minimised development records for HR, workforce systems \
                       and learning record stores, with insights for leaders: never narrative, never anything about a \
                       family. Sync is the automerge-repo protocol at `/v1/sync`; SCIM provisioning at `/scim/v2` follows \
                       RFC 7643/7644. Every error answers `application/problem+json`."
    ),
    paths(
        auth_routes::login,
        auth_routes::refresh,
        auth_routes::logout,
        auth_routes::me,
        records::record_index,
        records::discard_draft,
        people::people,
        people::asye,
        frameworks::frameworks,
        frameworks::resources,
        me::cpd_record,
        expertise::expertise,
        expertise::nominate,
        expertise::nominations,
        expertise::confirm,
        admin::list_users,
        admin::add_user,
        admin::show_user,
        admin::update_user,
        admin::set_supervisor,
        admin::set_password,
        admin::list_devices,
        admin::revoke_device,
        admin::erase_record,
        admin::delete_record,
        admin::subject_access,
        admin::list_teams,
        admin::add_team,
        admin::import,
        admin::audit_trail,
        hr::list_practitioners,
        hr::development_record,
        hr::development_records,
        feed::feed,
        feed::statements,
        insights::insights
    ),
    components(schemas(Practitioner, DevelopmentRecord, crate::error::Problem)),
    modifiers(&BearerKeys, &ProblemResponses)
)]
struct ApiDoc;

/// Every error is `application/problem+json` (whatever raises it), and every operation may
/// also answer 500 (the server's fault) and 503 (the database is not answering: retry), and
/// 401 where it needs credentials.
struct ProblemResponses;

impl Modify for ProblemResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        let problem = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/problem+json",
                    ContentBuilder::new().schema(Some(Ref::from_schema_name("Problem"))).build(),
                )
                .build()
        };
        for item in openapi.paths.paths.values_mut() {
            for operation in
                [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch].into_iter().flatten()
            {
                let secured = operation.security.as_ref().is_some_and(|s| !s.is_empty());
                let takes_body = operation.request_body.is_some();
                let responses = &mut operation.responses.responses;
                for (status, response) in responses.iter_mut() {
                    let utoipa::openapi::RefOr::T(response) = response else { continue };
                    if status.starts_with('4') || status.starts_with('5') {
                        let description = response.description.clone();
                        *response = problem(&description);
                    }
                }
                let mut add = |status: &str, description: &str| {
                    responses.entry(status.to_owned()).or_insert_with(|| problem(description).into());
                };
                if secured {
                    add("401", "Missing, invalid or expired credentials");
                }
                if takes_body {
                    add("400", "The body is not what this takes (it says what is wrong)");
                    add("415", "The body is not sent as the content type this takes");
                    add("422", "The body is JSON, but not with the fields and types this takes");
                }
                add("500", "The server's own fault (the log has the cause)");
                add("503", "The database is not answering, or the server is at capacity: retry after `Retry-After`");
            }
        }
    }
}

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
        // Every REST route the server has (SCIM is described by its RFCs).
        let routes = [
            ("post", "/v1/auth/login"),
            ("post", "/v1/auth/refresh"),
            ("post", "/v1/auth/logout"),
            ("get", "/v1/auth/me"),
            ("get", "/v1/records"),
            ("delete", "/v1/records/{id}"),
            ("get", "/v1/people"),
            ("get", "/v1/people/{id}/asye"),
            ("get", "/v1/frameworks"),
            ("get", "/v1/resources"),
            ("get", "/v1/me/cpd"),
            ("get", "/v1/expertise"),
            ("post", "/v1/me/champion-nominations"),
            ("get", "/v1/champions/nominations"),
            ("post", "/v1/champions/confirm"),
            ("get", "/v1/admin/users"),
            ("post", "/v1/admin/users"),
            ("get", "/v1/admin/users/{id}"),
            ("patch", "/v1/admin/users/{id}"),
            ("put", "/v1/admin/users/{id}/supervisor"),
            ("put", "/v1/admin/users/{id}/password"),
            ("get", "/v1/admin/users/{id}/devices"),
            ("post", "/v1/admin/users/{id}/devices/{device}/revoke"),
            ("get", "/v1/admin/users/{id}/subject-access"),
            ("get", "/v1/admin/teams"),
            ("post", "/v1/admin/teams"),
            ("post", "/v1/admin/import"),
            ("get", "/v1/admin/audit"),
            ("post", "/v1/admin/records/{id}/erase"),
            ("post", "/v1/admin/records/{id}/delete"),
            ("get", "/v1/api/practitioners"),
            ("get", "/v1/api/practitioners/{id}/development-record"),
            ("get", "/v1/api/development-records"),
            ("get", "/v1/api/feed"),
            ("get", "/v1/api/xapi/statements"),
            ("get", "/v1/api/insights"),
        ];
        for (method, path) in routes {
            let operation = &doc["paths"][path][method];
            assert!(operation.is_object(), "{method} {path} is missing");
            assert_eq!(
                operation["responses"]["500"]["content"]["application/problem+json"]["schema"]["$ref"],
                "#/components/schemas/Problem",
                "{method} {path}: errors are problems"
            );
        }
        let described: usize = doc["paths"].as_object().unwrap().values().map(|p| p.as_object().unwrap().len()).sum();
        assert_eq!(described, routes.len(), "every described operation is a route listed here");
        assert!(doc["components"]["schemas"]["DevelopmentRecord"].is_object());
        assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    }
}
