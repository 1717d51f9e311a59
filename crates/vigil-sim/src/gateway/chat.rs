//! `POST /chat/completions`: authenticates the virtual key, enforces blocks, budgets and rate
//! limits, answers an OpenAI `chat.completion`, and accounts tokens and spend into metrics.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::header::USER_AGENT;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::time::Instant;

use super::auth::{authenticate, blocked_key_response};
use super::errors::proxy_error;
use super::metrics::Labels;
use super::state::{Caller, Inner, ModelEntry, Shared, now_unix};
use super::teams::blocked_team_response;
use crate::prom::python_repr;

/// Completion tokens when the request names no `max_tokens`.
const DEFAULT_COMPLETION_TOKENS: u64 = 16;

/// LiteLLM's "no limit" for remaining requests and tokens: Python's `sys.maxsize` as a float.
#[expect(
    clippy::cast_precision_loss,
    reason = "LiteLLM exposes exactly this rounded value"
)]
const NO_LIMIT: f64 = i64::MAX as f64;

/// Labels every request carries before the caller is known.
pub(crate) fn request_labels(peer: SocketAddr, headers: &HeaderMap, route: &str) -> Labels {
    let user_agent = headers
        .get(USER_AGENT)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("None")
        .to_owned();
    let mut labels = Labels::default();
    labels
        .set("client_ip", peer.ip().to_string())
        .set("user_agent", user_agent)
        .set("route", route.to_owned())
        .set("requested_model", "");
    labels
}

/// Handles `POST /chat/completions` and `POST /v1/chat/completions`.
pub(crate) async fn chat_completions(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // LiteLLM reads a body it cannot parse as an empty request, then fails on the model.
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let requested_model = request
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let mut labels = request_labels(peer, &headers, uri.path());
    labels.set("requested_model", requested_model.clone());

    let mut inner = shared.lock();
    let caller = match authenticate(&shared, &inner, &headers) {
        Ok(caller) => caller,
        Err(failure) => {
            labels.set("hashed_api_key", failure.hashed_api_key.clone());
            inner.record_failure(&labels, failure.exception_class, "None");
            return failure.response();
        }
    };
    // Blocks and budgets fail inside LiteLLM's auth, whose failure hook knows only the
    // hashed key; rate limits fail later, once the key's alias, team and user are known.
    let mut auth_labels = labels.clone();
    auth_labels.set("hashed_api_key", caller_hash(&caller));
    if let Some(rejection) = check_auth_limits(&shared, &mut inner, &caller, &auth_labels) {
        return rejection;
    }
    inner.caller_labels(&caller, &mut labels);
    if let Some(end_user) = request.get("user").and_then(Value::as_str) {
        labels.set("end_user", end_user.to_owned());
    }
    if let Some(rejection) = check_rate_limits(&mut inner, &caller, &labels) {
        return rejection;
    }
    let Some(model) = shared.models.get(&requested_model) else {
        inner.record_failure(&labels, "ProxyModelNotFoundError", "400");
        // LiteLLM wraps the HTTPException detail dict, so the message is that dict's repr.
        let message = format!(
            "{{'error': '{}: Invalid model name passed in model={requested_model}. Call `/v1/models` to view available models for your key.'}}",
            uri.path()
        );
        return proxy_error(StatusCode::BAD_REQUEST, message, "None", "None");
    };
    let Some(messages) = request.get("messages").and_then(Value::as_array) else {
        inner.record_failure(&labels, "ProxyMissingRequiredParamError", "400");
        let message = format!(
            "{{'error': \"{}: Missing required parameter: 'messages'.\"}}",
            uri.path()
        );
        return proxy_error(StatusCode::BAD_REQUEST, message, "None", "None");
    };

    let prompt_tokens = prompt_tokens(messages);
    let completion_tokens = request
        .get("max_tokens")
        .or_else(|| request.get("max_completion_tokens"))
        .and_then(Value::as_u64)
        .filter(|tokens| *tokens > 0)
        .unwrap_or(DEFAULT_COMPLETION_TOKENS);
    let cost = account_success(
        &mut inner,
        &caller,
        model,
        &labels,
        prompt_tokens,
        completion_tokens,
    );
    inner.next_request_id += 1;
    let call_id = crate::sha256_hex(&format!(
        "{}-{}",
        shared.started_unix, inner.next_request_id
    ));
    drop(inner);

    completion_response(&call_id, model, prompt_tokens, completion_tokens, cost)
}

