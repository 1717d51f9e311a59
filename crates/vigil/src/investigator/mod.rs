//! The investigator: one bounded conversation with the assistant's model about an incident
//! (or a person's question), its tool calls served read-only from vigil's own state, and
//! everything said recorded in a transcript. What the model answers is checked by the engine
//! (`vigil_core::investigation::check`), never here: this module only talks and bounds.
//!
//! Bounds, each its own refusal: the investigation's deadline (vigil's, around every call,
//! whatever `Retry-After` says), one request's timeout, tool calls per investigation,
//! identical repeated calls, requests per investigation (the conversation's length), each tool
//! output's bytes, tokens per investigation and per UTC day, investigations at once, and a
//! circuit breaker that stops asking a model that keeps failing until a cool-off has passed.
//! An investigation that hits one gives up with a [`Failure`] and the incident goes on
//! without it.

mod breaker;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::Semaphore;
use vigil_connectors::llm::{ChatClient, LlmError};
use vigil_core::investigation::tools::{ToolCall, ToolOutput, definitions};
use vigil_core::investigation::{
    EvidenceItem, Failure, InvestigationOutcome, InvestigationRequest, SYSTEM_PROMPT, Usage,
    answer_schema,
};

pub use breaker::{Breaker, BreakerState};

use crate::config::assistant::{AssistantSettings, StructuredOutput};

/// The investigator the config describes: its key resolved, its HTTP client built (the
/// request timeout is vigil's own, around the client's retries).
///
/// # Errors
/// The key cannot be read, or the client cannot be built.
pub fn build(settings: &AssistantSettings) -> anyhow::Result<Investigator> {
    use anyhow::Context as _;
    let key = match &settings.api_key {
        Some(source) => Some(source.resolve().context("api_key")?),
        None => None,
    };
    let http = vigil_connectors::http::client(settings.request_timeout)
        .context("building the HTTP client")?;
    let client = ChatClient::new(settings.base_url.as_str(), key.as_ref(), http);
    Ok(Investigator::new(settings, client))
}

/// Serves the model's tool calls from vigil's state (the engine's, and the ledger's).
pub trait ToolServer {
    /// The output of `call`, cut to `max_bytes`.
    fn serve(
        &self,
        call: ToolCall,
        max_bytes: usize,
    ) -> impl std::future::Future<Output = ToolOutput> + Send;
}

/// Tokens used on one UTC day, over every investigation.
#[derive(Debug, Default)]
struct DailyTokens {
    day: i64,
    used: u64,
}

/// What a finished investigation leaves: the outcome for the engine (without its transcript
/// blob, which the caller stores) and the transcript.
#[derive(Debug)]
pub struct Finished {
    /// What came back.
    pub outcome: InvestigationOutcome,
    /// Every request, tool call and output, and response, as JSON (secrets redacted).
    pub transcript: Value,
}

impl Finished {
    /// The outcome of an investigation asked of a runtime that has no assistant (a session
    /// whose config had one, resumed or replayed without it).
    #[must_use]
    pub fn unavailable(request: &InvestigationRequest) -> Finished {
        let detail = "no assistant is configured in this runtime";
        Finished {
            outcome: InvestigationOutcome::Failed {
                failure: Failure::Connection,
                detail: detail.to_owned(),
                usage: Usage::default(),
                transcript_blob: None,
            },
            transcript: json!([{"task": request.task}, {"failure": "connection", "detail": detail}]),
        }
    }

    /// Notes where the transcript was stored.
    pub fn set_transcript_blob(&mut self, hash: String) {
        match &mut self.outcome {
            InvestigationOutcome::Answered {
                transcript_blob, ..
            }
            | InvestigationOutcome::Failed {
                transcript_blob, ..
            } => *transcript_blob = Some(hash),
        }
    }
}

/// Runs investigations against one model.
#[derive(Debug)]
pub struct Investigator {
    client: ChatClient,
    model: String,
    structured_output: StructuredOutput,
    request_timeout: Duration,
    max_completion_tokens: u32,
    tokens_per_day: u64,
    daily: Mutex<DailyTokens>,
    breaker: Mutex<Breaker>,
    slots: Arc<Semaphore>,
}

