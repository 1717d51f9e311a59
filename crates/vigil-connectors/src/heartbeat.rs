//! The dead man's switch: a JSON POST to a URL every interval (healthchecks.io, Dead Man's
//! Snitch, Cronitor, an Alertmanager-style webhook receiver), so that whoever watches the URL
//! is paged when the heartbeats stop: when vigil itself has gone silent. Errors and `Debug`
//! show only the URL's origin, since such a URL's path usually is its secret.

use std::time::Duration;

use reqwest::Url;
use serde::Serialize;

use crate::ConnectorError;
use crate::http::{Origin, excerpt, read_limited, redact_to_origin, request_error};
use crate::secret::Secret;

/// Bytes of the receiver's answer read at the most; only a refusal's start is quoted.
const ANSWER_BODY_LIMIT: usize = 16 * 1024;

/// The name errors give the receiver.
const TARGET: &str = "heartbeat";

/// POSTs heartbeats to one URL.
#[derive(Clone)]
pub struct Heartbeat {
    url: Url,
    bearer: Option<Secret>,
    timeout: Duration,
    client: reqwest::Client,
}

impl std::fmt::Debug for Heartbeat {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Heartbeat")
            .field("url", &redact_to_origin(self.url.as_str()))
            .field("bearer", &self.bearer)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Heartbeat {
    /// A heartbeat to `url`, with a bearer token if the receiver needs one, each POST taking
    /// at most `timeout`, on a client of its own.
    ///
    /// # Errors
    ///
    /// [`ConnectorError::Client`] when the HTTP client cannot be built.
    pub fn new(
        url: Url,
        bearer: Option<Secret>,
        timeout: Duration,
    ) -> Result<Self, ConnectorError> {
        Ok(Heartbeat {
            url,
            bearer,
            timeout,
            client: crate::http::client(timeout)?,
        })
    }

    /// The URL as logs and errors show it (its origin only).
    #[must_use]
    pub fn shown_url(&self) -> String {
        redact_to_origin(self.url.as_str())
    }

    /// POSTs `body` as JSON; a 2xx answer is a delivery, whatever its body.
    ///
    /// # Errors
    ///
    /// [`ConnectorError::Timeout`] or [`ConnectorError::Transport`] when no answer arrives,
    /// [`ConnectorError::Status`] (with the start of the answer, the token scrubbed) when it
    /// is not a 2xx.
    pub async fn beat(&self, body: &impl Serialize) -> Result<(), ConnectorError> {
        let shown_url = self.shown_url();
        let mut request = self
            .client
            .post(self.url.clone())
            .timeout(self.timeout)
            .json(body);
        if let Some(bearer) = &self.bearer {
            request = request.bearer_auth(bearer.expose());
        }
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
        // A refusal whose body is too large or cut off is still a refusal, quoted empty.
        let answer = read_limited(&origin, response, ANSWER_BODY_LIMIT)
            .await
            .unwrap_or_default();
        Err(ConnectorError::Status {
            target: TARGET.to_owned(),
            url: shown_url,
            status: status.as_u16(),
            excerpt: excerpt(&answer, self.bearer.as_ref().map(Secret::expose)),
        })
    }
}
