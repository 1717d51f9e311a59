//! The assistant's client: one chat completion against an OpenAI-compatible API (OpenAI, a
//! LiteLLM proxy, vLLM, Ollama, llama.cpp's server), through `async-openai`, with vigil's own
//! deadline around every call.
//!
//! `async-openai` retries 429s, 5xx and connection errors with backoff and honours
//! `Retry-After` with no cap, so one call can take as long as the server says; the deadline
//! here is what bounds it. Request bodies are raw JSON (`byot`), so that the
//! `response_format` a server understands can be sent as it wants it; responses are read
//! into [`ChatTurn`], with whatever does not fit a chat completion reported as
//! [`LlmError::Protocol`].

use std::time::Duration;

use async_openai::Client;
use async_openai::config::Config;
use async_openai::error::OpenAIError;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::Value;

use crate::secret::Secret;

/// Why a call gave no chat completion.
#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    /// vigil's deadline passed (a slow model, or retries after a long `Retry-After`).
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The API answered with an error status (after the client's retries).
    #[error("the model's API answered {status}: {message}")]
    Status {
        /// The HTTP status.
        status: u16,
        /// The API's error message (redacted, cut).
        message: String,
    },
    /// The connection failed or closed without an answer.
    #[error("connection to the model's API failed: {0}")]
    Connection(String),
    /// The answer is not a chat completion.
    #[error("the model's API answered something that is not a chat completion: {0}")]
    Protocol(String),
}

/// A tool call the model asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelToolCall {
    /// Its id, to answer with.
    pub id: String,
    /// The function's name.
    pub name: String,
    /// The arguments' JSON text as the model wrote it.
    pub arguments: String,
}

/// One chat completion, read.
#[derive(Clone, Debug, PartialEq)]
pub struct ChatTurn {
    /// The assistant message's text, if any.
    pub content: Option<String>,
    /// Its tool calls, if any.
    pub tool_calls: Vec<ModelToolCall>,
    /// Why it stopped (`stop`, `tool_calls`, `length`, ...).
    pub finish_reason: String,
    /// Tokens, prompt and completion, as the API reported them (0 when it did not).
    pub tokens: u64,
    /// The response as received, for the transcript.
    pub raw: Value,
}

/// The client's configuration: base URL and optional key, and no environment variable read
/// (`async-openai`'s own config reads `OPENAI_*` from the environment).
#[derive(Clone, Debug)]
struct ApiConfig {
    api_base: String,
    api_key: SecretString,
    has_key: bool,
}

impl Config for ApiConfig {
    fn headers(&self) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if self.has_key {
            use secrecy::ExposeSecret as _;
            if let Ok(mut value) =
                HeaderValue::from_str(&format!("Bearer {}", self.api_key.expose_secret()))
            {
                value.set_sensitive(true);
                headers.insert(AUTHORIZATION, value);
            }
        }
        headers
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.api_base)
    }

    fn query(&self) -> Vec<(&str, &str)> {
        Vec::new()
    }

    fn api_base(&self) -> &str {
        &self.api_base
    }

    fn api_key(&self) -> &SecretString {
        &self.api_key
    }
}

/// A chat-completions client for one API.
#[derive(Clone)]
pub struct ChatClient {
    client: Client<ApiConfig>,
    base_url: String,
    secrets: Vec<String>,
}

impl std::fmt::Debug for ChatClient {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("ChatClient")
            .field("base_url", &crate::http::redact_url(&self.base_url))
            .finish_non_exhaustive()
    }
}

impl ChatClient {
    /// A client for the API at `base_url` (up to and including `/v1`), with an optional key,
    /// over `http` (built by [`crate::http::client`]).
    #[must_use]
    pub fn new(base_url: &str, api_key: Option<&Secret>, http: reqwest::Client) -> ChatClient {
        let base_url = base_url.trim_end_matches('/').to_owned();
        let config = ApiConfig {
            api_base: base_url.clone(),
            api_key: SecretString::from(
                api_key
                    .map(|key| key.expose().to_owned())
                    .unwrap_or_default(),
            ),
            has_key: api_key.is_some(),
        };
        let secrets = api_key
            .map(|key| vec![key.expose().to_owned()])
            .unwrap_or_default();
        ChatClient {
            client: Client::with_config(config).with_http_client(http),
            base_url,
            secrets,
        }
    }

