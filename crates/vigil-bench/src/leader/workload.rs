//! The LiteLLM-shaped gateways the `leader` benchmark watches, and the config around them.
//!
//! A gateway serves [`SERIES_PER_KEY`] series per API key, each with the ten labels LiteLLM
//! 1.106 puts on its per-key metrics (the key's 64-hex hash, alias, team, user, model, ...):
//! tokens, requests and failed requests (counters), spend (a counter in fractional USD), the
//! key's remaining budget (a gauge) and a five-bucket latency histogram. Every series is read
//! by one of the five detectors each gateway gets in the config (those of
//! `examples/vigil.yaml`: a token spike and the tokens per request per key, the hours of budget
//! left per key, p95 latency per model and an error-budget burn per requested model), so the
//! scraper keeps them all. The values move as a real gateway's do: each key has its own rate
//! (20 to 400 tokens a second) and price, jittered per scrape, so the compact encoding meets
//! realistic deltas, not constant steps. One departure from the example: the budget runway
//! reads the spend of the last 5 minutes, not the last hour, since a run of the benchmark
//! has minutes of history, and a rate over an hour of which minutes are known reads low.

use std::fmt::Write as _;
use std::path::Path;

/// A metric family: its name, its type and how a key's value is read.
type Family = (&'static str, &'static str, fn(&KeyState, usize) -> f64);
/// Series per key.
pub(super) const SERIES_PER_KEY: usize = 10;

/// The scrape interval of every gateway, in seconds.
pub(super) const INTERVAL_SECS: i64 = 15;

/// The time of the first scrape (2026-11-23T12:00:00Z).
pub(super) const START_MS: i64 = 1_795_435_200_000;

/// The latency buckets' upper bounds (cumulative, as Prometheus histograms are).
const BUCKETS: [(&str, f64); 5] = [
    ("0.5", 0.2),
    ("1.0", 0.5),
    ("5.0", 0.9),
    ("20.0", 0.99),
    ("+Inf", 1.0),
];

const MODELS: [(&str, f64); 4] = [
    ("gpt-4o", 0.000_01),
    ("gpt-4o-mini", 0.000_000_6),
    ("claude-sonnet-4-5", 0.000_015),
    ("llama-3.1-70b", 0.000_002_5),
];

