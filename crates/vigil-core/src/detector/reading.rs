//! What a detector reads per group from the series store: a gauge's value, a counter's rate,
//! a histogram quantile, a ratio of two rates, the hours a budget lasts, or the mean size of
//! the events counted since the last observation. The threshold and anomaly detectors share
//! it, so a reading means the same thing to both.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::increments::CounterPair;
use crate::signal::float_repr;
use crate::store::{BucketValues, Grouping, Matcher, SOURCE_LABEL, Selector, SeriesStore};
use crate::time::Timestamp;

/// How far back a gauge's latest point may be.
const VALUE_LOOKBACK_MS: i64 = 5 * 60 * 1000;

/// What a detector reads, per group.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reading {
    /// The sum of the latest values of a gauge's series.
    Value {
        /// The series, as a selector.
        selector: Selector,
    },
    /// The sum of the per-second rates of a counter's series over a window.
    Rate {
        /// The series, as a selector.
        selector: Selector,
        /// The window, in seconds.
        window_secs: i64,
    },
    /// The quantile of a classic histogram's recent observations (its `_bucket` rates).
    Quantile {
        /// The `_bucket` series, as a selector.
        selector: Selector,
        /// The quantile, between 0 and 1.
        #[serde(with = "float_repr")]
        quantile: f64,
        /// The window of the bucket rates, in seconds.
        window_secs: i64,
    },
    /// Hours until a budget runs out at the current spend: the summed latest value of a
    /// remaining-budget gauge over the summed per-hour rate of a spend counter (infinite
    /// while nothing is spent).
    HoursLeft {
        /// The remaining budget's series (for example `litellm_remaining_team_budget_metric`).
        remaining: Selector,
        /// The spend counter's series (for example `litellm_spend_metric_total`).
        spend: Selector,
        /// The window of the spend rate, in seconds.
        window_secs: i64,
    },
    /// The mean size of the events counted since the previous observation: the new
    /// increase of a sum counter over the new increase of a count counter (the mean prompt
    /// tokens of the eval cases just pushed, per prompt). A group with no new events has no
    /// reading.
    Mean {
        /// The sum counter's series (for example `vigil_eval_input_tokens_sum`).
        sum: Selector,
        /// The count counter's series (for example `vigil_eval_input_tokens_count`).
        count: Selector,
    },
    /// The summed rate of one counter over the summed rate of another.
    Ratio {
        /// The numerator's series, as a selector.
        numerator: Selector,
        /// The denominator's series, as a selector.
        denominator: Selector,
        /// The window of both rates, in seconds.
        window_secs: i64,
    },
}

impl Reading {
    /// The selectors it reads, to change.
    pub fn selectors_mut(&mut self) -> Vec<&mut Selector> {
        match self {
            Reading::Value { selector }
            | Reading::Rate { selector, .. }
            | Reading::Quantile { selector, .. } => vec![selector],
            Reading::Ratio {
                numerator,
                denominator,
                ..
            } => vec![numerator, denominator],
            Reading::HoursLeft {
                remaining, spend, ..
            } => vec![remaining, spend],
            Reading::Mean { sum, count } => vec![sum, count],
        }
    }

    /// The selectors it reads.
    #[must_use]
    pub fn selectors(&self) -> Vec<&Selector> {
        match self {
            Reading::Value { selector }
            | Reading::Rate { selector, .. }
            | Reading::Quantile { selector, .. } => vec![selector],
            Reading::Ratio {
                numerator,
                denominator,
                ..
            } => vec![numerator, denominator],
            Reading::HoursLeft {
                remaining, spend, ..
            } => vec![remaining, spend],
            Reading::Mean { sum, count } => vec![sum, count],
        }
    }
}

/// A reading bound to its source and grouping: the parsed matchers of its selectors, and the
/// counters of a `Mean` reading (which remember what they consumed).
#[derive(Clone, Debug)]
pub struct Reader {
    reading: Reading,
    group_by: Option<String>,
    /// The reading's selectors, parsed, each with the source's matcher.
    matchers: Vec<Vec<Matcher>>,
    /// The sum and count counters of a `Mean` reading.
    counters: Option<CounterPair>,
}

impl Reader {
    /// A reader of `reading` over the series of `source`, grouped by `group_by`.
    #[must_use]
    pub fn new(source: &str, reading: &Reading, group_by: Option<&str>) -> Self {
        let matchers = reading
            .selectors()
            .into_iter()
            .map(|selector| {
                let mut matchers = selector.matchers().to_vec();
                matchers.push(Matcher::equal(SOURCE_LABEL, source));
                matchers
            })
            .collect();
        let counters = match reading {
            Reading::Mean { sum, count } => Some(CounterPair::new(source, sum, count, i64::MAX)),
            _ => None,
        };
        Reader {
            reading: reading.clone(),
            group_by: group_by.map(str::to_owned),
            matchers,
            counters,
        }
    }

