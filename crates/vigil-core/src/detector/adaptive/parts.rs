//! The adaptive detector's parts: the baselines, the seasonal discount, the short window of
//! surprises, the empirical tail and the long history of short means.

use std::collections::{BTreeMap, VecDeque};

use super::AdaptiveConfig;
use crate::numeric::half_pow;
use crate::time::Timestamp;

/// An exponentially weighted mean and variance. Until it has seen about one half-life, each
/// value weighs at least `1/n`, so the first values form a plain average and variance instead
/// of a near-zero variance that would make every early value look extreme.
#[derive(Clone, Debug, Default)]
pub(super) struct Baseline {
    pub(super) mean: f64,
    pub(super) variance: f64,
    pub(super) absolute_deviation: f64,
    pub(super) primed: bool,
    pub(super) n_learned: u32,
}

/// The standard deviation of normal noise over its mean absolute deviation: `sqrt(pi / 2)`.
const ABSOLUTE_DEVIATION_TO_SPREAD: f64 = 1.253_314_137_315_500_3;

impl Baseline {
    /// The signed z-score of `value` (0 for the first value), then learns it with `weight`.
    pub(super) fn score_and_learn(
        &mut self,
        value: f64,
        weight: f64,
        noise_floor_ratio: f64,
        robust: bool,
    ) -> f64 {
        if !self.primed {
            self.mean = value;
            self.primed = true;
            return 0.0;
        }
        let raw_spread = if robust {
            self.absolute_deviation * ABSOLUTE_DEVIATION_TO_SPREAD
        } else {
            self.variance.sqrt()
        };
        let spread = raw_spread
            .max(self.mean.abs() * noise_floor_ratio)
            .max(1e-9);
        self.n_learned = self.n_learned.saturating_add(1);
        let weight = weight.max(1.0 / f64::from(self.n_learned.saturating_add(1)));
        let deviation = value - self.mean;
        self.mean += weight * deviation;
        self.variance = (1.0 - weight) * (self.variance + weight * deviation * deviation);
        self.absolute_deviation += weight * (deviation.abs() - self.absolute_deviation);
        deviation / spread
    }
}

/// Per slot of the seasonal period, the surprise seen there in past periods.
#[derive(Clone, Debug, Default)]
pub(super) struct Season {
    /// The period and the slot width in milliseconds, fixed by the first two points.
    pub(super) slot_ms: Option<(i64, i64)>,
    pub(super) n_slots: i64,
    pub(super) memory: BTreeMap<i64, f64>,
}

/// At most this many slots per period, whatever the sampling interval.
const MAX_SLOTS: i64 = 4096;

impl Season {
    /// Fixes the slot width once the sampling interval is known; a period not longer than two
    /// intervals has no seasonality to learn.
    pub(super) fn configure(&mut self, season_ms: i64, interval_ms: i64) {
        if self.slot_ms.is_some() || interval_ms <= 0 || season_ms < 2 * interval_ms {
            return;
        }
        let slot_ms = interval_ms.max(season_ms / MAX_SLOTS).max(1);
        self.slot_ms = Some((season_ms, slot_ms));
        // The last slot may be shorter than the others.
        self.n_slots = (season_ms + slot_ms - 1) / slot_ms;
    }

    /// The surprise left after subtracting what this slot and its neighbours saw before; then
    /// remembers `surprise` for the slot.
    pub(super) fn discount(
        &mut self,
        at: Timestamp,
        surprise: f64,
        config: &AdaptiveConfig,
    ) -> f64 {
        let Some((season_ms, slot_ms)) = self.slot_ms else {
            return surprise;
        };
        // Slots are aligned to the Unix epoch: for a day, slot 0 starts at midnight UTC.
        let slot = at.0.rem_euclid(season_ms) / slot_ms;
        let neighbours = i64::from(config.season_neighbours);
        let seen = (-neighbours..=neighbours)
            .filter_map(|offset| {
                self.memory
                    .get(&(slot + offset).rem_euclid(self.n_slots))
                    .copied()
            })
            .fold(0.0_f64, f64::max);
        let remembered = self.memory.entry(slot).or_insert(surprise);
        *remembered += config.season_learning_rate * (surprise - *remembered);
        (surprise - seen).max(0.0)
    }
}

/// The largest accepted `recent_samples`: the short window is kept point by point.
pub(super) const MAX_RECENT_SAMPLES: usize = 1000;

