//! The pushed-events intake over HTTP: eval results, agent runs, Alertmanager webhooks and
//! OTLP traces (protobuf or JSON), validated by [`vigil_core::intake`] and queued for the
//! engine loop.
//!
//! | route | body | success |
//! | --- | --- | --- |
//! | `POST /v1/push/evals` | [`vigil_core::intake::evals`] | 202, the account below |
//! | `POST /v1/push/agent-runs` | [`vigil_core::intake::agent_runs`] | 202, the account below |
//! | `POST /v1/push/alertmanager` | [`vigil_core::intake::alertmanager`] | 202, the account below |
//! | `POST /v1/traces` | `application/x-protobuf`: [`vigil_core::intake::otlp_proto`]; `application/json`: [`vigil_core::intake::otlp`] | 200 with an `ExportTraceServiceResponse` in the request's encoding: empty (full success), or with `partial_success` when series were refused |
//!
//! A request is checked in this order, so that nothing is buffered for a client that may not
//! send: the bearer token (401), `Content-Type: application/json` (or, on `/v1/traces`,
//! `application/x-protobuf`) and no `Content-Encoding` (415: OpenTelemetry's exporters
//! compress only when `OTEL_EXPORTER_OTLP_COMPRESSION` asks them to), a declared `Content-Length` over the limit (413); then the body is read up to the
//! limit (413 past it), parsed (400 with every problem) and offered to the engine's queue
//! without waiting (503 with `Retry-After` when it is full or closed). A batch with nothing
//! in it (no results, or no GenAI spans) is acknowledged and not queued.
//!
//! **An acknowledgement is durable.** The success answer (202, or 200 on `/v1/traces`) is
//! sent only after the engine loop has appended the pushed event to the ledger and the
//! append has committed (SQLite: WAL with `synchronous=FULL`, fsynced; PostgreSQL: as durable
//! as its `synchronous_commit`; see the `vigil-ledger` crate docs). A `kill -9` right after a
//! 2xx loses nothing. When the append fails, or is not confirmed within [`ACK_WAIT`], or the
//! daemon is stopping, the answer is 503 with `Retry-After`: the push may or may not have been
//! recorded (only a confirmation is a promise), so a client that retries may record it twice.
//! Pushes that wait in the queue together are recorded in one transaction (group commit), so
//! concurrent clients share an fsync: `cargo run --release -p vigil-bench -- daemon`.
//!
//! **The account of a push.** A 202 says what the engine made of the push: `accepted` is the
//! number of items recorded (results, runs, alerts), as before; `series` counts the series
//! they feed (one per signal, see [`vigil_core::intake`]) that vigil tracks and that it
//! refused; `refused` lists up to [`vigil_core::engine::MAX_REFUSED_LISTED`] refused series,
//! each with its reason, and `refused_not_listed` counts the others:
//!
//! ```json
//! {"accepted": 3, "series": {"accepted": 5, "refused": 2},
//!  "refused": [{"series": "vigil_eval_cases_total{model=\"m\",outcome=\"passed\",prompt=\"p-123\",prompt_version=\"v1\",suite=\"s\"}",
//!               "reason": "push:evals already tracks 10000 series (store.max_pushed_series); new series are refused until old ones go stale (not pushed for the retention, 3600 s)"}],
//!  "refused_not_listed": 1}
//! ```
//!
//! A push whose series were refused still gets 202, not an error: it is durably recorded
//! (replay sees it), the refusal is recorded with it, and sending it again would record it
//! twice and be refused again. A series is refused when its source (`push:evals`, ...)
//! already holds `store.max_pushed_series` series; room comes back as series that no push
//! updated for the store's retention are dropped. Every refused series is counted in
//! `vigil_series_refused_total{source}`, and each episode is logged and recorded
//! (`series_refused`) once. On `/v1/traces` the same account is OTLP's `partialSuccess`:
//! `rejectedSpans` counts the spans that feed a refused series, and `errorMessage` says why.
//!
//! Errors on the `/v1/push/*` routes are `{"error": "...", "problems": [{"path", "message"}]}`.
//! On `/v1/traces` they are a `google.rpc.Status`, as the OTLP specification requires of
//! every 4xx and 5xx response, in the request's encoding: `{"message": "..."}` in JSON, or
//! the protobuf message (with its gRPC `code`: 3 for a bad request, 16 without the token,
//! 8 past the size limit, 14 when unavailable) when the request was
//! `application/x-protobuf`; the message lists the problems.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use vigil_connectors::secret::Secret;
use vigil_core::engine::PushReport;
use vigil_core::intake::{self, IntakeError, Pushed, push_source};
use vigil_core::problem::Problem;

/// The standard OTLP/HTTP path for traces.
pub(crate) const OTLP_TRACES_PATH: &str = "/v1/traces";

/// What a client is told to wait before retrying when the queue is full, in seconds.
const RETRY_AFTER_SECS: u32 = 1;

/// How long a push waits for the engine loop to confirm that its event is in the ledger.
pub(crate) const ACK_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// The engine loop's answer to a queued push: once its event is durably in the ledger,
/// what the engine made of it (which series it tracks and which it refused), else why not.
pub(crate) type Ack = tokio::sync::oneshot::Sender<Result<PushReport, String>>;

/// Where an admitted push goes.
pub(crate) enum PushSink {
    /// The engine loop's queue of pushed payloads, each with the channel that confirms it
    /// was recorded: the client hears back once its event is in the ledger.
    Engine(mpsc::Sender<(Pushed, Ack)>),
    /// The replicated ledger's inbox (`vigil_ledger::replication`): the client hears back
    /// once the raw push is committed there; the leader drains it into the chain.
    Inbox(InboxSink),
}

/// What a replica needs to commit pushes to the inbox.
pub(crate) struct InboxSink {
    /// The shared ledger's inbox.
    pub(crate) replication: vigil_ledger::replication::Replication,
    /// This replica's id, stored with each push.
    pub(crate) replica: String,
    /// The inbox holds at most this many pushes; past it, pushes are refused with 503.
    pub(crate) max_rows: u64,
    /// The receiving time stored with each push (for people; the leader's clock decides).
    pub(crate) clock: crate::clock::Clock,
}

