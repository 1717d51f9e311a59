//! Counting what the listener refuses, by route and reason, for `/metrics` and for one log
//! line per interval (instead of a line per request, which a flood would turn into a flood
//! of log lines).
//!
//! A refusal is a request answered 4xx (but 409, the engine's answer to a person's
//! instruction, recorded in the ledger) or 503 (but on `/readyz`, where it is the answer),
//! and a connection closed before it could make a request: past the connection limit, a head
//! not received in time, a head hyper could not parse, a failed or slow TLS handshake; and a
//! connection cut off because its client stopped reading its answer. Routes
//! are the router's path templates (`other` for paths no route matches, `connection` for
//! connection-level refusals) and reasons a closed list, so the metric's cardinality is
//! bounded.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio_util::sync::CancellationToken;

use super::request::BodyTimer;
use crate::daemon::Telemetry;

/// The route label of refusals that happen before any request.
pub(crate) const CONNECTION_ROUTE: &str = "connection";

/// The route label of requests no route matched.
const OTHER_ROUTE: &str = "other";

/// At most this many characters of a refusal's message are kept for the log line.
const MAX_DETAIL_CHARS: usize = 160;

/// Why a request or connection was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Reason {
    /// 400: the request was malformed or its payload invalid.
    Invalid,
    /// 401: no valid credentials.
    Unauthorized,
    /// 403: credentials, but not allowed.
    Forbidden,
    /// 404: no such route.
    NotFound,
    /// 405: the route does not take that method.
    MethodNotAllowed,
    /// 408: the body did not arrive within `server.body_read_timeout_secs`.
    BodyTimeout,
    /// 413: the body is over the limit.
    TooLarge,
    /// 415: not uncompressed JSON.
    UnsupportedMediaType,
    /// Another 4xx.
    ClientError,
    /// 503: vigil could not take it now (queue full, not recorded in time, stopping).
    Unavailable,
    /// 503: past `intake.max_concurrent_pushes`.
    PushLimit,
    /// A connection past `server.max_connections`, closed at once.
    ConnectionLimit,
    /// A request head not received within `server.header_read_timeout_secs`.
    HeaderTimeout,
    /// A request head that could not be parsed, or was too large (hyper answered 400/431).
    BadRequestHead,
    /// A client that stopped reading its answer for `server.idle_timeout_secs`.
    SlowReader,
    /// A TLS handshake that did not finish within `server.tls_handshake_timeout_secs`.
    TlsHandshakeTimeout,
    /// A TLS handshake that failed (no common protocol, a client certificate that did not
    /// verify, not TLS at all).
    TlsHandshakeFailed,
    /// The listener could not accept a connection (for example out of file descriptors).
    AcceptFailed,
}

impl Reason {
    /// The metric label.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Reason::Invalid => "invalid",
            Reason::Unauthorized => "unauthorized",
            Reason::Forbidden => "forbidden",
            Reason::NotFound => "not_found",
            Reason::MethodNotAllowed => "method_not_allowed",
            Reason::BodyTimeout => "body_timeout",
            Reason::TooLarge => "too_large",
            Reason::UnsupportedMediaType => "unsupported_media_type",
            Reason::ClientError => "client_error",
            Reason::Unavailable => "unavailable",
            Reason::PushLimit => "push_limit",
            Reason::ConnectionLimit => "connection_limit",
            Reason::HeaderTimeout => "header_timeout",
            Reason::BadRequestHead => "bad_request_head",
            Reason::SlowReader => "slow_reader",
            Reason::TlsHandshakeTimeout => "tls_handshake_timeout",
            Reason::TlsHandshakeFailed => "tls_handshake_failed",
            Reason::AcceptFailed => "accept_failed",
        }
    }

    /// The refusal an answer on `route` is, if it is one.
    fn of_response(route: &str, status: StatusCode) -> Option<Reason> {
        Some(match status.as_u16() {
            400 => Reason::Invalid,
            401 => Reason::Unauthorized,
            403 => Reason::Forbidden,
            404 => Reason::NotFound,
            405 => Reason::MethodNotAllowed,
            408 => Reason::BodyTimeout,
            413 => Reason::TooLarge,
            415 => Reason::UnsupportedMediaType,
            // The engine refused a person's instruction: an answer, recorded in the ledger.
            409 => return None,
            402 | 406 | 407 | 410..=412 | 414 | 416..=499 => Reason::ClientError,
            503 if route == "/readyz" => return None,
            503 => Reason::Unavailable,
            _ => return None,
        })
    }
}

