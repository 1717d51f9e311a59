//! Multiwindow, multi-burn-rate SLO alerting, as the Google SRE Workbook ("Alerting on
//! SLOs", recommendation 6) describes it, over two counters: bad events and all events.
//!
//! The burn rate over a window is the window's error ratio divided by the error budget
//! `1 - objective`: at burn rate 1 the budget lasts exactly the objective's period. A rule
//! fires when both its long and its short window burn at least its rate; the long window
//! makes the alert significant, the short one makes it reset soon after the problem ends.
//! For a 30-day objective the Workbook's rules are: page on 1 h and 5 m above 14.4, page on
//! 6 h and 30 m above 6, ticket on 3 d and 6 h above 1. Windows scale with the period.
//!
//! The detector keeps its own per-group buckets of (bad, all) increments, long enough for its
//! longest window, so it does not depend on the series store's retention. Each new point of
//! a counter contributes its increase (a drop is a restart) once, to the bucket of its time.
//! A group with no traffic in a window has no burn rate there: no traffic burns no budget.
//! A group whose series vanished is stale: nothing changes, it does not clear.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

use super::groups::{self, Groups};
use super::increments::CounterPair;
use super::{
    BurnRateEvidence, Evidence, Finding, FindingCleared, Severity, Subject, Transition, WindowBurn,
};
use crate::signal::float_repr;
use crate::store::{Selector, SeriesStore};
use crate::time::Timestamp;

/// The Workbook's period for its rules: 30 days.
pub const WORKBOOK_PERIOD_SECS: i64 = 30 * 86_400;

/// One alerting rule: a long and a short window and the burn rate both must reach.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BurnRule {
    /// What firing means.
    pub severity: Severity,
    /// The long window, in seconds.
    pub long_secs: i64,
    /// The short window, in seconds.
    pub short_secs: i64,
    /// The burn rate both windows must reach.
    #[serde(with = "float_repr")]
    pub burn_rate: f64,
}

impl BurnRule {
    /// The Workbook's three rules for a 30-day period, scaled to `period_secs`.
    #[must_use]
    pub fn workbook(period_secs: i64) -> Vec<BurnRule> {
        let scale = |secs: i64| {
            // Integer arithmetic: the same windows on every machine.
            i64::try_from(
                i128::from(secs) * i128::from(period_secs) / i128::from(WORKBOOK_PERIOD_SECS),
            )
            .unwrap_or(i64::MAX)
            .max(1)
        };
        vec![
            BurnRule {
                severity: Severity::Page,
                long_secs: scale(3600),
                short_secs: scale(300),
                burn_rate: 14.4,
            },
            BurnRule {
                severity: Severity::Page,
                long_secs: scale(6 * 3600),
                short_secs: scale(1800),
                burn_rate: 6.0,
            },
            BurnRule {
                severity: Severity::Ticket,
                long_secs: scale(3 * 86_400),
                short_secs: scale(6 * 3600),
                burn_rate: 1.0,
            },
        ]
    }
}

/// Configuration of one burn-rate detector (validated by the binary's config loader).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BurnRateConfig {
    /// The detector's name, unique in a config.
    pub name: String,
    /// The source whose observations it reads.
    pub source: String,
    /// The counter of bad events as a selector, for example
    /// `litellm_deployment_failure_responses_total{exception_status=~"429|5.."}`.
    pub bad: Selector,
    /// The counter of all events as a selector.
    pub total: Selector,
    /// The label to group by (provider, deployment, eval suite); `None` for one group.
    pub group_by: Option<String>,
    /// The objective, for example 0.999.
    #[serde(with = "float_repr")]
    pub objective: f64,
    /// The objective's period, in seconds.
    pub period_secs: i64,
    /// The rules, most urgent first.
    pub rules: Vec<BurnRule>,
    /// The width of one bucket, in milliseconds (a tenth of the shortest window is plenty).
    pub bucket_ms: i64,
    /// At most this many groups are tracked; more are ignored.
    pub max_groups: usize,
}

impl BurnRateConfig {
    /// The longest window of any rule, in milliseconds.
    #[must_use]
    pub fn longest_window_ms(&self) -> i64 {
        self.rules
            .iter()
            .map(|rule| rule.long_secs.max(rule.short_secs))
            .max()
            .unwrap_or(0)
            .saturating_mul(1000)
    }
}

/// One bucket's sums.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Bucket {
    start_ms: i64,
    bad: f64,
    total: f64,
}

#[derive(Clone, Debug)]
struct GroupState {
    subject: Subject,
    buckets: VecDeque<Bucket>,
    /// Per severity, when its open finding was raised. Page and ticket are separate alerts,
    /// as in the Workbook: a slow burn may ticket while a fast one pages.
    firing: BTreeMap<Severity, Timestamp>,
}

