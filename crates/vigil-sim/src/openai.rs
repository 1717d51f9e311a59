//! `OpenAiFake`: a scriptable fake of OpenAI's Chat Completions API on loopback
//! (`POST /v1/chat/completions`, `GET /v1/models`). It validates requests as the real API
//! does, answers each from a [`Script`] in the real wire format (streamed or not), and can
//! fail, stall, or drop the connection on cue, to test an LLM client offline.

mod plays;
mod script;
mod validate;
mod wire;

use std::collections::VecDeque;
use std::fmt;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER};
use axum::http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use hyper::body::{Body as _, Incoming};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::SimError;
pub use plays::Play;
use script::{Outcome, resolve};
pub use script::{Reply, Script};
use validate::{ChatRequest, Invalid, NOT_JSON};
use wire::{Completion, Message, error_body, error_kind, estimate_tokens};

/// How many request bodies [`OpenAiFake::requests`] keeps; older ones are dropped first.
const MAX_REQUESTS: usize = 1000;
/// How many connections the fake serves at once; more are closed on accept.
const MAX_CONNECTIONS: usize = 256;
/// The models `GET /v1/models` lists.
const MODELS: [&str; 4] = ["gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini"];

#[derive(Debug, Default)]
struct Inner {
    script: Script,
    /// The index of the next unused reply in `script.replies`.
    position: usize,
    requests: VecDeque<Value>,
    api_key: Option<String>,
    n_requests: u64,
    n_completions: u64,
    n_tool_calls: u64,
}

#[derive(Debug, Default)]
struct FakeState {
    inner: Mutex<Inner>,
}

impl FakeState {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A running fake of OpenAI's Chat Completions API. Cloning shares the same fake.
#[derive(Debug, Clone)]
pub struct OpenAiFake {
    state: Arc<FakeState>,
    local_addr: SocketAddr,
    tracker: TaskTracker,
}

impl OpenAiFake {
    /// The largest request body the fake reads; a larger one gets 413.
    pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

    /// Serves the API on `listener` (bind `127.0.0.1:0`) until `shutdown` is cancelled,
    /// answering from `script`. Any API key is accepted until [`OpenAiFake::require_api_key`].
    pub async fn start(
        listener: TcpListener,
        script: Script,
        shutdown: CancellationToken,
    ) -> Result<OpenAiFake, SimError> {
        let local_addr = listener.local_addr().map_err(SimError::LocalAddr)?;
        let state = Arc::new(FakeState {
            inner: Mutex::new(Inner {
                script,
                ..Inner::default()
            }),
        });
        let tracker = TaskTracker::new();
        tracker.spawn(accept_loop(
            listener,
            Arc::clone(&state),
            shutdown,
            tracker.clone(),
        ));
        tracker.close();
        Ok(OpenAiFake {
            state,
            local_addr,
            tracker,
        })
    }

    /// From now on, a request without `Authorization: Bearer <key>` gets OpenAI's 401 (on
    /// every clone: they share one fake).
    pub fn require_api_key(self, key: &str) -> OpenAiFake {
        self.state.lock().api_key = Some(key.to_owned());
        self
    }

    /// The base URL clients are configured with, `http://127.0.0.1:PORT/v1`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.local_addr)
    }

    /// Every chat completion request body received (the most recent 1000), oldest first,
    /// refused ones included; a body that is not JSON shows as a JSON string of its text, and
    /// one over [`OpenAiFake::MAX_BODY_BYTES`] is not kept.
    pub fn requests(&self) -> Vec<Value> {
        self.state.lock().requests.iter().cloned().collect()
    }

    /// Replaces the script; the next valid request gets its first reply.
    pub fn set_script(&self, script: Script) {
        let mut inner = self.state.lock();
        inner.script = script;
        inner.position = 0;
    }

    /// Waits until the server has stopped after `shutdown` was cancelled.
    pub async fn stopped(&self) {
        self.tracker.wait().await;
    }
}

async fn accept_loop(
    listener: TcpListener,
    state: Arc<FakeState>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    let connections = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _peer)) => stream,
            Err(error) => {
                // Out of file descriptors, say: pause rather than spin.
                tracing::warn!(%error, "openai fake cannot accept");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        // Dropping the stream when every slot is taken closes it: the number of connections
        // stays bounded.
        let Ok(permit) = Arc::clone(&connections).try_acquire_owned() else {
            continue;
        };
        tracker.spawn(serve_connection(
            stream,
            permit,
            Arc::clone(&state),
            shutdown.clone(),
        ));
    }
}

/// The error a request's service returns to make hyper drop the connection unanswered.
#[derive(Debug)]
struct CloseConnection;

