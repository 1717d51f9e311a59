//! The threshold detector on each kind of reading: firing after its run of bad readings,
//! holding between the two levels (hysteresis), clearing, and staleness.

use super::*;
use crate::signal::{Labels, Sample};
use crate::store::Selector;
use crate::store::StoreConfig;

const SOURCE: &str = "gateway";

/// A sample as a test writes it: name, labels, value.
type Row<'a> = (&'a str, &'a [(&'a str, &'a str)], f64);

/// The same with owned label lists, for samples built in a loop.
type OwnedRow<'a> = (&'a str, Vec<(&'a str, &'a str)>, f64);

fn config(reading: Reading, bound: Bound, fire: f64, clear: f64) -> ThresholdConfig {
    ThresholdConfig {
        name: "check".to_owned(),
        source: SOURCE.to_owned(),
        reading,
        describe: "the reading".to_owned(),
        group_by: Some("model".to_owned()),
        bound,
        fire,
        clear,
        fire_after_samples: 3,
        clear_after_samples: 2,
        severity: Severity::Page,
        max_groups: 10,
    }
}

/// A store fed one scrape per 15 s and a detector observing it.
struct Feed {
    store: SeriesStore,
    detector: ThresholdDetector,
    at_ms: i64,
}

impl Feed {
    fn new(config: ThresholdConfig) -> Feed {
        Feed {
            store: SeriesStore::new(StoreConfig::default()),
            detector: ThresholdDetector::new(config),
            at_ms: 1_800_000_000_000,
        }
    }

