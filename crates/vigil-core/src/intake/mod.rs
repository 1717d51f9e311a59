//! Pushed events: payloads that outside systems send to vigil over HTTP (eval results, agent
//! runs, Alertmanager notifications, OTLP traces), validated into typed batches that the
//! ledger records and the engine turns into [`Signal`]s.
//!
//! Each parser takes the request body's bytes and either returns a typed batch or an
//! [`IntakeError`] listing every problem it found (up to [`MAX_PROBLEMS`]), each with the
//! path of the bad field (`results[3].passed`) and what is wrong; a JSON syntax error is one
//! problem that gives its line and column. Parsers never panic, whatever the bytes.
//!
//! | endpoint | parser | shape |
//! | --- | --- | --- |
//! | `POST /v1/push/evals` | [`parse_evals`] | [`evals`] |
//! | `POST /v1/push/agent-runs` | [`parse_agent_runs`] | [`agent_runs`] |
//! | `POST /v1/push/alertmanager` | [`parse_alertmanager`] | [`alertmanager`] (webhook version 4) |
//! | `POST /v1/traces`, `application/json` | [`parse_otlp_traces`] | [`otlp`] (OTLP/HTTP JSON) |
//! | `POST /v1/traces`, `application/x-protobuf` | [`parse_otlp_traces_protobuf`] | [`otlp_proto`] (OTLP/HTTP protobuf, into the same batch) |
//!
//! The batches keep the per-event facts that detectors need beyond aggregates: an agent
//! run's iterations, outcome and tool-call streaks ([`AgentRun::tool_call_stats`]), an
//! alert's labels, annotations and times, a span's ids, model, tokens and duration. Raw tool
//! arguments are hashed on arrival and never kept.
//!
//! # Signals
//!
//! [`Pushed::signals`] turns a batch into counter increments and gauges. Histograms are
//! Prometheus-style: cumulative `_bucket{le}` counters with fixed bounds, plus `_sum` and
//! `_count`.
//!
//! | signal | kind | labels | one step per |
//! | --- | --- | --- | --- |
//! | `vigil_eval_cases_total` | counter | `suite`, `model`, `prompt`, `prompt_version`, `outcome` (`passed`, `failed`) | eval result |
//! | `vigil_eval_score_sum` | counter | `suite`, `model`, `prompt`, `prompt_version` | scored result, by its score |
//! | `vigil_eval_score_count` | counter | `suite`, `model`, `prompt`, `prompt_version` | scored result |
//! | `vigil_eval_input_tokens_sum` | counter | `suite`, `model`, `prompt`, `prompt_version` | result that reports its prompt tokens, by the tokens |
//! | `vigil_eval_input_tokens_count` | counter | `suite`, `model`, `prompt`, `prompt_version` | result that reports its prompt tokens |
//! | `vigil_agent_runs_total` | counter | `agent`, `outcome` | agent run |
//! | `vigil_agent_iterations_bucket` | counter | `agent`, `le` (1, 2, 4, ..., 128, `+Inf`) | agent run, by its iterations; also `_sum`, `_count` |
//! | `vigil_agent_tool_calls_total` | counter | `agent`, `tool` | tool call |
//! | `vigil_agent_repeated_tool_calls_total` | counter | `agent` | tool call identical to the one just before it |
//! | `vigil_agent_max_repeat_streak` | gauge | `agent` | the longest streak of identical calls among the batch's runs of that agent |
//! | `vigil_agent_max_stalled_calls` | gauge | `agent` | the longest run of calls that repeat an earlier call of the same run (no progress), among the batch's runs of that agent |
//! | `vigil_agent_key_max_stalled_calls` | gauge | `agent`, `hashed_api_key` | the same, per key, for runs that name their `api_key` (so a runbook can block a looping agent's key) |
//! | `vigil_agent_max_iterations` | gauge | `agent` | the most iterations among the batch's runs of that agent |
//! | `vigil_agent_tokens_total` | counter | `agent`, `direction` (`input`, `output`) | run that reports tokens, by the tokens |
//! | `vigil_alerts_total` | counter | `alertname`, `status` (`firing`, `resolved`), `severity` | alert in a notification (Alertmanager repeats firing alerts every `repeat_interval`) |
//! | `vigil_alert_firing` | gauge | `alertname`, `severity`, `subject` (`label=value`: what the alert is about, [`Alert::subject`]) | alert that names what it is about: 1 firing, 0 resolved (a threshold detector grouped by `subject` turns it into a finding about that node, which clears when the alert resolves; sessions with a topology only) |
//! | `vigil_genai_requests_total` | counter | `provider`, `model`, `response_model` (`gen_ai.response.model`: the snapshot that answered), `operation`, `error_type` | model-call span |
//! | `vigil_genai_tokens_total` | counter | `provider`, `model`, `direction` (`input`, `output`) | model-call span with usage, by the tokens |
//! | `vigil_genai_finish_reasons_total` | counter | `provider`, `model`, `reason` (`length` means truncated) | finish reason of a model-call span |
//! | `vigil_genai_request_duration_seconds_bucket` | counter | `provider`, `model`, `le` (0.01 to 81.92 s, the conventions' advice, `+Inf`) | model-call span, by its duration; also `_sum`, `_count` |
//! | `vigil_genai_tool_calls_total` | counter | `tool`, `error_type` | `execute_tool` span |
//! | `vigil_genai_agent_invocations_total` | counter | `agent`, `error_type` | `invoke_agent` span |
//! | `vigil_db_requests_total` | counter | `db_system`, `collection`, `error_type` | database span |
//! | `vigil_db_request_duration_seconds_bucket` | counter | `db_system`, `collection`, `le` (as the model calls' durations) | database span, by its duration; also `_sum`, `_count` |
//!
//! A *model-call span* is a GenAI span whose operation is not `invoke_agent`, `create_agent`
//! or `execute_tool` (agent spans may repeat their children's token usage, so only model
//! calls count tokens). `model` is `gen_ai.request.model`, else `gen_ai.response.model`.
//! `error_type` is `error.type`, else `_OTHER` when the span's status is an error, else `""`.
//! A label whose source is absent is `""`, so every series of a signal has the same label
//! names.
//!
//! A *database span* (`db.system.name`) feeds only the `vigil_db_*` signals, never the model
//! calls'.
//!
//! **Cardinality.** Labels carry only names that the operator's own systems choose from a
//! small set (suite, model, prompt and its version, agent, tool, alert name, severity, the
//! node an alert names, provider, operation, error class, finish reason, database system and
//! collection), never ids (run ids, case names, trace
//! ids, fingerprints), free text (annotations, status messages) or arguments. Every label
//! value is cut to [`MAX_LABEL_CHARS`] characters. What remains to watch: prompt versions
//! accumulate over months, and an agent that invents tool names or an instrumentation that
//! puts messages in `error.type` grows its series. Past `store.max_pushed_series` series of
//! one kind, new series are refused and the push's sender is told which (`engine::push`).

