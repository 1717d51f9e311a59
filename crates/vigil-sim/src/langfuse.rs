//! `LangfuseFake`: Langfuse's public prompt API on loopback: `GET /api/public/v2/prompts/{name}`
//! and `PATCH .../versions/{version}`, with Langfuse's Basic auth, error bodies, label
//! uniqueness per prompt and its refusal to set `latest` by hand.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::{Json, Router};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::SimError;
use crate::pager::serve;

/// How many calls the log keeps; older ones are dropped first.
const MAX_CALLS: usize = 1000;
/// The label Langfuse keeps on the newest version of each prompt.
const LATEST: &str = "latest";
/// The label a prompt is read by when the request names neither a label nor a version.
const PRODUCTION: &str = "production";
/// What Langfuse appends to an authentication failure it caught.
const CHECK_HOST: &str = ". Confirm that you've configured the correct host.";

/// One prompt version the fake starts with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakePromptVersion {
    /// The prompt's name; may contain `/`.
    pub name: String,
    /// The version number, from 1.
    pub version: u32,
    /// The prompt's text.
    pub prompt: String,
    /// The version's labels; `latest` is added to the newest version by the fake itself.
    pub labels: Vec<String>,
}

/// One request the fake received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LangfuseCall {
    /// The method, e.g. `PATCH`.
    pub method: String,
    /// The path as sent, percent-encoding included.
    pub path: String,
    /// The prompt name, decoded, when the route has one.
    pub prompt_name: Option<String>,
    /// The public key of a Basic `Authorization` header, when there was one.
    pub public_key: Option<String>,
    /// The status the fake answered.
    pub status: u16,
}

#[derive(Debug, Clone)]
struct StoredVersion {
    prompt: String,
    labels: Vec<String>,
    created_at: String,
    updated_at: String,
}

#[derive(Debug, Default)]
struct Store {
    /// Versions by prompt name, then by version number.
    prompts: BTreeMap<String, BTreeMap<u32, StoredVersion>>,
    calls: Vec<LangfuseCall>,
}

#[derive(Debug)]
struct FakeState {
    public_key: String,
    secret_key: String,
    store: Mutex<Store>,
}

/// A running fake of Langfuse's prompt API. Cloning shares the same fake.
#[derive(Debug, Clone)]
pub struct LangfuseFake {
    state: Arc<FakeState>,
    local_addr: SocketAddr,
    tracker: TaskTracker,
}

impl LangfuseFake {
    /// Serves the prompt API on `listener` until `shutdown` is cancelled, for a project whose
    /// API key pair is `public_key`/`secret_key`, holding `prompts`.
    ///
    /// Refuses a version listed twice, a version 0, and a label on two versions of a prompt.
    pub async fn start(
        listener: tokio::net::TcpListener,
        public_key: &str,
        secret_key: &str,
        prompts: Vec<FakePromptVersion>,
        shutdown: CancellationToken,
    ) -> Result<LangfuseFake, SimError> {
        let store = Store {
            prompts: validate(prompts)?,
            calls: Vec::new(),
        };
        let state = Arc::new(FakeState {
            public_key: public_key.to_owned(),
            secret_key: secret_key.to_owned(),
            store: Mutex::new(store),
        });
        let app = Router::new()
            .route("/api/public/v2/prompts/{name}", any(prompt_by_name))
            .route(
                "/api/public/v2/prompts/{name}/versions/{version}",
                any(prompt_version),
            )
            .route(
                "/api/public/health",
                get(|| async { Json(json!({"status": "OK"})) }),
            )
            .with_state(Arc::clone(&state));
        let (local_addr, tracker) = serve(listener, app, shutdown, "langfuse fake")?;
        Ok(LangfuseFake {
            state,
            local_addr,
            tracker,
        })
    }