impl GroupState {
    /// Adds an increment at `at_ms`; buckets older than `keep_ms` before it are dropped.
    fn add(&mut self, at_ms: i64, bad: f64, total: f64, bucket_ms: i64, keep_ms: i64) {
        let start_ms = at_ms.div_euclid(bucket_ms) * bucket_ms;
        match self
            .buckets
            .iter_mut()
            .rev()
            .find(|bucket| bucket.start_ms == start_ms)
        {
            Some(bucket) => {
                bucket.bad += bad;
                bucket.total += total;
            }
            None => {
                // Increments arrive in time order per series; a late one for an older bucket
                // still lands in order.
                let position = self
                    .buckets
                    .iter()
                    .position(|bucket| bucket.start_ms > start_ms)
                    .unwrap_or(self.buckets.len());
                self.buckets.insert(
                    position,
                    Bucket {
                        start_ms,
                        bad,
                        total,
                    },
                );
            }
        }
        let newest = self.buckets.back().map_or(at_ms, |bucket| bucket.start_ms);
        while self
            .buckets
            .front()
            .is_some_and(|bucket| bucket.start_ms + bucket_ms <= newest - keep_ms)
        {
            self.buckets.pop_front();
        }
    }

    /// The window's (bad, total) over the buckets that start in `(at - window, at]`: the
    /// window `(at - window, at]` itself, less at most one bucket at its old end.
    fn window(&self, at_ms: i64, window_ms: i64) -> (f64, f64) {
        let from_ms = at_ms - window_ms;
        self.buckets
            .iter()
            .rev()
            .take_while(|bucket| bucket.start_ms > from_ms)
            .filter(|bucket| bucket.start_ms <= at_ms)
            .fold((0.0, 0.0), |(bad, total), bucket| {
                (bad + bucket.bad, total + bucket.total)
            })
    }
}

/// What the detector knows about one group.
#[derive(Clone, Debug, PartialEq)]
pub struct BurnView {
    /// The group.
    pub subject: Subject,
    /// The burn rate of each rule's long and short window (`None`: no traffic there).
    pub burns: Vec<(Option<f64>, Option<f64>)>,
    /// The severities with an open finding.
    pub firing: Vec<Severity>,
}

/// What one group saw from a moment on ([`BurnRateDetector::group_since`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GroupSince {
    /// Whether it has an open finding now.
    pub firing: bool,
    /// The events (good and bad) it counted in buckets that end after the moment.
    pub total: f64,
}

/// How far back a counter's previous point may be for its increase to count.
const INCREASE_LOOKBACK_MS: i64 = 15 * 60 * 1000;

/// A burn-rate detector and the state of all its groups.
#[derive(Clone, Debug)]
pub struct BurnRateDetector {
    config: BurnRateConfig,
    /// The bad-events and all-events counters (0 and 1).
    counters: CounterPair,
    groups: Groups<GroupState>,
}

impl BurnRateDetector {
    /// A detector with no history.
    #[must_use]
    pub fn new(config: BurnRateConfig) -> Self {
        let counters = CounterPair::new(
            &config.source,
            &config.bad,
            &config.total,
            INCREASE_LOOKBACK_MS,
        );
        BurnRateDetector {
            groups: Groups::new(config.max_groups),
            config,
            counters,
        }
    }

    /// What `group` saw from `since` on: whether it fires now and how many events it
    /// counted since (at bucket resolution). `None` when it has never seen the group.
    #[must_use]
    pub fn group_since(&self, group: &str, since: Timestamp) -> Option<GroupSince> {
        let state = self.groups.get(group)?;
        let bucket_ms = self.config.bucket_ms.max(1);
        let total = state
            .buckets
            .iter()
            .filter(|bucket| bucket.start_ms.saturating_add(bucket_ms) > since.0)
            .map(|bucket| bucket.total)
            .sum();
        Some(GroupSince {
            firing: !state.firing.is_empty(),
            total,
        })
    }

    /// Its configuration.
    #[must_use]
    pub fn config(&self) -> &BurnRateConfig {
        &self.config
    }

    /// How many groups were refused because `max_groups` was reached.
    #[must_use]
    pub fn n_groups_refused(&self) -> u64 {
        self.groups.n_refused()
    }

    /// The fingerprint of a finding of `severity` about `group_value`.
    #[must_use]
    pub fn fingerprint(&self, group_value: &str, severity: Severity) -> String {
        fingerprint(&self.config, group_value, severity)
    }

