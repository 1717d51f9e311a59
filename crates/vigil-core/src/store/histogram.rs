//! `histogram_quantile(φ, …)` over classic histograms: `_bucket` series with an `le` label.
//!
//! [`bucket_quantile`] follows `bucketQuantile` in Prometheus' `promql/quantile.go` (checked
//! at commit 01381a80115bde3f6dbb392123980d0bfadf49af): sort by upper bound, require a
//! `+Inf` bucket, merge equal bounds, smooth counts that differ by floating-point noise,
//! force monotonic counts, then interpolate linearly inside the bucket holding the rank.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use super::matcher::{Matcher, SOURCE_LABEL};
use super::{SeriesRef, SeriesStore};
use crate::signal::Labels;
use crate::time::Timestamp;

/// The name of the label holding a bucket's upper bound.
const BUCKET_LABEL: &str = "le";

/// Relative difference under which two neighbouring bucket counts are taken as equal.
const PRECISION_TOLERANCE: f64 = 1e-12;

/// One cumulative bucket: how many observations were at most `upper_bound`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bucket {
    /// The bucket's `le`.
    pub upper_bound: f64,
    /// Observations (or their rate) at most `upper_bound`.
    pub count: f64,
}

/// Which values of the bucket series a quantile is computed from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BucketValues {
    /// Each bucket's latest value within the lookback (the distribution since the start).
    Latest {
        /// How far back a point may be, in milliseconds.
        lookback_ms: i64,
    },
    /// Each bucket's `rate()` over the window (the distribution of recent observations).
    Rate {
        /// The window, in milliseconds.
        window_ms: i64,
    },
}

/// How bucket series are grouped into histograms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Grouping {
    /// One histogram per source and label set other than `le`, as `histogram_quantile`
    /// does over the bucket series themselves.
    Each,
    /// Buckets summed over the series that agree on these labels and `le`, as
    /// `histogram_quantile(φ, sum by (le, …) (…))`; list [`SOURCE_LABEL`] to keep sources
    /// apart.
    By(Vec<String>),
}

/// The quantile of one group.
#[derive(Clone, Debug, PartialEq)]
pub struct QuantileGroup {
    /// The group's source, when the grouping keeps sources apart.
    pub source: Option<String>,
    /// The group's labels (without `le` and the metric name).
    pub labels: Labels,
    /// The quantile; NaN when the group has no observations or no `+Inf` bucket.
    pub value: f64,
}

impl SeriesStore {
    /// The `phi`-quantile of each histogram among the bucket series that `matchers` select
    /// (they should name a `_bucket` metric), ordered by source and labels.
    ///
    /// Series without a parsable `le` and series without a value are left out.
    #[must_use]
    pub fn histogram_quantile(
        &self,
        phi: f64,
        matchers: &[Matcher],
        values: BucketValues,
        grouping: &Grouping,
        at: Timestamp,
    ) -> Vec<QuantileGroup> {
        let mut groups: BTreeMap<(Option<String>, Labels), Vec<Bucket>> = BTreeMap::new();
        for series in self.select(matchers) {
            let Some(upper_bound) = self
                .label_value(series, BUCKET_LABEL)
                .and_then(parse_upper_bound)
            else {
                continue;
            };
            let count = match values {
                BucketValues::Latest { lookback_ms } => self
                    .value_at(series, at, lookback_ms)
                    .map(|point| point.value),
                BucketValues::Rate { window_ms } => self.rate(series, window_ms, at),
            };
            let Some(count) = count else {
                continue;
            };
            groups
                .entry(self.group_key(series, grouping))
                .or_default()
                .push(Bucket { upper_bound, count });
        }
        groups
            .into_iter()
            .map(|((source, labels), mut buckets)| QuantileGroup {
                source,
                labels,
                value: bucket_quantile(phi, &mut buckets),
            })
            .collect()
    }

    fn group_key(&self, series: SeriesRef, grouping: &Grouping) -> (Option<String>, Labels) {
        let Some(identity) = self.identity(series) else {
            return (None, Labels::default());
        };
        match grouping {
            Grouping::Each => (
                Some(identity.source),
                identity
                    .labels
                    .iter()
                    .filter(|&(name, _)| name != BUCKET_LABEL)
                    .collect(),
            ),
            Grouping::By(names) => (
                names
                    .iter()
                    .any(|name| name == SOURCE_LABEL)
                    .then_some(identity.source),
                identity
                    .labels
                    .iter()
                    .filter(|&(name, _)| {
                        name != BUCKET_LABEL && names.iter().any(|wanted| wanted == name)
                    })
                    .collect(),
            ),
        }
    }
}

