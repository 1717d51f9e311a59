//! Publishing the ledger's signed checkpoints to a webhook: one JSON POST per checkpoint, so
//! that a copy survives the database. Errors and `Debug` show only the URL's origin, since a
//! webhook's path often is its secret.

use std::time::Duration;

use reqwest::Url;
use serde::Serialize;

use crate::ConnectorError;
use crate::http::{Origin, excerpt, read_limited, redact_to_origin, request_error};

/// How long the webhook may take to answer.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Bytes of the webhook's answer read at the most; only a refusal's start is quoted.
const ANSWER_BODY_LIMIT: usize = 64 * 1024;

/// The name errors give the receiver.
const TARGET: &str = "checkpoint webhook";

/// POSTs checkpoints as JSON to one URL.
#[derive(Clone)]
pub struct CheckpointWebhook {
    url: Url,
    client: reqwest::Client,
}

impl std::fmt::Debug for CheckpointWebhook {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("CheckpointWebhook")
            .field("url", &redact_to_origin(self.url.as_str()))
            .finish_non_exhaustive()
    }
}

impl CheckpointWebhook {
    /// A webhook at `url`, with a client of its own whose requests take at most ten seconds.
    ///
    /// # Errors
    ///
    /// [`ConnectorError::Client`] when the HTTP client cannot be built.
    pub fn new(url: Url) -> Result<Self, ConnectorError> {
        Ok(CheckpointWebhook {
            url,
            client: crate::http::client(TIMEOUT)?,
        })
    }

    /// POSTs `checkpoint` as JSON; a 2xx answer is a delivery, whatever its body.
    ///
    /// # Errors
    ///
    /// [`ConnectorError::Timeout`] or [`ConnectorError::Transport`] when no answer arrives,
    /// [`ConnectorError::Status`] (with the start of the answer) when it is not a 2xx.
    pub async fn post(&self, checkpoint: &impl Serialize) -> Result<(), ConnectorError> {
        let shown_url = redact_to_origin(self.url.as_str());
        let request = self
            .client
            .post(self.url.clone())
            .timeout(TIMEOUT)
            .json(checkpoint);
        let response = request
            .send()
            .await
            .map_err(|error| request_error(TARGET, &shown_url, TIMEOUT, error))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let origin = Origin {
            target: TARGET,
            shown_url: &shown_url,
            timeout: TIMEOUT,
        };
        // A refusal whose body is too large or cut off is still a refusal, quoted empty.
        let answer = read_limited(&origin, response, ANSWER_BODY_LIMIT)
            .await
            .unwrap_or_default();
        Err(ConnectorError::Status {
            target: TARGET.to_owned(),
            url: shown_url,
            status: status.as_u16(),
            excerpt: excerpt(&answer, None),
        })
    }
}
