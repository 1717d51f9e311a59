//! The OpenAI fake's wire format: completion objects, stream chunks, error bodies, and the
//! token estimates that fill `usage` and enforce `max_tokens`.

use serde_json::{Map, Value, json};

/// What the fake writes into `system_fingerprint`.
const FINGERPRINT: &str = "fp_vigil_fake";
/// How many characters of content or arguments one stream chunk carries.
const CHUNK_CHARS: usize = 8;

/// An assistant message the fake answers with, before any truncation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Message {
    /// A message with text content.
    Content(String),
    /// A message with one tool call.
    ToolCall { name: String, arguments: String },
}

/// A finished completion, ready to be written as one object or as a stream.
#[derive(Debug, Clone)]
pub(super) struct Completion {
    /// `chatcmpl-<n>`.
    pub(super) id: String,
    /// Unix seconds.
    pub(super) created: u64,
    /// The model the request named.
    pub(super) model: String,
    /// The message, already truncated to the request's limit.
    pub(super) message: Message,
    /// `call_<n>` when the message is a tool call.
    pub(super) call_id: String,
    /// `stop`, `tool_calls` or `length`.
    pub(super) finish_reason: &'static str,
    /// The estimate of the request's messages.
    pub(super) prompt_tokens: u64,
    /// The estimate of the (truncated) message.
    pub(super) completion_tokens: u64,
}

impl Completion {
    /// Builds a completion of `message`, truncated to `max_tokens` when it is longer.
    pub(super) fn new(
        ids: (String, String),
        created: u64,
        model: String,
        message: Message,
        prompt_tokens: u64,
        max_tokens: Option<u64>,
    ) -> Completion {
        let (id, call_id) = ids;
        let (message, truncated) = truncate(message, max_tokens);
        let finish_reason = match (&message, truncated) {
            (_, true) => "length",
            (Message::Content(_), false) => "stop",
            (Message::ToolCall { .. }, false) => "tool_calls",
        };
        let completion_tokens = estimate_tokens(message_chars(&message));
        Completion {
            id,
            created,
            model,
            message,
            call_id,
            finish_reason,
            prompt_tokens,
            completion_tokens,
        }
    }

    /// The `chat.completion` object.
    pub(super) fn to_json(&self) -> Value {
        let message = match &self.message {
            Message::Content(text) => json!({
                "role": "assistant",
                "content": text,
                "refusal": null,
                "annotations": [],
            }),
            Message::ToolCall { name, arguments } => json!({
                "role": "assistant",
                "content": null,
                "tool_calls": [{
                    "id": self.call_id,
                    "type": "function",
                    "function": { "name": name, "arguments": arguments },
                }],
                "refusal": null,
                "annotations": [],
            }),
        };
        json!({
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": [{
                "index": 0,
                "message": message,
                "logprobs": null,
                "finish_reason": self.finish_reason,
            }],
            "usage": self.usage(),
            "service_tier": "default",
            "system_fingerprint": FINGERPRINT,
        })
    }

    /// The server-sent events of a streamed answer, `data: [DONE]` included.
    pub(super) fn to_event_stream(&self, include_usage: bool) -> String {
        let mut deltas = Vec::new();
        match &self.message {
            Message::Content(text) => {
                deltas.push(json!({"role": "assistant", "content": "", "refusal": null}));
                for piece in pieces(text) {
                    deltas.push(json!({ "content": piece }));
                }
            }
            Message::ToolCall { name, arguments } => {
                deltas.push(json!({
                    "role": "assistant",
                    "content": null,
                    "tool_calls": [{
                        "index": 0,
                        "id": self.call_id,
                        "type": "function",
                        "function": { "name": name, "arguments": "" },
                    }],
                    "refusal": null,
                }));
                for piece in pieces(arguments) {
                    deltas.push(json!({
                        "tool_calls": [{ "index": 0, "function": { "arguments": piece } }],
                    }));
                }
            }
        }
        let mut events = String::new();
        for delta in deltas {
            let choice =
                json!({"index": 0, "delta": delta, "logprobs": null, "finish_reason": null});
            self.push_chunk(
                &mut events,
                vec![choice],
                include_usage.then_some(Value::Null),
            );
        }
        let last =
            json!({"index": 0, "delta": {}, "logprobs": null, "finish_reason": self.finish_reason});
        self.push_chunk(
            &mut events,
            vec![last],
            include_usage.then_some(Value::Null),
        );
        if include_usage {
            self.push_chunk(&mut events, Vec::new(), Some(self.usage()));
        }
        events.push_str("data: [DONE]\n\n");
        events
    }

    fn push_chunk(&self, events: &mut String, choices: Vec<Value>, usage: Option<Value>) {
        let mut chunk = Map::new();
        chunk.insert("id".to_owned(), json!(self.id));
        chunk.insert("object".to_owned(), json!("chat.completion.chunk"));
        chunk.insert("created".to_owned(), json!(self.created));
        chunk.insert("model".to_owned(), json!(self.model));
        chunk.insert("service_tier".to_owned(), json!("default"));
        chunk.insert("system_fingerprint".to_owned(), json!(FINGERPRINT));
        chunk.insert("choices".to_owned(), Value::Array(choices));
        if let Some(usage) = usage {
            chunk.insert("usage".to_owned(), usage);
        }
        events.push_str("data: ");
        events.push_str(&Value::Object(chunk).to_string());
        events.push_str("\n\n");
    }

    fn usage(&self) -> Value {
        json!({
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
            "prompt_tokens_details": { "cached_tokens": 0, "audio_tokens": 0 },
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        })
    }
}

