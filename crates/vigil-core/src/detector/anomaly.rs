//! The anomaly detector: a reading per group far outside its own usual range, for the signals
//! where a fixed threshold would be a guess (latency, tokens per request, error ratios,
//! retrieval latency, queue depth).
//!
//! It is the adaptive detector scored on NAB ([`super::adaptive`]) over any [`Reading`],
//! per group, with the bookkeeping the engine needs:
//!
//! - **Per group**, at most `max_groups` (more are refused and counted), each with its own
//!   [`AdaptiveDetector`]: baselines of the value and its change, an optional daily memory of
//!   surprise per slot of the day, and the likelihood of the latest surprises. Each
//!   observation of the source feeds every group that has a reading, in its `direction`.
//! - **Fires** when the adaptive detector alerts (the short mean of the surprises is
//!   improbable under their long history, at `alert_probability`, after the warm-up) and the
//!   reading is at least `min_change` away from the value the baseline expected: a
//!   statistically unusual wiggle of two milliseconds is not worth a page.
//! - **Clears** with hysteresis: the finding fixes a clear level between the expected value
//!   and the reading that fired, `clear_fraction` of the way from the first to the second.
//!   It clears after `clear_after_samples` readings in a row back on the usual side of it,
//!   or once the baseline itself has moved past it (the new level has become the usual one:
//!   a level that stays for the baseline's half-life is no longer an anomaly, and saying so
//!   beats a finding that never ends).
//! - **Staleness:** a group with no reading in an observation (its series are stale or gone)
//!   is not fed: nothing is learned, nothing fires, nothing clears. Silence is not a recovery.
//! - **Flapping:** after a finding is raised the group holds for the method's
//!   `refractory_samples` readings, so a reading that swings back and forth fires at most once
//!   per refractory period; the engine's flap detection sees the rest. The hold counts from
//!   raised findings only: an improbable reading kept quiet by `min_change` does not mute
//!   the group.
//! - **Time:** observations come in the engine's time order. A group's reading at the same
//!   time as its previous one is fed like any other (exports repeat timestamps); the
//!   adaptive detector's treatment of a time earlier than the previous is in its docs.
//!
//! The state per group is the adaptive detector's (a few numbers, the seasonal memory of at
//! most 4096 slots and the latest `recent_samples` surprises) plus twelve recent readings
//! kept as evidence.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::adaptive::{AdaptiveConfig, AdaptiveDetector, Direction};
use super::groups::{Groups, fingerprint};
use super::reading::{Reader, Reading};
use super::{Evidence, Finding, FindingCleared, Point, Severity, Subject, Transition};
use crate::signal::float_repr;
use crate::store::SeriesStore;
use crate::time::Timestamp;

/// How many recent readings each group keeps as evidence.
const RECENT_POINTS: usize = 12;

/// Configuration of one anomaly detector (validated by the binary's config loader).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AnomalyConfig {
    /// The detector's name, unique in a config.
    pub name: String,
    /// The source whose observations it reads.
    pub source: String,
    /// What it reads, per group.
    pub reading: Reading,
    /// What the reading is, for people: `p95 latency (s)`.
    pub describe: String,
    /// The label to group by; `None` for one group.
    pub group_by: Option<String>,
    /// The method's settings, recorded whole so that a session replays with the settings it
    /// ran with: which deviations count (`direction`), the daily memory (`season_secs`), the
    /// alert probability, warm-up and refractory period, the baselines' half-lives.
    pub method: AdaptiveConfig,
    /// The smallest distance, in the reading's units, between the reading and the expected
    /// value for a finding to be raised (0: any).
    #[serde(with = "float_repr")]
    pub min_change: f64,
    /// Where the clear level lies, from the expected value (0) to the reading that fired (1).
    #[serde(with = "float_repr")]
    pub clear_fraction: f64,
    /// Consecutive readings on the usual side of the clear level before it clears.
    pub clear_after_samples: u32,
    /// The severity of its findings.
    pub severity: Severity,
    /// At most this many groups are tracked; more are ignored.
    pub max_groups: usize,
}

