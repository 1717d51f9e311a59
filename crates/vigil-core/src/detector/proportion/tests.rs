//! The proportion-drop detector on a small eval suite: the binomial tail against exact
//! values, firing on a drop that is not noise and not on one that may be, clearing with
//! hysteresis once the bad run leaves the window, a frozen baseline while firing, warm-up,
//! and staleness.

use super::*;
use crate::signal::{Labels, Sample};
use crate::store::Selector;
use crate::store::StoreConfig;

const SOURCE: &str = "push:evals";
const START_MS: i64 = 1_800_000_000_000;
const RUN_EVERY_MS: i64 = 30 * 60 * 1000;

fn config() -> ProportionDropConfig {
    ProportionDropConfig {
        name: "eval-drop".to_owned(),
        source: SOURCE.to_owned(),
        good: Selector::parse("evals_total{outcome=\"passed\"}").unwrap(),
        total: Selector::parse("evals_total").unwrap(),
        total_is_bad: false,
        describe: "eval pass rate".to_owned(),
        group_by: Some("suite".to_owned()),
        window_secs: 3600,
        baseline_half_life_secs: 7 * 86_400,
        min_cases: 10,
        min_baseline_cases: 60,
        min_drop: 0.1,
        alert_probability: 1e-3,
        clear_drop: 0.05,
        severity: Severity::Page,
        max_groups: 10,
    }
}

/// A 20-case suite run every 30 minutes, its outcomes kept as two counters.
struct Suite {
    store: SeriesStore,
    detector: ProportionDropDetector,
    at_ms: i64,
    passed: f64,
    failed: f64,
}

impl Suite {
    fn new(config: ProportionDropConfig) -> Suite {
        let mut suite = Suite {
            store: SeriesStore::new(StoreConfig::default()),
            detector: ProportionDropDetector::new(config),
            at_ms: START_MS,
            passed: 0.0,
            failed: 0.0,
        };
        // The counters' first points, at zero.
        suite.write();
        suite
    }

    fn write(&mut self) -> Vec<Transition> {
        let at = Timestamp(self.at_ms);
        let samples: Vec<Sample> = [("passed", self.passed), ("failed", self.failed)]
            .into_iter()
            .map(|(outcome, value)| Sample {
                name: "evals_total".to_owned(),
                labels: [("suite", "support"), ("outcome", outcome)]
                    .into_iter()
                    .collect::<Labels>(),
                value,
                timestamp_ms: None,
            })
            .collect();
        self.store.ingest(SOURCE, at, &samples);
        self.detector.observe(at, &self.store)
    }

    /// One run of the suite with `passed` of 20 cases passing; `F`, `C` or `.`.
    fn run(&mut self, passed: u32) -> char {
        self.at_ms += RUN_EVERY_MS;
        self.passed += f64::from(passed);
        self.failed += f64::from(20 - passed);
        match self.write().as_slice() {
            [] => '.',
            [Transition::Fired(_)] => 'F',
            [Transition::Cleared(_)] => 'C',
            other => panic!("{other:?}"),
        }
    }

    fn runs(&mut self, passed: &[u32]) -> String {
        passed.iter().map(|&passed| self.run(passed)).collect()
    }
}

/// A week-like history: runs passing 19 of 20.
fn trained() -> Suite {
    let mut suite = Suite::new(config());
    assert_eq!(suite.runs(&[19; 12]), "............");
    suite
}

#[test]
fn the_binomial_lower_tail_matches_exact_values() {
    // Exact values (rational arithmetic), to the printed digits.
    let cases = [
        (10.0, 20.0, 0.5, 0.588_098_526_000_976_6),
        (12.0, 20.0, 0.95, 2.856_885_382_818_765_6e-6),
        (17.0, 20.0, 0.95, 0.075_483_673_788_496_49),
        (0.0, 3.0, 0.5, 0.125),
        (1.0, 3.0, 0.5, 0.5),
        (4900.0, 10_000.0, 0.5, 0.023_292_763_852_473_693),
        (9950.0, 10_000.0, 0.999, 1.714_438_758_120_129_6e-19),
    ];
    for (good, total, share, expected) in cases {
        let got = binomial_lower_tail(good, total, share);
        assert!(
            (got - expected).abs() <= expected * 1e-9,
            "P(X <= {good} | {total}, {share}) = {got}, expected {expected}"
        );
    }
    // Edges: all good, no events, certain outcomes.
    assert_eq!(binomial_lower_tail(20.0, 20.0, 0.9), 1.0);
    assert_eq!(binomial_lower_tail(0.0, 0.0, 0.9), 1.0);
    assert_eq!(binomial_lower_tail(3.0, 20.0, 1.0), 0.0);
    assert_eq!(binomial_lower_tail(3.0, 20.0, 0.0), 1.0);
}

