//! The admin API that people use through `vigil whoami`, `proposals`, `approve`, `reject`,
//! `kill`, `unkill`, `silence` and `unsilence`.
//!
//! | route | who | what |
//! | --- | --- | --- |
//! | `GET /v1/admin/whoami` | anyone authenticated | the principal: name, credential, groups, roles |
//! | `GET /v1/admin/proposals` | viewers | the pending proposals, each with the hash an approval must carry |
//! | `POST /v1/admin/human` | anyone authenticated; Cedar decides | `{"reason", "command"}` as `Event::Human` |
//! | `POST /v1/admin/checkpoint` | operators | signs a checkpoint of the ledger's tree head now |
//!
//! Every request is authenticated first (`crate::identity`): a personal token, an OIDC token
//! or a client certificate. The name the ledger records is the authenticated principal's,
//! never one the client claims; a body that says `by` must say that same name. A failed
//! authentication is 401, counted by reason in `vigil_admin_auth_failures_total`, logged with
//! the peer's address the first time in each interval (`server.refused_log_interval_secs`)
//! for each peer and summarised once an interval otherwise, so a brute force is visible
//! without flooding the log.
//!
//! An instruction goes to the engine loop as `Event::Human` with the principal (so it is in
//! the ledger with who sent it before anything acts) and a oneshot for its answer, as pushes
//! and checkpoints do; the engine checks it, asks Cedar (the same policy set as remediation
//! steps, `policies/people.cedar`), records a `HumanAction`, and the engine loop answers with
//! that record's outcome. The answer: 200 when carried out, 409 when refused (the body says
//! why), 202 when the engine did not answer within a few seconds. The proposals listed are
//! the engine's own (`Engine::pending_proposals`), asked of the engine loop the same way.
//! Bodies must be `application/json`, at most 64 KiB; every error, 404 and 405 included, is
//! JSON `{"error": ...}`.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use vigil_core::engine::{Action, Event, HumanCommand, PendingProposal};
use vigil_core::people::{
    InstructionLimits, MAX_INSTRUCTION_BYTES, Principal, Role, normalize_name, parse_instruction,
};

use super::server::PeerInfo;
use super::telemetry::Telemetry;
use crate::clock::Clock;
use crate::identity::{Authenticator, Credentials};
use crate::logsafe::Escaped;

/// How long a request waits for the engine's answer.
const ANSWER_WAIT: Duration = Duration::from_secs(10);

/// Peers remembered per interval for the summary; more are counted together.
const MAX_TRACKED_PEERS: usize = 1024;

/// A proposal waiting for a person, as `GET /v1/admin/proposals` lists it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProposalView {
    /// The id to approve or reject it by.
    pub proposal_id: String,
    /// The incident.
    pub incident_id: String,
    /// The runbook step.
    pub step_id: String,
    /// What it would do, for people.
    pub describe: String,
    /// What it would do, exactly.
    pub action: Action,
    /// The hash an approval must carry.
    pub action_hash: String,
    /// Who asks for it (who may not approve it).
    pub requested_by: String,
    /// Why it is a proposal.
    pub why: String,
}

/// A person's instruction, as a client sends it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HumanRequest {
    /// Why, in their words.
    #[serde(default)]
    pub reason: String,
    /// What.
    pub command: HumanCommand,
}

/// The engine's answer to an instruction.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HumanAnswer {
    /// Whether vigil accepted it (`None`: no answer within the wait).
    pub accepted: Option<bool>,
    /// What it did, or why it refused.
    pub outcome: String,
    /// Who the instruction was recorded as coming from.
    #[serde(default)]
    pub by: String,
}

/// Who the admin API authenticated, as `GET /v1/admin/whoami` shows it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WhoAmI {
    /// The normalized name the ledger records.
    pub name: String,
    /// The credential's id.
    pub credential_id: String,
    /// How it was proved.
    pub via: String,
    /// Groups.
    pub groups: Vec<String>,
    /// Every role held, implied ones included.
    pub roles: Vec<String>,
}

impl From<PendingProposal> for ProposalView {
    fn from(pending: PendingProposal) -> Self {
        ProposalView {
            describe: pending.action.describe(),
            proposal_id: pending.proposal_id,
            incident_id: pending.incident_id,
            step_id: pending.step_id,
            action: pending.action,
            action_hash: pending.action_hash,
            requested_by: pending.requested_by,
            why: pending.why,
        }
    }
}

