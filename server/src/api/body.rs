//! `JsonBody<T>`: a request body that is a JSON object of `T`'s fields. Unlike axum's `Json`,
//! it refuses a JSON array, which serde would otherwise read as `T`'s fields in order; the
//! statuses are axum's (400 not JSON, 415 not sent as JSON, 422 not `T`), answered as problems.

use axum::extract::{FromRequest, Request};
use axum::http::header::CONTENT_TYPE;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::AppError;
use crate::state::AppState;

pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for JsonBody<T> {
    type Rejection = AppError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, AppError> {
        let json = request
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|t| t.to_str().ok())
            .and_then(|t| t.split(';').next())
            .is_some_and(|t| t.trim() == "application/json" || t.trim().ends_with("+json"));
        if !json {
            return Err(AppError::UnsupportedMediaType("send the body as application/json".into()));
        }
        let bytes = axum::body::Bytes::from_request(request, state)
            .await
            .map_err(|e| AppError::BadRequest(format!("could not read the body: {e}")))?;
        let value: Value =
            serde_json::from_slice(&bytes).map_err(|e| AppError::BadRequest(format!("the body is not JSON: {e}")))?;
        if !value.is_object() {
            return Err(AppError::Unprocessable("the body must be a JSON object".into()));
        }
        serde_json::from_value(value).map(JsonBody).map_err(|e| AppError::Unprocessable(e.to_string()))
    }
}