/// A response extension that names the refusal more precisely than its status does.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RefusalReason(pub(crate) Reason);

/// A response extension with what a refusal told the client, for the log line.
#[derive(Clone, Debug)]
pub(crate) struct RefusalDetail(pub(crate) String);

#[derive(Debug, Default)]
struct Tally {
    total: u64,
    since_logged: u64,
    last_detail: Option<String>,
}

/// The listener's counters: connections and refusals.
#[derive(Debug, Default)]
pub struct EdgeStats {
    open_connections: AtomicU64,
    accepted_connections: AtomicU64,
    max_connections: AtomicU64,
    idle_closed: AtomicU64,
    refusals: Mutex<BTreeMap<(String, Reason), Tally>>,
}

impl EdgeStats {
    /// Counts a refusal; `detail` is what the client was told (kept for the log line).
    pub(crate) fn refused(&self, route: &str, reason: Reason, detail: Option<&str>) {
        let mut refusals = match self.refusals.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let tally = refusals.entry((route.to_owned(), reason)).or_default();
        tally.total += 1;
        tally.since_logged += 1;
        if let Some(detail) = detail {
            tally.last_detail = Some(detail.chars().take(MAX_DETAIL_CHARS).collect());
        }
    }

    pub(crate) fn set_max_connections(&self, max_connections: usize) {
        self.max_connections
            .store(max_connections as u64, Ordering::Relaxed);
    }

    pub(crate) fn connection_opened(&self) {
        self.open_connections.fetch_add(1, Ordering::Relaxed);
        self.accepted_connections.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn connection_closed(&self) {
        self.open_connections.fetch_sub(1, Ordering::Relaxed);
    }

    pub(crate) fn idle_connection_closed(&self) {
        self.idle_closed.fetch_add(1, Ordering::Relaxed);
    }

    /// One line summing up the refusals since the last summary, or `None` when there were
    /// none. What clients sent is escaped: a message may quote a header they chose.
    pub(crate) fn summary(&self, interval: Duration) -> Option<String> {
        let mut refusals = match self.refusals.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let n_refused: u64 = refusals.values().map(|tally| tally.since_logged).sum();
        if n_refused == 0 {
            return None;
        }
        let mut line = format!(
            "refused {n_refused} request(s) or connection(s) in the last {}s:",
            interval.as_secs()
        );
        let mut first = true;
        for ((route, reason), tally) in refusals.iter_mut() {
            if tally.since_logged == 0 {
                continue;
            }
            let separator = if first { " " } else { "; " };
            first = false;
            let _ = write!(
                line,
                "{separator}{route} {} x{}",
                reason.as_str(),
                tally.since_logged
            );
            if let Some(detail) = &tally.last_detail {
                let _ = write!(line, " (last: \"{}\")", detail.escape_debug());
            }
            tally.since_logged = 0;
        }
        Some(line)
    }

    /// Appends the listener's metrics in the text format.
    pub(crate) fn render(&self, out: &mut String) {
        let gauges = [
            (
                "vigil_http_connections",
                "gauge",
                "Connections open now.",
                self.open_connections.load(Ordering::Relaxed),
            ),
            (
                "vigil_http_connections_max",
                "gauge",
                "The connection limit (server.max_connections).",
                self.max_connections.load(Ordering::Relaxed),
            ),
            (
                "vigil_http_connections_accepted_total",
                "counter",
                "Connections accepted (within the limit).",
                self.accepted_connections.load(Ordering::Relaxed),
            ),
            (
                "vigil_http_idle_connections_closed_total",
                "counter",
                "Connections closed after server.idle_timeout_secs without a request.",
                self.idle_closed.load(Ordering::Relaxed),
            ),
        ];
        for (name, kind, help, value) in gauges {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP vigil_http_refused_total Requests and connections refused, by route and reason.\n# TYPE vigil_http_refused_total counter"
        );
        let refusals = match self.refusals.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        for ((route, reason), tally) in refusals.iter() {
            let _ = writeln!(
                out,
                "vigil_http_refused_total{{route=\"{}\",reason=\"{}\"}} {}",
                super::super::telemetry::escape(route),
                reason.as_str(),
                tally.total
            );
        }
    }
}

/// The middleware every route runs inside: counts refusals by route and reason, and turns
/// the answer to a request whose body did not arrive in time into 408 (closing the
/// connection).
pub(crate) async fn account(
    State(telemetry): State<std::sync::Arc<Telemetry>>,
    request: Request,
    next: Next,
) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| OTHER_ROUTE.to_owned(), |path| path.as_str().to_owned());
    let body_timer = request.extensions().get::<BodyTimer>().cloned();
    let mut response = next.run(request).await;
    let status = response.status();
    if body_timer.is_some_and(|timer| timer.expired())
        && (status.is_client_error() || status.is_server_error())
    {
        response = body_timeout_response();
    }
    let reason = match response.extensions().get::<RefusalReason>() {
        Some(RefusalReason(reason)) => Some(*reason),
        None => Reason::of_response(&route, response.status()),
    };
    if let Some(reason) = reason {
        let detail = response
            .extensions()
            .get::<RefusalDetail>()
            .map(|RefusalDetail(detail)| detail.as_str());
        telemetry.edge().refused(&route, reason, detail);
    }
    response
}

