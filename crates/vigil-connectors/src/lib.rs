//! Everything vigil uses to talk to the world: secrets, the HTTP client, Prometheus scrapes,
//! the action targets (LiteLLM's admin API, Langfuse's prompt labels, generic HTTP calls),
//! webhook pagers, the checkpoint webhook and the heartbeat. Every error names what it talked
//! to, never a secret.

pub mod checkpoint_webhook;
mod error;
pub mod exchange;
pub mod heartbeat;
pub mod http;
pub mod http_action;
pub mod jwks;
pub mod langfuse;
pub mod litellm;
pub mod llm;
pub mod pager;
pub mod prometheus;
pub mod scrape;
pub mod secret;

pub use checkpoint_webhook::CheckpointWebhook;
pub use error::ConnectorError;
pub use heartbeat::Heartbeat;
pub use http_action::{HttpCallOutcome, HttpCaller, HttpHeaderValue, HttpMethod, HttpRequestSpec};
pub use langfuse::{LangfuseClient, PromptVersion};
pub use litellm::{AdminClient, Fallbacks, KeyState, KeyUpdate, Limit, TeamState};

/// Installs rustls' `ring` crypto provider as the process default, once.
///
/// reqwest is built with rustls and no provider of its own, and panics if none is installed
/// when a client is built. [`http::client`] calls this itself; call it before building any
/// other client. Installing twice is harmless: the second attempt is ignored.
pub fn install_crypto_provider() {
    // An error only means that a provider is already installed, which is what we want.
    let _already_installed = rustls::crypto::ring::default_provider().install_default();
}