/// An `le` value as a number (`+Inf` included); `None` for anything else, NaN included.
fn parse_upper_bound(text: &str) -> Option<f64> {
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|bound| !bound.is_nan())
}

/// The `phi`-quantile of cumulative `buckets` (in any order), as Prometheus'
/// `bucketQuantile`; the buckets are sorted and merged in place.
///
/// * NaN when `phi` is NaN, -Inf when `phi < 0`, +Inf when `phi > 1`;
/// * NaN without a `+Inf` bucket, with fewer than two buckets, or with no observations;
/// * inside a bucket, linear interpolation between its lower and upper bound; the lowest
///   bucket starts at 0, unless its upper bound is at most 0, which is then the answer;
/// * a rank in the `+Inf` bucket gives the highest finite upper bound.
pub fn bucket_quantile(phi: f64, buckets: &mut Vec<Bucket>) -> f64 {
    if phi.is_nan() {
        return f64::NAN;
    }
    if phi < 0.0 {
        return f64::NEG_INFINITY;
    }
    if phi > 1.0 {
        return f64::INFINITY;
    }
    buckets.sort_by(|a, b| a.upper_bound.total_cmp(&b.upper_bound));
    if buckets
        .last()
        .is_none_or(|last| last.upper_bound != f64::INFINITY)
    {
        return f64::NAN;
    }
    coalesce(buckets);
    correct_precision_errors(buckets);
    ensure_monotonic(buckets);

    let n_buckets = buckets.len();
    let (Some(highest), Some(second_highest)) = (
        buckets.last().copied(),
        n_buckets
            .checked_sub(2)
            .and_then(|idx| buckets.get(idx))
            .copied(),
    ) else {
        return f64::NAN;
    };
    let observations = highest.count;
    if observations == 0.0 {
        return f64::NAN;
    }
    let mut rank = phi * observations;
    let finite = buckets.get(..n_buckets - 1).unwrap_or_default();
    // The first bucket whose count reaches the rank (`sort.Search` in Prometheus).
    let bucket_idx = finite.partition_point(|bucket| {
        !matches!(
            bucket.count.partial_cmp(&rank),
            Some(Ordering::Greater | Ordering::Equal)
        )
    });
    let Some(bucket) = finite.get(bucket_idx) else {
        return second_highest.upper_bound;
    };
    if bucket_idx == 0 && bucket.upper_bound <= 0.0 {
        return bucket.upper_bound;
    }
    let mut bucket_start = 0.0;
    let mut count = bucket.count;
    if let Some(below) = bucket_idx.checked_sub(1).and_then(|idx| finite.get(idx)) {
        bucket_start = below.upper_bound;
        count -= below.count;
        rank -= below.count;
    }
    bucket_start + (bucket.upper_bound - bucket_start) * (rank / count)
}

/// Merges buckets with the same upper bound (sorted input), summing their counts.
fn coalesce(buckets: &mut Vec<Bucket>) {
    let mut merged: Vec<Bucket> = Vec::with_capacity(buckets.len());
    for bucket in buckets.iter() {
        match merged.last_mut() {
            Some(last) if last.upper_bound == bucket.upper_bound => last.count += bucket.count,
            _ => merged.push(*bucket),
        }
    }
    *buckets = merged;
}

/// Makes counts that differ from the previous one by a relative 1e-12 or less equal to it,
/// so that floating-point noise does not break monotonicity.
fn correct_precision_errors(buckets: &mut [Bucket]) {
    let mut iter = buckets.iter_mut();
    let Some(first) = iter.next() else {
        return;
    };
    let mut previous = first.count;
    for bucket in iter {
        let delta = (bucket.count - previous).abs();
        if delta == 0.0 {
            continue;
        }
        if delta / bucket.count <= PRECISION_TOLERANCE {
            bucket.count = previous;
        } else {
            previous = bucket.count;
        }
    }
}

/// Raises every count to at least the count of the buckets below it.
fn ensure_monotonic(buckets: &mut [Bucket]) {
    let mut iter = buckets.iter_mut();
    let Some(first) = iter.next() else {
        return;
    };
    let mut max = first.count;
    for bucket in iter {
        if bucket.count > max {
            max = bucket.count;
        } else if bucket.count < max {
            bucket.count = max;
        }
    }
}