/// What the intake routes share.
pub(crate) struct IntakeState {
    /// Where admitted pushes go.
    pub(crate) sender: PushSink,
    /// How long a push waits for that confirmation ([`ACK_WAIT`] in the daemon).
    pub(crate) ack_wait: std::time::Duration,
    /// The bearer token clients must present, when one is configured.
    pub(crate) bearer: Option<Secret>,
    /// The largest body accepted, in bytes.
    pub(crate) max_body_bytes: usize,
}

/// The routes [`router`] serves, as the startup line lists them (a test in `daemon/http.rs`
/// checks that each is routed).
pub(crate) const ROUTES: &[(&str, &str)] = &[
    ("POST", "/v1/push/evals"),
    ("POST", "/v1/push/agent-runs"),
    ("POST", "/v1/push/alertmanager"),
    ("POST", OTLP_TRACES_PATH),
];

/// The intake routes, ready to be merged into the daemon's router.
pub(crate) fn router(state: IntakeState) -> Router {
    let max_body_bytes = state.max_body_bytes;
    Router::new()
        .route("/v1/push/evals", post(push_evals))
        .route("/v1/push/agent-runs", post(push_agent_runs))
        .route("/v1/push/alertmanager", post(push_alertmanager))
        .route(OTLP_TRACES_PATH, post(otlp_traces))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .with_state(Arc::new(state))
}

type Parser = fn(&[u8]) -> Result<Pushed, IntakeError>;

/// The parser of a push stored in the inbox, by the route and Content-Type it came with: the
/// same as the route's own, so the leader reads a stored push as the replica that took it
/// did. `None` for a route that takes no pushes.
pub(crate) fn stored_parser(route: &str, content_type: Option<&str>) -> Option<Parser> {
    let protobuf = content_type.is_some_and(|value| {
        value
            .split(';')
            .next()
            .is_some_and(|essence| essence.trim().eq_ignore_ascii_case(PROTOBUF_MEDIA_TYPE))
    });
    match route {
        "/v1/push/evals" => Some(|body| intake::parse_evals(body).map(Pushed::Evals)),
        "/v1/push/agent-runs" => Some(|body| intake::parse_agent_runs(body).map(Pushed::AgentRuns)),
        "/v1/push/alertmanager" => {
            Some(|body| intake::parse_alertmanager(body).map(Pushed::Alerts))
        }
        OTLP_TRACES_PATH if protobuf => {
            Some(|body| intake::parse_otlp_traces_protobuf(body).map(Pushed::Spans))
        }
        OTLP_TRACES_PATH => Some(|body| intake::parse_otlp_traces(body).map(Pushed::Spans)),
        _ => None,
    }
}

async fn push_evals(State(state): State<Arc<IntakeState>>, request: Request) -> Response {
    push(&state, request, |body| {
        intake::parse_evals(body).map(Pushed::Evals)
    })
    .await
}

async fn push_agent_runs(State(state): State<Arc<IntakeState>>, request: Request) -> Response {
    push(&state, request, |body| {
        intake::parse_agent_runs(body).map(Pushed::AgentRuns)
    })
    .await
}

async fn push_alertmanager(State(state): State<Arc<IntakeState>>, request: Request) -> Response {
    push(&state, request, |body| {
        intake::parse_alertmanager(body).map(Pushed::Alerts)
    })
    .await
}

async fn push(state: &IntakeState, request: Request, parse: Parser) -> Response {
    match receive(state, request, Flavor::Push, parse).await {
        Ok(Received {
            n_items,
            inbox_id: Some(id),
            ..
        }) => (
            StatusCode::ACCEPTED,
            Json(serde_json::json!({ "accepted": n_items, "queued": id })),
        )
            .into_response(),
        Ok(received) => (
            StatusCode::ACCEPTED,
            Json(push_answer(received.n_items, &received.report)),
        )
            .into_response(),
        Err(failure) => failure.into_response(),
    }
}

/// The body of a 202: the items recorded, and the account of their series.
fn push_answer(n_items: usize, report: &PushReport) -> serde_json::Value {
    let refused: Vec<serde_json::Value> = report
        .refused
        .iter()
        .map(|series| serde_json::json!({ "series": series.series, "reason": series.reason }))
        .collect();
    serde_json::json!({
        "accepted": n_items,
        "series": { "accepted": report.n_accepted(), "refused": report.n_refused },
        "refused": refused,
        "refused_not_listed": report.n_refused_unlisted(),
    })
}

async fn otlp_traces(State(state): State<Arc<IntakeState>>, request: Request) -> Response {
    // The answer speaks the request's encoding, errors included (OTLP/HTTP), so the encoding
    // is chosen first; a Content-Type that is neither is refused by `admit` (in JSON).
    let encoding = OtlpEncoding::of(request.headers());
    let parse: Parser = match encoding {
        OtlpEncoding::Json => |body| intake::parse_otlp_traces(body).map(Pushed::Spans),
        OtlpEncoding::Protobuf => {
            |body| intake::parse_otlp_traces_protobuf(body).map(Pushed::Spans)
        }
    };
    let received = match receive(&state, request, Flavor::Otlp(encoding), parse).await {
        Ok(received) => received,
        Err(failure) => return failure.into_response(),
    };
    let partial = otlp_partial_success(&received.report);
    match encoding {
        OtlpEncoding::Json => {
            let body = match partial {
                None => serde_json::json!({}),
                // Int64 fields are strings in OTLP/JSON.
                Some((rejected_spans, message)) => serde_json::json!({
                    "partialSuccess": {
                        "rejectedSpans": rejected_spans.to_string(),
                        "errorMessage": message,
                    }
                }),
            };
            (StatusCode::OK, Json(body)).into_response()
        }
        OtlpEncoding::Protobuf => {
            protobuf_response(StatusCode::OK, intake::otlp_proto::export_response(partial))
        }
    }
}

/// The `partial_success` of an `ExportTraceServiceResponse`, the rejected spans and why:
/// none for full success; when series were refused, the spans that feed them count as
/// rejected (they are recorded, but what they say is not tracked).
fn otlp_partial_success(report: &PushReport) -> Option<(u64, String)> {
    if report.n_refused == 0 {
        return None;
    }
    let mut message = format!(
        "vigil recorded every span but refused {} of the {} series they feed, so what {} spans say is not tracked",
        report.n_refused, report.n_series, report.n_items_refused
    );
    if let Some(first) = report.refused.first() {
        message.push_str(&format!(": {} (e.g. {})", first.reason, first.series));
    }
    Some((report.n_items_refused as u64, message))
}

