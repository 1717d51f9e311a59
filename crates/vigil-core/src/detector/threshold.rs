//! The threshold detector: a reading per group against a limit, with hysteresis (separate
//! fire and clear levels), a minimum duration (consecutive observations), staleness, and the
//! evidence that raised it.
//!
//! One kind covers many of the AI-native signals: p95 or p99 latency from a histogram (end
//! to end, time to first token, retrieval) against an SLO, the rate of context-window errors,
//! a cache hit ratio that drops, an agent's iteration depth, a gateway's remaining budget or
//! a deployment's state gauge, the size of a prompt version's prompts. The reading is one of a
//! gauge's value, a counter's rate, a histogram quantile, a ratio of two rates, the hours a
//! budget lasts, or the mean size of the events counted since the last observation, per
//! group.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

use super::groups::{Groups, fingerprint};
use super::increments::CounterPair;
use super::{Evidence, Finding, FindingCleared, Point, Severity, Subject, Transition};
use crate::signal::float_repr;
use crate::store::{BucketValues, Grouping, Matcher, SOURCE_LABEL, Selector, SeriesStore};
use crate::time::Timestamp;

/// How many recent readings each group keeps as evidence.
const RECENT_POINTS: usize = 12;

/// How far back a gauge's latest point may be.
const VALUE_LOOKBACK_MS: i64 = 5 * 60 * 1000;

/// What a threshold detector reads, per group.
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

/// Which side of the limit is bad.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Bound {
    /// At or above `fire` is bad (latency, error rates, loop depth).
    Above,
    /// At or below `fire` is bad (hit rates, remaining budget).
    Below,
}

/// Configuration of one threshold detector (validated by the binary's config loader).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ThresholdConfig {
    /// The detector's name, unique in a config.
    pub name: String,
    /// The source whose observations it reads.
    pub source: String,
    /// What it reads.
    pub reading: Reading,
    /// What the reading is, for people: `p95 latency (s)`.
    pub describe: String,
    /// The label to group by; `None` for one group.
    pub group_by: Option<String>,
    /// Which side is bad.
    pub bound: Bound,
    /// The level that fires.
    #[serde(with = "float_repr")]
    pub fire: f64,
    /// The level back past which it clears (hysteresis: between it and `fire` nothing changes).
    #[serde(with = "float_repr")]
    pub clear: f64,
    /// Consecutive bad observations before it fires.
    pub fire_after_samples: u32,
    /// Consecutive good observations before it clears.
    pub clear_after_samples: u32,
    /// The severity of its findings.
    pub severity: Severity,
    /// At most this many groups are tracked; more are ignored.
    pub max_groups: usize,
}

/// The numbers that made a threshold detector fire.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ThresholdEvidence {
    /// What was read, for people.
    pub describe: String,
    /// The reading.
    pub reading: Reading,
    /// The reading when it fired.
    #[serde(with = "float_repr")]
    pub value: f64,
    /// Which side is bad.
    pub bound: Bound,
    /// The firing level.
    #[serde(with = "float_repr")]
    pub fire: f64,
    /// The clearing level.
    #[serde(with = "float_repr")]
    pub clear: f64,
    /// How many consecutive observations were bad.
    pub n_observations: u32,
    /// The most recent readings, oldest first.
    pub recent: Vec<Point>,
}

#[derive(Clone, Debug)]
struct GroupState {
    subject: Subject,
    n_bad: u32,
    n_good: u32,
    firing: Option<Timestamp>,
    recent: VecDeque<Point>,
}

/// A threshold detector and the state of all its groups.
#[derive(Clone, Debug)]
pub struct ThresholdDetector {
    config: ThresholdConfig,
    /// The reading's selectors, parsed, each with the source's matcher.
    matchers: Vec<Vec<Matcher>>,
    /// The sum and count counters of a `Mean` reading.
    counters: Option<CounterPair>,
    groups: Groups<GroupState>,
}

impl ThresholdDetector {
    /// A detector with no history.
    #[must_use]
    pub fn new(config: ThresholdConfig) -> Self {
        let matchers = config
            .reading
            .selectors()
            .into_iter()
            .map(|selector| {
                let mut matchers = selector.matchers().to_vec();
                matchers.push(Matcher::equal(SOURCE_LABEL, config.source.as_str()));
                matchers
            })
            .collect();
        let counters = match &config.reading {
            Reading::Mean { sum, count } => {
                Some(CounterPair::new(&config.source, sum, count, i64::MAX))
            }
            _ => None,
        };
        ThresholdDetector {
            groups: Groups::new(config.max_groups),
            config,
            matchers,
            counters,
        }
    }

