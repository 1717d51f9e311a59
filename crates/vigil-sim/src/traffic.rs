//! `TrafficDriver`: organic client traffic, one task per key, that sends real HTTP chat
//! requests to a gateway at a jittered rate which can be raised at runtime to make a key
//! run away.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::json;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::SimError;
use crate::prng::SplitMix64;

/// The fastest a single key is driven; each key sends one request at a time.
const MAX_REQUESTS_PER_SEC: f64 = 200.0;
/// How long one chat request may take before it counts as an error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// Both the interval between requests and `max_tokens` vary by this much either way.
const JITTER: f64 = 0.2;

/// The traffic one key sends.
#[derive(Clone)]
pub struct KeyTraffic {
    /// The raw virtual key, `sk-...`.
    pub raw_key: String,
    /// The model requested.
    pub model: String,
    /// Mean requests per second; zero idles the key.
    pub requests_per_sec: f64,
    /// Characters of prompt text per request.
    pub prompt_chars: usize,
    /// Mean `max_tokens` per request.
    pub max_tokens: u32,
}

impl std::fmt::Debug for KeyTraffic {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("KeyTraffic")
            .field("raw_key", &crate::abbreviate_key(&self.raw_key))
            .field("model", &self.model)
            .field("requests_per_sec", &self.requests_per_sec)
            .field("prompt_chars", &self.prompt_chars)
            .field("max_tokens", &self.max_tokens)
            .finish()
    }
}

/// What one key's traffic has seen so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TrafficStats {
    /// Requests sent.
    pub sent: u64,
    /// Requests answered with a 2xx.
    pub ok: u64,
    /// Requests answered 401, e.g. because the key is blocked.
    pub rejected: u64,
    /// Requests that failed otherwise: another status, a timeout, a transport error.
    pub errors: u64,
}

#[derive(Debug, Clone, Copy)]
struct Rate {
    requests_per_sec: f64,
    max_tokens: u32,
}

#[derive(Debug, Default)]
struct Counters {
    sent: AtomicU64,
    ok: AtomicU64,
    rejected: AtomicU64,
    errors: AtomicU64,
}

#[derive(Debug)]
struct Lane {
    raw_key: String,
    rate: watch::Sender<Rate>,
    counters: Arc<Counters>,
}

/// Drives chat traffic for a set of keys until its `shutdown` token is cancelled.
#[derive(Debug)]
pub struct TrafficDriver {
    lanes: Vec<Lane>,
    tracker: TaskTracker,
}

