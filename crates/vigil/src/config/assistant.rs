//! The config's `diagnosis.assistant:` block: the LLM that investigates incidents (off unless
//! the block is present with `enabled: true`). Raw (serde, unknown keys rejected) and
//! validated here; what an investigation is and how its answer is checked are
//! `vigil_core::investigation`, the conversation `crate::investigator`.
//!
//! ```yaml
//! diagnosis:
//!   assistant:
//!     enabled: true
//!     base_url: http://127.0.0.1:4000/v1   # OpenAI, a LiteLLM proxy, vLLM, Ollama
//!     model: gpt-4o-mini
//!     api_key: { env: VIGIL_ASSISTANT_KEY } # optional (Ollama and vLLM need none)
//!     on: novel                             # novel | paged | all
//!     structured_output: json_schema        # json_schema | json_object | none
//!     tokens_per_incident: 20000
//!     tokens_per_day: 500000
//!     deadline_secs: 60
//!     request_timeout_secs: 20
//!     max_tool_calls: 8
//!     max_turns: 10
//!     max_tool_output_bytes: 4096
//!     max_completion_tokens: 800
//!     concurrency: 2
//!     breaker: { failures: 3, cool_off_secs: 300 }
//!     tolerance: 0.02
//! ```

use std::path::Path;
use std::time::Duration;

use reqwest::Url;
use serde::Deserialize;
use vigil_connectors::secret::SecretSource;
use vigil_core::investigation::{AssistantConfig, Scope};
use vigil_core::problem::Problems;

use super::raw::RawSecret;

/// The block as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAssistant {
    /// Whether the assistant runs (the block can stay in place, switched off).
    #[serde(default)]
    pub enabled: bool,
    /// The OpenAI-compatible API's base URL, up to and including `/v1`.
    pub base_url: String,
    /// The model to ask.
    pub model: String,
    /// The API key, from an environment variable or a file.
    pub api_key: Option<RawSecret>,
    /// Which incidents it investigates: `novel` (no runbook handles them), `paged`, `all`.
    #[serde(default = "default_scope")]
    pub on: Scope,
    /// How the answer's shape is asked for: `json_schema` (OpenAI's structured output),
    /// `json_object` (with the schema beside it, as llama.cpp's server takes it) or `none`
    /// (the schema in the prompt only).
    #[serde(default)]
    pub structured_output: StructuredOutput,
    /// Tokens one investigation may use, prompt and completion.
    #[serde(default = "default_tokens_per_incident")]
    pub tokens_per_incident: u64,
    /// Tokens all investigations may use per UTC day.
    #[serde(default = "default_tokens_per_day")]
    pub tokens_per_day: u64,
    /// The whole investigation's deadline.
    #[serde(default = "default_deadline_secs")]
    pub deadline_secs: u64,
    /// One request's deadline (vigil's own, around the client's retries).
    #[serde(default = "default_request_timeout_secs")]
    pub request_timeout_secs: u64,
    /// Tool calls per investigation.
    #[serde(default = "default_max_tool_calls")]
    pub max_tool_calls: u32,
    /// Requests to the model per investigation.
    #[serde(default = "default_max_turns")]
    pub max_turns: u32,
    /// Each tool output is cut to this many bytes.
    #[serde(default = "default_max_tool_output_bytes")]
    pub max_tool_output_bytes: u32,
    /// `max_tokens` of each request.
    #[serde(default = "default_max_completion_tokens")]
    pub max_completion_tokens: u32,
    /// Investigations running at once; more wait for a slot until their deadline.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// The circuit breaker.
    #[serde(default)]
    pub breaker: RawBreaker,
    /// How far a claimed number may be from the store's, relative.
    #[serde(default = "default_tolerance")]
    pub tolerance: f64,
}

/// The circuit breaker as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBreaker {
    /// Consecutive failed investigations (errors, timeouts) that open it.
    #[serde(default = "default_breaker_failures")]
    pub failures: u32,
    /// How long it stays open before one investigation may try again.
    #[serde(default = "default_cool_off_secs")]
    pub cool_off_secs: u64,
}

impl Default for RawBreaker {
    fn default() -> Self {
        RawBreaker {
            failures: default_breaker_failures(),
            cool_off_secs: default_cool_off_secs(),
        }
    }
}

/// How the answer's shape is asked for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StructuredOutput {
    /// `response_format: {type: json_schema, json_schema: {name, schema, strict}}`.
    #[default]
    JsonSchema,
    /// `response_format: {type: json_object, schema}`.
    JsonObject,
    /// No `response_format`: the schema is in the prompt.
    None,
}

