//! The HTTP exchanges a connector makes while carrying out one action or page, recorded for
//! the ledger: what was asked, of which URL, and what came back.
//!
//! Recording is opt-in per task: [`capture`] runs a future with a fresh log, and every
//! connector call inside it (a LiteLLM, Langfuse or allow-listed HTTP action, its read-back,
//! a page) appends an [`Exchange`]. Outside [`capture`] nothing is recorded and nothing is
//! copied. What is kept carries no secret:
//!
//! - the URL without user info, query or fragment (pager webhooks: only the origin, since
//!   their path is often the secret);
//! - no header at all (the credentials travel there);
//! - bodies as text, capped at [`MAX_BODY_BYTES`], with every configured secret (master key,
//!   Langfuse secret, header values) replaced by `<redacted>` and every LiteLLM key
//!   (`sk-...`) by `sk-<redacted>`.

use serde::{Deserialize, Serialize};
use std::future::Future;
use std::sync::{Arc, Mutex};
// tokio's clock, not std's: a test that pauses time controls what an exchange measures.
use tokio::time::Instant;

use crate::ConnectorError;

/// The most bytes of a request or response body kept.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// One HTTP request and its answer (or the error instead of one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exchange {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The URL, without credentials, query or fragment.
    pub url: String,
    /// The request body as sent, redacted; `None` when there was none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_body: Option<String>,
    /// The response status, when there was a response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// The response body, redacted and capped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_body: Option<String>,
    /// Whether a body was cut at [`MAX_BODY_BYTES`].
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
    /// Why there was no usable response (transport error, timeout, refused answer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// From sending the request to the end of the answer, in milliseconds.
    pub elapsed_ms: u64,
}

impl Exchange {
    /// One line for people: `POST http://gw/key/block → 200 (35 ms)`.
    #[must_use]
    pub fn summary(&self) -> String {
        let answer = match (self.status, &self.error) {
            (Some(status), _) => status.to_string(),
            (None, Some(error)) => format!("failed: {error}"),
            (None, None) => "no answer".to_owned(),
        };
        format!(
            "{} {} → {answer} ({} ms)",
            self.method, self.url, self.elapsed_ms
        )
    }
}

type Log = Arc<Mutex<Vec<Exchange>>>;

tokio::task_local! {
    static EXCHANGES: Log;
}

/// Runs `future`, recording every exchange the connectors make inside it; returns its output
/// and the exchanges in the order they were made.
pub async fn capture<F: Future>(future: F) -> (F::Output, Vec<Exchange>) {
    let log: Log = Arc::default();
    let output = EXCHANGES.scope(Arc::clone(&log), future).await;
    let exchanges = log.lock().map(|log| log.clone()).unwrap_or_default();
    (output, exchanges)
}

/// A request on its way, started by a connector just before sending.
pub(crate) struct Pending {
    method: String,
    url: String,
    request_body: Option<String>,
    truncated: bool,
    secrets: Vec<String>,
    started: Instant,
}

impl Pending {
    /// Notes `request` (not yet sent) to `shown_url`; `None` outside [`capture`].
    pub(crate) fn start(
        request: &reqwest::RequestBuilder,
        shown_url: &str,
        secrets: &[&str],
    ) -> Option<Pending> {
        if EXCHANGES.try_with(|_| ()).is_err() {
            return None;
        }
        let built = request.try_clone().and_then(|clone| clone.build().ok());
        let method = built
            .as_ref()
            .map_or_else(|| "?".to_owned(), |built| built.method().to_string());
        let secrets: Vec<String> = secrets
            .iter()
            .filter(|secret| !secret.is_empty())
            .map(|secret| (*secret).to_owned())
            .collect();
        let (request_body, truncated) = built
            .as_ref()
            .and_then(|built| built.body())
            .and_then(reqwest::Body::as_bytes)
            .map_or((None, false), |bytes| {
                let (text, truncated) = redacted(bytes, &secrets);
                (Some(text), truncated)
            });
        Some(Pending {
            method,
            url: shown_url.to_owned(),
            request_body,
            truncated,
            secrets,
            started: Instant::now(),
        })
    }

