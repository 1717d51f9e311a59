//! Slow drifts: how long the proportion-drop detector takes to notice an eval pass rate that
//! slides (95 % to 70 % over 6, 24 or 72 hours), with its drift test and with the sudden-drop
//! test alone, and how often each fires on suites that hold steady.
//!
//! Suites are simulated: each run's cases pass independently with the suite's current pass
//! rate (binomial noise from a seeded SplitMix64, so the report is the same on every
//! machine), and their outcomes are cumulative counters fed to a [`SeriesStore`] that the
//! detectors observe after each run, as the engine does. Both detectors are configured as
//! `examples/vigil.yaml`'s `eval-pass-rate`, one without its `drift` block.

use std::fmt::Write as _;

use vigil_core::detector::proportion::{DriftConfig, ProportionDropConfig, ProportionDropDetector};
use vigil_core::detector::{Evidence, Severity, Transition};
use vigil_core::signal::{Labels, Sample};
use vigil_core::store::{Selector, SeriesStore, StoreConfig};
use vigil_core::time::Timestamp;

const SOURCE: &str = "push:evals";
const START_MS: i64 = 1_800_000_000_000;
const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

/// How a suite reports: `cases` every `every_ms`.
#[derive(Clone, Copy, Debug)]
pub struct Cadence {
    /// For the table.
    pub name: &'static str,
    /// Cases per run.
    pub cases: u32,
    /// Time between runs, in milliseconds.
    pub every_ms: i64,
}

/// The cadences the report measures: small and larger eval suites and a busy online judge.
pub const CADENCES: [Cadence; 3] = [
    Cadence {
        name: "20 cases / 15 min",
        cases: 20,
        every_ms: 15 * 60_000,
    },
    Cadence {
        name: "50 cases / 5 min",
        cases: 50,
        every_ms: 5 * 60_000,
    },
    Cadence {
        name: "judge 5 / min",
        cases: 5,
        every_ms: 60_000,
    },
];

/// A pass rate over time: `from` until the slide starts, linear to `to` over `slide_ms`,
/// then `to`.
#[derive(Clone, Copy, Debug)]
pub struct Slide {
    /// The pass rate before.
    pub from: f64,
    /// The pass rate after.
    pub to: f64,
    /// How long it slides, in milliseconds.
    pub slide_ms: i64,
}

impl Slide {
    /// The pass rate `since_ms` after the slide began (negative: before).
    #[must_use]
    pub fn rate(&self, since_ms: i64) -> f64 {
        if since_ms <= 0 {
            self.from
        } else if since_ms >= self.slide_ms {
            self.to
        } else {
            self.from + (self.to - self.from) * since_ms as f64 / self.slide_ms as f64
        }
    }
}

/// The detector as `examples/vigil.yaml`'s `eval-pass-rate` configures it, with or without
/// its drift block.
#[must_use]
pub fn example_config(with_drift: bool) -> ProportionDropConfig {
    ProportionDropConfig {
        name: "eval-pass-rate".to_owned(),
        source: SOURCE.to_owned(),
        good: selector("vigil_eval_cases_total{outcome=\"passed\"}"),
        total: selector("vigil_eval_cases_total"),
        total_is_bad: false,
        describe: "eval pass rate".to_owned(),
        group_by: Some("suite".to_owned()),
        window_secs: 3600,
        baseline_half_life_secs: 7 * 86_400,
        min_cases: 10,
        min_baseline_cases: 50,
        min_drop: 0.1,
        alert_probability: 1e-3,
        clear_drop: 0.05,
        severity: Severity::Page,
        max_groups: 10,
        drift: with_drift.then(example_drift),
    }
}

/// The example's drift block.
#[must_use]
pub fn example_drift() -> DriftConfig {
    DriftConfig {
        reference_cases: 500,
        reference_share: None,
        min_drop: 0.1,
        clear_drop: 0.05,
        cases_between_false_alarms: 1e6,
    }
}

fn selector(text: &str) -> Selector {
    #[expect(clippy::expect_used, reason = "the selectors are literals that parse")]
    Selector::parse(text).expect("a literal selector")
}

/// SplitMix64: a small, seeded, portable generator.
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator from `seed`.
    #[must_use]
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    /// The next 64 bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1_u64 << 53) as f64
    }

    /// Of `n` cases passing with probability `rate` each, how many pass.
    pub fn binomial(&mut self, n: u32, rate: f64) -> u32 {
        (0..n).filter(|_| self.uniform() < rate).count() as u32
    }
}