    /// Its configuration.
    #[must_use]
    pub fn config(&self) -> &ThresholdConfig {
        &self.config
    }

    /// How many groups were refused because `max_groups` was reached.
    #[must_use]
    pub fn n_groups_refused(&self) -> u64 {
        self.groups.n_refused()
    }

    /// The fingerprint of a finding about `group_value`.
    #[must_use]
    pub fn fingerprint(&self, group_value: &str) -> String {
        fingerprint(
            &self.config.name,
            self.config.group_by.as_deref(),
            group_value,
        )
    }

    /// The current reading of every group that has one at `at`. A group whose series are
    /// all stale or gone has none; a `Mean` reading is taken only by [`Self::observe`] (it
    /// consumes the new increases), so here it has none.
    #[must_use]
    pub fn read(&self, at: Timestamp, store: &SeriesStore) -> BTreeMap<String, f64> {
        let group_of = |series| match &self.config.group_by {
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
        match &self.config.reading {
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
                let grouping = Grouping::By(self.config.group_by.iter().cloned().collect());
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
                            .config
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

    /// Observes the source right after new points were stored.
    pub fn observe(&mut self, at: Timestamp, store: &SeriesStore) -> Vec<Transition> {
        let readings = match &mut self.counters {
            Some(counters) => {
                // Per group, the new increases of the sum and of the count.
                let mut sums: BTreeMap<String, [f64; 2]> = BTreeMap::new();
                for increment in counters.collect(store, at, self.config.group_by.as_deref()) {
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
        };
        let mut transitions = Vec::new();
        for (group_value, value) in readings {
            let fingerprint = self.fingerprint(&group_value);
            let group_by = self.config.group_by.as_deref();
            let Some(state) = self.groups.admit(&group_value, || GroupState {
                subject: Subject::group(group_by, &group_value),
                n_bad: 0,
                n_good: 0,
                firing: None,
                recent: VecDeque::with_capacity(RECENT_POINTS),
            }) else {
                continue;
            };
            if let Some(transition) = step(&self.config, state, fingerprint, at, value) {
                transitions.push(transition);
            }
        }
        transitions
    }

    /// Whether the group's finding is open.
    #[must_use]
    pub fn is_firing(&self, group_value: &str) -> bool {
        self.groups
            .get(group_value)
            .is_some_and(|state| state.firing.is_some())
    }
}

/// Advances one group by one reading.
fn step(
    config: &ThresholdConfig,
    state: &mut GroupState,
    fingerprint: String,
    at: Timestamp,
    value: f64,
) -> Option<Transition> {
    if state.recent.len() == RECENT_POINTS {
        state.recent.pop_front();
    }
    state.recent.push_back(Point { at, value });
    let (bad, good) = match config.bound {
        Bound::Above => (value >= config.fire, value < config.clear),
        Bound::Below => (value <= config.fire, value > config.clear),
    };
    state.n_bad = if bad {
        state.n_bad.saturating_add(1)
    } else {
        0
    };
    state.n_good = if good {
        state.n_good.saturating_add(1)
    } else {
        0
    };
    match state.firing {
        None if state.n_bad >= config.fire_after_samples.max(1) => {
            state.firing = Some(at);
            Some(Transition::Fired(Box::new(Finding {
                fingerprint,
                detector: config.name.clone(),
                source: config.source.clone(),
                subject: state.subject.clone(),
                severity: config.severity,
                raised_at: at,
                evidence: Evidence::Threshold(ThresholdEvidence {
                    describe: config.describe.clone(),
                    reading: config.reading.clone(),
                    value,
                    bound: config.bound,
                    fire: config.fire,
                    clear: config.clear,
                    n_observations: state.n_bad,
                    recent: state.recent.iter().copied().collect(),
                }),
            })))
        }
        Some(raised_at) if state.n_good >= config.clear_after_samples.max(1) => {
            state.firing = None;
            Some(Transition::Cleared(FindingCleared {
                fingerprint,
                detector: config.name.clone(),
                raised_at,
                cleared_at: at,
                rate_per_sec: value,
            }))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests;
