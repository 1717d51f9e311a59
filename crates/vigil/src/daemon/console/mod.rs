//! The web console (`console:` in the config, which needs `admin:`): pages rendered on the
//! server (`render/console.rs`) from the ledger and the engine's state, for on-call, SREs and
//! auditors.
//!
//! - **Who.** People sign in with the admin API's credentials (a personal or OIDC token, or
//!   the TLS client certificate); a session (`session.rs`) keeps the credential in memory and
//!   authenticates it again on every request, so roles and revocations apply at once. The
//!   cookie is `HttpOnly`, `SameSite=Strict`, and `Secure` with the `__Host-` prefix when the
//!   listener terminates TLS.
//! - **What changes.** Every state-changing form carries the session's CSRF token and is
//!   refused (403) without it or from another origin. Instructions go to the engine loop as
//!   the admin API's do (`Event::Human` with the principal), so Cedar decides and the ledger
//!   records them; a viewer sees no approve form and an approval from one is refused anyway.
//! - **What it reads.** Each request asks the engine loop for an [`EngineView`]: the pending
//!   proposals, the controls in force, the policy set's hash, and a reader of the ledger
//!   taken at that moment (`Ledger::reader`), which the page then reads without holding the
//!   loop.
//! - **Live.** `GET /console/events` is a server-sent event stream of the entries the daemon
//!   records (the same notes the demo's timeline prints), at most `max_live_clients` at once,
//!   each for at most [`LIVE_MAX`] and while its session lives (checked before every frame);
//!   the page's script refreshes its content on news.
//! - **Headers.** Every answer has a Content-Security-Policy without inline script or style
//!   ([`CSP`]), `nosniff`, a referrer only to vigil itself (so forms carry their real `Origin`), no framing and no caching of pages.

mod session;

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, broadcast, mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use vigil_core::engine::{Controls, Event, HumanCommand, KillScope, PendingProposal};
use vigil_core::incidents::{IncidentFilter, IncidentState};
use vigil_core::people::{InstructionLimits, Principal, Role};
use vigil_core::report::Assumptions;
use vigil_core::time::Timestamp;
use vigil_ledger::Ledger;

use self::session::{Proof, Sessions, same_secret};
use super::admin::{FailureLog, Instruction, InstructionAnswer};
use super::server::PeerInfo;
use super::telemetry::Telemetry;
use super::{Note, NoteBody};
use crate::clock::Clock;
use crate::config::console::ConsoleConfig;
use crate::identity::{Authenticator, Credentials};
use crate::journal;
use crate::logsafe::Escaped;
use crate::render::console::{self as pages, Section, Who};

/// The Content-Security-Policy of every console answer: nothing from elsewhere, no inline
/// script or style, forms only to vigil, never in a frame.
pub(crate) const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
     connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The longest a live stream stays open; the browser reconnects on its own.
const LIVE_MAX: Duration = Duration::from_secs(30 * 60);

/// A comment sent on a quiet live stream, so proxies and browsers keep it.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// How long a page waits for the engine loop's view.
const VIEW_WAIT: Duration = Duration::from_secs(10);

/// How long an instruction waits for the engine's answer.
const ANSWER_WAIT: Duration = Duration::from_secs(10);

/// The largest form accepted.
const MAX_FORM_BYTES: usize = 64 * 1024;

/// Incidents shown in the list at most.
const MAX_LISTED: usize = 500;

/// The routes the console serves, with what each is for (the OpenAPI description lists them).
pub(crate) const ROUTES: &[(&str, &str, &str)] = &[
    ("GET", "/", "Redirects to the console's incident list."),
    ("GET", "/console/login", "The sign-in page."),
    (
        "POST",
        "/console/login",
        "Signs in with a token or the client certificate; sets the session cookie.",
    ),
    (
        "POST",
        "/console/logout",
        "Ends the session (CSRF token required).",
    ),
    (
        "GET",
        "/console/incidents",
        "Open and recent incidents, filterable by state, hypothesis, subject and time.",
    ),
    (
        "GET",
        "/console/incident",
        "One incident: why-packet, evidence charts, Cedar decisions, actions, verification, pages, timeline.",
    ),
    (
        "POST",
        "/console/incident/replay",
        "Replays the incident from the ledger and shows whether it matches (CSRF token required).",
    ),
    (
        "GET",
        "/console/proposals",
        "The proposals waiting for people, with what exactly would run.",
    ),
    (
        "POST",
        "/console/proposals/decide",
        "Approves or rejects a proposal, with a reason (CSRF token required).",
    ),
    (
        "GET",
        "/console/controls",
        "Kill switches and silences in force.",
    ),
    (
        "POST",
        "/console/controls",
        "Turns a kill switch on or off, or sets or ends a silence (operators; CSRF token required).",
    ),
    (
        "GET",
        "/console/policies",
        "The policy set and runbooks in force, with their hashes, and the what-if form.",
    ),
    (
        "POST",
        "/console/policies/what-if",
        "Replays the recorded decisions of a past window against a policy set given as text and lists every decision that would change (CSRF token required).",
    ),
    (
        "GET",
        "/console/ledger",
        "The ledger's size, tree head, checkpoints and latest entries.",
    ),
    ("GET", "/console/ledger/entry", "One ledger entry."),
    (
        "GET",
        "/console/ledger/proof",
        "One entry's RFC 6962 inclusion proof, as JSON to download.",
    ),
    (
        "POST",
        "/console/ledger/verify",
        "Verifies the whole ledger now and shows the result (CSRF token required).",
    ),
    (
        "GET",
        "/console/ledger/export",
        "The ledger's export (every entry with its inclusion proof, and the tree head), as JSON lines to download.",
    ),
    (
        "GET",
        "/console/trust",
        "Verified outcomes per runbook, and which advisory runbooks earned promotion.",
    ),
    (
        "GET",
        "/console/report",
        "The period report with editable assumptions.",
    ),
    (
        "GET",
        "/console/events",
        "Server-sent events: each entry the daemon records, as it records it.",
    ),
    (
        "GET",
        "/console/assets/console.css",
        "The console's stylesheet.",
    ),
    (
        "GET",
        "/console/assets/console.js",
        "The console's script (live updates).",
    ),
];

/// What a console page needs from the engine loop, taken between two events.
pub(crate) struct EngineView {
    /// The proposals waiting for people.
    pub(crate) proposals: Vec<PendingProposal>,
    /// The kill switches and silences in force.
    pub(crate) controls: Controls,
    /// A reader of the ledger as it stands.
    pub(crate) ledger: Ledger,
    /// The policy set in force.
    pub(crate) policy_set_hash: String,
    /// The runbooks loaded, by id.
    pub(crate) runbooks: Vec<String>,
    /// The detectors configured, by name.
    pub(crate) detectors: Vec<String>,
}

/// A request for an [`EngineView`].
pub(crate) type ViewRequest = oneshot::Sender<EngineView>;