/// A person's instruction for the engine loop, with where to answer it.
pub(crate) struct Instruction {
    /// `Event::Human`, carrying the authenticated principal.
    pub(crate) event: Event,
    /// Answered with what the engine made of exactly this instruction; dropped unanswered
    /// when the engine loop does not handle it (it is stopping).
    pub(crate) reply: oneshot::Sender<InstructionAnswer>,
}

/// What the engine made of one instruction: its `Record::HumanAction`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct InstructionAnswer {
    /// Whether it was carried out.
    pub(crate) accepted: bool,
    /// What it did, or why it was refused.
    pub(crate) outcome: String,
}

/// A request for the pending proposals, answered from the engine's state.
pub(crate) type ProposalsRequest = oneshot::Sender<Vec<PendingProposal>>;

pub(crate) struct AdminState {
    pub(crate) authenticator: Arc<Authenticator>,
    pub(crate) limits: InstructionLimits,
    /// Asks the engine loop for a checkpoint now.
    pub(crate) checkpoints: mpsc::Sender<super::checkpointer::CheckpointRequest>,
    /// Hands people's instructions to the engine loop.
    pub(crate) instructions: mpsc::Sender<Instruction>,
    /// Asks the engine loop for the pending proposals.
    pub(crate) proposals: mpsc::Sender<ProposalsRequest>,
    pub(crate) telemetry: Arc<Telemetry>,
    pub(crate) failures: Arc<FailureLog>,
    pub(crate) clock: Clock,
    /// The assistant, for `POST /v1/admin/ask` (absent when it is off).
    pub(crate) ask: Option<super::assistant::AskRuntime>,
}

/// The routes [`router`] serves, as the startup line lists them (a test in `daemon/http.rs`
/// checks that each is routed).
pub(crate) const ROUTES: &[(&str, &str)] = &[
    ("GET", "/v1/admin/whoami"),
    ("GET", "/v1/admin/proposals"),
    ("POST", "/v1/admin/human"),
    ("POST", "/v1/admin/checkpoint"),
    ("POST", "/v1/admin/ask"),
];

pub(crate) fn router(state: AdminState) -> Router {
    Router::new()
        .route("/v1/admin/whoami", get(whoami))
        .route("/v1/admin/proposals", get(list_proposals))
        .route("/v1/admin/human", post(human))
        .route("/v1/admin/checkpoint", post(checkpoint))
        .route("/v1/admin/ask", post(ask))
        .route("/v1/admin/{*rest}", get(not_found).post(not_found))
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_INSTRUCTION_BYTES))
        .with_state(Arc::new(state))
}

/// `GET /v1/admin/whoami`.
async fn whoami(State(state): State<Arc<AdminState>>, request: Request) -> Response {
    match authenticate(&state, &request, None) {
        Ok(principal) => Json(WhoAmI {
            name: principal.name.clone(),
            credential_id: principal.credential_id.clone(),
            via: principal.via.as_str().to_owned(),
            groups: principal.groups.clone(),
            roles: principal
                .all_roles()
                .into_iter()
                .map(|role| role.as_str().to_owned())
                .collect(),
        })
        .into_response(),
        Err(refused) => *refused,
    }
}

/// `GET /v1/admin/proposals`.
async fn list_proposals(State(state): State<Arc<AdminState>>, request: Request) -> Response {
    if let Err(refused) = authenticate(&state, &request, Some(Role::Viewer)) {
        return *refused;
    }
    let (reply, answer) = oneshot::channel();
    if state.proposals.send(reply).await.is_err() {
        return error_response(StatusCode::SERVICE_UNAVAILABLE, "vigil is shutting down");
    }
    match tokio::time::timeout(ANSWER_WAIT, answer).await {
        Ok(Ok(pending)) => {
            let list: Vec<ProposalView> = pending.into_iter().map(ProposalView::from).collect();
            Json(list).into_response()
        }
        Ok(Err(_)) => error_response(StatusCode::SERVICE_UNAVAILABLE, "vigil is shutting down"),
        Err(_) => error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "the engine did not answer in time; try again",
        ),
    }
}

/// The longest question `POST /v1/admin/ask` takes, in characters.
const MAX_QUESTION_CHARS: usize = 2000;

