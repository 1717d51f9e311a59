//! The proportion-drop detector: a share of good events (eval cases passed, cache lookups
//! that hit) that fell suddenly and significantly below its own baseline.
//!
//! It is built for small samples. An eval suite of twenty cases that passed 19 of 20 for
//! weeks and now passes 12 has clearly regressed; one that passes 17 may be noise. A fixed
//! threshold cannot tell the two apart, a burn rate needs far more events; a binomial test
//! can. Per group:
//!
//! - The detector adds up the new increases of a good-events and an all-events counter
//!   (`good`, `total`; or good and bad events, such as cache hits and misses), keeping the last `window_secs` of them as the **recent** sample.
//! - Increments older than the window fold into the **baseline**: exponentially decayed
//!   sums of good and all events with a half-life of `baseline_half_life_secs`. The baseline
//!   share is `(good + 1) / (all + 2)` (Laplace's rule, so that a perfect record does not
//!   make one failure infinitely surprising). While a finding is open the baseline is frozen:
//!   the bad period never becomes the new normal.
//! - It **fires** when the recent sample has at least `min_cases` events, the baseline at
//!   least `min_baseline_cases`, the recent share is at least `min_drop` below the baseline
//!   share, and the chance of so few good events under the baseline share (the binomial
//!   lower tail) is at most `alert_probability`.
//! - It **clears** when a recent sample of at least `min_cases` events has a share no more
//!   than `clear_drop` below the baseline (hysteresis: `clear_drop < min_drop`).
//! - A group with no new events is not evaluated: silence is not a recovery.
//!
//! With a `drift` block it also catches slow slides that the baseline would follow: a CUSUM
//! against a reference frozen at a known-good period ([`drift`]). One finding per group is
//! open at a time, raised by whichever test fires first (its evidence's `drift` says which);
//! it clears when both tests would let it: the recent share back within `clear_drop` of the
//! baseline and within the drift's `clear_drop` of the reference.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

use super::groups::{Groups, fingerprint};
use super::increments::CounterPair;
use super::{Evidence, Finding, FindingCleared, Severity, Subject, Transition};
use crate::numeric::half_pow;
use crate::signal::float_repr;
use crate::store::{Selector, SeriesStore};
use crate::time::Timestamp;
use drift::DriftState;
pub use drift::{DriftConfig, DriftEvidence};

/// At most this many recent times are kept per group (one entry per scrape or push time).
const MAX_RECENT: usize = 4096;

/// Configuration of one proportion-drop detector (validated by the binary's config loader).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProportionDropConfig {
    /// The detector's name, unique in a config.
    pub name: String,
    /// The source whose observations it reads.
    pub source: String,
    /// The counter of good events, as a selector (`vigil_eval_cases_total{outcome="passed"}`).
    pub good: Selector,
    /// The counter of all events, as a selector (`vigil_eval_cases_total`), or, with
    /// `total_is_bad`, of the bad events only (`litellm_cache_misses_metric_total`).
    pub total: Selector,
    /// Whether `total` counts only the bad events, so that all events are good plus bad.
    #[serde(default)]
    pub total_is_bad: bool,
    /// What the share is, for people: `eval pass rate`.
    pub describe: String,
    /// The label to group by (suite, prompt, model); `None` for one group.
    pub group_by: Option<String>,
    /// The recent sample's window, in seconds.
    pub window_secs: i64,
    /// The baseline's half-life, in seconds.
    pub baseline_half_life_secs: i64,
    /// The fewest events in the recent window for a decision.
    pub min_cases: u32,
    /// The fewest (decayed) events in the baseline for a decision.
    pub min_baseline_cases: u32,
    /// The smallest drop of the share (absolute, 0 to 1) that may fire.
    #[serde(with = "float_repr")]
    pub min_drop: f64,
    /// The binomial lower-tail probability at or under which it fires.
    #[serde(with = "float_repr")]
    pub alert_probability: f64,
    /// It clears once the recent share is at most this far below the baseline.
    #[serde(with = "float_repr")]
    pub clear_drop: f64,
    /// The severity of its findings.
    pub severity: Severity,
    /// At most this many groups are tracked; more are ignored.
    pub max_groups: usize,
    /// The drift test against a frozen reference; `None` (sessions before it): sudden drops
    /// only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift: Option<DriftConfig>,
}

