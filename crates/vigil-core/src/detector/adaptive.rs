//! The adaptive anomaly detector for one stream of values: how unusual is this point, given
//! the stream's own recent behaviour and its daily rhythm?
//!
//! It is built in three layers, each a few lines of arithmetic, so that an SRE can follow why
//! it alerted:
//!
//! 1. **Surprise.** Two exponentially weighted baselines (mean and variance, half-lives in
//!    samples) follow the value and its change from the previous sample. The raw surprise of
//!    a point is the larger of the two z-scores (in the configured [`Direction`]), capped.
//!    A level shift shows in the value, a sudden spike or drop also in the change. The
//!    half-life is long (thousands of samples, and until the exponential weight overtakes
//!    `1/n`, after about 1.4 half-lives, every sample weighs the same), so the baselines
//!    describe the stream's usual range over days rather than its last few hours, and a slow
//!    drift into an unusual range stays visible.
//! 2. **Seasonality and onsets.** A stream with a daily rhythm surprises at the same time
//!    every day (a nightly batch, a morning peak). The detector remembers, per slot of the
//!    seasonal period, the surprise last seen there (a weighted memory over past periods) and
//!    subtracts the largest memory of the slot and its neighbours: what happens every day is
//!    not news. The neighbours include the slot just before, which the previous point filled
//!    in this very period, so a surprise that merely continues the previous point's counts
//!    for less: a sustained anomaly weighs most at its onset (and when it ends), which is
//!    when an alert is worth raising; the refractory period covers the rest.
//! 3. **Likelihood.** A single surprising point in a noisy stream is common; a run of them is
//!    not. As in Numenta's "anomaly likelihood" (Ahmad et al., 2017), the short mean of the
//!    last `recent_samples` surprises is compared with the distribution of that same short
//!    mean over a long history (its exponentially weighted mean and spread, half-life
//!    `history_half_life_samples`): the tail probability of the current short mean under a
//!    normal law with the history's moments is the point's p-value, and `score = 1 - p`.
//!    Comparing like with like (short means with short means, rather than a short mean with
//!    the wider spread of single surprises) keeps `p` a fair tail probability whose scale
//!    does not depend on how noisy the stream is, so one threshold serves every stream.
//!    The first `settle_samples` points only train the baselines. The detector alerts when
//!    `p` falls under `alert_probability`, after a warm-up, and then holds for
//!    `refractory_samples` so that one anomaly is one alert.
//!
//! **Input rules.** A non-finite value (`NaN`, `±inf`) is skipped: score 0, no alert, and
//! nothing is learned (not even its time). A point whose timestamp is earlier than the
//! latest one seen (a clock that went back, a late sample) is treated as arriving at the
//! latest time seen: it is learned in arrival order, its change is measured from the
//! previous point, and it falls in the seasonal slot of the latest time.
//!
//! **Variants, off by default.** Each was tried on NAB with leave-one-category-out
//! cross-validation (`vigil-eval nab-cv --ablations`) and none improved the cross-validated
//! score, so the shipped setting leaves them off; they stay as settings so that the
//! comparison can be repeated: a sliding window of short means as Numenta's anomaly
//! likelihood keeps it (`history_window_samples`), spreads from the mean absolute deviation
//! (`robust_spread`), more time scales (`point_scale`, `long_scale_samples`), an empirical
//! tail with a peaks-over-threshold extrapolation instead of the normal law
//! (`empirical_tail`), and an ensemble of both tails (`ensemble_tail_probability`).
//!
//! The rest is classic exponential smoothing. Everything is deterministic arithmetic (basic
//! operations, `sqrt` and [`crate::numeric::half_pow`]), so a replay gives the same bits, and
//! the state per stream is a few numbers, one slot memory per seasonal slot and the last
//! `recent_samples` surprises (the variants add at most 32 KiB for a sliding history, 16 KiB
//! for the empirical tail's histogram and 8 KiB for a long time scale; each step costs a few
//! dozen operations more with them).

use serde::{Deserialize, Serialize};

use crate::numeric::half_pow;
use crate::time::Timestamp;

mod parts;

use parts::{
    Baseline, History, MAX_HISTORY_WINDOW_SAMPLES, MAX_RECENT_SAMPLES, Recent, Season,
    TailHistogram,
};