/// What the console's routes share.
pub(crate) struct ConsoleState {
    pub(crate) config: ConsoleConfig,
    pub(crate) authenticator: Arc<Authenticator>,
    pub(crate) limits: InstructionLimits,
    pub(crate) views: mpsc::Sender<ViewRequest>,
    pub(crate) instructions: mpsc::Sender<Instruction>,
    pub(crate) notes: broadcast::Sender<Note>,
    pub(crate) telemetry: Arc<Telemetry>,
    pub(crate) failures: Arc<FailureLog>,
    pub(crate) clock: Clock,
    /// Whether the listener terminates TLS (the cookie is then `Secure`).
    pub(crate) tls: bool,
    pub(crate) cancel: CancellationToken,
    sessions: Sessions,
    live: Arc<Semaphore>,
    /// One export at a time (its permit lives until the file is sent).
    exports: Arc<Semaphore>,
    /// One heavy read at a time (a replay, a what-if, a verification, an export): each reads
    /// the whole ledger or rebuilds a session's engine.
    replays: Semaphore,
}

impl ConsoleState {
    #[allow(clippy::too_many_arguments, reason = "built once, in daemon/mod.rs")]
    pub(crate) fn new(
        config: ConsoleConfig,
        authenticator: Arc<Authenticator>,
        limits: InstructionLimits,
        views: mpsc::Sender<ViewRequest>,
        instructions: mpsc::Sender<Instruction>,
        notes: broadcast::Sender<Note>,
        telemetry: Arc<Telemetry>,
        failures: Arc<FailureLog>,
        clock: Clock,
        tls: bool,
        cancel: CancellationToken,
    ) -> ConsoleState {
        ConsoleState {
            sessions: Sessions::new(config.max_sessions, config.session_ttl),
            live: Arc::new(Semaphore::new(config.max_live_clients)),
            exports: Arc::new(Semaphore::new(1)),
            replays: Semaphore::new(1),
            config,
            authenticator,
            limits,
            views,
            instructions,
            notes,
            telemetry,
            failures,
            clock,
            tls,
            cancel,
        }
    }

    fn cookie_name(&self) -> &'static str {
        if self.tls {
            "__Host-vigil_session"
        } else {
            "vigil_session"
        }
    }
}

/// The console's router.
pub(crate) fn router(state: ConsoleState) -> Router {
    Router::new()
        .route("/", get(|| async { Redirect::to("/console/incidents") }))
        .route("/console/login", get(login_page).post(login))
        .route("/console/logout", post(logout))
        .route("/console/incidents", get(incidents))
        .route("/console/incident", get(incident))
        .route("/console/incident/replay", post(replay))
        .route("/console/proposals", get(proposals))
        .route("/console/proposals/decide", post(decide))
        .route("/console/controls", get(controls).post(set_control))
        .route("/console/policies", get(policies))
        .route("/console/policies/what-if", post(what_if))
        .route("/console/ledger", get(ledger))
        .route("/console/ledger/entry", get(entry))
        .route("/console/ledger/proof", get(proof))
        .route("/console/ledger/verify", post(verify))
        .route("/console/ledger/export", get(export))
        .route("/console/trust", get(trust))
        .route("/console/report", get(report))
        .route("/console/events", get(events))
        .route("/console/assets/console.css", get(css))
        .route("/console/assets/console.js", get(js))
        .layer(DefaultBodyLimit::max(MAX_FORM_BYTES))
        .layer(middleware::from_fn(security_headers))
        .with_state(Arc::new(state))
}

/// The headers every console answer carries.
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

fn html(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response()
}

async fn css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        pages::CSS,
    )
        .into_response()
}

async fn js() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        pages::JS,
    )
        .into_response()
}

/// Someone signed in, with their session's CSRF token.
struct Signed {
    principal: Principal,
    who: Who,
    cookie: String,
}

fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

fn client_certificate(request_peer: Option<&PeerInfo>) -> Option<Vec<u8>> {
    request_peer
        .and_then(|peer| peer.client_certs.as_ref())
        .and_then(|chain| chain.first())
        .map(|cert| cert.as_ref().to_vec())
}

/// Who the request's session belongs to, authenticated again now; the answer to send
/// otherwise (to the sign-in page, or 403 without the viewer role).
fn signed_in(
    state: &ConsoleState,
    headers: &HeaderMap,
    peer: Option<&PeerInfo>,
) -> Result<Signed, Box<Response>> {
    let to_login = || Box::new(Redirect::to("/console/login").into_response());
    let Some(cookie) = cookie_value(headers, state.cookie_name()) else {
        return Err(to_login());
    };
    let now = state.clock.now().0;
    let Some(session) = state.sessions.get(cookie, now) else {
        return Err(to_login());
    };
    let certificate = client_certificate(peer);
    let credentials = match &session.proof {
        Proof::Token(token) => Credentials {
            bearer: Some(token.expose()),
            client_cert: None,
        },
        Proof::Certificate(der) => {
            if certificate.as_deref() != Some(der.as_slice()) {
                state.sessions.end(cookie);
                return Err(to_login());
            }
            Credentials {
                bearer: None,
                client_cert: Some(der),
            }
        }
    };
    let principal = match state.authenticator.authenticate(&credentials, now) {
        Ok(principal) => principal,
        Err(failure) => {
            // Revoked or expired since sign-in: the session ends with it.
            state.telemetry.admin_auth_failed(failure.label());
            state.sessions.end(cookie);
            return Err(Box::new(html(
                StatusCode::UNAUTHORIZED,
                pages::login(Some(&format!("Your session ended: {failure}")), false),
            )));
        }
    };
    let who = Who {
        name: principal.name.clone(),
        roles: principal.all_roles(),
        csrf: session.csrf.clone(),
    };
    if !principal.has_role(Role::Viewer) {
        return Err(Box::new(html(
            StatusCode::FORBIDDEN,
            pages::problem(
                None,
                "Not allowed",
                &format!(
                    "{} is authenticated but holds no console role (viewer at least)",
                    principal.name
                ),
            ),
        )));
    }
    Ok(Signed {
        principal,
        who,
        cookie: cookie.to_owned(),
    })
}

/// Refuses a state-changing request whose CSRF token is not the session's, or whose
/// `Origin` is another site's.
fn check_form(
    state: &ConsoleState,
    headers: &HeaderMap,
    signed: &Signed,
    csrf: &str,
) -> Result<(), Box<Response>> {
    let good_origin = same_origin(headers);
    let good_token = same_secret(csrf, &signed.who.csrf);
    if good_origin && good_token {
        return Ok(());
    }
    state.telemetry.admin_instruction("forbidden");
    tracing::warn!(
        by = %Escaped(&signed.principal.name),
        origin_ok = good_origin,
        token_ok = good_token,
        "console: refused a form without this session's CSRF token or from another origin"
    );
    Err(Box::new(html(
        StatusCode::FORBIDDEN,
        pages::problem(
            Some(&signed.who),
            "Refused",
            "This form does not carry this session's CSRF token, or came from another site. Reload the page and try again.",
        ),
    )))
}

