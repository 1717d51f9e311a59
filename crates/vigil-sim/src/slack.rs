//! `SlackFake`: a Slack incoming webhook on loopback. It checks the token in the path and
//! the message as Slack does, answers with Slack's plain-text codes, and can be told to fail.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::SimError;
use crate::pager::{FailNext, serve};

/// How many messages the fake keeps; older ones are dropped first.
const MAX_MESSAGES: usize = 1000;
/// The workspace and bot ids in the fake's webhook path.
const TEAM_AND_BOT: &str = "T0000FAKE/B0000FAKE";
/// The token in the fake's webhook path: what makes the URL a secret.
const TOKEN: &str = "vigilFakeSlackToken0123456789ab";
/// Slack's limit on a section's or context element's text.
const SECTION_CHARS: usize = 3000;
/// Slack's limit on a header's text.
const HEADER_CHARS: usize = 150;

#[derive(Debug, Default)]
struct FakeState {
    messages: Mutex<Vec<Value>>,
    requests: AtomicU32,
    fail: FailNext,
    archived: AtomicBool,
}

/// A running fake Slack incoming webhook. Cloning shares the same fake.
#[derive(Debug, Clone)]
pub struct SlackFake {
    state: Arc<FakeState>,
    local_addr: SocketAddr,
    tracker: TaskTracker,
}

impl SlackFake {
    /// Serves `POST /services/T.../B.../<token>` on `listener` until `shutdown` is cancelled.
    pub async fn start(
        listener: tokio::net::TcpListener,
        shutdown: CancellationToken,
    ) -> Result<SlackFake, SimError> {
        let state = Arc::new(FakeState::default());
        let app = Router::new()
            .route("/services/{*path}", post(receive))
            .with_state(Arc::clone(&state));
        let (local_addr, tracker) = serve(listener, app, shutdown, "slack fake")?;
        Ok(SlackFake {
            state,
            local_addr,
            tracker,
        })
    }

    /// The webhook URL, token included: a secret in real life.
    pub fn webhook_url(&self) -> String {
        format!("http://{}/services/{TEAM_AND_BOT}/{TOKEN}", self.local_addr)
    }

    /// The token part of [`SlackFake::webhook_url`], to check that it never shows.
    pub fn token(&self) -> &'static str {
        TOKEN
    }

    /// Every accepted message (the most recent 1000), oldest first, as posted.
    pub fn messages(&self) -> Vec<Value> {
        lock(&self.state).clone()
    }

    /// How many requests arrived, failed and refused ones included.
    pub fn requests(&self) -> u32 {
        self.state.requests.load(Ordering::Relaxed)
    }

    /// Answers the next `count` requests with `status` (500 or 429, say) instead of
    /// processing them; a status outside 100..=999 fails nothing.
    pub fn fail_next(&self, count: u32, status: u16) {
        self.state.fail.set(count, status);
    }

    /// Archives the channel: from now on every post gets 410 `channel_is_archived`.
    pub fn archive_channel(&self) {
        self.state.archived.store(true, Ordering::Relaxed);
    }

    /// Waits until the server has stopped after `shutdown` was cancelled.
    pub async fn stopped(&self) {
        self.tracker.wait().await;
    }
}

fn lock(state: &FakeState) -> MutexGuard<'_, Vec<Value>> {
    state
        .messages
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
}

/// Slack answers webhooks in plain text: `ok` or an error code.
fn answer(status: StatusCode, code: &'static str) -> Response {
    (status, code).into_response()
}

async fn receive(
    State(state): State<Arc<FakeState>>,
    Path(path): Path<String>,
    body: Bytes,
) -> Response {
    state.requests.fetch_add(1, Ordering::Relaxed);
    if let Some(status) = state.fail.take() {
        if status == StatusCode::TOO_MANY_REQUESTS {
            let mut response = answer(status, "rate_limited");
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            return response;
        }
        return answer(status, "internal_error");
    }
    match path.strip_prefix(TEAM_AND_BOT) {
        Some(rest) if rest == format!("/{TOKEN}") => {}
        Some(_) => return answer(StatusCode::FORBIDDEN, "invalid_token"),
        None => return answer(StatusCode::NOT_FOUND, "no_service"),
    }
    if state.archived.load(Ordering::Relaxed) {
        return answer(StatusCode::GONE, "channel_is_archived");
    }
    let Ok(message) = serde_json::from_slice::<Value>(&body) else {
        return answer(StatusCode::BAD_REQUEST, "invalid_payload");
    };
    let text = message.get("text").and_then(Value::as_str).unwrap_or("");
    let blocks = message.get("blocks").and_then(Value::as_array);
    if text.trim().is_empty() && blocks.is_none_or(Vec::is_empty) {
        return answer(StatusCode::BAD_REQUEST, "invalid_payload");
    }
    if let Some(blocks) = blocks
        && !blocks.iter().all(valid_block)
    {
        return answer(StatusCode::BAD_REQUEST, "invalid_blocks");
    }
    let mut messages = lock(&state);
    if messages.len() >= MAX_MESSAGES {
        messages.remove(0);
    }
    messages.push(message);
    answer(StatusCode::OK, "ok")
}

/// Whether `block` is a header, section, context or divider block within Slack's limits.
fn valid_block(block: &Value) -> bool {
    let text_of = |object: &Value, kinds: &[&str], limit: usize| {
        let kind = object.get("type").and_then(Value::as_str).unwrap_or("");
        let text = object.get("text").and_then(Value::as_str).unwrap_or("");
        kinds.contains(&kind) && !text.is_empty() && text.chars().count() <= limit
    };
    match block.get("type").and_then(Value::as_str) {
        Some("header") => block
            .get("text")
            .is_some_and(|text| text_of(text, &["plain_text"], HEADER_CHARS)),
        Some("section") => block
            .get("text")
            .is_some_and(|text| text_of(text, &["plain_text", "mrkdwn"], SECTION_CHARS)),
        Some("context") => {
            block
                .get("elements")
                .and_then(Value::as_array)
                .is_some_and(|elements| {
                    !elements.is_empty()
                        && elements.len() <= 10
                        && elements.iter().all(|element| {
                            text_of(element, &["plain_text", "mrkdwn"], SECTION_CHARS)
                        })
                })
        }
        Some("divider") => true,
        _ => false,
    }
}