    /// The base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.local_addr)
    }

    /// Every request received (the most recent 1000), oldest first.
    pub fn calls(&self) -> Vec<LangfuseCall> {
        lock(&self.state).calls.clone()
    }

    /// A prompt's labels by version; empty for an unknown prompt.
    pub fn labels(&self, name: &str) -> BTreeMap<u32, Vec<String>> {
        lock(&self.state)
            .prompts
            .get(name)
            .map(|versions| {
                versions
                    .iter()
                    .map(|(version, stored)| (*version, stored.labels.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The version of a prompt that carries `label`, if any.
    pub fn version_with_label(&self, name: &str, label: &str) -> Option<u32> {
        lock(&self.state).prompts.get(name).and_then(|versions| {
            versions
                .iter()
                .find(|(_, stored)| stored.labels.iter().any(|own| own == label))
                .map(|(version, _)| *version)
        })
    }

    /// Waits until the server has stopped after `shutdown` was cancelled.
    pub async fn stopped(&self) {
        self.tracker.wait().await;
    }
}

type Prompts = BTreeMap<String, BTreeMap<u32, StoredVersion>>;

fn validate(prompts: Vec<FakePromptVersion>) -> Result<Prompts, SimError> {
    let invalid = |message: String| Err(SimError::InvalidPrompts(message));
    let created_at = js_iso_now();
    let mut store: Prompts = BTreeMap::new();
    for version in prompts {
        if version.version == 0 || version.name.is_empty() {
            return invalid(format!(
                "prompt `{}` version {} needs a name and a version from 1",
                version.name, version.version
            ));
        }
        let versions = store.entry(version.name.clone()).or_default();
        let mut labels: Vec<String> = Vec::new();
        for label in version.labels {
            if label != LATEST && !labels.contains(&label) {
                labels.push(label);
            }
        }
        if let Some(label) = labels
            .iter()
            .find(|label| versions.values().any(|other| other.labels.contains(label)))
        {
            return invalid(format!(
                "label `{label}` is on two versions of prompt `{}`",
                version.name
            ));
        }
        let stored = StoredVersion {
            prompt: version.prompt,
            labels,
            created_at: created_at.clone(),
            updated_at: created_at.clone(),
        };
        if versions.insert(version.version, stored).is_some() {
            return invalid(format!(
                "prompt `{}` version {} is listed twice",
                version.name, version.version
            ));
        }
    }
    for versions in store.values_mut() {
        if let Some((_, newest)) = versions.iter_mut().next_back() {
            newest.labels.push(LATEST.to_owned());
        }
    }
    Ok(store)
}

fn lock(state: &FakeState) -> MutexGuard<'_, Store> {
    state.store.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Who called, as Langfuse's `ApiAuthService` decides it.
enum Access {
    /// Basic auth with the secret key: the whole project.
    Project,
    /// Bearer auth with the public key alone: only scores, not prompts.
    Scores,
}

/// Checks the `Authorization` header; an error is Langfuse's message.
fn authenticate(state: &FakeState, headers: &HeaderMap) -> Result<Access, String> {
    let Some(header) = headers
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
    else {
        return Err("No authorization header".to_owned());
    };
    if header.starts_with("Basic ") {
        let Some((_public_key, secret_key)) = basic_credentials(header) else {
            return Err(format!("Invalid authorization header{CHECK_HOST}"));
        };
        // Langfuse finds the API key by the secret key's hash; a public key that does not
        // match it is only logged (a half-rotated key pair still works).
        return if secret_key == state.secret_key {
            Ok(Access::Project)
        } else {
            Err(format!("Invalid credentials{CHECK_HOST}"))
        };
    }
    if let Some(public_key) = header.strip_prefix("Bearer ") {
        return if public_key == state.public_key {
            Ok(Access::Scores)
        } else {
            Err(format!("Invalid public key{CHECK_HOST}"))
        };
    }
    Err("Invalid authorization header".to_owned())
}

/// The user and password of a Basic header, both non-empty, split at the first `:` as
/// Langfuse's `atob(value).split(":")` does.
fn basic_credentials(header: &str) -> Option<(String, String)> {
    let encoded = header.split(' ').nth(1)?;
    let decoded = String::from_utf8(base64_decode(encoded)?).ok()?;
    let mut parts = decoded.split(':');
    let user = parts.next().filter(|user| !user.is_empty())?;
    let password = parts.next().filter(|password| !password.is_empty())?;
    Some((user.to_owned(), password.to_owned()))
}

/// Standard base64 with optional padding; `None` for anything else.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut bits: u32 = 0;
    let mut n_bits = 0;
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    for byte in text.trim_end_matches('=').bytes() {
        let value = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        bits = (bits << 6) | u32::from(value);
        n_bits += 6;
        if n_bits >= 8 {
            n_bits -= 8;
            out.push(u8::try_from((bits >> n_bits) & 0xff).ok()?);
        }
    }
    Some(out)
}

fn public_key_sent(headers: &HeaderMap) -> Option<String> {
    let header = headers.get(AUTHORIZATION)?.to_str().ok()?;
    header
        .starts_with("Basic ")
        .then(|| basic_credentials(header))
        .flatten()
        .map(|(user, _)| user)
}

/// Langfuse's answer to a `BaseError` caught by `withMiddlewares`.
fn base_error(status: StatusCode, message: impl Into<String>, class: &str) -> Response {
    (
        status,
        Json(json!({ "message": message.into(), "error": class })),
    )
        .into_response()
}

/// Langfuse's answer to a request that failed zod validation.
fn invalid_request_data(issues: Vec<Value>) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({ "message": "Invalid request data", "error": issues })),
    )
        .into_response()
}