/// Whether the request's `Origin`, when it has one, is this host.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let Some(host) = headers
        .get(header::HOST)
        .and_then(|host| host.to_str().ok())
    else {
        return false;
    };
    origin
        .to_str()
        .ok()
        .and_then(|origin| origin.split_once("://").map(|(_, rest)| rest))
        .is_some_and(|origin_host| origin_host.eq_ignore_ascii_case(host))
}

/// Asks the engine loop for its view.
async fn view(state: &ConsoleState, who: &Who) -> Result<EngineView, Response> {
    let unavailable = |why: &str| {
        html(
            StatusCode::SERVICE_UNAVAILABLE,
            pages::problem(Some(who), "Unavailable", why),
        )
    };
    let (reply, answer) = oneshot::channel();
    if state.views.send(reply).await.is_err() {
        return Err(unavailable("vigil is shutting down"));
    }
    match tokio::time::timeout(VIEW_WAIT, answer).await {
        Ok(Ok(view)) => Ok(view),
        Ok(Err(_)) => Err(unavailable("vigil is shutting down")),
        Err(_) => Err(unavailable(
            "the engine did not answer in time; reload the page",
        )),
    }
}

fn read_failed(who: &Who, error: &anyhow::Error) -> Response {
    tracing::error!(error = %Escaped(&format!("{error:#}")), "console: reading the ledger failed");
    html(
        StatusCode::INTERNAL_SERVER_ERROR,
        pages::problem(
            Some(who),
            "The ledger could not be read",
            &format!("{error:#}"),
        ),
    )
}

/// The engine's view for `$signed`'s page, or the answer that says why there is none.
macro_rules! view_or_return {
    ($state:expr, $signed:expr) => {
        match view(&$state, &$signed.who).await {
            Ok(view) => view,
            Err(response) => return response,
        }
    };
}

macro_rules! signed_or_return {
    ($state:expr, $request:expr) => {
        match signed_in(
            &$state,
            $request.headers(),
            $request.extensions().get::<PeerInfo>(),
        ) {
            Ok(signed) => signed,
            Err(response) => return *response,
        }
    };
}

async fn login_page(State(state): State<Arc<ConsoleState>>, request: Request) -> Response {
    let certificate = client_certificate(request.extensions().get::<PeerInfo>()).is_some();
    let _ = state;
    html(StatusCode::OK, pages::login(None, certificate))
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    certificate: String,
}

