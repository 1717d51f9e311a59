//! The error bodies LiteLLM answers with: its `ProxyException` shape
//! `{"error": {"message", "type", "param", "code"}}` and FastAPI's `{"detail": [...]}`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// An error as LiteLLM's `ProxyException` serializes it; `code` is the status as a string.
pub(crate) fn proxy_error(
    status: StatusCode,
    message: impl Into<String>,
    error_type: &str,
    param: &str,
) -> Response {
    let body = json!({
        "error": {
            "message": message.into(),
            "type": error_type,
            "param": param,
            "code": status.as_u16().to_string(),
        }
    });
    (status, Json(body)).into_response()
}

/// FastAPI's 422 for a request that failed validation.
pub(crate) fn validation_error(details: Vec<Value>) -> Response {
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        Json(json!({ "detail": details })),
    )
        .into_response()
}

/// FastAPI's 422 detail for a body that is not JSON.
pub(crate) fn json_invalid(error: &serde_json::Error) -> Value {
    // FastAPI reports the byte offset where decoding failed; one-line bodies make the
    // column a good stand-in for it.
    let position = if error.line() <= 1 {
        error.column().saturating_sub(1)
    } else {
        0
    };
    json!({
        "type": "json_invalid",
        "loc": ["body", position],
        "msg": "JSON decode error",
        "input": {},
        "ctx": { "error": "Expecting value" },
    })
}

/// FastAPI's 422 detail for a required body field that is absent.
pub(crate) fn missing_field(location: &str, field: &str, input: &Value) -> Value {
    json!({ "type": "missing", "loc": [location, field], "msg": "Field required", "input": input })
}

/// FastAPI's 422 detail for a body field of the wrong type.
pub(crate) fn wrong_type(field: &str, expected: &str, input: &Value) -> Value {
    let (error_type, message) = match expected {
        "string" => ("string_type", "Input should be a valid string"),
        "number" => ("float_type", "Input should be a valid number"),
        "integer" => ("int_type", "Input should be a valid integer"),
        "boolean" => ("bool_type", "Input should be a valid boolean"),
        _ => ("dict_type", "Input should be a valid dictionary"),
    };
    json!({ "type": error_type, "loc": ["body", field], "msg": message, "input": input })
}

/// FastAPI's 422 detail for a body that is JSON but not an object.
pub(crate) fn not_an_object(input: &Value) -> Value {
    json!({
        "type": "model_attributes_type",
        "loc": ["body"],
        "msg": "Input should be a valid dictionary or object to extract fields from",
        "input": input,
    })
}

/// FastAPI's answer to an unknown route.
pub(crate) async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({ "detail": "Not Found" })),
    )
        .into_response()
}

/// FastAPI's answer to a known route called with the wrong method.
pub(crate) async fn method_not_allowed() -> Response {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        Json(json!({ "detail": "Method Not Allowed" })),
    )
        .into_response()
}
