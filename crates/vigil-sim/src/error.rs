//! The error type of the simulator: what can go wrong while starting or steering it.

use std::net::SocketAddr;

/// Everything that can fail in `vigil-sim`.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The listener handed to a server has no usable local address.
    #[error("cannot read the local address of the listener")]
    LocalAddr(#[source] std::io::Error),
    /// The gateway configuration is not usable; the message says why.
    #[error("invalid gateway configuration: {0}")]
    InvalidConfig(String),
    /// The Langfuse fake's prompts are not usable; the message says why.
    #[error("invalid langfuse prompts: {0}")]
    InvalidPrompts(String),
    /// The traffic driver was asked about a key it does not drive.
    #[error("the traffic driver has no key `{alias}`")]
    UnknownKey {
        /// A short, non-secret form of the key (`sk-...abcd`).
        alias: String,
    },
    /// A requested rate is negative or not finite.
    #[error("invalid rate `{0}` requests per second")]
    InvalidRate(f64),
    /// The HTTP client used by the traffic driver could not be built.
    #[error("cannot build the traffic driver's http client")]
    HttpClient(#[source] reqwest::Error),
    /// A server was started outside a tokio runtime.
    #[error("no tokio runtime is running")]
    NoRuntime,
    /// The server bound to this address stopped with an error.
    #[error("server on `{addr}` failed")]
    Serve {
        /// Where the server listened.
        addr: SocketAddr,
        /// What went wrong.
        #[source]
        source: std::io::Error,
    },
}