impl Investigator {
    /// An investigator for the configured model, talking through `client`.
    #[must_use]
    pub fn new(settings: &AssistantSettings, client: ChatClient) -> Investigator {
        Investigator {
            client,
            model: settings.model.clone(),
            structured_output: settings.structured_output,
            request_timeout: settings.request_timeout,
            max_completion_tokens: settings.max_completion_tokens,
            tokens_per_day: settings.tokens_per_day,
            daily: Mutex::new(DailyTokens::default()),
            breaker: Mutex::new(Breaker::new(
                settings.breaker_failures,
                settings.breaker_cool_off,
            )),
            slots: Arc::new(Semaphore::new(settings.concurrency.max(1))),
        }
    }

    /// Whether the breaker is open now (for `/metrics`).
    #[must_use]
    pub fn breaker_open(&self) -> bool {
        self.breaker
            .lock()
            .map(|breaker| breaker.is_open(tokio::time::Instant::now()))
            .unwrap_or(false)
    }

    /// The breaker's state now (for `/metrics`); a poisoned lock reads as open, since the
    /// breaker then refuses investigations.
    #[must_use]
    pub fn breaker_state(&self) -> BreakerState {
        self.breaker.lock().map_or(BreakerState::Open, |breaker| {
            breaker.state(tokio::time::Instant::now())
        })
    }

    /// Runs one investigation to its end: an answer, or a failure saying why. `wall_ms` is
    /// the wall clock's now, for the daily token budget's day.
    pub async fn investigate<T: ToolServer + Sync>(
        &self,
        request: &InvestigationRequest,
        tools: &T,
        wall_ms: i64,
    ) -> Finished {
        let started = tokio::time::Instant::now();
        let limits = &request.limits;
        let deadline = started
            + Duration::from_millis(u64::try_from(limits.deadline_ms.max(1)).unwrap_or(u64::MAX));
        let mut run = Run::new(request);
        let refuse = |run: Run, failure: Failure, detail: &str| {
            let mut finished = run.failed(failure, detail, started);
            finished.transcript = self.redact_value(&finished.transcript);
            finished
        };
        if !self.breaker_allows(started) {
            return refuse(
                run,
                Failure::BreakerOpen,
                "the circuit breaker is open after recent failures",
            );
        }
        if self.daily_left(wall_ms) == 0 {
            return refuse(
                run,
                Failure::Budget,
                "the assistant's tokens for today are spent",
            );
        }
        let permit =
            match tokio::time::timeout_at(deadline, self.slots.clone().acquire_owned()).await {
                Ok(Ok(permit)) => permit,
                Ok(Err(_)) | Err(_) => {
                    return refuse(
                        run,
                        Failure::Busy,
                        "no investigation slot came free before the deadline",
                    );
                }
            };
        let finished = self.converse(&mut run, tools, deadline, wall_ms).await;
        drop(permit);
        let failed_model = match &finished {
            Ok(_) => Some(false),
            Err((failure, _)) => match failure {
                Failure::Deadline | Failure::Status | Failure::Connection | Failure::Protocol => {
                    Some(true)
                }
                Failure::Budget | Failure::Exhausted | Failure::Busy | Failure::BreakerOpen => None,
            },
        };
        if let Some(failed) = failed_model
            && let Ok(mut breaker) = self.breaker.lock()
        {
            breaker.record(failed, tokio::time::Instant::now());
        }
        let mut finished = match finished {
            Ok(answer) => run.answered(answer, started),
            Err((failure, detail)) => run.failed(failure, &detail, started),
        };
        // Once over everything: the task, the tool outputs and the answers may hold keys too.
        finished.transcript = self.redact_value(&finished.transcript);
        finished
    }

    fn breaker_allows(&self, now: tokio::time::Instant) -> bool {
        self.breaker
            .lock()
            .map(|mut breaker| breaker.allow(now))
            .unwrap_or(false)
    }

    /// Tokens left today.
    fn daily_left(&self, wall_ms: i64) -> u64 {
        let day = wall_ms.div_euclid(86_400_000);
        self.daily.lock().map_or(0, |mut daily| {
            if daily.day != day {
                *daily = DailyTokens { day, used: 0 };
            }
            self.tokens_per_day.saturating_sub(daily.used)
        })
    }