impl fmt::Display for CloseConnection {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("the script closes the connection")
    }
}

impl std::error::Error for CloseConnection {}

async fn serve_connection(
    stream: TcpStream,
    _permit: OwnedSemaphorePermit,
    state: Arc<FakeState>,
    shutdown: CancellationToken,
) {
    let request_shutdown = shutdown.clone();
    let service = hyper::service::service_fn(move |request| {
        handle(Arc::clone(&state), request, request_shutdown.clone())
    });
    // No read timeouts: tests may pause tokio's clock, which would fire them at once while a
    // client on the same runtime is still writing. The connection limit bounds the cost.
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.keep_alive(true).header_read_timeout(None);
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    let mut stopping = false;
    loop {
        tokio::select! {
            served = connection.as_mut() => {
                if let Err(error) = served {
                    tracing::debug!(%error, "openai fake connection ended");
                }
                return;
            }
            () = shutdown.cancelled(), if !stopping => {
                connection.as_mut().graceful_shutdown();
                stopping = true;
            }
        }
    }
}

async fn handle(
    state: Arc<FakeState>,
    request: Request<Incoming>,
    shutdown: CancellationToken,
) -> Result<Response<Body>, CloseConnection> {
    let request_id = {
        let mut inner = state.lock();
        inner.n_requests += 1;
        format!("req_{}", inner.n_requests)
    };
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = match (&method, path.as_str()) {
        (&Method::POST, "/v1/chat/completions") => chat(&state, request, &shutdown).await?,
        (&Method::GET, "/v1/models") => models(&state, request.headers()),
        _ => {
            let message = format!("Invalid URL ({method} {path})");
            json_response(
                StatusCode::NOT_FOUND,
                &error_body(&message, "invalid_request_error", None, None),
            )
        }
    };
    Ok(with_request_id(response, &request_id))
}

async fn chat(
    state: &FakeState,
    request: Request<Incoming>,
    shutdown: &CancellationToken,
) -> Result<Response<Body>, CloseConnection> {
    let (parts, body) = request.into_parts();
    let Some(body) = read_body(&parts.headers, body).await? else {
        let message = format!(
            "Request body too large: the limit is {} bytes.",
            OpenAiFake::MAX_BODY_BYTES
        );
        return Ok(invalid_request(
            StatusCode::PAYLOAD_TOO_LARGE,
            &message,
            None,
            None,
        ));
    };
    let parsed = serde_json::from_slice::<Value>(&body);
    {
        let kept = match &parsed {
            Ok(value) => value.clone(),
            Err(_) => Value::String(String::from_utf8_lossy(&body).into_owned()),
        };
        let mut inner = state.lock();
        if inner.requests.len() >= MAX_REQUESTS {
            inner.requests.pop_front();
        }
        inner.requests.push_back(kept);
    }
    if let Some(refusal) = check_api_key(state, &parts.headers) {
        return Ok(refusal);
    }
    let Ok(body) = parsed else {
        return Ok(invalid_request(
            StatusCode::BAD_REQUEST,
            NOT_JSON,
            None,
            None,
        ));
    };
    let chat_request = match validate::chat_request(&body) {
        Ok(chat_request) => chat_request,
        Err(Invalid {
            message,
            param,
            code,
        }) => {
            return Ok(invalid_request(
                StatusCode::BAD_REQUEST,
                &message,
                param.as_deref(),
                code,
            ));
        }
    };
    let reply = next_reply(state);
    match resolve(reply, &body, shutdown).await {
        Outcome::Message(message) => Ok(completion(state, chat_request, message)),
        Outcome::Status {
            status,
            retry_after,
            message,
        } => Ok(status_response(status, retry_after.as_deref(), &message)),
        Outcome::Close => Err(CloseConnection),
    }
}

/// Reads a body of at most [`OpenAiFake::MAX_BODY_BYTES`]; `None` when it is larger. A body that breaks
/// off closes the connection.
async fn read_body(
    headers: &HeaderMap,
    mut body: Incoming,
) -> Result<Option<Bytes>, CloseConnection> {
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > OpenAiFake::MAX_BODY_BYTES as u64) {
        return Ok(None);
    }
    let mut collected = Vec::new();
    while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        let frame = frame.map_err(|_| CloseConnection)?;
        if let Ok(data) = frame.into_data() {
            if collected.len() + data.len() > OpenAiFake::MAX_BODY_BYTES {
                return Ok(None);
            }
            collected.extend_from_slice(&data);
        }
    }
    Ok(Some(Bytes::from(collected)))
}