    /// Records the answer: its status and body.
    pub(crate) fn answered(self, status: u16, body: &[u8]) {
        let (text, truncated) = redacted(body, &self.secrets);
        self.record(Some(status), Some(text), truncated, None);
    }

    /// Records that no usable answer came.
    pub(crate) fn failed(self, error: &ConnectorError) {
        let message = redact_text(&error.to_string(), &self.secrets);
        self.record(None, None, false, Some(message));
    }

    fn record(
        self,
        status: Option<u16>,
        response_body: Option<String>,
        response_truncated: bool,
        error: Option<String>,
    ) {
        let exchange = Exchange {
            method: self.method,
            url: self.url,
            request_body: self.request_body,
            status,
            response_body: response_body.filter(|body| !body.is_empty()),
            truncated: self.truncated || response_truncated,
            error,
            elapsed_ms: u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX),
        };
        let _ = EXCHANGES.try_with(|log| {
            if let Ok(mut log) = log.lock() {
                log.push(exchange);
            }
        });
    }
}

/// `bytes` as text, capped at [`MAX_BODY_BYTES`] (on a character boundary), with `secrets`
/// and LiteLLM keys redacted; and whether it was cut.
fn redacted(bytes: &[u8], secrets: &[String]) -> (String, bool) {
    let truncated = bytes.len() > MAX_BODY_BYTES;
    let kept = bytes.get(..MAX_BODY_BYTES).unwrap_or(bytes);
    let mut text = String::from_utf8_lossy(kept).into_owned();
    if truncated {
        // A multi-byte character cut in two shows as U+FFFD at the end; drop it.
        while text.ends_with('\u{FFFD}') {
            text.pop();
        }
    }
    (redact_text(&text, secrets), truncated)
}

/// `text` with every secret replaced by `<redacted>` and every `sk-...` key by
/// `sk-<redacted>`.
pub(crate) fn redact_text(text: &str, secrets: &[String]) -> String {
    let mut text = secrets.iter().fold(text.to_owned(), |text, secret| {
        text.replace(secret.as_str(), "<redacted>")
    });
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(at) = rest.find("sk-") {
        let (before, from_key) = rest.split_at(at);
        out.push_str(before);
        let key_len = from_key
            .char_indices()
            .skip(3)
            .find(|(_, c)| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
            .map_or(from_key.len(), |(index, _)| index);
        out.push_str("sk-<redacted>");
        rest = from_key.get(key_len..).unwrap_or_default();
    }
    out.push_str(rest);
    text.clear();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_and_keys_are_redacted_and_bodies_capped() {
        let secrets = vec!["master-secret-123".to_owned()];
        let text = r#"{"key":"sk-batch-AbC_12-x9","auth":"master-secret-123","n":1} sk-"#;
        assert_eq!(
            redact_text(text, &secrets),
            r#"{"key":"sk-<redacted>","auth":"<redacted>","n":1} sk-<redacted>"#
        );
        let big = "é".repeat(MAX_BODY_BYTES);
        let (kept, truncated) = redacted(big.as_bytes(), &[]);
        assert!(truncated);
        assert!(kept.len() <= MAX_BODY_BYTES);
        assert!(kept.chars().all(|c| c == 'é'));
    }

    #[tokio::test]
    async fn only_calls_inside_capture_are_recorded() {
        crate::install_crypto_provider();
        let client = reqwest::Client::new();
        let request = client.post("http://127.0.0.1:9/x").body("{}");
        assert!(Pending::start(&request, "http://127.0.0.1:9/x", &[]).is_none());
        let ((), exchanges) = capture(async {
            let pending = Pending::start(&request, "http://127.0.0.1:9/x", &[]);
            if let Some(pending) = pending {
                pending.answered(204, b"");
            }
        })
        .await;
        assert_eq!(exchanges.len(), 1);
        assert_eq!(exchanges[0].method, "POST");
        assert_eq!(exchanges[0].request_body.as_deref(), Some("{}"));
        assert_eq!(exchanges[0].status, Some(204));
        assert_eq!(exchanges[0].response_body, None);
        assert!(
            exchanges[0]
                .summary()
                .starts_with("POST http://127.0.0.1:9/x → 204 (")
        );
    }
}
