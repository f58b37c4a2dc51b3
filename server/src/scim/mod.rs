//! SCIM 2.0 provisioning (RFC 7643 resources, RFC 7644 protocol) at `/scim/v2`: a council's
//! identity provider (Microsoft Entra ID, Okta, Keycloak) creates, updates, suspends and
//! deletes people, and keeps teams and their members, as they change in its directory. Only a
//! service account with the `scim` scope calls it; every change is audited as that account's.

mod discovery;
mod error;
mod filter;
mod groups;
mod patch;
mod users;

use axum::Router;
use axum::body::Bytes;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::Value;

use crate::auth;
use crate::org::{Operator, SERVICE_KEY_PREFIX};
use crate::state::AppState;
use crate::storage::{Scope, ServiceAccount};
pub use error::ScimError;

pub const CONTENT_TYPE: &str = "application/scim+json";
const LIST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/scim/v2/Users", get(users::list).post(users::create))
        .route("/scim/v2/Users/{id}", get(users::get).put(users::replace).patch(users::patch).delete(users::delete))
        .route("/scim/v2/Groups", get(groups::list).post(groups::create))
        .route(
            "/scim/v2/Groups/{id}",
            get(groups::get).put(groups::replace).patch(groups::patch).delete(groups::delete),
        )
        .route("/scim/v2/ServiceProviderConfig", get(discovery::service_provider_config))
        .route("/scim/v2/ResourceTypes", get(discovery::resource_types))
        .route("/scim/v2/Schemas", get(discovery::schemas))
}

/// The identity provider's service account (`scim` scope), from its bearer key.
pub struct Provisioner(ServiceAccount);

impl Provisioner {
    fn operator(&self) -> Operator<'_> {
        Operator::Service { account_id: &self.0.id }
    }
}

impl FromRequestParts<AppState> for Provisioner {
    type Rejection = ScimError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ScimError> {
        let key = auth::bearer_token(parts).filter(|k| k.starts_with(SERVICE_KEY_PREFIX)).ok_or_else(|| {
            ScimError::unauthorized("send a service-account key with the scim scope as `Authorization: Bearer <key>`")
        })?;
        match state.db.service_account_by_key(&auth::tokens::secret_hash(&key)).await? {
            Some(account) if account.may(Scope::Scim) => {
                crate::telemetry::record_caller(&format!("service:{}", account.id), None);
                Ok(Provisioner(account))
            }
            Some(account) if account.revoked_at.is_some() => {
                Err(ScimError::unauthorized("this service account was revoked"))
            }
            Some(_) => Err(ScimError::new(StatusCode::FORBIDDEN, None, "this service account lacks the scim scope")),
            None => Err(ScimError::unauthorized("unknown service-account key (rotated?)")),
        }
    }
}

/// A request body as JSON, whatever its content type says (providers send
/// `application/scim+json`, some `application/json`).
fn body_json(body: &Bytes) -> Result<Value, ScimError> {
    serde_json::from_slice(body).map_err(|e| ScimError::bad("invalidSyntax", format!("the body is not JSON: {e}")))
}

/// A resource (or list) as `application/scim+json`, with `Location` for a created one.
fn respond(status: StatusCode, body: Value) -> Response {
    let location = (status == StatusCode::CREATED)
        .then(|| body["meta"]["location"].as_str().and_then(|l| HeaderValue::from_str(l).ok()))
        .flatten();
    let mut response = (status, body.to_string()).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    if let Some(location) = location {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

fn list_response(resources: Vec<Value>, total: usize, start: usize) -> Response {
    let body = serde_json::json!({
        "schemas": [LIST_SCHEMA],
        "totalResults": total,
        "startIndex": start,
        "itemsPerPage": resources.len(),
        "Resources": resources,
    });
    respond(StatusCode::OK, body)
}

/// The value under `name` in a JSON object, the name's case aside (SCIM attribute names
/// ignore case).
fn field<'v>(object: &'v Value, name: &str) -> Option<&'v Value> {
    object.as_object()?.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v)
}

/// A string attribute; empty or null counts as absent.
fn text(object: &Value, name: &str) -> Option<String> {
    field(object, name).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned)
}

/// An id made from a name (`Pat.Reid@council.example` → `pat.reid`), unique among `taken`.
fn new_id(name: &str, taken: impl Fn(&str) -> bool) -> String {
    let local = name.split('@').next().unwrap_or(name).to_lowercase();
    let slug: String = local
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') { c } else { '-' })
        .collect::<String>()
        .trim_matches(|c| matches!(c, '.' | '-' | '_'))
        .to_owned();
    let base = if slug.is_empty() { "user".to_owned() } else { slug };
    (1..).map(|n| if n == 1 { base.clone() } else { format!("{base}-{n}") }).find(|id| !taken(id)).expect("unbounded")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_come_from_names_and_stay_unique() {
        let taken = |id: &str| id == "pat.reid";
        assert_eq!(new_id("Pat.Reid@council.example", taken), "pat.reid-2");
        assert_eq!(new_id("Kim Lee", taken), "kim-lee");
        assert_eq!(new_id("@@", taken), "user");
        assert_eq!(new_id("Children's Services East", taken), "children-s-services-east");
    }
}