/// The latest surprises, for their short mean.
#[derive(Clone, Debug, Default)]
pub(super) struct Recent {
    pub(super) values: VecDeque<f64>,
}

impl Recent {
    /// Adds `value`, keeping the latest `capacity` values.
    pub(super) fn push(&mut self, value: f64, capacity: usize) {
        self.values.push_back(value);
        while self.values.len() > capacity.max(1) {
            self.values.pop_front();
        }
    }

    /// The mean of the latest `count` values (fewer while fewer are kept), summed oldest
    /// first so that the sum is always taken in the same order.
    pub(super) fn mean_of_latest(&self, count: usize) -> f64 {
        let n_kept = self.values.len();
        let count = count.clamp(1, n_kept.max(1));
        let sum: f64 = self.values.iter().skip(n_kept - count.min(n_kept)).sum();
        sum / count as f64
    }

    /// Adds `value` and returns the mean of the latest `capacity` values.
    #[cfg(test)]
    pub(super) fn push_and_mean(&mut self, value: f64, capacity: usize) -> f64 {
        self.push(value, capacity);
        self.mean_of_latest(capacity)
    }
}

/// The number of bins of [`TailHistogram`], over `[0, max_surprise]`.
const TAIL_BINS: usize = 1024;

/// How many past values must lie at or above a point for its empirical tail to be used as
/// its p-value; beyond them the tail is extrapolated.
const TAIL_MIN_COUNT: f64 = 10.0;

/// When the histogram holds this much weight, every count is halved: old values fade.
const TAIL_MAX_WEIGHT: f64 = 65_536.0;

/// The distribution of past short means as a histogram of fixed bins over
/// `[0, max_surprise]`, kept as two Fenwick trees (counts and sums of the values) so that
/// adding a value and reading a tail cost about `log2(TAIL_BINS)` operations each.
///
/// A point's p-value is the share of past values in its bin or above, when at least
/// [`TAIL_MIN_COUNT`] of them are there; further out, as in peaks-over-threshold (Siffer et
/// al., "Anomaly detection in streams with extreme value theory", KDD 2017), the tail beyond
/// the bin that leaves [`TAIL_MIN_COUNT`] values above it is taken as exponential with the
/// mean excess of those values.
#[derive(Clone, Debug, Default)]
pub(super) struct TailHistogram {
    pub(super) counts: Vec<f64>,
    pub(super) sums: Vec<f64>,
    pub(super) weight: f64,
    pub(super) bin_width: f64,
}

impl TailHistogram {
    pub(super) fn new(max_value: f64) -> TailHistogram {
        TailHistogram {
            counts: vec![0.0; TAIL_BINS + 1],
            sums: vec![0.0; TAIL_BINS + 1],
            weight: 0.0,
            bin_width: (max_value / TAIL_BINS as f64).max(f64::MIN_POSITIVE),
        }
    }

    /// The bin of `value`, from 1 (Fenwick trees count from 1).
    pub(super) fn bin(&self, value: f64) -> usize {
        let bin = (value.max(0.0) / self.bin_width) as usize;
        bin.min(TAIL_BINS - 1) + 1
    }

    pub(super) fn add(&mut self, value: f64) {
        let mut index = self.bin(value);
        while let (Some(count), Some(sum)) = (self.counts.get_mut(index), self.sums.get_mut(index))
        {
            *count += 1.0;
            *sum += value;
            index += index & index.wrapping_neg();
        }
        self.weight += 1.0;
        if self.weight >= TAIL_MAX_WEIGHT {
            // Both trees are linear in the counts, so halving every node halves every bin.
            for node in self.counts.iter_mut().chain(self.sums.iter_mut()) {
                *node *= 0.5;
            }
            self.weight *= 0.5;
        }
    }

    /// The count and sum of the values in bins `1..=bin`.
    pub(super) fn prefix(&self, bin: usize) -> (f64, f64) {
        let (mut count, mut sum) = (0.0, 0.0);
        let mut index = bin.min(TAIL_BINS);
        while index > 0 {
            count += self.counts.get(index).copied().unwrap_or(0.0);
            sum += self.sums.get(index).copied().unwrap_or(0.0);
            index &= index - 1;
        }
        (count, sum)
    }

