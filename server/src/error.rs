//! The one error type of the HTTP layer; every failure becomes a JSON body with a status.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

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
    #[error("{0}")]
    Conflict(String),
    #[error("storage unavailable")]
    Storage(StorageError),
}

impl From<StorageError> for AppError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::Invalid(message) => AppError::BadRequest(message),
            StorageError::NotFound(message) => AppError::NotFound(message),
            other => AppError::Storage(other),
        }
    }
}

impl AppError {
    pub fn unauthorized(message: impl Into<String>) -> Self {
        AppError::Unauthorized(message.into())
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = match &self {
            AppError::Unauthorized(_) | AppError::DeviceRevoked => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::Storage(e) => {
                tracing::error!(error = %e, "storage error while serving a request");
                StatusCode::SERVICE_UNAVAILABLE
            }
        };
        let wipe = matches!(self, AppError::DeviceRevoked);
        let body = if wipe {
            serde_json::json!({ "error": self.to_string(), "code": "device-revoked", "wipe": true })
        } else {
            serde_json::json!({ "error": self.to_string() })
        };
        let mut response = (status, Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if wipe {
            response.headers_mut().insert(WIPE_HEADER, HeaderValue::from_static("1"));
        }
        response
    }
}