fn method_not_allowed() -> Response {
    base_error(
        StatusCode::METHOD_NOT_ALLOWED,
        "Method not allowed",
        "MethodNotAllowedError",
    )
}

fn record(store: &mut Store, call: LangfuseCall) {
    if store.calls.len() >= MAX_CALLS {
        store.calls.remove(0);
    }
    store.calls.push(call);
}

/// `GET /api/public/v2/prompts/{name}?version=&label=`.
async fn prompt_by_name(
    State(state): State<Arc<FakeState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(name): Path<String>,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    let response = if method == Method::GET {
        read_prompt(&state, &headers, &name, &query)
    } else {
        method_not_allowed()
    };
    let call = LangfuseCall {
        method: method.to_string(),
        path: uri.path().to_owned(),
        prompt_name: Some(name),
        public_key: public_key_sent(&headers),
        status: response.status().as_u16(),
    };
    record(&mut lock(&state), call);
    response
}

fn read_prompt(
    state: &FakeState,
    headers: &HeaderMap,
    name: &str,
    query: &[(String, String)],
) -> Response {
    match authenticate(state, headers) {
        Ok(Access::Project) => {}
        Ok(Access::Scores) => {
            return base_error(
                StatusCode::FORBIDDEN,
                "Access denied - need to use basic auth with secret key to GET prompts",
                "ForbiddenError",
            );
        }
        Err(message) => return base_error(StatusCode::UNAUTHORIZED, message, "UnauthorizedError"),
    }
    let param = |wanted: &str| {
        query
            .iter()
            .rev()
            .find(|(key, _)| key == wanted)
            .map(|(_, value)| value.clone())
    };
    let version = match param("version").map(|text| text.trim().parse::<u32>()) {
        None => None,
        Some(Ok(version)) => Some(version),
        Some(Err(_)) => {
            return invalid_request_data(vec![json!({
                "expected": "number",
                "code": "invalid_type",
                "received": "NaN",
                "path": ["version"],
                "message": "Invalid input: expected number, received NaN",
            })]);
        }
    };
    // Langfuse tests both for truthiness: version 0 and an empty label count as absent.
    let version = version.filter(|version| *version > 0);
    let label = param("label").filter(|label| !label.is_empty());
    if version.is_some() && label.is_some() {
        return base_error(
            StatusCode::BAD_REQUEST,
            "Cannot specify both version and label",
            "InvalidRequestError",
        );
    }
    let store = lock(state);
    let versions = store.prompts.get(name);
    let found = match (version, &label) {
        (Some(version), _) => versions
            .and_then(|versions| versions.get(&version))
            .map(|stored| (version, stored)),
        (None, label) => {
            let label = label.as_deref().unwrap_or(PRODUCTION);
            versions.and_then(|versions| {
                versions
                    .iter()
                    .find(|(_, stored)| stored.labels.iter().any(|own| own == label))
                    .map(|(version, stored)| (*version, stored))
            })
        }
    };
    let Some((version, stored)) = found else {
        let detail = match (version, label) {
            (Some(version), _) => format!("with version {version}"),
            (None, label) => format!("with label '{}'", label.as_deref().unwrap_or(PRODUCTION)),
        };
        return base_error(
            StatusCode::NOT_FOUND,
            format!("Prompt not found: '{name}' {detail}"),
            "LangfuseNotFoundError",
        );
    };
    let mut object = prompt_object(name, version, stored);
    object.insert(
        "isActive".to_owned(),
        Value::Bool(stored.labels.iter().any(|own| own == PRODUCTION)),
    );
    (StatusCode::OK, Json(Value::Object(object))).into_response()
}

