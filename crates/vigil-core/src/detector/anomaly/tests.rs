//! The anomaly detector per group: firing on a reading far outside its usual range (with its
//! evidence), clearing with hysteresis or once the baseline has moved, flapping held by the
//! refractory period, staleness, direction, `min_change` and the bound on groups.

use super::*;
use crate::detector::adaptive::AdaptiveConfig;
use crate::signal::{Labels, Sample};
use crate::store::{Selector, StoreConfig};

const SOURCE: &str = "gateway";
const METRIC: &str = "latency_seconds";

fn config(direction: Direction) -> AnomalyConfig {
    AnomalyConfig {
        name: "latency-anomaly".to_owned(),
        source: SOURCE.to_owned(),
        reading: Reading::Value {
            selector: Selector::parse(METRIC).unwrap(),
        },
        describe: "p95 latency (s)".to_owned(),
        group_by: Some("model".to_owned()),
        method: AdaptiveConfig {
            direction,
            // No daily memory: these tests span hours, not days.
            season_secs: 0,
            ..AdaptiveConfig::default()
        },
        min_change: 0.0,
        clear_fraction: 0.5,
        clear_after_samples: 3,
        severity: Severity::Ticket,
        max_groups: 10,
    }
}

/// A deterministic noise source (a linear congruential generator) in `[-1, 1]`.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 11) as f64 / (1_u64 << 53) as f64) * 2.0 - 1.0
    }
}

/// A store fed one scrape per 15 s and a detector observing it.
struct Feed {
    store: SeriesStore,
    detector: AnomalyDetector,
    at_ms: i64,
    findings: Vec<Finding>,
}

impl Feed {
    fn new(config: AnomalyConfig) -> Feed {
        Feed {
            store: SeriesStore::new(StoreConfig::default()),
            detector: AnomalyDetector::new(config),
            at_ms: 1_800_000_000_000,
            findings: Vec::new(),
        }
    }

    /// One scrape with one reading per `(model, value)`; `F` for a firing, `C` for a
    /// clearing and `.` for nothing, per transition of the scrape (`.` when none).
    fn scrape(&mut self, readings: &[(&str, f64)]) -> String {
        self.at_ms += 15_000;
        let at = Timestamp(self.at_ms);
        let samples: Vec<Sample> = readings
            .iter()
            .map(|(model, value)| Sample {
                name: METRIC.to_owned(),
                labels: Labels::from_iter([("model", *model)]),
                value: *value,
                timestamp_ms: None,
            })
            .collect();
        self.store.ingest(SOURCE, at, &samples);
        let transitions = self.detector.observe(at, &self.store);
        if transitions.is_empty() {
            return ".".to_owned();
        }
        transitions
            .into_iter()
            .map(|transition| match transition {
                Transition::Fired(finding) => {
                    self.findings.push(*finding);
                    'F'
                }
                Transition::Cleared(_) => 'C',
            })
            .collect()
    }

    /// `n` scrapes of model `m` at `level` plus noise of `spread`; the transitions.
    fn run(&mut self, noise: &mut Noise, n: usize, level: f64, spread: f64) -> String {
        (0..n)
            .map(|_| self.scrape(&[("m", level + spread * noise.next())]))
            .collect()
    }
}

fn only(trace: &str, marks: &str) -> String {
    trace.chars().filter(|mark| marks.contains(*mark)).collect()
}

#[test]
fn a_level_shift_fires_with_its_evidence_and_clears_once_back_under_the_clear_level() {
    let mut feed = Feed::new(config(Direction::Both));
    let mut noise = Noise(7);
    let quiet = feed.run(&mut noise, 400, 1.0, 0.05);
    assert_eq!(only(&quiet, "FC"), "", "no finding on a steady reading");
    let shifted = feed.run(&mut noise, 20, 3.0, 0.05);
    let fired_at = shifted.find('F').expect("the shift fires");
    assert!(fired_at <= 5, "fires within a few readings: {shifted}");
    assert_eq!(
        only(&shifted, "FC"),
        "F",
        "one finding for one shift: {shifted}"
    );
    let finding = feed.findings.first().unwrap();
    assert_eq!(finding.fingerprint, "latency-anomaly/model=m");
    assert_eq!(finding.subject.value, "m");
    assert_eq!(finding.severity, Severity::Ticket);
    let Evidence::Anomaly(evidence) = &finding.evidence else {
        panic!("{:?}", finding.evidence);
    };
    assert!(evidence.value > 2.8, "{evidence:?}");
    assert!((evidence.expected - 1.0).abs() < 0.1, "{evidence:?}");
    assert!(evidence.is_high());
    assert!(
        evidence.p_value < evidence.alert_probability,
        "{evidence:?}"
    );
    assert!(
        (evidence.clear - (evidence.expected + 0.5 * (evidence.value - evidence.expected))).abs()
            < 1e-12
    );
    assert_eq!(
        evidence.recent.last().map(|point| point.value),
        Some(evidence.value)
    );
    assert!(evidence.n_samples > 400);
    // Back to normal: three readings under the clear level clear it.
    let back = feed.run(&mut noise, 10, 1.0, 0.05);
    assert_eq!(back, "..C.......", "{back}");
    assert!(!feed.detector.is_firing("m"));
}