/// The numbers that made a proportion-drop detector fire.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProportionEvidence {
    /// What the share is, for people.
    pub describe: String,
    /// The good-events selector.
    pub good: String,
    /// The all-events selector.
    pub total: String,
    /// The recent window, in seconds.
    pub window_secs: i64,
    /// Good events in the recent window.
    #[serde(with = "float_repr")]
    pub recent_good: f64,
    /// All events in the recent window.
    #[serde(with = "float_repr")]
    pub recent_total: f64,
    /// Good events in the (decayed) baseline.
    #[serde(with = "float_repr")]
    pub baseline_good: f64,
    /// All events in the (decayed) baseline.
    #[serde(with = "float_repr")]
    pub baseline_total: f64,
    /// The baseline share, `(good + 1) / (all + 2)`.
    #[serde(with = "float_repr")]
    pub baseline_share: f64,
    /// The chance of at most `recent_good` good events out of `recent_total` under the
    /// baseline share.
    #[serde(with = "float_repr")]
    pub p_value: f64,
    /// The drop that may fire.
    #[serde(with = "float_repr")]
    pub min_drop: f64,
    /// The probability that fires.
    #[serde(with = "float_repr")]
    pub alert_probability: f64,
    /// The drift test's numbers, when the detector has one and its reference is known.
    /// (Boxed: findings travel in every command and record, most without it.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift: Option<Box<DriftEvidence>>,
}

impl ProportionEvidence {
    /// The recent share, 0 without events.
    #[must_use]
    pub fn recent_share(&self) -> f64 {
        if self.recent_total > 0.0 {
            self.recent_good / self.recent_total
        } else {
            0.0
        }
    }
}

#[derive(Clone, Debug)]
struct GroupState {
    subject: Subject,
    /// (time in ms, good, all), oldest first.
    recent: VecDeque<(i64, f64, f64)>,
    baseline_good: f64,
    baseline_total: f64,
    /// The time the baseline's sums refer to.
    baseline_at_ms: Option<i64>,
    firing: Option<Timestamp>,
    /// The drift test, when configured.
    drift: Option<DriftState>,
}

impl GroupState {
    /// Folds increments older than the window into the baseline (or, while firing, drops
    /// them: the bad period must not become the norm).
    fn age(&mut self, at_ms: i64, window_ms: i64, half_life_ms: i64) {
        while let Some(&(point_ms, good, total)) = self.recent.front() {
            if point_ms > at_ms - window_ms && self.recent.len() <= MAX_RECENT {
                break;
            }
            self.recent.pop_front();
            if self.firing.is_some() {
                continue;
            }
            let decay = match self.baseline_at_ms {
                Some(then) if point_ms > then => {
                    half_pow((point_ms - then) as f64 / half_life_ms.max(1) as f64)
                }
                _ => 1.0,
            };
            self.baseline_good = self.baseline_good * decay + good;
            self.baseline_total = self.baseline_total * decay + total;
            self.baseline_at_ms = Some(self.baseline_at_ms.map_or(point_ms, |t| t.max(point_ms)));
        }
    }

    fn recent_sums(&self) -> (f64, f64) {
        self.recent
            .iter()
            .fold((0.0, 0.0), |(good, total), &(_, g, t)| {
                (good + g, total + t)
            })
    }
}

/// A proportion-drop detector and the state of all its groups.
#[derive(Clone, Debug)]
pub struct ProportionDropDetector {
    config: ProportionDropConfig,
    /// The good-events and all-events counters (0 and 1).
    counters: CounterPair,
    groups: Groups<GroupState>,
}

impl ProportionDropDetector {
    /// A detector with no history.
    #[must_use]
    pub fn new(config: ProportionDropConfig) -> Self {
        let counters = CounterPair::new(&config.source, &config.good, &config.total, i64::MAX);
        ProportionDropDetector {
            groups: Groups::new(config.max_groups),
            config,
            counters,
        }
    }

