//! The generic HTTP action: one request to a host on `actions.http.allow_hosts`, with headers
//! that may be secrets, an optional JSON body and idempotency key, judged by its status.

use std::fmt;
use std::time::Duration;

use reqwest::Url;
use reqwest::header::{HeaderName, HeaderValue};
use serde_json::Value;

use crate::ConnectorError;
use crate::http::{Origin, excerpt, redact_url, scrub, send_and_read};
use crate::secret::Secret;

/// The name HTTP actions go by in errors.
const TARGET: &str = "http action";
/// The largest answer read; an action's answer is only excerpted, never kept whole.
const MAX_ANSWER_BYTES: usize = 256 * 1024;
/// How long one call may take unless [`HttpCaller::with_timeout`] says otherwise.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// The header that carries [`HttpRequestSpec::idempotency_key`].
const IDEMPOTENCY_KEY: &str = "Idempotency-Key";

/// The methods an HTTP action may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpMethod {
    /// `GET`.
    Get,
    /// `POST`.
    Post,
    /// `PUT`.
    Put,
    /// `PATCH`.
    Patch,
    /// `DELETE`.
    Delete,
}

impl HttpMethod {
    fn to_reqwest(self) -> reqwest::Method {
        match self {
            Self::Get => reqwest::Method::GET,
            Self::Post => reqwest::Method::POST,
            Self::Put => reqwest::Method::PUT,
            Self::Patch => reqwest::Method::PATCH,
            Self::Delete => reqwest::Method::DELETE,
        }
    }
}

/// A header's value: plain, or a secret that never prints and is scrubbed from excerpts.
#[derive(Debug, Clone)]
pub enum HttpHeaderValue {
    /// A value that may show in logs.
    Plain(String),
    /// A value that must not show anywhere (a token, say).
    Secret(Secret),
}

impl HttpHeaderValue {
    fn expose(&self) -> &str {
        match self {
            Self::Plain(value) => value,
            Self::Secret(secret) => secret.expose(),
        }
    }
}

/// One HTTP request to make. `Debug` shows the URL without credentials or query, and secret
/// header values as `<redacted>`.
#[derive(Clone)]
pub struct HttpRequestSpec {
    /// The method.
    pub method: HttpMethod,
    /// The URL; only http and https, and only to a host on the allow-list. Credentials and
    /// query in it are treated as secrets.
    pub url: String,
    /// Headers, by name.
    pub headers: Vec<(String, HttpHeaderValue)>,
    /// A JSON body, sent with `Content-Type: application/json`.
    pub body: Option<Value>,
    /// The statuses that count as success; empty means any of 200..=299.
    pub expected_statuses: Vec<u16>,
    /// Sent as the `Idempotency-Key` header, so that a retried action is done once.
    pub idempotency_key: Option<String>,
}

impl fmt::Debug for HttpRequestSpec {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("HttpRequestSpec")
            .field("method", &self.method)
            .field("url", &redact_url(&self.url))
            .field("headers", &self.headers)
            .field("body", &self.body.as_ref().map(|_| "<json>"))
            .field("expected_statuses", &self.expected_statuses)
            .field("idempotency_key", &self.idempotency_key)
            .finish()
    }
}

/// What an HTTP action got back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpCallOutcome {
    /// The HTTP status, one of the expected ones.
    pub status: u16,
    /// The start of the answer's body on one line, secrets scrubbed.
    pub excerpt: String,
}

/// Makes HTTP actions, only to the hosts it is allowed.
#[derive(Debug, Clone)]
pub struct HttpCaller {
    allow_hosts: Vec<AllowedHost>,
    client: reqwest::Client,
    timeout: Duration,
}

/// One `actions.http.allow_hosts` entry: a host, and a port if the entry names one.
#[derive(Debug, Clone, PartialEq, Eq)]
struct AllowedHost {
    /// Lowercase, IPv6 addresses in brackets as URLs write them.
    host: String,
    port: Option<u16>,
}

impl AllowedHost {
    fn parse(entry: &str) -> Self {
        let entry = entry.trim().to_ascii_lowercase();
        // `host:port` and `[v6]:port` carry a port; a bare IPv6 address (`::1`) does not.
        let split = entry.rsplit_once(':').and_then(|(host, port)| {
            let port = port.parse::<u16>().ok()?;
            (!host.contains(':') || host.ends_with(']')).then(|| (host.to_owned(), port))
        });
        match split {
            Some((host, port)) => Self {
                host,
                port: Some(port),
            },
            None if entry.contains(':') && !entry.starts_with('[') => Self {
                host: format!("[{entry}]"),
                port: None,
            },
            None => Self {
                host: entry,
                port: None,
            },
        }
    }