/// A response with a protobuf body.
fn protobuf_response(status: StatusCode, body: Vec<u8>) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(PROTOBUF_MEDIA_TYPE),
        )],
        body,
    )
        .into_response()
}

/// OTLP/HTTP's protobuf media type.
const PROTOBUF_MEDIA_TYPE: &str = "application/x-protobuf";

/// The two encodings of OTLP/HTTP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum OtlpEncoding {
    Json,
    Protobuf,
}

impl OtlpEncoding {
    /// Protobuf when the request says `application/x-protobuf`, else JSON.
    fn of(headers: &HeaderMap) -> Self {
        match media_type(headers).as_deref() {
            Some(PROTOBUF_MEDIA_TYPE) => OtlpEncoding::Protobuf,
            _ => OtlpEncoding::Json,
        }
    }
}

/// The media type of the request's `Content-Type`, lowercase, without parameters.
fn media_type(headers: &HeaderMap) -> Option<String> {
    headers.get(header::CONTENT_TYPE).map(|value| {
        let value = value.to_str().unwrap_or_default();
        let essence = value.split(';').next().unwrap_or_default();
        essence.trim().to_ascii_lowercase()
    })
}

/// A push the engine loop recorded.
struct Received {
    /// The items it carried (results, runs, alerts, GenAI spans).
    n_items: usize,
    /// What the engine made of them (nothing yet for a push stored in the inbox).
    report: PushReport,
    /// The push's id in the inbox, when a replica stored it there for the leader.
    inbox_id: Option<i64>,
}

/// Admits, reads, parses and queues one request; returns what was recorded.
async fn receive(
    state: &IntakeState,
    request: Request,
    flavor: Flavor,
    parse: Parser,
) -> Result<Received, Failure> {
    admit(state, request.headers(), flavor)?;
    let route = request.uri().path().to_owned();
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    // `DefaultBodyLimit` makes this read stop, with a 413 rejection, past the limit.
    let body = Bytes::from_request(request, &())
        .await
        .map_err(|rejection| match rejection.status() {
            StatusCode::PAYLOAD_TOO_LARGE => Failure::too_large(flavor, state.max_body_bytes),
            status => Failure::new(flavor, status, "cannot read the request body"),
        })?;
    let pushed = parse(&body).map_err(|error| Failure::invalid(flavor, error))?;
    let n_items = pushed.n_items();
    let sender = match &state.sender {
        PushSink::Engine(sender) => sender,
        PushSink::Inbox(inbox) => {
            // Checked whole above, stored raw: the leader parses it again the same way.
            drop(pushed);
            return to_inbox(
                inbox,
                &route,
                content_type.as_deref(),
                &body,
                flavor,
                n_items,
            )
            .await;
        }
    };
    // Not needed past the parse: freed before the wait for the ledger, where the engine loop
    // builds the entry, so that a push holds only one copy of itself at a time.
    drop(body);
    if n_items == 0 {
        let report = PushReport {
            source: push_source(pushed.kind()),
            ..PushReport::default()
        };
        return Ok(Received {
            n_items,
            report,
            inbox_id: None,
        });
    }
    let (ack, confirmed) = tokio::sync::oneshot::channel();
    sender.try_send((pushed, ack)).map_err(|error| {
        let reason = match error {
            TrySendError::Full(_) => "vigil's intake queue is full; retry later",
            TrySendError::Closed(_) => "vigil is shutting down; retry later",
        };
        Failure::new(flavor, StatusCode::SERVICE_UNAVAILABLE, reason).retry_later()
    })?;
    let unavailable =
        |reason: &str| Failure::new(flavor, StatusCode::SERVICE_UNAVAILABLE, reason).retry_later();
    match tokio::time::timeout(state.ack_wait, confirmed).await {
        Ok(Ok(Ok(report))) => Ok(Received {
            n_items,
            report,
            inbox_id: None,
        }),
        Ok(Ok(Err(why))) => Err(unavailable(&format!(
            "vigil could not record the push ({why}); retry later"
        ))),
        Ok(Err(_)) => Err(unavailable("vigil is shutting down; retry later")),
        Err(_) => Err(unavailable(
            "vigil has not confirmed recording the push in time; it may still be recorded; retry later",
        )),
    }
}

/// Commits a checked push to the inbox; answers once it is there (durable) with what the
/// 2xx carries, or refuses it with 503 when the inbox is full or the database fails.
async fn to_inbox(
    inbox: &InboxSink,
    route: &str,
    content_type: Option<&str>,
    body: &[u8],
    flavor: Flavor,
    n_items: usize,
) -> Result<Received, Failure> {
    let unavailable =
        |reason: &str| Failure::new(flavor, StatusCode::SERVICE_UNAVAILABLE, reason).retry_later();
    let received_at = inbox.clock.now();
    match inbox
        .replication
        .inbox_put(
            received_at.0,
            &inbox.replica,
            route,
            content_type,
            body,
            inbox.max_rows,
        )
        .await
    {
        Ok(Some(id)) => Ok(Received {
            n_items,
            report: PushReport::default(),
            inbox_id: Some(id),
        }),
        Ok(None) => Err(unavailable(
            "vigil's inbox of pushes waiting for the leader is full; retry later",
        )),
        Err(error) => {
            tracing::warn!(%error, "cannot store a push in the inbox");
            Err(unavailable("vigil could not store the push; retry later"))
        }
    }
}