fn caller_hash(caller: &Caller) -> String {
    match caller {
        Caller::Master => "litellm_proxy_master_key".to_owned(),
        Caller::Key(token) => token.clone(),
    }
}

/// Rejects a blocked key or a key over its budget, as LiteLLM's auth checks do.
fn check_auth_limits(
    shared: &Shared,
    inner: &mut Inner,
    caller: &Caller,
    labels: &Labels,
) -> Option<Response> {
    let Caller::Key(token) = caller else {
        return None;
    };
    let record = inner.keys.get(token)?;
    let (response, exception_class, exception_status) =
        if record.is_blocked() && !shared.ignore_blocks {
            // LiteLLM raises a bare `Exception` for a blocked key: its failure hook records the
            // class `Exception` and no status.
            (blocked_key_response(), "Exception", "None")
        } else if let Some(team_id) = record
            .team_id
            .as_deref()
            .filter(|team_id| inner.teams.get(*team_id).is_some_and(|team| team.blocked))
            .filter(|_| !shared.ignore_blocks)
        {
            // A blocked team fails in `common_checks`, also with a bare `Exception`.
            (blocked_team_response(team_id), "Exception", "None")
        } else if let Some(max_budget) = record
            .max_budget
            .filter(|max_budget| record.spend >= *max_budget)
        {
            let message = format!(
                "Budget has been exceeded! Current cost: {}, Max budget: {}",
                python_repr(record.spend),
                python_repr(max_budget)
            );
            (
                proxy_error(StatusCode::BAD_REQUEST, message, "budget_exceeded", "None"),
                "BudgetExceededError",
                "400",
            )
        } else {
            return None;
        };
    inner.record_failure(labels, exception_class, exception_status);
    Some(response)
}

/// Rejects a key over its requests or tokens per minute, as LiteLLM's rate limiter does.
fn check_rate_limits(inner: &mut Inner, caller: &Caller, labels: &Labels) -> Option<Response> {
    let Caller::Key(token) = caller else {
        return None;
    };
    let record = inner.keys.get_mut(token)?;
    record.window.roll(Instant::now());
    let (limit_type, limit) = exceeded_rate_limit(record)?;
    let message = format!(
        "Rate limit exceeded for api_key: {token}. Limit type: {limit_type}. Current limit: {limit}, Remaining: 0."
    );
    inner.record_failure(labels, "HTTPException", "429");
    Some(proxy_error(
        StatusCode::TOO_MANY_REQUESTS,
        message,
        "None",
        "None",
    ))
}

fn exceeded_rate_limit(record: &super::state::KeyRecord) -> Option<(&'static str, u64)> {
    if let Some(rpm_limit) = record
        .rpm_limit
        .filter(|limit| record.window.requests >= *limit)
    {
        return Some(("requests", rpm_limit));
    }
    record
        .tpm_limit
        .filter(|limit| record.window.tokens >= *limit)
        .map(|limit| ("tokens", limit))
}

/// Prompt tokens: a quarter of the characters of every message's text, rounded up, at least one.
fn prompt_tokens(messages: &[Value]) -> u64 {
    let characters: usize = messages
        .iter()
        .map(|message| match message.get("content") {
            Some(Value::String(text)) => text.chars().count(),
            Some(Value::Array(parts)) => parts
                .iter()
                .filter_map(|part| part.get("text").and_then(Value::as_str))
                .map(|text| text.chars().count())
                .sum(),
            _ => 0,
        })
        .sum();
    u64::try_from(characters.div_ceil(4))
        .unwrap_or(u64::MAX)
        .max(1)
}