async fn login(State(state): State<Arc<ConsoleState>>, request: Request) -> Response {
    let peer = request.extensions().get::<PeerInfo>().cloned();
    let certificate = client_certificate(peer.as_ref());
    if !same_origin(request.headers()) {
        return html(
            StatusCode::FORBIDDEN,
            pages::login(
                Some("A sign-in from another site is refused."),
                certificate.is_some(),
            ),
        );
    }
    let form: LoginForm = match read_form(request).await {
        Ok(form) => form,
        Err(response) => return response,
    };
    let token = form.token.trim().to_owned();
    let proof = if token.is_empty() && !form.certificate.is_empty() {
        match certificate.clone() {
            Some(der) => Proof::Certificate(der),
            None => {
                return html(
                    StatusCode::UNAUTHORIZED,
                    pages::login(
                        Some("This connection presented no client certificate."),
                        false,
                    ),
                );
            }
        }
    } else {
        Proof::Token(vigil_connectors::secret::Secret::new(token.clone()))
    };
    let credentials = match &proof {
        Proof::Token(_) => Credentials {
            bearer: Some(token.as_str()).filter(|token| !token.is_empty()),
            client_cert: None,
        },
        Proof::Certificate(der) => Credentials {
            bearer: None,
            client_cert: Some(der),
        },
    };
    let now = state.clock.now().0;
    let principal = match state.authenticator.authenticate(&credentials, now) {
        Ok(principal) => principal,
        Err(failure) => {
            state.telemetry.admin_auth_failed(failure.label());
            state
                .failures
                .note(peer.map(|peer| peer.addr), failure.label());
            return html(
                StatusCode::UNAUTHORIZED,
                pages::login(
                    Some(&format!("Not signed in: {failure}")),
                    certificate.is_some(),
                ),
            );
        }
    };
    let started = match state.sessions.start(proof, now) {
        Ok(started) => started,
        Err(error) => {
            return html(
                StatusCode::SERVICE_UNAVAILABLE,
                pages::login(Some(&format!("{error:#}")), certificate.is_some()),
            );
        }
    };
    if started.evicted {
        tracing::warn!(
            max_sessions = state.config.max_sessions,
            "console: the session store is full; the oldest session was ended to make room"
        );
    }
    tracing::info!(
        by = %Escaped(&principal.name),
        credential = %Escaped(&principal.credential_id),
        "console: signed in"
    );
    let secure = if state.tls { "; Secure" } else { "" };
    let cookie = format!(
        "{}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        state.cookie_name(),
        started.cookie,
        state.sessions.ttl().as_secs()
    );
    let mut response = Redirect::to("/console/incidents").into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// A form whose only field is its CSRF token, which [`posted`] checks.
#[derive(Deserialize)]
struct Ignored {}

async fn logout(State(state): State<Arc<ConsoleState>>, request: Request) -> Response {
    let signed = signed_or_return!(state, request);
    if let Err(refused) = posted::<Ignored>(&state, &signed, request, MAX_FORM_BYTES).await {
        return refused;
    }
    state.sessions.end(&signed.cookie);
    let mut response = Redirect::to("/console/login").into_response();
    let expired = format!(
        "{}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{}",
        state.cookie_name(),
        if state.tls { "; Secure" } else { "" }
    );
    if let Ok(value) = HeaderValue::from_str(&expired) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// A state-changing form of `signed`'s session: its body of at most `limit` bytes read,
/// its CSRF token and origin checked ([`check_form`]), then read as `T`.
async fn posted<T: serde::de::DeserializeOwned>(
    state: &ConsoleState,
    signed: &Signed,
    request: Request,
    limit: usize,
) -> Result<T, Response> {
    #[derive(Deserialize)]
    struct Token {
        #[serde(default)]
        csrf: String,
    }
    let headers = request.headers().clone();
    let bad = |why: String| {
        html(
            StatusCode::BAD_REQUEST,
            pages::problem(Some(&signed.who), "Bad request", &why),
        )
    };
    let Ok(body) = axum::body::to_bytes(request.into_body(), limit).await else {
        return Err(bad(format!("the form is larger than {limit} bytes")));
    };
    let token = serde_urlencoded::from_bytes::<Token>(&body)
        .map_or_else(|_| String::new(), |token| token.csrf);
    check_form(state, &headers, signed, &token).map_err(|refused| *refused)?;
    serde_urlencoded::from_bytes(&body)
        .map_err(|error| bad(format!("the form does not read: {error}")))
}

/// Reads a form body (`application/x-www-form-urlencoded`, at most [`MAX_FORM_BYTES`]) that
/// needs no session (signing in).
async fn read_form<T: serde::de::DeserializeOwned>(request: Request) -> Result<T, Response> {
    let limit = MAX_FORM_BYTES;
    let bad = |why: String| {
        html(
            StatusCode::BAD_REQUEST,
            pages::problem(None, "Bad request", &why),
        )
    };
    let Ok(body) = axum::body::to_bytes(request.into_body(), limit).await else {
        return Err(bad(format!("the form is larger than {limit} bytes")));
    };
    serde_urlencoded::from_bytes(&body)
        .map_err(|error| bad(format!("the form does not read: {error}")))
}

#[derive(Deserialize, Default)]
struct IncidentsQuery {
    #[serde(default)]
    state: String,
    #[serde(default)]
    hypothesis: String,
    #[serde(default)]
    subject: String,
    days: Option<u32>,
}

async fn incidents(
    State(state): State<Arc<ConsoleState>>,
    Query(query): Query<IncidentsQuery>,
    request: Request,
) -> Response {
    let signed = signed_or_return!(state, request);
    let view = view_or_return!(state, signed);
    let days = query.days.unwrap_or(30).clamp(1, 3650);
    let filter = IncidentFilter {
        state: IncidentState::parse(query.state.trim()),
        hypothesis: Some(query.hypothesis.trim().to_owned()).filter(|kind| !kind.is_empty()),
        subject: Some(query.subject.trim().to_owned()).filter(|subject| !subject.is_empty()),
        since: None,
        until: None,
    };
    let since = state
        .clock
        .now()
        .plus_millis(-i64::from(days).saturating_mul(86_400_000));
    match journal::incidents::list(&view.ledger, Some(since), &filter, MAX_LISTED).await {
        Ok(list) => html(
            StatusCode::OK,
            pages::incidents(&signed.who, &list, &filter, days),
        ),
        Err(error) => read_failed(&signed.who, &error),
    }
}

#[derive(Deserialize)]
struct IdQuery {
    #[serde(default)]
    id: String,
}

async fn incident(
    State(state): State<Arc<ConsoleState>>,
    Query(query): Query<IdQuery>,
    request: Request,
) -> Response {
    let signed = signed_or_return!(state, request);
    incident_page(&state, &signed, &query.id, None).await
}

async fn incident_page(
    state: &ConsoleState,
    signed: &Signed,
    id: &str,
    replay: Option<&pages::ReplayShown>,
) -> Response {
    let view = view_or_return!(*state, signed);
    match journal::incidents::detail(&view.ledger, id).await {
        Ok(Some(detail)) => html(
            StatusCode::OK,
            pages::incident(&signed.who, &detail, &view.proposals, replay),
        ),
        Ok(None) => html(
            StatusCode::NOT_FOUND,
            pages::problem(
                Some(&signed.who),
                "No such incident",
                &format!("The ledger has no incident `{id}`."),
            ),
        ),
        Err(error) => read_failed(&signed.who, &error),
    }
}

async fn replay(
    State(state): State<Arc<ConsoleState>>,
    Query(query): Query<IdQuery>,
    request: Request,
) -> Response {
    let signed = signed_or_return!(state, request);
    if let Err(refused) = posted::<Ignored>(&state, &signed, request, MAX_FORM_BYTES).await {
        return refused;
    }
    let Ok(_permit) = state.replays.try_acquire() else {
        return html(
            StatusCode::SERVICE_UNAVAILABLE,
            pages::problem(
                Some(&signed.who),
                "Busy",
                "Another replay is running; try again in a moment.",
            ),
        );
    };
    let view = view_or_return!(state, signed);
    let shown = match journal::replay::replay_incident(&view.ledger, &query.id, None).await {
        Ok(report) => pages::ReplayShown {
            matches: report.mismatches.is_empty(),
            n_commands: report
                .incidents
                .get(&query.id)
                .map_or(0, |incident| incident.n_commands),
            n_decisions: report.n_decisions_rechecked,
            mismatches: report.mismatches,
        },
        Err(error) => pages::ReplayShown {
            matches: false,
            n_commands: 0,
            n_decisions: 0,
            mismatches: vec![format!("the replay could not run: {error:#}")],
        },
    };
    tracing::info!(
        by = %Escaped(&signed.principal.name),
        incident = %Escaped(&query.id),
        matches = shown.matches,
        "console: replayed an incident"
    );
    incident_page(&state, &signed, &query.id, Some(&shown)).await
}

async fn proposals(State(state): State<Arc<ConsoleState>>, request: Request) -> Response {
    let signed = signed_or_return!(state, request);
    match view(&state, &signed.who).await {
        Ok(view) => html(
            StatusCode::OK,
            pages::proposals(&signed.who, &view.proposals),
        ),
        Err(response) => response,
    }
}

#[derive(Deserialize)]
struct DecideForm {
    proposal_id: String,
    #[serde(default)]
    action_hash: String,
    #[serde(default)]
    reason: String,
    decision: String,
}

async fn decide(State(state): State<Arc<ConsoleState>>, request: Request) -> Response {
    let signed = signed_or_return!(state, request);
    let form: DecideForm = match posted(&state, &signed, request, MAX_FORM_BYTES).await {
        Ok(form) => form,
        Err(refused) => return refused,
    };
    let command = match form.decision.as_str() {
        "approve" => HumanCommand::Approve {
            proposal_id: form.proposal_id.clone(),
            action_hash: form.action_hash.clone(),
        },
        "reject" => HumanCommand::Reject {
            proposal_id: form.proposal_id.clone(),
        },
        other => {
            return html(
                StatusCode::BAD_REQUEST,
                pages::problem(
                    Some(&signed.who),
                    "Bad request",
                    &format!("`{other}` is neither approve nor reject"),
                ),
            );
        }
    };
    instruct(
        &state,
        &signed,
        command,
        form.reason,
        Section::Proposals,
        "/console/proposals",
    )
    .await
}

#[derive(Deserialize)]
struct ControlForm {
    op: String,
    #[serde(default)]
    runbook: String,
    #[serde(default)]
    scope: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    detector: String,
    #[serde(default)]
    subject: String,
    minutes: Option<u64>,
    #[serde(default)]
    silence_id: String,
}

/// A new silence's id: `console-` and 12 random hex digits.
fn new_silence_id() -> anyhow::Result<String> {
    let mut bytes = [0_u8; 6];
    getrandom::getrandom(&mut bytes).map_err(|error| anyhow::anyhow!("no randomness: {error}"))?;
    Ok(format!("console-{}", hex::encode(bytes)))
}

async fn set_control(State(state): State<Arc<ConsoleState>>, request: Request) -> Response {
    let signed = signed_or_return!(state, request);
    let form: ControlForm = match posted(&state, &signed, request, MAX_FORM_BYTES).await {
        Ok(form) => form,
        Err(refused) => return refused,
    };
    let bad = |why: String| {
        html(
            StatusCode::BAD_REQUEST,
            pages::problem(Some(&signed.who), "Bad request", &why),
        )
    };
    let command = match form.op.as_str() {
        "kill" => HumanCommand::Kill {
            scope: if form.runbook.trim().is_empty() {
                KillScope::Global
            } else {
                KillScope::Runbook {
                    id: form.runbook.trim().to_owned(),
                }
            },
        },
        "unkill" => match serde_json::from_str::<KillScope>(&form.scope) {
            Ok(scope) => HumanCommand::Unkill { scope },
            Err(error) => return bad(format!("the scope does not read: {error}")),
        },
        "silence" => {
            let Some(minutes) = form.minutes.filter(|minutes| *minutes > 0) else {
                return bad("a silence needs a number of minutes, at least 1".to_owned());
            };
            let silence_id = match new_silence_id() {
                Ok(id) => id,
                Err(error) => return bad(format!("{error:#}")),
            };
            let millis = i64::try_from(minutes.saturating_mul(60_000)).unwrap_or(i64::MAX);
            HumanCommand::Silence {
                silence_id,
                detector: Some(form.detector.trim().to_owned()).filter(|name| !name.is_empty()),
                subject: Some(form.subject.trim().to_owned()).filter(|name| !name.is_empty()),
                expires_at: state.clock.now().plus_millis(millis),
            }
        }
        "unsilence" => HumanCommand::Unsilence {
            silence_id: form.silence_id.trim().to_owned(),
        },
        other => {
            return bad(format!(
                "`{other}` is not kill, unkill, silence or unsilence"
            ));
        }
    };
    instruct(
        &state,
        &signed,
        command,
        form.reason,
        Section::Controls,
        "/console/controls",
    )
    .await
}

/// Hands a person's instruction to the engine loop, as the admin API does, and shows what
/// became of it.
async fn instruct(
    state: &ConsoleState,
    signed: &Signed,
    command: HumanCommand,
    reason: String,
    section: Section,
    back: &str,
) -> Response {
    // The same checks as an instruction sent to the admin API (reason length, fields).
    let body = serde_json::json!({"reason": reason, "command": command}).to_string();
    let instruction = match vigil_core::people::parse_instruction(body.as_bytes(), &state.limits) {
        Ok(instruction) => instruction,
        Err(error) => {
            state.telemetry.admin_instruction("invalid");
            return html(
                StatusCode::BAD_REQUEST,
                pages::answer(
                    &signed.who,
                    section,
                    Some(false),
                    &format!(
                        "{}: {}",
                        error.summary(),
                        error
                            .problems
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join("; ")
                    ),
                    back,
                ),
            );
        }
    };
    let event = Event::Human {
        by: signed.principal.name.clone(),
        reason: instruction.reason,
        command: instruction.command,
        principal: Some(signed.principal.clone()),
    };
    let (reply, answer) = oneshot::channel();
    if state
        .instructions
        .send(Instruction { event, reply })
        .await
        .is_err()
    {
        return html(
            StatusCode::SERVICE_UNAVAILABLE,
            pages::problem(Some(&signed.who), "Unavailable", "vigil is shutting down"),
        );
    }
    match tokio::time::timeout(ANSWER_WAIT, answer).await {
        Ok(Ok(InstructionAnswer { accepted, outcome })) => {
            state
                .telemetry
                .admin_instruction(if accepted { "accepted" } else { "refused" });
            let status = if accepted {
                StatusCode::OK
            } else {
                StatusCode::CONFLICT
            };
            html(
                status,
                pages::answer(&signed.who, section, Some(accepted), &outcome, back),
            )
        }
        Ok(Err(_)) | Err(_) => {
            state.telemetry.admin_instruction("unanswered");
            html(
                StatusCode::ACCEPTED,
                pages::answer(
                    &signed.who,
                    section,
                    None,
                    "recorded; the engine has not answered yet (see the incident's timeline)",
                    back,
                ),
            )
        }
    }
}

async fn controls(State(state): State<Arc<ConsoleState>>, request: Request) -> Response {
    let signed = signed_or_return!(state, request);
    match view(&state, &signed.who).await {
        Ok(view) => html(
            StatusCode::OK,
            pages::controls(&signed.who, &view.controls, &view.runbooks, &view.detectors),
        ),
        Err(response) => response,
    }
}

async fn policies(State(state): State<Arc<ConsoleState>>, request: Request) -> Response {
    let signed = signed_or_return!(state, request);
    let view = view_or_return!(state, signed);
    match in_force(&view).await {
        Ok(in_force) => html(
            StatusCode::OK,
            pages::policies(&signed.who, &in_force, &pages::WhatIfForm::default(), None),
        ),
        Err(error) => read_failed(&signed.who, &error),
    }
}

/// The policy set and runbooks in force, from the latest session or reload entry.
async fn in_force(view: &EngineView) -> anyhow::Result<pages::InForce> {
    use sha2::Digest as _;
    let mut in_force = pages::InForce {
        policy_set_hash: view.policy_set_hash.clone(),
        ..pages::InForce::default()
    };
    let Some(last) = view.ledger.len().checked_sub(1) else {
        return Ok(in_force);
    };
    let mut runbooks_blob = None;
    let mut policies_blob = None;
    let mut seq = Some(last);
    // Back through the session entries: the latest reload gives the policies, the session's
    // start the runbooks. Bounded by the number of sessions and reloads.
    while let Some(at) = seq {
        let Some(entry) = view.ledger.last_session_at_or_before(at).await? else {
            break;
        };
        match journal::session_of(&entry)? {
            journal::SessionRecord::PoliciesReloaded {
                policies_blob: blob,
                ..
            } => {
                if policies_blob.is_none() {
                    policies_blob = Some(blob);
                    in_force.loaded = Some((Timestamp(entry.at_ms), entry.seq));
                }
            }
            journal::SessionRecord::SessionStarted {
                policies_blob: blob,
                runbooks_blob: runbooks,
                ..
            } => {
                if policies_blob.is_none() {
                    policies_blob = Some(blob);
                    in_force.loaded = Some((Timestamp(entry.at_ms), entry.seq));
                }
                runbooks_blob = Some(runbooks);
                break;
            }
            journal::SessionRecord::SessionEnded { .. } => {}
        }
        seq = entry.seq.checked_sub(1);
    }
    #[derive(Deserialize)]
    struct File {
        name: String,
        text: String,
    }
    #[derive(Deserialize)]
    struct Policies {
        schema: File,
        policies: Vec<File>,
    }
    let hash = |text: &str| hex::encode(sha2::Sha256::digest(text.as_bytes()));
    if let Some(blob) = policies_blob
        && let Some(bytes) = view.ledger.get_blob(&blob).await?
        && let Ok(policies) = serde_json::from_slice::<Policies>(&bytes)
    {
        in_force
            .policies
            .push((policies.schema.name.clone(), hash(&policies.schema.text)));
        for file in &policies.policies {
            in_force
                .policies
                .push((file.name.clone(), hash(&file.text)));
        }
        in_force.texts = Some(crate::bundle::PolicyTexts {
            schema: crate::bundle::TextFile {
                name: policies.schema.name,
                text: policies.schema.text,
            },
            policies: policies
                .policies
                .into_iter()
                .map(|file| crate::bundle::TextFile {
                    name: file.name,
                    text: file.text,
                })
                .collect(),
        });
    }
    if let Some(blob) = runbooks_blob
        && let Some(bytes) = view.ledger.get_blob(&blob).await?
        && let Ok(files) = serde_json::from_slice::<Vec<File>>(&bytes)
    {
        in_force.runbooks = files
            .into_iter()
            .map(|file| (file.name, hash(&file.text)))
            .collect();
    }
    Ok(in_force)
}

/// The largest policy set the what-if form takes.
const MAX_WHAT_IF_BYTES: usize = 1024 * 1024;

#[derive(Deserialize)]
struct WhatIfForm {
    #[serde(default)]
    policies: String,
    days: Option<u32>,
}

/// `POST /console/policies/what-if`: the recorded decisions of the window, decided again
/// by the policies in the form (with the recorded schema); every one that changes.
async fn what_if(State(state): State<Arc<ConsoleState>>, request: Request) -> Response {
    let signed = signed_or_return!(state, request);
    let form: WhatIfForm = match posted(&state, &signed, request, MAX_WHAT_IF_BYTES).await {
        Ok(form) => form,
        Err(refused) => return refused,
    };
    let shown_form = pages::WhatIfForm {
        days: form.days.unwrap_or(7).clamp(1, 3650),
        policies: Some(form.policies.clone()),
    };
    let view = view_or_return!(state, signed);
    let in_force = match in_force(&view).await {
        Ok(in_force) => in_force,
        Err(error) => return read_failed(&signed.who, &error),
    };
    let Some(recorded) = &in_force.texts else {
        return html(
            StatusCode::CONFLICT,
            pages::problem(
                Some(&signed.who),
                "No recorded policies",
                "The ledger holds no session whose policies could be read.",
            ),
        );
    };
    let texts = crate::bundle::PolicyTexts {
        schema: recorded.schema.clone(),
        policies: vec![crate::bundle::TextFile {
            name: "what-if.cedar".to_owned(),
            text: form.policies,
        }],
    };
    let authorizer = match crate::bundle::load_policies(&texts) {
        Ok(authorizer) => authorizer,
        Err(problems) => {
            let result = pages::WhatIfShown {
                problems: problems.iter().map(ToString::to_string).collect(),
                ..pages::WhatIfShown::default()
            };
            return html(
                StatusCode::BAD_REQUEST,
                pages::policies(&signed.who, &in_force, &shown_form, Some(&result)),
            );
        }
    };
    let Ok(_permit) = state.replays.try_acquire() else {
        return html(
            StatusCode::SERVICE_UNAVAILABLE,
            pages::problem(
                Some(&signed.who),
                "Busy",
                "Another replay is running; try again in a moment.",
            ),
        );
    };
    let from = state
        .clock
        .now()
        .plus_millis(-i64::from(shown_form.days).saturating_mul(86_400_000));
    let alternative = journal::replay::Alternative {
        label: "the policies in the what-if form".to_owned(),
        authorizer,
    };
    let first_seq = match first_seq_since(&view.ledger, from).await {
        Ok(seq) => seq,
        Err(error) => return read_failed(&signed.who, &error),
    };
    let report = match journal::replay::replay_all(&view.ledger, Some(&alternative)).await {
        Ok(report) => report,
        Err(error) => return read_failed(&signed.who, &error),
    };
    let diffs: Vec<journal::replay::DecisionDiff> = report
        .decision_diffs
        .into_iter()
        .filter(|diff| first_seq.is_some_and(|first| diff.seq >= first))
        .collect();
    tracing::info!(
        by = %Escaped(&signed.principal.name),
        policy_set_hash = %alternative.authorizer.policy_set_hash(),
        days = shown_form.days,
        n_changed = diffs.len(),
        "console: what-if replay against other policies"
    );
    let result = pages::WhatIfShown {
        policy_set_hash: alternative.authorizer.policy_set_hash().to_string(),
        from,
        n_decisions: report.n_decisions_rechecked,
        diffs,
        problems: Vec::new(),
        mismatches: report.mismatches.len(),
    };
    html(
        StatusCode::OK,
        pages::policies(&signed.who, &in_force, &shown_form, Some(&result)),
    )
}

/// The seq of the first entry recorded at or after `from`; `None` when there is none.
async fn first_seq_since(ledger: &Ledger, from: Timestamp) -> anyhow::Result<Option<u64>> {
    let filter = vigil_ledger::EntryFilter {
        incident_id: None,
        since_ms: Some(from.0),
        kind: None,
    };
    let mut reader = ledger.entries(filter, vigil_ledger::PageLimits::default());
    Ok(reader.next().await?.map(|entry| entry.seq))
}

async fn ledger(State(state): State<Arc<ConsoleState>>, request: Request) -> Response {
    let signed = signed_or_return!(state, request);
    let view = view_or_return!(state, signed);
    ledger_page(&signed, &view, None).await
}

/// `POST /console/ledger/verify`: verifies the ledger as it stands, one at a time.
async fn verify(State(state): State<Arc<ConsoleState>>, request: Request) -> Response {
    let signed = signed_or_return!(state, request);
    if let Err(refused) = posted::<Ignored>(&state, &signed, request, MAX_FORM_BYTES).await {
        return refused;
    }
    let Ok(_permit) = state.replays.try_acquire() else {
        return busy(&signed.who);
    };
    let view = view_or_return!(state, signed);
    // Verification's passes are not `Send` (they drive the ledger through trait objects):
    // they run on a blocking thread of their own, on a reader.
    let reader = view.ledger.reader();
    let handle = tokio::runtime::Handle::current();
    let outcome =
        tokio::task::spawn_blocking(move || handle.block_on(async move { reader.verify().await }))
            .await;
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(error) => {
            return read_failed(
                &signed.who,
                &anyhow::anyhow!("verification stopped: {error}"),
            );
        }
    };
    let verified = match outcome {
        Ok(report) => pages::Verified {
            n_entries: report.n_entries,
            tree_head: hex::encode(report.tree_head),
            problem: report.first_problem.map(|problem| problem.to_string()),
        },
        Err(error) => return read_failed(&signed.who, &error.into()),
    };
    tracing::info!(
        by = %Escaped(&signed.principal.name),
        n_entries = verified.n_entries,
        intact = verified.problem.is_none(),
        "console: verified the ledger"
    );
    ledger_page(&signed, &view, Some(&verified)).await
}

fn busy(who: &Who) -> Response {
    html(
        StatusCode::SERVICE_UNAVAILABLE,
        pages::problem(
            Some(who),
            "Busy",
            "Another replay, verification or export is running; try again in a moment.",
        ),
    )
}

/// `GET /console/ledger/export`: the export written to a scratch file beside its proof tree
/// (both removed afterwards), then streamed; one at a time.
async fn export(State(state): State<Arc<ConsoleState>>, request: Request) -> Response {
    let signed = signed_or_return!(state, request);
    let Ok(permit) = Arc::clone(&state.exports).try_acquire_owned() else {
        return busy(&signed.who);
    };
    let view = view_or_return!(state, signed);
    let mut suffix = [0_u8; 8];
    if getrandom::getrandom(&mut suffix).is_err() {
        return read_failed(
            &signed.who,
            &anyhow::anyhow!("no randomness for a scratch file name"),
        );
    }
    let base = std::env::temp_dir().join(format!("vigil-console-export-{}", hex::encode(suffix)));
    let scratch = base.with_extension("tree");
    let out_path = base.with_extension("jsonl");
    // As for verification: the export's passes run on a blocking thread of their own.
    let reader = view.ledger.reader();
    let handle = tokio::runtime::Handle::current();
    let (task_scratch, task_out) = (scratch.clone(), out_path.clone());
    let written = tokio::task::spawn_blocking(move || {
        handle.block_on(async move { write_export(&reader, &task_scratch, &task_out).await })
    })
    .await
    .unwrap_or_else(|error| Err(anyhow::anyhow!("the export stopped: {error}")));
    let _ = std::fs::remove_file(&scratch);
    let n_entries = match written {
        Ok(n_entries) => n_entries,
        Err(error) => {
            let _ = std::fs::remove_file(&out_path);
            return read_failed(&signed.who, &error);
        }
    };
    let file = match tokio::fs::File::open(&out_path).await {
        Ok(file) => file,
        Err(error) => {
            let _ = std::fs::remove_file(&out_path);
            return read_failed(&signed.who, &error.into());
        }
    };
    tracing::info!(
        by = %Escaped(&signed.principal.name),
        n_entries,
        "console: exported the ledger"
    );
    let (sender, receiver) = mpsc::channel(8);
    tokio::spawn(stream_file(file, out_path, sender, permit));
    (
        [
            (header::CONTENT_TYPE, "application/jsonl".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"vigil-export-{n_entries}.jsonl\""),
            ),
        ],
        Body::new(ChannelBody { receiver }),
    )
        .into_response()
}

