//! Agent runs pushed by an agent framework when a run ends (`POST /v1/push/agent-runs`).
//!
//! ```json
//! {
//!   "runs": [
//!     {
//!       "run_id": "run-7f3a",
//!       "agent": "triage-bot",
//!       "iterations": 12,
//!       "outcome": "iteration_limit",
//!       "input_tokens": 48210,
//!       "output_tokens": 3120,
//!       "ts": "2026-03-01T12:00:00Z",
//!       "tool_calls": [
//!         { "name": "search_tickets", "arguments": { "query": "refund", "limit": 5 } },
//!         { "name": "search_tickets", "arguments": { "limit": 5, "query": "refund" } },
//!         { "name": "get_ticket", "arguments_hash": "9f86d081884c7d65" }
//!       ]
//!     }
//!   ]
//! }
//! ```
//!
//! | field | type | required | rule |
//! | --- | --- | --- | --- |
//! | `run_id`, `agent` | string | yes | not blank, at most 256 characters |
//! | `iterations` | whole number | yes | the agent loop's iterations |
//! | `outcome` | string | yes | `success`, `failure`, `timeout`, `aborted`, `iteration_limit` or `budget_exceeded` |
//! | `input_tokens`, `output_tokens` | whole number | no | |
//! | `ts` | string | no | RFC 3339, when the run ended |
//! | `api_key` | string | no | the LiteLLM key the agent calls with, as its SHA-256 hex (the gateway's `hashed_api_key`); runbooks can then act on the key of a looping agent |
//! | `tool_calls` | array | no | in call order, at most 1,000 |
//! | `tool_calls[].name` | string | yes | not blank, at most 256 characters |
//! | `tool_calls[].arguments` | any JSON | no | hashed on arrival; never stored |
//! | `tool_calls[].arguments_hash` | string | no | your own hash of the arguments, instead of `arguments` |
//!
//! Raw arguments never reach the ledger: `arguments` is replaced by the SHA-256 of its
//! canonical JSON form (object keys sorted, no whitespace), so the two calls above hash the
//! same. Two calls are *identical* when they have the same name and the same argument hash
//! (or both have none). [`AgentRun::tool_call_stats`] gives the facts that loop detection
//! needs: the longest streak of identical consecutive calls and the number of distinct calls.
//!
//! `runs` holds at most [`MAX_AGENT_RUNS`] elements; unknown fields are refused.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::json::{self, Walker};
use super::{IntakeError, evals};
use crate::time::Timestamp;

/// The most runs one request may carry.
pub const MAX_AGENT_RUNS: usize = 1_000;

/// The most tool calls one run may list.
pub const MAX_TOOL_CALLS_PER_RUN: usize = 1_000;

/// A batch of finished agent runs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentRunBatch {
    /// The runs, in the order they were sent.
    pub runs: Vec<AgentRun>,
}

/// One finished agent run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentRun {
    /// The run's id (kept for the ledger; never a label).
    pub run_id: String,
    /// The agent's name.
    pub agent: String,
    /// How many iterations the agent loop made.
    pub iterations: u64,
    /// How the run ended.
    pub outcome: AgentOutcome,
    /// Input tokens consumed, when reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<u64>,
    /// Output tokens produced, when reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_tokens: Option<u64>,
    /// When the run ended, when reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<Timestamp>,
    /// The tool calls in call order, arguments reduced to a hash.
    #[serde(default)]
    pub tool_calls: Vec<ToolCall>,
    /// The hashed LiteLLM key the agent called with, when reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
}

/// One tool call of a run.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ToolCall {
    /// The tool's name.
    pub name: String,
    /// The hash of the call's arguments: ours (SHA-256, hex) when the client sent
    /// `arguments`, the client's own when it sent `arguments_hash`, absent when neither.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arguments_hash: Option<String>,
}

/// How an agent run ended. The set is closed so that it can be a label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentOutcome {
    /// The agent finished its task.
    Success,
    /// The agent gave up or hit an error.
    Failure,
    /// The run ran out of time.
    Timeout,
    /// Someone or something stopped the run.
    Aborted,
    /// The run hit its iteration limit (a likely loop).
    IterationLimit,
    /// The run hit its token or cost budget.
    BudgetExceeded,
}

