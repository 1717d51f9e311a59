//! The admin API of LiteLLM's key management: `/key/block`, `/key/unblock`, `/key/update`
//! and `/key/info`, each for the master key only, logged in the gateway's admin call log.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use tokio::time::Instant;

use super::AdminCall;
use super::auth::{admin_only_response, authenticate};
use super::chat::request_labels;
use super::errors::{
    json_invalid, missing_field, not_an_object, proxy_error, validation_error, wrong_type,
};
use super::state::{Caller, Inner, KeyRecord, Shared, iso8601_utc, now_unix};

/// A request answered early; boxed because a `Response` is large and the path is cold.
type Rejected = Box<Response>;

/// Request metadata every admin handler needs.
pub(crate) struct AdminRequest {
    peer: SocketAddr,
    route: String,
    headers: HeaderMap,
}

/// `POST /key/block`.
pub(crate) async fn block(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    set_blocked(
        &shared,
        AdminRequest {
            peer,
            route: uri.path().to_owned(),
            headers,
        },
        &body,
        true,
    )
}

/// `POST /key/unblock`.
pub(crate) async fn unblock(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    set_blocked(
        &shared,
        AdminRequest {
            peer,
            route: uri.path().to_owned(),
            headers,
        },
        &body,
        false,
    )
}

/// `POST /key/update`.
pub(crate) async fn update(
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
    let (body, key) = match admin_preamble(&shared, &mut inner, &request, &body) {
        Ok(parsed) => parsed,
        Err(response) => return *response,
    };
    let hashed = hash_if_raw(&key);
    let response = match parse_update(&body) {
        Err(details) => validation_error(details),
        Ok(update) => match inner.keys.get_mut(&hashed) {
            None => key_not_found_in_database(),
            Some(record) => {
                update.apply(record);
                let mut object = key_object(record);
                object.insert("key".to_owned(), Value::String(key));
                (StatusCode::OK, Json(Value::Object(object))).into_response()
            }
        },
    };
    log_call(&mut inner, &request.route, Some(hashed), &response);
    response
}

/// `GET /key/info?key=...`.
pub(crate) async fn info(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    uri: Uri,
    headers: HeaderMap,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    let request = AdminRequest {
        peer,
        route: uri.path().to_owned(),
        headers,
    };
    let key = query
        .into_iter()
        .find(|(name, _)| name == "key")
        .map(|(_, value)| value);
    let mut inner = shared.lock();
    let caller = match authenticate_admin(
        &shared,
        &mut inner,
        &request,
        key.as_deref().map(hash_if_raw),
    ) {
        Ok(caller) => caller,
        Err(response) => return *response,
    };
    // Without `key`, LiteLLM answers about the caller's own key.
    let key = key.unwrap_or_else(|| match caller {
        Caller::Master => crate::sha256_hex(&shared.master_key),
        Caller::Key(token) => token,
    });
    let hashed = hash_if_raw(&key);
    let response = match inner.keys.get(&hashed) {
        None => key_not_found_in_database(),
        Some(record) => {
            let mut object = key_object(record);
            // LiteLLM removes the hashed token before answering.
            object.remove("token");
            (StatusCode::OK, Json(json!({ "key": key, "info": object }))).into_response()
        }
    };
    log_call(&mut inner, &request.route, Some(hashed), &response);
    response
}

fn set_blocked(shared: &Shared, request: AdminRequest, body: &[u8], blocked: bool) -> Response {
    let mut inner = shared.lock();
    let (_body, key) = match admin_preamble(shared, &mut inner, &request, body) {
        Ok(parsed) => parsed,
        Err(response) => return *response,
    };
    let hashed = hash_if_raw(&key);
    let response = if !is_valid_api_key(&key) {
        proxy_error(
            StatusCode::BAD_REQUEST,
            "Invalid key format.",
            "bad_request_error",
            "key",
        )
    } else {
        match inner.keys.get_mut(&hashed) {
            None => proxy_error(
                StatusCode::NOT_FOUND,
                format!("Key {key} not found"),
                "bad_request_error",
                "key",
            ),
            Some(record) => {
                record.blocked = Some(blocked);
                record.updated_at = iso8601_utc(now_unix());
                (StatusCode::OK, Json(Value::Object(key_object(record)))).into_response()
            }
        }
    };
    log_call(&mut inner, &request.route, Some(hashed), &response);
    response
}

/// Parses the JSON body, authenticates the master key, and reads the required `key` field,
/// in the order FastAPI does: body decoding, then the auth dependency, then field validation.
fn admin_preamble(
    shared: &Shared,
    inner: &mut Inner,
    request: &AdminRequest,
    body: &[u8],
) -> Result<(Value, String), Rejected> {
    let body: Value = match serde_json::from_slice(body) {
        Ok(body) => body,
        Err(error) => {
            let response = validation_error(vec![json_invalid(&error)]);
            log_call(inner, &request.route, None, &response);
            return Err(Box::new(response));
        }
    };
    let key = body.get("key").and_then(Value::as_str).map(str::to_owned);
    authenticate_admin(shared, inner, request, key.as_deref().map(hash_if_raw))?;
    let failure = match (&body, &key) {
        (_, Some(key)) => return Ok((body.clone(), key.clone())),
        (Value::Object(fields), None) => match fields.get("key") {
            None => missing_field("body", "key", &body),
            Some(value) => wrong_type("key", "string", value),
        },
        (other, None) => not_an_object(other),
    };
    let response = validation_error(vec![failure]);
    log_call(inner, &request.route, None, &response);
    Err(Box::new(response))
}

