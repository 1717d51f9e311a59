//! LiteLLM's fallback management (`fallback_management_endpoints.py`): `POST /fallback`,
//! `GET /fallback/{model}` and `DELETE /fallback/{model}`, master key only, with the
//! proxy set up with `STORE_MODEL_IN_DB=True` so that changes are accepted.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::admin::{About, AdminRequest, authenticate_admin_about, log_call_about};
use super::errors::{json_invalid, missing_field, not_an_object, validation_error, wrong_type};
use super::state::{Inner, Shared};

/// The fallback types LiteLLM keeps, each its own list in `router_settings`.
const FALLBACK_TYPES: [&str; 3] = ["general", "context_window", "content_policy"];

/// `POST /fallback`: sets a model's fallbacks of one type, replacing any it had.
pub(crate) async fn create(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request = AdminRequest {
        peer,
        route: uri.path().to_owned(),
        headers,
    };
    let mut inner = shared.lock();
    let body: Value = match serde_json::from_slice(&body) {
        Ok(body) => body,
        Err(error) => {
            return logged(
                &mut inner,
                &request,
                None,
                validation_error(vec![json_invalid(&error)]),
            );
        }
    };
    let model = body.get("model").and_then(Value::as_str).map(str::to_owned);
    let about = About::subject(model.clone());
    if let Err(response) = authenticate_admin_about(&shared, &mut inner, &request, about) {
        return *response;
    }
    let (model, fallback_models, fallback_type) = match parse_create(&body) {
        Ok(parsed) => parsed,
        Err(details) => return logged(&mut inner, &request, model, validation_error(details)),
    };
    let response = apply_create(
        &shared,
        &mut inner,
        &model,
        &fallback_models,
        &fallback_type,
    );
    logged(&mut inner, &request, Some(model), response)
}

/// `GET /fallback/{model}?fallback_type=...`.
pub(crate) async fn get(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    uri: Uri,
    headers: HeaderMap,
    Path(model): Path<String>,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    read_or_delete(&shared, peer, &uri, headers, &model, &query, false)
}

/// `DELETE /fallback/{model}?fallback_type=...`.
pub(crate) async fn delete(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    uri: Uri,
    headers: HeaderMap,
    Path(model): Path<String>,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    read_or_delete(&shared, peer, &uri, headers, &model, &query, true)
}

fn read_or_delete(
    shared: &Shared,
    peer: SocketAddr,
    uri: &Uri,
    headers: HeaderMap,
    model: &str,
    query: &[(String, String)],
    delete: bool,
) -> Response {
    // Uvicorn decodes `%2F` before Starlette routes, so `{model}` never matches a `/`.
    if model.contains('/') {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({ "detail": "Not Found" })),
        )
            .into_response();
    }
    let request = AdminRequest {
        peer,
        route: uri.path().to_owned(),
        headers,
    };
    let mut inner = shared.lock();
    let about = About::subject(Some(model.to_owned()));
    if let Err(response) = authenticate_admin_about(shared, &mut inner, &request, about) {
        return *response;
    }
    let fallback_type = query
        .iter()
        .rev()
        .find(|(name, _)| name == "fallback_type")
        .map_or("general", |(_, value)| value.as_str());
    if !FALLBACK_TYPES.contains(&fallback_type) {
        let detail = literal_error("query", fallback_type);
        return logged(
            &mut inner,
            &request,
            Some(model.to_owned()),
            validation_error(vec![detail]),
        );
    }
    let configured = inner
        .fallbacks
        .get(fallback_type)
        .and_then(|by_model| by_model.get(model))
        .cloned();
    let response = match configured {
        None => error_detail(
            StatusCode::NOT_FOUND,
            json!({ "error": format!("No {fallback_type} fallbacks configured for model '{model}'") }),
        ),
        Some(_) if delete => {
            if let Some(by_model) = inner.fallbacks.get_mut(fallback_type) {
                by_model.remove(model);
            }
            let answer = json!({
                "model": model,
                "fallback_type": fallback_type,
                "message": "Fallback configuration deleted successfully",
            });
            (StatusCode::OK, Json(answer)).into_response()
        }
        Some(fallback_models) => {
            let answer = json!({
                "model": model,
                "fallback_models": fallback_models,
                "fallback_type": fallback_type,
            });
            (StatusCode::OK, Json(answer)).into_response()
        }
    };
    logged(&mut inner, &request, Some(model.to_owned()), response)
}

