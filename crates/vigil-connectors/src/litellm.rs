//! A client for LiteLLM's admin API: block, unblock, update and inspect a virtual key, block
//! and unblock a team, and set or remove a model's fallbacks, with LiteLLM's own error
//! messages carried into errors.

use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use crate::ConnectorError;
use crate::http::{Origin, excerpt, redact_url, scrub, send_and_read};
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
#[derive(Debug, Clone, PartialEq)]
pub struct KeyState {
    /// The key's hash, LiteLLM's `token` and the metrics' `hashed_api_key`.
    pub token: String,
    /// The key's alias, if any.
    pub key_alias: Option<String>,
    /// Whether the key is blocked; LiteLLM's `null` reads as not blocked.
    pub blocked: bool,
    /// The key's team, if any.
    pub team_id: Option<String>,
    /// The key's budget in USD; `None` for no budget.
    pub max_budget: Option<f64>,
    /// The key's limit of requests per minute; `None` for no limit.
    pub rpm_limit: Option<f64>,
    /// The key's limit of tokens per minute; `None` for no limit.
    pub tpm_limit: Option<f64>,
}

/// A new value for one of a key's limits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Limit {
    /// No limit: sent as `null`, which LiteLLM 1.106 stores (it keeps fields set explicitly).
    Unlimited,
    /// This limit; a whole number is sent without a fraction, as the integer limits need.
    At(f64),
}

impl Serialize for Limit {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // 2^53: every whole number below it is exact as both f64 and u64.
        const EXACT: f64 = 9_007_199_254_740_992.0;
        match *self {
            Self::Unlimited => serializer.serialize_none(),
            Self::At(value) if value.fract() == 0.0 && (0.0..EXACT).contains(&value) => {
                #[expect(
                    clippy::cast_possible_truncation,
                    clippy::cast_sign_loss,
                    reason = "a whole, non-negative value below 2^53 converts exactly"
                )]
                let whole = value as u64;
                serializer.serialize_u64(whole)
            }
            Self::At(value) => serializer.serialize_f64(value),
        }
    }
}

/// A change to a key through `/key/update`. Fields left `None` are not sent, so not changed;
/// [`Limit::Unlimited`] removes a limit.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct KeyUpdate {
    /// The key to change: a raw `sk-` key or its hash.
    pub key: String,
    /// A new budget in USD, or none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_budget: Option<Limit>,
    /// A new limit of requests per minute, or none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rpm_limit: Option<Limit>,
    /// A new limit of tokens per minute, or none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tpm_limit: Option<Limit>,
    /// Block or unblock the key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocked: Option<bool>,
}

/// A team as `/team/block` and `/team/unblock` report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeamState {
    /// The team's id.
    pub team_id: String,
    /// Whether the team is blocked: every key of a blocked team is refused.
    pub blocked: bool,
}

