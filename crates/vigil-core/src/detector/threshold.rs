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
use super::reading::Reader;
pub use super::reading::Reading;
use super::{Evidence, Finding, FindingCleared, Point, Severity, Subject, Transition};
use crate::signal::float_repr;
use crate::store::SeriesStore;
use crate::time::Timestamp;

/// How many recent readings each group keeps as evidence.
const RECENT_POINTS: usize = 12;

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
    /// What it reads, per group.
    reader: Reader,
    groups: Groups<GroupState>,
}

impl ThresholdDetector {
    /// A detector with no history.
    #[must_use]
    pub fn new(config: ThresholdConfig) -> Self {
        let reader = Reader::new(&config.source, &config.reading, config.group_by.as_deref());
        ThresholdDetector {
            groups: Groups::new(config.max_groups),
            config,
            reader,
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

    /// The current reading of every group that has one at `at` (see [`Reader::read`]).
    #[must_use]
    pub fn read(&self, at: Timestamp, store: &SeriesStore) -> BTreeMap<String, f64> {
        self.reader.read(at, store)
    }

    /// Observes the source right after new points were stored.
    pub fn observe(&mut self, at: Timestamp, store: &SeriesStore) -> Vec<Transition> {
        let readings = self.reader.observe(at, store);
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
