//! The HTTP client every connector shares, and the helpers that keep errors informative yet
//! free of credentials: URL redaction, bounded body reads, error classification.

use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::Url;
use reqwest::redirect::{Attempt, Policy};

use crate::ConnectorError;

/// Redirects followed at most; LiteLLM's `/metrics` → `/metrics/` needs one.
const MAX_REDIRECTS: usize = 3;
/// Connecting never gets longer than this, whatever the request timeout.
const MAX_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Characters of a body kept in an error message.
const EXCERPT_CHARS: usize = 200;

/// A client with rustls, user agent `vigil/<version>`, the given overall timeout, and a
/// redirect policy that follows up to three redirects on the same scheme, host and port.
///
/// A redirect elsewhere is not followed: the caller sees the 3xx as an error, and bearer
/// tokens never travel to another host.
pub fn client(timeout: Duration) -> Result<reqwest::Client, ConnectorError> {
    client_with_tls(timeout, &TlsOptions::default())
}

/// How to trust (and authenticate to) a TLS peer. The default trusts the system's roots.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// Also trust the CA certificates in this PEM file (for an internal CA).
    pub ca_file: Option<PathBuf>,
    /// Present this client certificate (mutual TLS).
    pub client_cert: Option<ClientCert>,
    /// Accept any certificate. Only for trials: it gives up the protection TLS exists for.
    pub insecure_skip_verify: bool,
}

/// A client certificate and its private key, both PEM files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCert {
    /// The certificate (chain).
    pub cert_file: PathBuf,
    /// The private key.
    pub key_file: PathBuf,
}

/// Like [`client`], with the given TLS settings.
pub fn client_with_tls(
    timeout: Duration,
    tls: &TlsOptions,
) -> Result<reqwest::Client, ConnectorError> {
    crate::install_crypto_provider();
    let mut builder = reqwest::Client::builder()
        .user_agent(concat!("vigil/", env!("CARGO_PKG_VERSION")))
        .timeout(timeout)
        .connect_timeout(timeout.min(MAX_CONNECT_TIMEOUT))
        .redirect(Policy::custom(follow_same_origin));
    if let Some(ca_file) = &tls.ca_file {
        let pem = read_pem(ca_file)?;
        let certificates =
            reqwest::Certificate::from_pem_bundle(&pem).map_err(|error| ConnectorError::Tls {
                path: ca_file.clone(),
                detail: error.without_url().to_string(),
            })?;
        if certificates.is_empty() {
            return Err(ConnectorError::Tls {
                path: ca_file.clone(),
                detail: "no PEM certificate in the file".to_owned(),
            });
        }
        builder = builder.tls_certs_merge(certificates);
    }
    if let Some(client_cert) = &tls.client_cert {
        let mut pem = read_pem(&client_cert.cert_file)?;
        pem.push(b'\n');
        pem.extend(read_pem(&client_cert.key_file)?);
        let identity = reqwest::Identity::from_pem(&pem).map_err(|error| ConnectorError::Tls {
            path: client_cert.cert_file.clone(),
            detail: error.without_url().to_string(),
        })?;
        builder = builder.identity(identity);
    }
    if tls.insecure_skip_verify {
        builder = builder.tls_danger_accept_invalid_certs(true);
    }
    builder.build().map_err(ConnectorError::Client)
}

fn read_pem(path: &Path) -> Result<Vec<u8>, ConnectorError> {
    std::fs::read(path).map_err(|error| ConnectorError::Tls {
        path: path.to_path_buf(),
        detail: format!("cannot read the file: {error}"),
    })
}

fn follow_same_origin(attempt: Attempt<'_>) -> reqwest::redirect::Action {
    let same_origin = attempt.previous().first().is_some_and(|first| {
        first.scheme() == attempt.url().scheme()
            && first.host_str() == attempt.url().host_str()
            && first.port_or_known_default() == attempt.url().port_or_known_default()
    });
    // `previous` holds the original URL and every redirect followed so far.
    if attempt.previous().len() > MAX_REDIRECTS {
        attempt.error("too many redirects")
    } else if same_origin {
        attempt.follow()
    } else {
        attempt.stop()
    }
}

/// A URL fit for errors and logs: scheme, host, port and path, without user, password,
/// query or fragment, any of which may carry a secret.
pub(crate) fn redact_url(url: &str) -> String {
    match Url::parse(url) {
        Ok(parsed) => {
            let host = parsed.host_str().unwrap_or("");
            match parsed.port() {
                Some(port) => format!("{}://{host}:{port}{}", parsed.scheme(), parsed.path()),
                None => format!("{}://{host}{}", parsed.scheme(), parsed.path()),
            }
        }
        Err(_) => "<invalid url>".to_owned(),
    }
}

/// Only a URL's scheme, host and port: for webhook URLs, whose path is often the secret.
pub(crate) fn redact_to_origin(url: &str) -> String {
    match Url::parse(url) {
        Ok(parsed) => {
            let host = parsed.host_str().unwrap_or("");
            match parsed.port() {
                Some(port) => format!("{}://{host}:{port}/<redacted>", parsed.scheme()),
                None => format!("{}://{host}/<redacted>", parsed.scheme()),
            }
        }
        Err(_) => "<invalid url>".to_owned(),
    }
}

