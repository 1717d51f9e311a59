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
        drift: None,
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

// The drift test.

fn drift_config() -> ProportionDropConfig {
    ProportionDropConfig {
        // A baseline that follows within hours: a slow slide never looks sudden to it.
        baseline_half_life_secs: 6 * 3600,
        drift: Some(DriftConfig {
            reference_cases: 200,
            reference_share: None,
            min_drop: 0.1,
            clear_drop: 0.05,
            cases_between_false_alarms: 1e6,
        }),
        ..config()
    }
}

/// SplitMix64, for seeded binomial noise.
struct Noise(u64);

impl Noise {
    fn passed(&mut self, cases: u32, rate: f64) -> u32 {
        (0..cases)
            .filter(|_| {
                self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
                let mut z = self.0;
                z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
                z ^= z >> 31;
                ((z >> 11) as f64 / (1_u64 << 53) as f64) < rate
            })
            .count() as u32
    }
}

impl Suite {
    /// One run with `passed` of 20 passing; its transitions.
    fn step(&mut self, passed: u32) -> Vec<Transition> {
        self.at_ms += RUN_EVERY_MS;
        self.passed += f64::from(passed);
        self.failed += f64::from(20 - passed);
        self.write()
    }
}

/// The passes of a 20-case run `hours` into a slide from 95 % to 70 % over 24 hours, without
/// noise (the nearest whole number).
fn sliding(hours: f64) -> u32 {
    let rate = 0.95 - 0.25 * (hours / 24.0).min(1.0);
    (20.0 * rate).round() as u32
}

/// A day of runs at 19 of 20: the drift reference is learnt (480 cases), the baseline full.
fn trained_for_drift(config: ProportionDropConfig) -> Suite {
    let mut suite = Suite::new(config);
    assert_eq!(suite.runs(&[19; 48]), ".".repeat(48));
    suite
}

#[test]
fn a_day_long_slide_fires_the_drift_test_and_not_the_sudden_drop_test() {
    // Before the drift test: the baseline follows the slide, nothing ever fires.
    let mut old = trained_for_drift(ProportionDropConfig {
        drift: None,
        ..drift_config()
    });
    let slide: Vec<u32> = (1..=48).map(|run| sliding(f64::from(run) * 0.5)).collect();
    assert_eq!(old.runs(&slide), ".".repeat(48));
    // With it: one finding, raised by the drift test, 13.5 hours in (at about 81 %).
    let mut new = trained_for_drift(drift_config());
    let mut fired = Vec::new();
    for (run, &passed) in slide.iter().enumerate() {
        for transition in new.step(passed) {
            let Transition::Fired(finding) = transition else {
                panic!("{transition:?}");
            };
            fired.push((run + 1, finding));
        }
    }
    let [(run, finding)] = fired.as_slice() else {
        panic!("{fired:?}");
    };
    assert_eq!(*run, 27, "{finding:?}");
    assert_eq!(finding.fingerprint, "eval-drop/suite=support");
    let Evidence::ProportionDrop(evidence) = &finding.evidence else {
        panic!("{:?}", finding.evidence);
    };
    let drift = evidence.drift.as_ref().unwrap();
    assert!(drift.raised_by_drift);
    // The reference: the first 500 cases (25 runs of 19/20: at least 200 and a standard
    // error of at most a hundredth), two standard errors under its (475 + 1) / (500 + 2).
    assert_eq!(drift.reference_cases, 500.0);
    let learnt: f64 = 476.0 / 502.0;
    let lower = learnt - 2.0 * (learnt * (1.0 - learnt) / 500.0).sqrt();
    assert_eq!(drift.reference_share, lower);
    // The statistic crossed its level; the slide's cases are those since it left 0.
    assert!(drift.statistic >= drift.decision_level, "{drift:?}");
    let began = drift.slide_began_at.unwrap();
    assert!(began.0 > START_MS + 48 * RUN_EVERY_MS, "{drift:?}");
    let since_runs = (finding.raised_at.0 - began.0) / RUN_EVERY_MS + 1;
    assert_eq!(drift.since_total, 20.0 * since_runs as f64);
    assert!(drift.since_share() < 0.9, "{drift:?}");
    assert_eq!(drift.min_drop, 0.1);
    // The decision level solves Wald's approximation for a million cases.
    let shifted = lower - 0.1;
    let divergence = lower * crate::numeric::ln(lower / shifted)
        + (1.0 - lower) * crate::numeric::ln((1.0 - lower) / (1.0 - shifted));
    #[expect(
        clippy::disallowed_methods,
        reason = "the platform's exp checks the level"
    )]
    let run_length = (drift.decision_level.exp() - drift.decision_level - 1.0) / divergence;
    assert!((run_length / 1e6 - 1.0).abs() < 1e-9, "{run_length}");
    // The sudden-drop numbers are there too, as before.
    assert!(evidence.recent_total >= 20.0);
}

