//! Scraping a Prometheus endpoint: one bounded, timed, authenticated GET that returns the raw
//! exposition text for the core to parse.

use std::time::Duration;

use reqwest::header::{ACCEPT, CONTENT_TYPE};

use crate::ConnectorError;
use crate::http::{Origin, excerpt, read_limited, redact_url, request_error};
use crate::secret::Secret;

/// Prefer text format 0.0.4, which every exporter speaks; accept OpenMetrics and anything else.
const ACCEPT_EXPOSITION: &str =
    "text/plain;version=0.0.4;q=1.0,application/openmetrics-text;version=1.0.0;q=0.5,*/*;q=0.1";
/// Bytes of an error answer read to quote it.
const ERROR_BODY_LIMIT: usize = 4096;

/// One endpoint to scrape. `Debug` shows the URL without credentials or query.
#[derive(Clone)]
pub struct ScrapeTarget {
    /// A name for logs and errors, e.g. `litellm`.
    pub name: String,
    /// The endpoint, e.g. `http://127.0.0.1:4000/metrics/`.
    pub url: String,
    /// How long the whole scrape may take, body included.
    pub timeout: Duration,
    /// A bearer token to send, if the endpoint needs one.
    pub bearer: Option<Secret>,
    /// The largest body accepted; a larger one fails the scrape.
    pub max_body_bytes: usize,
}

impl std::fmt::Debug for ScrapeTarget {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("ScrapeTarget")
            .field("name", &self.name)
            .field("url", &redact_url(&self.url))
            .field("timeout", &self.timeout)
            .field("bearer", &self.bearer)
            .field("max_body_bytes", &self.max_body_bytes)
            .finish()
    }
}

/// What a scrape returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScrapeBody {
    /// The HTTP status, always a success.
    pub status: u16,
    /// The `Content-Type` header, if any.
    pub content_type: Option<String>,
    /// The exposition, as sent: decoding it (and reporting lines that are not UTF-8) is the
    /// parser's job, so one bad byte does not cost the whole scrape.
    pub body: Vec<u8>,
    /// How long the scrape took.
    pub elapsed: Duration,
}

/// Scrapes `target` once with `client` (see [`crate::http::client`]).
///
/// A status other than 2xx, a body over `max_body_bytes`, a body that is not UTF-8, a
/// transport error and a timeout are each an error naming the target.
pub async fn fetch(
    client: &reqwest::Client,
    target: &ScrapeTarget,
) -> Result<ScrapeBody, ConnectorError> {
    let started = tokio::time::Instant::now();
    let shown_url = redact_url(&target.url);
    let origin = Origin {
        target: &target.name,
        shown_url: &shown_url,
        timeout: target.timeout,
    };
    let mut request = client
        .get(&target.url)
        .header(ACCEPT, ACCEPT_EXPOSITION)
        .timeout(target.timeout);
    if let Some(bearer) = &target.bearer {
        request = request.bearer_auth(bearer.expose());
    }
    let response = request
        .send()
        .await
        .map_err(|error| request_error(&target.name, &shown_url, target.timeout, error))?;
    let status = response.status();
    let secret = target.bearer.as_ref().map(Secret::expose);
    if !status.is_success() {
        // A truncated or unreadable error body still makes a useful error.
        let body = read_limited(&origin, response, ERROR_BODY_LIMIT)
            .await
            .unwrap_or_default();
        return Err(ConnectorError::Status {
            target: target.name.clone(),
            url: shown_url,
            status: status.as_u16(),
            excerpt: excerpt(&body, secret),
        });
    }
    let content_type = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let body = read_limited(&origin, response, target.max_body_bytes).await?;
    Ok(ScrapeBody {
        status: status.as_u16(),
        content_type,
        body,
        elapsed: started.elapsed(),
    })
}
