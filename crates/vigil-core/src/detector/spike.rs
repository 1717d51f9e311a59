//! The adaptive-baseline spike detector: a group's rate far above its own recent normal.
//!
//! Per group (for example per API key) it keeps an exponentially weighted mean and variance
//! of the rate, with a half-life in seconds so irregular scrape intervals weigh correctly.
//! A rate fires when it is both many spreads above the baseline and several times it, above
//! an absolute floor, for a number of consecutive observations. While a spike is pending or
//! firing the baseline is frozen, so a runaway does not teach the detector that it is normal.
//! It clears (hysteresis) only when the rate is back under a lower bar for several
//! observations. A group missing from a scrape is stale: nothing changes, it does not clear.
//!
//! **Daily seasonality.** With `season_secs` set (a day), each group also remembers its usual
//! rate per hour of the period ([`SEASON_SLOTS`] slots). At the end of each period a slot's
//! average over that period (when it had [`SEASON_MIN_OBSERVATIONS`]) enters its memory: the
//! first one as it is, later ones exponentially weighted with a half-life of
//! [`SEASON_HALF_LIFE_PERIODS`] periods. A rate is judged against the larger of the short
//! baseline and the memories of the current slot and its two neighbours, so a nightly batch
//! or a morning peak that happens every day stops firing after its first day, while the same
//! jump at an unusual hour still fires. Only earlier periods count: today's runaway never
//! raises today's bar. The memories learn from every observation, firing or not (what
//! happens every day at this hour is the point), so a one-off runaway raises the bar of its
//! hour on the following days, by the hour's average excess at first and by less than a
//! third of it once the memory has history; the trade-off is documented in the README.
//! That is `season_memory: average`, what configs recorded before the peak memory replay
//! with.
//!
//! **Peak memory** (`season_memory: peak`, the shipped setting). A slot remembers its
//! busiest quarter hour (the highest mean over a quarter of the hour holding at least half
//! its share of the hour's observations), not its average, so a 20-minute batch is
//! remembered at its own level rather than diluted by the quiet rest of its hour, while a
//! single big request is averaged over a quarter hour. A slot is folded into its memory as
//! soon as its hour is over (not at its next observation a day later), and a memory is the
//! larger of its exponentially weighted history and the latest hour: a rise counts in full
//! the next day, a fall fades with the half-life (a batch that skips a night does not page
//! when it comes back). A memory folded less than half a period ago is not used (the hour
//! before now is today's, not an earlier day's), so only earlier days count, as before, and
//! the hour after midnight of today counts tonight at 23:xx. Once a slot or a neighbour has
//! a memory, a rate is judged against that memory alone, not against the larger of it and
//! the short baseline: a runaway that climbs over an hour or two drags the short baseline
//! along, but not yesterday. Trade-offs: a one-off runaway hides a runaway of up to
//! `fire_ratio` times its level at the same hour (plus or minus one) the next day; a day much
//! busier than the day before at the same hour (a launch, a Monday after a quiet Sunday)
//! fires, as a ticket below `page_ratio`; the ratio is taken to a busiest quarter hour, a bit
//! above the hour's mean, so a loop pages at about `page_ratio` times that level.
//!
//! **Run evidence** (`run_evidence: true`, shipped). Without it, each of
//! `fire_after_samples` consecutive observations must pass every test, the spread one
//! included (`fire_z` spreads up). Token rates of keys that send few large requests swing
//! two to three times their mean from one 15 s scrape to the next, so a steady 5x loop never
//! reached 6 spreads and was never found. With it, a run of consecutive observations at
//! `fire_ratio` or more (and the floor) is tested as a whole: it fires when the mean of its
//! z-scores, each capped at `fire_z`, reaches `fire_z * sqrt(fire_after_samples / n)` for a
//! run of `n >= fire_after_samples`. That is the same evidence as `fire_z` spreads over
//! `fire_after_samples` observations, as the noise of a mean of `n` shrinks with `sqrt(n)`;
//! the cap keeps one huge request from carrying a run of middling ones, and makes a run of
//! `fire_after_samples` fire exactly when the first design did. A sustained runaway on a
//! noisy key is thus found after a minute or a few instead of never; a short one still
//! needs to be far above the key's noise. A run that ends without firing is learned into
//! the baseline afterwards (it was the key's noise).