/// A model's general fallbacks, as `/fallback` reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fallbacks {
    /// The model whose failures fall back.
    pub model: String,
    /// The models tried in turn when it fails; empty when it has none.
    pub fallback_models: Vec<String>,
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

    /// `POST /team/block`: refuses every key of the team until it is unblocked.
    pub async fn block_team(&self, team_id: &str) -> Result<TeamState, ConnectorError> {
        self.set_team_blocked("block_team", "/team/block", team_id)
            .await
    }

    /// `POST /team/unblock`: lets the team's keys make requests again.
    pub async fn unblock_team(&self, team_id: &str) -> Result<TeamState, ConnectorError> {
        self.set_team_blocked("unblock_team", "/team/unblock", team_id)
            .await
    }

    async fn set_team_blocked(
        &self,
        operation: &'static str,
        path: &str,
        team_id: &str,
    ) -> Result<TeamState, ConnectorError> {
        let answer = self
            .post(operation, path, &serde_json::json!({ "team_id": team_id }))
            .await?;
        // LiteLLM answers with the updated `LiteLLM_TeamTable` row.
        let blocked = answer.get("blocked").and_then(Value::as_bool);
        let Some(blocked) = blocked else {
            return Err(self.not_an_object(operation, "team"));
        };
        Ok(TeamState {
            team_id: answer
                .get("team_id")
                .and_then(Value::as_str)
                .unwrap_or(team_id)
                .to_owned(),
            blocked,
        })
    }

    /// `POST /fallback`: makes `fallback_models` the model's general fallbacks, replacing
    /// any it had. LiteLLM refuses an empty list, duplicates, unknown models and the model
    /// itself; it needs `STORE_MODEL_IN_DB=True`.
    pub async fn set_fallbacks(
        &self,
        model: &str,
        fallback_models: &[String],
    ) -> Result<Fallbacks, ConnectorError> {
        let body = serde_json::json!({
            "model": model,
            "fallback_models": fallback_models,
            "fallback_type": "general",
        });
        let answer = self.post("set_fallbacks", "/fallback", &body).await?;
        self.fallbacks_from("set_fallbacks", &answer, model)
    }

    /// `GET /fallback/{model}`: the model's general fallbacks, empty when it has none.
    ///
    /// LiteLLM routes `{model}` as one path segment, so a model whose name holds `/` cannot
    /// be read or removed this way (it answers 404 `Not Found`).
    pub async fn fallbacks(&self, model: &str) -> Result<Fallbacks, ConnectorError> {
        let url = self.url_with_segments(&["fallback", model])?;
        let request = self.client.get(url.clone());
        match self.send("fallbacks", url.as_str(), request).await {
            Ok(answer) => self.fallbacks_from("fallbacks", &answer, model),
            Err(error) if is_no_fallbacks(&error) => Ok(Fallbacks {
                model: model.to_owned(),
                fallback_models: Vec::new(),
            }),
            Err(error) => Err(error),
        }
    }

    /// `DELETE /fallback/{model}`: removes the model's general fallbacks. Removing fallbacks
    /// that are not there is not an error, so that a compensation can be retried.
    pub async fn remove_fallbacks(&self, model: &str) -> Result<(), ConnectorError> {
        let url = self.url_with_segments(&["fallback", model])?;
        let request = self.client.delete(url.clone());
        match self.send("remove_fallbacks", url.as_str(), request).await {
            Ok(_) => Ok(()),
            Err(error) if is_no_fallbacks(&error) => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// The compensation of [`AdminClient::set_fallbacks`]: puts back the fallbacks read
    /// before the change (with [`AdminClient::fallbacks`]), removing them if there were none.
    pub async fn restore_fallbacks(&self, previous: &Fallbacks) -> Result<(), ConnectorError> {
        if previous.fallback_models.is_empty() {
            self.remove_fallbacks(&previous.model).await
        } else {
            self.set_fallbacks(&previous.model, &previous.fallback_models)
                .await
                .map(|_| ())
        }
    }

    fn fallbacks_from(
        &self,
        operation: &'static str,
        answer: &Value,
        model: &str,
    ) -> Result<Fallbacks, ConnectorError> {
        let listed = answer.get("fallback_models").and_then(Value::as_array);
        let Some(listed) = listed else {
            return Err(self.not_an_object(operation, "fallback"));
        };
        Ok(Fallbacks {
            model: answer
                .get("model")
                .and_then(Value::as_str)
                .unwrap_or(model)
                .to_owned(),
            fallback_models: listed
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
        })
    }

    /// The base URL with `segments` appended, each percent-encoded as one path segment.
    fn url_with_segments(&self, segments: &[&str]) -> Result<reqwest::Url, ConnectorError> {
        let invalid = || ConnectorError::InvalidUrl {
            target: TARGET.to_owned(),
        };
        let mut url = reqwest::Url::parse(&self.base_url).map_err(|_| invalid())?;
        url.path_segments_mut()
            .map_err(|()| invalid())?
            .pop_if_empty()
            .extend(segments);
        Ok(url)
    }

    fn not_an_object(&self, operation: &'static str, what: &str) -> ConnectorError {
        ConnectorError::Decode {
            target: TARGET.to_owned(),
            url: redact_url(&self.base_url),
            detail: format!("`{operation}` did not answer with a {what} object"),
        }
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
        let origin = Origin {
            target: TARGET,
            shown_url: &shown_url,
            timeout: self.timeout,
        };
        let request = request
            .bearer_auth(self.master_key.expose())
            .timeout(self.timeout);
        let (status, body) = send_and_read(
            request,
            &origin,
            MAX_ANSWER_BYTES,
            &[self.master_key.expose()],
        )
        .await?;
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
            max_budget: object.get("max_budget").and_then(Value::as_f64),
            rpm_limit: object.get("rpm_limit").and_then(Value::as_f64),
            tpm_limit: object.get("tpm_limit").and_then(Value::as_f64),
        })
    }
}

/// Whether LiteLLM said that a model has no fallbacks (rather than that the route is missing).
fn is_no_fallbacks(error: &ConnectorError) -> bool {
    matches!(error, ConnectorError::Api { status: 404, message, .. }
        if message.starts_with("No general fallbacks configured"))
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
            max_budget: Some(Limit::At(0.5)),
            rpm_limit: Some(Limit::At(10.0)),
            tpm_limit: Some(Limit::Unlimited),
            ..KeyUpdate::default()
        };
        let sent = serde_json::to_value(&update).ok();
        assert_eq!(
            sent,
            Some(
                serde_json::json!({"key": "abc", "max_budget": 0.5, "rpm_limit": 10, "tpm_limit": null})
            )
        );
    }
}