/// Admits only the master key, logging and counting every refusal.
fn authenticate_admin(
    shared: &Shared,
    inner: &mut Inner,
    request: &AdminRequest,
    target: Option<String>,
) -> Result<Caller, Rejected> {
    let mut labels = request_labels(request.peer, &request.headers, &request.route);
    let (response, exception_class, hashed_api_key) =
        match authenticate(shared, inner, &request.headers) {
            Ok(Caller::Master) => return Ok(Caller::Master),
            Ok(Caller::Key(token)) => {
                let user_id = inner
                    .keys
                    .get(&token)
                    .and_then(|record| record.user_id.clone());
                (
                    admin_only_response(&request.route, user_id.as_deref()),
                    "Exception",
                    token,
                )
            }
            Err(failure) => (
                failure.response(),
                failure.exception_class,
                failure.hashed_api_key,
            ),
        };
    labels.set("hashed_api_key", hashed_api_key);
    inner.record_failure(&labels, exception_class, "None");
    log_call(inner, &request.route, target, &response);
    Err(Box::new(response))
}

fn log_call(inner: &mut Inner, route: &str, key: Option<String>, response: &Response) {
    inner.record_admin_call(AdminCall {
        path: route.to_owned(),
        key,
        status: response.status().as_u16(),
        at: Instant::now(),
    });
}

fn key_not_found_in_database() -> Response {
    proxy_error(
        StatusCode::NOT_FOUND,
        "Key not found in database",
        "not_found_error",
        "key",
    )
}

/// LiteLLM accepts a raw `sk-` key or its 64-character SHA-256 hex.
fn is_valid_api_key(key: &str) -> bool {
    (key.starts_with("sk-") && key.len() > 3)
        || (key.len() == 64 && key.chars().all(|character| character.is_ascii_hexdigit()))
}

/// Hashes a raw `sk-` key; anything else is taken to be hashed already, as LiteLLM does.
fn hash_if_raw(key: &str) -> String {
    if key.starts_with("sk-") {
        crate::sha256_hex(key)
    } else {
        key.to_owned()
    }
}

/// The fields of `/key/update` the simulator applies; an absent or `null` field is left as is.
#[derive(Debug, Default)]
struct KeyUpdate {
    max_budget: Option<f64>,
    rpm_limit: Option<u64>,
    tpm_limit: Option<u64>,
    blocked: Option<bool>,
    key_alias: Option<String>,
    metadata: Option<Map<String, Value>>,
}

impl KeyUpdate {
    fn apply(self, record: &mut KeyRecord) {
        if let Some(max_budget) = self.max_budget {
            record.max_budget = Some(max_budget);
        }
        if let Some(rpm_limit) = self.rpm_limit {
            record.rpm_limit = Some(rpm_limit);
        }
        if let Some(tpm_limit) = self.tpm_limit {
            record.tpm_limit = Some(tpm_limit);
        }
        if let Some(blocked) = self.blocked {
            record.blocked = Some(blocked);
        }
        if let Some(key_alias) = self.key_alias {
            record.key_alias = Some(key_alias);
        }
        if let Some(metadata) = self.metadata {
            record.metadata = metadata;
        }
        record.updated_at = iso8601_utc(now_unix());
    }
}

fn parse_update(body: &Value) -> Result<KeyUpdate, Vec<Value>> {
    let mut update = KeyUpdate::default();
    let mut details = Vec::new();
    let present = |field: &str| body.get(field).filter(|value| !value.is_null());
    if let Some(value) = present("max_budget") {
        match value.as_f64() {
            Some(max_budget) => update.max_budget = Some(max_budget),
            None => details.push(wrong_type("max_budget", "number", value)),
        }
    }
    for (field, target) in [
        ("rpm_limit", &mut update.rpm_limit),
        ("tpm_limit", &mut update.tpm_limit),
    ] {
        if let Some(value) = present(field) {
            match value.as_u64() {
                Some(limit) => *target = Some(limit),
                None => details.push(wrong_type(field, "integer", value)),
            }
        }
    }
    if let Some(value) = present("blocked") {
        match value.as_bool() {
            Some(blocked) => update.blocked = Some(blocked),
            None => details.push(wrong_type("blocked", "boolean", value)),
        }
    }
    if let Some(value) = present("key_alias") {
        match value.as_str() {
            Some(alias) => update.key_alias = Some(alias.to_owned()),
            None => details.push(wrong_type("key_alias", "string", value)),
        }
    }
    if let Some(value) = present("metadata") {
        match value.as_object() {
            Some(metadata) => update.metadata = Some(metadata.clone()),
            None => details.push(wrong_type("metadata", "object", value)),
        }
    }
    if details.is_empty() {
        Ok(update)
    } else {
        Err(details)
    }
}

/// A key as LiteLLM returns its `LiteLLM_VerificationToken` row.
fn key_object(record: &KeyRecord) -> Map<String, Value> {
    let object = json!({
        "token": record.token,
        "key_name": record.key_name,
        "key_alias": record.key_alias,
        "soft_budget_cooldown": false,
        "spend": record.spend,
        "expires": null,
        "models": [],
        "aliases": {},
        "config": {},
        "user_id": record.user_id,
        "team_id": record.team_id,
        "max_parallel_requests": null,
        "metadata": record.metadata,
        "tpm_limit": record.tpm_limit,
        "rpm_limit": record.rpm_limit,
        "max_budget": record.max_budget,
        "budget_duration": null,
        "budget_reset_at": null,
        "allowed_cache_controls": [],
        "allowed_routes": [],
        "permissions": {},
        "model_spend": {},
        "model_max_budget": {},
        "budget_id": null,
        "organization_id": null,
        "object_permission_id": null,
        "created_at": record.created_at,
        "created_by": "default_user_id",
        "updated_at": record.updated_at,
        "updated_by": "default_user_id",
        "blocked": record.blocked,
        "litellm_budget_table": null,
        "org_id": null,
        "object_permission": null,
    });
    match object {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}