impl AgentOutcome {
    /// Every outcome, in declaration order.
    pub const ALL: [AgentOutcome; 6] = [
        AgentOutcome::Success,
        AgentOutcome::Failure,
        AgentOutcome::Timeout,
        AgentOutcome::Aborted,
        AgentOutcome::IterationLimit,
        AgentOutcome::BudgetExceeded,
    ];

    /// The name used on the wire and in labels.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            AgentOutcome::Success => "success",
            AgentOutcome::Failure => "failure",
            AgentOutcome::Timeout => "timeout",
            AgentOutcome::Aborted => "aborted",
            AgentOutcome::IterationLimit => "iteration_limit",
            AgentOutcome::BudgetExceeded => "budget_exceeded",
        }
    }
}

/// What a run's tool calls say about looping.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCallStats {
    /// How many calls the run made.
    pub calls: u64,
    /// How many different calls (name and argument hash) it made.
    pub distinct_calls: u64,
    /// How many calls repeated the call just before them.
    pub repeated_calls: u64,
    /// The longest streak of identical consecutive calls (0 without calls, 1 when no call
    /// repeats its predecessor).
    pub longest_streak: u64,
    /// The longest run of consecutive calls that made no progress: each one a call (name and
    /// arguments) the run had already made. An agent cycling through the same few calls
    /// (A, B, A, B, ...) stalls without repeating its predecessor.
    #[serde(default)]
    pub longest_stall: u64,
}

impl AgentRun {
    /// The loop-detection facts of this run's tool calls.
    #[must_use]
    pub fn tool_call_stats(&self) -> ToolCallStats {
        let mut stats = ToolCallStats::default();
        let mut distinct = BTreeSet::new();
        let mut previous: Option<&ToolCall> = None;
        let mut streak = 0_u64;
        let mut stall = 0_u64;
        for call in &self.tool_calls {
            stats.calls += 1;
            stall = if distinct.insert(call) { 0 } else { stall + 1 };
            stats.longest_stall = stats.longest_stall.max(stall);
            if previous == Some(call) {
                streak += 1;
                stats.repeated_calls += 1;
            } else {
                streak = 1;
            }
            stats.longest_streak = stats.longest_streak.max(streak);
            previous = Some(call);
        }
        stats.distinct_calls = distinct.len() as u64;
        stats
    }
}

const RUN_FIELDS: [&str; 9] = [
    "run_id",
    "agent",
    "iterations",
    "outcome",
    "input_tokens",
    "output_tokens",
    "ts",
    "tool_calls",
    "api_key",
];

const CALL_FIELDS: [&str; 3] = ["name", "arguments", "arguments_hash"];

/// Parses and validates a batch of agent runs, reporting every problem with its path.
pub fn parse_agent_runs(body: &[u8]) -> Result<AgentRunBatch, IntakeError> {
    // Checked whole, then parsed one run at a time (see `json.rs`).
    let root = json::parse_raw(body)?;
    let mut walker = Walker::default();
    let mut runs = Vec::new();
    let items = json::batch_items(&mut walker, root, "runs", MAX_AGENT_RUNS);
    for (idx, raw) in items.into_iter().enumerate() {
        let path = json::index("runs", idx);
        if let Some(item) = walker.tree(raw, &path)
            && let Some(run) = agent_run(&mut walker, &item, &path)
        {
            runs.push(run);
        }
    }
    walker.finish(AgentRunBatch { runs })
}

