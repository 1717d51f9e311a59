//! `PagerDutyFake`: PagerDuty's Events API v2 (`POST /v2/enqueue`) on loopback. It validates
//! events as the real API does, de-duplicates them by `dedup_key`, and can be told to fail.
//! A `resolve` event needs `routing_key`, `event_action` and `dedup_key` and no payload; it
//! closes the open incident of its key (kept among the resolved ones), and one for a key
//! that is not open is accepted and changes nothing, as with the real API.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::SimError;
use crate::pager::{FailNext, serve};

/// How many events the fake keeps; older ones are dropped first.
const MAX_EVENTS: usize = 1000;
/// The length of an Events API v2 integration (routing) key.
const ROUTING_KEY_CHARS: usize = 32;
/// The severities PagerDuty accepts.
const SEVERITIES: [&str; 4] = ["critical", "error", "warning", "info"];

/// An incident the fake holds open, keyed by its dedup key.
#[derive(Clone, Debug, PartialEq)]
pub struct FakeIncident {
    /// The payload of the first trigger, which opened it.
    pub payload: Value,
    /// How many trigger events it took (re-triggers while open are de-duplicated).
    pub triggers: u32,
    /// Whether an acknowledge event arrived.
    pub acknowledged: bool,
}

#[derive(Debug, Default)]
struct Incidents {
    events: Vec<Value>,
    open: BTreeMap<String, FakeIncident>,
    resolved: BTreeMap<String, FakeIncident>,
    changes: Vec<Value>,
    next_key: u64,
}

#[derive(Debug, Default)]
struct FakeState {
    incidents: Mutex<Incidents>,
    requests: AtomicU32,
    fail: FailNext,
}

/// A running fake of PagerDuty's Events API v2. Cloning shares the same fake.
#[derive(Debug, Clone)]
pub struct PagerDutyFake {
    state: Arc<FakeState>,
    local_addr: SocketAddr,
    tracker: TaskTracker,
}

impl PagerDutyFake {
    /// Serves `POST /v2/enqueue` on `listener` until `shutdown` is cancelled.
    pub async fn start(
        listener: tokio::net::TcpListener,
        shutdown: CancellationToken,
    ) -> Result<PagerDutyFake, SimError> {
        let state = Arc::new(FakeState::default());
        let app = Router::new()
            .route("/v2/enqueue", post(enqueue))
            .route("/v2/change/enqueue", post(change_enqueue))
            .with_state(Arc::clone(&state));
        let (local_addr, tracker) = serve(listener, app, shutdown, "pagerduty fake")?;
        Ok(PagerDutyFake {
            state,
            local_addr,
            tracker,
        })
    }

    /// The events URL to post to.
    pub fn events_url(&self) -> String {
        format!("http://{}/v2/enqueue", self.local_addr)
    }

    /// Every accepted event (the most recent 1000), oldest first, as posted.
    pub fn events(&self) -> Vec<Value> {
        lock(&self.state).events.clone()
    }

    /// Every accepted change event (the most recent 1000), oldest first: changes page nobody.
    pub fn change_events(&self) -> Vec<Value> {
        lock(&self.state).changes.clone()
    }

    /// The open incidents by dedup key.
    pub fn open_incidents(&self) -> BTreeMap<String, FakeIncident> {
        lock(&self.state).open.clone()
    }

    /// The incidents a `resolve` event closed, by dedup key (a key triggered again after its
    /// resolution opens a new incident, and its next resolution replaces this one).
    pub fn resolved_incidents(&self) -> BTreeMap<String, FakeIncident> {
        lock(&self.state).resolved.clone()
    }

    /// How many requests arrived, failed and invalid ones included.
    pub fn requests(&self) -> u32 {
        self.state.requests.load(Ordering::Relaxed)
    }

    /// Answers the next `count` requests with `status` (500 or 429, say) instead of
    /// processing them; a status outside 100..=999 fails nothing.
    pub fn fail_next(&self, count: u32, status: u16) {
        self.state.fail.set(count, status);
    }

    /// Waits until the server has stopped after `shutdown` was cancelled.
    pub async fn stopped(&self) {
        self.tracker.wait().await;
    }
}

fn lock(state: &FakeState) -> MutexGuard<'_, Incidents> {
    state
        .incidents
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
}

fn invalid(errors: Vec<String>) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({
            "status": "invalid event",
            "message": "Event object is invalid",
            "errors": errors,
        })),
    )
        .into_response()
}