    /// Its configuration.
    #[must_use]
    pub fn config(&self) -> &ProportionDropConfig {
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

    /// Whether the group's finding is open.
    #[must_use]
    pub fn is_firing(&self, group_value: &str) -> bool {
        self.groups
            .get(group_value)
            .is_some_and(|state| state.firing.is_some())
    }

    /// Observes the source right after new points were stored.
    pub fn observe(&mut self, at: Timestamp, store: &SeriesStore) -> Vec<Transition> {
        let increments = self
            .counters
            .collect(store, at, self.config.group_by.as_deref());
        // The new good and all events of each group that received any.
        let mut touched: BTreeMap<String, (f64, f64)> = BTreeMap::new();
        for increment in increments {
            let group_by = self.config.group_by.as_deref();
            let Some(state) = self.groups.admit(&increment.group, || GroupState {
                subject: Subject::group(group_by, &increment.group),
                recent: VecDeque::new(),
                baseline_good: 0.0,
                baseline_total: 0.0,
                baseline_at_ms: None,
                firing: None,
                drift: self.config.drift.as_ref().map(DriftState::new),
            }) else {
                continue;
            };
            let (good, total) = match (increment.counter, self.config.total_is_bad) {
                (0, false) => (increment.amount, 0.0),
                (0, true) => (increment.amount, increment.amount),
                _ => (0.0, increment.amount),
            };
            // One entry per time (a scrape's series share it), in time order.
            let at_ms = increment.at.0;
            match state
                .recent
                .iter()
                .rposition(|&(point_ms, _, _)| point_ms <= at_ms)
            {
                Some(idx) if state.recent.get(idx).is_some_and(|entry| entry.0 == at_ms) => {
                    if let Some(entry) = state.recent.get_mut(idx) {
                        entry.1 += good;
                        entry.2 += total;
                    }
                }
                position => {
                    let position = position.map_or(0, |idx| idx + 1);
                    state.recent.insert(position, (at_ms, good, total));
                }
            }
            let sums = touched.entry(increment.group).or_insert((0.0, 0.0));
            sums.0 += good;
            sums.1 += total;
        }
        let mut transitions = Vec::new();
        for (group_value, new_cases) in touched {
            let fingerprint = self.fingerprint(&group_value);
            if let Some(state) = self.groups.get_mut(&group_value)
                && let Some(transition) = evaluate(&self.config, state, fingerprint, at, new_cases)
            {
                transitions.push(transition);
            }
        }
        transitions
    }
}

/// Steps one group that received new events (`new_cases`: good and all).
fn evaluate(
    config: &ProportionDropConfig,
    state: &mut GroupState,
    fingerprint: String,
    at: Timestamp,
    new_cases: (f64, f64),
) -> Option<Transition> {
    if let (Some(drift_config), Some(drift)) = (&config.drift, &mut state.drift) {
        let (good, total) = new_cases;
        drift.add(drift_config, at.0, good, total, state.firing.is_none());
    }
    state.age(
        at.0,
        config.window_secs.saturating_mul(1000),
        config.baseline_half_life_secs.saturating_mul(1000),
    );
    let (recent_good, recent_total) = state.recent_sums();
    let enough_recent = recent_total >= f64::from(config.min_cases.max(1));
    // Without a drift test, a sample too small decides nothing, as before it existed.
    let drift_alarm = state.drift.as_ref().is_some_and(DriftState::alarm);
    if !(enough_recent || (state.firing.is_none() && drift_alarm)) {
        return None;
    }
    let baseline_share = (state.baseline_good + 1.0) / (state.baseline_total + 2.0);
    let recent_share = if enough_recent {
        recent_good / recent_total
    } else {
        0.0
    };
    let drop = baseline_share - recent_share;
    match state.firing {
        None => {
            let may_drop = enough_recent
                && state.baseline_total >= f64::from(config.min_baseline_cases)
                && drop >= config.min_drop;
            let p_value = if may_drop || drift_alarm {
                binomial_lower_tail(recent_good, recent_total, baseline_share)
            } else {
                return None;
            };
            // Not over the level (as before the drift test, even for a NaN).
            let dropped = may_drop
                && p_value.partial_cmp(&config.alert_probability)
                    != Some(std::cmp::Ordering::Greater);
            if !dropped && !drift_alarm {
                return None;
            }
            let drift = match (&config.drift, &state.drift) {
                (Some(drift_config), Some(drift)) => {
                    drift.evidence(drift_config, !dropped).map(Box::new)
                }
                _ => None,
            };
            state.firing = Some(at);
            Some(Transition::Fired(Box::new(Finding {
                fingerprint,
                detector: config.name.clone(),
                source: config.source.clone(),
                subject: state.subject.clone(),
                severity: config.severity,
                raised_at: at,
                evidence: Evidence::ProportionDrop(ProportionEvidence {
                    describe: config.describe.clone(),
                    good: config.good.to_string(),
                    total: config.total.to_string(),
                    window_secs: config.window_secs,
                    recent_good,
                    recent_total,
                    baseline_good: state.baseline_good,
                    baseline_total: state.baseline_total,
                    baseline_share,
                    p_value,
                    min_drop: config.min_drop,
                    alert_probability: config.alert_probability,
                    drift,
                }),
            })))
        }
        Some(raised_at)
            if drop <= config.clear_drop
                && match (&config.drift, &state.drift) {
                    (Some(drift_config), Some(drift)) => drift.clears(drift_config, recent_share),
                    _ => true,
                } =>
        {
            state.firing = None;
            if let Some(drift) = &mut state.drift {
                drift.reset();
            }
            // The recovered sample is the new normal's first evidence.
            Some(Transition::Cleared(FindingCleared {
                fingerprint,
                detector: config.name.clone(),
                raised_at,
                cleared_at: at,
                rate_per_sec: recent_good / recent_total,
            }))
        }
        Some(_) => None,
    }
}

/// The largest number of terms [`binomial_lower_tail`] sums (each side of the mode).
const MAX_TERMS: u64 = 1_000_000;

/// `P(X <= good)` for `X ~ Binomial(round(total), share)`: how likely so few good events are
/// when each is good with probability `share`. Deterministic (basic operations only): the
/// terms are summed relative to the mode, outward until they no longer matter.
#[must_use]
pub fn binomial_lower_tail(good: f64, total: f64, share: f64) -> f64 {
    if total.is_nan() || total < 1.0 || !good.is_finite() {
        return 1.0;
    }
    let n = total.round().min(1e12) as u64;
    let k = good.round().max(0.0).min(n as f64) as u64;
    if k >= n || share <= 0.0 {
        return 1.0;
    }
    if share >= 1.0 {
        return 0.0;
    }
    let p = share;
    let q = 1.0 - share;
    let mode = (((n + 1) as f64) * p).floor().min(n as f64) as u64;
    let mut all = 1.0_f64;
    let mut at_most_k = if mode <= k { 1.0 } else { 0.0 };
    // Steps outward from the mode while the terms still matter; `next(i)` is the next index
    // and the ratio of its term to `i`'s, or `None` past the end.
    let mut walk = |next: &dyn Fn(u64) -> Option<(u64, f64)>| {
        let (mut i, mut term) = (mode, 1.0_f64);
        for _ in 0..MAX_TERMS {
            let Some((j, ratio)) = next(i) else {
                break;
            };
            term *= ratio;
            i = j;
            all += term;
            if i <= k {
                at_most_k += term;
            }
            if term < all * 1e-40 {
                break;
            }
        }
    };
    // Down: t(i-1) = t(i) * i q / ((n - i + 1) p).
    walk(&|i| (i > 0).then(|| (i - 1, (i as f64) * q / (((n - i + 1) as f64) * p))));
    // Up: t(i+1) = t(i) * (n - i) p / ((i + 1) q).
    walk(&|i| (i < n).then(|| (i + 1, ((n - i) as f64) * p / (((i + 1) as f64) * q))));
    (at_most_k / all).clamp(0.0, 1.0)
}

pub mod drift;

#[cfg(test)]
mod tests;