#[test]
fn readings_between_the_levels_hold_the_finding() {
    let mut feed = Feed::new(config(Direction::Up));
    let mut noise = Noise(11);
    feed.run(&mut noise, 400, 1.0, 0.05);
    let shifted = feed.run(&mut noise, 10, 3.0, 0.05);
    assert!(shifted.contains('F'), "{shifted}");
    let clear = match &feed.findings[0].evidence {
        Evidence::Anomaly(evidence) => evidence.clear,
        other => panic!("{other:?}"),
    };
    // Just above the clear level, then a run under it broken once: no clearing until three
    // in a row.
    let mut trace = String::new();
    for value in [
        clear + 0.1,
        clear + 0.1,
        clear - 0.2,
        clear - 0.2,
        clear + 0.1,
    ] {
        trace.push_str(&feed.scrape(&[("m", value)]));
    }
    assert_eq!(trace, ".....");
    for _ in 0..3 {
        trace.push_str(&feed.scrape(&[("m", 1.0)]));
    }
    assert_eq!(trace, ".......C");
}

#[test]
fn a_level_that_stays_clears_once_the_baseline_has_moved_past_the_clear_level() {
    let mut feed = Feed::new(config(Direction::Both));
    let mut noise = Noise(3);
    feed.run(&mut noise, 400, 1.0, 0.05);
    // The new level stays: the finding is open while it is news, and clears once the
    // baseline has learnt it (bounded: within a few of the baseline's half-lives).
    let stayed = feed.run(&mut noise, 20_000, 3.0, 0.05);
    assert_eq!(only(&stayed, "FC"), "FC", "{}", only(&stayed, "FC"));
    let cleared_at = stayed.find('C').unwrap();
    assert!(
        cleared_at > 100,
        "held while the level is news: {cleared_at}"
    );
    assert!(!feed.detector.is_firing("m"));
}

#[test]
fn a_reading_that_flaps_fires_at_most_once_per_refractory_period() {
    let mut feed = Feed::new(config(Direction::Both));
    let mut noise = Noise(5);
    feed.run(&mut noise, 400, 1.0, 0.05);
    // Every ten readings, three far above and then back: each spike clears, and a new one
    // within the refractory period (200 readings) does not fire again.
    let refractory = AdaptiveConfig::default().refractory_samples as usize;
    let mut trace = String::new();
    for _ in 0..(refractory / 10) {
        trace.push_str(&feed.run(&mut noise, 3, 4.0, 0.05));
        trace.push_str(&feed.run(&mut noise, 7, 1.0, 0.05));
    }
    assert_eq!(only(&trace, "F"), "F", "{trace}");
    assert_eq!(only(&trace, "FC"), "FC");
}

#[test]
fn a_stale_group_neither_learns_nor_fires_nor_clears() {
    let mut feed = Feed::new(config(Direction::Both));
    let mut noise = Noise(9);
    feed.run(&mut noise, 400, 1.0, 0.05);
    let shifted = feed.run(&mut noise, 5, 3.0, 0.05);
    assert!(shifted.contains('F'), "{shifted}");
    // The series goes away for 20 minutes (another model keeps the source scraped): the
    // finding stays open, silence is not a recovery.
    let mut silent = String::new();
    for _ in 0..80 {
        silent.push_str(&feed.scrape(&[("other", 5.0)]));
    }
    assert_eq!(only(&silent, "FC"), "");
    assert!(feed.detector.is_firing("m"));
    // When the points are older than the reading's lookback, the group has no reading.
    assert!(
        !feed
            .detector
            .read(Timestamp(feed.at_ms), &feed.store)
            .contains_key("m")
    );
    // It returns at its usual level and clears.
    let back = feed.run(&mut noise, 5, 1.0, 0.05);
    assert_eq!(only(&back, "FC"), "C");
}

