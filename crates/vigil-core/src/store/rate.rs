//! Counter rates over a window, as Prometheus' `rate()`, `increase()` and `irate()` compute
//! them, restricted to the series' current run so that no rate spans a staleness gap.
//!
//! The extrapolation follows `extrapolatedRate` in Prometheus' `promql/functions.go`
//! (checked at commit 003b9e9d2c4174917eb62e5f47d6a900d09723be) and the window is left-open,
//! `(at - window, at]`, as range selectors are since Prometheus 3.0:
//!
//! * the increase is `last - first`, plus the value before every drop (a drop means the
//!   counter restarted from 0);
//! * it is extrapolated towards each window edge: all the way when the first (last) point is
//!   within 1.1 average sample intervals of the edge, else by half an average interval;
//! * towards the start, never past the time at which the counter would have been 0;
//! * `rate` divides by the window's length in seconds.
//!
//! Where vigil differs: Prometheus drops staleness markers from a range and computes across
//! them; here only the points after the last marker in the window count, and a series that
//! is stale at `at` has no rate at all.

use std::ops::Range;

use super::ring::{Ring, is_stale_marker};
use super::{Point, SeriesRef, SeriesStore};
use crate::time::Timestamp;

impl SeriesStore {
    /// The per-second rate of counter `series` over `(at - window_ms, at]`, as Prometheus'
    /// `rate()`; `None` with fewer than two points in the window's current run, or when the
    /// series is stale at `at`.
    #[must_use]
    pub fn rate(&self, series: SeriesRef, window_ms: i64, at: Timestamp) -> Option<f64> {
        let (ring, run) = self.current_run(series, window_ms, at)?;
        extrapolated_rate(
            ring.iter_range(run),
            at.0.saturating_sub(window_ms),
            at.0,
            true,
            true,
        )
    }

    /// The increase of counter `series` over `(at - window_ms, at]`, as Prometheus'
    /// `increase()` (the rate times the window's length).
    #[must_use]
    pub fn increase(&self, series: SeriesRef, window_ms: i64, at: Timestamp) -> Option<f64> {
        let (ring, run) = self.current_run(series, window_ms, at)?;
        extrapolated_rate(
            ring.iter_range(run),
            at.0.saturating_sub(window_ms),
            at.0,
            true,
            false,
        )
    }

    /// The per-second rate between the last two points of counter `series` in
    /// `(at - window_ms, at]`, as Prometheus' `irate()` (a drop counts the new value as the
    /// increase); `None` unless both are in the current run.
    #[must_use]
    pub fn instant_rate(&self, series: SeriesRef, window_ms: i64, at: Timestamp) -> Option<f64> {
        let (ring, run) = self.current_run(series, window_ms, at)?;
        let last = ring.get(run.end.checked_sub(1)?)?;
        let previous_idx = run.end.checked_sub(2)?;
        if previous_idx < run.start {
            return None;
        }
        instant_rate(ring.get(previous_idx)?, last)
    }

    /// How much counter `series` grew between its last two points in `(at - window_ms, at]`
    /// (a drop counts the new value, as a restart from 0), and the time of the last one;
    /// `None` unless both are in the current run. Detectors that keep their own windows add
    /// these up, once per new point.
    #[must_use]
    pub fn last_increase(
        &self,
        series: SeriesRef,
        window_ms: i64,
        at: Timestamp,
    ) -> Option<(f64, Timestamp)> {
        let (ring, run) = self.current_run(series, window_ms, at)?;
        let last = ring.get(run.end.checked_sub(1)?)?;
        let previous_idx = run.end.checked_sub(2)?;
        if previous_idx < run.start {
            return None;
        }
        let previous = ring.get(previous_idx)?;
        let increase = if last.1 < previous.1 {
            last.1
        } else {
            last.1 - previous.1
        };
        Some((increase, Timestamp(last.0)))
    }