fn default_scope() -> Scope {
    Scope::Novel
}
fn default_tokens_per_incident() -> u64 {
    20_000
}
fn default_tokens_per_day() -> u64 {
    500_000
}
fn default_deadline_secs() -> u64 {
    60
}
fn default_request_timeout_secs() -> u64 {
    20
}
fn default_max_tool_calls() -> u32 {
    8
}
fn default_max_turns() -> u32 {
    10
}
fn default_max_tool_output_bytes() -> u32 {
    4096
}
fn default_max_completion_tokens() -> u32 {
    800
}
fn default_concurrency() -> usize {
    2
}
fn default_breaker_failures() -> u32 {
    3
}
fn default_cool_off_secs() -> u64 {
    300
}
fn default_tolerance() -> f64 {
    0.02
}

/// The assistant, validated.
#[derive(Debug, Clone)]
pub struct AssistantSettings {
    /// Whether it runs in `vigil serve` (`vigil investigate` uses a switched-off block too).
    pub enabled: bool,
    /// The engine's part, recorded with every session.
    pub engine: AssistantConfig,
    /// The API's base URL.
    pub base_url: Url,
    /// The model.
    pub model: String,
    /// The API key, if any.
    pub api_key: Option<SecretSource>,
    /// How the answer's shape is asked for.
    pub structured_output: StructuredOutput,
    /// Tokens per UTC day over all investigations.
    pub tokens_per_day: u64,
    /// One request's deadline.
    pub request_timeout: Duration,
    /// `max_tokens` of each request.
    pub max_completion_tokens: u32,
    /// Investigations at once.
    pub concurrency: usize,
    /// Consecutive failures that open the breaker.
    pub breaker_failures: u32,
    /// How long the breaker stays open.
    pub breaker_cool_off: Duration,
}

/// Validates the block; `None` when absent.
pub(super) fn validate_assistant(
    problems: &mut Problems,
    raw: Option<RawAssistant>,
    base_dir: &Path,
) -> Option<AssistantSettings> {
    let raw = raw?;
    let path = "diagnosis.assistant";
    let url = super::validate::http_url(problems, &format!("{path}.base_url"), &raw.base_url);
    if raw.model.trim().is_empty() {
        problems.push(format!("{path}.model"), "must name a model");
    }
    let api_key = raw.api_key.map(|secret| {
        super::validate::secret(problems, &format!("{path}.api_key"), secret, base_dir)
    });
    let mut positive = |field: &str, value: u64, max: u64| {
        if value == 0 || value > max {
            problems.push(format!("{path}.{field}"), format!("must be 1 to {max}"));
        }
    };
    positive("tokens_per_incident", raw.tokens_per_incident, 10_000_000);
    positive("tokens_per_day", raw.tokens_per_day, 1_000_000_000);
    positive("deadline_secs", raw.deadline_secs, 3600);
    positive("request_timeout_secs", raw.request_timeout_secs, 3600);
    positive("max_tool_calls", u64::from(raw.max_tool_calls), 100);
    positive("max_turns", u64::from(raw.max_turns), 100);
    positive(
        "max_tool_output_bytes",
        u64::from(raw.max_tool_output_bytes),
        1 << 20,
    );
    positive(
        "max_completion_tokens",
        u64::from(raw.max_completion_tokens),
        100_000,
    );
    positive("concurrency", raw.concurrency as u64, 64);
    positive("breaker.failures", u64::from(raw.breaker.failures), 1000);
    positive("breaker.cool_off_secs", raw.breaker.cool_off_secs, 86_400);
    if raw.tokens_per_incident > raw.tokens_per_day {
        problems.push(
            format!("{path}.tokens_per_incident"),
            "must not exceed tokens_per_day",
        );
    }
    if !(raw.tolerance.is_finite() && (0.0..=0.5).contains(&raw.tolerance)) {
        problems.push(format!("{path}.tolerance"), "must be 0 to 0.5");
    }
    Some(AssistantSettings {
        enabled: raw.enabled,
        engine: AssistantConfig {
            on: raw.on,
            max_tool_calls: raw.max_tool_calls,
            max_turns: raw.max_turns,
            max_tool_output_bytes: raw.max_tool_output_bytes,
            max_tokens_per_incident: raw.tokens_per_incident,
            deadline_ms: i64::try_from(raw.deadline_secs.saturating_mul(1000)).unwrap_or(i64::MAX),
            tolerance: raw.tolerance,
        },
        base_url: url?,
        model: raw.model.trim().to_owned(),
        api_key,
        structured_output: raw.structured_output,
        tokens_per_day: raw.tokens_per_day,
        request_timeout: Duration::from_secs(raw.request_timeout_secs),
        max_completion_tokens: raw.max_completion_tokens,
        concurrency: raw.concurrency,
        breaker_failures: raw.breaker.failures,
        breaker_cool_off: Duration::from_secs(raw.breaker.cool_off_secs),
    })
}
