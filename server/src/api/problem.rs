//! Errors of the development-records API as `application/problem+json` (RFC 9457).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::error::AppError;

/// An error (RFC 9457 problem details).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    kind: &'static str,
    title: &'static str,
    status: u16,
    detail: String,
    /// The query parameter at fault, for a bad request.
    #[serde(skip_serializing_if = "Option::is_none")]
    parameter: Option<&'static str>,
}

impl Problem {
    pub fn bad_parameter(parameter: &'static str, detail: impl Into<String>) -> Self {
        Problem {
            kind: "about:blank",
            title: "Bad Request",
            status: 400,
            detail: detail.into(),
            parameter: Some(parameter),
        }
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Problem { kind: "about:blank", title: "Forbidden", status: 403, detail: detail.into(), parameter: None }
    }

    pub fn too_many_requests(detail: impl Into<String>) -> Self {
        Problem { kind: "about:blank", title: "Too Many Requests", status: 429, detail: detail.into(), parameter: None }
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Problem { kind: "about:blank", title: "Not Found", status: 404, detail: detail.into(), parameter: None }
    }
}

impl From<AppError> for Problem {
    fn from(e: AppError) -> Self {
        let (status, title) = match &e {
            AppError::Unauthorized(_) | AppError::DeviceRevoked => (401, "Unauthorized"),
            AppError::Forbidden(_) => (403, "Forbidden"),
            AppError::NotFound(_) => (404, "Not Found"),
            AppError::BadRequest(_) => (400, "Bad Request"),
            AppError::Conflict(_) => (409, "Conflict"),
            AppError::Storage(err) => {
                tracing::error!(error = %err, "storage error while serving the API");
                (503, "Service Unavailable")
            }
        };
        Problem { kind: "about:blank", title, status, detail: e.to_string(), parameter: None }
    }
}

impl From<crate::storage::StorageError> for Problem {
    fn from(e: crate::storage::StorageError) -> Self {
        AppError::from(e).into()
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if status == StatusCode::TOO_MANY_REQUESTS {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}