/// Verifies the ledger into a proof tree at `scratch` and writes the export to `out`; the
/// number of entries.
async fn write_export(
    ledger: &Ledger,
    scratch: &std::path::Path,
    out: &std::path::Path,
) -> anyhow::Result<u64> {
    let tree = match ledger.export_tree(scratch).await? {
        Ok(tree) => tree,
        Err(report) => anyhow::bail!(
            "the ledger does not verify, so it is not exported: {}",
            report
                .first_problem
                .map_or_else(|| "a problem".to_owned(), |problem| problem.to_string())
        ),
    };
    let file = std::fs::File::create(out)?;
    let mut writer = std::io::BufWriter::new(file);
    let n_entries = tree.write(ledger, &mut writer).await?;
    std::io::Write::flush(&mut writer)?;
    Ok(n_entries)
}

/// Sends `file` in chunks, then removes it (the export holds a permit until then).
async fn stream_file(
    mut file: tokio::fs::File,
    path: std::path::PathBuf,
    sender: mpsc::Sender<Bytes>,
    _permit: OwnedSemaphorePermit,
) {
    use tokio::io::AsyncReadExt as _;
    let mut buffer = vec![0_u8; 256 * 1024];
    loop {
        match file.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let chunk = Bytes::copy_from_slice(buffer.get(..n).unwrap_or_default());
                if sender.send(chunk).await.is_err() {
                    break;
                }
            }
        }
    }
    drop(file);
    let _ = tokio::fs::remove_file(&path).await;
}