/// The numbers that made an anomaly detector fire.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AnomalyEvidence {
    /// What was read, for people.
    pub describe: String,
    /// The reading.
    pub reading: Reading,
    /// Which deviations count.
    pub direction: Direction,
    /// The reading when it fired.
    #[serde(with = "float_repr")]
    pub value: f64,
    /// The value the baseline expected.
    #[serde(with = "float_repr")]
    pub expected: f64,
    /// The reading's surprise, in standard deviations of the baseline (after the daily
    /// memory's discount).
    #[serde(with = "float_repr")]
    pub surprise: f64,
    /// The chance of so surprising a run of recent readings under their usual behaviour.
    #[serde(with = "float_repr")]
    pub p_value: f64,
    /// The probability that fires.
    #[serde(with = "float_repr")]
    pub alert_probability: f64,
    /// The level back past which it clears.
    #[serde(with = "float_repr")]
    pub clear: f64,
    /// Readings of the group the baselines had learned from.
    pub n_samples: u64,
    /// The most recent readings, oldest first, including the one that fired.
    pub recent: Vec<Point>,
}

impl AnomalyEvidence {
    /// Whether the reading that fired was above the expected value.
    #[must_use]
    pub fn is_high(&self) -> bool {
        self.value >= self.expected
    }
}

/// An open finding of one group.
#[derive(Clone, Copy, Debug)]
struct Firing {
    raised_at: Timestamp,
    clear: f64,
    /// Whether the reading that fired was above the expected value.
    high: bool,
}

#[derive(Clone, Debug)]
struct GroupState {
    subject: Subject,
    detector: AdaptiveDetector,
    n_samples: u64,
    n_good: u32,
    firing: Option<Firing>,
    /// The reading (by its count) that raised the latest finding.
    last_raised: Option<u64>,
    recent: VecDeque<Point>,
}

/// An anomaly detector and the state of all its groups.
#[derive(Clone, Debug)]
pub struct AnomalyDetector {
    config: AnomalyConfig,
    reader: Reader,
    groups: Groups<GroupState>,
}

/// What one group made of its latest reading, for views and backtests.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AnomalyView {
    /// The latest reading.
    pub value: f64,
    /// The value the baseline expected before it.
    pub expected: f64,
    /// How anomalous the latest readings are, `1 - p`, in `[0, 1]`.
    pub score: f64,
    /// Whether its finding is open.
    pub firing: bool,
}

impl AnomalyDetector {
    /// A detector with no history. The config should have been validated.
    #[must_use]
    pub fn new(config: AnomalyConfig) -> Self {
        let reader = Reader::new(&config.source, &config.reading, config.group_by.as_deref());
        AnomalyDetector {
            groups: Groups::new(config.max_groups),
            reader,
            config,
        }
    }