#[test]
fn a_clear_regression_of_a_small_suite_fires_and_carries_its_counts() {
    let mut suite = trained();
    suite.at_ms += RUN_EVERY_MS;
    suite.passed += 12.0;
    suite.failed += 8.0;
    let transitions = suite.write();
    let [Transition::Fired(finding)] = transitions.as_slice() else {
        panic!("{transitions:?}");
    };
    assert_eq!(finding.fingerprint, "eval-drop/suite=support");
    assert_eq!(finding.subject.value, "support");
    let Evidence::ProportionDrop(evidence) = &finding.evidence else {
        panic!("{:?}", finding.evidence);
    };
    // The last hour holds two runs: 19 and 12 of 20.
    assert_eq!((evidence.recent_good, evidence.recent_total), (31.0, 40.0));
    // Eleven runs of 19/20 aged into the baseline, the oldest decayed by 5.5 h of a 7-day
    // half-life (about 2 %).
    assert!(
        evidence.baseline_total > 215.0 && evidence.baseline_total < 220.0,
        "{evidence:?}"
    );
    assert!((evidence.baseline_share - 210.0 / 222.0).abs() < 1e-3);
    assert!(evidence.p_value <= 1e-3, "{}", evidence.p_value);
}

#[test]
fn a_dip_that_may_be_noise_does_not_fire() {
    let mut suite = trained();
    // 17 of 20 after 19s: 2 more failures than usual, a chance of about 10 % on its own.
    assert_eq!(suite.runs(&[17, 19, 18, 19, 17, 19]), "......");
}

#[test]
fn it_clears_once_the_bad_run_leaves_the_window_and_the_baseline_does_not_learn_it() {
    let mut suite = trained();
    assert_eq!(suite.run(11), 'F');
    // Hours of the regression: firing, no second finding, and the bad runs never reach the
    // baseline (frozen while firing).
    assert_eq!(suite.runs(&[11; 8]), "........");
    assert!(suite.detector.is_firing("support"));
    // Fixed: the window still holds one bad run, then only good ones.
    assert_eq!(suite.runs(&[19, 19]), ".C");
    assert!(!suite.detector.is_firing("support"));
    // Had the baseline learnt the regression, 12 of 20 would now look ordinary.
    assert_eq!(suite.runs(&[19, 19, 12]), "..F");
}

#[test]
fn hysteresis_keeps_a_partly_recovered_share_firing() {
    let mut suite = trained();
    assert_eq!(suite.run(10), 'F');
    // 17 of 20 is 0.85, more than 0.05 under the baseline of about 0.945: still firing.
    assert_eq!(suite.runs(&[17, 17, 17]), "...");
    assert!(suite.detector.is_firing("support"));
}

#[test]
fn without_enough_history_nothing_fires() {
    let mut suite = Suite::new(config());
    // Two runs in the window, one aged into the baseline: 20 cases, under the 60 required.
    assert_eq!(suite.runs(&[19, 19, 5]), "...");
}

#[test]
fn a_silent_or_vanished_suite_is_not_a_recovery() {
    let mut suite = trained();
    assert_eq!(suite.run(8), 'F');
    // No runs for a day: the store's series go stale, nothing is evaluated.
    suite.at_ms += 86_400_000;
    suite.store.mark_stale(SOURCE, Timestamp(suite.at_ms));
    assert!(
        suite
            .detector
            .observe(Timestamp(suite.at_ms), &suite.store)
            .is_empty()
    );
    assert!(suite.detector.is_firing("support"));
}

#[test]
fn good_and_bad_counters_make_the_same_decisions_as_good_and_all() {
    // Cache hits and misses: the share is hits over hits plus misses.
    let mut config = config();
    config.total = Selector::parse("evals_total{outcome=\"failed\"}").unwrap();
    config.total_is_bad = true;
    let mut suite = Suite::new(config);
    assert_eq!(suite.runs(&[19; 12]), "............");
    assert_eq!(suite.run(12), 'F');
    assert_eq!(suite.runs(&[19, 19]), ".C");
}

#[test]
fn many_series_of_one_scrape_are_one_sample_whatever_their_number() {
    // 5,000 series, half of them good, each growing by 1 a scrape: a steady 50 % share must
    // never fire however many increments one scrape brings (more than the recent cap).
    let mut config = config();
    config.group_by = None;
    config.window_secs = 60;
    let mut detector = ProportionDropDetector::new(config);
    let mut store = SeriesStore::new(StoreConfig::default());
    for scrape in 0..12_i64 {
        let at = Timestamp(START_MS + scrape * 15_000);
        let samples: Vec<Sample> = (0..5000)
            .map(|idx: i64| Sample {
                name: "evals_total".to_owned(),
                labels: [
                    ("case", idx.to_string().as_str()),
                    ("outcome", if idx % 2 == 0 { "passed" } else { "failed" }),
                ]
                .into_iter()
                .collect::<Labels>(),
                value: scrape as f64,
                timestamp_ms: None,
            })
            .collect();
        store.ingest(SOURCE, at, &samples);
        assert!(detector.observe(at, &store).is_empty(), "scrape {scrape}");
    }
    let state = detector.groups.get("").unwrap();
    assert!(state.baseline_total > 30_000.0, "{}", state.baseline_total);
    assert!((state.baseline_good / state.baseline_total - 0.5).abs() < 1e-9);
}