    /// `text` with the key and any `sk-...` key redacted: for transcripts and errors.
    #[must_use]
    pub fn redact(&self, text: &str) -> String {
        crate::exchange::redact_text(text, &self.secrets)
    }

    /// Sends one chat completion request (`body` is the whole JSON body, `stream` unset) and
    /// waits for it at most `deadline`, the client's retries included.
    ///
    /// # Errors
    /// The deadline passed, an error status, a failed connection, or an answer that is not
    /// a chat completion.
    pub async fn complete(&self, body: &Value, deadline: Duration) -> Result<ChatTurn, LlmError> {
        let chat = self.client.chat();
        let call = chat.create_byot::<&Value, Value>(body);
        let raw = match tokio::time::timeout(deadline, call).await {
            Err(_) => return Err(LlmError::Timeout(deadline)),
            Ok(Err(error)) => return Err(self.error_of(error, deadline)),
            Ok(Ok(raw)) => raw,
        };
        read_turn(raw).map_err(|detail| LlmError::Protocol(self.redact(&detail)))
    }

    fn error_of(&self, error: OpenAIError, deadline: Duration) -> LlmError {
        match error {
            OpenAIError::ApiError(api) => LlmError::Status {
                status: api.status_code.as_u16(),
                message: cut(&self.redact(&api.api_error.message), 300),
            },
            OpenAIError::Reqwest(error) if error.is_timeout() => LlmError::Timeout(deadline),
            OpenAIError::Reqwest(error) => {
                if let Some(status) = error.status() {
                    LlmError::Status {
                        status: status.as_u16(),
                        message: cut(&self.redact(&error.without_url().to_string()), 300),
                    }
                } else {
                    LlmError::Connection(cut(&self.redact(&error.without_url().to_string()), 300))
                }
            }
            OpenAIError::JSONDeserialize(error, _) => {
                LlmError::Protocol(cut(&error.to_string(), 300))
            }
            other => LlmError::Protocol(cut(&self.redact(&other.to_string()), 300)),
        }
    }
}

#[derive(Deserialize)]
struct RawCompletion {
    choices: Vec<RawChoice>,
    #[serde(default)]
    usage: Option<RawUsage>,
}

#[derive(Deserialize)]
struct RawChoice {
    message: RawMessage,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct RawMessage {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<RawToolCall>>,
}

#[derive(Deserialize)]
struct RawToolCall {
    id: String,
    function: RawFunction,
}

#[derive(Deserialize)]
struct RawFunction {
    name: String,
    #[serde(default)]
    arguments: String,
}

#[derive(Deserialize)]
struct RawUsage {
    #[serde(default)]
    total_tokens: Option<u64>,
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    completion_tokens: Option<u64>,
}

/// A chat completion's first choice, or why the value is not one.
fn read_turn(raw: Value) -> Result<ChatTurn, String> {
    let completion: RawCompletion =
        serde_json::from_value(raw.clone()).map_err(|error| error.to_string())?;
    let tokens = completion.usage.map_or(0, |usage| {
        usage.total_tokens.unwrap_or_else(|| {
            usage.prompt_tokens.unwrap_or(0) + usage.completion_tokens.unwrap_or(0)
        })
    });
    let Some(choice) = completion.choices.into_iter().next() else {
        return Err("no choices".to_owned());
    };
    let tool_calls = choice
        .message
        .tool_calls
        .unwrap_or_default()
        .into_iter()
        .map(|call| ModelToolCall {
            id: call.id,
            name: call.function.name,
            arguments: call.function.arguments,
        })
        .collect();
    Ok(ChatTurn {
        content: choice.message.content.filter(|text| !text.is_empty()),
        tool_calls,
        finish_reason: choice.finish_reason.unwrap_or_default(),
        tokens,
        raw,
    })
}

fn cut(text: &str, max_chars: usize) -> String {
    text.chars().take(max_chars).collect()
}