/// Checks what can be checked before reading the body.
fn admit(state: &IntakeState, headers: &HeaderMap, flavor: Flavor) -> Result<(), Failure> {
    if let Some(expected) = &state.bearer {
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(bearer_token);
        if !presented.is_some_and(|token| same_secret(token, expected.expose())) {
            let mut failure = Failure::new(
                flavor,
                StatusCode::UNAUTHORIZED,
                "a valid `Authorization: Bearer` token is required",
            );
            failure.challenge = true;
            return Err(failure);
        }
    }

    let unsupported =
        |error: String| Failure::new(flavor, StatusCode::UNSUPPORTED_MEDIA_TYPE, error);
    let accepted = match flavor {
        Flavor::Push => "`application/json`",
        Flavor::Otlp(_) => "`application/x-protobuf` or `application/json`",
    };
    match (media_type(headers).as_deref(), flavor) {
        (Some("application/json"), _) | (Some(PROTOBUF_MEDIA_TYPE), Flavor::Otlp(_)) => {}
        (Some(other), _) => {
            let shown: String = other.chars().take(64).collect();
            return Err(unsupported(format!(
                "the body must be {accepted}, not `{shown}`"
            )));
        }
        (None, Flavor::Push) => {
            return Err(unsupported(
                "the request needs `Content-Type: application/json`".to_owned(),
            ));
        }
        (None, Flavor::Otlp(_)) => {
            return Err(unsupported(
                "the request needs `Content-Type: application/x-protobuf` (or `application/json`)"
                    .to_owned(),
            ));
        }
    }

    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .map(|value| value.to_str().unwrap_or_default().trim());
    if encoding.is_some_and(|encoding| !encoding.eq_ignore_ascii_case("identity")) {
        // OpenTelemetry's exporters compress only when told to (their default is `none`).
        let hint = match flavor {
            Flavor::Otlp(_) => " (OTEL_EXPORTER_OTLP_COMPRESSION=none)",
            Flavor::Push => "",
        };
        return Err(unsupported(format!(
            "compressed bodies are not supported; send the body uncompressed{hint}"
        )));
    }

    let declared_length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared_length.is_some_and(|length| length > state.max_body_bytes as u64) {
        return Err(Failure::too_large(flavor, state.max_body_bytes));
    }
    Ok(())
}

/// The token of an `Authorization: Bearer <token>` header (the scheme in any case).
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|token| !token.is_empty())
}

/// Compares digests rather than the strings, so that the time taken says nothing about how
/// much of a guess was right, nor about the secret's length.
fn same_secret(presented: &str, expected: &str) -> bool {
    Sha256::digest(presented.as_bytes()) == Sha256::digest(expected.as_bytes())
}

/// Which error body a route speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flavor {
    /// vigil's own: `{"error", "problems"}`.
    Push,
    /// OTLP's: a `google.rpc.Status`, `{"message"}` in JSON or its protobuf message.
    Otlp(OtlpEncoding),
}

/// A refused request.
#[derive(Debug)]
struct Failure {
    flavor: Flavor,
    status: StatusCode,
    error: String,
    problems: Vec<Problem>,
    retry_after: bool,
    challenge: bool,
}

impl Failure {
    fn new(flavor: Flavor, status: StatusCode, error: impl Into<String>) -> Self {
        Failure {
            flavor,
            status,
            error: error.into(),
            problems: Vec::new(),
            retry_after: false,
            challenge: false,
        }
    }

    fn too_large(flavor: Flavor, max_body_bytes: usize) -> Self {
        Failure::new(
            flavor,
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the body is larger than the limit of {max_body_bytes} bytes; send smaller batches"
            ),
        )
    }

    fn invalid(flavor: Flavor, error: IntakeError) -> Self {
        let mut failure = Failure::new(flavor, StatusCode::BAD_REQUEST, error.summary());
        failure.problems = error.problems;
        failure
    }

    fn retry_later(mut self) -> Self {
        self.retry_after = true;
        self
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        // Refusals are counted and summed up in one log line per interval by the listener
        // (`server/refusals.rs`), not logged one by one: a flood would flood the log.
        let detail = super::server::refusals::RefusalDetail(self.error.clone());
        let body = match self.flavor {
            Flavor::Push => serde_json::json!({ "error": self.error, "problems": self.problems }),
            Flavor::Otlp(_) => {
                let mut message = self.error;
                for (idx, problem) in self.problems.iter().enumerate() {
                    message.push_str(if idx == 0 { ": " } else { "; " });
                    message.push_str(&problem.to_string());
                }
                serde_json::json!({ "message": message })
            }
        };
        let mut response = match (self.flavor, body) {
            (Flavor::Otlp(OtlpEncoding::Protobuf), serde_json::Value::Object(mut map)) => {
                let message = match map.remove("message") {
                    Some(serde_json::Value::String(message)) => message,
                    _ => String::new(),
                };
                let status = intake::otlp_proto::rpc_status(grpc_code(self.status), message);
                protobuf_response(self.status, status)
            }
            (_, body) => (self.status, Json(body)).into_response(),
        };
        if self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
        }
        if self.challenge {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response.extensions_mut().insert(detail);
        response
    }
}

/// The gRPC code of a `google.rpc.Status` that goes with an HTTP status.
fn grpc_code(status: StatusCode) -> i32 {
    match status {
        StatusCode::BAD_REQUEST | StatusCode::UNSUPPORTED_MEDIA_TYPE => 3, // INVALID_ARGUMENT
        StatusCode::UNAUTHORIZED => 16,                                    // UNAUTHENTICATED
        StatusCode::PAYLOAD_TOO_LARGE => 8,                                // RESOURCE_EXHAUSTED
        StatusCode::SERVICE_UNAVAILABLE => 14,                             // UNAVAILABLE
        _ => 2,                                                            // UNKNOWN
    }
}

#[cfg(test)]
mod tests {
    //! Real HTTP on loopback: each route's happy path, and each refusal with what it names.

    use std::time::Duration;

    use serde_json::{Value, json};
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio::net::{TcpListener, TcpStream};
    use vigil_core::Timestamp;
    use vigil_core::authz::Mode;
    use vigil_core::diagnosis::DiagnosisConfig;
    use vigil_core::engine::{
        Engine, EngineConfig, Event, FlapLimits, GlobalLimits, MAX_REFUSED_LISTED, StoreLimits,
    };
    use vigil_core::intake::AgentOutcome;

    use super::*;

    const LIMIT: usize = 4096;

    struct Server {
        url: String,
        /// What the stand-in for the engine loop recorded, in order.
        queue: mpsc::UnboundedReceiver<Pushed>,
        client: reqwest::Client,
    }

    /// How the stand-in for the engine loop answers.
    #[derive(Clone, Copy)]
    enum Recorder {
        /// Records every push and confirms it with what a real engine made of it.
        Confirms,
        /// The same, with an engine that tracks at most this many series per push source.
        Limited(usize),
        /// Fails every append.
        Fails,
        /// Takes nothing from the queue.
        Stalls,
        /// Stops: drops the queue.
        Stopped,
    }

    async fn start(bearer: Option<&str>, queue_len: usize) -> Server {
        start_with(bearer, queue_len, Recorder::Confirms).await
    }