fn agent_run(walker: &mut Walker, value: &Value, path: &str) -> Option<AgentRun> {
    let map = walker.object(value, path)?;
    walker.reject_unknown(map, path, &RUN_FIELDS);
    let run_id = walker.field(map, path, "run_id", Walker::name);
    let agent = walker.field(map, path, "agent", Walker::name);
    let iterations = walker.field(map, path, "iterations", Walker::count);
    let outcome = walker.field(map, path, "outcome", outcome);
    let input_tokens = walker.optional_field(map, path, "input_tokens", Walker::count);
    let output_tokens = walker.optional_field(map, path, "output_tokens", Walker::count);
    let ended_at = walker.optional_field(map, path, "ts", evals::time);
    let tool_calls = walker.optional_field(map, path, "tool_calls", tool_calls);
    let api_key = walker.optional_field(map, path, "api_key", hashed_key);
    Some(AgentRun {
        run_id: run_id?,
        agent: agent?,
        iterations: iterations?,
        outcome: outcome?,
        input_tokens: input_tokens?,
        output_tokens: output_tokens?,
        ended_at: ended_at?,
        tool_calls: tool_calls?.unwrap_or_default(),
        api_key: api_key?,
    })
}

/// A key as the gateway labels it: 64 lowercase hex digits (never the raw `sk-` key).
fn hashed_key(walker: &mut Walker, value: &Value, path: &str) -> Option<String> {
    let text = walker.any_text(value, path)?;
    let ok = text.len() == 64
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !ok {
        walker.report(
            path,
            "must be the key's SHA-256 in lowercase hex (the gateway's `hashed_api_key`), never the key itself",
        );
        return None;
    }
    Some(text.to_owned())
}

fn outcome(walker: &mut Walker, value: &Value, path: &str) -> Option<AgentOutcome> {
    let text = walker.any_text(value, path)?;
    let found = AgentOutcome::ALL
        .into_iter()
        .find(|outcome| outcome.as_str() == text);
    if found.is_none() {
        let names: Vec<&str> = AgentOutcome::ALL.iter().map(|o| o.as_str()).collect();
        walker.report(
            path,
            format!("unknown outcome; expected one of: {}", names.join(", ")),
        );
    }
    found
}

fn tool_calls(walker: &mut Walker, value: &Value, path: &str) -> Option<Vec<ToolCall>> {
    let items = walker.array(value, path, MAX_TOOL_CALLS_PER_RUN)?;
    let mut calls = Vec::with_capacity(items.len());
    let mut valid = true;
    for (idx, item) in items.iter().enumerate() {
        match tool_call(walker, item, &json::index(path, idx)) {
            Some(call) => calls.push(call),
            None => valid = false,
        }
    }
    valid.then_some(calls)
}

fn tool_call(walker: &mut Walker, value: &Value, path: &str) -> Option<ToolCall> {
    let map = walker.object(value, path)?;
    walker.reject_unknown(map, path, &CALL_FIELDS);
    let name = walker.field(map, path, "name", Walker::name);
    let given_hash = walker.optional_field(map, path, "arguments_hash", Walker::name)?;
    let arguments = json::optional(map, "arguments");
    let arguments_hash = match (arguments, given_hash) {
        (Some(_), Some(_)) => {
            walker.report(
                &json::join(path, "arguments_hash"),
                "give `arguments` or `arguments_hash`, not both",
            );
            return None;
        }
        (Some(arguments), None) => Some(hash_arguments(arguments)),
        (None, given) => given,
    };
    Some(ToolCall {
        name: name?,
        arguments_hash,
    })
}

/// The SHA-256 (hex) of `arguments` in canonical JSON: object keys sorted, no whitespace.
#[must_use]
pub fn hash_arguments(arguments: &Value) -> String {
    let mut canonical = String::new();
    write_canonical(arguments, &mut canonical);
    hex::encode(Sha256::digest(canonical.as_bytes()))
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            // The workspace's serde_json keeps insertion order, so sort here.
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|left, right| left.0.cmp(right.0));
            out.push('{');
            for (idx, (key, item)) in entries.into_iter().enumerate() {
                if idx > 0 {
                    out.push(',');
                }
                let _infallible = write!(out, "{}", Value::String(key.clone()));
                out.push(':');
                write_canonical(item, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (idx, item) in items.iter().enumerate() {
                if idx > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => {
            let _infallible = write!(out, "{scalar}");
        }
    }
}
