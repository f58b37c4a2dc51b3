//! The one error type of every REST endpoint. Each failure answers
//! `application/problem+json` (RFC 9457): `{type, title, status, detail}`, with `parameter`
//! naming a bad query parameter and `code` a condition a client acts on (`device-revoked`
//! with `wipe: true`, `throttled`). The caller's faults are 4xx; the server's own are 5xx
//! and say no more than that (the log has the cause).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::storage::StorageError;

/// Header on every answer to a revoked device: delete local data. The body says so too
/// (`"wipe": true`), for clients that only read bodies.
pub const WIPE_HEADER: &str = "fieldbook-wipe";

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    Unauthorized(String),
    /// The token belongs to a device an admin revoked: refused, and told to wipe.
    #[error("this device was revoked; delete its local data")]
    DeviceRevoked,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    /// A query parameter is wrong; the answer names it.
    #[error("{detail}")]
    BadParameter { parameter: &'static str, detail: String },
    #[error("{0}")]
    Conflict(String),
    /// The body is not sent as the content type the endpoint takes.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The body is well-formed but not what the endpoint takes.
    #[error("{0}")]
    Unprocessable(String),
    /// Too many calls (or sign-in failures): try again after `retry_after` seconds.
    #[error("{detail}")]
    TooManyRequests { detail: String, retry_after: u64, code: Option<&'static str> },
    /// A dependency (the database) is not answering, or the server is at capacity: retry.
    #[error("{0}")]
    Unavailable(String),
    /// The server's own fault; the detail the client sees is generic.
    #[error("internal error: {0}")]
    Internal(String),
}

/// The body of every error answer (RFC 9457 problem details).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// Always `about:blank`: the status says what kind of problem it is.
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub title: &'static str,
    pub status: u16,
    pub detail: String,
    /// The query parameter at fault, for a bad request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameter: Option<&'static str>,
    /// A condition a client acts on: `device-revoked`, `throttled`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<&'static str>,
    /// With `device-revoked`: delete the device's local data.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wipe: Option<bool>,
}

impl From<StorageError> for AppError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::Refused(message) => AppError::BadRequest(message),
            StorageError::Conflict(message) => AppError::Conflict(message),
            StorageError::NotFound(message) => AppError::NotFound(message),
            e if e.is_duplicate() => AppError::Conflict("it exists already".into()),
            e if e.is_unavailable() => AppError::Unavailable(e.to_string()),
            other => AppError::Internal(other.to_string()),
        }
    }
}

impl AppError {
    pub fn unauthorized(message: impl Into<String>) -> Self {
        AppError::Unauthorized(message.into())
    }

    pub fn bad_parameter(parameter: &'static str, detail: impl Into<String>) -> Self {
        AppError::BadParameter { parameter, detail: detail.into() }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            AppError::Unauthorized(_) | AppError::DeviceRevoked => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::BadRequest(_) | AppError::BadParameter { .. } => StatusCode::BAD_REQUEST,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            AppError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The problem document this error answers with.
    pub fn problem(&self) -> Problem {
        let status = self.status();
        let detail = match self {
            AppError::Internal(_) => "the server failed; the error is logged".to_owned(),
            AppError::Unavailable(_) => {
                "the server cannot reach its database or is at capacity; retry shortly".to_owned()
            }
            other => other.to_string(),
        };
        let code = match self {
            AppError::DeviceRevoked => Some("device-revoked"),
            AppError::TooManyRequests { code, .. } => *code,
            _ => None,
        };
        Problem {
            kind: "about:blank",
            title: status.canonical_reason().unwrap_or("Error"),
            status: status.as_u16(),
            detail,
            parameter: match self {
                AppError::BadParameter { parameter, .. } => Some(parameter),
                _ => None,
            },
            code,
            wipe: matches!(self, AppError::DeviceRevoked).then_some(true),
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        match &self {
            AppError::Internal(cause) => tracing::error!(error = %cause, "request failed"),
            AppError::Unavailable(cause) => tracing::warn!(error = %cause, "request failed: unavailable"),
            _ => {}
        }
        problem_response(&self.problem(), self.retry_after())
    }
}

impl AppError {
    fn retry_after(&self) -> Option<u64> {
        match self {
            AppError::TooManyRequests { retry_after, .. } => Some((*retry_after).max(1)),
            AppError::Unavailable(_) => Some(1),
            _ => None,
        }
    }
}

/// A problem document as a response, with the headers its status calls for.
pub fn problem_response(problem: &Problem, retry_after: Option<u64>) -> Response {
    let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = serde_json::to_vec(problem).unwrap_or_default();
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if status == StatusCode::UNAUTHORIZED {
        headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    if let Some(seconds) = retry_after {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    if problem.wipe == Some(true) {
        headers.insert(WIPE_HEADER, HeaderValue::from_static("1"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_servers_faults_are_5xx_and_say_nothing_inside() {
        let internal = AppError::from(StorageError::Internal("stored framework: expected value at line 1".into()));
        assert_eq!(internal.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!internal.problem().detail.contains("framework"));
        let refused = AppError::from(StorageError::Refused("\"x\" is not a date".into()));
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
        assert_eq!(AppError::from(StorageError::Conflict("exists".into())).status(), StatusCode::CONFLICT);
        let down = AppError::from(StorageError::Sqlx(sqlx::Error::PoolTimedOut));
        assert_eq!(down.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
}