use std::collections::{BTreeMap, VecDeque};

use super::groups::{Groups, fingerprint};
use super::{
    Evidence, Finding, FindingCleared, Point, Severity, SpikeEvidence, Subject, Transition,
};
use crate::store::{Matcher, SOURCE_LABEL, SeriesStore};
use crate::time::Timestamp;

mod config;
mod season;

pub use config::{RateUnit, SeasonMemory, SeriesRead, SpikeConfig, SpikeThresholds};
use season::{QUARTERS, SlotMemory, slot_at, slot_start};
pub use season::{SEASON_HALF_LIFE_PERIODS, SEASON_MIN_OBSERVATIONS, SEASON_SLOTS};

/// How many recent rates each group keeps as evidence.
const RECENT_POINTS: usize = 12;

/// With `run_evidence`, at most this many observations of a run that has not fired yet are
/// kept to be learned if it ends without firing (an hour at 15 s).
const MAX_RUN_PENDING: usize = 240;

/// How far back the per-scrape rate (`irate`) may look for its two points. A scrape interval
/// longer than this yields no rate.
const RATE_WINDOW_MS: i64 = 5 * 60 * 1000;

/// What the detector knows about one group right now.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupView {
    /// The group's subject.
    pub subject: Subject,
    /// When its rate was last observed.
    pub observed_at: Timestamp,
    /// That rate, per second.
    pub rate_per_sec: f64,
    /// Its baseline, per second (0 before any observation).
    pub baseline_per_sec: f64,
    /// Whether a finding is firing for it.
    pub firing: bool,
    /// Its noise, per second: the spread its rate is judged by (the learnt standard
    /// deviation, at least the noise floor's share of the baseline).
    pub spread_per_sec: f64,
}

#[derive(Clone, Debug)]
struct Firing {
    raised_at: Timestamp,
}

#[derive(Clone, Debug)]
struct GroupState {
    subject: Subject,
    mean: f64,
    variance: f64,
    n_observed: u32,
    last_at: Option<Timestamp>,
    last_rate: f64,
    n_hot: u32,
    /// With `run_evidence`: the summed z-scores (each at most `fire_z`) of the current run
    /// of hot observations...
    run_z: f64,
    /// ...and the observations of that run, each with the seconds since the one before, to
    /// be learned if the run ends without firing.
    run_pending: Vec<(f64, f64)>,
    n_calm: u32,
    firing: Option<Firing>,
    recent: VecDeque<Point>,
    /// Per slot of the seasonal period, its memory; empty until the first observation with
    /// seasonality on.
    season: Vec<SlotMemory>,
}

/// A spike detector and the state of all its groups.
#[derive(Clone, Debug)]
pub struct SpikeDetector {
    config: SpikeConfig,
    groups: Groups<GroupState>,
}

impl SpikeDetector {
    /// A detector with no history.
    #[must_use]
    pub fn new(config: SpikeConfig) -> Self {
        SpikeDetector {
            groups: Groups::new(config.max_groups),
            config,
        }
    }

    /// Its configuration.
    #[must_use]
    pub fn config(&self) -> &SpikeConfig {
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
        fingerprint(&self.config.name, Some(&self.config.group_by), group_value)
    }

