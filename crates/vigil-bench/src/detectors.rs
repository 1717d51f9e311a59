//! `vigil-bench detectors`: samples per second through every detector kind the engine runs
//! on scrapes, with 100,000 active series, on one core.
//!
//! The LiteLLM-like workload of `vigil-bench store` (20 labels per series, ten series per API
//! key) is ingested scrape by scrape; after each scrape every detector kind observes the store,
//! as the engine does: the spike detector (one group per key, 10,000 keys, daily seasonality
//! on), the burn-rate detector (429s over all requests per model, the Workbook's three rules),
//! a threshold detector (the request rate per team), a proportion-drop detector (the share
//! of 200s per model), a version-change marker (the `model_id` of each model group) and an
//! anomaly detector (the request rate per key, 10,000 groups, daily memory on). Ingest
//! is timed separately in the same run: it is the baseline the detectors' cost is compared
//! with.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use vigil_core::detector::Severity;
use vigil_core::detector::adaptive::AdaptiveConfig;
use vigil_core::detector::anomaly::{AnomalyConfig, AnomalyDetector};
use vigil_core::detector::burn_rate::{BurnRateConfig, BurnRateDetector, BurnRule};
use vigil_core::detector::change::{VersionChangeConfig, VersionChangeDetector};
use vigil_core::detector::proportion::{ProportionDropConfig, ProportionDropDetector};
use vigil_core::detector::spike::{SeriesRead, SpikeConfig, SpikeDetector, SpikeThresholds};
use vigil_core::detector::threshold::{Bound, Reading, ThresholdConfig, ThresholdDetector};
use vigil_core::store::bench_support::{self, LitellmWorkload};
use vigil_core::store::{Selector, SeriesStore, StoreConfig};

use crate::store::thread_cpu_time;

/// The one-line description in the benchmark list.
pub const ABOUT: &str = "detectors: samples/s through every detector kind with 100k active series";

/// The scrapes before timing starts: past the spike detector's warm-up.
const WARMUP_SCRAPES: usize = 25;

fn parse_options(args: &[String]) -> anyhow::Result<(usize, usize)> {
    let (mut n_series, mut n_scrapes) = (100_000, 40);
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        let mut value = || -> anyhow::Result<usize> {
            iter.next()
                .with_context(|| format!("`{arg}` needs a number"))?
                .parse()
                .with_context(|| format!("`{arg}` needs a number"))
        };
        match arg.as_str() {
            "--series" => n_series = value()?,
            "--scrapes" => n_scrapes = value()?,
            other => bail!(
                "unknown option `{other}` (options: --series N, default 100000; --scrapes N, default 40)"
            ),
        }
    }
    if n_series == 0 || n_scrapes == 0 {
        bail!("need at least 1 series and 1 timed scrape");
    }
    Ok((n_series, n_scrapes))
}

/// On-CPU time where Linux tells it, else wall time, of `work`.
fn timed<T>(work: impl FnOnce() -> T) -> (T, Duration) {
    let cpu_before = thread_cpu_time();
    let started = Instant::now();
    let result = work();
    let wall = started.elapsed();
    let cpu = thread_cpu_time()
        .zip(cpu_before)
        .map(|(after, before)| after.saturating_sub(before));
    (result, cpu.unwrap_or(wall))
}