    /// Observes the source right after new points were stored: adds every new increase of
    /// the two counters to its group, then evaluates the groups that received one.
    pub fn observe(&mut self, at: Timestamp, store: &SeriesStore) -> Vec<Transition> {
        let bucket_ms = self.config.bucket_ms.max(1);
        let keep_ms = self.config.longest_window_ms().saturating_add(bucket_ms);
        let mut touched: BTreeMap<String, ()> = BTreeMap::new();
        let increments = self
            .counters
            .collect(store, at, self.config.group_by.as_deref());
        for increment in increments {
            let group_by = self.config.group_by.as_deref();
            let Some(state) = self.groups.admit(&increment.group, || GroupState {
                subject: Subject::group(group_by, &increment.group),
                buckets: VecDeque::new(),
                firing: BTreeMap::new(),
            }) else {
                continue;
            };
            let (bad, total) = if increment.counter == 0 {
                (increment.amount, 0.0)
            } else {
                (0.0, increment.amount)
            };
            state.add(increment.at.0, bad, total, bucket_ms, keep_ms);
            touched.insert(increment.group, ());
        }
        let mut transitions = Vec::new();
        for group_value in touched.into_keys() {
            if let Some(state) = self.groups.get_mut(&group_value) {
                transitions.extend(evaluate(&self.config, state, &group_value, at));
            }
        }
        transitions
    }

    /// What the detector knows about every group, in group order.
    #[must_use]
    pub fn views(&self, at: Timestamp) -> Vec<BurnView> {
        self.groups
            .values()
            .map(|state| BurnView {
                subject: state.subject.clone(),
                burns: burns(&self.config, state, at),
                firing: state.firing.keys().copied().collect(),
            })
            .collect()
    }
}

/// The burn rate over `window_secs`, or `None` without traffic.
fn burn(
    config: &BurnRateConfig,
    state: &GroupState,
    at: Timestamp,
    window_secs: i64,
) -> Option<f64> {
    let (bad, total) = state.window(at.0, window_secs.saturating_mul(1000));
    if total <= 0.0 {
        return None;
    }
    let budget = (1.0 - config.objective).max(f64::MIN_POSITIVE);
    Some((bad / total) / budget)
}

fn burns(
    config: &BurnRateConfig,
    state: &GroupState,
    at: Timestamp,
) -> Vec<(Option<f64>, Option<f64>)> {
    config
        .rules
        .iter()
        .map(|rule| {
            (
                burn(config, state, at, rule.long_secs),
                burn(config, state, at, rule.short_secs),
            )
        })
        .collect()
}

fn fingerprint(config: &BurnRateConfig, group_value: &str, severity: Severity) -> String {
    format!(
        "{}/{}",
        groups::fingerprint(&config.name, config.group_by.as_deref(), group_value),
        severity.as_str()
    )
}

/// Steps one group: per severity, fires when one of its rules has both windows at or above
/// its burn rate, and clears when none has.
fn evaluate(
    config: &BurnRateConfig,
    state: &mut GroupState,
    group_value: &str,
    at: Timestamp,
) -> Vec<Transition> {
    let burns = burns(config, state, at);
    let holds = |severity: Severity| {
        config
            .rules
            .iter()
            .zip(&burns)
            .any(|(rule, (long, short))| {
                rule.severity == severity
                    && long.is_some_and(|burn| burn >= rule.burn_rate)
                    && short.is_some_and(|burn| burn >= rule.burn_rate)
            })
    };
    let mut severities: Vec<Severity> = config.rules.iter().map(|rule| rule.severity).collect();
    severities.sort_unstable_by(|a, b| b.cmp(a));
    severities.dedup();
    let mut transitions = Vec::new();
    for severity in severities {
        let fingerprint = fingerprint(config, group_value, severity);
        match (state.firing.get(&severity).copied(), holds(severity)) {
            (None, true) => {
                state.firing.insert(severity, at);
                let windows = config
                    .rules
                    .iter()
                    .zip(&burns)
                    .map(|(rule, (long, short))| WindowBurn {
                        severity: rule.severity,
                        long_secs: rule.long_secs,
                        short_secs: rule.short_secs,
                        threshold: rule.burn_rate,
                        long_burn: *long,
                        short_burn: *short,
                    })
                    .collect();
                transitions.push(Transition::Fired(Box::new(Finding {
                    fingerprint,
                    detector: config.name.clone(),
                    source: config.source.clone(),
                    subject: state.subject.clone(),
                    severity,
                    raised_at: at,
                    evidence: Evidence::BurnRate(BurnRateEvidence {
                        objective: config.objective,
                        period_secs: config.period_secs,
                        windows,
                    }),
                })));
            }
            (Some(raised_at), false) => {
                state.firing.remove(&severity);
                // The fastest rule's short window: the burn that ended the alert.
                let short_burn = config
                    .rules
                    .iter()
                    .zip(&burns)
                    .find(|(rule, _)| rule.severity == severity)
                    .and_then(|(_, (_, short))| *short)
                    .unwrap_or(0.0);
                transitions.push(Transition::Cleared(FindingCleared {
                    fingerprint,
                    detector: config.name.clone(),
                    raised_at,
                    cleared_at: at,
                    rate_per_sec: short_burn,
                }));
            }
            _ => {}
        }
    }
    transitions
}

#[cfg(test)]
mod tests;