/// Which deviations count as surprising.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Rises only (token and spend spikes).
    Up,
    /// Falls only (pass rates, cache hit rates).
    Down,
    /// Both.
    #[default]
    Both,
}

/// The detector's settings. The defaults are the shipped configuration, scored on NAB with
/// one setting for every series.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdaptiveConfig {
    /// Which deviations count.
    pub direction: Direction,
    /// Half-life, in samples, of the baselines of the value and of its change.
    pub baseline_half_life_samples: f64,
    /// The cap on one point's surprise, in standard deviations.
    pub max_surprise: f64,
    /// The spread never counts as less than this fraction of the baseline's magnitude, so a
    /// flat stream does not make every wiggle infinitely surprising.
    pub noise_floor_ratio: f64,
    /// The seasonal period in seconds (a day); 0 turns seasonality off.
    pub season_secs: i64,
    /// How much of a slot's memory one period replaces (0 to 1).
    pub season_learning_rate: f64,
    /// How many neighbouring slots on each side a point is compared with.
    pub season_neighbours: u32,
    /// The first samples only train the baselines: their surprise, measured against a
    /// baseline that has seen almost nothing, would swamp the history, so it is not kept.
    pub settle_samples: u32,
    /// Half-life, in samples, of the long history: the exponentially weighted mean and
    /// spread of the short means (until the exponential weight overtakes `1/n`, after
    /// about 1.4 half-lives, every short mean seen weighs the same).
    pub history_half_life_samples: f64,
    /// How many of the latest surprises are averaged into the short mean.
    pub recent_samples: usize,
    /// The p-value under which a point alerts.
    pub alert_probability: f64,
    /// No alert during the first samples.
    pub warmup_samples: u32,
    /// Samples after an alert during which no new alert is raised.
    pub refractory_samples: u32,
    /// When not 0, the history of short means is a sliding window of this many of them
    /// (their plain mean and spread), as Numenta's anomaly likelihood keeps it, instead of
    /// the exponentially weighted history of `history_half_life_samples`.
    pub history_window_samples: u32,
    /// Measure the baselines' spread by the mean absolute deviation (scaled to a standard
    /// deviation for normal noise) rather than by the variance, so that a few large
    /// outliers widen it less.
    pub robust_spread: bool,
    /// Also judge the latest single surprise against the history of single surprises; the
    /// point's p-value is the smaller of the two scales'.
    pub point_scale: bool,
    /// When not 0, also judge the mean of this many latest surprises against its own history
    /// (a slower scale than `recent_samples`).
    pub long_scale_samples: usize,
    /// Judge the short mean by its empirical tail among past short means (a histogram),
    /// with an exponential tail fitted beyond the largest few (peaks over threshold), rather
    /// than by a normal law with the history's mean and spread.
    pub empirical_tail: bool,
    /// When not 0 (and `empirical_tail` is off), an ensemble: the point also alerts when the
    /// empirical tail of its short mean is under this probability. Its p-value is rescaled
    /// so that this threshold meets `alert_probability`, and the smaller one counts.
    pub ensemble_tail_probability: f64,
}

impl Default for AdaptiveConfig {
    fn default() -> Self {
        AdaptiveConfig {
            direction: Direction::Both,
            baseline_half_life_samples: 4000.0,
            max_surprise: 20.0,
            noise_floor_ratio: 1e-3,
            season_secs: 86_400,
            season_learning_rate: 0.2,
            season_neighbours: 1,
            settle_samples: 20,
            history_half_life_samples: 4000.0,
            recent_samples: 10,
            alert_probability: 1e-6,
            warmup_samples: 100,
            refractory_samples: 200,
            history_window_samples: 0,
            robust_spread: false,
            point_scale: false,
            long_scale_samples: 0,
            empirical_tail: false,
            ensemble_tail_probability: 0.0,
        }
    }
}

