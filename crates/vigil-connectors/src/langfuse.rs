//! A client for Langfuse's public prompt API: read a prompt version and move labels between
//! versions, which is how a prompt rollback is done (move `production` to an earlier version).

use std::time::Duration;

use serde_json::Value;

use crate::ConnectorError;
use crate::http::{Origin, excerpt, redact_url, scrub, send_and_read};
use crate::secret::Secret;

/// The name Langfuse calls go by in errors.
const TARGET: &str = "langfuse api";
/// The largest answer read; a prompt with its config is rarely more than a few kilobytes.
const MAX_ANSWER_BYTES: usize = 4 * 1024 * 1024;
/// Characters of Langfuse's message kept in an error.
const MESSAGE_CHARS: usize = 500;
/// How long one call may take unless [`LangfuseClient::with_timeout`] says otherwise.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// One version of a prompt, as Langfuse reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromptVersion {
    /// The prompt's name, which may contain `/` (folders).
    pub name: String,
    /// The version number, from 1.
    pub version: u32,
    /// The version's labels. A label is on at most one version of a prompt; Langfuse keeps
    /// `latest` on the newest version itself.
    pub labels: Vec<String>,
}

impl PromptVersion {
    /// Whether the version carries `label`.
    pub fn has_label(&self, label: &str) -> bool {
        self.labels.iter().any(|own| own == label)
    }
}

/// A client for one Langfuse project's public API, with the project's API key pair.
#[derive(Clone)]
pub struct LangfuseClient {
    base_url: String,
    public_key: String,
    secret_key: Secret,
    client: reqwest::Client,
    timeout: Duration,
}