/// `POST /v1/admin/ask {"question": "..."}` (viewers): read-only triage by the assistant,
/// against the engine's state now. The answer is checked as an investigation's is and
/// answered with what survived; it is logged, not recorded in the ledger (nothing was
/// decided).
async fn ask(State(state): State<Arc<AdminState>>, request: Request) -> Response {
    let principal = match authenticate(&state, &request, Some(Role::Viewer)) {
        Ok(principal) => principal,
        Err(refused) => return *refused,
    };
    let Some(ask) = state.ask.clone() else {
        return error_response(
            StatusCode::NOT_FOUND,
            "the assistant is off (diagnosis.assistant.enabled)",
        );
    };
    if let Err(refused) = require_json(request.headers()) {
        return *refused;
    }
    let Ok(body) = axum::body::to_bytes(request.into_body(), MAX_INSTRUCTION_BYTES).await else {
        return error_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("the body is larger than {MAX_INSTRUCTION_BYTES} bytes"),
        );
    };
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Question {
        question: String,
    }
    let question = match serde_json::from_slice::<Question>(&body) {
        Ok(question) => question.question,
        Err(error) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                &format!("the body must be {{\"question\": \"...\"}}: {error}"),
            );
        }
    };
    let question = question.trim().to_owned();
    if question.is_empty() || question.chars().count() > MAX_QUESTION_CHARS {
        return error_response(
            StatusCode::BAD_REQUEST,
            &format!("`question` must be 1 to {MAX_QUESTION_CHARS} characters"),
        );
    }
    let (reply, task) = oneshot::channel();
    let asked = super::assistant::QuestionRequest {
        question: question.clone(),
        reply,
    };
    if ask.questions.send(asked).await.is_err() {
        return error_response(StatusCode::SERVICE_UNAVAILABLE, "vigil is shutting down");
    }
    let task = match tokio::time::timeout(ANSWER_WAIT, task).await {
        Ok(Ok(task)) => task,
        Ok(Err(_)) => {
            return error_response(StatusCode::SERVICE_UNAVAILABLE, "vigil is shutting down");
        }
        Err(_) => {
            return error_response(
                StatusCode::SERVICE_UNAVAILABLE,
                "the engine did not answer in time; try again",
            );
        }
    };
    let request = vigil_core::investigation::InvestigationRequest {
        incident_id: None,
        task,
        limits: ask.limits.clone(),
    };
    let finished = ask
        .investigator
        .investigate(&request, &ask.tools, crate::clock::wall_now_ms())
        .await;
    state.telemetry.investigation(&finished.outcome);
    let answer = super::assistant::ask_answer(&finished.outcome, &request);
    tracing::info!(
        by = %Escaped(&principal.name),
        credential = %Escaped(&principal.credential_id),
        question = %Escaped(&question),
        answered = answer.answered,
        "the assistant answered a question (vigil ask)"
    );
    Json(answer).into_response()
}

/// `POST /v1/admin/checkpoint`: signs a checkpoint of the ledger now and answers with it.
async fn checkpoint(State(state): State<Arc<AdminState>>, request: Request) -> Response {
    let principal = match authenticate(&state, &request, Some(Role::Operator)) {
        Ok(principal) => principal,
        Err(refused) => return *refused,
    };
    let (reply, answer) = tokio::sync::oneshot::channel();
    if state.checkpoints.send(reply).await.is_err() {
        return error_response(StatusCode::SERVICE_UNAVAILABLE, "vigil is shutting down");
    }
    match tokio::time::timeout(ANSWER_WAIT, answer).await {
        Ok(Ok(Ok(checkpoint))) => {
            tracing::info!(
                by = %Escaped(&principal.name),
                credential = %Escaped(&principal.credential_id),
                tree_size = checkpoint.tree_size,
                "checkpoint signed on request"
            );
            Json(checkpoint).into_response()
        }
        Ok(Ok(Err(why))) => error_response(StatusCode::SERVICE_UNAVAILABLE, &why),
        Ok(Err(_)) => error_response(StatusCode::SERVICE_UNAVAILABLE, "vigil is shutting down"),
        Err(_) => error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "the engine did not answer in time; try again",
        ),
    }
}