    /// Observes the detector's source right after one of its scrapes was stored: the rate
    /// of each series between its last two points, summed per group.
    pub fn observe(&mut self, at: Timestamp, store: &SeriesStore) -> Vec<Transition> {
        let matchers = [
            Matcher::metric_name(self.config.metric.as_str()),
            Matcher::equal(SOURCE_LABEL, self.config.source.as_str()),
        ];
        let mut by_group: BTreeMap<String, (f64, Subject)> = BTreeMap::new();
        for series in store.select(&matchers) {
            // Only a series present in this scrape has a rate now: a stale one has no latest
            // point, and a vanished series is not a drop to zero.
            let reading = store
                .latest(series)
                .and_then(|latest| match self.config.read {
                    SeriesRead::CounterRate => store.instant_rate(series, RATE_WINDOW_MS, at),
                    SeriesRead::Value => Some(latest.value),
                });
            let Some(rate) = reading.filter(|rate| rate.is_finite()) else {
                continue;
            };
            let Some(value) = store.label_value(series, &self.config.group_by) else {
                continue;
            };
            if self
                .config
                .ignore_values
                .iter()
                .any(|ignored| ignored == value)
            {
                continue;
            }
            let label_of = |label: &Option<String>| {
                label
                    .as_deref()
                    .and_then(|name| store.label_value(series, name))
                    .filter(|text| *text != "None")
                    .map(str::to_owned)
            };
            let entry = by_group.entry(value.to_owned()).or_insert_with(|| {
                let subject = Subject {
                    label: self.config.group_by.clone(),
                    value: value.to_owned(),
                    alias: label_of(&self.config.alias_label),
                    team: label_of(&self.config.team_label),
                };
                (0.0, subject)
            });
            entry.0 += rate;
        }
        let mut transitions = Vec::new();
        for (value, (rate, subject)) in by_group {
            let fingerprint = self.fingerprint(&value);
            let Some(state) = self.groups.admit(&value, || GroupState {
                subject: subject.clone(),
                mean: 0.0,
                variance: 0.0,
                n_observed: 0,
                last_at: None,
                last_rate: 0.0,
                n_hot: 0,
                run_z: 0.0,
                run_pending: Vec::new(),
                n_calm: 0,
                firing: None,
                recent: VecDeque::with_capacity(RECENT_POINTS),
                season: Vec::new(),
            }) else {
                continue;
            };
            state.subject = subject;
            if let Some(transition) = step(&self.config, state, fingerprint, at, rate) {
                transitions.push(transition);
            }
        }
        transitions
    }

    /// What the detector knows about every group, in group order.
    #[must_use]
    pub fn views(&self) -> Vec<GroupView> {
        self.groups
            .values()
            .filter_map(|state| state.view(&self.config.thresholds))
            .collect()
    }

    /// The view of one group.
    #[must_use]
    pub fn view(&self, group_value: &str) -> Option<GroupView> {
        self.groups.get(group_value)?.view(&self.config.thresholds)
    }
}

impl GroupState {
    /// `None` until the group has been observed.
    fn view(&self, thresholds: &SpikeThresholds) -> Option<GroupView> {
        let baseline_per_sec = self.expected(self.last_at?, thresholds);
        Some(GroupView {
            subject: self.subject.clone(),
            observed_at: self.last_at?,
            rate_per_sec: self.last_rate,
            baseline_per_sec,
            firing: self.firing.is_some(),
            spread_per_sec: self.spread(baseline_per_sec, thresholds),
        })
    }

    /// The spread a rate is judged by against `expected`: the learnt standard deviation, at
    /// least the noise floor's share of `expected`.
    fn spread(&self, expected: f64, thresholds: &SpikeThresholds) -> f64 {
        self.variance
            .sqrt()
            .max(expected * thresholds.noise_floor_ratio)
            .max(f64::MIN_POSITIVE)
    }

    /// The rate expected at `at`: the short baseline, or the memory of this hour (or the one
    /// before or after it) from earlier periods when that is higher; with the peak memory,
    /// that memory alone once there is one.
    fn expected(&self, at: Timestamp, thresholds: &SpikeThresholds) -> f64 {
        let period_ms = thresholds.season_period_ms();
        let Some(slot) = slot_at(at, period_ms) else {
            return self.mean;
        };
        let neighbours = [SEASON_SLOTS - 1, 0, 1]
            .into_iter()
            .filter_map(|offset| self.season.get((slot + offset) % SEASON_SLOTS));
        match (thresholds.season_memory, period_ms) {
            (SeasonMemory::Peak, Some(period_ms)) => {
                let remembered = neighbours
                    .map(|memory| memory.peak_seen_at(at, period_ms))
                    .filter(|level| !level.is_nan())
                    .fold(f64::NAN, f64::max);
                if remembered.is_nan() {
                    self.mean
                } else {
                    remembered
                }
            }
            (SeasonMemory::Average | SeasonMemory::Peak, _) => neighbours
                .map(|memory| memory.past)
                .filter(|past| !past.is_nan())
                .fold(self.mean, f64::max),
        }
    }

