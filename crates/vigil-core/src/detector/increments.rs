//! New increases of two counters, per group: what detectors that keep their own windows of
//! counts (burn rates, proportion drops) add up.
//!
//! Each new point of a counter contributes its increase over the previous point counted once
//! (a drop is a restart from 0). The previous point is remembered here, not looked up in the
//! store, so pushed counters that move once a day still count whatever the store's
//! retention. A series seen for the first time counts the increase between its last two
//! points, or, for a pushed source (whose counters vigil itself started from zero), its
//! value when it has only one; a stale series is forgotten (its return starts a new run). A series may match both
//! selectors and then counts for both.

use std::collections::BTreeMap;

use crate::store::{Matcher, SOURCE_LABEL, Selector, SeriesRef, SeriesStore};
use crate::time::Timestamp;

/// New increases of one counter in one group at one time: which counter (0 or 1), the
/// group, when, how much in all.
#[derive(Clone, Debug, PartialEq)]
pub struct Increment {
    /// 0 for the first selector, 1 for the second.
    pub counter: usize,
    /// The value of the grouping label (`""` without one or when the series lacks it).
    pub group: String,
    /// The time of the point that brought it.
    pub at: Timestamp,
    /// How much the counter grew.
    pub amount: f64,
}

/// Tracks which points of two counters have been counted.
#[derive(Clone, Debug)]
pub struct CounterPair {
    /// The two parsed selectors, each with the source's matcher.
    matchers: [Vec<Matcher>; 2],
    /// Per series and counter, the last point counted (time in ms, value).
    counted: BTreeMap<(SeriesRef, usize), (i64, f64)>,
    /// How far back the previous point may be for an increase to count.
    lookback_ms: i64,
    /// Whether a new series' first value is an increase from zero (pushed sources).
    counts_from_zero: bool,
}

/// The longest lookback asked of the store (ten years), so that time arithmetic stays far
/// from overflow.
const MAX_STORE_LOOKBACK_MS: i64 = 10 * 365 * 86_400 * 1000;

impl CounterPair {
    /// Both selectors, restricted to `source`; an increase counts when the previous point is
    /// at most `lookback_ms` older. A push source (`intake::PUSH_SOURCES`) holds counters
    /// that vigil itself started from zero.
    #[must_use]
    pub fn new(source: &str, first: &Selector, second: &Selector, lookback_ms: i64) -> Self {
        let with_source = |selector: &Selector| -> Vec<Matcher> {
            let mut matchers = selector.matchers().to_vec();
            matchers.push(Matcher::equal(SOURCE_LABEL, source));
            matchers
        };
        CounterPair {
            matchers: [with_source(first), with_source(second)],
            counted: BTreeMap::new(),
            lookback_ms,
            counts_from_zero: crate::intake::PUSH_SOURCES.contains(&source),
        }
    }

    /// Every increase not counted before, summed per counter, group and time (in that
    /// order).
    pub fn collect(
        &mut self,
        store: &SeriesStore,
        at: Timestamp,
        group_by: Option<&str>,
    ) -> Vec<Increment> {
        // Summed per counter, group and time: a scrape's series share one time.
        let mut sums: BTreeMap<(usize, &str, i64), f64> = BTreeMap::new();
        let mut seen: Vec<(SeriesRef, usize)> = Vec::new();
        for (counter, matchers) in self.matchers.iter().enumerate() {
            for series in store.select(matchers) {
                let Some(latest) = store.latest(series) else {
                    // Stale or dropped: its return is a new run.
                    continue;
                };
                seen.push((series, counter));
                let previous = self
                    .counted
                    .insert((series, counter), (latest.at.0, latest.value));
                let amount = match previous {
                    Some((counted_ms, _)) if counted_ms >= latest.at.0 => continue,
                    Some((counted_ms, value)) => (latest.at.0 - counted_ms <= self.lookback_ms)
                        .then_some(if latest.value < value {
                            latest.value
                        } else {
                            latest.value - value
                        }),
                    None => {
                        let lookback_ms = self.lookback_ms.min(MAX_STORE_LOOKBACK_MS);
                        store
                            .last_increase(series, lookback_ms, at)
                            .filter(|(_, point_at)| *point_at == latest.at)
                            .map(|(amount, _)| amount)
                            .or_else(|| {
                                (self.counts_from_zero
                                    && store.run_points(series, lookback_ms, at).len() == 1)
                                    .then_some(latest.value)
                            })
                    }
                };
                let Some(amount) = amount.filter(|amount| amount.is_finite()) else {
                    continue;
                };
                let group = group_by
                    .and_then(|label| store.label_value(series, label))
                    .unwrap_or("");
                *sums.entry((counter, group, latest.at.0)).or_insert(0.0) += amount;
            }
        }
        // Forget series that no longer match, went stale or were dropped, so the map stays
        // bounded by the live series.
        if self.counted.len() > seen.len() {
            seen.sort_unstable();
            self.counted
                .retain(|key, _| seen.binary_search(key).is_ok());
        }
        sums.into_iter()
            .map(|((counter, group, at_ms), amount)| Increment {
                counter,
                group: group.to_owned(),
                at: Timestamp(at_ms),
                amount,
            })
            .collect()
    }
}