    /// The largest bin whose values and those above weigh at least `tail_weight`: the
    /// smallest prefix that holds more than `weight - tail_weight`, found by descending the
    /// tree.
    pub(super) fn tail_start(&self, tail_weight: f64) -> usize {
        let target = self.weight - tail_weight;
        let mut position = 0;
        let mut accumulated = 0.0;
        let mut step = TAIL_BINS.next_power_of_two();
        while step > 0 {
            let next = position + step;
            if let Some(count) = self.counts.get(next)
                && accumulated + count <= target
            {
                position = next;
                accumulated += count;
            }
            step /= 2;
        }
        // `position` is the largest prefix holding at most `target`; the tail starts after it.
        (position + 1).min(TAIL_BINS)
    }

    /// The p-value of `value` among the values added so far (1 before any).
    pub(super) fn p_value(&self, value: f64) -> f64 {
        if self.weight < 2.0 * TAIL_MIN_COUNT {
            return 1.0;
        }
        let total = self.weight + 1.0;
        let bin = self.bin(value);
        let (below, _) = self.prefix(bin - 1);
        let at_or_above = self.weight - below;
        if at_or_above >= TAIL_MIN_COUNT {
            return at_or_above / total;
        }
        let start = self.tail_start(TAIL_MIN_COUNT);
        let (before_count, before_sum) = self.prefix(start - 1);
        let tail_count = self.weight - before_count;
        let (_, all_sum) = self.prefix(TAIL_BINS);
        let tail_sum = all_sum - before_sum;
        let edge = (start - 1) as f64 * self.bin_width;
        if tail_count <= 0.0 {
            return 1.0 / total;
        }
        let mean_excess = (tail_sum / tail_count - edge).max(self.bin_width);
        let excess = (value - edge).max(0.0);
        // exp(-excess / mean_excess) = 0.5^(excess / (mean_excess ln 2)).
        tail_count / total * half_pow(excess / (mean_excess * std::f64::consts::LN_2))
    }
}

/// The largest accepted `history_window_samples` (32 KiB of values).
pub(super) const MAX_HISTORY_WINDOW_SAMPLES: u32 = 4096;

/// The long history of short means: their exponentially weighted mean and variance, which
/// need no memory of the values themselves, or, when a window is set, the plain mean and
/// variance of the latest `window` of them.
#[derive(Clone, Debug, Default)]
pub(super) struct History {
    pub(super) mean: f64,
    pub(super) variance: f64,
    pub(super) n_learned: u32,
    pub(super) window: usize,
    pub(super) values: VecDeque<f64>,
    pub(super) sum: f64,
    pub(super) sum_of_squares: f64,
    /// Values pushed since the sums were last recomputed from the window.
    pub(super) n_since_exact: usize,
}

impl History {
    /// An exponentially weighted history (`window` 0) or a sliding window.
    pub(super) fn with_window(window: usize) -> History {
        History {
            window,
            ..History::default()
        }
    }

    /// Mean and standard deviation of the short means learned so far (0 and 0 before any).
    pub(super) fn moments(&self) -> (f64, f64) {
        if self.window == 0 {
            return (self.mean, self.variance.max(0.0).sqrt());
        }
        let n = self.values.len();
        if n == 0 {
            return (0.0, 0.0);
        }
        let n = n as f64;
        let mean = self.sum / n;
        let variance = self.sum_of_squares / n - mean * mean;
        (mean, variance.max(0.0).sqrt())
    }

    /// Learns one value: exponentially or into the window.
    pub(super) fn push(&mut self, value: f64, weight: f64) {
        if self.window == 0 {
            self.learn(value, weight);
            return;
        }
        self.values.push_back(value);
        self.sum += value;
        self.sum_of_squares += value * value;
        while self.values.len() > self.window {
            if let Some(old) = self.values.pop_front() {
                self.sum -= old;
                self.sum_of_squares -= old * old;
            }
        }
        // Running sums drift by rounding as values come and go; once per window length they
        // are summed afresh (in window order), which costs one operation per step on average.
        self.n_since_exact += 1;
        if self.n_since_exact >= self.window {
            self.n_since_exact = 0;
            self.sum = self.values.iter().sum();
            self.sum_of_squares = self.values.iter().map(|value| value * value).sum();
        }
    }

    /// Learns one short mean with `weight`, or `1/n` for the `n`-th while that is larger.
    pub(super) fn learn(&mut self, value: f64, weight: f64) {
        self.n_learned = self.n_learned.saturating_add(1);
        let weight = weight.max(1.0 / f64::from(self.n_learned));
        let deviation = value - self.mean;
        self.mean += weight * deviation;
        self.variance = (1.0 - weight) * (self.variance + weight * deviation * deviation);
    }
}
