//! A client for LiteLLM's key-management admin API: block, unblock, update and inspect a
//! virtual key, with LiteLLM's own error messages carried into errors.

use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use crate::ConnectorError;
use crate::http::{Origin, excerpt, read_limited, redact_url, request_error, scrub};
use crate::secret::Secret;

/// The name admin calls go by in errors.
const TARGET: &str = "litellm admin api";
/// The largest admin answer read; key objects are a few kilobytes.
const MAX_ANSWER_BYTES: usize = 1024 * 1024;
/// Characters of LiteLLM's message kept in an error.
const MESSAGE_CHARS: usize = 500;
/// How long one admin call may take unless [`AdminClient::with_timeout`] says otherwise.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// A virtual key as the admin API reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyState {
    /// The key's hash, LiteLLM's `token` and the metrics' `hashed_api_key`.
    pub token: String,
    /// The key's alias, if any.
    pub key_alias: Option<String>,
    /// Whether the key is blocked; LiteLLM's `null` reads as not blocked.
    pub blocked: bool,
    /// The key's team, if any.
    pub team_id: Option<String>,
}

/// A change to a key through `/key/update`. Fields left `None` are not sent, so not changed.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct KeyUpdate {
    /// The key to change: a raw `sk-` key or its hash.
    pub key: String,
    /// A new budget in USD.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_budget: Option<f64>,
    /// A new limit of requests per minute.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rpm_limit: Option<u64>,
    /// A new limit of tokens per minute.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tpm_limit: Option<u64>,
    /// Block or unblock the key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocked: Option<bool>,
}

/// A client for one LiteLLM proxy's admin API, authenticated with its master key.
#[derive(Clone)]
pub struct AdminClient {
    base_url: String,
    master_key: Secret,
    client: reqwest::Client,
    timeout: Duration,
}