#[test]
fn a_steady_noisy_suite_never_fires_the_drift_test() {
    // Thirty days of runs at 95 % with binomial noise (seeded): the sudden-drop test may
    // fire on a bad hour, the drift test does not.
    let mut suite = Suite::new(drift_config());
    let mut noise = Noise(2024);
    for _ in 0..30 * 48 {
        let passed = noise.passed(20, 0.95);
        for transition in suite.step(passed) {
            if let Transition::Fired(finding) = transition
                && let Evidence::ProportionDrop(evidence) = &finding.evidence
            {
                assert!(
                    !evidence
                        .drift
                        .as_ref()
                        .is_some_and(|drift| drift.raised_by_drift),
                    "{evidence:?}"
                );
            }
        }
    }
}

#[test]
fn a_drift_finding_clears_once_the_share_is_back_near_its_reference_and_stays_quiet() {
    let mut suite = trained_for_drift(drift_config());
    // Down to 80 %, and held there: one finding, then silence.
    let slide: Vec<u32> = (1..=48)
        .map(|run| sliding(f64::from(run) * 0.5).max(16))
        .collect();
    let outcome = suite.runs(&slide);
    assert_eq!(outcome.matches('F').count(), 1, "{outcome}");
    assert!(!outcome.contains('C'), "{outcome}");
    // 17 of 20 (85 %) is still more than 5 points under the reference: firing.
    assert_eq!(suite.runs(&[17, 17, 17]), "...");
    assert!(suite.detector.is_firing("support"));
    // Fixed: the window (an hour, two runs) holds 17 and 19 of 20, 90 %, within 5 points of
    // the reference (about 92.8 %): it clears. The statistic restarts at 0, so a day at the
    // reference stays quiet.
    assert_eq!(suite.runs(&[19, 19]), "C.");
    assert_eq!(suite.runs(&[19; 48]), ".".repeat(48));
}

#[test]
fn a_stated_reference_needs_no_learning_and_says_so() {
    let mut config = drift_config();
    if let Some(drift) = &mut config.drift {
        drift.reference_share = Some(0.95);
    }
    let mut suite = Suite::new(config);
    // Runs at 80 % from the start: the sudden-drop test has no baseline yet, the drift test
    // knows the level to expect.
    let outcome = suite.runs(&[16; 12]);
    assert_eq!(outcome.matches('F').count(), 1, "{outcome}");
    let mut suite_again = Suite::new(suite.detector.config().clone());
    let transitions: Vec<Transition> = (0..12).flat_map(|_| suite_again.step(16)).collect();
    let [Transition::Fired(finding)] = transitions.as_slice() else {
        panic!("{transitions:?}");
    };
    let Evidence::ProportionDrop(evidence) = &finding.evidence else {
        panic!("{:?}", finding.evidence);
    };
    let drift = evidence.drift.as_ref().unwrap();
    assert_eq!((drift.reference_share, drift.reference_cases), (0.95, 0.0));
    assert_eq!(
        drift.slide_began_at,
        Some(Timestamp(START_MS + RUN_EVERY_MS))
    );
}

#[test]
fn a_sudden_drop_with_a_drift_test_is_raised_by_the_sudden_test_with_the_drift_numbers() {
    let mut suite = trained_for_drift(drift_config());
    let transitions = suite.step(8);
    let [Transition::Fired(finding)] = transitions.as_slice() else {
        panic!("{transitions:?}");
    };
    let Evidence::ProportionDrop(evidence) = &finding.evidence else {
        panic!("{:?}", finding.evidence);
    };
    let drift = evidence.drift.as_ref().unwrap();
    assert!(!drift.raised_by_drift, "{drift:?}");
    assert!(drift.statistic < drift.decision_level, "{drift:?}");
    assert!(evidence.p_value <= 1e-3);
}

#[test]
fn configs_and_findings_without_drift_serialize_as_before() {
    // Recorded sessions are compared byte for byte: no `drift` key unless there is one.
    let json = serde_json::to_string(&config()).unwrap();
    assert!(!json.contains("drift"), "{json}");
    let back: ProportionDropConfig = serde_json::from_str(&json).unwrap();
    assert_eq!(back, config());
    let mut suite = trained();
    let transitions = suite.step(12);
    let [Transition::Fired(finding)] = transitions.as_slice() else {
        panic!("{transitions:?}");
    };
    let json = serde_json::to_string(&finding.evidence).unwrap();
    assert!(!json.contains("drift"), "{json}");
    let with_drift = serde_json::to_string(&drift_config()).unwrap();
    let back: ProportionDropConfig = serde_json::from_str(&with_drift).unwrap();
    assert_eq!(back, drift_config());
}