    /// Its configuration.
    #[must_use]
    pub fn config(&self) -> &AnomalyConfig {
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

    /// The current reading of every group that has one at `at`, without learning it.
    #[must_use]
    pub fn read(
        &self,
        at: Timestamp,
        store: &SeriesStore,
    ) -> std::collections::BTreeMap<String, f64> {
        self.reader.read(at, store)
    }

    /// Observes the source right after new points were stored: one step per group with a
    /// reading.
    pub fn observe(&mut self, at: Timestamp, store: &SeriesStore) -> Vec<Transition> {
        self.observe_each(at, store, |_, _| {})
    }

    /// [`Self::observe`], with what each group made of its reading (for backtests).
    pub fn observe_with_views(
        &mut self,
        at: Timestamp,
        store: &SeriesStore,
    ) -> (Vec<Transition>, Vec<(String, AnomalyView)>) {
        let mut views = Vec::new();
        let transitions = self.observe_each(at, store, |group, view| {
            views.push((group.to_owned(), view));
        });
        (transitions, views)
    }

    /// One step per group with a reading, each group's view handed to `on_view`.
    fn observe_each(
        &mut self,
        at: Timestamp,
        store: &SeriesStore,
        mut on_view: impl FnMut(&str, AnomalyView),
    ) -> Vec<Transition> {
        let readings = self.reader.observe(at, store);
        let mut transitions = Vec::new();
        for (group_value, value) in readings {
            let fingerprint = self.fingerprint(&group_value);
            let group_by = self.config.group_by.as_deref();
            let method = &self.config.method;
            let Some(state) = self.groups.admit(&group_value, || GroupState {
                subject: Subject::group(group_by, &group_value),
                // The group holds after a raised finding itself (see the module docs).
                detector: AdaptiveDetector::new(AdaptiveConfig {
                    refractory_samples: 0,
                    ..method.clone()
                }),
                last_raised: None,
                n_samples: 0,
                n_good: 0,
                firing: None,
                recent: VecDeque::with_capacity(RECENT_POINTS),
            }) else {
                continue;
            };
            let (transition, view) = step(&self.config, state, fingerprint, at, value);
            transitions.extend(transition);
            on_view(&group_value, view);
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
    config: &AnomalyConfig,
    state: &mut GroupState,
    fingerprint: String,
    at: Timestamp,
    value: f64,
) -> (Option<Transition>, AnomalyView) {
    if state.recent.len() == RECENT_POINTS {
        state.recent.pop_front();
    }
    state.recent.push_back(Point { at, value });
    let step = state.detector.step(at, value);
    state.n_samples = state.n_samples.saturating_add(1);
    let view = |firing: bool| AnomalyView {
        value,
        expected: step.expected,
        score: step.score,
        firing,
    };
    match state.firing {
        None => {
            let far_enough = (value - step.expected).abs() >= config.min_change;
            let rested = state.last_raised.is_none_or(|last| {
                state.n_samples.saturating_sub(last) > u64::from(config.method.refractory_samples)
            });
            if !(step.alert && far_enough && rested) {
                return (None, view(false));
            }
            state.last_raised = Some(state.n_samples);
            let clear = step.expected + config.clear_fraction * (value - step.expected);
            state.firing = Some(Firing {
                raised_at: at,
                clear,
                high: value >= step.expected,
            });
            state.n_good = 0;
            let finding = Finding {
                fingerprint,
                detector: config.name.clone(),
                source: config.source.clone(),
                subject: state.subject.clone(),
                severity: config.severity,
                raised_at: at,
                evidence: Evidence::Anomaly(Box::new(AnomalyEvidence {
                    describe: config.describe.clone(),
                    reading: config.reading.clone(),
                    direction: config.method.direction,
                    value,
                    expected: step.expected,
                    surprise: step.surprise,
                    p_value: (1.0 - step.score).clamp(0.0, 1.0),
                    alert_probability: config.method.alert_probability,
                    clear,
                    n_samples: state.n_samples,
                    recent: state.recent.iter().copied().collect(),
                })),
            };
            (Some(Transition::Fired(Box::new(finding))), view(true))
        }
        Some(firing) => {
            let usual = |level: f64| {
                if firing.high {
                    level < firing.clear
                } else {
                    level > firing.clear
                }
            };
            state.n_good = if usual(value) {
                state.n_good.saturating_add(1)
            } else {
                0
            };
            // The baseline this reading was compared with has itself moved past the level.
            let baseline_moved = !usual(step.expected);
            if state.n_good >= config.clear_after_samples.max(1) || baseline_moved {
                state.firing = None;
                state.n_good = 0;
                let cleared = FindingCleared {
                    fingerprint,
                    detector: config.name.clone(),
                    raised_at: firing.raised_at,
                    cleared_at: at,
                    rate_per_sec: value,
                };
                return (Some(Transition::Cleared(cleared)), view(false));
            }
            (None, view(true))
        }
    }
}

#[cfg(test)]
mod tests;
