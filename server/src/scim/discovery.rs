//! What this SCIM service supports (RFC 7644 §4): `ServiceProviderConfig`, `ResourceTypes`
//! and `Schemas`, which providers read before provisioning.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use super::groups::GROUP_SCHEMA;
use super::users::{ENTERPRISE, USER_SCHEMA};
use super::{list_response, respond};
use crate::state::AppState;

pub async fn service_provider_config(State(state): State<AppState>) -> Response {
    respond(
        StatusCode::OK,
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
            "documentationUri": format!("{}/v1/openapi.json", state.public_url),
            "patch": {"supported": true},
            "bulk": {"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
            "filter": {"supported": true, "maxResults": 1000},
            "changePassword": {"supported": false},
            "sort": {"supported": false},
            "etag": {"supported": false},
            "authenticationSchemes": [{
                "type": "oauthbearertoken",
                "name": "Service-account key",
                "description": "A key from `fieldbook service-accounts add --scopes scim`, as `Authorization: Bearer <key>`.",
                "primary": true,
            }],
            "meta": {"resourceType": "ServiceProviderConfig"},
        }),
    )
}

pub async fn resource_types(State(state): State<AppState>) -> Response {
    let base = &state.public_url;
    let types = vec![
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
            "id": "User", "name": "User", "endpoint": "/Users", "schema": USER_SCHEMA,
            "schemaExtensions": [{"schema": ENTERPRISE, "required": false}],
            "meta": {"resourceType": "ResourceType", "location": format!("{base}/scim/v2/ResourceTypes/User")},
        }),
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
            "id": "Group", "name": "Group", "endpoint": "/Groups", "schema": GROUP_SCHEMA,
            "meta": {"resourceType": "ResourceType", "location": format!("{base}/scim/v2/ResourceTypes/Group")},
        }),
    ];
    let total = types.len();
    list_response(types, total, 1)
}

fn attribute(name: &str, kind: &str, required: bool, unique: &str, description: &str) -> Value {
    json!({
        "name": name, "type": kind, "multiValued": false, "description": description, "required": required,
        "caseExact": false, "mutability": "readWrite", "returned": "default", "uniqueness": unique,
    })
}

fn multi(name: &str, description: &str, sub: Vec<Value>) -> Value {
    json!({
        "name": name, "type": "complex", "multiValued": true, "description": description, "required": false,
        "mutability": "readWrite", "returned": "default", "subAttributes": sub,
    })
}

pub async fn schemas() -> Response {
    let value = || attribute("value", "string", false, "none", "The identifier.");
    let user = json!({
        "id": USER_SCHEMA, "name": "User", "description": "A person who works with practice records.",
        "attributes": [
            attribute("userName", "string", true, "server", "The provider's name for them, unique whatever its case."),
            attribute("displayName", "string", false, "none", "Their name as Fieldbook shows it."),
            json!({"name": "name", "type": "complex", "multiValued": false, "required": false, "mutability": "readWrite",
                   "returned": "default", "description": "Their name in parts.",
                   "subAttributes": [
                       attribute("formatted", "string", false, "none", "The whole name."),
                       attribute("givenName", "string", false, "none", "Given name."),
                       attribute("familyName", "string", false, "none", "Family name."),
                   ]}),
            attribute("active", "boolean", false, "none", "False suspends them."),
            multi("roles", "Their role: practitioner (default), supervisor, manager, principal-social-worker, hr or admin.", vec![value()]),
            multi("groups", "Their team (read only: write membership through Groups).", vec![value()]),
        ],
        "meta": {"resourceType": "Schema", "location": format!("/scim/v2/Schemas/{USER_SCHEMA}")},
    });
    let enterprise = json!({
        "id": ENTERPRISE, "name": "EnterpriseUser", "description": "Employment details.",
        "attributes": [
            attribute("employeeNumber", "string", false, "none", "Their employee number."),
            json!({"name": "manager", "type": "complex", "multiValued": false, "required": false, "mutability": "readWrite",
                   "returned": "default", "description": "Their supervisor, from the day it is set.",
                   "subAttributes": [value()]}),
        ],
        "meta": {"resourceType": "Schema", "location": format!("/scim/v2/Schemas/{ENTERPRISE}")},
    });
    let group = json!({
        "id": GROUP_SCHEMA, "name": "Group", "description": "A team.",
        "attributes": [
            attribute("displayName", "string", true, "server", "The team's name."),
            multi("members", "The people in the team (each is in one team).", vec![value()]),
        ],
        "meta": {"resourceType": "Schema", "location": format!("/scim/v2/Schemas/{GROUP_SCHEMA}")},
    });
    list_response(vec![user, enterprise, group], 3, 1)
}