async fn ledger_page(
    signed: &Signed,
    view: &EngineView,
    verified: Option<&pages::Verified>,
) -> Response {
    let ledger = &view.ledger;
    let mut shown = pages::LedgerShown {
        n_entries: ledger.len(),
        tree_head: ledger.tree_head().map(|(_, root)| hex::encode(root)),
        head_chain_hash: ledger.head_chain_hash().map(hex::encode),
        ..pages::LedgerShown::default()
    };
    match ledger.checkpoints().await {
        Ok(checkpoints) => {
            shown.checkpoints = checkpoints
                .into_iter()
                .rev()
                .take(5)
                .map(|checkpoint| {
                    (
                        checkpoint.tree_size,
                        checkpoint.tree_head,
                        Timestamp(checkpoint.at_ms),
                    )
                })
                .collect();
        }
        Err(error) => return read_failed(&signed.who, &error.into()),
    }
    let from = ledger.len().saturating_sub(30);
    match ledger.read(from, 30).await {
        Ok(entries) => {
            shown.latest = entries
                .into_iter()
                .rev()
                .map(|entry| {
                    (
                        entry.seq,
                        Timestamp(entry.at_ms),
                        entry.kind.as_str().to_owned(),
                        entry.incident_id,
                    )
                })
                .collect();
        }
        Err(error) => return read_failed(&signed.who, &error.into()),
    }
    html(StatusCode::OK, pages::ledger(&signed.who, &shown, verified))
}