    /// The current reading of every group that has one at `at`. A group whose series are
    /// all stale or gone has none; a `Mean` reading is taken only by [`Self::observe`] (it
    /// consumes the new increases), so here it has none.
    #[must_use]
    pub fn read(&self, at: Timestamp, store: &SeriesStore) -> BTreeMap<String, f64> {
        let group_of = |series| match &self.group_by {
            Some(label) => store.label_value(series, label).unwrap_or("").to_owned(),
            None => String::new(),
        };
        let sum_by_group = |matchers: &[Matcher], read: &dyn Fn(_) -> Option<f64>| {
            let mut sums: BTreeMap<String, f64> = BTreeMap::new();
            for series in store.select(matchers) {
                if let Some(value) = read(series).filter(|value: &f64| value.is_finite()) {
                    *sums.entry(group_of(series)).or_default() += value;
                }
            }
            sums
        };
        let latest = |series| {
            store
                .latest(series)
                .filter(|point: &crate::store::Point| point.at.0 > at.0 - VALUE_LOOKBACK_MS)
                .map(|point| point.value)
        };
        let first = self.matchers.first().map_or(&[][..], Vec::as_slice);
        match &self.reading {
            Reading::Value { .. } => sum_by_group(first, &latest),
            Reading::Mean { .. } => BTreeMap::new(),
            Reading::Rate { window_secs, .. } => sum_by_group(first, &|series| {
                store.rate(series, window_secs.saturating_mul(1000), at)
            }),
            Reading::Quantile {
                quantile,
                window_secs,
                ..
            } => {
                let grouping = Grouping::By(self.group_by.iter().cloned().collect());
                store
                    .histogram_quantile(
                        *quantile,
                        first,
                        BucketValues::Rate {
                            window_ms: window_secs.saturating_mul(1000),
                        },
                        &grouping,
                        at,
                    )
                    .into_iter()
                    .filter(|group| group.value.is_finite())
                    .map(|group| {
                        let value = self
                            .group_by
                            .as_deref()
                            .and_then(|label| group.labels.get(label))
                            .unwrap_or("")
                            .to_owned();
                        (value, group.value)
                    })
                    .collect()
            }
            Reading::HoursLeft { window_secs, .. } => {
                let remaining = sum_by_group(first, &latest);
                let window_ms = window_secs.saturating_mul(1000);
                let second = self.matchers.get(1).map_or(&[][..], Vec::as_slice);
                let spend_per_sec =
                    sum_by_group(second, &|series| store.rate(series, window_ms, at));
                remaining
                    .into_iter()
                    .map(|(group, remaining)| {
                        let per_hour = spend_per_sec.get(&group).copied().unwrap_or(0.0) * 3600.0;
                        let hours = if per_hour > 0.0 {
                            (remaining / per_hour).max(0.0)
                        } else {
                            f64::INFINITY
                        };
                        (group, hours)
                    })
                    .collect()
            }
            Reading::Ratio { window_secs, .. } => {
                let window_ms = window_secs.saturating_mul(1000);
                let rate = |series| store.rate(series, window_ms, at);
                let numerators = sum_by_group(first, &rate);
                let second = self.matchers.get(1).map_or(&[][..], Vec::as_slice);
                let denominators = sum_by_group(second, &rate);
                denominators
                    .into_iter()
                    .filter(|(_, denominator)| *denominator > 0.0)
                    .map(|(group, denominator)| {
                        let numerator = numerators.get(&group).copied().unwrap_or(0.0);
                        (group, numerator / denominator)
                    })
                    .collect()
            }
        }
    }

    /// The readings of an observation right after new points were stored: [`Self::read`],
    /// or for a `Mean` reading the new increases' mean per group (which it consumes).
    pub fn observe(&mut self, at: Timestamp, store: &SeriesStore) -> BTreeMap<String, f64> {
        match &mut self.counters {
            Some(counters) => {
                // Per group, the new increases of the sum and of the count.
                let mut sums: BTreeMap<String, [f64; 2]> = BTreeMap::new();
                for increment in counters.collect(store, at, self.group_by.as_deref()) {
                    if let Some(slot) = sums
                        .entry(increment.group)
                        .or_default()
                        .get_mut(increment.counter)
                    {
                        *slot += increment.amount;
                    }
                }
                sums.into_iter()
                    .filter(|(_, [_, count])| *count > 0.0)
                    .map(|(group, [sum, count])| (group, sum / count))
                    .collect()
            }
            None => self.read(at, store),
        }
    }
}
