//! The config of the daemon's HTTP listener (`server:`): the connection limit, the timeouts
//! that close slow or idle connections, how often refused requests are summarised in the log,
//! and optional TLS termination with client certificates. Raw structs (serde, unknown keys
//! rejected) and their second stage live together here because nothing else reads them.
//!
//! Only paths are checked here; `daemon::server::tls::load` reads and parses the files, for
//! `vigil check` and `vigil serve` alike.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use vigil_core::problem::Problems;

/// The `server:` section as written; every key is optional.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    /// Open connections at most; a connection past it is closed at once and counted. When
    /// absent: 4096, or less to stay under the process's open-file limit.
    pub max_connections: Option<usize>,
    /// A request's head (request line and headers) must arrive whole within this many seconds
    /// of its first byte, else the connection is closed.
    #[serde(default = "default_header_read_timeout_secs")]
    pub header_read_timeout_secs: u64,
    /// A request's body must arrive whole within this many seconds of its head (408 past it).
    #[serde(default = "default_body_read_timeout_secs")]
    pub body_read_timeout_secs: u64,
    /// A connection with no request under way and nothing sent for this many seconds is
    /// closed (a new connection that sends nothing, or a keep-alive connection between
    /// requests).
    #[serde(default = "default_idle_timeout_secs")]
    pub idle_timeout_secs: u64,
    /// With `tls`: a TLS handshake must finish within this many seconds.
    #[serde(default = "default_tls_handshake_timeout_secs")]
    pub tls_handshake_timeout_secs: u64,
    /// Refused requests and connections are counted in `vigil_http_refused_total` and
    /// summarised in one log line at most this often (only when something was refused).
    #[serde(default = "default_refused_log_interval_secs")]
    pub refused_log_interval_secs: u64,
    /// Serve HTTPS instead of HTTP; off when absent.
    pub tls: Option<RawServerTls>,
}

impl Default for RawServer {
    fn default() -> Self {
        RawServer {
            max_connections: None,
            header_read_timeout_secs: default_header_read_timeout_secs(),
            body_read_timeout_secs: default_body_read_timeout_secs(),
            idle_timeout_secs: default_idle_timeout_secs(),
            tls_handshake_timeout_secs: default_tls_handshake_timeout_secs(),
            refused_log_interval_secs: default_refused_log_interval_secs(),
            tls: None,
        }
    }
}

fn default_header_read_timeout_secs() -> u64 {
    10
}

fn default_body_read_timeout_secs() -> u64 {
    60
}

fn default_idle_timeout_secs() -> u64 {
    60
}

fn default_tls_handshake_timeout_secs() -> u64 {
    10
}

fn default_refused_log_interval_secs() -> u64 {
    60
}

/// TLS on the listener, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServerTls {
    /// The server's certificate chain (PEM, leaf first), relative to this file.
    pub cert_file: String,
    /// The server's private key (PEM: PKCS#8, PKCS#1 or SEC1), relative to this file.
    pub key_file: String,
    /// CA certificates (PEM) that client certificates are verified against, relative to this
    /// file. A client certificate is then optional (health checks and bearer-token clients
    /// need none), but one that is presented must verify, or the handshake fails.
    pub client_ca_file: Option<String>,
}

/// The listener's validated settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// Open connections at most, when set; else sized from the open-file limit at start.
    pub max_connections: Option<usize>,
    /// From a request head's first byte to its end.
    pub header_read_timeout: Duration,
    /// From a request's head to the end of its body.
    pub body_read_timeout: Duration,
    /// A connection with no request under way and no bytes read is closed after this.
    pub idle_timeout: Duration,
    /// The TLS handshake at most.
    pub tls_handshake_timeout: Duration,
    /// One summary line of refusals at most this often.
    pub refused_log_interval: Duration,
    /// TLS termination, when on.
    pub tls: Option<ServerTlsConfig>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        // The raw defaults are valid, so this cannot record a problem.
        let mut problems = Problems::default();
        validate_server(&mut problems, RawServer::default(), Path::new("."))
    }
}

/// The files of the listener's TLS, resolved against the config file's folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerTlsConfig {
    /// The certificate chain (PEM).
    pub cert_file: PathBuf,
    /// The private key (PEM).
    pub key_file: PathBuf,
    /// The CAs client certificates are verified against, when client certificates are asked.
    pub client_ca_file: Option<PathBuf>,
}

/// The second stage of `server:`.
pub(super) fn validate_server(
    problems: &mut Problems,
    raw: RawServer,
    base_dir: &Path,
) -> ServerConfig {
    if raw.max_connections == Some(0) {
        problems.push("server.max_connections", "must be at least 1");
    }
    let seconds = [
        ("header_read_timeout_secs", raw.header_read_timeout_secs),
        ("body_read_timeout_secs", raw.body_read_timeout_secs),
        ("idle_timeout_secs", raw.idle_timeout_secs),
        ("tls_handshake_timeout_secs", raw.tls_handshake_timeout_secs),
        ("refused_log_interval_secs", raw.refused_log_interval_secs),
    ];
    for (key, value) in seconds {
        if value == 0 {
            problems.push(format!("server.{key}"), "must be at least 1");
        }
    }
    let tls = raw.tls.map(|tls| {
        let mut file = |key: &str, value: String| {
            if value.trim().is_empty() {
                problems.push(format!("server.tls.{key}"), "must not be empty");
            }
            base_dir.join(value)
        };
        ServerTlsConfig {
            cert_file: file("cert_file", tls.cert_file),
            key_file: file("key_file", tls.key_file),
            client_ca_file: tls
                .client_ca_file
                .map(|value| file("client_ca_file", value)),
        }
    });
    ServerConfig {
        max_connections: raw.max_connections,
        header_read_timeout: Duration::from_secs(raw.header_read_timeout_secs),
        body_read_timeout: Duration::from_secs(raw.body_read_timeout_secs),
        idle_timeout: Duration::from_secs(raw.idle_timeout_secs),
        tls_handshake_timeout: Duration::from_secs(raw.tls_handshake_timeout_secs),
        refused_log_interval: Duration::from_secs(raw.refused_log_interval_secs),
        tls,
    }
}