    async fn start_with(bearer: Option<&str>, queue_len: usize, recorder: Recorder) -> Server {
        vigil_connectors::install_crypto_provider();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (sender, mut pushes) = mpsc::channel::<(Pushed, Ack)>(queue_len);
        let (recorded, queue) = mpsc::unbounded_channel();
        match recorder {
            Recorder::Confirms | Recorder::Limited(_) => {
                let max_pushed_series = match recorder {
                    Recorder::Limited(limit) => limit,
                    _ => 10_000,
                };
                let mut engine = Engine::new(engine_config(max_pushed_series));
                tokio::spawn(async move {
                    let mut now = Timestamp(1_772_366_400_000);
                    while let Some((pushed, ack)) = pushes.recv().await {
                        now = now.plus_millis(1000);
                        engine.handle(
                            &Event::Pushed {
                                payload: pushed.clone(),
                            },
                            now,
                        );
                        let report = engine.push_report().cloned().unwrap();
                        // Recorded before it is confirmed, as the engine loop does.
                        let _ = recorded.send(pushed);
                        let _ = ack.send(Ok(report));
                    }
                });
            }
            Recorder::Fails => {
                tokio::spawn(async move {
                    while let Some((_, ack)) = pushes.recv().await {
                        let _ = ack.send(Err("the disk is full".to_owned()));
                    }
                });
            }
            Recorder::Stalls => {
                tokio::spawn(async move {
                    let _kept = (pushes, recorded);
                    std::future::pending::<()>().await;
                });
            }
            Recorder::Stopped => drop(pushes),
        }
        let app = router(IntakeState {
            sender: PushSink::Engine(sender),
            ack_wait: std::time::Duration::from_millis(300),
            bearer: bearer.map(Secret::new),
            max_body_bytes: LIMIT,
        });
        tokio::spawn(async move { axum::serve(listener, app).await });
        Server {
            url,
            queue,
            client: reqwest::Client::new(),
        }
    }

    /// An engine with no sources or detectors that tracks `max_pushed_series` per push source.
    fn engine_config(max_pushed_series: usize) -> EngineConfig {
        EngineConfig {
            mode: Mode::Autonomous,
            environment: "test".to_owned(),
            sources: Vec::new(),
            detectors: Vec::new(),
            diagnosis: DiagnosisConfig {
                runaway_min_share: 0.7,
                change_window_ms: vigil_core::diagnosis::DEFAULT_CHANGE_WINDOW_MS,
                demand: None,
                excess: vigil_core::diagnosis::ExcessRule::Net,
            },
            runbooks: Vec::new(),
            api_keys: Vec::new(),
            store: StoreLimits {
                max_pushed_series,
                ..StoreLimits::default()
            },
            flapping: FlapLimits::default(),
            resources: Vec::new(),
            limits: GlobalLimits::default(),
            trust: Vec::new(),
            people: None,
            topology: None,
            numbers: vigil_core::human::NumberStyle::Readable,
            assistant: None,
        }
    }

    /// The 202 body of a push whose `n_series` series are all tracked.
    fn all_tracked(n_items: usize, n_series: usize) -> Value {
        json!({"accepted": n_items, "series": {"accepted": n_series, "refused": 0},
               "refused": [], "refused_not_listed": 0})
    }

    struct Answer {
        status: u16,
        headers: reqwest::header::HeaderMap,
        body: Value,
    }

    impl Server {
        async fn post(
            &self,
            path: &str,
            headers: &[(&str, &str)],
            body: impl Into<String>,
        ) -> Answer {
            let mut request = self.client.post(format!("{}{path}", self.url));
            for (name, value) in headers {
                request = request.header(*name, *value);
            }
            let response = request.body(body.into()).send().await.unwrap();
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            let body = response.json().await.unwrap();
            Answer {
                status,
                headers,
                body,
            }
        }

        async fn post_json(&self, path: &str, body: &Value) -> Answer {
            self.post(
                path,
                &[("content-type", "application/json")],
                body.to_string(),
            )
            .await
        }

        fn queued(&mut self) -> Option<Pushed> {
            self.queue.try_recv().ok()
        }
    }

    fn eval(case: &str) -> Value {
        json!({"suite": "s", "case": case, "passed": true, "model": "m",
               "prompt_name": "p", "prompt_version": "v1"})
    }