/// Why a config cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("adaptive detector: `{field}` {reason}")]
pub struct AdaptiveConfigError {
    /// The offending field.
    pub field: &'static str,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl AdaptiveConfig {
    /// Checks every field's range.
    ///
    /// # Errors
    /// The first field out of range.
    pub fn validate(&self) -> Result<(), AdaptiveConfigError> {
        let fail = |field, reason| Err(AdaptiveConfigError { field, reason });
        let positive = |value: f64| value.is_finite() && value > 0.0;
        if !positive(self.baseline_half_life_samples) {
            return fail("baseline_half_life_samples", "must be a positive number");
        }
        if !positive(self.max_surprise) {
            return fail("max_surprise", "must be a positive number");
        }
        if !(self.noise_floor_ratio.is_finite() && self.noise_floor_ratio >= 0.0) {
            return fail("noise_floor_ratio", "must be zero or more");
        }
        if self.season_secs < 0 {
            return fail("season_secs", "must be zero (off) or more");
        }
        if !(0.0..=1.0).contains(&self.season_learning_rate) {
            return fail("season_learning_rate", "must be between 0 and 1");
        }
        if !positive(self.history_half_life_samples) {
            return fail("history_half_life_samples", "must be a positive number");
        }
        if self.recent_samples == 0 || self.recent_samples > MAX_RECENT_SAMPLES {
            return fail("recent_samples", "must be between 1 and 1000");
        }
        if self.history_window_samples > MAX_HISTORY_WINDOW_SAMPLES {
            return fail("history_window_samples", "must be between 0 (off) and 4096");
        }
        if self.long_scale_samples > MAX_RECENT_SAMPLES {
            return fail("long_scale_samples", "must be between 0 (off) and 1000");
        }
        if !(self.ensemble_tail_probability >= 0.0 && self.ensemble_tail_probability < 1.0) {
            return fail(
                "ensemble_tail_probability",
                "must be 0 (off) or between 0 and 1",
            );
        }
        if !(self.alert_probability > 0.0 && self.alert_probability < 1.0) {
            return fail("alert_probability", "must be between 0 and 1, exclusive");
        }
        Ok(())
    }
}

/// What one point made of the detector.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdaptiveStep {
    /// `1 - p`: how anomalous the recent points are, in `[0, 1]`.
    pub score: f64,
    /// Whether this point raises an alert.
    pub alert: bool,
    /// The point's surprise after the seasonal discount, in standard deviations.
    pub surprise: f64,
    /// The baseline the value was compared with (before this point was learned).
    pub expected: f64,
}

/// The detector's state for one stream.
#[derive(Clone, Debug)]
pub struct AdaptiveDetector {
    config: AdaptiveConfig,
    weight: f64,
    history_weight: f64,
    value: Baseline,
    change: Baseline,
    season: Season,
    recent: Recent,
    history: History,
    point_history: History,
    tail: TailHistogram,
    long_history: History,
    previous: Option<(Timestamp, f64)>,
    /// The latest timestamp seen: an earlier one is moved up to it.
    latest: Option<Timestamp>,
    n_seen: u64,
    last_alert: Option<u64>,
}

impl AdaptiveDetector {
    /// A detector with no history. The config should have passed
    /// [`AdaptiveConfig::validate`].
    #[must_use]
    pub fn new(config: AdaptiveConfig) -> Self {
        let weight = 1.0 - half_pow(1.0 / config.baseline_half_life_samples.max(f64::EPSILON));
        let history_weight =
            1.0 - half_pow(1.0 / config.history_half_life_samples.max(f64::EPSILON));
        let history_window = config.history_window_samples as usize;
        let tail = if config.empirical_tail || config.ensemble_tail_probability > 0.0 {
            TailHistogram::new(config.max_surprise)
        } else {
            TailHistogram::default()
        };
        AdaptiveDetector {
            config,
            weight,
            history_weight,
            value: Baseline::default(),
            change: Baseline::default(),
            season: Season::default(),
            recent: Recent::default(),
            history: History::with_window(history_window),
            // The extra time scales keep exponential histories: a window each would triple
            // the memory of the sliding history.
            point_history: History::default(),
            tail,
            long_history: History::default(),
            previous: None,
            latest: None,
            n_seen: 0,
            last_alert: None,
        }
    }

    /// Its configuration.
    #[must_use]
    pub fn config(&self) -> &AdaptiveConfig {
        &self.config
    }