/// Accounts one successful call into the key and the metrics; returns its cost in USD.
fn account_success(
    inner: &mut Inner,
    caller: &Caller,
    model: &ModelEntry,
    caller_labels: &Labels,
    prompt_tokens: u64,
    completion_tokens: u64,
) -> f64 {
    let now = now_unix();
    #[expect(
        clippy::cast_precision_loss,
        reason = "token counts stay far below 2^52"
    )]
    let (prompt, completion) = (prompt_tokens as f64, completion_tokens as f64);
    let cost = prompt * model.input_cost_per_token + completion * model.output_cost_per_token;
    let mut labels = caller_labels.clone();
    labels
        .set("api_provider", model.provider.clone())
        .set("model", model.name.clone())
        .set("model_id", model.model_id.clone())
        .set("status_code", "200");

    let metrics = &mut inner.metrics;
    metrics.proxy_total_requests.inc(&labels, 1.0, now);
    metrics.spend.inc(&labels, cost, now);
    metrics.total_tokens.inc(&labels, prompt + completion, now);
    metrics.input_tokens.inc(&labels, prompt, now);
    metrics.output_tokens.inc(&labels, completion, now);

    let (alias, remaining_budget, max_budget, remaining_requests, remaining_tokens) = match caller {
        Caller::Master => (String::new(), f64::INFINITY, None, NO_LIMIT, NO_LIMIT),
        Caller::Key(token) => match inner.keys.get_mut(token) {
            Some(record) => {
                record.spend += cost;
                record.window.requests += 1;
                record.window.tokens += prompt_tokens + completion_tokens;
                let remaining = |limit: Option<u64>, used: u64| {
                    #[expect(clippy::cast_precision_loss, reason = "limits stay far below 2^52")]
                    let remaining =
                        limit.map_or(NO_LIMIT, |limit| limit.saturating_sub(used) as f64);
                    remaining
                };
                (
                    record.key_alias.clone().unwrap_or_default(),
                    record
                        .max_budget
                        .map_or(f64::INFINITY, |max_budget| max_budget - record.spend),
                    record.max_budget,
                    remaining(record.rpm_limit, record.window.requests),
                    remaining(record.tpm_limit, record.window.tokens),
                )
            }
            None => (String::new(), f64::INFINITY, None, NO_LIMIT, NO_LIMIT),
        },
    };
    let metrics = &mut inner.metrics;
    metrics.requests.inc(&labels, 1.0, now);
    // The budget gauges name a key without an alias with an empty alias, as LiteLLM does.
    let mut budget_labels = labels.clone();
    budget_labels.set("api_key_alias", alias);
    metrics
        .remaining_api_key_budget
        .set(&budget_labels, remaining_budget, now);
    if let Some(max_budget) = max_budget {
        metrics
            .api_key_max_budget
            .set(&budget_labels, max_budget, now);
    }
    let mut limit_labels = labels;
    // The per-model limit gauges name the requested model group, not the deployment.
    limit_labels.set(
        "model",
        caller_labels.get("requested_model").unwrap_or_default(),
    );
    metrics
        .remaining_api_key_requests_for_model
        .set(&limit_labels, remaining_requests, now);
    metrics
        .remaining_api_key_tokens_for_model
        .set(&limit_labels, remaining_tokens, now);
    cost
}

/// An OpenAI `chat.completion` object with LiteLLM's response headers.
fn completion_response(
    call_id: &str,
    model: &ModelEntry,
    prompt_tokens: u64,
    completion_tokens: u64,
    cost: f64,
) -> Response {
    let id: String = call_id.chars().take(29).collect();
    #[expect(
        clippy::cast_possible_truncation,
        reason = "whole Unix seconds fit in i64"
    )]
    let created = now_unix() as i64;
    let body = json!({
        "id": format!("chatcmpl-{id}"),
        "created": created,
        "model": model.name,
        "object": "chat.completion",
        "system_fingerprint": null,
        "choices": [{
            "finish_reason": "length",
            "index": 0,
            "message": {
                "content": "This is a simulated reply from vigil-sim.",
                "role": "assistant",
                "tool_calls": null,
                "function_call": null,
            },
        }],
        "usage": {
            "completion_tokens": completion_tokens,
            "prompt_tokens": prompt_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "completion_tokens_details": null,
            "prompt_tokens_details": null,
        },
    });
    let mut response = (StatusCode::OK, Json(body)).into_response();
    let headers = response.headers_mut();
    for (name, value) in [
        ("x-litellm-call-id", call_id.to_owned()),
        ("x-litellm-model-id", model.model_id.clone()),
        ("x-litellm-response-cost", python_repr(cost)),
        ("x-litellm-version", "1.106.2".to_owned()),
    ] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompt_tokens_are_a_quarter_of_the_characters_rounded_up() {
        let messages = vec![json!({"role": "user", "content": "abcde"})];
        assert_eq!(prompt_tokens(&messages), 2);
        let parts = vec![json!({"role": "user", "content": [{"type": "text", "text": "abcd"}]})];
        assert_eq!(prompt_tokens(&parts), 1);
        assert_eq!(prompt_tokens(&[]), 1);
    }
}