    fn chat_span(span_id: &str) -> Value {
        json!({"traceId": "5b8efff798038103d269b633813fc60c", "spanId": span_id,
               "name": "chat gpt-4o", "kind": 3,
               "startTimeUnixNano": "1772366400000000000", "endTimeUnixNano": "1772366401000000000",
               "attributes": [
                   {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
                   {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o"}}]})
    }

    fn traces(spans: Vec<Value>) -> Value {
        json!({"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]})
    }

    #[tokio::test]
    async fn each_route_queues_its_typed_payload() {
        let mut server = start(None, 8).await;

        let answer = server
            .post_json(
                "/v1/push/evals",
                &json!({"results": [eval("a"), eval("b")]}),
            )
            .await;
        // Both results feed one series: passed cases of one suite, model and prompt.
        assert_eq!((answer.status, answer.body), (202, all_tracked(2, 1)));
        let Some(Pushed::Evals(batch)) = server.queued() else {
            panic!("no evals queued")
        };
        assert_eq!(batch.results[1].case, "b");

        let runs = json!({"runs": [{"run_id": "r1", "agent": "triage", "iterations": 4,
            "outcome": "iteration_limit", "tool_calls": [
                {"name": "search", "arguments": {"q": "refund"}},
                {"name": "search", "arguments": {"q": "refund"}}]}]});
        let answer = server.post_json("/v1/push/agent-runs", &runs).await;
        let Some(Pushed::AgentRuns(batch)) = server.queued() else {
            panic!("no agent runs queued")
        };
        let n_series = Pushed::AgentRuns(batch.clone()).signals().len();
        assert_eq!(
            (answer.status, answer.body),
            (202, all_tracked(1, n_series))
        );
        assert_eq!(batch.runs[0].outcome, AgentOutcome::IterationLimit);
        assert_eq!(batch.runs[0].tool_call_stats().longest_streak, 2);

        let notification = json!({"version": "4", "status": "firing", "receiver": "vigil",
            "groupKey": "{}:{alertname=\"X\"}", "alerts": [{"status": "firing",
            "labels": {"alertname": "X", "severity": "page"},
            "startsAt": "2026-03-01T12:00:00Z", "endsAt": "0001-01-01T00:00:00Z"}]});
        let answer = server
            .post_json("/v1/push/alertmanager", &notification)
            .await;
        assert_eq!((answer.status, answer.body), (202, all_tracked(1, 1)));
        let Some(Pushed::Alerts(batch)) = server.queued() else {
            panic!("no alerts queued")
        };
        assert_eq!(
            (batch.alerts[0].name(), batch.alerts[0].ends_at),
            ("X", None)
        );

        let answer = server
            .post(
                "/v1/traces",
                &[("content-type", "application/json")],
                traces(vec![chat_span("eee19b7ec3c1b174")]).to_string(),
            )
            .await;
        assert_eq!((answer.status, answer.body), (200, json!({})));
        assert_eq!(
            answer.headers.get("content-type").unwrap(),
            "application/json"
        );
        let Some(Pushed::Spans(batch)) = server.queued() else {
            panic!("no spans queued")
        };
        assert_eq!(batch.spans[0].model(), "gpt-4o");
        assert!(server.queued().is_none());
    }

    #[tokio::test]
    async fn batches_with_nothing_for_the_engine_are_acknowledged_not_queued() {
        let mut server = start(None, 8).await;
        let http_span = json!({"traceId": "x", "name": "GET /", "attributes": []});
        let answer = server
            .post_json("/v1/traces", &traces(vec![http_span]))
            .await;
        assert_eq!((answer.status, answer.body), (200, json!({})));
        let answer = server
            .post_json("/v1/push/evals", &json!({"results": []}))
            .await;
        assert_eq!((answer.status, answer.body), (202, all_tracked(0, 0)));
        assert!(server.queued().is_none());
    }

    #[tokio::test]
    async fn invalid_payloads_get_400_naming_every_field() {
        let mut server = start(None, 8).await;
        let mut bad = eval("a");
        bad["passed"] = json!("yes");
        bad["score"] = json!("high");
        let answer = server
            .post_json("/v1/push/evals", &json!({"results": [eval("ok"), bad]}))
            .await;
        assert_eq!(answer.status, 400);
        assert_eq!(
            answer.body,
            json!({"error": "the payload has 2 problems", "problems": [
                {"path": "results[1].passed", "message": "must be `true` or `false`, found a string"},
                {"path": "results[1].score", "message": "must be a finite number, found a string"}]})
        );

        let answer = server
            .post_json(
                "/v1/push/alertmanager",
                &json!({"version": "3", "alerts": []}),
            )
            .await;
        assert_eq!(answer.status, 400);
        assert_eq!(answer.body["problems"][0]["path"], "version");

        let answer = server
            .post(
                "/v1/push/agent-runs",
                &[("content-type", "application/json")],
                "{\"runs\": [",
            )
            .await;
        assert_eq!(answer.status, 400);
        assert_eq!(
            answer.body["problems"][0]["message"],
            "invalid JSON at line 1 column 10: EOF while parsing a list"
        );

        // OTLP answers with a `google.rpc.Status` whose message names the field.
        let answer = server
            .post_json("/v1/traces", &traces(vec![chat_span("W47/95gDgQ==")]))
            .await;
        assert_eq!(answer.status, 400);
        assert_eq!(
            answer.body,
            json!({"message": "the payload has 1 problem: resourceSpans[0].scopeSpans[0].spans[0].spanId: must be 16 hex digits (OTLP/JSON encodes ids in hex, not base64)"})
        );
        assert!(server.queued().is_none());
    }

    #[tokio::test]
    async fn bodies_over_the_limit_get_413() {
        let mut server = start(None, 8).await;
        let cases: Vec<Value> = (0..100).map(|idx| eval(&format!("case-{idx}"))).collect();
        let answer = server
            .post_json("/v1/push/evals", &json!({"results": cases}))
            .await;
        assert_eq!(answer.status, 413);
        assert_eq!(
            answer.body["error"],
            "the body is larger than the limit of 4096 bytes; send smaller batches"
        );

        // Without a Content-Length, the read itself stops at the limit.
        let address = server.url.trim_start_matches("http://");
        let mut stream = TcpStream::connect(address).await.unwrap();
        let head = "POST /v1/traces HTTP/1.1\r\nHost: vigil\r\nContent-Type: application/json\r\n\
                    Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
        stream.write_all(head.as_bytes()).await.unwrap();
        let chunk = format!("400\r\n{}\r\n", " ".repeat(0x400));
        for _ in 0..8 {
            // The server may answer and close before the last chunk; that is the point.
            if stream.write_all(chunk.as_bytes()).await.is_err() {
                break;
            }
        }
        let _ = stream.write_all(b"0\r\n\r\n").await;
        let mut response = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut response));
        let _ = read.await;
        let response = String::from_utf8_lossy(&response);
        assert!(response.starts_with("HTTP/1.1 413"), "{response}");
        assert!(
            response.contains("\"message\":\"the body is larger"),
            "{response}"
        );
        assert!(server.queued().is_none());
    }

    #[tokio::test]
    async fn only_uncompressed_json_or_otlp_protobuf_is_accepted() {
        let mut server = start(None, 8).await;
        let body = json!({"results": [eval("a")]}).to_string();
        // (path, headers, the error it names)
        type Case = (
            &'static str,
            &'static [(&'static str, &'static str)],
            &'static str,
        );
        let cases: [Case; 5] = [
            (
                "/v1/push/evals",
                &[],
                "the request needs `Content-Type: application/json`",
            ),
            (
                "/v1/push/evals",
                &[("content-type", "text/plain")],
                "the body must be `application/json`, not `text/plain`",
            ),
            (
                "/v1/push/evals",
                &[
                    ("content-type", "application/json"),
                    ("content-encoding", "gzip"),
                ],
                "compressed bodies are not supported; send the body uncompressed",
            ),
            (
                "/v1/traces",
                &[("content-type", "text/plain")],
                "the body must be `application/x-protobuf` or `application/json`, not `text/plain`",
            ),
            (
                "/v1/traces",
                &[
                    ("content-type", "application/json"),
                    ("content-encoding", "gzip"),
                ],
                "compressed bodies are not supported; send the body uncompressed (OTEL_EXPORTER_OTLP_COMPRESSION=none)",
            ),
        ];
        for (path, headers, error) in cases {
            let answer = server.post(path, headers, body.clone()).await;
            assert_eq!(answer.status, 415, "{path} {headers:?}");
            let said = if path == OTLP_TRACES_PATH {
                &answer.body["message"]
            } else {
                &answer.body["error"]
            };
            assert_eq!(said, error);
        }
        let answer = server
            .post(
                "/v1/push/evals",
                &[("content-type", "Application/JSON; charset=utf-8")],
                body,
            )
            .await;
        assert_eq!(answer.status, 202);
        assert!(server.queued().is_some());
    }

    #[tokio::test]
    async fn a_configured_bearer_token_is_required() {
        let mut server = start(Some("s3cret-token"), 8).await;
        let body = json!({"results": [eval("a")]}).to_string();
        for authorization in [
            None,
            Some("Bearer wrong"),
            Some("Basic s3cret-token"),
            Some("Bearer "),
        ] {
            let mut headers = vec![("content-type", "application/json")];
            headers.extend(authorization.map(|value| ("authorization", value)));
            let answer = server.post("/v1/push/evals", &headers, body.clone()).await;
            assert_eq!(answer.status, 401, "{authorization:?}");
            assert_eq!(answer.headers.get("www-authenticate").unwrap(), "Bearer");
            assert_eq!(
                answer.body["error"],
                "a valid `Authorization: Bearer` token is required"
            );
        }
        // The token is checked before anything else, so a stranger learns nothing more; an
        // OTLP/protobuf client is told in protobuf.
        let (status, content_type, status_bytes) = server.post_protobuf(Vec::new()).await;
        assert_eq!(
            (status, content_type.as_str()),
            (401, "application/x-protobuf")
        );
        let said = <vigil_core::intake::otlp_messages::RpcStatus as prost::Message>::decode(
            status_bytes.as_slice(),
        )
        .unwrap();
        assert_eq!(
            (said.code, said.message.as_str()),
            (16, "a valid `Authorization: Bearer` token is required")
        );
        assert!(server.queued().is_none());

        let answer = server
            .post(
                "/v1/push/evals",
                &[
                    ("content-type", "application/json"),
                    ("authorization", "bearer s3cret-token"),
                ],
                body,
            )
            .await;
        assert_eq!(answer.status, 202);
        assert!(server.queued().is_some());
    }

    #[tokio::test]
    async fn a_push_is_acknowledged_only_once_recorded_and_otherwise_gets_503() {
        let body = json!({"results": [eval("a")]});
        // Not confirmed in time: 503, and the push stays queued (it may still be recorded).
        let stalled = start_with(None, 1, Recorder::Stalls).await;
        let answer = stalled.post_json("/v1/push/evals", &body).await;
        assert_eq!(answer.status, 503, "{}", answer.body);
        assert_eq!(answer.headers.get("retry-after").unwrap(), "1");
        assert_eq!(
            answer.body["error"],
            "vigil has not confirmed recording the push in time; it may still be recorded; retry later"
        );
        // That push fills the queue of one: the next is refused without waiting.
        let answer = stalled.post_json("/v1/push/evals", &body).await;
        assert_eq!(answer.status, 503);
        assert_eq!(
            answer.body["error"],
            "vigil's intake queue is full; retry later"
        );
        // The append failed: 503 saying why.
        let failing = start_with(None, 4, Recorder::Fails).await;
        let answer = failing.post_json("/v1/push/evals", &body).await;
        assert_eq!(answer.status, 503);
        assert_eq!(
            answer.body["error"],
            "vigil could not record the push (the disk is full); retry later"
        );
        let answer = failing
            .post_json("/v1/traces", &traces(vec![chat_span("eee19b7ec3c1b174")]))
            .await;
        assert_eq!(answer.status, 503);
        assert_eq!(
            answer.body["message"],
            "vigil could not record the push (the disk is full); retry later"
        );
    }

    // Regression: series past the limit were dropped after a 202 `{"accepted": N}` that did
    // not say so.
    #[tokio::test]
    async fn a_push_answer_names_the_series_refused_and_why() {
        let mut server = start_with(None, 8, Recorder::Limited(2)).await;
        let prompt = |name: &str| {
            let mut result = eval("c");
            result["prompt_name"] = json!(name);
            result
        };
        let series = |name: &str| {
            format!(
                "vigil_eval_cases_total{{model=\"m\",outcome=\"passed\",prompt=\"{name}\",prompt_version=\"v1\",suite=\"s\"}}"
            )
        };
        let reason = "push:evals already tracks 2 series (store.max_pushed_series); new series are \
                      refused until old ones go stale (not pushed for the retention, 3600 s)";
        let results: Vec<Value> = ["a", "b", "c", "a"].into_iter().map(prompt).collect();
        let answer = server
            .post_json("/v1/push/evals", &json!({ "results": results }))
            .await;
        // Recorded (202), and the answer says which series are not tracked and why.
        assert_eq!(
            (answer.status, answer.body),
            (
                202,
                json!({"accepted": 4, "series": {"accepted": 2, "refused": 1},
                       "refused": [{"series": series("c"), "reason": reason}],
                       "refused_not_listed": 0})
            )
        );
        assert!(server.queued().is_some());
        let many: Vec<Value> = (0..15).map(|idx| prompt(&format!("n-{idx:02}"))).collect();
        let answer = server
            .post_json("/v1/push/evals", &json!({ "results": many }))
            .await;
        assert_eq!(answer.status, 202);
        assert_eq!(answer.body["series"], json!({"accepted": 0, "refused": 15}));
        let listed = answer.body["refused"].as_array().unwrap();
        assert_eq!(listed.len(), MAX_REFUSED_LISTED);
        assert_eq!(listed[0]["series"], series("n-00"));
        assert_eq!(answer.body["refused_not_listed"], 15 - MAX_REFUSED_LISTED);

        // OTLP: a partial success that counts the spans whose series were refused.
        let answer = server
            .post_json("/v1/traces", &traces(vec![chat_span("eee19b7ec3c1b174")]))
            .await;
        assert_eq!(answer.status, 200);
        let partial = &answer.body["partialSuccess"];
        assert_eq!(partial["rejectedSpans"], "1", "{}", answer.body);
        let message = partial["errorMessage"].as_str().unwrap();
        assert!(
            message.starts_with("vigil recorded every span but refused ")
                && message.contains(
                    "push:spans already tracks 2 series (store.max_pushed_series); new series are refused"
                ),
            "{message}"
        );
    }

    /// An OTLP/JSON export as its protobuf message: what an SDK's default exporter sends.
    fn protobuf_traces(spans: &[(&str, &str)]) -> Vec<u8> {
        use prost::Message as _;
        use vigil_core::intake::otlp_messages as pb;
        let string = |key: &str, value: &str| pb::KeyValue {
            key: key.to_owned(),
            value: Some(pb::AnyValue {
                value: Some(pb::Value::StringValue(value.to_owned())),
            }),
        };
        let spans = spans
            .iter()
            .map(|(span_id, model)| pb::Span {
                trace_id: hex::decode("5b8efff798038103d269b633813fc60c").unwrap(),
                span_id: hex::decode(span_id).unwrap(),
                parent_span_id: Vec::new(),
                name: "chat gpt-4o".to_owned(),
                kind: 3,
                start_time_unix_nano: 1_772_366_400_000_000_000,
                end_time_unix_nano: 1_772_366_401_000_000_000,
                attributes: vec![
                    string("gen_ai.operation.name", "chat"),
                    string("gen_ai.request.model", model),
                ],
                status: None,
            })
            .collect();
        pb::ExportTraceServiceRequest {
            resource_spans: vec![pb::ResourceSpans {
                resource: None,
                scope_spans: vec![pb::ScopeSpans { scope: None, spans }],
            }],
        }
        .encode_to_vec()
    }

    impl Server {
        /// POSTs a protobuf body to `/v1/traces`: the status, the Content-Type and the body.
        async fn post_protobuf(&self, body: Vec<u8>) -> (u16, String, Vec<u8>) {
            let response = self
                .client
                .post(format!("{}{OTLP_TRACES_PATH}", self.url))
                .header("content-type", "application/x-protobuf")
                .body(body)
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let content_type = response
                .headers()
                .get("content-type")
                .map(|value| value.to_str().unwrap().to_owned())
                .unwrap_or_default();
            (
                status,
                content_type,
                response.bytes().await.unwrap().to_vec(),
            )
        }
    }

    #[tokio::test]
    async fn otlp_protobuf_is_queued_as_the_same_batch_as_json_and_answered_in_protobuf() {
        use prost::Message as _;
        use vigil_core::intake::otlp_messages as pb;
        let mut server = start(None, 8).await;
        let answer = server
            .post_json(
                OTLP_TRACES_PATH,
                &traces(vec![chat_span("eee19b7ec3c1b174")]),
            )
            .await;
        assert_eq!((answer.status, answer.body), (200, json!({})));
        let from_json = server.queued().unwrap();

        let (status, content_type, body) = server
            .post_protobuf(protobuf_traces(&[("eee19b7ec3c1b174", "gpt-4o")]))
            .await;
        assert_eq!(
            (status, content_type.as_str()),
            (200, "application/x-protobuf")
        );
        let response = pb::ExportTraceServiceResponse::decode(body.as_slice()).unwrap();
        assert_eq!(response.partial_success, None, "full success");
        assert_eq!(server.queued().unwrap(), from_json);
    }

    #[tokio::test]
    async fn malformed_otlp_protobuf_gets_400_with_a_protobuf_status_naming_the_field() {
        use prost::Message as _;
        use vigil_core::intake::otlp_messages as pb;
        let mut server = start(None, 8).await;
        let mut truncated = protobuf_traces(&[("eee19b7ec3c1b174", "gpt-4o")]);
        truncated.pop();
        let mut request = pb::ExportTraceServiceRequest::decode(
            protobuf_traces(&[("eee19b7ec3c1b174", "gpt-4o")]).as_slice(),
        )
        .unwrap();
        request.resource_spans[0].scope_spans[0].spans[0]
            .span_id
            .pop();
        let short_id = request.encode_to_vec();
        for (body, message) in [
            (
                truncated,
                "the payload has 1 problem: the body is not a valid protobuf message: has a field that runs past the end of its message",
            ),
            (
                short_id,
                "the payload has 1 problem: resourceSpans[0].scopeSpans[0].spans[0].spanId: must be 8 bytes, found 7",
            ),
        ] {
            let (status, content_type, body) = server.post_protobuf(body).await;
            assert_eq!(
                (status, content_type.as_str()),
                (400, "application/x-protobuf")
            );
            let status = pb::RpcStatus::decode(body.as_slice()).unwrap();
            assert_eq!((status.code, status.message.as_str()), (3, message));
        }
        assert!(server.queued().is_none());
    }

    #[tokio::test]
    async fn an_otlp_protobuf_partial_success_counts_the_spans_refused() {
        use prost::Message as _;
        use vigil_core::intake::otlp_messages as pb;
        let mut server = start_with(None, 8, Recorder::Limited(2)).await;
        let (status, _, body) = server
            .post_protobuf(protobuf_traces(&[
                ("eee19b7ec3c1b174", "m-1"),
                ("eee19b7ec3c1b175", "m-2"),
                ("eee19b7ec3c1b176", "m-3"),
            ]))
            .await;
        assert_eq!(status, 200);
        let partial = pb::ExportTraceServiceResponse::decode(body.as_slice())
            .unwrap()
            .partial_success
            .unwrap();
        assert!(partial.rejected_spans >= 1, "{partial:?}");
        assert!(
            partial
                .error_message
                .starts_with("vigil recorded every span but refused "),
            "{partial:?}"
        );
        assert!(server.queued().is_some());
    }

    #[tokio::test]
    async fn a_closed_queue_gets_503_with_retry_after() {
        let server = start_with(None, 1, Recorder::Stopped).await;
        let answer = server
            .post_json("/v1/push/evals", &json!({"results": [eval("a")]}))
            .await;
        assert_eq!(answer.status, 503);
        assert_eq!(answer.headers.get("retry-after").unwrap(), "1");
        let answer = server
            .post_json("/v1/traces", &traces(vec![chat_span("eee19b7ec3c1b174")]))
            .await;
        assert_eq!(answer.status, 503);
        assert_eq!(answer.headers.get("retry-after").unwrap(), "1");
        assert_eq!(
            answer.body["message"],
            "vigil is shutting down; retry later"
        );
    }
}
