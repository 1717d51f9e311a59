//! The assistant in the daemon: an investigation the engine asked for runs as a task
//! ([`Effects::investigate`](super::effects::Effects::investigate)); the model's tool calls
//! come back to the engine loop as [`ToolRequest`]s, answered read-only from the engine's
//! state and the ledger between two events ([`answer`]); the transcript is stored as a blob
//! before the outcome goes to the engine as `Event::InvestigationFinished`.

use tokio::sync::{mpsc, oneshot};
use vigil_core::Timestamp;
use vigil_core::engine::Engine;
use vigil_core::investigation::EvidenceItem;
use vigil_core::investigation::tools::{MAX_LEDGER_ENTRIES, ToolCall, ToolOutput};
use vigil_ledger::Ledger;

use crate::investigator::ToolServer;

/// A tool call for the engine loop to answer.
#[derive(Debug)]
pub(crate) struct ToolRequest {
    pub(crate) call: ToolCall,
    pub(crate) max_bytes: usize,
    pub(crate) reply: oneshot::Sender<ToolOutput>,
}

/// A person's question for `vigil ask`: the engine loop answers with the task the model
/// reads (the question and what is open now).
#[derive(Debug)]
pub(crate) struct QuestionRequest {
    pub(crate) question: String,
    pub(crate) reply: oneshot::Sender<String>,
}

/// What `POST /v1/admin/ask` needs: the investigator, the tools, the engine loop for the
/// task, and the bounds.
#[derive(Clone, Debug)]
pub(crate) struct AskRuntime {
    pub(crate) investigator: std::sync::Arc<crate::investigator::Investigator>,
    pub(crate) tools: LoopTools,
    pub(crate) questions: mpsc::Sender<QuestionRequest>,
    pub(crate) limits: vigil_core::investigation::AssistantConfig,
}

/// The tools as an investigation task sees them: each call a request to the engine loop.
#[derive(Clone, Debug)]
pub(crate) struct LoopTools {
    pub(crate) requests: mpsc::Sender<ToolRequest>,
}

impl ToolServer for LoopTools {
    async fn serve(&self, call: ToolCall, max_bytes: usize) -> ToolOutput {
        let (reply, answer) = oneshot::channel();
        let request = ToolRequest {
            call,
            max_bytes,
            reply,
        };
        if self.requests.send(request).await.is_err() {
            return ToolOutput::refused("vigil is shutting down");
        }
        answer
            .await
            .unwrap_or_else(|_| ToolOutput::refused("vigil is shutting down"))
    }
}

/// Answers one tool call from the engine's state, or (ledger entries) from the ledger: the
/// latest entries of the open incidents about the subject.
pub(crate) async fn answer(
    engine: &Engine,
    ledger: &Ledger,
    call: ToolCall,
    now: Timestamp,
    max_bytes: usize,
) -> ToolOutput {
    let ToolCall::LedgerEntries { subject } = &call else {
        return engine.investigation_tool(&call, now, max_bytes);
    };
    let mut items = Vec::new();
    for incident_id in engine.incidents_about(subject) {
        let entries = match ledger.entries_for_incident(&incident_id).await {
            Ok(entries) => entries,
            Err(error) => {
                return ToolOutput::refused(&format!("the ledger could not be read: {error}"));
            }
        };
        for entry in entries.iter().rev().take(MAX_LEDGER_ENTRIES) {
            items.push(ledger_item(&incident_id, entry));
        }
        if items.len() >= MAX_LEDGER_ENTRIES {
            break;
        }
    }
    items.truncate(MAX_LEDGER_ENTRIES);
    let note =
        format!("the latest ledger entries of the open incidents about {subject}, newest first");
    ToolOutput::capped(&note, items, max_bytes)
}

/// One ledger entry as evidence: its seq, time, kind and a cut of its payload.
fn ledger_item(incident_id: &str, entry: &vigil_ledger::Entry) -> EvidenceItem {
    let payload: String = entry.payload.chars().take(400).collect();
    EvidenceItem::new(
        'l',
        incident_id.to_owned(),
        format!(
            "ledger entry {} at {} ({}): {payload}",
            entry.seq,
            Timestamp(entry.at_ms).to_rfc3339(),
            entry.kind.as_str()
        ),
        Vec::new(),
    )
}

/// What `POST /v1/admin/ask` answers: what survived the checks, or why there is no answer.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AskAnswer {
    /// Whether the model answered.
    pub answered: bool,
    /// Its surviving hypotheses, each with the facts it cites (vigil's words).
    #[serde(default)]
    pub hypotheses: Vec<String>,
    /// Its narrative, if it survived.
    #[serde(default)]
    pub narrative: Option<String>,
    /// The next check it suggests, if it survived.
    #[serde(default)]
    pub next_check: Option<String>,
    /// How many claims were checked and dropped.
    #[serde(default)]
    pub checked: String,
    /// Each dropped claim: which, and why.
    #[serde(default)]
    pub dropped: Vec<String>,
    /// Why there is no answer (`deadline`, `breaker_open`, ...).
    #[serde(default)]
    pub failure: Option<String>,
    /// The detail of the failure.
    #[serde(default)]
    pub detail: Option<String>,
    /// What it cost.
    pub usage: vigil_core::investigation::Usage,
}

/// The answer to a question: the outcome checked against the evidence its tools returned.
pub(crate) fn ask_answer(
    outcome: &vigil_core::investigation::InvestigationOutcome,
    request: &vigil_core::investigation::InvestigationRequest,
) -> AskAnswer {
    use vigil_core::investigation::InvestigationOutcome;
    match outcome {
        InvestigationOutcome::Failed {
            failure,
            detail,
            usage,
            ..
        } => AskAnswer {
            answered: false,
            hypotheses: Vec::new(),
            narrative: None,
            next_check: None,
            checked: String::new(),
            dropped: Vec::new(),
            failure: Some(failure.as_str().to_owned()),
            detail: Some(detail.clone()),
            usage: usage.clone(),
        },
        InvestigationOutcome::Answered {
            answer,
            evidence,
            usage,
            ..
        } => {
            let checked = vigil_core::investigation::check(
                answer,
                evidence,
                &request.task,
                request.limits.tolerance,
            );
            let note = vigil_core::engine::note_of(&checked, None, None);
            AskAnswer {
                answered: true,
                hypotheses: note.hypotheses,
                narrative: note.narrative,
                next_check: note.next_check,
                checked: note.checked,
                dropped: checked
                    .dropped
                    .iter()
                    .map(|dropped| {
                        format!(
                            "{}: {} ({})",
                            dropped.claim,
                            dropped.why.as_str(),
                            dropped.detail
                        )
                    })
                    .collect(),
                failure: None,
                detail: None,
                usage: usage.clone(),
            }
        }
    }
}
