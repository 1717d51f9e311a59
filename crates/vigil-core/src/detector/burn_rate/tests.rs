//! The burn-rate detector against the Workbook's arithmetic: detection time
//! `(1 - objective) / error_ratio * window * burn_rate`, and reset within the short window.

use super::*;
use crate::signal::{Labels, Sample};
use crate::store::Selector;
use crate::store::StoreConfig;

const SOURCE: &str = "gateway";
const T0: i64 = 1_800_000_000_000;

/// Healthy traffic before an outage: long enough to fill the 6 h window.
const HEALTHY_SECS: i64 = 7 * 3600;

fn config(rules: Vec<BurnRule>, bucket_ms: i64) -> BurnRateConfig {
    BurnRateConfig {
        name: "provider-errors".to_owned(),
        source: SOURCE.to_owned(),
        bad: Selector::parse(r#"requests_total{outcome="error"}"#).unwrap(),
        total: Selector::parse("requests_total").unwrap(),
        group_by: Some("provider".to_owned()),
        objective: 0.999,
        period_secs: WORKBOOK_PERIOD_SECS,
        rules,
        bucket_ms,
        max_groups: 10,
    }
}

/// A gateway serving `per_sec` requests a second to provider `p`, of which a fraction fails;
/// scraped every `step_secs`.
struct Gateway {
    store: SeriesStore,
    detector: BurnRateDetector,
    ok: f64,
    errors: f64,
    at_ms: i64,
}

impl Gateway {
    fn new(config: BurnRateConfig) -> Gateway {
        Gateway {
            store: SeriesStore::new(StoreConfig::default()),
            detector: BurnRateDetector::new(config),
            ok: 0.0,
            errors: 0.0,
            at_ms: T0,
        }
    }

    /// Runs `secs` seconds of traffic at `error_ratio`; returns each transition with the
    /// second (from `T0`) it happened at.
    fn run(&mut self, secs: i64, step_secs: i64, error_ratio: f64) -> Vec<(i64, Transition)> {
        let per_sec = 10.0;
        let mut transitions = Vec::new();
        for _ in 0..secs / step_secs {
            self.at_ms += step_secs * 1000;
            let served = per_sec * step_secs as f64;
            self.errors += served * error_ratio;
            self.ok += served * (1.0 - error_ratio);
            let at = Timestamp(self.at_ms);
            let sample = |outcome: &str, value: f64| Sample {
                name: "requests_total".to_owned(),
                labels: Labels::from_iter([("outcome", outcome), ("provider", "p")]),
                value,
                timestamp_ms: None,
            };
            self.store.ingest(
                SOURCE,
                at,
                &[sample("ok", self.ok), sample("error", self.errors)],
            );
            for transition in self.detector.observe(at, &self.store) {
                transitions.push(((self.at_ms - T0) / 1000, transition));
            }
        }
        transitions
    }
}

/// The first page among `transitions`.
fn first_page(transitions: &[(i64, Transition)]) -> Option<(i64, &Transition)> {
    transitions
        .iter()
        .find_map(|(at, transition)| match transition {
            Transition::Fired(finding) if finding.severity == Severity::Page => {
                Some((*at, transition))
            }
            _ => None,
        })
}

/// The Workbook's detection time, in seconds.
fn detection_secs(objective: f64, error_ratio: f64, window_secs: f64, burn_rate: f64) -> f64 {
    (1.0 - objective) / error_ratio * window_secs * burn_rate
}

#[test]
fn detection_time_matches_the_workbook_formula() {
    // Healthy for seven hours (the 6 h window is full), then an outage of the given error
    // ratio; one-second scrapes and one-second buckets, so the page comes at the first second
    // at or past the formula's.
    for error_ratio in [1.0, 0.5, 0.1] {
        let mut gateway = Gateway::new(config(BurnRule::workbook(WORKBOOK_PERIOD_SECS), 1000));
        // Ten-second scrapes, then one-second ones for the hour the 1 h window will see.
        assert!(gateway.run(HEALTHY_SECS - 3600, 10, 0.0).is_empty());
        assert!(gateway.run(3600, 1, 0.0).is_empty());
        // With two hours of history the 3 d window is short, so a ticket may come first: the
        // page is what the formula times.
        let transitions = gateway.run(3600, 1, error_ratio);
        let (fired_at, transition) = first_page(&transitions).expect("the outage pages");
        let expected = detection_secs(0.999, error_ratio, 3600.0, 14.4);
        let after_outage = fired_at - HEALTHY_SECS;
        assert_eq!(
            after_outage,
            expected.ceil() as i64,
            "error ratio {error_ratio}: expected {expected:.2} s"
        );
        let Transition::Fired(finding) = transition else {
            panic!("{transition:?}");
        };
        assert_eq!(finding.severity, Severity::Page);
        assert_eq!(finding.fingerprint, "provider-errors/provider=p/page");
        let Evidence::BurnRate(evidence) = &finding.evidence else {
            panic!("{:?}", finding.evidence);
        };
        let first = &evidence.windows[0];
        assert_eq!((first.long_secs, first.short_secs), (3600, 300));
        assert!(first.long_burn.unwrap() >= 14.4 && first.short_burn.unwrap() >= 14.4);
    }
    // A total outage at 99.9 %: about 52 s, as the Workbook says.
    assert!((detection_secs(0.999, 1.0, 3600.0, 14.4) - 51.84).abs() < 1e-9);
}

#[test]
fn coarser_buckets_delay_detection_by_at_most_one_bucket_of_the_long_window() {
    let mut gateway = Gateway::new(config(BurnRule::workbook(WORKBOOK_PERIOD_SECS), 30_000));
    gateway.run(HEALTHY_SECS, 10, 0.0);
    let transitions = gateway.run(600, 1, 1.0);
    let after_outage = first_page(&transitions).unwrap().0 - HEALTHY_SECS;
    // The 1 h window may hold up to 30 s less of healthy traffic: 51.84 * 3570 / 3600.
    assert!((51..=52).contains(&after_outage), "{after_outage}");
}

#[test]
fn the_alert_resets_within_the_short_window_after_the_outage_ends() {
    let fast_rule = vec![BurnRule {
        severity: Severity::Page,
        long_secs: 3600,
        short_secs: 300,
        burn_rate: 14.4,
    }];
    let mut gateway = Gateway::new(config(fast_rule, 1000));
    gateway.run(7200, 1, 0.0);
    let fired = gateway.run(600, 1, 1.0);
    assert_eq!(fired.len(), 1);
    let recovered = gateway.run(900, 1, 0.0);
    let (cleared_at, transition) = recovered.first().expect("it clears");
    assert!(
        matches!(transition, Transition::Cleared(_)),
        "{transition:?}"
    );
    let after_recovery = cleared_at - 7800;
    // The 5 m window's error ratio falls under 14.4 * 0.001 once fewer than 4.32 of its 300
    // seconds are errors: 296 s after the end, within the short window.
    assert_eq!(after_recovery, 296);
    assert!(after_recovery <= 300);
}

#[test]
fn the_slow_burn_rule_tickets_and_windows_scale_with_the_period() {
    let week = BurnRule::workbook(7 * 86_400);
    let windows: Vec<(i64, i64)> = week
        .iter()
        .map(|rule| (rule.long_secs, rule.short_secs))
        .collect();
    assert_eq!(windows, [(840, 70), (5040, 420), (60_480, 5040)]);
    // 2x the budget (error ratio 0.002) trips neither page rule, only the ticket: on the
    // 3 d and 6 h windows, once 6 h of the outage make the 3 d burn reach 1.
    let mut gateway = Gateway::new(config(BurnRule::workbook(WORKBOOK_PERIOD_SECS), 60_000));
    gateway.run(3600, 60, 0.0);
    let transitions = gateway.run(12 * 3600, 60, 0.002);
    let (_, transition) = transitions.first().expect("a ticket");
    let Transition::Fired(finding) = transition else {
        panic!("{transition:?}");
    };
    assert_eq!(finding.severity, Severity::Ticket);
}

#[test]
fn no_traffic_burns_nothing_and_a_vanished_series_does_not_clear() {
    let mut gateway = Gateway::new(config(BurnRule::workbook(WORKBOOK_PERIOD_SECS), 1000));
    // The same counter values over and over: no traffic.
    for _ in 0..100 {
        gateway.at_ms += 1000;
        let at = Timestamp(gateway.at_ms);
        let sample = Sample {
            name: "requests_total".to_owned(),
            labels: Labels::from_iter([("outcome", "error"), ("provider", "p")]),
            value: 5.0,
            timestamp_ms: None,
        };
        gateway.store.ingest(SOURCE, at, &[sample]);
        assert!(gateway.detector.observe(at, &gateway.store).is_empty());
    }
    assert_eq!(
        gateway.detector.views(Timestamp(gateway.at_ms))[0].burns[0],
        (None, None),
        "errors without any total: no ratio"
    );

    let mut gateway = Gateway::new(config(BurnRule::workbook(WORKBOOK_PERIOD_SECS), 1000));
    gateway.run(3600, 1, 0.0);
    assert!(first_page(&gateway.run(120, 1, 1.0)).is_some());
    // The gateway disappears: empty scrapes for an hour. Stale is not recovered.
    for _ in 0..3600 {
        gateway.at_ms += 1000;
        let at = Timestamp(gateway.at_ms);
        gateway.store.ingest(SOURCE, at, &[]);
        assert!(gateway.detector.observe(at, &gateway.store).is_empty());
    }
    assert!(
        gateway.detector.views(Timestamp(gateway.at_ms))[0]
            .firing
            .contains(&Severity::Page)
    );
}

#[test]
fn a_counter_restart_is_an_increase_not_a_burst() {
    let mut gateway = Gateway::new(config(BurnRule::workbook(WORKBOOK_PERIOD_SECS), 1000));
    gateway.run(3600, 1, 0.0);
    // The gateway restarts: both counters start again from zero, still healthy.
    gateway.ok = 0.0;
    gateway.errors = 0.0;
    assert!(gateway.run(600, 1, 0.0).is_empty());
    let view = &gateway.detector.views(Timestamp(gateway.at_ms))[0];
    assert_eq!(view.burns[0].0, Some(0.0));
}

// What a `users_served` verification asks: did the group fire, and did it count requests
// since a moment? An unseen group is `None`: no data is no proof.
#[test]
fn a_group_reports_whether_it_fires_and_what_it_counted_since_a_moment() {
    let mut gateway = Gateway::new(config(BurnRule::workbook(WORKBOOK_PERIOD_SECS), 30_000));
    assert_eq!(gateway.detector.group_since("p", Timestamp(T0)), None);
    gateway.run(600, 15, 0.0);
    let seen = gateway
        .detector
        .group_since("p", Timestamp(T0 + 300_000))
        .expect("the group was seen");
    assert!(!seen.firing);
    // 10 requests a second for the last 300 s, at 30 s buckets.
    assert!((seen.total - 3000.0).abs() <= 300.0, "{seen:?}");
    let later = gateway
        .detector
        .group_since("p", Timestamp(T0 + 3_600_000))
        .expect("the group was seen");
    assert!(later.total.abs() < f64::EPSILON, "{later:?}");
    assert_eq!(gateway.detector.group_since("q", Timestamp(T0)), None);
    gateway.run(600, 15, 1.0);
    assert!(
        gateway
            .detector
            .group_since("p", Timestamp(T0))
            .expect("the group was seen")
            .firing
    );
}