/// One detector's first finding: when, and whether the drift test raised it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Fire {
    /// Milliseconds after the slide began (negative: before).
    pub at_ms: i64,
    /// Whether the drift test raised it.
    pub by_drift: bool,
}

/// What one simulated suite saw: every finding of the detector without and with drift.
#[derive(Clone, Debug, Default)]
pub struct SuiteRun {
    /// Findings of the sudden-drop test alone.
    pub sudden_alone: Vec<Fire>,
    /// Findings of the detector with its drift test.
    pub with_drift: Vec<Fire>,
    /// Findings of the detector with its drift test and the starting rate stated as its
    /// reference.
    pub stated_reference: Vec<Fire>,
}

/// Runs one suite from `-history_ms` to `after_ms` around the slide's start.
#[must_use]
pub fn run_suite(
    cadence: Cadence,
    slide: Slide,
    history_ms: i64,
    after_ms: i64,
    seed: u64,
) -> SuiteRun {
    let mut random = SplitMix64::new(seed);
    let mut store = SeriesStore::new(StoreConfig::default());
    let mut sudden = ProportionDropDetector::new(example_config(false));
    let mut drift = ProportionDropDetector::new(example_config(true));
    let mut stated_config = example_config(true);
    if let Some(drift) = &mut stated_config.drift {
        drift.reference_share = Some(slide.from);
    }
    let mut stated = ProportionDropDetector::new(stated_config);
    let (mut passed, mut failed) = (0.0, 0.0);
    let mut run = SuiteRun::default();
    let mut since_ms = -history_ms;
    while since_ms <= after_ms {
        if since_ms > -history_ms {
            let passing = random.binomial(cadence.cases, slide.rate(since_ms));
            passed += f64::from(passing);
            failed += f64::from(cadence.cases - passing);
        }
        let at = Timestamp(START_MS + history_ms + since_ms);
        let samples: Vec<Sample> = [("passed", passed), ("failed", failed)]
            .into_iter()
            .map(|(outcome, value)| Sample {
                name: "vigil_eval_cases_total".to_owned(),
                labels: [("suite", "support"), ("outcome", outcome)]
                    .into_iter()
                    .collect::<Labels>(),
                value,
                timestamp_ms: None,
            })
            .collect();
        store.ingest(SOURCE, at, &samples);
        for (detector, fires) in [
            (&mut sudden, &mut run.sudden_alone),
            (&mut drift, &mut run.with_drift),
            (&mut stated, &mut run.stated_reference),
        ] {
            for transition in detector.observe(at, &store) {
                if let Transition::Fired(finding) = transition {
                    let by_drift = match &finding.evidence {
                        Evidence::ProportionDrop(evidence) => evidence
                            .drift
                            .as_ref()
                            .is_some_and(|drift| drift.raised_by_drift),
                        _ => false,
                    };
                    fires.push(Fire {
                        at_ms: since_ms,
                        by_drift,
                    });
                }
            }
        }
        since_ms += cadence.every_ms;
    }
    run
}

/// The slides the report measures: (from, to, hours).
pub const SLIDES: [(f64, f64, i64); 5] = [
    (0.95, 0.70, 6),
    (0.95, 0.70, 24),
    (0.95, 0.70, 72),
    (0.95, 0.85, 24),
    (0.95, 0.85, 72),
];

/// The stable levels of the false-alarm count.
pub const STABLE_LEVELS: [f64; 3] = [0.95, 0.80, 0.60];

/// Days of history at the starting level before a slide.
const HISTORY_DAYS: i64 = 7;
/// How long after the slide's end a detection still counts.
const AFTER_SLIDE_MS: i64 = DAY_MS;

/// The report's sizes: suites per slide and cadence, suites and days per stable level.
#[derive(Clone, Copy, Debug)]
pub struct Sizes {
    /// Seeds per slide and cadence.
    pub slide_suites: u64,
    /// Suites per stable level and cadence.
    pub stable_suites: u64,
    /// Days each stable suite runs.
    pub stable_days: i64,
}

/// The sizes `vigil-eval drift` reports.
pub const REPORT_SIZES: Sizes = Sizes {
    slide_suites: 20,
    stable_suites: 20,
    stable_days: 30,
};

