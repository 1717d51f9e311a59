//! `PagerSink`: a webhook receiver standing in for a paging service. It stores every page
//! it accepts and can be told to fail, to exercise a pager's retries. Also the serving and
//! failure helpers that the PagerDuty and Slack fakes share.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

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

/// How many pages the sink keeps; older ones are dropped first.
const MAX_PAGES: usize = 1000;

#[derive(Debug, Default)]
struct SinkState {
    pages: Mutex<VecDeque<Value>>,
    attempts: AtomicU64,
    fail: FailNext,
}

/// A running webhook sink. Cloning shares the same sink.
#[derive(Debug, Clone)]
pub struct PagerSink {
    state: Arc<SinkState>,
    local_addr: SocketAddr,
    tracker: TaskTracker,
}

impl PagerSink {
    /// Serves `POST /pages` and `GET /pages` on `listener` until `shutdown` is cancelled.
    pub async fn start(
        listener: tokio::net::TcpListener,
        shutdown: CancellationToken,
    ) -> Result<PagerSink, SimError> {
        let state = Arc::new(SinkState::default());
        let app = Router::new()
            .route("/pages", post(receive_page).get(list_pages))
            .with_state(Arc::clone(&state));
        let (local_addr, tracker) = serve(listener, app, shutdown, "pager sink")?;
        Ok(PagerSink {
            state,
            local_addr,
            tracker,
        })
    }

    /// The URL to `POST` pages to.
    pub fn url(&self) -> String {
        format!("http://{}/pages", self.local_addr)
    }

    /// Every page accepted so far (the most recent 1000), oldest first.
    pub fn pages(&self) -> Vec<Value> {
        lock_pages(&self.state).iter().cloned().collect()
    }

    /// How many `POST /pages` requests arrived, failed ones included.
    pub fn attempts(&self) -> u64 {
        self.state.attempts.load(Ordering::Relaxed)
    }

    /// Answers the next `count` posts with 503 instead of storing them.
    pub fn fail_next(&self, count: u32) {
        self.state
            .fail
            .set(count, StatusCode::SERVICE_UNAVAILABLE.as_u16());
    }

    /// Waits until the server has stopped after `shutdown` was cancelled.
    pub async fn stopped(&self) {
        self.tracker.wait().await;
    }
}

/// Makes the next few requests fail with a chosen status, to exercise a client's retries.
#[derive(Debug, Default)]
pub(crate) struct FailNext {
    left: AtomicU32,
    status: AtomicU16,
}

impl FailNext {
    /// Fails the next `count` requests with `status`.
    pub(crate) fn set(&self, count: u32, status: u16) {
        self.status.store(status, Ordering::Relaxed);
        self.left.store(count, Ordering::Relaxed);
    }

    /// The status to fail this request with, if it is to fail.
    pub(crate) fn take(&self) -> Option<StatusCode> {
        self.left
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                left.checked_sub(1)
            })
            .ok()?;
        StatusCode::from_u16(self.status.load(Ordering::Relaxed)).ok()
    }
}

/// Serves `app` on `listener` until `shutdown` is cancelled, in a task the returned tracker
/// waits for.
pub(crate) fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: CancellationToken,
    name: &'static str,
) -> Result<(SocketAddr, TaskTracker), SimError> {
    let local_addr = listener.local_addr().map_err(SimError::LocalAddr)?;
    let tracker = TaskTracker::new();
    tracker.spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await;
        if let Err(source) = served {
            tracing::warn!(error = %SimError::Serve { addr: local_addr, source }, name, "fake stopped");
        }
    });
    tracker.close();
    Ok((local_addr, tracker))
}

fn lock_pages(state: &SinkState) -> std::sync::MutexGuard<'_, VecDeque<Value>> {
    state.pages.lock().unwrap_or_else(PoisonError::into_inner)
}

async fn receive_page(State(state): State<Arc<SinkState>>, body: Bytes) -> Response {
    state.attempts.fetch_add(1, Ordering::Relaxed);
    if state.fail.take().is_some() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "error": "pager unavailable" })),
        )
            .into_response();
    }
    let page: Value = match serde_json::from_slice(&body) {
        Ok(page) => page,
        Err(error) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({ "error": format!("invalid json: {error}") })),
            )
                .into_response();
        }
    };
    let mut pages = lock_pages(&state);
    if pages.len() >= MAX_PAGES {
        pages.pop_front();
    }
    pages.push_back(page);
    (StatusCode::ACCEPTED, Json(json!({ "status": "accepted" }))).into_response()
}

async fn list_pages(State(state): State<Arc<SinkState>>) -> Json<Vec<Value>> {
    Json(lock_pages(&state).iter().cloned().collect())
}