/// `POST /v1/admin/human`.
async fn human(State(state): State<Arc<AdminState>>, request: Request) -> Response {
    let principal = match authenticate(&state, &request, None) {
        Ok(principal) => principal,
        Err(refused) => return *refused,
    };
    if let Err(refused) = require_json(request.headers()) {
        state.telemetry.admin_instruction("invalid");
        return *refused;
    }
    let body = match axum::body::to_bytes(request.into_body(), MAX_INSTRUCTION_BYTES).await {
        Ok(body) => body,
        Err(_) => {
            state.telemetry.admin_instruction("invalid");
            return error_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("the body is larger than {MAX_INSTRUCTION_BYTES} bytes"),
            );
        }
    };
    let instruction = match parse_instruction(&body, &state.limits) {
        Ok(instruction) => instruction,
        Err(error) => {
            state.telemetry.admin_instruction("invalid");
            return (
                StatusCode::BAD_REQUEST,
                Json(serde_json::json!({ "error": error.summary(), "problems": error.problems })),
            )
                .into_response();
        }
    };
    if let Some(by) = &instruction.by
        && normalize_name(by) != principal.name
    {
        state.telemetry.admin_instruction("forbidden");
        tracing::warn!(
            claimed = %Escaped(by),
            by = %Escaped(&principal.name),
            credential = %Escaped(&principal.credential_id),
            "refused an instruction that names someone other than its sender"
        );
        return error_response(
            StatusCode::FORBIDDEN,
            &format!(
                "the instruction says it is from `{}`, but the credential belongs to `{}`; vigil records who authenticated, so leave `by` out",
                Escaped(by),
                principal.name
            ),
        );
    }
    let event = Event::Human {
        by: principal.name.clone(),
        reason: instruction.reason,
        command: instruction.command,
        principal: Some(principal.clone()),
    };
    let (reply, answer) = oneshot::channel();
    if state
        .instructions
        .send(Instruction { event, reply })
        .await
        .is_err()
    {
        return error_response(StatusCode::SERVICE_UNAVAILABLE, "vigil is shutting down");
    }
    match tokio::time::timeout(ANSWER_WAIT, answer).await {
        Ok(Ok(InstructionAnswer { accepted, outcome })) => {
            let status = if accepted {
                state.telemetry.admin_instruction("accepted");
                StatusCode::OK
            } else {
                state.telemetry.admin_instruction("refused");
                StatusCode::CONFLICT
            };
            (
                status,
                Json(HumanAnswer {
                    accepted: Some(accepted),
                    outcome,
                    by: principal.name,
                }),
            )
                .into_response()
        }
        Ok(Err(_)) | Err(_) => {
            state.telemetry.admin_instruction("unanswered");
            (
                StatusCode::ACCEPTED,
                Json(HumanAnswer {
                    accepted: None,
                    outcome: "recorded; the engine has not answered yet (see `vigil ledger show`)"
                        .to_owned(),
                    by: principal.name,
                }),
            )
                .into_response()
        }
    }
}

/// Unknown admin routes: JSON, like every other admin error.
async fn not_found() -> Response {
    error_response(StatusCode::NOT_FOUND, "no such admin route")
}

async fn method_not_allowed() -> Response {
    error_response(
        StatusCode::METHOD_NOT_ALLOWED,
        "this admin route does not take that method",
    )
}

/// Who sent `request`, holding `role` when one is required; the refusal otherwise.
fn authenticate(
    state: &AdminState,
    request: &Request,
    role: Option<Role>,
) -> Result<Principal, Box<Response>> {
    let peer = request.extensions().get::<PeerInfo>();
    let bearer = match bearer_token(request.headers()) {
        Ok(bearer) => bearer,
        Err(()) => {
            state.telemetry.admin_auth_failed("malformed_header");
            state
                .failures
                .note(peer.map(|peer| peer.addr), "malformed_header");
            return Err(Box::new(unauthorized(
                "the Authorization header must be `Bearer <token>`",
            )));
        }
    };
    let credentials = Credentials {
        bearer,
        client_cert: peer
            .and_then(|peer| peer.client_certs.as_ref())
            .and_then(|chain| chain.first())
            .map(|cert| cert.as_ref()),
    };
    let principal = match state
        .authenticator
        .authenticate(&credentials, state.clock.now().0)
    {
        Ok(principal) => principal,
        Err(failure) => {
            state.telemetry.admin_auth_failed(failure.label());
            state
                .failures
                .note(peer.map(|peer| peer.addr), failure.label());
            return Err(Box::new(unauthorized(&failure.to_string())));
        }
    };
    if let Some(role) = role
        && !principal.has_role(role)
    {
        state.telemetry.admin_instruction("forbidden");
        return Err(Box::new(error_response(
            StatusCode::FORBIDDEN,
            &format!(
                "{} is authenticated but does not hold the `{}` role",
                principal.name,
                role.as_str()
            ),
        )));
    }
    Ok(principal)
}

