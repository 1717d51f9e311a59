//! A webhook pager: posts a page as JSON and retries briefly when the receiver is down.

use std::time::Duration;

use serde_json::Value;

use crate::ConnectorError;
use crate::http::{Origin, excerpt, read_limited, redact_to_origin, request_error};
use crate::secret::Secret;

/// The name pages go by in errors.
const TARGET: &str = "pager";
/// Attempts per page, the first included.
const MAX_ATTEMPTS: u32 = 3;
/// The wait before the second attempt; it doubles before each further one.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// Bytes of an error answer read to quote it.
const ERROR_BODY_LIMIT: usize = 4096;
/// How long one attempt may take unless [`WebhookPager::with_timeout`] says otherwise.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Sends pages to one webhook URL. Errors and `Debug` show only the URL's origin, since a
/// webhook's path often is its secret.
#[derive(Clone)]
pub struct WebhookPager {
    url: String,
    bearer: Option<Secret>,
    client: reqwest::Client,
    timeout: Duration,
}

impl std::fmt::Debug for WebhookPager {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("WebhookPager")
            .field("url", &redact_to_origin(&self.url))
            .field("bearer", &self.bearer)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl WebhookPager {
    /// A pager posting to `url`, with a bearer token if the receiver needs one; each attempt
    /// may take five seconds.
    pub fn new(url: impl Into<String>, bearer: Option<Secret>, client: reqwest::Client) -> Self {
        Self {
            url: url.into(),
            bearer,
            client,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// The same pager with another limit on how long one attempt may take.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Posts `page`, up to three times with a short backoff, retrying only transport errors,
    /// timeouts and 5xx answers; a 4xx is returned at once, since resending cannot fix it.
    pub async fn send(&self, page: &Value) -> Result<(), ConnectorError> {
        let mut attempt = 1;
        let mut backoff = FIRST_BACKOFF;
        // INVARIANT: the loop returns by attempt `MAX_ATTEMPTS` at the latest.
        loop {
            let error = match self.attempt(page).await {
                Ok(()) => return Ok(()),
                Err(error) => error,
            };
            if !is_retryable(&error) {
                return Err(error);
            }
            if attempt >= MAX_ATTEMPTS {
                return Err(ConnectorError::PagerGaveUp {
                    url: redact_to_origin(&self.url),
                    attempts: attempt,
                    last: Box::new(error),
                });
            }
            tracing::warn!(attempt, %error, "page not delivered, retrying");
            tokio::time::sleep(backoff).await;
            backoff = backoff.saturating_mul(2);
            attempt += 1;
        }
    }

    async fn attempt(&self, page: &Value) -> Result<(), ConnectorError> {
        let mut request = self.client.post(&self.url).json(page).timeout(self.timeout);
        if let Some(bearer) = &self.bearer {
            request = request.bearer_auth(bearer.expose());
        }
        let shown_url = redact_to_origin(&self.url);
        let response = request
            .send()
            .await
            .map_err(|error| request_error(TARGET, &shown_url, self.timeout, error))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let origin = Origin {
            target: TARGET,
            shown_url: &shown_url,
            timeout: self.timeout,
        };
        let body = read_limited(&origin, response, ERROR_BODY_LIMIT)
            .await
            .unwrap_or_default();
        Err(ConnectorError::Status {
            target: TARGET.to_owned(),
            url: shown_url,
            status: status.as_u16(),
            excerpt: excerpt(&body, self.bearer.as_ref().map(Secret::expose)),
        })
    }
}

fn is_retryable(error: &ConnectorError) -> bool {
    match error {
        ConnectorError::Transport { .. } | ConnectorError::Timeout { .. } => true,
        ConnectorError::Status { status, .. } => *status >= 500,
        _ => false,
    }
}