/// Turns a reqwest error into a connector error naming `target` and `shown_url`, a URL
/// already redacted by the caller.
pub(crate) fn request_error(
    target: &str,
    shown_url: &str,
    timeout: Duration,
    error: reqwest::Error,
) -> ConnectorError {
    if error.is_timeout() {
        ConnectorError::Timeout {
            target: target.to_owned(),
            url: shown_url.to_owned(),
            timeout,
        }
    } else {
        // reqwest prints the full URL in its errors; ours carries a redacted one instead.
        ConnectorError::Transport {
            target: target.to_owned(),
            url: shown_url.to_owned(),
            source: error.without_url(),
        }
    }
}

/// Where a response came from, for errors about it.
pub(crate) struct Origin<'a> {
    pub(crate) target: &'a str,
    /// The URL as errors show it, already redacted.
    pub(crate) shown_url: &'a str,
    pub(crate) timeout: Duration,
}

/// Sends `request` and reads its answer (status and body, at most `limit_bytes`), recording
/// the exchange when the task is [captured](crate::exchange::capture), with `secrets`
/// redacted from it.
pub(crate) async fn send_and_read(
    request: reqwest::RequestBuilder,
    origin: &Origin<'_>,
    limit_bytes: usize,
    secrets: &[&str],
) -> Result<(reqwest::StatusCode, Vec<u8>), ConnectorError> {
    let pending = crate::exchange::Pending::start(&request, origin.shown_url, secrets);
    let answer = async {
        let response = request.send().await.map_err(|error| {
            request_error(origin.target, origin.shown_url, origin.timeout, error)
        })?;
        let status = response.status();
        let body = read_limited(origin, response, limit_bytes).await?;
        Ok((status, body))
    }
    .await;
    if let Some(pending) = pending {
        match &answer {
            Ok((status, body)) => pending.answered(status.as_u16(), body),
            Err(error) => pending.failed(error),
        }
    }
    answer
}

/// Reads a body, stopping with [`ConnectorError::BodyTooLarge`] as soon as it passes
/// `limit_bytes`, so a misbehaving peer cannot make vigil buffer without bound.
pub(crate) async fn read_limited(
    origin: &Origin<'_>,
    mut response: reqwest::Response,
    limit_bytes: usize,
) -> Result<Vec<u8>, ConnectorError> {
    let too_large = || ConnectorError::BodyTooLarge {
        target: origin.target.to_owned(),
        url: origin.shown_url.to_owned(),
        limit_bytes,
    };
    let announced = response
        .content_length()
        .map(|length| usize::try_from(length).unwrap_or(usize::MAX));
    if announced.is_some_and(|length| length > limit_bytes) {
        return Err(too_large());
    }
    let mut body = Vec::with_capacity(announced.unwrap_or(0).min(limit_bytes));
    // INVARIANT: the loop ends at the end of the body or once `limit_bytes` is passed.
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|error| request_error(origin.target, origin.shown_url, origin.timeout, error))?
    {
        if body.len().saturating_add(chunk.len()) > limit_bytes {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The start of a body as one line of text, with `secret` (if any) scrubbed out.
pub(crate) fn excerpt(body: &[u8], secret: Option<&str>) -> String {
    // Scrub before cutting, so that a cut cannot leave the start of the secret behind.
    let text = scrub(&String::from_utf8_lossy(body), secret);
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut short: String = one_line.chars().take(EXCERPT_CHARS).collect();
    if one_line.chars().count() > EXCERPT_CHARS {
        short.push('…');
    }
    short
}

/// Replaces every occurrence of `secret` in `text` with `<redacted>`.
pub(crate) fn scrub(text: &str, secret: Option<&str>) -> String {
    match secret {
        Some(secret) if !secret.is_empty() => text.replace(secret, "<redacted>"),
        _ => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_credentials_query_and_fragment() {
        assert_eq!(
            redact_url("https://user:pass@gateway.example:8443/key/info?key=sk-secret#frag"),
            "https://gateway.example:8443/key/info"
        );
        assert_eq!(
            redact_url("http://127.0.0.1/metrics/"),
            "http://127.0.0.1/metrics/"
        );
        assert_eq!(redact_url("not a url sk-secret"), "<invalid url>");
        assert_eq!(
            redact_to_origin("https://hooks.example/services/T0/B0/secret"),
            "https://hooks.example/<redacted>"
        );
    }

    #[test]
    fn excerpts_are_short_single_lines_without_the_secret() {
        let body = format!("line one\n  token sk-master-123\n{}", "x".repeat(500));
        let short = excerpt(body.as_bytes(), Some("sk-master-123"));
        assert!(short.starts_with("line one token <redacted> x"), "{short}");
        assert_eq!(short.chars().count(), EXCERPT_CHARS + 1);
        // A secret that straddles the cut is scrubbed whole, not cut in half.
        let straddling = format!("{}sk-master-123", "y".repeat(EXCERPT_CHARS - 4));
        assert!(!excerpt(straddling.as_bytes(), Some("sk-master-123")).contains("sk-m"));
    }
}
