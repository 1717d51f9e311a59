//! A faithful simulated outside world for vigil's demo and tests: a LiteLLM gateway, organic
//! client traffic that drives it over real HTTP, a webhook sink that receives pages, fakes of
//! PagerDuty's Events API v2 and of a Slack incoming webhook, and a fake of Langfuse's prompt API.

mod error;
mod gateway;
mod langfuse;
mod openai;
mod pager;
mod pagerduty;
mod prng;
mod prom;
mod slack;
mod traffic;

pub use error::SimError;
pub use gateway::{AdminCall, GatewayConfig, SimGateway, SimKey, SimModel};
pub use langfuse::{FakePromptVersion, LangfuseCall, LangfuseFake};
pub use openai::{OpenAiFake, Play, Reply, Script};
pub use pager::PagerSink;
pub use pagerduty::{FakeIncident, PagerDutyFake};
pub use slack::SlackFake;
pub use traffic::{KeyTraffic, TrafficDriver, TrafficStats};

/// Installs rustls' `ring` crypto provider as the process default, once.
///
/// reqwest is built with rustls and no provider of its own, so a provider must be installed
/// before any client is built. Installing twice is harmless: the second attempt is ignored.
pub(crate) fn install_crypto_provider() {
    // An error only means that a provider is already installed, which is what we want.
    let _already_installed = rustls::crypto::ring::default_provider().install_default();
}

/// The lowercase SHA-256 hex of a raw key: LiteLLM's `hashed_api_key` and key `token`.
pub(crate) fn sha256_hex(raw: &str) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(raw.as_bytes()))
}

/// A short, non-secret form of a key as LiteLLM prints it: `sk-...abcd`.
pub(crate) fn abbreviate_key(raw: &str) -> String {
    let tail: String = raw
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("sk-...{tail}")
}