/// OpenAI's 401 when a key is required and the request does not carry it.
fn check_api_key(state: &FakeState, headers: &HeaderMap) -> Option<Response<Body>> {
    let required = state.lock().api_key.clone()?;
    let sent = headers
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|key| !key.is_empty());
    let body = match sent {
        Some(key) if key == required => return None,
        Some(key) => error_body(
            &format!(
                "Incorrect API key provided: {}. You can find your API key at https://platform.openai.com/account/api-keys.",
                masked(key)
            ),
            "invalid_request_error",
            None,
            Some("invalid_api_key"),
        ),
        None => error_body(
            "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) if you're accessing the API from your browser and are prompted for a username. You can obtain an API key from https://platform.openai.com/account/api-keys.",
            "invalid_request_error",
            None,
            None,
        ),
    };
    Some(json_response(StatusCode::UNAUTHORIZED, &body))
}

/// A key as OpenAI shows it in errors: its first few and last four characters.
fn masked(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    if chars.len() <= 12 {
        return "*".repeat(chars.len());
    }
    let head: String = chars.iter().take(3).collect();
    let tail: String = chars.iter().skip(chars.len() - 4).collect();
    format!("{head}{}{tail}", "*".repeat(chars.len() - 7))
}

fn models(state: &FakeState, headers: &HeaderMap) -> Response<Body> {
    if let Some(refusal) = check_api_key(state, headers) {
        return refusal;
    }
    let data: Vec<Value> = MODELS
        .iter()
        .map(|id| json!({"id": id, "object": "model", "created": 1_715_367_049, "owned_by": "system"}))
        .collect();
    json_response(StatusCode::OK, &json!({"object": "list", "data": data}))
}

/// Takes the script's next reply, or its `then`, or a 500 when it ran out.
fn next_reply(state: &FakeState) -> Reply {
    let mut inner = state.lock();
    if let Some(reply) = inner.script.replies.get(inner.position).cloned() {
        inner.position += 1;
        return reply;
    }
    match &inner.script.then {
        Some(reply) => reply.clone(),
        None => Reply::status(
            500,
            format!(
                "The fake's script ran out after {} replies.",
                inner.script.replies.len()
            ),
        ),
    }
}

fn completion(state: &FakeState, request: ChatRequest, message: Message) -> Response<Body> {
    let ids = {
        let mut inner = state.lock();
        inner.n_completions += 1;
        let completion_id = format!("chatcmpl-{}", inner.n_completions);
        let call_id = match message {
            Message::ToolCall { .. } => {
                inner.n_tool_calls += 1;
                format!("call_{}", inner.n_tool_calls)
            }
            Message::Content(_) => String::new(),
        };
        (completion_id, call_id)
    };
    let completion = Completion::new(
        ids,
        now_unix_secs(),
        request.model,
        message,
        estimate_tokens(request.prompt_chars),
        request.max_tokens,
    );
    if !request.stream {
        return json_response(StatusCode::OK, &completion.to_json());
    }
    let mut response = Response::new(Body::from(
        completion.to_event_stream(request.include_usage),
    ));
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream; charset=utf-8"),
    );
    response
}

fn status_response(status: u16, retry_after: Option<&str>, message: &str) -> Response<Body> {
    let Ok(code) = StatusCode::from_u16(status) else {
        let message = format!("The fake's script has an invalid status `{status}`.");
        return json_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            &error_body(&message, "server_error", None, None),
        );
    };
    let retry_after = match retry_after.map(HeaderValue::from_str) {
        None => None,
        Some(Ok(value)) => Some(value),
        Some(Err(_)) => {
            let message = "The fake's script has a Retry-After that is not a header value.";
            return json_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                &error_body(message, "server_error", None, None),
            );
        }
    };
    let (kind, error_code) = error_kind(status);
    let mut response = json_response(code, &error_body(message, kind, None, error_code));
    if let Some(value) = retry_after {
        response.headers_mut().insert(RETRY_AFTER, value);
    }
    response
}

fn invalid_request(
    status: StatusCode,
    message: &str,
    param: Option<&str>,
    code: Option<&str>,
) -> Response<Body> {
    json_response(
        status,
        &error_body(message, "invalid_request_error", param, code),
    )
}

fn json_response(status: StatusCode, body: &Value) -> Response<Body> {
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn with_request_id(mut response: Response<Body>, request_id: &str) -> Response<Body> {
    if let Ok(value) = HeaderValue::from_str(request_id) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}

#[expect(
    clippy::disallowed_types,
    reason = "the fake stands in for OpenAI, which stamps `created` with its wall clock; the stamp is data vigil reads from outside, not time vigil keeps"
)]
fn now_unix_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_masked_in_errors() {
        assert_eq!(masked("sk-short"), "********");
        assert_eq!(masked("sk-abcdefgh1234"), "sk-********1234");
    }
}