fn body_timeout_response() -> Response {
    (
        StatusCode::REQUEST_TIMEOUT,
        [(header::CONNECTION, "close")],
        axum::Json(serde_json::json!({
            "error": "the request body did not arrive in time; send it faster or in smaller batches"
        })),
    )
        .into_response()
}

/// Logs one summary line per `interval` when something was refused, and a last one when
/// `cancel` fires.
pub(crate) async fn log_summaries(
    telemetry: std::sync::Arc<Telemetry>,
    interval: Duration,
    cancel: CancellationToken,
) {
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let stopping = tokio::select! {
            () = cancel.cancelled() => true,
            _ = ticks.tick() => false,
        };
        if let Some(line) = telemetry.edge().summary(interval) {
            tracing::warn!("{line}");
        }
        if stopping {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_summed_up_once_escaped_and_rendered() {
        let stats = EdgeStats::default();
        for _ in 0..5000 {
            stats.refused("/v1/push/evals", Reason::Unauthorized, Some("no token"));
        }
        // A message that quotes what a client sent, with a line break and quotes in it.
        stats.refused(
            "/v1/push/evals",
            Reason::UnsupportedMediaType,
            Some("not `text/plain\n\"x\"`"),
        );
        stats.refused(CONNECTION_ROUTE, Reason::ConnectionLimit, None);
        let line = stats.summary(Duration::from_secs(60));
        assert_eq!(
            line.as_deref(),
            Some(
                "refused 5002 request(s) or connection(s) in the last 60s: \
                 /v1/push/evals unauthorized x5000 (last: \"no token\"); \
                 /v1/push/evals unsupported_media_type x1 (last: \"not `text/plain\\n\\\"x\\\"`\"); \
                 connection connection_limit x1"
            )
        );
        // Nothing new: no line.
        assert_eq!(stats.summary(Duration::from_secs(60)), None);
        let mut text = String::new();
        stats.render(&mut text);
        let parsed = vigil_core::exposition::parse_text(&text);
        assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
        assert!(
            text.contains(
                "vigil_http_refused_total{route=\"/v1/push/evals\",reason=\"unauthorized\"} 5000"
            ),
            "{text}"
        );
    }

    #[test]
    fn answers_that_are_refusals() {
        let cases = [
            ("/v1/push/evals", 401, Some(Reason::Unauthorized)),
            ("/v1/push/evals", 413, Some(Reason::TooLarge)),
            ("/v1/push/evals", 503, Some(Reason::Unavailable)),
            ("/readyz", 503, None),
            ("/v1/admin/human", 409, None),
            ("/v1/push/evals", 202, None),
            ("other", 404, Some(Reason::NotFound)),
            ("/v1/push/evals", 429, Some(Reason::ClientError)),
            ("/metrics", 500, None),
        ];
        for (route, status, expected) in cases {
            let status = StatusCode::from_u16(status).unwrap();
            assert_eq!(
                Reason::of_response(route, status),
                expected,
                "{route} {status}"
            );
        }
    }
}