/// Runs the benchmark with `args` (`--series N`, `--scrapes N`).
pub fn run(args: &[String]) -> anyhow::Result<()> {
    let (n_series, n_scrapes) = parse_options(args)?;
    let metric = bench_support::METRIC_NAME;
    let mut store = SeriesStore::new(StoreConfig {
        max_series: n_series,
        ..StoreConfig::default()
    });
    let mut spike = SpikeDetector::new(SpikeConfig {
        name: "token-spike".to_owned(),
        source: bench_support::SOURCE.to_owned(),
        metric: metric.to_owned(),
        read: SeriesRead::CounterRate,
        unit: Default::default(),
        group_by: "hashed_api_key".to_owned(),
        alias_label: Some("api_key_alias".to_owned()),
        team_label: Some("team".to_owned()),
        ignore_values: vec![String::new(), "None".to_owned()],
        max_groups: n_series,
        thresholds: SpikeThresholds::default(),
    });
    let selector = |text: String| Selector::parse(text).context("a benchmark selector");
    let mut burn = BurnRateDetector::new(BurnRateConfig {
        name: "provider-errors".to_owned(),
        source: bench_support::SOURCE.to_owned(),
        bad: selector(format!("{metric}{{status_code=\"429\"}}"))?,
        total: selector(metric.to_owned())?,
        group_by: Some("model_group".to_owned()),
        objective: 0.999,
        period_secs: 30 * 86_400,
        rules: BurnRule::workbook(30 * 86_400),
        bucket_ms: 30_000,
        max_groups: 1000,
    });
    let mut threshold = ThresholdDetector::new(ThresholdConfig {
        name: "team-requests".to_owned(),
        source: bench_support::SOURCE.to_owned(),
        reading: Reading::Rate {
            selector: selector(metric.to_owned())?,
            window_secs: 300,
        },
        describe: "requests per second".to_owned(),
        group_by: Some("team".to_owned()),
        bound: Bound::Above,
        fire: 1e12,
        clear: 1e11,
        fire_after_samples: 3,
        clear_after_samples: 3,
        severity: Severity::Ticket,
        max_groups: n_series,
    });
    let mut proportion = ProportionDropDetector::new(ProportionDropConfig {
        name: "success-share".to_owned(),
        source: bench_support::SOURCE.to_owned(),
        good: selector(format!("{metric}{{status_code=\"200\"}}"))?,
        total: selector(metric.to_owned())?,
        total_is_bad: false,
        describe: "share of 200s".to_owned(),
        group_by: Some("model_group".to_owned()),
        window_secs: 300,
        baseline_half_life_secs: 7 * 86_400,
        min_cases: 10,
        min_baseline_cases: 50,
        min_drop: 0.1,
        alert_probability: 1e-3,
        clear_drop: 0.05,
        severity: Severity::Page,
        max_groups: 1000,
        drift: None,
    });
    let mut change = VersionChangeDetector::new(VersionChangeConfig {
        name: "deployments".to_owned(),
        source: bench_support::SOURCE.to_owned(),
        selector: selector(metric.to_owned())?,
        version_label: "model_id".to_owned(),
        group_by: Some("model_group".to_owned()),
        max_versions: 32,
        max_groups: 1000,
    });
    // The shipped method (NAB's setting, daily memory on) per key: the most groups a kind
    // sees in this workload, each with its own baselines and seasonal memory.
    let mut anomaly = AnomalyDetector::new(AnomalyConfig {
        name: "key-requests".to_owned(),
        source: bench_support::SOURCE.to_owned(),
        reading: Reading::Rate {
            selector: selector(metric.to_owned())?,
            window_secs: 60,
        },
        describe: "requests per second".to_owned(),
        group_by: Some("hashed_api_key".to_owned()),
        method: AdaptiveConfig::default(),
        min_change: 0.0,
        clear_fraction: 0.5,
        clear_after_samples: 3,
        severity: Severity::Ticket,
        max_groups: n_series,
    });
    let mut workload = LitellmWorkload::new(n_series);
    println!(
        "detectors: {n_series} series ({} keys) x {n_scrapes} timed scrapes at 15 s after {WARMUP_SCRAPES} warm-up scrapes, one core",
        n_series.div_ceil(10)
    );
    let mut ingest = Duration::ZERO;
    // Per detector: spike, burn rate, threshold, proportion drop, version change, anomaly.
    let mut took = [Duration::ZERO; 6];
    // Per detector, as `took`.
    let mut n_transitions = [0_usize; 6];
    for scrape in 0..WARMUP_SCRAPES + n_scrapes {
        let (at, samples) = workload.next_scrape();
        let (report, ingest_took) = timed(|| store.ingest(bench_support::SOURCE, at, samples));
        if report.n_appended != n_series {
            bail!(
                "scrape {scrape} appended {} samples, not {n_series}",
                report.n_appended
            );
        }
        let (spiked, spike_took) = timed(|| spike.observe(at, &store));
        let (burned, burn_took) = timed(|| burn.observe(at, &store));
        let (breached, threshold_took) = timed(|| threshold.observe(at, &store));
        let (dropped, proportion_took) = timed(|| proportion.observe(at, &store));
        let (changed, change_took) = timed(|| change.observe(at, &store));
        let (unusual, anomaly_took) = timed(|| anomaly.observe(at, &store));
        let counts = [
            spiked.len(),
            burned.len(),
            breached.len(),
            dropped.len(),
            changed.len(),
            unusual.len(),
        ];
        for (total, count) in n_transitions.iter_mut().zip(counts) {
            *total += count;
        }
        if scrape >= WARMUP_SCRAPES {
            ingest += ingest_took;
            let this = [
                spike_took,
                burn_took,
                threshold_took,
                proportion_took,
                change_took,
                anomaly_took,
            ];
            for (total, one) in took.iter_mut().zip(this) {
                *total += one;
            }
        }
    }
    let samples = (n_series * n_scrapes) as f64;
    let rate = |took: Duration| samples / took.as_secs_f64().max(1e-9);
    let row = |what: &str, took: Duration| {
        println!(
            "  {what:<34}{:>14.0} samples/s {:>8.0} ns/sample {:>7.2}x ingest's time",
            rate(took),
            1e9 / rate(took),
            took.as_secs_f64() / ingest.as_secs_f64().max(1e-9)
        );
    };
    let all: Duration = took.iter().sum();
    row("store ingest (baseline)", ingest);
    row("spike detector (10 series per key)", took[0]);
    row("burn-rate detector (per model)", took[1]);
    row("threshold detector (rate per team)", took[2]);
    row("proportion drop (200s per model)", took[3]);
    row("version change (model_id per model)", took[4]);
    row("anomaly (request rate per key)", took[5]);
    row("all detectors", all);
    row("ingest + all detectors", ingest + all);
    // Half the workload's series answer 429, so each model's error budget burns: its page and
    // its ticket fire once (10 for 5 models); the steady token rates raise no spike.
    println!(
        "  transitions raised (spike, burn rate, threshold, proportion, change, anomaly): {n_transitions:?} (expected [0, 10, 0, 0, 0, 0]: each model's page and ticket; the anomaly detector is still in its warm-up)"
    );
    let per_scrape = n_series as f64 / 15.0;
    println!(
        "  headroom: {n_series} series scraped every 15 s is {per_scrape:.0} samples/s, {:.0}x under what ingest + detectors sustain",
        rate(ingest + all) / per_scrape
    );
    Ok(())
}