/// The bearer token of the request, `None` without an `Authorization` header; `Err` when the
/// header is there but is not `Bearer <token>`.
fn bearer_token(headers: &HeaderMap) -> Result<Option<&str>, ()> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| ())?;
    let (scheme, token) = value.trim().split_once(' ').ok_or(())?;
    let token = token.trim();
    if scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() {
        Ok(Some(token))
    } else {
        Err(())
    }
}

/// Admin bodies are JSON, said so.
fn require_json(headers: &HeaderMap) -> Result<(), Box<Response>> {
    let media_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .map(|essence| essence.trim().to_ascii_lowercase());
    if media_type.as_deref() == Some("application/json") {
        Ok(())
    } else {
        Err(Box::new(error_response(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "the body must be sent as `Content-Type: application/json`",
        )))
    }
}

fn unauthorized(why: &str) -> Response {
    let mut response = error_response(StatusCode::UNAUTHORIZED, why);
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        axum::http::HeaderValue::from_static("Bearer"),
    );
    response
}

fn error_response(status: StatusCode, error: &str) -> Response {
    (status, Json(serde_json::json!({ "error": error }))).into_response()
}

/// Failed authentications: the first from each peer in an interval is logged with its
/// address; the rest are summarised in one line at the end of the interval.
#[derive(Debug, Default)]
pub(crate) struct FailureLog {
    state: Mutex<FailureWindow>,
}

#[derive(Debug, Default)]
struct FailureWindow {
    /// Failures per peer in this interval (`None`: the peer was not known).
    per_peer: BTreeMap<Option<IpAddr>, u64>,
    /// Failures from peers past [`MAX_TRACKED_PEERS`].
    untracked: u64,
    /// Reasons seen in this interval.
    reasons: BTreeSet<&'static str>,
}

impl FailureLog {
    /// Notes one failure from `peer` for `reason`.
    pub(crate) fn note(&self, peer: Option<SocketAddr>, reason: &'static str) {
        let ip = peer.map(|peer| peer.ip());
        let first = {
            let Ok(mut window) = self.state.lock() else {
                return;
            };
            window.reasons.insert(reason);
            let tracked = window.per_peer.len();
            match window.per_peer.get_mut(&ip) {
                Some(count) => {
                    *count += 1;
                    false
                }
                None if tracked < MAX_TRACKED_PEERS => {
                    window.per_peer.insert(ip, 1);
                    true
                }
                None => {
                    window.untracked += 1;
                    false
                }
            }
        };
        if first {
            tracing::warn!(
                peer = %peer.map_or_else(|| "unknown".to_owned(), |peer| peer.to_string()),
                reason,
                "admin API authentication failed (further failures from this peer are summarised once an interval)"
            );
        }
    }

    /// The summary line of the interval that ends now, if anything beyond the first failure
    /// of each peer happened; resets the interval.
    pub(crate) fn take_summary(&self, interval: Duration) -> Option<String> {
        let window = {
            let Ok(mut window) = self.state.lock() else {
                return None;
            };
            std::mem::take(&mut *window)
        };
        let total: u64 = window.per_peer.values().sum::<u64>() + window.untracked;
        let repeated = total.saturating_sub(window.per_peer.len() as u64);
        if repeated == 0 {
            return None;
        }
        let mut top: Vec<(Option<IpAddr>, u64)> = window.per_peer.into_iter().collect();
        top.sort_by_key(|(_, count)| std::cmp::Reverse(*count));
        let shown: Vec<String> = top
            .iter()
            .take(5)
            .map(|(ip, count)| {
                format!(
                    "{} ×{count}",
                    ip.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string())
                )
            })
            .collect();
        let reasons: Vec<&str> = window.reasons.into_iter().collect();
        Some(format!(
            "{total} admin API authentication failures from {} peer(s) in the last {} s (reasons: {}; most: {})",
            top.len() + usize::from(window.untracked > 0),
            interval.as_secs(),
            reasons.join(", "),
            shown.join(", ")
        ))
    }
}

/// Logs the failure summary once per `interval` (`server.refused_log_interval_secs`, like
/// every other refusal) until `cancel`.
pub(crate) async fn summarise_failures(
    log: Arc<FailureLog>,
    interval: Duration,
    cancel: CancellationToken,
) {
    let mut ticks = tokio::time::interval(interval.max(Duration::from_secs(1)));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = ticks.tick() => {}
        }
        if let Some(summary) = log.take_summary(interval) {
            tracing::warn!("{summary}");
        }
    }
}

#[cfg(test)]
#[path = "admin_tests.rs"]
mod tests;