/// `PATCH /api/public/v2/prompts/{name}/versions/{version}` with `{"newLabels": [...]}`.
async fn prompt_version(
    State(state): State<Arc<FakeState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path((name, version)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let response = if method == Method::PATCH {
        update_labels(&state, &headers, &name, &version, &body)
    } else {
        method_not_allowed()
    };
    let call = LangfuseCall {
        method: method.to_string(),
        path: uri.path().to_owned(),
        prompt_name: Some(name),
        public_key: public_key_sent(&headers),
        status: response.status().as_u16(),
    };
    record(&mut lock(&state), call);
    response
}

fn update_labels(
    state: &FakeState,
    headers: &HeaderMap,
    name: &str,
    version_text: &str,
    body: &[u8],
) -> Response {
    // `createAuthedProjectAPIRoute` answers auth failures itself, without an error class.
    match authenticate(state, headers) {
        Ok(Access::Project) => {}
        Ok(Access::Scores) => {
            let message = "Access denied - insufficient permissions for this endpoint";
            return (StatusCode::FORBIDDEN, Json(json!({ "message": message }))).into_response();
        }
        Err(message) => {
            return (
                StatusCode::UNAUTHORIZED,
                Json(json!({ "message": message })),
            )
                .into_response();
        }
    }
    // Next.js parses a JSON body before the handler runs, and answers bad JSON itself.
    let Ok(body) = serde_json::from_slice::<Value>(body) else {
        return (
            StatusCode::BAD_REQUEST,
            [(CONTENT_TYPE, HeaderValue::from_static("text/plain"))],
            "Invalid JSON",
        )
            .into_response();
    };
    let new_labels = match parse_new_labels(&body) {
        Ok(labels) => labels,
        Err(issues) => return invalid_request_data(issues),
    };
    let not_found = || {
        base_error(
            StatusCode::NOT_FOUND,
            format!("Prompt '{name}' version {version_text} not found in project"),
            "LangfuseNotFoundError",
        )
    };
    let Ok(version) = version_text.parse::<u32>() else {
        return not_found();
    };
    let mut store = lock(state);
    let Some(versions) = store.prompts.get_mut(name) else {
        return not_found();
    };
    if !versions.contains_key(&version) {
        return not_found();
    }
    let now = js_iso_now();
    // A label is unique per prompt: every other version that has one of them loses it.
    for (other_version, other) in versions.iter_mut() {
        if *other_version != version && other.labels.iter().any(|own| new_labels.contains(own)) {
            other.labels.retain(|own| !new_labels.contains(own));
            other.updated_at = now.clone();
        }
    }
    let Some(stored) = versions.get_mut(&version) else {
        return not_found();
    };
    // The new labels come first, then the version's own; none is ever removed here.
    let mut labels: Vec<String> = Vec::new();
    for label in new_labels.iter().chain(stored.labels.iter()) {
        if !labels.contains(label) {
            labels.push(label.clone());
        }
    }
    stored.labels = labels;
    stored.updated_at = now;
    let object = prompt_object(name, version, stored);
    (StatusCode::OK, Json(Value::Object(object))).into_response()
}

/// zod's `UpdatePromptBodySchema`: `newLabels`, an array of strings without `latest`.
fn parse_new_labels(body: &Value) -> Result<Vec<String>, Vec<Value>> {
    let invalid_type = |path: Value, expected: &str, received: &str| {
        json!({
            "expected": expected,
            "code": "invalid_type",
            "path": path,
            "message": format!("Invalid input: expected {expected}, received {received}"),
        })
    };
    let Value::Object(fields) = body else {
        return Err(vec![invalid_type(json!([]), "object", js_type(body))]);
    };
    let Some(Value::Array(items)) = fields.get("newLabels") else {
        let received = fields.get("newLabels").map_or("undefined", js_type);
        return Err(vec![invalid_type(json!(["newLabels"]), "array", received)]);
    };
    let mut issues = Vec::new();
    let mut labels = Vec::new();
    for (index, item) in items.iter().enumerate() {
        match item.as_str() {
            Some(label) => labels.push(label.to_owned()),
            None => issues.push(invalid_type(
                json!(["newLabels", index]),
                "string",
                js_type(item),
            )),
        }
    }
    if !issues.is_empty() {
        return Err(issues);
    }
    if labels.iter().any(|label| label == LATEST) {
        return Err(vec![json!({
            "code": "custom",
            "path": ["newLabels"],
            "message": "Label 'latest' is always assigned to the latest prompt version",
        })]);
    }
    Ok(labels)
}

/// The type name zod reports for a JSON value.
fn js_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// A prompt version as Langfuse returns its `prompts` row.
fn prompt_object(
    name: &str,
    version: u32,
    stored: &StoredVersion,
) -> serde_json::Map<String, Value> {
    let object = json!({
        "id": format!("fake-{}", crate::sha256_hex(&format!("{name}\u{0}{version}")).get(..24).unwrap_or("")),
        "createdAt": stored.created_at,
        "updatedAt": stored.updated_at,
        "projectId": "fake-project",
        "createdBy": "API",
        "prompt": stored.prompt,
        "name": name,
        "version": version,
        "type": "text",
        "isActive": null,
        "config": {},
        "tags": [],
        "labels": stored.labels,
        "commitMessage": null,
    });
    match object {
        Value::Object(map) => map,
        _ => serde_json::Map::new(),
    }
}

/// The time as JavaScript's `Date.toISOString` writes it: `2026-11-23T12:06:57.884Z`.
fn js_iso_now() -> String {
    let micros = crate::gateway::iso8601_now();
    // `…ss.ffffffZ` → `…ss.fffZ`.
    match micros.get(..23) {
        Some(millis) => format!("{millis}Z"),
        None => micros,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_decodes_with_and_without_padding() {
        assert_eq!(base64_decode("cGs6c2s="), Some(b"pk:sk".to_vec()));
        assert_eq!(base64_decode("cGs6c2s"), Some(b"pk:sk".to_vec()));
        assert_eq!(base64_decode("cGs6c2s*"), None);
    }

    #[test]
    fn basic_credentials_need_both_parts() {
        assert_eq!(
            basic_credentials("Basic cGstbGYtMTpzay1sZi0y"),
            Some(("pk-lf-1".to_owned(), "sk-lf-2".to_owned()))
        );
        // `pk-lf-1:` has no password.
        assert_eq!(basic_credentials("Basic cGstbGYtMTo="), None);
    }
}