    fn admits(&self, host: &str, port: Option<u16>) -> bool {
        self.host == host && self.port.is_none_or(|allowed| Some(allowed) == port)
    }
}

impl HttpCaller {
    /// A caller allowed to reach `allow_hosts`: `host` (any port) or `host:port` (that
    /// port only; a URL without a port has its scheme's default), compared without case.
    /// Each call may take ten seconds.
    pub fn new(allow_hosts: Vec<String>, client: reqwest::Client) -> Self {
        Self {
            allow_hosts: allow_hosts
                .iter()
                .map(|entry| AllowedHost::parse(entry))
                .collect(),
            client,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// The same caller with another limit on how long one call may take.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Makes the request. A URL that is not http(s) or whose host is not allowed is refused
    /// before anything is sent; a status that is not expected is
    /// [`ConnectorError::Status`].
    pub async fn call(&self, spec: &HttpRequestSpec) -> Result<HttpCallOutcome, ConnectorError> {
        let url = self.checked_url(&spec.url)?;
        let shown_url = redact_url(&spec.url);
        let secrets = secrets_of(spec, &url);
        let mut request = self
            .client
            .request(spec.method.to_reqwest(), url)
            .timeout(self.timeout);
        for (name, value) in &spec.headers {
            request = request.header(header_name(name)?, header_value(name, value)?);
        }
        if let Some(key) = &spec.idempotency_key {
            let value = header_value(IDEMPOTENCY_KEY, &HttpHeaderValue::Plain(key.clone()))?;
            request = request.header(IDEMPOTENCY_KEY, value);
        }
        if let Some(body) = &spec.body {
            request = request.json(body);
        }
        let origin = Origin {
            target: TARGET,
            shown_url: &shown_url,
            timeout: self.timeout,
        };
        let secret_texts: Vec<&str> = secrets.iter().map(String::as_str).collect();
        let (status, body) =
            send_and_read(request, &origin, MAX_ANSWER_BYTES, &secret_texts).await?;
        let status = status.as_u16();
        let scrubbed = secrets.iter().fold(
            String::from_utf8_lossy(&body).into_owned(),
            |text, secret| scrub(&text, Some(secret)),
        );
        let short = excerpt(scrubbed.as_bytes(), None);
        let expected = if spec.expected_statuses.is_empty() {
            (200..=299).contains(&status)
        } else {
            spec.expected_statuses.contains(&status)
        };
        if !expected {
            return Err(ConnectorError::Status {
                target: TARGET.to_owned(),
                url: shown_url,
                status,
                excerpt: short,
            });
        }
        Ok(HttpCallOutcome {
            status,
            excerpt: short,
        })
    }

    /// Parses the URL and checks its scheme and host against the allow-list.
    fn checked_url(&self, url: &str) -> Result<Url, ConnectorError> {
        let parsed = Url::parse(url).map_err(|_| ConnectorError::InvalidUrl {
            target: TARGET.to_owned(),
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(ConnectorError::UnsupportedScheme {
                scheme: parsed.scheme().to_owned(),
            });
        }
        // `Url` lowercases host names and brackets IPv6 addresses.
        let host = parsed.host_str().unwrap_or("").to_ascii_lowercase();
        let port = parsed.port_or_known_default();
        if self
            .allow_hosts
            .iter()
            .any(|allowed| allowed.admits(&host, port))
        {
            return Ok(parsed);
        }
        let shown = match parsed.port() {
            Some(port) => format!("{host}:{port}"),
            None => host,
        };
        Err(ConnectorError::HostNotAllowed { host: shown })
    }
}

/// Everything in a request that must not show in an excerpt: secret header values and the
/// URL's password and query values.
fn secrets_of(spec: &HttpRequestSpec, url: &Url) -> Vec<String> {
    let mut secrets: Vec<String> = spec
        .headers
        .iter()
        .filter_map(|(_, value)| match value {
            HttpHeaderValue::Secret(secret) => Some(secret.expose().to_owned()),
            HttpHeaderValue::Plain(_) => None,
        })
        .collect();
    if let Some(password) = url.password() {
        // reqwest sends URL credentials as a Basic header, which an answer may echo.
        secrets.push(base64_encode(
            format!("{}:{password}", url.username()).as_bytes(),
        ));
        secrets.push(password.to_owned());
    }
    secrets.extend(url.query_pairs().map(|(_, value)| value.into_owned()));
    secrets.retain(|secret| !secret.is_empty());
    // Longest first, so that a secret holding another is scrubbed whole.
    secrets.sort_by_key(|secret| std::cmp::Reverse(secret.len()));
    secrets
}

/// Standard base64 with padding, as a Basic `Authorization` header carries credentials.
fn base64_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let mut group = [0_u8; 3];
        for (slot, byte) in group.iter_mut().zip(chunk) {
            *slot = *byte;
        }
        let bits = u32::from(group[0]) << 16 | u32::from(group[1]) << 8 | u32::from(group[2]);
        for position in 0..4 {
            if position <= chunk.len() {
                let index = usize::try_from((bits >> (18 - 6 * position)) & 0x3f).unwrap_or(0);
                out.push(ALPHABET.get(index).map_or('A', |byte| char::from(*byte)));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn header_name(name: &str) -> Result<HeaderName, ConnectorError> {
    HeaderName::from_bytes(name.as_bytes()).map_err(|_| ConnectorError::InvalidHeader {
        name: name.to_owned(),
        detail: "not a valid header name",
    })
}

fn header_value(name: &str, value: &HttpHeaderValue) -> Result<HeaderValue, ConnectorError> {
    let mut header =
        HeaderValue::from_str(value.expose()).map_err(|_| ConnectorError::InvalidHeader {
            name: name.to_owned(),
            detail: "the value holds characters a header cannot carry",
        })?;
    // Keeps the value out of reqwest's and hyper's own debug output.
    header.set_sensitive(matches!(value, HttpHeaderValue::Secret(_)));
    Ok(header)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(allow_hosts: &[&str]) -> HttpCaller {
        crate::install_crypto_provider();
        HttpCaller::new(
            allow_hosts.iter().map(|host| (*host).to_owned()).collect(),
            reqwest::Client::new(),
        )
    }

    fn verdict(caller: &HttpCaller, url: &str) -> Result<(), String> {
        caller
            .checked_url(url)
            .map(|_| ())
            .map_err(|error| error.to_string())
    }

    #[test]
    fn hosts_match_without_case_and_with_their_port_when_one_is_listed() {
        let caller = caller(&["Hooks.Example.com", "api.example.com:8443", "[::1]:9000"]);
        assert_eq!(verdict(&caller, "https://hooks.example.com/x"), Ok(()));
        assert_eq!(verdict(&caller, "http://HOOKS.example.com:81/x"), Ok(()));
        assert_eq!(verdict(&caller, "https://api.example.com:8443/v1"), Ok(()));
        assert_eq!(
            verdict(&caller, "https://api.example.com/v1"),
            Err("host `api.example.com` is not on `actions.http.allow_hosts`".to_owned())
        );
        assert_eq!(
            verdict(&caller, "https://api.example.com:9443/v1"),
            Err("host `api.example.com:9443` is not on `actions.http.allow_hosts`".to_owned())
        );
        assert_eq!(verdict(&caller, "http://[::1]:9000/"), Ok(()));
        // A suffix is not the host.
        assert!(verdict(&caller, "https://evil-hooks.example.com/").is_err());
        assert!(verdict(&caller, "https://hooks.example.com.evil.test/").is_err());
    }

    #[test]
    fn an_entry_port_is_compared_with_the_schemes_default() {
        let caller = caller(&["api.example.com:443"]);
        assert_eq!(verdict(&caller, "https://api.example.com/"), Ok(()));
        assert!(verdict(&caller, "http://api.example.com/").is_err());
    }

    #[test]
    fn only_http_and_https_are_called() {
        let caller = caller(&["example.com"]);
        assert_eq!(
            verdict(&caller, "ftp://example.com/file"),
            Err("only http and https urls can be called, not `ftp`".to_owned())
        );
        assert_eq!(
            verdict(&caller, "not a url"),
            Err("the url for `http action` is not valid".to_owned())
        );
    }

    #[test]
    fn basic_credentials_encode_like_rfc_4648() {
        assert_eq!(base64_encode(b"admin:pw"), "YWRtaW46cHc=");
        assert_eq!(base64_encode(b"ab"), "YWI=");
        assert_eq!(base64_encode(b"abc"), "YWJj");
        assert_eq!(base64_encode(b""), "");
    }

    #[test]
    fn a_spec_never_prints_its_secrets() {
        let spec = HttpRequestSpec {
            method: HttpMethod::Post,
            url: "https://user:hunter2@example.com/hook?token=qwerty".to_owned(),
            headers: vec![(
                "Authorization".to_owned(),
                HttpHeaderValue::Secret(Secret::new("Bearer s3cr3t")),
            )],
            body: Some(serde_json::json!({ "password": "p4ss" })),
            expected_statuses: Vec::new(),
            idempotency_key: Some("incident-7-step-2".to_owned()),
        };
        let shown = format!("{spec:?}");
        for secret in ["hunter2", "qwerty", "s3cr3t", "p4ss"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert!(shown.contains("https://example.com/hook"), "{shown}");
    }
}
