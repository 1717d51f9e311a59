//! Fetching an OIDC issuer's signing keys (its JSON Web Key Set) for the admin API's token
//! verification: one bounded GET, the body returned as bytes for the binary to parse.

use std::time::Duration;

use reqwest::header::ACCEPT;

use crate::ConnectorError;
use crate::http::{Origin, read_limited, redact_url, request_error};

/// The largest JWKS accepted; real ones are a few kilobytes.
pub const MAX_JWKS_BYTES: usize = 1024 * 1024;

/// Fetches the JWKS at `url`.
///
/// # Errors
///
/// A status other than 2xx, a body over [`MAX_JWKS_BYTES`], a transport error and a
/// timeout, each naming the URL (without credentials or query).
pub async fn fetch(
    client: &reqwest::Client,
    url: &str,
    timeout: Duration,
) -> Result<Vec<u8>, ConnectorError> {
    let shown_url = redact_url(url);
    let origin = Origin {
        target: "oidc jwks",
        shown_url: &shown_url,
        timeout,
    };
    let response = client
        .get(url)
        .header(ACCEPT, "application/json, application/jwk-set+json")
        .timeout(timeout)
        .send()
        .await
        .map_err(|error| request_error(origin.target, &shown_url, timeout, error))?;
    let status = response.status();
    if !status.is_success() {
        return Err(ConnectorError::Status {
            target: origin.target.to_owned(),
            url: shown_url.clone(),
            status: status.as_u16(),
            excerpt: String::new(),
        });
    }
    read_limited(&origin, response, MAX_JWKS_BYTES).await
}
