//! The limit on pushes handled at once (`intake.max_concurrent_pushes`), as a layer on the
//! intake routes: a push past it gets 503 with `Retry-After` before anything of its body is
//! read, so memory grows with the limit, not with the number of clients.
//!
//! The refused body is read and thrown away in the background (up to `max_body_bytes`, and
//! within the body read timeout), so that the client, still sending, reads the 503 rather
//! than a reset connection. A client that sent `Expect: 100-continue` has sent no body and
//! is answered without any reading.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::Semaphore;

use super::refusals::{Reason, RefusalReason};
use crate::daemon::intake::OTLP_TRACES_PATH;

/// What a client past the limit is told to wait, in seconds.
const RETRY_AFTER_SECS: u32 = 1;

/// The permits of pushes under way.
#[derive(Clone, Debug)]
pub(crate) struct PushLimit {
    permits: Arc<Semaphore>,
    max_concurrent_pushes: usize,
    max_body_bytes: usize,
}

impl PushLimit {
    pub(crate) fn new(max_concurrent_pushes: usize, max_body_bytes: usize) -> PushLimit {
        let max_concurrent_pushes = max_concurrent_pushes.max(1);
        PushLimit {
            permits: Arc::new(Semaphore::new(max_concurrent_pushes)),
            max_concurrent_pushes,
            max_body_bytes,
        }
    }
}

/// Holds a permit while the push is handled (read, parsed, recorded, answered), or answers
/// 503 at once when none is free.
pub(crate) async fn limit_pushes(
    State(limit): State<PushLimit>,
    request: Request,
    next: Next,
) -> Response {
    let Ok(_permit) = Arc::clone(&limit.permits).try_acquire_owned() else {
        let (parts, body) = request.into_parts();
        if !parts.headers.contains_key(header::EXPECT) {
            // Bounded by size here and in time by the body's deadline (`request.rs`).
            tokio::spawn(discard(body, limit.max_body_bytes));
        }
        return too_many(parts.uri.path(), limit.max_concurrent_pushes);
    };
    next.run(request).await
}

/// Reads and drops at most `max_bytes` of `body`.
async fn discard(mut body: Body, max_bytes: usize) {
    let mut n_bytes = 0_usize;
    while n_bytes <= max_bytes {
        let frame = std::future::poll_fn(|cx| {
            http_body::Body::poll_frame(std::pin::Pin::new(&mut body), cx)
        })
        .await;
        match frame {
            Some(Ok(frame)) => {
                n_bytes = n_bytes.saturating_add(frame.data_ref().map_or(0, |data| data.len()));
            }
            Some(Err(_)) | None => return,
        }
    }
}

/// The 503, in the error shape of the route (OTLP's `google.rpc.Status` on `/v1/traces`).
fn too_many(path: &str, max_concurrent_pushes: usize) -> Response {
    let error = format!(
        "vigil is handling {max_concurrent_pushes} pushes already (intake.max_concurrent_pushes); retry later"
    );
    let body = if path == OTLP_TRACES_PATH {
        serde_json::json!({ "message": error })
    } else {
        serde_json::json!({ "error": error, "problems": [] })
    };
    let mut response = (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
    response
        .extensions_mut()
        .insert(RefusalReason(Reason::PushLimit));
    response
}