impl std::fmt::Debug for LangfuseClient {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("LangfuseClient")
            .field("base_url", &redact_url(&self.base_url))
            .field("public_key", &self.public_key)
            .field("secret_key", &self.secret_key)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl LangfuseClient {
    /// A client for the Langfuse at `base_url` (e.g. `https://cloud.langfuse.com`), calling
    /// with HTTP Basic auth (the public key as user, the secret key as password); each call
    /// may take ten seconds.
    pub fn new(
        base_url: impl Into<String>,
        public_key: String,
        secret_key: Secret,
        client: reqwest::Client,
    ) -> Self {
        let base_url = base_url.into().trim_end_matches('/').to_owned();
        Self {
            base_url,
            public_key,
            secret_key,
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

    /// `GET /api/public/v2/prompts/{name}`: the version with `label`, or `version`, or else
    /// the one labelled `production`. Langfuse refuses both at once (http 400).
    pub async fn prompt(
        &self,
        name: &str,
        label: Option<&str>,
        version: Option<u32>,
    ) -> Result<PromptVersion, ConnectorError> {
        let mut url = self.prompt_url(&[name])?;
        {
            let mut query = url.query_pairs_mut();
            if let Some(label) = label {
                query.append_pair("label", label);
            }
            if let Some(version) = version {
                query.append_pair("version", &version.to_string());
            }
        }
        let request = self.client.get(url.clone());
        let answer = self.send("prompt", url.as_str(), request).await?;
        self.prompt_version("prompt", &answer)
    }

    /// `PATCH /api/public/v2/prompts/{name}/versions/{version}` with `{"newLabels": [...]}`:
    /// adds `labels` to the version and returns it as updated.
    ///
    /// Langfuse moves each label: a version that had it loses it. It keeps the version's
    /// other labels (this call never removes a label from the version it names), and it
    /// refuses `latest` (http 400), which it manages itself. Moving `production` to an
    /// earlier version rolls the prompt back.
    pub async fn set_labels(
        &self,
        name: &str,
        version: u32,
        labels: &[String],
    ) -> Result<PromptVersion, ConnectorError> {
        let url = self.prompt_url(&[name, "versions", &version.to_string()])?;
        let request = self
            .client
            .patch(url.clone())
            .json(&serde_json::json!({ "newLabels": labels }));
        let answer = self.send("set_labels", url.as_str(), request).await?;
        self.prompt_version("set_labels", &answer)
    }

    /// `{base}/api/public/v2/prompts/` followed by `segments`, each percent-encoded as one
    /// path segment, so that a `/` in a prompt name stays part of the name.
    fn prompt_url(&self, segments: &[&str]) -> Result<reqwest::Url, ConnectorError> {
        let invalid = || ConnectorError::InvalidUrl {
            target: TARGET.to_owned(),
        };
        let mut url = reqwest::Url::parse(&self.base_url).map_err(|_| invalid())?;
        url.path_segments_mut()
            .map_err(|()| invalid())?
            .pop_if_empty()
            .extend(["api", "public", "v2", "prompts"])
            .extend(segments);
        Ok(url)
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
            .basic_auth(&self.public_key, Some(self.secret_key.expose()))
            .timeout(self.timeout);
        let (status, body) = send_and_read(
            request,
            &origin,
            MAX_ANSWER_BYTES,
            &[self.secret_key.expose()],
        )
        .await?;
        let secret = Some(self.secret_key.expose());
        if !status.is_success() {
            return Err(ConnectorError::Langfuse {
                operation,
                status: status.as_u16(),
                message: langfuse_message(&body, secret),
            });
        }
        serde_json::from_slice(&body).map_err(|error| ConnectorError::Decode {
            target: TARGET.to_owned(),
            url: shown_url.clone(),
            detail: format!("{error}: {}", excerpt(&body, secret)),
        })
    }

    fn prompt_version(
        &self,
        operation: &'static str,
        answer: &Value,
    ) -> Result<PromptVersion, ConnectorError> {
        let name = answer.get("name").and_then(Value::as_str);
        let version = answer
            .get("version")
            .and_then(Value::as_u64)
            .and_then(|version| u32::try_from(version).ok());
        let labels = answer.get("labels").and_then(Value::as_array);
        let (Some(name), Some(version), Some(labels)) = (name, version, labels) else {
            return Err(ConnectorError::Decode {
                target: TARGET.to_owned(),
                url: redact_url(&self.base_url),
                detail: format!(
                    "`{operation}` did not answer with a prompt (name, version, labels)"
                ),
            });
        };
        Ok(PromptVersion {
            name: name.to_owned(),
            version,
            labels: labels
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
        })
    }
}

/// The message in a Langfuse error answer: `{"message", "error"}`, where `error` is the
/// error class or, for a request that failed validation, zod's list of issues; else the
/// start of the body.
fn langfuse_message(body: &[u8], secret: Option<&str>) -> String {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let message = parsed.as_ref().and_then(|parsed| {
        let message = parsed.get("message").and_then(Value::as_str)?;
        match parsed.get("error") {
            Some(Value::Array(issues)) if !issues.is_empty() => {
                let issues: Vec<String> = issues.iter().map(issue_text).collect();
                Some(format!("{message}: {}", issues.join("; ")))
            }
            _ => Some(message.to_owned()),
        }
    });
    match message {
        // Scrub before cutting, so that a cut cannot leave the start of the secret behind.
        Some(message) => scrub(&message, secret)
            .chars()
            .take(MESSAGE_CHARS)
            .collect(),
        None => excerpt(body, secret),
    }
}

/// One zod issue as `newLabels: Label 'latest' is ...`.
fn issue_text(issue: &Value) -> String {
    let path = issue
        .get("path")
        .and_then(Value::as_array)
        .map(|parts| {
            parts
                .iter()
                .map(|part| match part {
                    Value::String(text) => text.clone(),
                    other => other.to_string(),
                })
                .collect::<Vec<_>>()
                .join(".")
        })
        .unwrap_or_default();
    let message = issue
        .get("message")
        .and_then(Value::as_str)
        .map_or_else(|| issue.to_string(), str::to_owned);
    if path.is_empty() {
        message
    } else {
        format!("{path}: {message}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_read_from_every_langfuse_error_shape() {
        let not_found = br#"{"message": "Prompt not found: 'a/b' with label 'production'", "error": "LangfuseNotFoundError"}"#;
        assert_eq!(
            langfuse_message(not_found, None),
            "Prompt not found: 'a/b' with label 'production'"
        );
        let unauthorized = br#"{"message": "Invalid credentials. Confirm that you've configured the correct host."}"#;
        assert_eq!(
            langfuse_message(unauthorized, None),
            "Invalid credentials. Confirm that you've configured the correct host."
        );
        let zod = br#"{"message": "Invalid request data", "error": [{"code": "custom", "path": ["newLabels"], "message": "Label 'latest' is always assigned to the latest prompt version"}]}"#;
        assert_eq!(
            langfuse_message(zod, None),
            "Invalid request data: newLabels: Label 'latest' is always assigned to the latest prompt version"
        );
        assert_eq!(langfuse_message(b"Invalid JSON\n", None), "Invalid JSON");
    }

    #[test]
    fn the_secret_key_is_scrubbed_from_messages() {
        let body = br#"{"message": "bad key sk-lf-123", "error": "UnauthorizedError"}"#;
        assert_eq!(
            langfuse_message(body, Some("sk-lf-123")),
            "bad key <redacted>"
        );
    }

    #[test]
    fn prompt_names_with_slashes_are_one_path_segment() {
        crate::install_crypto_provider();
        let client = LangfuseClient::new(
            "http://127.0.0.1:3000/",
            "pk-lf-1".to_owned(),
            Secret::new("sk-lf-1"),
            reqwest::Client::new(),
        );
        let url = client
            .prompt_url(&["team/summarize v2", "versions", "3"])
            .map(String::from);
        assert_eq!(
            url.ok().as_deref(),
            Some("http://127.0.0.1:3000/api/public/v2/prompts/team%2Fsummarize%20v2/versions/3")
        );
    }
}