    /// Feeds one point. A non-finite value is skipped (score 0, no alert, nothing learned);
    /// a point earlier than the latest one seen is taken as arriving at the latest time (see
    /// the module's input rules).
    pub fn step(&mut self, at: Timestamp, value: f64) -> AdaptiveStep {
        if !value.is_finite() {
            return AdaptiveStep {
                score: 0.0,
                alert: false,
                surprise: 0.0,
                expected: self.value.mean,
            };
        }
        let at = self
            .latest
            .map_or(at, |latest| Timestamp(latest.0.max(at.0)));
        self.latest = Some(at);
        let config = &self.config;
        let expected = if self.value.primed {
            self.value.mean
        } else {
            value
        };
        let value_z = self.value.score_and_learn(
            value,
            self.weight,
            config.noise_floor_ratio,
            config.robust_spread,
        );
        let change_z = match self.previous {
            Some((previous_at, previous_value)) => {
                self.season.configure(
                    config.season_secs.saturating_mul(1000),
                    at.millis_since(previous_at),
                );
                self.change.score_and_learn(
                    value - previous_value,
                    self.weight,
                    config.noise_floor_ratio,
                    config.robust_spread,
                )
            }
            None => 0.0,
        };
        self.previous = Some((at, value));
        let directed = |z: f64| match config.direction {
            Direction::Up => z.max(0.0),
            Direction::Down => (-z).max(0.0),
            Direction::Both => z.abs(),
        };
        let surprise = directed(value_z)
            .max(directed(change_z))
            .min(config.max_surprise);
        let surprise = self.season.discount(at, surprise, config);
        let index = self.n_seen;
        self.n_seen += 1;
        if index < u64::from(config.settle_samples) {
            return AdaptiveStep {
                score: 0.0,
                alert: false,
                surprise,
                expected,
            };
        }
        // The short mean ending at this point is judged against the history of short means
        // before it, then joins it.
        self.recent.push(
            surprise,
            config.recent_samples.max(config.long_scale_samples),
        );
        let weight = self.history_weight;
        let judge = |history: &mut History, mean_now: f64| {
            let (mean, spread) = history.moments();
            history.push(mean_now, weight);
            upper_tail((mean_now - mean) / spread.max(1e-3))
        };
        let recent = self.recent.mean_of_latest(config.recent_samples);
        let mut p = if config.empirical_tail {
            let p = self.tail.p_value(recent);
            self.tail.add(recent);
            p
        } else if config.ensemble_tail_probability > 0.0 {
            let p_tail = self.tail.p_value(recent);
            self.tail.add(recent);
            let rescaled = p_tail * config.alert_probability / config.ensemble_tail_probability;
            judge(&mut self.history, recent).min(rescaled.min(1.0))
        } else {
            judge(&mut self.history, recent)
        };
        if config.point_scale {
            p = p.min(judge(&mut self.point_history, surprise));
        }
        if config.long_scale_samples > 0 {
            let long = self.recent.mean_of_latest(config.long_scale_samples);
            p = p.min(judge(&mut self.long_history, long));
        }
        let warm = index >= u64::from(config.warmup_samples);
        let rested = self
            .last_alert
            .is_none_or(|last| index.saturating_sub(last) >= u64::from(config.refractory_samples));
        let alert = warm && rested && p < config.alert_probability;
        if alert {
            self.last_alert = Some(index);
        }
        AdaptiveStep {
            score: (1.0 - p).clamp(0.0, 1.0),
            alert,
            surprise,
            expected,
        }
    }
}

/// `P(Z > x)` for a standard normal `Z`, deterministically: the complementary error function
/// by Numerical Recipes' Chebyshev fit (`erfcc`, fractional error under 1.2e-7), with `exp`
/// computed by [`half_pow`].
#[must_use]
pub fn upper_tail(x: f64) -> f64 {
    if x.is_nan() {
        return 0.5;
    }
    let z = x.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.5 * z);
    let polynomial = -1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    // exp(y) = 0.5^(-y / ln 2); the exponent is never above 0 but for rounding.
    let exponent = -z * z + polynomial;
    let erfc = t * half_pow((-exponent).max(0.0) / std::f64::consts::LN_2);
    let tail = 0.5 * erfc;
    if x >= 0.0 { tail } else { 1.0 - tail }
}

#[cfg(test)]
mod tests;
