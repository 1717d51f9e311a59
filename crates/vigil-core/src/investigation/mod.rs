//! The investigator's pure half: what an investigation is asked, what comes back, and how
//! vigil checks it before anyone sees it.
//!
//! An LLM may investigate an incident (sessions whose config has `diagnosis.assistant`). The
//! engine asks for it with [`Command::Investigate`](crate::engine::Command::Investigate); the
//! runtime runs the conversation in a task, serving the model's tool calls from vigil's own
//! state ([`tools`]: read-only, each output capped, every fact with an evidence id), and feeds
//! what the model answered back as
//! [`Event::InvestigationFinished`](crate::engine::Event::InvestigationFinished), with the
//! evidence the tools returned. The engine never waits for it: the deterministic diagnosis
//! and the runbook go ahead, and the answer never changes which runbook runs.
//!
//! The answer is checked, never trusted ([`check`]): it must match [`answer_schema`]; every
//! evidence id it cites must be one the tools returned, about what the answer says it is
//! about, and every number it claims must be within tolerance of the value vigil's store gave;
//! a claim that fails is dropped and counted, a hypothesis left without valid evidence is
//! discarded, and a narrative that states a number no evidence holds is withheld. What
//! survives is shown beside the deterministic diagnosis, marked as the assistant's, with
//! agreement or disagreement stated, and Cedar's context gets `assistant_agrees`.
//!
//! Because the engine checks the recorded answer, replay feeds it back and never calls a
//! model: the decision trail replays exactly.

mod check;
mod schema;
pub mod tools;

use serde::{Deserialize, Serialize};

use crate::diagnosis::HypothesisKind;
use crate::signal::float_repr;

pub use check::{CheckedAnswer, CheckedHypothesis, CitedEvidence, DropReason, Dropped, check};
pub use schema::{SYSTEM_PROMPT, answer_schema};

/// The numbers a text states as words of their own (`1,200`, `94.8 %`, `$3.50`), not those
/// inside names (`gpt-4o`): what an evidence item's statement holds.
#[must_use]
pub fn numbers_of(text: &str) -> Vec<f64> {
    check::numbers_in(text)
}

/// Which incidents the assistant investigates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Only incidents no runbook handles (they go to a human with no automatic fix).
    Novel,
    /// Only incidents that page a human (investigated when the page goes out).
    Paged,
    /// Every incident that opens (silenced, expected and storm-held ones aside).
    All,
}

impl Scope {
    /// The config's name for it.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Novel => "novel",
            Scope::Paged => "paged",
            Scope::All => "all",
        }
    }
}

/// The engine's part of `diagnosis.assistant`: when to investigate and the bounds of one
/// investigation, recorded with the session. Where the model is, its key, the daily token
/// budget, concurrency and the circuit breaker are the runtime's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AssistantConfig {
    /// Which incidents it runs on.
    pub on: Scope,
    /// At most this many tool calls per investigation (a call past it is refused and the
    /// model must answer).
    pub max_tool_calls: u32,
    /// At most this many requests to the model per investigation (the conversation's length).
    pub max_turns: u32,
    /// Each tool output is cut to this many bytes.
    pub max_tool_output_bytes: u32,
    /// At most this many tokens per investigation (prompt and completion, as the model
    /// reports them).
    pub max_tokens_per_incident: u64,
    /// The whole investigation's deadline, in milliseconds.
    pub deadline_ms: i64,
    /// How far a claimed number may be from the store's, as a share of the store's (0.02 is
    /// 2 %); numbers within 1e-9 always match.
    #[serde(with = "float_repr")]
    pub tolerance: f64,
}

/// What the runtime is asked to investigate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InvestigationRequest {
    /// The incident, if the investigation is about one (`vigil ask` has none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident_id: Option<String>,
    /// The task as the model reads it: the incident, its finding and the deterministic
    /// diagnosis, or a person's question.
    pub task: String,
    /// The bounds.
    pub limits: AssistantConfig,
}

/// An evidence item a tool returned: one fact from vigil's own state, with the id the model
/// must cite.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvidenceItem {
    /// The id the model cites: a kind letter and a hash of the fact (`s-1a2b3c4d`).
    pub id: String,
    /// What the fact is about: a series, a subject (`api_key=team-a`), an incident.
    pub about: String,
    /// The fact, in words.
    pub statement: String,
    /// The numbers the fact holds (a claimed number must be near one of them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<f64>,
}

