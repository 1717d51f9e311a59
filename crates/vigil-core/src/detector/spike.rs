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

use serde::{Deserialize, Serialize};

use super::groups::{Groups, fingerprint};
use super::{
    Evidence, Finding, FindingCleared, Point, Severity, SpikeEvidence, Subject, Transition,
};
use crate::signal::float_repr;
use crate::store::{Matcher, SOURCE_LABEL, SeriesStore};
use crate::time::Timestamp;

/// How many recent rates each group keeps as evidence.
const RECENT_POINTS: usize = 12;

/// With `run_evidence`, at most this many observations of a run that has not fired yet are
/// kept to be learned if it ends without firing (an hour at 15 s).
const MAX_RUN_PENDING: usize = 240;

/// The number of slots of the seasonal period (hours of a day).
pub const SEASON_SLOTS: usize = 24;

/// The half-life of a slot's memory, in periods (days).
pub const SEASON_HALF_LIFE_PERIODS: f64 = 2.0;

/// A slot's observations in one period enter its memory only when there are this many.
pub const SEASON_MIN_OBSERVATIONS: u32 = 10;

/// How far back the per-scrape rate (`irate`) may look for its two points. A scrape interval
/// longer than this yields no rate.
const RATE_WINDOW_MS: i64 = 5 * 60 * 1000;

/// Configuration of one spike detector (validated by the binary's config loader).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SpikeConfig {
    /// The detector's name, unique in a config, for example `token-spike`.
    pub name: String,
    /// The source whose scrapes it reads.
    pub source: String,
    /// The metric to read, for example the counter `litellm_total_tokens_metric_total`.
    pub metric: String,
    /// How to read it: the per-scrape rate of a counter, or the value itself (for a gauge,
    /// or a query that already computes a rate).
    #[serde(default)]
    pub read: SeriesRead,
    /// The label to group by, for example `hashed_api_key`.
    pub group_by: String,
    /// A label that names the group for people, for example `api_key_alias`.
    pub alias_label: Option<String>,
    /// A label that gives the owning team, for example `team`.
    pub team_label: Option<String>,
    /// Group values that are not a real subject (LiteLLM writes `None` or an empty string).
    pub ignore_values: Vec<String>,
    /// At most this many groups are tracked; more are ignored.
    pub max_groups: usize,
    /// The thresholds.
    pub thresholds: SpikeThresholds,
}

/// How a detector turns a series into the number it watches.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SeriesRead {
    /// The counter's increase per second between its last two points (`irate`).
    #[default]
    CounterRate,
    /// The series' latest value.
    Value,
}

/// The numbers that decide when a spike fires and clears.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SpikeThresholds {
    /// Observations needed before a group's baseline is trusted.
    pub warmup_samples: u32,
    /// Half-life of the baseline's memory, in seconds.
    #[serde(with = "float_repr")]
    pub baseline_half_life_secs: f64,
    /// Fire when the rate is at least this many spreads above the baseline...
    #[serde(with = "float_repr")]
    pub fire_z: f64,
    /// ...and at least this multiple of the baseline...
    #[serde(with = "float_repr")]
    pub fire_ratio: f64,
    /// ...and at least this many units per second.
    #[serde(with = "float_repr")]
    pub min_rate_per_sec: f64,
    /// ...for this many consecutive observations.
    pub fire_after_samples: u32,
    /// Clear when the rate is at most this multiple of the baseline...
    #[serde(with = "float_repr")]
    pub clear_ratio: f64,
    /// ...for this many consecutive observations.
    pub clear_after_samples: u32,
    /// The spread is at least this fraction of the baseline, so a very steady series does not
    /// fire on a small wobble.
    #[serde(with = "float_repr")]
    pub noise_floor_ratio: f64,
    /// A finding whose ratio reaches this is a `page`; below it a `ticket`.
    #[serde(with = "float_repr")]
    pub page_ratio: f64,
    /// The seasonal period in seconds (a day); 0 turns the per-hour memory off (and is what
    /// a config recorded before seasonality existed reads as, so it replays unchanged).
    #[serde(default)]
    pub season_secs: i64,
    /// Whether the spread test weighs a run of hot observations together (see the module
    /// doc); `false`, what a config recorded before it reads as, tests each one alone.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub run_evidence: bool,
    /// What a slot of the seasonal memory keeps and how it is used; `average`, what a config
    /// recorded before it reads as, is the first design.
    #[serde(default, skip_serializing_if = "SeasonMemory::is_average")]
    pub season_memory: SeasonMemory,
}

/// What each hour of a group's seasonal memory keeps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SeasonMemory {
    /// The hour's average, folded in at the hour's first observation of the next period; a
    /// rate is judged against the larger of it and the short baseline.
    #[default]
    Average,
    /// The hour's busiest quarter hour, folded in as soon as the hour is over; a rise counts
    /// in full on the next period; a rate is judged against the memory alone once there is
    /// one.
    Peak,
}

impl SeasonMemory {
    /// Whether it is the first design (left out when serialized, so that the thresholds of a
    /// session recorded before the peak memory serialize as they were recorded).
    #[must_use]
    pub fn is_average(&self) -> bool {
        *self == SeasonMemory::Average
    }
}

