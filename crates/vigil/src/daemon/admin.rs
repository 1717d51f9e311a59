//! The admin API that people use through `vigil approve`, `reject`, `kill`, `unkill`,
//! `silence`, `unsilence` and `proposals`.
//!
//! - `GET /v1/admin/proposals`: the pending proposals, each with the hash an approval must
//!   carry.
//! - `POST /v1/admin/human` with `{"by", "reason", "command"}`: hands the instruction to the
//!   engine as `Event::Human` (so it is in the ledger with who sent it before anything acts)
//!   and answers with what the engine made of it: 200 when accepted, 409 when refused (the
//!   body says why), 202 when the engine did not answer within a few seconds.
//!
//! - `POST /v1/admin/checkpoint`: signs a checkpoint of the ledger's tree head now (stored,
//!   and published like the scheduled ones) and answers with it; 503 when checkpoints are not
//!   configured.
//!
//! Every request needs the configured bearer token. The token authenticates the client; the
//! name in `by` is recorded as given, so put an identity-aware proxy in front when names must
//! be bound to people. The pending proposals are derived from what the engine records (the
//! same notes the demo's timeline reads), so this module never touches the engine.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;
use vigil_connectors::secret::Secret;
use vigil_core::engine::{Action, Command, Event, HumanCommand, Record};

use super::{Note, NoteBody};

/// How long a request waits for the engine's answer.
const ANSWER_WAIT: Duration = Duration::from_secs(10);

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

/// A person's instruction, as posted.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HumanRequest {
    /// Who.
    pub by: String,
    /// Why.
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
}

/// The pending proposals, kept from the engine's records.
pub(crate) type Proposals = Arc<Mutex<BTreeMap<String, ProposalView>>>;

#[derive(Clone)]
pub(crate) struct AdminState {
    pub(crate) token: Secret,
    /// Asks the engine loop for a checkpoint now.
    pub(crate) checkpoints: mpsc::Sender<super::checkpointer::CheckpointRequest>,
    pub(crate) events: mpsc::Sender<Event>,
    pub(crate) notes: broadcast::Sender<Note>,
    pub(crate) proposals: Proposals,
}

/// The routes [`router`] serves, as the startup line lists them (a test in `daemon/http.rs`
/// checks that each is routed).
pub(crate) const ROUTES: &[(&str, &str)] = &[
    ("GET", "/v1/admin/proposals"),
    ("POST", "/v1/admin/human"),
    ("POST", "/v1/admin/checkpoint"),
];

pub(crate) fn router(state: AdminState) -> Router {
    Router::new()
        .route("/v1/admin/proposals", get(list_proposals))
        .route("/v1/admin/human", post(human))
        .route("/v1/admin/checkpoint", post(checkpoint))
        .with_state(Arc::new(state))
}