pub mod agent_runs;
pub mod alertmanager;
pub mod evals;
pub(crate) mod json;
pub mod otlp;
pub mod otlp_messages;
pub mod otlp_proto;
mod otlp_values;
mod rfc3339;
mod signals;

#[cfg(test)]
mod tests;

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::problem::Problem;

pub use agent_runs::{
    AgentOutcome, AgentRun, AgentRunBatch, ToolCall, ToolCallStats, parse_agent_runs,
};
pub use alertmanager::{Alert, AlertBatch, AlertStatus, parse_alertmanager};
pub use evals::{EvalBatch, EvalResult, parse_evals};
pub use json::MAX_PROBLEMS;
pub use otlp::{GenAiSpan, SpanBatch, SpanKind, SpanStatus, StatusCode, parse_otlp_traces};
pub use otlp_proto::parse_otlp_traces_protobuf;
pub use rfc3339::parse_rfc3339;
pub use signals::{
    ALERT_FIRING, DURATION_BUCKETS_SECONDS, ITERATION_BUCKETS, MAX_LABEL_CHARS, Signal, SignalKind,
    label_value,
};

/// The store source that holds the signals of one kind of pushed payload, for example
/// `push:evals`. Detectors name it as their `source`.
#[must_use]
pub fn push_source(kind: &str) -> String {
    format!("push:{kind}")
}

/// The store sources of every kind of pushed payload.
pub const PUSH_SOURCES: [&str; 4] = ["push:evals", "push:agent_runs", "push:alerts", "push:spans"];

/// Identifiers in pushed payloads (suite, case, model, agent, run id, ...) have at most this
/// many characters.
pub const MAX_NAME_CHARS: usize = 256;

/// A validated pushed payload, as the ledger records it and the engine consumes it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Pushed {
    /// Eval results.
    Evals(EvalBatch),
    /// Finished agent runs.
    AgentRuns(AgentRunBatch),
    /// An Alertmanager notification.
    Alerts(AlertBatch),
    /// The GenAI spans of an OTLP trace export.
    Spans(SpanBatch),
}

impl Pushed {
    /// How many items the payload carries: results, runs, alerts or GenAI spans.
    #[must_use]
    pub fn n_items(&self) -> usize {
        match self {
            Pushed::Evals(batch) => batch.results.len(),
            Pushed::AgentRuns(batch) => batch.runs.len(),
            Pushed::Alerts(batch) => batch.alerts.len(),
            Pushed::Spans(batch) => batch.spans.len(),
        }
    }

    /// A short name of the variant, for logs and metrics.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Pushed::Evals(_) => "evals",
            Pushed::AgentRuns(_) => "agent_runs",
            Pushed::Alerts(_) => "alerts",
            Pushed::Spans(_) => "spans",
        }
    }
}

/// Why a pushed payload was refused: every problem found, each with the path of its field.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntakeError {
    /// The problems, at most [`MAX_PROBLEMS`], in the order they were found.
    pub problems: Vec<Problem>,
    /// How many more problems were found but not listed.
    pub omitted: usize,
}

impl IntakeError {
    /// An error with one problem.
    pub fn single(path: impl Into<String>, message: impl Into<String>) -> Self {
        IntakeError {
            problems: vec![Problem::new(path, message)],
            omitted: 0,
        }
    }

    /// A one-line summary: "the payload has 3 problems".
    #[must_use]
    pub fn summary(&self) -> String {
        let total = self.problems.len() + self.omitted;
        match (total, self.omitted) {
            (1, _) => "the payload has 1 problem".to_owned(),
            (_, 0) => format!("the payload has {total} problems"),
            (_, _) => format!(
                "the payload has {total} problems; the first {} are listed",
                self.problems.len()
            ),
        }
    }
}

impl fmt::Display for IntakeError {
    /// The summary, then each problem: "the payload has 2 problems: a: x; b: y".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.summary())?;
        for (idx, problem) in self.problems.iter().enumerate() {
            f.write_str(if idx == 0 { ": " } else { "; " })?;
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for IntakeError {}