impl std::fmt::Debug for AdminClient {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("AdminClient")
            .field("base_url", &redact_url(&self.base_url))
            .field("master_key", &self.master_key)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl AdminClient {
    /// A client for the proxy at `base_url` (e.g. `http://127.0.0.1:4000`); each call may
    /// take ten seconds.
    pub fn new(base_url: impl Into<String>, master_key: Secret, client: reqwest::Client) -> Self {
        let base_url = base_url.into().trim_end_matches('/').to_owned();
        Self {
            base_url,
            master_key,
            client,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// The same client with another limit on how long one call may take.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// `POST /key/block`: stops the key from making requests. Takes a raw key or its hash.
    pub async fn block_key(&self, key: &str) -> Result<KeyState, ConnectorError> {
        let answer = self
            .post(
                "block_key",
                "/key/block",
                &serde_json::json!({ "key": key }),
            )
            .await?;
        self.key_state("block_key", &answer, key)
    }

    /// `POST /key/unblock`: lets the key make requests again. Takes a raw key or its hash.
    pub async fn unblock_key(&self, key: &str) -> Result<KeyState, ConnectorError> {
        let answer = self
            .post(
                "unblock_key",
                "/key/unblock",
                &serde_json::json!({ "key": key }),
            )
            .await?;
        self.key_state("unblock_key", &answer, key)
    }

    /// `POST /key/update`: changes a key's budget, limits or block.
    pub async fn update_key(&self, update: &KeyUpdate) -> Result<KeyState, ConnectorError> {
        let answer = self.post("update_key", "/key/update", update).await?;
        self.key_state("update_key", &answer, &update.key)
    }

    /// `GET /key/info?key=...`: reads a key. Takes a raw key or its hash.
    pub async fn key_info(&self, key: &str) -> Result<KeyState, ConnectorError> {
        let base = format!("{}/key/info", self.base_url);
        let mut url = reqwest::Url::parse(&base).map_err(|_| ConnectorError::InvalidUrl {
            target: TARGET.to_owned(),
        })?;
        url.query_pairs_mut().append_pair("key", key);
        let request = self.client.get(url.clone());
        let answer = self.send("key_info", url.as_str(), request).await?;
        // LiteLLM answers `{"key": ..., "info": {...}}` and drops the token from `info`.
        let info = answer.get("info").unwrap_or(&Value::Null);
        self.key_state("key_info", info, key)
    }

    async fn post(
        &self,
        operation: &'static str,
        path: &str,
        body: &impl Serialize,
    ) -> Result<Value, ConnectorError> {
        let url = format!("{}{path}", self.base_url);
        let request = self.client.post(&url).json(body);
        self.send(operation, &url, request).await
    }

    async fn send(
        &self,
        operation: &'static str,
        url: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<Value, ConnectorError> {
        let shown_url = redact_url(url);
        let response = request
            .bearer_auth(self.master_key.expose())
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|error| request_error(TARGET, &shown_url, self.timeout, error))?;
        let status = response.status();
        let origin = Origin {
            target: TARGET,
            shown_url: &shown_url,
            timeout: self.timeout,
        };
        let body = read_limited(&origin, response, MAX_ANSWER_BYTES).await?;
        if !status.is_success() {
            return Err(ConnectorError::Api {
                operation,
                status: status.as_u16(),
                message: litellm_message(&body, Some(self.master_key.expose())),
            });
        }
        serde_json::from_slice(&body).map_err(|error| ConnectorError::Decode {
            target: TARGET.to_owned(),
            url: shown_url.clone(),
            detail: format!(
                "{error}: {}",
                excerpt(&body, Some(self.master_key.expose()))
            ),
        })
    }

    fn key_state(
        &self,
        operation: &'static str,
        object: &Value,
        requested_key: &str,
    ) -> Result<KeyState, ConnectorError> {
        let text = |field: &str| object.get(field).and_then(Value::as_str).map(str::to_owned);
        if !object.is_object() {
            return Err(ConnectorError::Decode {
                target: TARGET.to_owned(),
                url: redact_url(&self.base_url),
                detail: format!("`{operation}` did not answer with a key object"),
            });
        }
        Ok(KeyState {
            token: text("token").unwrap_or_else(|| hashed_key(requested_key)),
            key_alias: text("key_alias"),
            blocked: object
                .get("blocked")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            team_id: text("team_id"),
        })
    }
}

/// LiteLLM's hash of a key: the SHA-256 hex of a raw `sk-` key; anything else is a hash already.
fn hashed_key(key: &str) -> String {
    use sha2::Digest as _;
    if key.starts_with("sk-") {
        hex::encode(sha2::Sha256::digest(key.as_bytes()))
    } else {
        key.to_owned()
    }
}

/// The message in a LiteLLM error answer: `{"error": {"message"}}` from a `ProxyException`,
/// `{"detail": ...}` from FastAPI, a bare JSON string, or else the start of the body.
fn litellm_message(body: &[u8], secret: Option<&str>) -> String {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let message = match &parsed {
        Some(Value::Object(fields)) => match (fields.get("error"), fields.get("detail")) {
            (Some(Value::Object(error)), _) => error.get("message").map(value_text),
            (Some(Value::String(error)), _) => Some(error.clone()),
            (_, Some(Value::Array(details))) => Some(
                details
                    .iter()
                    .map(detail_text)
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
            (_, Some(Value::Object(detail))) => Some(
                detail
                    .get("error")
                    .map_or_else(|| Value::Object(detail.clone()).to_string(), value_text),
            ),
            (_, Some(detail)) => Some(value_text(detail)),
            _ => None,
        },
        Some(Value::String(text)) => Some(text.clone()),
        _ => None,
    };
    match message {
        // Scrub before cutting, so that a cut cannot leave the start of the secret behind.
        Some(message) => scrub(&message, secret)
            .chars()
            .take(MESSAGE_CHARS)
            .collect(),
        None => excerpt(body, secret),
    }
}

fn value_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// One FastAPI validation detail as `body.key: Field required`.
fn detail_text(detail: &Value) -> String {
    let location = detail
        .get("loc")
        .and_then(Value::as_array)
        .map(|parts| parts.iter().map(value_text).collect::<Vec<_>>().join("."))
        .unwrap_or_default();
    let message = detail
        .get("msg")
        .map(value_text)
        .unwrap_or_else(|| detail.to_string());
    if location.is_empty() {
        message
    } else {
        format!("{location}: {message}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_read_from_every_litellm_error_shape() {
        let proxy = br#"{"error": {"message": "Key sk-x not found", "type": "bad_request_error", "param": "key", "code": "404"}}"#;
        assert_eq!(litellm_message(proxy, None), "Key sk-x not found");
        let fastapi = br#"{"detail": [{"type": "missing", "loc": ["body", "key"], "msg": "Field required", "input": {}}]}"#;
        assert_eq!(litellm_message(fastapi, None), "body.key: Field required");
        let detail_dict = br#"{"detail": {"error": "Team not found"}}"#;
        assert_eq!(litellm_message(detail_dict, None), "Team not found");
        let detail_text = br#"{"detail": "Not Found"}"#;
        assert_eq!(litellm_message(detail_text, None), "Not Found");
        let bare = br#""Unauthorized access to metrics endpoint""#;
        assert_eq!(
            litellm_message(bare, None),
            "Unauthorized access to metrics endpoint"
        );
        assert_eq!(
            litellm_message(b"Internal Server Error\n", None),
            "Internal Server Error"
        );
    }

    #[test]
    fn the_master_key_is_scrubbed_from_messages() {
        let body = br#"{"error": {"message": "Received API Key = sk-master-1, bad"}}"#;
        assert_eq!(
            litellm_message(body, Some("sk-master-1")),
            "Received API Key = <redacted>, bad"
        );
    }

    #[test]
    fn updates_send_only_what_changes() {
        let update = KeyUpdate {
            key: "abc".to_owned(),
            max_budget: Some(0.0),
            ..KeyUpdate::default()
        };
        let sent = serde_json::to_value(&update).ok();
        assert_eq!(
            sent,
            Some(serde_json::json!({"key": "abc", "max_budget": 0.0}))
        );
    }
}