async fn enqueue(State(state): State<Arc<FakeState>>, body: Bytes) -> Response {
    state.requests.fetch_add(1, Ordering::Relaxed);
    if let Some(status) = state.fail.take() {
        let body = if status == StatusCode::TOO_MANY_REQUESTS {
            json!({ "status": "throttle event", "message": "Requests for this service are arriving too quickly. Please retry later." })
        } else {
            json!({ "status": "error", "message": "internal error" })
        };
        return (status, Json(body)).into_response();
    }
    let Ok(event) = serde_json::from_slice::<Value>(&body) else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({ "status": "invalid request", "message": "Invalid JSON" })),
        )
            .into_response();
    };
    let errors = validate(&event);
    if !errors.is_empty() {
        return invalid(errors);
    }
    let action = event
        .get("event_action")
        .and_then(Value::as_str)
        .unwrap_or("");
    let sent_key = event.get("dedup_key").and_then(Value::as_str);
    let mut incidents = lock(&state);
    let dedup_key = match sent_key {
        Some(key) => key.to_owned(),
        None => {
            // The real API makes up a key when a trigger has none.
            incidents.next_key += 1;
            format!("fake-{:032x}", incidents.next_key)
        }
    };
    match action {
        "trigger" => {
            let payload = event.get("payload").cloned().unwrap_or(Value::Null);
            incidents
                .open
                .entry(dedup_key.clone())
                .and_modify(|incident| incident.triggers += 1)
                .or_insert(FakeIncident {
                    payload,
                    triggers: 1,
                    acknowledged: false,
                });
        }
        "acknowledge" => {
            if let Some(incident) = incidents.open.get_mut(&dedup_key) {
                incident.acknowledged = true;
            }
        }
        // Only "resolve" is left after validation; resolving a closed key is accepted too.
        _ => {
            if let Some(incident) = incidents.open.remove(&dedup_key) {
                incidents.resolved.insert(dedup_key.clone(), incident);
            }
        }
    }
    if incidents.events.len() >= MAX_EVENTS {
        incidents.events.remove(0);
    }
    incidents.events.push(event);
    (
        StatusCode::ACCEPTED,
        Json(json!({ "status": "success", "message": "Event processed", "dedup_key": dedup_key })),
    )
        .into_response()
}

/// `POST /v2/change/enqueue`: a change event needs a routing key and a payload with a
/// summary (at most 1024 characters); it opens no incident and pages nobody.
async fn change_enqueue(State(state): State<Arc<FakeState>>, body: Bytes) -> Response {
    state.requests.fetch_add(1, Ordering::Relaxed);
    if let Some(status) = state.fail.take() {
        return (
            status,
            Json(json!({ "status": "error", "message": "internal error" })),
        )
            .into_response();
    }
    let Ok(event) = serde_json::from_slice::<Value>(&body) else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({ "status": "invalid request", "message": "Invalid JSON" })),
        )
            .into_response();
    };
    let mut errors = Vec::new();
    if event
        .get("routing_key")
        .and_then(Value::as_str)
        .is_none_or(|key| key.len() != 32)
    {
        errors.push("'routing_key' must be 32 characters.".to_owned());
    }
    match event.pointer("/payload/summary").and_then(Value::as_str) {
        None => errors.push("'payload.summary' is missing".to_owned()),
        Some(summary) if summary.chars().count() > 1024 => {
            errors.push("'payload.summary' is too long".to_owned());
        }
        Some(_) => {}
    }
    if !errors.is_empty() {
        return invalid(errors);
    }
    let mut incidents = lock(&state);
    if incidents.changes.len() >= MAX_EVENTS {
        incidents.changes.remove(0);
    }
    incidents.changes.push(event);
    (
        StatusCode::ACCEPTED,
        Json(json!({ "status": "success", "message": "Change event processed" })),
    )
        .into_response()
}

/// The problems with `event`, in PagerDuty's words.
fn validate(event: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    if !event.is_object() {
        return vec!["Event object must be a JSON object.".to_owned()];
    }
    match event.get("routing_key").and_then(Value::as_str) {
        Some(key) if key.chars().count() == ROUTING_KEY_CHARS => {}
        Some(_) => errors.push("'routing_key' must be 32 characters.".to_owned()),
        None => errors.push("'routing_key' is missing or blank.".to_owned()),
    }
    let action = event.get("event_action").and_then(Value::as_str);
    match action {
        Some("trigger" | "acknowledge" | "resolve") => {}
        _ => errors.push(
            "'event_action' must be one of 'trigger', 'acknowledge' or 'resolve'.".to_owned(),
        ),
    }
    match event.get("dedup_key") {
        None => {
            if matches!(action, Some("acknowledge" | "resolve")) {
                errors.push("'dedup_key' is missing or blank.".to_owned());
            }
        }
        Some(Value::String(key)) if !key.is_empty() && key.len() <= 255 => {}
        Some(_) => errors.push("'dedup_key' must be a string of 1 to 255 characters.".to_owned()),
    }
    if action == Some("trigger") {
        let payload = event.get("payload");
        for field in ["summary", "source"] {
            match payload
                .and_then(|payload| payload.get(field))
                .and_then(Value::as_str)
            {
                Some(text) if !text.trim().is_empty() => {}
                _ => errors.push(format!("'payload.{field}' is missing or blank.")),
            }
        }
        let summary = payload
            .and_then(|payload| payload.get("summary"))
            .and_then(Value::as_str);
        // Stricter than the real API, which cuts longer summaries: a client must cut them.
        if summary.is_some_and(|summary| summary.chars().count() > 1024) {
            errors.push("'payload.summary' must be at most 1024 characters.".to_owned());
        }
        match payload
            .and_then(|payload| payload.get("severity"))
            .and_then(Value::as_str)
        {
            Some(severity) if SEVERITIES.contains(&severity) => {}
            _ => errors.push(
                "'payload.severity' must be one of 'critical', 'error', 'warning' or 'info'."
                    .to_owned(),
            ),
        }
    }
    errors
}
