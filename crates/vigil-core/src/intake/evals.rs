//! Eval results pushed by an evaluation harness (`POST /v1/push/evals`).
//!
//! One request carries a batch of results, one per test case:
//!
//! ```json
//! {
//!   "results": [
//!     {
//!       "suite": "support-regression",
//!       "case": "refund-policy-07",
//!       "passed": false,
//!       "score": 0.42,
//!       "model": "gpt-4o-2024-08-06",
//!       "prompt_name": "support-answer",
//!       "prompt_version": "v12",
//!       "input_tokens": 3120,
//!       "run_id": "ci-8812",
//!       "ts": "2026-03-01T12:00:00Z"
//!     }
//!   ]
//! }
//! ```
//!
//! | field | type | required | rule |
//! | --- | --- | --- | --- |
//! | `suite`, `case`, `model`, `prompt_name`, `prompt_version` | string | yes | not blank, at most 256 characters |
//! | `passed` | boolean | yes | |
//! | `score` | number | no | finite, from -10^9 to 10^9 (0 to 1 is usual) |
//! | `input_tokens` | whole number | no | the prompt tokens the case sent: how big this prompt version's prompts are |
//! | `run_id` | string | no | not blank, at most 256 characters |
//! | `ts` | string | no | RFC 3339, when the case ran |
//!
//! `results` holds at most [`MAX_EVAL_RESULTS`] elements. Unknown fields are refused, so
//! that a typo (`"sore"`) is an error rather than a silently missing score. `null` counts as
//! absent.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::json::{self, Walker};
use super::{IntakeError, rfc3339};
use crate::time::Timestamp;

/// The most results one request may carry.
pub const MAX_EVAL_RESULTS: usize = 10_000;

/// The largest score accepted, in absolute value: far beyond any real scale, and small enough
/// that the running sum of scores the engine keeps (`vigil_eval_score_sum`) stays finite.
pub const MAX_ABS_SCORE: f64 = 1e9;

/// A batch of eval results.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EvalBatch {
    /// The results, in the order they were sent.
    pub results: Vec<EvalResult>,
}

/// The result of one eval case.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalResult {
    /// The suite the case belongs to.
    pub suite: String,
    /// The case's name within its suite.
    pub case: String,
    /// Whether the case passed.
    pub passed: bool,
    /// The case's score, when the harness gives one (finite, at most [`MAX_ABS_SCORE`] in
    /// absolute value).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    /// The model under test.
    pub model: String,
    /// The prompt under test.
    pub prompt_name: String,
    /// The prompt's version.
    pub prompt_version: String,
    /// The prompt tokens the case sent, when the harness counts them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<u64>,
    /// The harness's run, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// When the case ran, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ran_at: Option<Timestamp>,
}

const FIELDS: [&str; 10] = [
    "suite",
    "case",
    "passed",
    "score",
    "model",
    "prompt_name",
    "prompt_version",
    "input_tokens",
    "run_id",
    "ts",
];

/// Parses and validates a batch of eval results, reporting every problem with its path.
pub fn parse_evals(body: &[u8]) -> Result<EvalBatch, IntakeError> {
    // Checked whole, then parsed one result at a time (see `json.rs`).
    let root = json::parse_raw(body)?;
    let mut walker = Walker::default();
    let mut results = Vec::new();
    let items = json::batch_items(&mut walker, root, "results", MAX_EVAL_RESULTS);
    for (idx, raw) in items.into_iter().enumerate() {
        let path = json::index("results", idx);
        if let Some(item) = walker.tree(raw, &path)
            && let Some(result) = eval_result(&mut walker, &item, &path)
        {
            results.push(result);
        }
    }
    walker.finish(EvalBatch { results })
}

fn eval_result(walker: &mut Walker, value: &Value, path: &str) -> Option<EvalResult> {
    let map = walker.object(value, path)?;
    walker.reject_unknown(map, path, &FIELDS);
    let suite = walker.field(map, path, "suite", Walker::name);
    let case = walker.field(map, path, "case", Walker::name);
    let passed = walker.field(map, path, "passed", Walker::boolean);
    let score = walker.optional_field(map, path, "score", score);
    let model = walker.field(map, path, "model", Walker::name);
    let prompt_name = walker.field(map, path, "prompt_name", Walker::name);
    let prompt_version = walker.field(map, path, "prompt_version", Walker::name);
    let input_tokens = walker.optional_field(map, path, "input_tokens", Walker::count);
    let run_id = walker.optional_field(map, path, "run_id", Walker::name);
    let ran_at = walker.optional_field(map, path, "ts", time);
    Some(EvalResult {
        suite: suite?,
        case: case?,
        passed: passed?,
        score: score?,
        model: model?,
        prompt_name: prompt_name?,
        prompt_version: prompt_version?,
        input_tokens: input_tokens?,
        run_id: run_id?,
        ran_at: ran_at?,
    })
}

/// Reads a score: a finite number of at most [`MAX_ABS_SCORE`] in absolute value.
fn score(walker: &mut Walker, value: &Value, path: &str) -> Option<f64> {
    let score = walker.number(value, path)?;
    if score.abs() > MAX_ABS_SCORE {
        walker.report(
            path,
            format!("must be from -1e9 to 1e9, found {}", json::show(value)),
        );
        return None;
    }
    Some(score)
}

/// Reads an RFC 3339 time, reporting a problem at `path` when it is not one.
pub(crate) fn time(walker: &mut Walker, value: &Value, path: &str) -> Option<Timestamp> {
    let text = walker.any_text(value, path)?;
    match rfc3339::parse_rfc3339(text) {
        Ok(timestamp) => Some(timestamp),
        Err(reason) => {
            walker.report(
                path,
                format!("must be an RFC 3339 time such as `2026-03-01T12:00:00Z`: {reason}"),
            );
            None
        }
    }
}
