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
    pub(crate) peer: SocketAddr,
    pub(crate) route: String,
    pub(crate) headers: HeaderMap,
}

/// What an admin call was about, for the call log.
#[derive(Debug, Clone, Default)]
pub(crate) struct About {
    /// The hashed key, for the key routes.
    pub(crate) key: Option<String>,
    /// The team or model, for the team and fallback routes.
    pub(crate) subject: Option<String>,
}

impl About {
    fn key(key: Option<String>) -> Self {
        Self { key, subject: None }
    }

    pub(crate) fn subject(subject: Option<String>) -> Self {
        Self { key: None, subject }
    }
}

/// `POST /key/block`.
pub(crate) async fn block(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let response = set_blocked(
        &shared,
        AdminRequest {
            peer,
            route: uri.path().to_owned(),
            headers,
        },
        &body,
        true,
    );
    slow_admin(&shared).await;
    response
}

/// Waits the configured admin delay, after the change and before the answer.
async fn slow_admin(shared: &Shared) {
    let delay_ms = shared
        .admin_delay_ms
        .load(std::sync::atomic::Ordering::Relaxed);
    if delay_ms > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(delay_ms)).await;
    }
}

/// `POST /key/unblock`.
pub(crate) async fn unblock(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let response = set_blocked(
        &shared,
        AdminRequest {
            peer,
            route: uri.path().to_owned(),
            headers,
        },
        &body,
        false,
    );
    slow_admin(&shared).await;
    response
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
    admin_body(shared, inner, request, body, "key")
}

/// Like [`admin_preamble`], for the required string field `field`; a call about a `key` is
/// logged with its hash, any other with the field's value as its subject.
pub(crate) fn admin_body(
    shared: &Shared,
    inner: &mut Inner,
    request: &AdminRequest,
    body: &[u8],
    field: &str,
) -> Result<(Value, String), Rejected> {
    let body: Value = match serde_json::from_slice(body) {
        Ok(body) => body,
        Err(error) => {
            let response = validation_error(vec![json_invalid(&error)]);
            log_call_about(inner, &request.route, About::default(), &response);
            return Err(Box::new(response));
        }
    };
    let value = body.get(field).and_then(Value::as_str).map(str::to_owned);
    let about = if field == "key" {
        About::key(value.as_deref().map(hash_if_raw))
    } else {
        About::subject(value.clone())
    };
    authenticate_admin_about(shared, inner, request, about)?;
    let failure = match (&body, &value) {
        (_, Some(value)) => return Ok((body.clone(), value.clone())),
        (Value::Object(fields), None) => match fields.get(field) {
            None => missing_field("body", field, &body),
            Some(found) => wrong_type(field, "string", found),
        },
        (other, None) => not_an_object(other),
    };
    let response = validation_error(vec![failure]);
    log_call_about(inner, &request.route, About::default(), &response);
    Err(Box::new(response))
}

/// Admits only the master key, logging and counting every refusal.
fn authenticate_admin(
    shared: &Shared,
    inner: &mut Inner,
    request: &AdminRequest,
    target: Option<String>,
) -> Result<Caller, Rejected> {
    authenticate_admin_about(shared, inner, request, About::key(target))
}

/// Admits only the master key, logging every refusal with what the call was `about`.
pub(crate) fn authenticate_admin_about(
    shared: &Shared,
    inner: &mut Inner,
    request: &AdminRequest,
    about: About,
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
    log_call_about(inner, &request.route, about, &response);
    Err(Box::new(response))
}

fn log_call(inner: &mut Inner, route: &str, key: Option<String>, response: &Response) {
    log_call_about(inner, route, About::key(key), response);
}

/// Appends one call to the admin call log.
pub(crate) fn log_call_about(inner: &mut Inner, route: &str, about: About, response: &Response) {
    inner.record_admin_call(AdminCall {
        path: route.to_owned(),
        key: about.key,
        subject: about.subject,
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

/// The fields of `/key/update` the simulator applies; an absent field is left as is. A `null`
/// limit removes the limit, as LiteLLM 1.106 stores every field the request set
/// (`model_dump(exclude_unset=True)`); `null` for the other fields is left as is.
#[derive(Debug, Default)]
struct KeyUpdate {
    max_budget: Option<Option<f64>>,
    rpm_limit: Option<Option<u64>>,
    tpm_limit: Option<Option<u64>>,
    blocked: Option<bool>,
    key_alias: Option<String>,
    metadata: Option<Map<String, Value>>,
}

impl KeyUpdate {
    fn apply(self, record: &mut KeyRecord) {
        if let Some(max_budget) = self.max_budget {
            record.max_budget = max_budget;
        }
        if let Some(rpm_limit) = self.rpm_limit {
            record.rpm_limit = rpm_limit;
        }
        if let Some(tpm_limit) = self.tpm_limit {
            record.tpm_limit = tpm_limit;
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
    match body.get("max_budget") {
        None => {}
        Some(Value::Null) => update.max_budget = Some(None),
        Some(value) => match value.as_f64() {
            Some(max_budget) => update.max_budget = Some(Some(max_budget)),
            None => details.push(wrong_type("max_budget", "number", value)),
        },
    }
    for (field, target) in [
        ("rpm_limit", &mut update.rpm_limit),
        ("tpm_limit", &mut update.tpm_limit),
    ] {
        match body.get(field) {
            None => {}
            Some(Value::Null) => *target = Some(None),
            Some(value) => match value.as_u64() {
                Some(limit) => *target = Some(Some(limit)),
                None => details.push(wrong_type(field, "integer", value)),
            },
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