    /// The points a rate over `(at - window_ms, at]` uses: those after the last staleness
    /// marker in the window; empty when the series is stale at `at` or was dropped.
    #[must_use]
    pub fn run_points(&self, series: SeriesRef, window_ms: i64, at: Timestamp) -> Vec<Point> {
        self.current_run(series, window_ms, at)
            .map(|(ring, run)| {
                ring.iter_range(run)
                    .map(|(point_at, value)| Point {
                        at: Timestamp(point_at),
                        value,
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The ring of `series` and the logical indices of its points in `(at - window_ms, at]`
    /// after the last staleness marker; `None` if the newest point at or before `at` is a
    /// marker, or there is none.
    fn current_run(
        &self,
        series: SeriesRef,
        window_ms: i64,
        at: Timestamp,
    ) -> Option<(&Ring, Range<usize>)> {
        if window_ms <= 0 {
            return None;
        }
        let ring = &self.series(series)?.ring;
        let end = ring.partition_point(|point_at| point_at <= at.0);
        let (_, newest) = ring.get(end.checked_sub(1)?)?;
        if is_stale_marker(newest) {
            return None;
        }
        let window_start = at.0.saturating_sub(window_ms);
        let mut start = ring.partition_point(|point_at| point_at <= window_start);
        for idx in (start..end).rev() {
            if ring
                .get(idx)
                .is_some_and(|(_, value)| is_stale_marker(value))
            {
                start = idx + 1;
                break;
            }
        }
        Some((ring, start..end))
    }
}

/// Prometheus' `extrapolatedRate` for float samples over `(range_start_ms, range_end_ms]`:
/// `points` are the samples in that range, oldest first. `None` with fewer than two.
pub(crate) fn extrapolated_rate(
    points: impl Iterator<Item = (i64, f64)> + Clone,
    range_start_ms: i64,
    range_end_ms: i64,
    is_counter: bool,
    is_rate: bool,
) -> Option<f64> {
    let mut rest = points.clone();
    let (first_at, first_value) = rest.next()?;
    let mut n_intervals = 0_u32;
    let (mut last_at, mut last_value) = (first_at, first_value);
    for (point_at, value) in rest {
        n_intervals = n_intervals.saturating_add(1);
        (last_at, last_value) = (point_at, value);
    }
    if n_intervals == 0 {
        return None;
    }
    let mut result = last_value - first_value;
    if is_counter {
        // Added one by one, in order, as Prometheus does, for the same rounding.
        let mut previous = first_value;
        for (_, value) in points.skip(1) {
            if value < previous {
                result += previous;
            }
            previous = value;
        }
    }

    let mut duration_to_start = millis_as_secs(first_at.saturating_sub(range_start_ms));
    let mut duration_to_end = millis_as_secs(range_end_ms.saturating_sub(last_at));
    let sampled_interval = millis_as_secs(last_at.saturating_sub(first_at));
    let average_interval = sampled_interval / f64::from(n_intervals);

    let extrapolation_threshold = average_interval * 1.1;
    if duration_to_start >= extrapolation_threshold {
        duration_to_start = average_interval / 2.0;
    }
    if is_counter {
        // A counter is never negative: do not extrapolate to before it would have been 0.
        let mut duration_to_zero = duration_to_start;
        if result > 0.0 && first_value >= 0.0 {
            duration_to_zero = sampled_interval * (first_value / result);
        }
        if duration_to_zero < duration_to_start {
            duration_to_start = duration_to_zero;
        }
    }
    if duration_to_end >= extrapolation_threshold {
        duration_to_end = average_interval / 2.0;
    }

    let mut factor = (sampled_interval + duration_to_start + duration_to_end) / sampled_interval;
    if is_rate {
        factor /= go_duration_secs(range_end_ms.saturating_sub(range_start_ms));
    }
    Some(result * factor)
}

/// Prometheus' `irate()` between two points: the increase (the new value after a drop) per
/// second. `None` when they are not in time order.
pub(crate) fn instant_rate(previous: (i64, f64), last: (i64, f64)) -> Option<f64> {
    let interval_ms = last.0.saturating_sub(previous.0);
    if interval_ms <= 0 {
        return None;
    }
    let increase = if last.1 < previous.1 {
        last.1
    } else {
        last.1 - previous.1
    };
    Some(increase / millis_as_secs(interval_ms))
}

/// Milliseconds as seconds, computed as Prometheus does (`float64(ms) / 1000`).
fn millis_as_secs(millis: i64) -> f64 {
    millis as f64 / 1000.0
}

/// A window's length in seconds as Go's `time.Duration.Seconds()` computes it: whole
/// seconds plus the remaining nanoseconds over 1e9.
fn go_duration_secs(millis: i64) -> f64 {
    let whole_secs = millis / 1000;
    let remaining_nanos = (millis % 1000) * 1_000_000;
    whole_secs as f64 + remaining_nanos as f64 / 1e9
}