    fn spend(&self, wall_ms: i64, tokens: u64) {
        let day = wall_ms.div_euclid(86_400_000);
        if let Ok(mut daily) = self.daily.lock() {
            if daily.day != day {
                *daily = DailyTokens { day, used: 0 };
            }
            daily.used = daily.used.saturating_add(tokens);
        }
    }

    /// The conversation: requests until the model answers in words, each tool call served
    /// or refused. Returns the answer's text, or why there is none.
    async fn converse<T: ToolServer + Sync>(
        &self,
        run: &mut Run,
        tools: &T,
        deadline: tokio::time::Instant,
        wall_ms: i64,
    ) -> Result<String, (Failure, String)> {
        let limits = run.request.limits.clone();
        let max_bytes = usize::try_from(limits.max_tool_output_bytes).unwrap_or(usize::MAX);
        let mut seen_calls: BTreeSet<(String, String)> = BTreeSet::new();
        for turn in 0..limits.max_turns {
            let last_turn = turn + 1 == limits.max_turns;
            let tools_left = run.usage.tool_calls < limits.max_tool_calls;
            let body = self.body(&run.messages, tools_left && !last_turn);
            run.transcript.push(json!({"request": body}));
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Err((Failure::Deadline, "the deadline passed".to_owned()));
            }
            let wait = self.request_timeout.min(deadline - now);
            run.usage.requests += 1;
            let turn_result = self.client.complete(&body, wait).await;
            let reply = match turn_result {
                Ok(reply) => reply,
                Err(error) => {
                    let detail = error.to_string();
                    run.transcript.push(json!({"error": detail}));
                    let failure = match error {
                        LlmError::Timeout(_) => Failure::Deadline,
                        LlmError::Status { .. } => Failure::Status,
                        LlmError::Connection(_) => Failure::Connection,
                        LlmError::Protocol(_) => Failure::Protocol,
                    };
                    return Err((failure, detail));
                }
            };
            run.transcript.push(json!({"response": reply.raw}));
            run.usage.tokens = run.usage.tokens.saturating_add(reply.tokens);
            self.spend(wall_ms, reply.tokens);
            if run.usage.tokens > limits.max_tokens_per_incident {
                return Err((
                    Failure::Budget,
                    format!(
                        "the investigation used {} tokens, past its {}",
                        run.usage.tokens, limits.max_tokens_per_incident
                    ),
                ));
            }
            if self.daily_left(wall_ms) == 0 {
                return Err((
                    Failure::Budget,
                    "the assistant's tokens for today are spent".to_owned(),
                ));
            }
            if reply.tool_calls.is_empty() {
                return reply.content.ok_or_else(|| {
                    (
                        Failure::Protocol,
                        format!("an empty answer (finish_reason `{}`)", reply.finish_reason),
                    )
                });
            }
            // The assistant message with its calls, then one tool message per call.
            let calls: Vec<Value> = reply
                .tool_calls
                .iter()
                .map(|call| {
                    json!({"id": call.id, "type": "function",
                           "function": {"name": call.name, "arguments": call.arguments}})
                })
                .collect();
            run.messages
                // Content as text, never null: llama.cpp's server refuses a null or missing one.
                .push(json!({"role": "assistant", "content": reply.content.clone().unwrap_or_default(), "tool_calls": calls}));
            for call in &reply.tool_calls {
                let arguments = normalized(&call.arguments);
                let output = if run.usage.tool_calls >= limits.max_tool_calls {
                    run.usage.tool_calls_refused += 1;
                    ToolOutput::refused("no tool calls left: answer now with the JSON object")
                } else if !seen_calls.insert((call.name.clone(), arguments)) {
                    run.usage.tool_calls_refused += 1;
                    ToolOutput::refused("an identical call was already answered: use its output")
                } else {
                    match ToolCall::parse(&call.name, &call.arguments) {
                        Ok(parsed) => {
                            run.usage.tool_calls += 1;
                            let remaining =
                                deadline.saturating_duration_since(tokio::time::Instant::now());
                            match tokio::time::timeout(remaining, tools.serve(parsed, max_bytes))
                                .await
                            {
                                Ok(output) => output,
                                Err(_) => {
                                    return Err((
                                        Failure::Deadline,
                                        "the deadline passed while a tool ran".to_owned(),
                                    ));
                                }
                            }
                        }
                        Err(error) => {
                            run.usage.tool_calls_refused += 1;
                            ToolOutput::refused(&error.to_string())
                        }
                    }
                };
                run.transcript.push(json!({
                    "tool": call.name, "arguments": call.arguments, "output": output.text
                }));
                for item in output.evidence {
                    if !run.evidence.iter().any(|known| known.id == item.id) {
                        run.evidence.push(item);
                    }
                }
                run.messages
                    .push(json!({"role": "tool", "tool_call_id": call.id, "content": output.text}));
            }
        }
        Err((
            Failure::Exhausted,
            format!("no answer within {} requests", limits.max_turns),
        ))
    }

    /// A request body: the conversation so far, the tools while calls are left, and the
    /// answer's shape as the server takes it.
    fn body(&self, messages: &[Value], offer_tools: bool) -> Value {
        let mut body = json!({
            "model": self.model,
            "messages": messages,
            "max_tokens": self.max_completion_tokens,
            "temperature": 0,
        });
        let Some(object) = body.as_object_mut() else {
            return body;
        };
        if offer_tools {
            object.insert("tools".to_owned(), definitions());
            object.insert("tool_choice".to_owned(), json!("auto"));
        }
        match self.structured_output {
            StructuredOutput::JsonSchema => {
                object.insert(
                    "response_format".to_owned(),
                    json!({"type": "json_schema", "json_schema": {"name": "investigation", "schema": answer_schema()}}),
                );
            }
            StructuredOutput::JsonObject => {
                object.insert(
                    "response_format".to_owned(),
                    json!({"type": "json_object", "schema": answer_schema()}),
                );
            }
            StructuredOutput::None => {}
        }
        body
    }

    fn redact_value(&self, value: &Value) -> Value {
        let text = self.client.redact(&value.to_string());
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    }
}