    /// Adds one observation to its slot's memory.
    fn remember(&mut self, at: Timestamp, rate: f64, thresholds: &SpikeThresholds) {
        let period_ms = thresholds.season_period_ms();
        match thresholds.season_memory {
            SeasonMemory::Average => self.remember_average(at, rate, period_ms),
            SeasonMemory::Peak => self.remember_peak(at, rate, period_ms),
        }
    }

    /// The peak memory: first folds every slot whose hour is over, then adds the observation
    /// to its quarter hour.
    fn remember_peak(&mut self, at: Timestamp, rate: f64, period_ms: Option<i64>) {
        let (Some(slot), Some(period_ms)) = (slot_at(at, period_ms), period_ms) else {
            return;
        };
        if self.season.len() != SEASON_SLOTS {
            self.season = vec![SlotMemory::default(); SEASON_SLOTS];
        }
        for (index, memory) in self.season.iter_mut().enumerate() {
            if memory.n > 0 && slot_start(memory.period, index + 1, period_ms) <= at.0 {
                memory.fold_peak(slot_start(memory.period, index, period_ms));
            }
        }
        let Some(memory) = self.season.get_mut(slot) else {
            return;
        };
        let period = at.0.div_euclid(period_ms);
        if memory.period != period {
            // Only reached when the slot's last hour held nothing (it was folded above).
            memory.clear_hour();
            memory.period = period;
        }
        let into = i128::from(at.0.rem_euclid(period_ms));
        let quarter = usize::try_from(
            into * (SEASON_SLOTS * QUARTERS) as i128 / i128::from(period_ms) % QUARTERS as i128,
        )
        .unwrap_or(0);
        if let Some((sum, n)) = memory.quarters.get_mut(quarter) {
            *sum += rate;
            *n = n.saturating_add(1);
        }
        memory.n = memory.n.saturating_add(1);
    }

    /// The first design: adds one observation to its slot's current period, first folding
    /// the slot's previous period into its memory when the period changed.
    fn remember_average(&mut self, at: Timestamp, rate: f64, period_ms: Option<i64>) {
        let (Some(slot), Some(period_ms)) = (slot_at(at, period_ms), period_ms) else {
            return;
        };
        if self.season.len() != SEASON_SLOTS {
            self.season = vec![SlotMemory::default(); SEASON_SLOTS];
        }
        let Some(memory) = self.season.get_mut(slot) else {
            return;
        };
        let period = at.0.div_euclid(period_ms);
        if memory.period != period {
            if memory.n >= SEASON_MIN_OBSERVATIONS {
                let average = memory.sum / f64::from(memory.n);
                memory.past = if memory.past.is_nan() {
                    average
                } else {
                    let weight = 1.0 - crate::numeric::half_pow(1.0 / SEASON_HALF_LIFE_PERIODS);
                    memory.past + weight * (average - memory.past)
                };
            }
            memory.period = period;
            memory.sum = 0.0;
            memory.n = 0;
        }
        memory.sum += rate;
        memory.n = memory.n.saturating_add(1);
    }
}