impl TrafficDriver {
    /// Starts one task per key, sending to `gateway_base_url` (e.g. `http://127.0.0.1:4000`).
    ///
    /// Jitter comes from a PRNG seeded from `seed`, so one seed gives one request schedule.
    pub fn start(
        gateway_base_url: &str,
        keys: Vec<KeyTraffic>,
        seed: u64,
        shutdown: CancellationToken,
    ) -> Result<TrafficDriver, SimError> {
        tokio::runtime::Handle::try_current().map_err(|_| SimError::NoRuntime)?;
        for key in &keys {
            validate_rate(key.requests_per_sec)?;
        }
        crate::install_crypto_provider();
        let client = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("vigil-sim-traffic/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(SimError::HttpClient)?;
        let url = format!(
            "{}/chat/completions",
            gateway_base_url.trim_end_matches('/')
        );
        let tracker = TaskTracker::new();
        let mut seeder = SplitMix64::new(seed);
        let mut lanes = Vec::with_capacity(keys.len());
        for key in keys {
            let rate = Rate {
                requests_per_sec: key.requests_per_sec,
                max_tokens: key.max_tokens,
            };
            let (rate_sender, rate_receiver) = watch::channel(rate);
            let counters = Arc::new(Counters::default());
            let lane_task = LaneTask {
                client: client.clone(),
                url: url.clone(),
                prompt: prompt_text(key.prompt_chars),
                raw_key: key.raw_key.clone(),
                model: key.model,
                rate: rate_receiver,
                counters: Arc::clone(&counters),
                rng: SplitMix64::new(seeder.next_u64()),
                shutdown: shutdown.clone(),
            };
            tracker.spawn(lane_task.run());
            lanes.push(Lane {
                raw_key: key.raw_key,
                rate: rate_sender,
                counters,
            });
        }
        tracker.close();
        Ok(TrafficDriver { lanes, tracker })
    }

    /// Changes a key's rate and `max_tokens` at once, e.g. to make it run away.
    pub fn set_rate(
        &self,
        raw_key: &str,
        requests_per_sec: f64,
        max_tokens: u32,
    ) -> Result<(), SimError> {
        validate_rate(requests_per_sec)?;
        let lane = self.lane(raw_key)?;
        lane.rate.send_replace(Rate {
            requests_per_sec,
            max_tokens,
        });
        Ok(())
    }

    /// Every key's statistics, in the order the keys were given, by raw key.
    pub fn stats(&self) -> Vec<(String, TrafficStats)> {
        self.lanes
            .iter()
            .map(|lane| (lane.raw_key.clone(), read_counters(&lane.counters)))
            .collect()
    }

    /// One key's statistics.
    pub fn stats_for(&self, raw_key: &str) -> Result<TrafficStats, SimError> {
        self.lane(raw_key).map(|lane| read_counters(&lane.counters))
    }

    /// Waits until every key's task has ended after `shutdown` was cancelled.
    pub async fn stopped(&self) {
        self.tracker.wait().await;
    }

    fn lane(&self, raw_key: &str) -> Result<&Lane, SimError> {
        self.lanes
            .iter()
            .find(|lane| lane.raw_key == raw_key)
            .ok_or_else(|| SimError::UnknownKey {
                alias: crate::abbreviate_key(raw_key),
            })
    }
}

fn validate_rate(requests_per_sec: f64) -> Result<(), SimError> {
    if requests_per_sec.is_finite() && requests_per_sec >= 0.0 {
        Ok(())
    } else {
        Err(SimError::InvalidRate(requests_per_sec))
    }
}

fn read_counters(counters: &Counters) -> TrafficStats {
    TrafficStats {
        sent: counters.sent.load(Ordering::Relaxed),
        ok: counters.ok.load(Ordering::Relaxed),
        rejected: counters.rejected.load(Ordering::Relaxed),
        errors: counters.errors.load(Ordering::Relaxed),
    }
}

/// `chars` characters of plain prose.
fn prompt_text(chars: usize) -> String {
    const PROSE: &str =
        "Summarise the incident timeline and list the follow-up actions for the on-call team. ";
    PROSE.chars().cycle().take(chars.max(1)).collect()
}

/// Everything one key's task owns.
struct LaneTask {
    client: reqwest::Client,
    url: String,
    prompt: String,
    raw_key: String,
    model: String,
    rate: watch::Receiver<Rate>,
    counters: Arc<Counters>,
    rng: SplitMix64,
    shutdown: CancellationToken,
}

enum Outcome {
    Ok,
    Rejected,
    Error,
}

impl LaneTask {
    /// Sends requests until shutdown; a rate change takes effect at once.
    async fn run(mut self) {
        // INVARIANT: every iteration awaits the shutdown token, so the loop ends promptly
        // once it is cancelled.
        loop {
            let rate = *self.rate.borrow_and_update();
            if rate.requests_per_sec <= 0.0 {
                tokio::select! {
                    () = self.shutdown.cancelled() => return,
                    changed = self.rate.changed() => if changed.is_err() { return },
                }
                continue;
            }
            let mean_interval = 1.0 / rate.requests_per_sec.min(MAX_REQUESTS_PER_SEC);
            let pause = Duration::from_secs_f64(
                mean_interval * self.rng.uniform(1.0 - JITTER, 1.0 + JITTER),
            );
            tokio::select! {
                () = self.shutdown.cancelled() => return,
                changed = self.rate.changed() => {
                    if changed.is_err() { return }
                    continue;
                }
                () = tokio::time::sleep(pause) => {}
            }
            let max_tokens = self.noisy_max_tokens(rate.max_tokens);
            self.counters.sent.fetch_add(1, Ordering::Relaxed);
            let outcome = tokio::select! {
                () = self.shutdown.cancelled() => return,
                outcome = self.send(max_tokens) => outcome,
            };
            let counter = match outcome {
                Outcome::Ok => &self.counters.ok,
                Outcome::Rejected => &self.counters.rejected,
                Outcome::Error => &self.counters.errors,
            };
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn noisy_max_tokens(&mut self, mean: u32) -> u32 {
        let factor = self.rng.uniform(1.0 - JITTER, 1.0 + JITTER);
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "clamped to u32's range first"
        )]
        let tokens = (f64::from(mean) * factor)
            .round()
            .clamp(1.0, f64::from(u32::MAX)) as u32;
        tokens
    }

    async fn send(&self, max_tokens: u32) -> Outcome {
        let body = json!({
            "model": self.model,
            "messages": [{ "role": "user", "content": self.prompt }],
            "max_tokens": max_tokens,
        });
        let sent = self
            .client
            .post(&self.url)
            .bearer_auth(&self.raw_key)
            .json(&body)
            .send()
            .await;
        match sent {
            Ok(response) => {
                let status = response.status();
                // Reading the body lets the connection be reused.
                let _body = response.bytes().await;
                if status.is_success() {
                    Outcome::Ok
                } else if status == reqwest::StatusCode::UNAUTHORIZED {
                    Outcome::Rejected
                } else {
                    Outcome::Error
                }
            }
            Err(error) => {
                tracing::debug!(error = %error.without_url(), "simulated chat request failed");
                Outcome::Error
            }
        }
    }
}