impl EvidenceItem {
    /// An item whose id is derived from its content, so that the same fact has the same id
    /// in every call: `prefix` and the first 8 hex digits of the SHA-256 of about and
    /// statement.
    #[must_use]
    pub fn new(prefix: char, about: String, statement: String, values: Vec<f64>) -> Self {
        use sha2::Digest as _;
        let mut hasher = sha2::Sha256::new();
        hasher.update(about.as_bytes());
        hasher.update([0]);
        hasher.update(statement.as_bytes());
        let digest = hex::encode(hasher.finalize());
        let short = digest.get(..8).unwrap_or(&digest);
        let values = values
            .into_iter()
            .filter(|value| value.is_finite())
            .collect();
        EvidenceItem {
            id: format!("{prefix}-{short}"),
            about,
            statement,
            values,
        }
    }
}

/// What one investigation cost.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Requests sent to the model.
    pub requests: u32,
    /// Tool calls served.
    pub tool_calls: u32,
    /// Tool calls refused (a repeat, past the limit, unknown or malformed).
    pub tool_calls_refused: u32,
    /// Tokens, prompt and completion, as the model reported them.
    pub tokens: u64,
    /// From the first request to the answer, in milliseconds.
    pub latency_ms: i64,
}

/// Why an investigation gave no answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Failure {
    /// The deadline passed (a slow model, or retries after a long `Retry-After`).
    Deadline,
    /// The circuit breaker is open after recent errors or timeouts: not tried.
    BreakerOpen,
    /// A token budget (per incident or per day) is spent.
    Budget,
    /// Too many investigations are running: not tried.
    Busy,
    /// The model's API answered with an error status.
    Status,
    /// The connection failed or closed without an answer.
    Connection,
    /// The conversation hit its bounds (tool calls or turns) without an answer.
    Exhausted,
    /// The model's API answered something that is not a chat completion.
    Protocol,
}

impl Failure {
    /// Its name in the ledger.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Failure::Deadline => "deadline",
            Failure::BreakerOpen => "breaker_open",
            Failure::Budget => "budget",
            Failure::Busy => "busy",
            Failure::Status => "status",
            Failure::Connection => "connection",
            Failure::Exhausted => "exhausted",
            Failure::Protocol => "protocol",
        }
    }
}

/// What came back from an investigation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum InvestigationOutcome {
    /// The model answered (whatever the answer is worth: the engine checks it).
    Answered {
        /// The answer's text as the model wrote it.
        answer: String,
        /// Every evidence item the tools returned during the investigation.
        evidence: Vec<EvidenceItem>,
        /// What it cost.
        usage: Usage,
        /// The transcript (every request, tool call and output, response), a blob.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        transcript_blob: Option<String>,
    },
    /// No answer.
    Failed {
        /// Why.
        failure: Failure,
        /// The detail, for people (escaped and without secrets).
        detail: String,
        /// What it cost.
        usage: Usage,
        /// The transcript so far, a blob.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        transcript_blob: Option<String>,
    },
}

impl InvestigationOutcome {
    /// What it cost.
    #[must_use]
    pub fn usage(&self) -> &Usage {
        match self {
            InvestigationOutcome::Answered { usage, .. }
            | InvestigationOutcome::Failed { usage, .. } => usage,
        }
    }

    /// The transcript's blob, if recorded.
    #[must_use]
    pub fn transcript_blob(&self) -> Option<&str> {
        match self {
            InvestigationOutcome::Answered {
                transcript_blob, ..
            }
            | InvestigationOutcome::Failed {
                transcript_blob, ..
            } => transcript_blob.as_deref(),
        }
    }
}

/// The assistant's view beside the deterministic diagnosis: how its best hypothesis compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Agreement {
    /// Its best surviving hypothesis is the diagnosis' best.
    Agrees,
    /// Its best surviving hypothesis is another kind (or `unknown`).
    Disagrees,
}

/// Whether the assistant's best hypothesis agrees with the diagnosis' best: `None` when no
/// hypothesis of the assistant survived the checks.
#[must_use]
pub fn agreement(
    checked: &[CheckedHypothesis],
    diagnosis_best: Option<HypothesisKind>,
) -> Option<Agreement> {
    let first = checked.first()?;
    Some(if first.kind.is_some() && first.kind == diagnosis_best {
        Agreement::Agrees
    } else {
        Agreement::Disagrees
    })
}