impl SpikeThresholds {
    /// The seasonal period in milliseconds; `None` when seasonality is off.
    #[must_use]
    pub fn season_period_ms(&self) -> Option<i64> {
        (self.season_secs > 0).then(|| self.season_secs.saturating_mul(1000))
    }
}

impl Default for SpikeThresholds {
    /// The shipped settings: for a LiteLLM gateway scraped every 15 s, a key's baseline is
    /// trusted after 20 scrapes and forgets with a half-life of 30 minutes; a key fires at 3x
    /// its expected rate and at least 50 tokens/s for 2 scrapes, when those scrapes are 6
    /// spreads above it (a longer run of 3x needs proportionally less, see the module doc);
    /// it clears under 1.5x for 3 scrapes; 10x or more pages. Each key remembers the busiest
    /// quarter hour of each hour of the day.
    fn default() -> Self {
        SpikeThresholds {
            warmup_samples: 20,
            baseline_half_life_secs: 1800.0,
            fire_z: 6.0,
            fire_ratio: 3.0,
            min_rate_per_sec: 50.0,
            fire_after_samples: 2,
            clear_ratio: 1.5,
            clear_after_samples: 3,
            noise_floor_ratio: 0.1,
            page_ratio: 10.0,
            season_secs: 86_400,
            run_evidence: true,
            season_memory: SeasonMemory::Peak,
        }
    }
}

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

/// The seasonal slot of `at` in a period of `period_ms`; `None` while seasonality is off.
fn slot_at(at: Timestamp, period_ms: Option<i64>) -> Option<usize> {
    let period_ms = period_ms?;
    let into = at.0.rem_euclid(period_ms);
    usize::try_from(i128::from(into) * SEASON_SLOTS as i128 / i128::from(period_ms)).ok()
}

/// The start, in milliseconds, of slot `slot` (which may be [`SEASON_SLOTS`], the next
/// period's first) of period `period`.
fn slot_start(period: i64, slot: usize, period_ms: i64) -> i64 {
    let into = i128::from(period_ms) * slot as i128 / SEASON_SLOTS as i128;
    i64::try_from(i128::from(period).saturating_mul(i128::from(period_ms)) + into)
        .unwrap_or(i64::MAX)
}

/// The quarter hours of a slot that the peak memory compares.
const QUARTERS: usize = 4;

/// One slot of a group's seasonal memory.
#[derive(Clone, Copy, Debug)]
struct SlotMemory {
    /// The remembered rate from earlier periods, exponentially weighted; NaN before the first.
    past: f64,
    /// The period whose observations `sum`, `n` and `quarters` hold.
    period: i64,
    /// The sum of this period's observations in the slot (average memory).
    sum: f64,
    /// Their number.
    n: u32,
    /// Peak memory: per quarter hour of this period's slot, the sum and number of its
    /// observations.
    quarters: [(f64, u32); QUARTERS],
    /// Peak memory: the level of the last hour folded in; NaN before the first.
    latest: f64,
    /// Peak memory: `past` and `latest` before the last hour was folded in...
    before: (f64, f64),
    /// ...and when that hour started (`i64::MIN` before the first).
    folded_start: i64,
}

impl Default for SlotMemory {
    fn default() -> Self {
        SlotMemory {
            past: f64::NAN,
            period: i64::MIN,
            sum: 0.0,
            n: 0,
            quarters: [(0.0, 0); QUARTERS],
            latest: f64::NAN,
            before: (f64::NAN, f64::NAN),
            folded_start: i64::MIN,
        }
    }
}

impl SlotMemory {
    /// The peak memory as seen at `at`: the larger of the weighted memory and the latest
    /// hour, leaving out an hour folded in less than half a period ago (today's hour is not
    /// yet a memory of earlier days); NaN when there is none.
    fn peak_seen_at(&self, at: Timestamp, period_ms: i64) -> f64 {
        let (past, latest) = if self.folded_start > at.0.saturating_sub(period_ms / 2) {
            self.before
        } else {
            (self.past, self.latest)
        };
        match (past.is_nan(), latest.is_nan()) {
            (true, true) => f64::NAN,
            (false, true) => past,
            (true, false) => latest,
            (false, false) => past.max(latest),
        }
    }

    /// Folds the finished hour that started at `started_ms` into the peak memory: its
    /// busiest quarter hour (among those holding at least half their share of the hour's
    /// observations), when the hour had [`SEASON_MIN_OBSERVATIONS`].
    fn fold_peak(&mut self, started_ms: i64) {
        if self.n >= SEASON_MIN_OBSERVATIONS {
            let level = self
                .quarters
                .iter()
                .filter(|(_, n)| u64::from(*n) * 2 * QUARTERS as u64 >= u64::from(self.n))
                .map(|(sum, n)| sum / f64::from(*n))
                .fold(f64::NAN, f64::max);
            if !level.is_nan() {
                self.before = (self.past, self.latest);
                self.folded_start = started_ms;
                self.past = if self.past.is_nan() {
                    level
                } else {
                    let weight = 1.0 - crate::numeric::half_pow(1.0 / SEASON_HALF_LIFE_PERIODS);
                    self.past + weight * (level - self.past)
                };
                self.latest = level;
            }
        }
        self.clear_hour();
    }

    /// Forgets the observations of the hour being collected.
    fn clear_hour(&mut self) {
        self.sum = 0.0;
        self.n = 0;
        self.quarters = [(0.0, 0); QUARTERS];
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
