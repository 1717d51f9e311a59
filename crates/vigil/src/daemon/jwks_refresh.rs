//! Keeps the OIDC issuer's signing keys fresh when they come from a URL: fetched at start,
//! then every `refresh`, and again after a failure with a back-off (30 s, doubling, at most
//! `refresh`). A failed fetch keeps the keys already held; until a first fetch succeeds,
//! OIDC tokens are refused with a message saying so (tokens and certificates still work).

use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::identity::oidc::Jwks;
use crate::logsafe::Escaped;

/// The first wait after a failed fetch.
const FIRST_RETRY: Duration = Duration::from_secs(30);

/// How long one fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// Fetches the keys at `url` into `slot` until `cancel`.
pub(super) async fn run(
    url: reqwest::Url,
    refresh: Duration,
    slot: Arc<RwLock<Option<Jwks>>>,
    cancel: CancellationToken,
) {
    let client = match vigil_connectors::http::client(FETCH_TIMEOUT) {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(%error, "cannot build the HTTP client for the OIDC keys; OIDC tokens will be refused");
            return;
        }
    };
    let mut retry = FIRST_RETRY;
    loop {
        let wait = match fetch(&client, &url).await {
            Ok(jwks) => {
                let n_keys = jwks.len();
                if let Ok(mut held) = slot.write() {
                    *held = Some(jwks);
                }
                tracing::info!(n_keys, "fetched the OIDC issuer's signing keys");
                retry = FIRST_RETRY;
                refresh
            }
            Err(why) => {
                tracing::warn!(
                    error = %Escaped(&why),
                    retry_secs = retry.as_secs(),
                    "cannot fetch the OIDC issuer's signing keys; keeping the ones held"
                );
                let wait = retry;
                retry = (retry * 2).min(refresh);
                wait
            }
        };
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// One fetch and parse.
///
/// # Errors
///
/// Why there are no keys from `url`.
pub(crate) async fn fetch(client: &reqwest::Client, url: &reqwest::Url) -> Result<Jwks, String> {
    let bytes = vigil_connectors::jwks::fetch(client, url.as_str(), FETCH_TIMEOUT)
        .await
        .map_err(|error| error.to_string())?;
    Jwks::parse(&bytes)
}
