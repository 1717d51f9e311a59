//! A deterministic LiteLLM-like workload for the store's benchmark (`vigil-bench store`) and
//! its memory tests. Not part of the API.
//!
//! Each series carries the 20 labels LiteLLM 1.106 puts on
//! `litellm_proxy_total_requests_metric_total`-like metrics. Ten series share an API key
//! (five models, two status codes), so a key's hash, alias and user are shared by ten series
//! and the strings are amortized as they are on a real gateway.

use sha2::{Digest, Sha256};

use super::{SeriesStore, StoreConfig};
use crate::signal::{Labels, Sample};
use crate::time::Timestamp;

/// The metric the workload's series belong to.
pub const METRIC_NAME: &str = "litellm_proxy_total_requests_metric_total";

/// The source the workload is ingested as.
pub const SOURCE: &str = "litellm";

/// The scrape interval of the workload, in milliseconds.
pub const SCRAPE_INTERVAL_MS: i64 = 15_000;

/// The time of the workload's first scrape (2026-11-23T12:00:00Z).
pub const START_MS: i64 = 1_795_435_200_000;

const MODELS: [&str; 5] = [
    "gpt-4o",
    "gpt-4o-mini",
    "claude-sonnet-4-5",
    "text-embedding-3-small",
    "llama-3.1-70b",
];

/// The labels of series `idx`.
#[must_use]
pub fn litellm_labels(idx: usize) -> Labels {
    let key = idx / 10;
    let model = MODELS.get(idx % MODELS.len()).copied().unwrap_or("gpt-4o");
    let status = if (idx / MODELS.len()).is_multiple_of(2) {
        "200"
    } else {
        "429"
    };
    let hashed_key = hex::encode(Sha256::digest(format!("sk-key-{key}").as_bytes()));
    let model_id = hex::encode(Sha256::digest(model.as_bytes()));
    let team = format!("team-{}", key % 50);
    [
        ("api_key_alias", format!("key-alias-{key}")),
        ("api_provider", "openai".to_owned()),
        (
            "client_ip",
            format!("10.0.{}.{}", key / 250 % 256, key % 250),
        ),
        ("end_user", "None".to_owned()),
        ("hashed_api_key", hashed_key),
        ("litellm_model_name", model.to_owned()),
        ("model_group", model.to_owned()),
        ("model_id", model_id),
        ("org_alias", "None".to_owned()),
        ("org_id", "None".to_owned()),
        ("requested_model", model.to_owned()),
        ("route", "/chat/completions".to_owned()),
        ("service_tier", "None".to_owned()),
        ("status_code", status.to_owned()),
        ("team", team.clone()),
        ("team_alias", format!("{team}-alias")),
        ("user", format!("user-{key}")),
        ("user_agent", "OpenAI/Python 1.99.9".to_owned()),
        ("user_email", format!("user-{key}@example.com")),
        ("version", "1.106.2".to_owned()),
    ]
    .into_iter()
    .collect()
}

/// A scrape of `n_series` counters; call [`LitellmWorkload::next_scrape`] for each scrape.
#[derive(Clone, Debug)]
pub struct LitellmWorkload {
    samples: Vec<Sample>,
    n_scrapes: i64,
}

impl LitellmWorkload {
    /// The workload's `n_series` series, all at 0, before their first scrape.
    #[must_use]
    pub fn new(n_series: usize) -> Self {
        let samples = (0..n_series)
            .map(|idx| Sample {
                name: METRIC_NAME.to_owned(),
                labels: litellm_labels(idx),
                value: 0.0,
                timestamp_ms: None,
            })
            .collect();
        LitellmWorkload {
            samples,
            n_scrapes: 0,
        }
    }

    /// Advances every counter (by 1 to 8 requests, varying by series and scrape) and returns
    /// the next scrape's time and samples.
    pub fn next_scrape(&mut self) -> (Timestamp, &[Sample]) {
        let scrape = self.n_scrapes;
        self.n_scrapes += 1;
        for (idx, sample) in self.samples.iter_mut().enumerate() {
            let step = (idx as i64 + scrape) % 8 + 1;
            sample.value += step as f64;
        }
        let at = Timestamp(START_MS + scrape * SCRAPE_INTERVAL_MS);
        (at, &self.samples)
    }
}

/// A store holding `n_series` workload series after one hour of 15 s scrapes (240
/// scrapes), with a configuration that admits them.
#[must_use]
pub fn store_after_one_hour(n_series: usize) -> SeriesStore {
    let mut store = SeriesStore::new(StoreConfig {
        max_series: n_series,
        ..StoreConfig::default()
    });
    let mut workload = LitellmWorkload::new(n_series);
    for _ in 0..240 {
        let (at, samples) = workload.next_scrape();
        store.ingest(SOURCE, at, samples);
    }
    store
}