#[test]
fn direction_decides_which_deviations_count() {
    let mut up = Feed::new(config(Direction::Up));
    let mut down = Feed::new(config(Direction::Down));
    for feed in [&mut up, &mut down] {
        let mut noise = Noise(13);
        feed.run(&mut noise, 400, 10.0, 0.5);
    }
    let mut noise = Noise(17);
    let fell_for_up = up.run(&mut noise, 20, 2.0, 0.5);
    let mut noise = Noise(17);
    let fell_for_down = down.run(&mut noise, 20, 2.0, 0.5);
    assert_eq!(only(&fell_for_up, "F"), "", "a drop is not news to `up`");
    assert_eq!(only(&fell_for_down, "F"), "F", "{fell_for_down}");
    let Evidence::Anomaly(evidence) = &down.findings[0].evidence else {
        panic!();
    };
    assert!(!evidence.is_high());
    assert!(evidence.clear > evidence.value && evidence.clear < evidence.expected);
}

#[test]
fn min_change_keeps_a_significant_but_tiny_change_quiet() {
    let mut strict = config(Direction::Both);
    strict.min_change = 0.5;
    let mut feed = Feed::new(strict);
    let mut noise = Noise(19);
    // A very steady reading moves by 0.2: many spreads, yet under `min_change`.
    feed.run(&mut noise, 400, 1.0, 0.001);
    let small = feed.run(&mut noise, 30, 1.2, 0.001);
    assert_eq!(only(&small, "F"), "", "{small}");
    let mut loose = Feed::new(config(Direction::Both));
    let mut noise = Noise(19);
    loose.run(&mut noise, 400, 1.0, 0.001);
    let small = loose.run(&mut noise, 30, 1.2, 0.001);
    assert_eq!(
        only(&small, "F"),
        "F",
        "without min_change it fires: {small}"
    );
}

#[test]
fn groups_are_independent_and_bounded() {
    let mut bounded = config(Direction::Both);
    bounded.max_groups = 2;
    let mut feed = Feed::new(bounded);
    let mut noise = Noise(23);
    let mut trace = String::new();
    for index in 0..420 {
        let jump = if index >= 400 { 3.0 } else { 1.0 };
        let a = 1.0 + 0.05 * noise.next();
        let b = jump + 0.05 * noise.next();
        trace.push_str(&feed.scrape(&[("a", a), ("b", b), ("c", 1.0)]));
    }
    assert!(feed.detector.is_firing("b"));
    assert!(!feed.detector.is_firing("a"));
    assert!(!feed.detector.is_firing("c"), "c was never admitted");
    assert_eq!(feed.detector.n_groups_refused(), 420);
    assert_eq!(feed.findings.len(), 1);
    assert_eq!(feed.findings[0].subject.value, "b");
}

#[test]
fn a_repeated_timestamp_is_fed_like_any_reading() {
    let mut feed = Feed::new(config(Direction::Both));
    let mut noise = Noise(29);
    feed.run(&mut noise, 400, 1.0, 0.05);
    // The same instant observed twice (a push and a scrape in the same millisecond).
    let at = Timestamp(feed.at_ms);
    let before = feed.detector.groups.get("m").unwrap().n_samples;
    let transitions = feed.detector.observe(at, &feed.store);
    assert!(transitions.is_empty());
    assert_eq!(feed.detector.groups.get("m").unwrap().n_samples, before + 1);
}

#[test]
fn a_change_kept_quiet_by_min_change_does_not_mute_the_group() {
    let mut strict = config(Direction::Both);
    strict.min_change = 0.5;
    let mut feed = Feed::new(strict);
    let mut noise = Noise(31);
    feed.run(&mut noise, 400, 1.0, 0.001);
    // Improbable but small: no finding; a large change right after still fires.
    let small = feed.run(&mut noise, 20, 1.2, 0.001);
    assert_eq!(only(&small, "F"), "", "{small}");
    let back = feed.run(&mut noise, 10, 1.0, 0.001);
    let large = feed.run(&mut noise, 10, 3.0, 0.001);
    assert_eq!(only(&format!("{back}{large}"), "F"), "F", "{back}{large}");
}