/// Pydantic's checks of `FallbackCreateRequest`, every problem at once.
fn parse_create(body: &Value) -> Result<(String, Vec<String>, String), Vec<Value>> {
    let Value::Object(fields) = body else {
        return Err(vec![not_an_object(body)]);
    };
    let mut details = Vec::new();
    let model = match fields.get("model") {
        None => {
            details.push(missing_field("body", "model", body));
            None
        }
        Some(Value::String(model)) if model.trim().is_empty() => {
            details.push(value_error(
                "model",
                "model must be a non-empty string",
                &Value::String(model.clone()),
            ));
            None
        }
        Some(Value::String(model)) => Some(model.trim().to_owned()),
        Some(other) => {
            details.push(wrong_type("model", "string", other));
            None
        }
    };
    let fallback_models = match fields.get("fallback_models") {
        None => {
            details.push(missing_field("body", "fallback_models", body));
            None
        }
        Some(Value::Array(items)) => {
            let names: Vec<String> = items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect();
            if names.len() != items.len() {
                for (index, item) in items
                    .iter()
                    .enumerate()
                    .filter(|(_, item)| !item.is_string())
                {
                    details.push(json!({
                        "type": "string_type",
                        "loc": ["body", "fallback_models", index],
                        "msg": "Input should be a valid string",
                        "input": item,
                    }));
                }
                None
            } else if names.is_empty() {
                details.push(json!({
                    "type": "too_short",
                    "loc": ["body", "fallback_models"],
                    "msg": "List should have at least 1 item after validation, not 0",
                    "input": [],
                    "ctx": { "field_type": "List", "min_length": 1, "actual_length": 0 },
                }));
                None
            } else if has_duplicates(&names) {
                details.push(value_error(
                    "fallback_models",
                    "fallback_models must not contain duplicates",
                    &Value::Array(items.clone()),
                ));
                None
            } else {
                Some(names)
            }
        }
        Some(other) => {
            details.push(json!({
                "type": "list_type",
                "loc": ["body", "fallback_models"],
                "msg": "Input should be a valid list",
                "input": other,
            }));
            None
        }
    };
    let fallback_type = match fields.get("fallback_type") {
        None => Some("general".to_owned()),
        Some(Value::String(kind)) if FALLBACK_TYPES.contains(&kind.as_str()) => Some(kind.clone()),
        Some(other) => {
            let shown = other
                .as_str()
                .map_or_else(|| other.to_string(), str::to_owned);
            let mut detail = literal_error("body", &shown);
            if let Some(input) = detail.get_mut("input") {
                *input = other.clone();
            }
            details.push(detail);
            None
        }
    };
    match (model, fallback_models, fallback_type) {
        (Some(model), Some(fallback_models), Some(fallback_type)) if details.is_empty() => {
            Ok((model, fallback_models, fallback_type))
        }
        _ => Err(details),
    }
}

/// The endpoint's own checks, then the change.
fn apply_create(
    shared: &Shared,
    inner: &mut Inner,
    model: &str,
    fallback_models: &[String],
    fallback_type: &str,
) -> Response {
    let mut available: Vec<&String> = shared.models.keys().collect();
    available.sort();
    if !shared.models.contains_key(model) {
        return error_detail(
            StatusCode::NOT_FOUND,
            json!({
                "error": format!("Model '{model}' not found in router"),
                "available_models": available,
            }),
        );
    }
    let unknown: Vec<&String> = fallback_models
        .iter()
        .filter(|name| !shared.models.contains_key(name.as_str()))
        .collect();
    if !unknown.is_empty() {
        return error_detail(
            StatusCode::BAD_REQUEST,
            json!({
                "error": format!("Invalid fallback models: {}", python_list(&unknown)),
                "available_models": available,
            }),
        );
    }
    if fallback_models.iter().any(|name| name == model) {
        return error_detail(
            StatusCode::BAD_REQUEST,
            json!({ "error": format!("Model '{model}' cannot be its own fallback") }),
        );
    }
    let by_model = inner.fallbacks.entry(fallback_type.to_owned()).or_default();
    let updated = by_model
        .insert(model.to_owned(), fallback_models.to_vec())
        .is_some();
    let verb = if updated { "updated" } else { "created" };
    let answer = json!({
        "model": model,
        "fallback_models": fallback_models,
        "fallback_type": fallback_type,
        "message": format!("Fallback configuration {verb} successfully"),
    });
    (StatusCode::OK, Json(answer)).into_response()
}

fn logged(
    inner: &mut Inner,
    request: &AdminRequest,
    model: Option<String>,
    response: Response,
) -> Response {
    log_call_about(inner, &request.route, About::subject(model), &response);
    response
}

/// An `HTTPException` with a dict detail, as FastAPI answers it.
fn error_detail(status: StatusCode, detail: Value) -> Response {
    (status, Json(json!({ "detail": detail }))).into_response()
}

/// Pydantic's detail for a `ValueError` raised by a field validator.
fn value_error(field: &str, message: &str, input: &Value) -> Value {
    json!({
        "type": "value_error",
        "loc": ["body", field],
        "msg": format!("Value error, {message}"),
        "input": input,
        "ctx": { "error": {} },
    })
}

/// Pydantic's detail for a `fallback_type` that is not one of the literals.
fn literal_error(location: &str, input: &str) -> Value {
    let expected = "'general', 'context_window' or 'content_policy'";
    json!({
        "type": "literal_error",
        "loc": [location, "fallback_type"],
        "msg": format!("Input should be {expected}"),
        "input": input,
        "ctx": { "expected": expected },
    })
}

fn has_duplicates(names: &[String]) -> bool {
    let mut seen = std::collections::BTreeSet::new();
    names.iter().any(|name| !seen.insert(name))
}

/// A list of strings as Python's `repr` prints it: `['a', 'b']`.
fn python_list(names: &[&String]) -> String {
    let quoted: Vec<String> = names.iter().map(|name| format!("'{name}'")).collect();
    format!("[{}]", quoted.join(", "))
}
