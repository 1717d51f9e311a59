//! The error type of `vigil-connectors`. Variants carry context (target name, URL without
//! credentials or query, status); none carries a secret.

use std::path::PathBuf;
use std::time::Duration;

/// Everything that can fail while talking to the world.
#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    /// A secret's environment variable is not set.
    #[error("environment variable `{name}` is not set")]
    SecretEnvMissing {
        /// The variable's name.
        name: String,
    },
    /// A secret's environment variable holds bytes that are not unicode.
    #[error("environment variable `{name}` is not valid unicode")]
    SecretEnvNotUnicode {
        /// The variable's name.
        name: String,
    },
    /// A secret's file could not be read.
    #[error("cannot read secret file `{}`", path.display())]
    SecretFile {
        /// The file's path.
        path: PathBuf,
        /// Why reading failed.
        #[source]
        source: std::io::Error,
    },
    /// A secret's file can be read by every user of the machine.
    #[error(
        "secret file `{}` is readable by every user (mode {mode:o}); make it private: chmod 600 (or 640 for a service group)",
        path.display()
    )]
    SecretFileExposed {
        /// The file's path.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A secret resolved to an empty string.
    #[error("the secret from {origin} is empty")]
    SecretEmpty {
        /// Where the secret came from, e.g. ``environment variable `X` ``.
        origin: String,
    },
    /// The HTTP client could not be built.
    #[error("cannot build the http client")]
    Client(#[source] reqwest::Error),
    /// A TLS file (CA bundle, client certificate or key) could not be used.
    #[error("tls file `{}`: {detail}", path.display())]
    Tls {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        detail: String,
    },
    /// A URL could not be parsed; it is not repeated since it may hold credentials.
    #[error("the url for `{target}` is not valid")]
    InvalidUrl {
        /// What the URL was for.
        target: String,
    },
    /// The peer did not answer in time.
    #[error("`{target}` did not answer within {timeout:?} (`{url}`)")]
    Timeout {
        /// What was called.
        target: String,
        /// The URL, without credentials or query.
        url: String,
        /// The time allowed.
        timeout: Duration,
    },
    /// The request failed before an answer arrived: connection, TLS, redirects.
    #[error("request to `{target}` failed (`{url}`)")]
    Transport {
        /// What was called.
        target: String,
        /// The URL, without credentials or query.
        url: String,
        /// The transport error, stripped of its URL.
        #[source]
        source: reqwest::Error,
    },
    /// The peer answered with a status that is not a success.
    #[error("`{target}` answered http {status} (`{url}`): {excerpt}")]
    Status {
        /// What was called.
        target: String,
        /// The URL, without credentials or query.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The start of the answer's body, on one line.
        excerpt: String,
    },
    /// The answer's body is larger than allowed; reading stopped at the limit.
    #[error("`{target}` sent more than {limit_bytes} bytes (`{url}`)")]
    BodyTooLarge {
        /// What was called.
        target: String,
        /// The URL, without credentials or query.
        url: String,
        /// The limit.
        limit_bytes: usize,
    },
    /// The answer could not be decoded.
    #[error("cannot decode the answer of `{target}` (`{url}`): {detail}")]
    Decode {
        /// What was called.
        target: String,
        /// The URL, without credentials or query.
        url: String,
        /// What was wrong with it.
        detail: String,
    },
    /// LiteLLM's admin API refused a call, with LiteLLM's own message.
    #[error("litellm `{operation}` answered http {status}: {message}")]
    Api {
        /// The admin operation, e.g. `block_key`.
        operation: &'static str,
        /// The HTTP status.
        status: u16,
        /// LiteLLM's message, from `{"error": {"message"}}` or FastAPI's `{"detail"}`.
        message: String,
    },
    /// Langfuse's public API refused a call, with Langfuse's own message.
    #[error("langfuse `{operation}` answered http {status}: {message}")]
    Langfuse {
        /// The operation, e.g. `set_labels`.
        operation: &'static str,
        /// The HTTP status.
        status: u16,
        /// Langfuse's message, from `{"message", "error"}`.
        message: String,
    },
    /// An HTTP action named a host that the configuration does not allow.
    #[error("host `{host}` is not on `actions.http.allow_hosts`")]
    HostNotAllowed {
        /// The host (and port, when the URL names one).
        host: String,
    },
    /// An HTTP action's URL uses a scheme other than http or https.
    #[error("only http and https urls can be called, not `{scheme}`")]
    UnsupportedScheme {
        /// The URL's scheme.
        scheme: String,
    },
    /// An HTTP action's header cannot be sent; its value is not repeated.
    #[error("header `{name}` cannot be sent: {detail}")]
    InvalidHeader {
        /// The header's name.
        name: String,
        /// What is wrong with it.
        detail: &'static str,
    },
    /// An action needs a target or input that is not configured or not usable; `what` says
    /// which, in a full sentence.
    #[error("{what}")]
    NotConfigured {
        /// What is missing or wrong.
        what: String,
    },
    /// Every attempt to deliver a page failed.
    #[error("gave up paging `{url}` after {attempts} attempts")]
    PagerGaveUp {
        /// The webhook URL, without credentials or query.
        url: String,
        /// How many attempts were made.
        attempts: u32,
        /// The last attempt's error.
        #[source]
        last: Box<ConnectorError>,
    },
}

impl ConnectorError {
    /// The HTTP status the peer answered, if the failure is an answer.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Status { status, .. }
            | Self::Api { status, .. }
            | Self::Langfuse { status, .. } => Some(*status),
            Self::PagerGaveUp { last, .. } => last.status(),
            _ => None,
        }
    }
}