/// The delay and false-alarm tables.
#[must_use]
pub fn report(sizes: Sizes) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Slow drifts: the proportion-drop detector of examples/vigil.yaml (eval-pass-rate), \
         sudden-drop test alone and with its drift block\n\
         (reference: first {} cases, min_drop {}, clear_drop {}, {:e} cases between false alarms).\n\
         {HISTORY_DAYS} days at the starting rate, the slide, then a day at its end rate; \
         {} suites each. Delay from the slide's start to the first finding (median, and \
         the fastest-slowest), the pass rate then (median), and how many suites it fired on \
         by a day after the slide.\n",
        example_drift().reference_cases,
        example_drift().min_drop,
        example_drift().clear_drop,
        example_drift().cases_between_false_alarms,
        sizes.slide_suites,
    );
    let _ = writeln!(
        out,
        "| slide            | suite             | sudden alone: delay h (range)  | at    | fired | with drift: delay h (range)    | at    | fired | by drift |"
    );
    let _ = writeln!(
        out,
        "|------------------|-------------------|--------------------------------|-------|-------|--------------------------------|-------|-------|----------|"
    );
    let jobs: Vec<(Slide, Cadence, u64)> = SLIDES
        .iter()
        .flat_map(|&(from, to, hours)| {
            CADENCES.into_iter().flat_map(move |cadence| {
                (0..sizes.slide_suites).map(move |seed| {
                    let slide = Slide {
                        from,
                        to,
                        slide_ms: hours * HOUR_MS,
                    };
                    (slide, cadence, seed)
                })
            })
        })
        .collect();
    let runs = parallel(&jobs, |&(slide, cadence, seed)| {
        run_suite(
            cadence,
            slide,
            HISTORY_DAYS * DAY_MS,
            slide.slide_ms + AFTER_SLIDE_MS,
            seed * 1_000_003 + 17,
        )
    });
    for (chunk_idx, chunk) in runs.chunks(sizes.slide_suites as usize).enumerate() {
        let Some(&(slide, cadence, _)) = jobs.get(chunk_idx * sizes.slide_suites as usize) else {
            continue;
        };
        let sudden = Delays::of(
            chunk.iter().map(|run| first_after(&run.sudden_alone)),
            slide,
        );
        let drift = Delays::of(chunk.iter().map(|run| first_after(&run.with_drift)), slide);
        let by_drift = chunk
            .iter()
            .filter(|run| first_after(&run.with_drift).is_some_and(|fire| fire.by_drift))
            .count();
        let _ = writeln!(
            out,
            "| {:>2.0}→{:>2.0} % in {:>2} h | {:<17} | {} | {} | {by_drift:>8} |",
            slide.from * 100.0,
            slide.to * 100.0,
            slide.slide_ms / HOUR_MS,
            cadence.name,
            sudden.render(sizes.slide_suites),
            drift.render(sizes.slide_suites),
        );
    }
    let _ = writeln!(
        out,
        "\nFalse alarms on stable suites ({} suites x {} days per row, reference learnt from \
         each suite's own first cases): findings per suite-day.\n",
        sizes.stable_suites, sizes.stable_days
    );
    let _ = writeln!(
        out,
        "| pass rate | suite             | sudden alone | with drift: all | by drift | by drift, reference stated |"
    );
    let _ = writeln!(
        out,
        "|-----------|-------------------|--------------|-----------------|----------|----------------------------|"
    );
    let stable_jobs: Vec<(f64, Cadence, u64)> = STABLE_LEVELS
        .iter()
        .flat_map(|&level| {
            CADENCES.into_iter().flat_map(move |cadence| {
                (0..sizes.stable_suites).map(move |seed| (level, cadence, seed))
            })
        })
        .collect();
    let stable_runs = parallel(&stable_jobs, |&(level, cadence, seed)| {
        let steady = Slide {
            from: level,
            to: level,
            slide_ms: 1,
        };
        run_suite(
            cadence,
            steady,
            0,
            sizes.stable_days * DAY_MS,
            seed * 7_919 + 1_000_000_007,
        )
    });
    let suite_days = sizes.stable_suites as f64 * sizes.stable_days as f64;
    for (chunk_idx, chunk) in stable_runs.chunks(sizes.stable_suites as usize).enumerate() {
        let Some(&(level, cadence, _)) = stable_jobs.get(chunk_idx * sizes.stable_suites as usize)
        else {
            continue;
        };
        let sudden: usize = chunk.iter().map(|run| run.sudden_alone.len()).sum();
        let all: usize = chunk.iter().map(|run| run.with_drift.len()).sum();
        let by_drift: usize = chunk
            .iter()
            .map(|run| run.with_drift.iter().filter(|fire| fire.by_drift).count())
            .sum();
        let stated: usize = chunk
            .iter()
            .map(|run| {
                run.stated_reference
                    .iter()
                    .filter(|fire| fire.by_drift)
                    .count()
            })
            .sum();
        let _ = writeln!(
            out,
            "| {:>7.0} % | {:<17} | {:>12.4} | {:>15.4} | {:>8.4} | {:>26.4} |",
            level * 100.0,
            cadence.name,
            sudden as f64 / suite_days,
            all as f64 / suite_days,
            by_drift as f64 / suite_days,
            stated as f64 / suite_days,
        );
    }
    out
}