/// splitmix64 of `seed`: a well-mixed word.
pub(super) fn mix(seed: u64) -> u64 {
    let mut mixed = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    mixed = (mixed ^ (mixed >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    mixed = (mixed ^ (mixed >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    mixed ^ (mixed >> 31)
}

/// A number in [0, 1) from `seed`.
fn unit(seed: u64) -> f64 {
    (mix(seed) >> 11) as f64 / (1_u64 << 53) as f64
}

/// Keys running away in a scrape: the first `n_keys` keys burn `tokens` times their usual
/// tokens, each at `price` times its usual price.
#[derive(Clone, Copy, Debug)]
pub(super) struct Burst {
    pub(super) n_keys: usize,
    pub(super) tokens: f64,
    pub(super) price: f64,
}

impl Burst {
    /// Nobody runs away.
    pub(super) const NONE: Burst = Burst {
        n_keys: 0,
        tokens: 1.0,
        price: 1.0,
    };
}

/// One key's counters as of the latest scrape.
#[derive(Clone, Debug, Default)]
struct KeyState {
    tokens: f64,
    requests: f64,
    failed: f64,
    spend: f64,
    /// Requests per latency bucket, cumulative.
    buckets: [f64; 5],
}

/// One gateway: its keys and their counters.
#[derive(Clone, Debug)]
pub(super) struct Gateway {
    /// The source's name.
    pub(super) name: String,
    /// The index of its first key among all gateways' keys.
    first_key: usize,
    keys: Vec<KeyState>,
    /// Each key's labels, rendered once: `hashed_api_key="..",...` without braces.
    labels: Vec<String>,
    /// The scrapes taken so far.
    n_scrapes: i64,
}

impl Gateway {
    /// Gateway `idx` of `n_keys` keys, whose first key is `first_key`.
    pub(super) fn new(idx: usize, first_key: usize, n_keys: usize) -> Gateway {
        let labels = (first_key..first_key + n_keys)
            .map(|key| {
                let (model, _) = model_of(key);
                let hash = format!(
                    "{:016x}{:016x}{:016x}{:016x}",
                    mix(key as u64),
                    mix(key as u64 ^ 1 << 60),
                    mix(key as u64 ^ 2 << 60),
                    mix(key as u64 ^ 3 << 60)
                );
                let team = key / 40 % 250;
                format!(
                    "api_key_alias=\"service-{key:06}\",end_user=\"None\",hashed_api_key=\"{hash}\",\
                     litellm_model_name=\"{model}\",model=\"{model}\",model_id=\"{:016x}\",\
                     requested_model=\"{model}\",team=\"team-{team:03}\",\
                     team_alias=\"team-{team:03}-alias\",user=\"user-{key:06}\"",
                    mix(model.len() as u64)
                )
            })
            .collect();
        Gateway {
            name: format!("gateway-{idx:02}"),
            first_key,
            keys: vec![KeyState::default(); n_keys],
            labels,
            n_scrapes: 0,
        }
    }

    /// How many series it serves.
    pub(super) fn n_series(&self) -> usize {
        self.keys.len() * SERIES_PER_KEY
    }

    /// The time of scrape `idx`.
    pub(super) fn at_ms(idx: i64) -> i64 {
        START_MS + idx * INTERVAL_SECS * 1000
    }

    /// Advances every counter by one interval (the first keys of `burst` running away) and
    /// returns the exposition text of the scrape.
    pub(super) fn next_scrape(&mut self, burst: Burst) -> String {
        let scrape = self.n_scrapes as u64;
        self.n_scrapes += 1;
        for (local, state) in self.keys.iter_mut().enumerate() {
            let key = (self.first_key + local) as u64;
            let rate = 20.0 + (mix(key) % 380) as f64;
            let jitter = 0.8 + 0.4 * unit(key << 20 ^ scrape);
            let (boost, price_boost) = if local < burst.n_keys {
                (burst.tokens, burst.price)
            } else {
                (1.0, 1.0)
            };
            let tokens = (rate * INTERVAL_SECS as f64 * jitter * boost).round();
            let per_request = 300.0 + (mix(key ^ 7) % 900) as f64;
            let requests = (tokens / per_request).ceil();
            state.tokens += tokens;
            state.requests += requests;
            if mix(key << 24 ^ scrape ^ 0xfa11).is_multiple_of(40) {
                state.failed += 1.0;
            }
            state.spend += tokens * model_of(key as usize).1 * price_boost;
            for ((_, share), bucket) in BUCKETS.iter().zip(state.buckets.iter_mut()) {
                *bucket += (requests * share).round();
            }
        }
        self.render()
    }

    /// The exposition text of the counters as they stand, families in LiteLLM's order.
    fn render(&self) -> String {
        let mut text = String::with_capacity(self.n_series() * 330);
        let families: [Family; 5] = [
            ("litellm_total_tokens_metric_total", "counter", |s, _| {
                s.tokens
            }),
            (
                "litellm_proxy_total_requests_metric_total",
                "counter",
                |s, _| s.requests,
            ),
            (
                "litellm_proxy_failed_requests_metric_total",
                "counter",
                |s, _| s.failed,
            ),
            ("litellm_spend_metric_total", "counter", |s, _| s.spend),
            (
                "litellm_remaining_api_key_budget_metric",
                "gauge",
                |s, key| budget_of(key) - s.spend,
            ),
        ];
        for (name, kind, value) in families {
            let _ = writeln!(text, "# HELP {name} {name}\n# TYPE {name} {kind}");
            for (local, (state, labels)) in self.keys.iter().zip(&self.labels).enumerate() {
                let value = value(state, self.first_key + local);
                let _ = writeln!(text, "{name}{{{labels}}} {value}");
            }
        }
        let histogram = "litellm_request_total_latency_metric";
        let _ = writeln!(
            text,
            "# HELP {histogram} {histogram}\n# TYPE {histogram} histogram"
        );
        for (state, labels) in self.keys.iter().zip(&self.labels) {
            for ((le, _), count) in BUCKETS.iter().zip(state.buckets) {
                let _ = writeln!(text, "{histogram}_bucket{{{labels},le=\"{le}\"}} {count}");
            }
        }
        text
    }
}

/// The model key `key` calls and its price per token in USD.
fn model_of(key: usize) -> (&'static str, f64) {
    MODELS
        .get(key % MODELS.len())
        .copied()
        .unwrap_or(("gpt-4o", 0.000_01))
}

/// Key `key`'s budget: 60 hours of its usual spend (so its runway is 60 h, over the 48 h
/// at which `key-budget-runway` clears, until it runs away).
fn budget_of(key: usize) -> f64 {
    let rate = 20.0 + (mix(key as u64) % 380) as f64;
    rate * model_of(key).1 * 3_600.0 * 60.0
}

/// The five detectors of one gateway, named after it unless `setup.plain_names` (then as in
/// `examples/vigil.yaml`, which runbooks and policies name).
fn detectors_yaml(gateway: &Gateway, setup: &Setup<'_>) -> String {
    let source = &gateway.name;
    let warmup = setup.warmup_samples;
    let suffix = if setup.plain_names {
        String::new()
    } else {
        format!("-{source}")
    };
    let n_keys = gateway.keys.len();
    format!(
        r#"  - name: token-spike{suffix}
    kind: spike
    source: {source}
    metric: litellm_total_tokens_metric_total
    group_by: hashed_api_key
    alias_label: api_key_alias
    team_label: team
    ignore_values: ["", "None"]
    max_groups: {n_keys}
    warmup_samples: {warmup}
    baseline_half_life_secs: 1800
    fire_z: 6
    fire_ratio: 3
    min_rate_per_sec: 50
    fire_after_samples: 2
    clear_ratio: 1.5
    clear_after_samples: 3
    noise_floor_ratio: 0.1
    page_ratio: 10
    season_secs: 86400
    season_memory: peak
    run_evidence: true
  - name: user-errors{suffix}
    kind: burn_rate
    source: {source}
    bad: litellm_proxy_failed_requests_metric_total
    total: litellm_proxy_total_requests_metric_total
    group_by: requested_model
    objective: 0.99
    period_days: 30
    max_groups: 1000
  - name: tokens-per-request{suffix}
    kind: anomaly
    source: {source}
    ratio: [litellm_total_tokens_metric_total, litellm_proxy_total_requests_metric_total]
    window_secs: 300
    describe: tokens per request
    group_by: hashed_api_key
    direction: up
    seasonality: daily
    min_change: 200
    warmup_samples: {warmup}
    severity: ticket
    max_groups: 1000
  - name: key-budget-runway{suffix}
    kind: threshold
    source: {source}
    hours_left: [litellm_remaining_api_key_budget_metric, litellm_spend_metric_total]
    window_secs: 300
    describe: hours of key budget left
    group_by: hashed_api_key
    below: 24
    clear: 48
    fire_after_samples: 4
    clear_after_samples: 4
    severity: ticket
    max_groups: {n_keys}
  - name: p95-latency{suffix}
    kind: threshold
    source: {source}
    quantile: 0.95
    buckets: litellm_request_total_latency_metric_bucket
    window_secs: 300
    describe: p95 end-to-end latency (s)
    group_by: model
    above: 20
    clear: 12
    fire_after_samples: 4
    clear_after_samples: 4
    severity: ticket
"#
    )
}

/// What a benchmark config says besides its gateways.
pub(super) struct Setup<'a> {
    /// Detectors named as in `examples/vigil.yaml` (one gateway only), else after their
    /// gateway.
    pub(super) plain_names: bool,
    /// The spike and anomaly detectors' warm-up, in samples (20 in the example).
    pub(super) warmup_samples: usize,
    /// The runbooks' folder.
    pub(super) runbooks_dir: &'a Path,
    /// The config's SQLite ledger (the benchmark opens its own ledgers; this one is never
    /// written).
    pub(super) ledger: &'a Path,
    /// The gateways' LiteLLM admin key file (their admin API is never called), for runbooks
    /// that act on them.
    pub(super) admin_key_file: Option<&'a Path>,
}

/// A config watching `gateways` (never scraped: the benchmark hands the engine their
/// scrapes), with the shipped policies.
pub(super) fn config_yaml(gateways: &[Gateway], setup: &Setup<'_>) -> String {
    let policies = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies");
    let mut text = format!(
        "mode: autonomous\nenvironment: bench\nledger:\n  sqlite_path: \"{}\"\n\
         policies_dir: \"{}\"\nrunbooks_dir: \"{}\"\nsources:\n",
        setup.ledger.display(),
        policies.display(),
        setup.runbooks_dir.display()
    );
    for gateway in gateways {
        let _ = write!(
            text,
            "  - name: {}\n    kind: litellm\n    url: http://127.0.0.1:9/metrics/\n    \
             scrape_interval_secs: {INTERVAL_SECS}\n    max_series: {}\n",
            gateway.name,
            gateway.n_series()
        );
        if let Some(key_file) = setup.admin_key_file {
            let _ = writeln!(
                text,
                "    admin:\n      master_key: {{ file: \"{}\" }}",
                key_file.display()
            );
        }
    }
    text.push_str("detectors:\n");
    for gateway in gateways {
        text.push_str(&detectors_yaml(gateway, setup));
    }
    text.push_str("diagnosis:\n  runaway_min_share: 0.7\npager:\n  kind: log\n");
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples(text: &str) -> Vec<(String, f64)> {
        let parsed = vigil_core::exposition::parse_text(text);
        assert!(parsed.errors.is_empty(), "{:?}", parsed.errors.first());
        parsed
            .samples
            .iter()
            .map(|sample| (format!("{}{:?}", sample.name, sample.labels), sample.value))
            .collect()
    }

    // The benchmark counts the series it generates as watched: each must parse and be read
    // by a detector of the config, or the scraper would drop it.
    #[test]
    fn every_series_parses_and_is_read_by_a_detector() {
        let mut gateway = Gateway::new(3, 300, 7);
        let text = gateway.next_scrape(Burst::NONE);
        let parsed = vigil_core::exposition::parse_text(&text);
        assert!(parsed.errors.is_empty(), "{:?}", parsed.errors.first());
        assert_eq!(parsed.samples.len(), 7 * SERIES_PER_KEY);
        assert_eq!(gateway.n_series(), 7 * SERIES_PER_KEY);

        let dir = std::env::temp_dir().join(format!("vigil-bench-workload-{}", std::process::id()));
        let runbooks = dir.join("runbooks");
        std::fs::create_dir_all(&runbooks).unwrap();
        let config_path = dir.join("vigil.yaml");
        let setup = Setup {
            plain_names: false,
            warmup_samples: 8,
            runbooks_dir: &runbooks,
            ledger: &dir.join("unused.db"),
            admin_key_file: None,
        };
        std::fs::write(
            &config_path,
            config_yaml(std::slice::from_ref(&gateway), &setup),
        )
        .unwrap();
        let bundle = vigil::bundle::load(&config_path);
        std::fs::remove_dir_all(&dir).unwrap();
        let bundle = bundle.unwrap_or_else(|problems| panic!("{problems}"));
        let metrics = bundle.engine.metrics_for_source(&gateway.name);
        for sample in &parsed.samples {
            assert!(
                metrics.contains(&*sample.name),
                "{} is not read",
                sample.name
            );
        }
        assert_eq!(bundle.engine.detectors.len(), 5);
    }

    #[test]
    fn a_burst_raises_only_the_first_keys() {
        let mut calm = Gateway::new(0, 0, 4);
        let mut bursting = calm.clone();
        let _ = (
            calm.next_scrape(Burst::NONE),
            bursting.next_scrape(Burst::NONE),
        );
        let burst = Burst {
            n_keys: 1,
            tokens: 30.0,
            price: 1.0,
        };
        let (calm, bursting) = (
            samples(&calm.next_scrape(Burst::NONE)),
            samples(&bursting.next_scrape(burst)),
        );
        let changed: Vec<&String> = calm
            .iter()
            .zip(&bursting)
            .filter(|(calm, bursting)| calm != bursting)
            .map(|((name, _), _)| name)
            .collect();
        assert!(!changed.is_empty());
        // Only the first key's series differ (its hash is in each).
        let first_key = "service-000000";
        assert!(
            changed.iter().all(|name| name.contains(first_key)),
            "{changed:?}"
        );
    }
}