#[derive(Deserialize)]
struct SeqQuery {
    seq: Option<u64>,
    tree_size: Option<u64>,
}

async fn entry(
    State(state): State<Arc<ConsoleState>>,
    Query(query): Query<SeqQuery>,
    request: Request,
) -> Response {
    let signed = signed_or_return!(state, request);
    let view = view_or_return!(state, signed);
    let seq = query.seq.unwrap_or(0);
    match view.ledger.read(seq, 1).await {
        Ok(entries) => match entries.into_iter().next().filter(|entry| entry.seq == seq) {
            Some(entry) => html(
                StatusCode::OK,
                pages::entry(&signed.who, &entry, view.ledger.len()),
            ),
            None => html(
                StatusCode::NOT_FOUND,
                pages::problem(
                    Some(&signed.who),
                    "No such entry",
                    &format!("The ledger has no entry {seq}."),
                ),
            ),
        },
        Err(error) => read_failed(&signed.who, &error.into()),
    }
}

async fn proof(
    State(state): State<Arc<ConsoleState>>,
    Query(query): Query<SeqQuery>,
    request: Request,
) -> Response {
    let signed = signed_or_return!(state, request);
    let view = view_or_return!(state, signed);
    let seq = query.seq.unwrap_or(0);
    let tree_size = query.tree_size.unwrap_or_else(|| view.ledger.len());
    match view.ledger.prove_inclusion(seq, tree_size).await {
        Ok(Some(proof)) => {
            let body = match journal::proof::checked_inclusion_json(&proof) {
                Ok(body) => body,
                Err(error) => return read_failed(&signed.who, &error),
            };
            (
                [
                    (header::CONTENT_TYPE, "application/json".to_owned()),
                    (
                        header::CONTENT_DISPOSITION,
                        format!("attachment; filename=\"vigil-entry-{seq}-proof.json\""),
                    ),
                ],
                body.to_string(),
            )
                .into_response()
        }
        Ok(None) => html(
            StatusCode::NOT_FOUND,
            pages::problem(
                Some(&signed.who),
                "No proof",
                &format!("Entry {seq} is not in a tree of {tree_size} entries of this ledger."),
            ),
        ),
        Err(error) => read_failed(&signed.who, &error.into()),
    }
}