/// Advances one group's state machine by one observation.
fn step(
    config: &SpikeConfig,
    state: &mut GroupState,
    fingerprint: String,
    at: Timestamp,
    rate: f64,
) -> Option<Transition> {
    let thresholds = &config.thresholds;
    let elapsed_secs = state
        .last_at
        .map_or(0.0, |last| at.secs_since(last).max(0.0));
    state.last_at = Some(at);
    state.last_rate = rate;
    if state.recent.len() == RECENT_POINTS {
        state.recent.pop_front();
    }
    state.recent.push_back(Point { at, value: rate });
    // Judged against the memory as it was before this observation.
    let expected = state.expected(at, thresholds);
    state.remember(at, rate, thresholds);

    if state.n_observed < thresholds.warmup_samples {
        learn(thresholds, state, rate, elapsed_secs);
        return None;
    }

    let spread = state.spread(expected, thresholds);
    let z_score = (rate - expected) / spread;
    let ratio = rate
        / expected
            .max(thresholds.min_rate_per_sec / thresholds.fire_ratio)
            .max(f64::MIN_POSITIVE);
    let high = ratio >= thresholds.fire_ratio && rate >= thresholds.min_rate_per_sec;
    let hot = high && (thresholds.run_evidence || z_score >= thresholds.fire_z);

    match &state.firing {
        None => {
            if !hot {
                state.n_hot = 0;
                state.run_z = 0.0;
                // A run that ended without firing was the key's normal noise after all.
                for (pending, pending_elapsed) in std::mem::take(&mut state.run_pending) {
                    learn(thresholds, state, pending, pending_elapsed);
                }
                learn(thresholds, state, rate, elapsed_secs);
                return None;
            }
            state.n_hot += 1;
            let z_score = if thresholds.run_evidence {
                // No observation counts for more than the `fire_z` spreads that would do
                // alone, so one huge scrape in a run of middling ones is not a sustained
                // spike, and a run of `fire_after_samples` fires exactly when each of its
                // observations is `fire_z` spreads up, as without `run_evidence`.
                state.run_z += z_score.min(thresholds.fire_z);
                if state.run_pending.len() < MAX_RUN_PENDING {
                    state.run_pending.push((rate, elapsed_secs));
                }
                // The run's mean excess in spreads; the same evidence as `fire_z` spreads
                // over `fire_after_samples` observations, as the noise of a mean shrinks
                // with the square root of its count.
                let n_run = f64::from(state.n_hot);
                let mean_z = state.run_z / n_run;
                // The slack keeps a run of observations all at the cap from missing by the
                // rounding of their sum.
                let needed = thresholds.fire_z
                    * (f64::from(thresholds.fire_after_samples) / n_run).sqrt()
                    * (1.0 - 1e-12);
                if mean_z < needed || state.n_hot < thresholds.fire_after_samples {
                    return None;
                }
                mean_z
            } else {
                if state.n_hot < thresholds.fire_after_samples {
                    return None;
                }
                z_score
            };
            state.n_hot = 0;
            state.run_z = 0.0;
            state.run_pending.clear();
            state.n_calm = 0;
            state.firing = Some(Firing { raised_at: at });
            let severity = if ratio >= thresholds.page_ratio {
                Severity::Page
            } else {
                Severity::Ticket
            };
            Some(Transition::Fired(Box::new(Finding {
                fingerprint,
                detector: config.name.clone(),
                source: config.source.clone(),
                subject: state.subject.clone(),
                severity,
                raised_at: at,
                evidence: Evidence::Spike(SpikeEvidence {
                    metric: config.metric.clone(),
                    unit: config.unit,
                    rate_per_sec: rate,
                    baseline_per_sec: expected,
                    spread_per_sec: spread,
                    z_score,
                    ratio,
                    thresholds: thresholds.clone(),
                    recent: state.recent.iter().copied().collect(),
                }),
            })))
        }
        Some(firing) => {
            let calm =
                rate <= expected * thresholds.clear_ratio || rate < thresholds.min_rate_per_sec;
            if !calm {
                state.n_calm = 0;
                return None;
            }
            state.n_calm += 1;
            if state.n_calm < thresholds.clear_after_samples {
                return None;
            }
            let raised_at = firing.raised_at;
            state.firing = None;
            state.n_calm = 0;
            Some(Transition::Cleared(FindingCleared {
                fingerprint,
                detector: config.name.clone(),
                raised_at,
                cleared_at: at,
                rate_per_sec: rate,
            }))
        }
    }
}

/// Folds one calm observation into the baseline.
fn learn(thresholds: &SpikeThresholds, state: &mut GroupState, rate: f64, elapsed_secs: f64) {
    // During warm-up the weight is at least 1/n, so the first observations form a plain
    // average instead of being dominated by the very first one.
    let decay_weight = if thresholds.baseline_half_life_secs > 0.0 {
        1.0 - crate::numeric::half_pow(elapsed_secs / thresholds.baseline_half_life_secs)
    } else {
        1.0
    };
    let weight = decay_weight
        .max(1.0 / f64::from(state.n_observed + 1))
        .clamp(0.0, 1.0);
    let deviation = rate - state.mean;
    state.mean += weight * deviation;
    state.variance = (1.0 - weight) * (state.variance + weight * deviation * deviation);
    state.n_observed = state.n_observed.saturating_add(1);
}

#[cfg(test)]
mod tests;