/// Keeps `proposals` in step with the engine's records until `cancel` fires.
pub(crate) async fn track_proposals(
    mut notes: broadcast::Receiver<Note>,
    proposals: Proposals,
    cancel: CancellationToken,
) {
    loop {
        let note = tokio::select! {
            () = cancel.cancelled() => return,
            note = notes.recv() => note,
        };
        let note = match note {
            Ok(note) => note,
            Err(broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!(
                    n,
                    "the proposal list missed records; it may show stale proposals"
                );
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let NoteBody::Command(command) = note.body else {
            continue;
        };
        let Command::Record(record) = *command else {
            continue;
        };
        let Ok(mut pending) = proposals.lock() else {
            return;
        };
        note_record(&mut pending, record);
    }
}

/// Applies one record to the pending proposals.
fn note_record(pending: &mut BTreeMap<String, ProposalView>, record: Record) {
    match record {
        Record::StepProposed {
            incident_id,
            step_id,
            action,
            proposal_id,
            action_hash,
            requested_by,
            why,
        } => {
            pending.insert(
                proposal_id.clone(),
                ProposalView {
                    proposal_id,
                    incident_id,
                    step_id,
                    describe: action.describe(),
                    action,
                    action_hash,
                    requested_by,
                    why,
                },
            );
        }
        Record::HumanAction {
            command:
                HumanCommand::Approve { proposal_id, .. } | HumanCommand::Reject { proposal_id },
            accepted: true,
            ..
        } => {
            pending.remove(&proposal_id);
        }
        Record::IncidentResolved { incident_id, .. }
        | Record::IncidentEscalated { incident_id, .. } => {
            pending.retain(|_, proposal| proposal.incident_id != incident_id);
        }
        _ => {}
    }
}

/// `POST /v1/admin/checkpoint`: signs a checkpoint of the ledger now and answers with it.
async fn checkpoint(State(state): State<Arc<AdminState>>, headers: HeaderMap) -> Response {
    if let Err(refused) = admit(&state, &headers) {
        return *refused;
    }
    let (reply, answer) = tokio::sync::oneshot::channel();
    if state.checkpoints.send(reply).await.is_err() {
        return error_response(StatusCode::SERVICE_UNAVAILABLE, "vigil is shutting down");
    }
    match tokio::time::timeout(ANSWER_WAIT, answer).await {
        Ok(Ok(Ok(checkpoint))) => Json(checkpoint).into_response(),
        Ok(Ok(Err(why))) => error_response(StatusCode::SERVICE_UNAVAILABLE, &why),
        Ok(Err(_)) => error_response(StatusCode::SERVICE_UNAVAILABLE, "vigil is shutting down"),
        Err(_) => error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "the engine did not answer in time; try again",
        ),
    }
}

async fn list_proposals(State(state): State<Arc<AdminState>>, headers: HeaderMap) -> Response {
    if let Err(refused) = admit(&state, &headers) {
        return *refused;
    }
    let list: Vec<ProposalView> = match state.proposals.lock() {
        Ok(pending) => pending.values().cloned().collect(),
        Err(_) => Vec::new(),
    };
    Json(list).into_response()
}

async fn human(
    State(state): State<Arc<AdminState>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Err(refused) = admit(&state, &headers) {
        return *refused;
    }
    let request: HumanRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(error) => return error_response(StatusCode::BAD_REQUEST, &error.to_string()),
    };
    if request.by.trim().is_empty() {
        return error_response(
            StatusCode::BAD_REQUEST,
            "`by` must name the person giving the instruction",
        );
    }
    // Subscribe before sending, so the answer cannot slip past.
    let mut notes = state.notes.subscribe();
    let event = Event::Human {
        by: request.by.clone(),
        reason: request.reason.clone(),
        command: request.command.clone(),
    };
    if state.events.send(event).await.is_err() {
        return error_response(StatusCode::SERVICE_UNAVAILABLE, "vigil is shutting down");
    }
    let answer = tokio::time::timeout(ANSWER_WAIT, async {
        loop {
            match notes.recv().await {
                Ok(Note {
                    body: NoteBody::Command(command),
                    ..
                }) => {
                    if let Command::Record(Record::HumanAction {
                        by,
                        command,
                        accepted,
                        outcome,
                        ..
                    }) = *command
                        && by == request.by
                        && command == request.command
                    {
                        return Some((accepted, outcome));
                    }
                }
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    })
    .await;
    match answer {
        Ok(Some((accepted, outcome))) => {
            let status = if accepted {
                StatusCode::OK
            } else {
                StatusCode::CONFLICT
            };
            (
                status,
                Json(HumanAnswer {
                    accepted: Some(accepted),
                    outcome,
                }),
            )
                .into_response()
        }
        Ok(None) | Err(_) => (
            StatusCode::ACCEPTED,
            Json(HumanAnswer {
                accepted: None,
                outcome: "recorded; the engine has not answered yet (see `vigil ledger show`)"
                    .to_owned(),
            }),
        )
            .into_response(),
    }
}

/// Whether the request carries the admin token; the refusal to send when it does not.
fn admit(state: &AdminState, headers: &HeaderMap) -> Result<(), Box<Response>> {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| {
            let (scheme, token) = value.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        });
    let ok = presented.is_some_and(|token| {
        Sha256::digest(token.as_bytes()) == Sha256::digest(state.token.expose().as_bytes())
    });
    if ok {
        Ok(())
    } else {
        Err(Box::new(error_response(
            StatusCode::UNAUTHORIZED,
            "the admin API needs `Authorization: Bearer <admin token>`",
        )))
    }
}

fn error_response(status: StatusCode, error: &str) -> Response {
    (status, Json(serde_json::json!({ "error": error }))).into_response()
}

#[cfg(test)]
mod tests {
    use vigil_core::engine::KillScope;

    use super::*;

    fn proposed(incident: &str, id: &str) -> Record {
        Record::StepProposed {
            incident_id: incident.to_owned(),
            step_id: "block-key".to_owned(),
            action: Action::LitellmBlockKey {
                source: "gw".to_owned(),
                key: "k".to_owned(),
            },
            proposal_id: id.to_owned(),
            action_hash: "h".to_owned(),
            requested_by: "alice".to_owned(),
            why: "advisory mode".to_owned(),
        }
    }

    // The list follows the records: proposed, then gone once approved or once the incident
    // ends; a refused approval leaves it pending.
    #[test]
    fn the_pending_list_follows_the_engine_records() {
        let mut pending = BTreeMap::new();
        note_record(&mut pending, proposed("inc-1", "inc-1/proposal-1"));
        note_record(&mut pending, proposed("inc-2", "inc-2/proposal-1"));
        let approve = |accepted| Record::HumanAction {
            by: "bob".to_owned(),
            reason: String::new(),
            command: HumanCommand::Approve {
                proposal_id: "inc-1/proposal-1".to_owned(),
                action_hash: "h".to_owned(),
            },
            accepted,
            outcome: String::new(),
        };
        note_record(&mut pending, approve(false));
        assert_eq!(pending.len(), 2);
        note_record(&mut pending, approve(true));
        assert_eq!(pending.keys().collect::<Vec<_>>(), ["inc-2/proposal-1"]);
        note_record(
            &mut pending,
            Record::HumanAction {
                by: "bob".to_owned(),
                reason: String::new(),
                command: HumanCommand::Kill {
                    scope: KillScope::Global,
                },
                accepted: true,
                outcome: String::new(),
            },
        );
        assert_eq!(pending.len(), 1);
        note_record(
            &mut pending,
            Record::IncidentResolved {
                incident_id: "inc-2".to_owned(),
                outcome: String::new(),
                duration_ms: 0,
            },
        );
        assert!(pending.is_empty());
    }
}