/// OpenAI's error body.
pub(super) fn error_body(
    message: &str,
    kind: &str,
    param: Option<&str>,
    code: Option<&str>,
) -> Value {
    json!({ "error": { "message": message, "type": kind, "param": param, "code": code } })
}

/// The error `type` and `code` OpenAI uses with a status.
pub(super) fn error_kind(status: u16) -> (&'static str, Option<&'static str>) {
    match status {
        401 => ("invalid_request_error", Some("invalid_api_key")),
        404 => ("invalid_request_error", Some("model_not_found")),
        429 => ("requests", Some("rate_limit_exceeded")),
        500..=599 => ("server_error", None),
        _ => ("invalid_request_error", None),
    }
}

/// The estimate of a text's tokens: a quarter of its characters, rounded up.
pub(super) fn estimate_tokens(chars: usize) -> u64 {
    u64::try_from(chars.div_ceil(4)).unwrap_or(u64::MAX)
}

/// The characters of text in a request's messages: contents (plain or in text parts) and
/// the names and arguments of earlier tool calls.
pub(super) fn messages_chars(messages: &[Value]) -> usize {
    let text_chars = |value: Option<&Value>| value.and_then(Value::as_str).map_or(0, char_count);
    let mut chars = 0;
    for message in messages {
        match message.get("content") {
            Some(Value::String(text)) => chars += char_count(text),
            Some(Value::Array(parts)) => {
                chars += parts
                    .iter()
                    .map(|part| text_chars(part.get("text")))
                    .sum::<usize>();
            }
            _ => {}
        }
        for call in message
            .get("tool_calls")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let function = call.get("function");
            chars += text_chars(function.and_then(|function| function.get("name")));
            chars += text_chars(function.and_then(|function| function.get("arguments")));
        }
    }
    chars
}

fn char_count(text: &str) -> usize {
    text.chars().count()
}

fn message_chars(message: &Message) -> usize {
    match message {
        Message::Content(text) => char_count(text),
        Message::ToolCall { name, arguments } => char_count(name) + char_count(arguments),
    }
}

/// Cuts a message's text (the content, or a tool call's arguments) to `max_tokens`; says
/// whether it cut.
fn truncate(message: Message, max_tokens: Option<u64>) -> (Message, bool) {
    let Some(max_tokens) = max_tokens else {
        return (message, false);
    };
    let keep_chars = usize::try_from(max_tokens.saturating_mul(4)).unwrap_or(usize::MAX);
    let cut = |text: String| -> (String, bool) {
        if estimate_tokens(char_count(&text)) <= max_tokens {
            (text, false)
        } else {
            (text.chars().take(keep_chars).collect(), true)
        }
    };
    match message {
        Message::Content(text) => {
            let (text, truncated) = cut(text);
            (Message::Content(text), truncated)
        }
        Message::ToolCall { name, arguments } => {
            let (arguments, truncated) = cut(arguments);
            (Message::ToolCall { name, arguments }, truncated)
        }
    }
}

/// A text in stream-sized pieces, split on character boundaries.
fn pieces(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    chars
        .chunks(CHUNK_CHARS)
        .map(|piece| piece.iter().collect())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_keeps_four_characters_per_token() {
        let (message, truncated) = truncate(Message::Content("abcdefghij".to_owned()), Some(2));
        assert_eq!(message, Message::Content("abcdefgh".to_owned()));
        assert!(truncated);
        let (message, truncated) = truncate(Message::Content("abcdefgh".to_owned()), Some(2));
        assert_eq!(message, Message::Content("abcdefgh".to_owned()));
        assert!(!truncated);
    }

    #[test]
    fn pieces_respect_character_boundaries() {
        assert_eq!(pieces("ééééééééé"), vec!["éééééééé", "é"]);
        assert!(pieces("").is_empty());
    }
}