/// The first finding at or after the slide's start.
fn first_after(fires: &[Fire]) -> Option<Fire> {
    fires.iter().copied().find(|fire| fire.at_ms >= 0)
}

/// The delays of one row.
struct Delays {
    /// (delay in ms, the pass rate then), sorted by delay.
    fired: Vec<(i64, f64)>,
}

impl Delays {
    fn of(fires: impl Iterator<Item = Option<Fire>>, slide: Slide) -> Delays {
        let mut fired: Vec<(i64, f64)> = fires
            .flatten()
            .map(|fire| (fire.at_ms, slide.rate(fire.at_ms)))
            .collect();
        fired.sort_by_key(|&(delay, _)| delay);
        Delays { fired }
    }

    fn render(&self, n_suites: u64) -> String {
        let count = format!("{:>2}/{n_suites}", self.fired.len());
        let (Some(first), Some(last)) = (self.fired.first(), self.fired.last()) else {
            return format!("{:<30} | {:>5} | {count:>5}", "never", "-");
        };
        let hours = |ms: i64| ms as f64 / HOUR_MS as f64;
        let median = self
            .fired
            .get(self.fired.len() / 2)
            .copied()
            .unwrap_or(*first);
        let mut rates: Vec<f64> = self.fired.iter().map(|&(_, rate)| rate).collect();
        rates.sort_by(f64::total_cmp);
        let median_rate = rates.get(rates.len() / 2).copied().unwrap_or(median.1);
        format!(
            "{:<30} | {:>3.0} % | {count:>5}",
            format!(
                "{:>5.1} ({:.1}-{:.1})",
                hours(median.0),
                hours(first.0),
                hours(last.0)
            ),
            median_rate * 100.0,
        )
    }
}

/// `job` over `items` on the machine's threads, results in `items`' order.
fn parallel<T: Sync, R: Send>(items: &[T], job: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism().map_or(4, std::num::NonZero::get);
    let chunk_len = items.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(chunk_len)
            .map(|chunk| scope.spawn(|| chunk.iter().map(&job).collect::<Vec<R>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|handle| {
                handle
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_day_long_slide_of_a_busy_suite_is_caught_by_the_drift_test_before_the_sudden_one() {
        let cadence = CADENCES[1];
        let slide = Slide {
            from: 0.95,
            to: 0.70,
            slide_ms: DAY_MS,
        };
        let run = run_suite(cadence, slide, 2 * DAY_MS, DAY_MS + 6 * HOUR_MS, 7);
        let fire = first_after(&run.with_drift).unwrap();
        assert!(fire.by_drift, "{run:?}");
        assert!(fire.at_ms < DAY_MS, "{run:?}");
        let sudden = first_after(&run.sudden_alone).unwrap();
        assert!(fire.at_ms < sudden.at_ms, "{run:?}");
        assert!(run.with_drift.iter().all(|fire| fire.at_ms >= 0), "{run:?}");
    }

    #[test]
    fn the_generator_is_seeded_and_its_binomial_has_the_right_mean() {
        let mut random = SplitMix64::new(42);
        let passed: u32 = (0..1000).map(|_| random.binomial(20, 0.95)).sum();
        assert!((18_700..=19_300).contains(&passed), "{passed}");
        assert_eq!(SplitMix64::new(1).next_u64(), SplitMix64::new(1).next_u64());
    }
}