    /// One scrape of `(name, labels, value)` samples; returns `F` for a firing, `C` for a
    /// clearing and `.` for nothing.
    fn scrape(&mut self, samples: &[Row<'_>]) -> char {
        self.at_ms += 15_000;
        let at = Timestamp(self.at_ms);
        let samples: Vec<Sample> = samples
            .iter()
            .map(|(name, labels, value)| Sample {
                name: (*name).to_owned(),
                labels: labels.iter().copied().collect::<Labels>(),
                value: *value,
                timestamp_ms: None,
            })
            .collect();
        self.store.ingest(SOURCE, at, &samples);
        match self.detector.observe(at, &self.store).as_slice() {
            [] => '.',
            [Transition::Fired(_)] => 'F',
            [Transition::Cleared(_)] => 'C',
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn a_gauge_fires_after_its_run_holds_between_levels_and_clears_below_the_clear_level() {
    // An agent's iteration depth, capped at 25, clear under 10.
    let mut feed = Feed::new(config(
        Reading::Value {
            selector: Selector::parse("agent_iterations").unwrap(),
        },
        Bound::Above,
        25.0,
        10.0,
    ));
    let depths = [
        5.0, 30.0, 40.0, 8.0, 30.0, 31.0, 32.0, 33.0, 20.0, 15.0, 9.0, 9.0, 30.0,
    ];
    let trace: String = depths
        .iter()
        .map(|depth| feed.scrape(&[("agent_iterations", &[("model", "m")], *depth)]))
        .collect();
    // A run broken by 8 does not fire; 20 and 15 are between the levels and hold it; two
    // readings under 10 clear it.
    assert_eq!(trace, "......F....C.");
}

#[test]
fn p95_latency_from_a_histogram_fires_per_model() {
    let mut feed = Feed::new(config(
        Reading::Quantile {
            selector: Selector::parse("latency_seconds_bucket").unwrap(),
            quantile: 0.95,
            window_secs: 60,
        },
        Bound::Above,
        2.0,
        1.0,
    ));
    // Per scrape, 100 requests per model, all under 0.5 s; from scrape 8 on, every request
    // of `slow` takes over 5 s (its `+Inf` bucket alone grows).
    let (mut fast_counts, mut slow_counts) = ([0.0; 3], [0.0; 3]);
    let mut trace = String::new();
    for scrape in 0..16 {
        for count in &mut fast_counts {
            *count += 100.0;
        }
        if scrape < 8 {
            for count in &mut slow_counts {
                *count += 100.0;
            }
        } else {
            slow_counts[2] += 100.0;
        }
        let mut samples: Vec<OwnedRow<'_>> = Vec::new();
        for (model, counts) in [("fast", fast_counts), ("slow", slow_counts)] {
            for (le, count) in ["0.5", "5", "+Inf"].into_iter().zip(counts) {
                samples.push((
                    "latency_seconds_bucket",
                    vec![("model", model), ("le", le)],
                    count,
                ));
            }
        }
        let borrowed: Vec<Row<'_>> = samples
            .iter()
            .map(|(name, labels, value)| (*name, labels.as_slice(), *value))
            .collect();
        trace.push(feed.scrape(&borrowed));
    }
    // Once the 60 s window's slow requests pass 5%, `slow`'s p95 is past 2 s (at the top
    // finite bound, 5 s, as `histogram_quantile` answers); three readings later it fires.
    assert_eq!(trace.matches('F').count(), 1, "{trace}");
    assert!(feed.detector.is_firing("slow"));
    assert!(!feed.detector.is_firing("fast"));
}

#[test]
fn a_hit_ratio_that_drops_fires_below_and_a_vanished_series_is_not_a_recovery() {
    let mut feed = Feed::new(config(
        Reading::Ratio {
            numerator: Selector::parse("cache_hits_total").unwrap(),
            denominator: Selector::parse("cache_requests_total").unwrap(),
            window_secs: 60,
        },
        Bound::Below,
        0.5,
        0.7,
    ));
    let (mut hits, mut requests) = (0.0, 0.0);
    let mut trace = String::new();
    for scrape in 0..14 {
        requests += 100.0;
        hits += if scrape < 6 { 90.0 } else { 10.0 };
        trace.push(feed.scrape(&[
            ("cache_hits_total", &[("model", "m")], hits),
            ("cache_requests_total", &[("model", "m")], requests),
        ]));
    }
    assert_eq!(trace.matches('F').count(), 1, "{trace}");
    // The cache's exporter disappears: no reading, so nothing clears.
    for _ in 0..10 {
        assert_eq!(feed.scrape(&[]), '.');
    }
    assert!(feed.detector.is_firing("m"));
}

#[test]
fn a_counter_rate_fires_and_the_finding_carries_its_evidence() {
    let mut config = config(
        Reading::Rate {
            selector: Selector::parse(r#"errors_total{reason="context_window"}"#).unwrap(),
            window_secs: 60,
        },
        Bound::Above,
        1.0,
        0.5,
    );
    config.fire_after_samples = 2;
    let mut feed = Feed::new(config);
    let mut count = 0.0;
    let mut findings = Vec::new();
    for scrape in 0..12 {
        count += if scrape < 5 { 1.0 } else { 60.0 };
        feed.at_ms += 15_000;
        let at = Timestamp(feed.at_ms);
        let samples = [
            Sample {
                name: "errors_total".to_owned(),
                labels: [("model", "m"), ("reason", "context_window")]
                    .into_iter()
                    .collect(),
                value: count,
                timestamp_ms: None,
            },
            Sample {
                name: "errors_total".to_owned(),
                labels: [("model", "m"), ("reason", "rate_limit")]
                    .into_iter()
                    .collect(),
                value: count * 100.0,
                timestamp_ms: None,
            },
        ];
        feed.store.ingest(SOURCE, at, &samples);
        findings.extend(feed.detector.observe(at, &feed.store));
    }
    let [Transition::Fired(finding)] = findings.as_slice() else {
        panic!("{findings:?}");
    };
    assert_eq!(finding.fingerprint, "check/model=m");
    let Evidence::Threshold(evidence) = &finding.evidence else {
        panic!("{:?}", finding.evidence);
    };
    assert!(evidence.value >= 1.0, "{evidence:?}");
    assert_eq!(evidence.n_observations, 2);
    assert_eq!((evidence.fire, evidence.clear), (1.0, 0.5));
    assert!(evidence.recent.len() >= 2);
}

#[test]
fn a_budget_forecast_to_run_out_within_the_limit_fires_and_idle_spend_is_infinite_time() {
    // A team with $100 left; alert when it runs out within 24 h at the last 10 minutes' spend.
    let mut config = config(
        Reading::HoursLeft {
            remaining: Selector::parse("remaining_budget").unwrap(),
            spend: Selector::parse("spend_total").unwrap(),
            window_secs: 600,
        },
        Bound::Below,
        24.0,
        48.0,
    );
    config.group_by = Some("team".to_owned());
    config.fire_after_samples = 2;
    let mut feed = Feed::new(config);
    let (mut remaining, mut spent) = (100.0, 0.0);
    let mut trace = String::new();
    // Idle for a while (infinite hours left), then $0.03 per 15 s ($7.2 an hour: 13.9 h left
    // of $100), then idle again.
    for scrape in 0..90 {
        let cost = if (20..44).contains(&scrape) {
            0.03
        } else {
            0.0
        };
        remaining -= cost;
        spent += cost;
        trace.push(feed.scrape(&[
            ("remaining_budget", &[("team", "ml")], remaining),
            ("spend_total", &[("team", "ml")], spent),
        ]));
    }
    let reading = feed.detector.read(Timestamp(feed.at_ms), &feed.store);
    assert_eq!(reading.get("ml"), Some(&f64::INFINITY), "{reading:?}");
    // It fires once the 10-minute rate shows the spend; it clears once the window is idle.
    assert_eq!(trace.matches('F').count(), 1, "{trace}");
    assert_eq!(trace.matches('C').count(), 1, "{trace}");
    assert!(trace.find('F') < trace.find('C'), "{trace}");
}