/// A tool call's arguments in one canonical form, so that `{"a":1, "b":2}` and `{"b":2,"a":1}`
/// are the same call.
fn normalized(arguments: &str) -> String {
    serde_json::from_str::<Value>(arguments)
        .map_or_else(|_| arguments.trim().to_owned(), |value| value.to_string())
}

/// One investigation's state.
struct Run {
    request: InvestigationRequest,
    messages: Vec<Value>,
    transcript: Vec<Value>,
    evidence: Vec<EvidenceItem>,
    usage: Usage,
}

impl Run {
    fn new(request: &InvestigationRequest) -> Run {
        let system = format!(
            "{SYSTEM_PROMPT}\nThe answer's JSON schema: {}",
            answer_schema()
        );
        let messages = vec![
            json!({"role": "system", "content": system}),
            json!({"role": "user", "content": request.task}),
        ];
        Run {
            request: request.clone(),
            transcript: vec![json!({"task": request.task, "limits": request.limits})],
            messages,
            evidence: Vec::new(),
            usage: Usage::default(),
        }
    }

    fn elapsed_ms(started: tokio::time::Instant) -> i64 {
        i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX)
    }

    fn answered(mut self, answer: String, started: tokio::time::Instant) -> Finished {
        self.usage.latency_ms = Run::elapsed_ms(started);
        self.transcript.push(json!({"answer": answer}));
        Finished {
            outcome: InvestigationOutcome::Answered {
                answer,
                evidence: self.evidence,
                usage: self.usage,
                transcript_blob: None,
            },
            transcript: Value::Array(self.transcript),
        }
    }

    fn failed(mut self, failure: Failure, detail: &str, started: tokio::time::Instant) -> Finished {
        self.usage.latency_ms = Run::elapsed_ms(started);
        self.transcript
            .push(json!({"failure": failure.as_str(), "detail": detail}));
        Finished {
            outcome: InvestigationOutcome::Failed {
                failure,
                detail: detail.to_owned(),
                usage: self.usage,
                transcript_blob: None,
            },
            transcript: Value::Array(self.transcript),
        }
    }
}

#[cfg(test)]
mod tests;