async fn trust(State(state): State<Arc<ConsoleState>>, request: Request) -> Response {
    let signed = signed_or_return!(state, request);
    let view = view_or_return!(state, signed);
    match journal::trust::tally(&view.ledger).await {
        Ok(report) => html(StatusCode::OK, pages::trust(&signed.who, &report)),
        Err(error) => read_failed(&signed.who, &error),
    }
}

#[derive(Deserialize)]
struct ReportQuery {
    days: Option<u32>,
    minutes_per_incident: Option<f64>,
    minutes_per_decision: Option<f64>,
}

async fn report(
    State(state): State<Arc<ConsoleState>>,
    Query(query): Query<ReportQuery>,
    request: Request,
) -> Response {
    let signed = signed_or_return!(state, request);
    let defaults = Assumptions::default();
    let form = pages::ReportForm {
        days: query.days.unwrap_or(90).clamp(1, 3650),
        minutes_per_incident: query
            .minutes_per_incident
            .unwrap_or(defaults.minutes_per_incident),
        minutes_per_decision: query
            .minutes_per_decision
            .unwrap_or(defaults.minutes_per_decision),
    };
    let assumptions = Assumptions {
        minutes_per_incident: form.minutes_per_incident,
        minutes_per_decision: form.minutes_per_decision,
    };
    if let Err(why) = assumptions.validate() {
        return html(
            StatusCode::BAD_REQUEST,
            pages::report(&signed.who, form, None, Some(&why)),
        );
    }
    let view = view_or_return!(state, signed);
    let since = journal::report::Since::Before(Duration::from_secs(u64::from(form.days) * 86_400));
    match journal::report::read(&view.ledger, since, None, assumptions).await {
        Ok(read) => html(
            StatusCode::OK,
            pages::report(&signed.who, form, Some(&read), None),
        ),
        Err(error) => html(
            StatusCode::OK,
            pages::report(&signed.who, form, None, Some(&format!("{error:#}"))),
        ),
    }
}

/// `GET /console/events`: the live stream.
async fn events(State(state): State<Arc<ConsoleState>>, request: Request) -> Response {
    let signed = signed_or_return!(state, request);
    let Ok(permit) = Arc::clone(&state.live).try_acquire_owned() else {
        state.telemetry.admin_instruction("live_refused");
        tracing::warn!(
            max_live_clients = state.config.max_live_clients,
            "console: a live stream was refused: too many are open"
        );
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "30")],
            "too many live streams are open; the page still works without live updates\n",
        )
            .into_response();
    };
    let (sender, receiver) = mpsc::channel(64);
    let notes = state.notes.subscribe();
    let cancel = state.cancel.child_token();
    tokio::spawn(stream_notes(
        Arc::clone(&state),
        signed.cookie,
        notes,
        sender,
        cancel,
    ));
    let body = Body::new(SseBody {
        inner: ChannelBody { receiver },
        _permit: permit,
    });
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

/// Writes the daemon's notes as server-sent events until the client goes, the daemon
/// stops, [`LIVE_MAX`] passes, or the session of `cookie` ends (checked before every frame,
/// keep-alives included: a signed-out or revoked session's stream ends within
/// [`KEEP_ALIVE`]).
async fn stream_notes(
    state: Arc<ConsoleState>,
    cookie: String,
    mut notes: broadcast::Receiver<Note>,
    sender: mpsc::Sender<Bytes>,
    cancel: CancellationToken,
) {
    let deadline = tokio::time::sleep(LIVE_MAX);
    tokio::pin!(deadline);
    if sender
        .send(Bytes::from_static(b"retry: 3000\n\n"))
        .await
        .is_err()
    {
        return;
    }
    loop {
        let frame = tokio::select! {
            () = cancel.cancelled() => return,
            () = &mut deadline => return,
            () = tokio::time::sleep(KEEP_ALIVE) => Bytes::from_static(b": keep-alive\n\n"),
            note = notes.recv() => match note {
                Ok(note) => match sse_frame(&note) {
                    Some(frame) => Bytes::from(frame),
                    None => continue,
                },
                // Missed notes: the page refreshes anyway.
                Err(broadcast::error::RecvError::Lagged(_)) => Bytes::from_static(b"event: entry\ndata: {\"lagged\":true}\n\n"),
                Err(broadcast::error::RecvError::Closed) => return,
            },
        };
        if !still_signed(&state, &cookie) || sender.send(frame).await.is_err() {
            return;
        }
    }
}

/// Whether the session of `cookie` still lives and its credential still authenticates
/// (a client certificate's was checked on the connection, which has not changed).
fn still_signed(state: &ConsoleState, cookie: &str) -> bool {
    let now = state.clock.now().0;
    let Some(session) = state.sessions.get(cookie, now) else {
        return false;
    };
    match &session.proof {
        Proof::Token(token) => {
            let credentials = Credentials {
                bearer: Some(token.expose()),
                client_cert: None,
            };
            state.authenticator.authenticate(&credentials, now).is_ok()
        }
        Proof::Certificate(_) => true,
    }
}

/// One note as an `entry` event: its seq, time, kind and incident (JSON, one line); `None`
/// for the notes no page shows (scrapes, queries, pushes and wake-ups, which come every few
/// seconds: a decision they lead to comes as a command).
fn sse_frame(note: &Note) -> Option<String> {
    let (kind, incident) = match &note.body {
        NoteBody::Session(_) => ("session", None),
        NoteBody::Event(
            Event::Scraped { .. }
            | Event::Queried { .. }
            | Event::ScrapeFailed { .. }
            | Event::Tick
            | Event::Pushed { .. },
        )
        | NoteBody::Pushed { .. } => return None,
        NoteBody::Event(event) => ("event", event.incident_id().map(str::to_owned)),
        NoteBody::Command(command) => ("command", command.incident_id().map(str::to_owned)),
    };
    let data = serde_json::json!({
        "seq": note.seq,
        "at": note.at.0,
        "kind": kind,
        "incident_id": incident,
    });
    Some(format!("event: entry\ndata: {data}\n\n"))
}

/// A response body made of the chunks a task sends; it ends when the task drops its sender.
struct ChannelBody {
    receiver: mpsc::Receiver<Bytes>,
}

impl http_body::Body for ChannelBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        self.receiver
            .poll_recv(cx)
            .map(|frame| frame.map(|bytes| Ok(http_body::Frame::data(bytes))))
    }
}

/// The live stream's body: the frames [`stream_notes`] sends, holding a live-client permit.
struct SseBody {
    inner: ChannelBody,
    _permit: OwnedSemaphorePermit,
}

impl http_body::Body for SseBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }
}

#[cfg(test)]
mod tests;
