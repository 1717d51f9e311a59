//! The drift test of the proportion-drop detector: a slow slide of a group's share that its
//! decaying baseline would follow, caught by a one-sided Bernoulli CUSUM against a reference
//! share frozen at a known-good period.
//!
//! - **Reference.** The share stated in the config (`reference_share`), or learnt from the
//!   first cases the group reports while no finding of it is open, as `(good + 1) / (all +
//!   2)`, frozen once they are at least `reference_cases` and its standard error is at most
//!   a tenth of `min_drop` (about 500 cases at 95 %, 1,600 at 80 %, 2,400 at 60 %); the
//!   reference is then two standard errors under the learnt share, so that a share learnt
//!   high by chance does not make the suite's usual level look like a slide. Once frozen it never moves: nothing the data does afterwards
//!   re-learns it, so no slide can be absorbed. A new session (a new config) learns afresh.
//!   Failure modes: a group first seen while already bad learns a bad reference (state it
//!   with `reference_share`), and a suite whose normal level falls for good (harder cases
//!   added) keeps its finding open until the config states the new level.
//! - **Statistic.** Each new case after the reference adds its log-likelihood ratio of the
//!   shifted share `p1 = p0 - min_drop` against the reference `p0`: `ln(p1 / p0)` for a good
//!   case (negative), `ln((1 - p1) / (1 - p0))` for a bad one (positive); the sum restarts at
//!   0 whenever it would go below. The slide began when it last left 0.
//! - **Decision level.** `h` solves Wald's approximation of the mean number of cases between
//!   false alarms on a group that holds its reference, `(e^h - h - 1) / KL(p0, p1) = N` with
//!   `N = cases_between_false_alarms`. It ignores the overshoot past `h`, which makes the
//!   true run longer: the stated rate is an upper bound for a reference that is exact.
//! - **Clearing.** The finding clears when the recent sample's share is back within
//!   `clear_drop` of the reference; the statistic then restarts at 0.
//!
//! All arithmetic is basic operations and [`crate::numeric::ln`].

use serde::{Deserialize, Serialize};

use crate::numeric::ln;
use crate::signal::float_repr;
use crate::time::Timestamp;

/// The drift test of a proportion-drop detector (validated by the binary's config loader).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DriftConfig {
    /// The reference is learnt from the group's first this many cases (when not stated).
    pub reference_cases: u32,
    /// The known-good share, stated; `None` to learn it.
    #[serde(default, with = "float_repr::option")]
    pub reference_share: Option<f64>,
    /// The drop below the reference (absolute, 0 to 1) the statistic is tuned to detect.
    #[serde(with = "float_repr")]
    pub min_drop: f64,
    /// It clears once the recent share is at most this far below the reference.
    #[serde(with = "float_repr")]
    pub clear_drop: f64,
    /// The mean number of cases between false alarms on a group that holds its reference,
    /// from which the decision level is derived.
    #[serde(with = "float_repr")]
    pub cases_between_false_alarms: f64,
}

/// The drift test's numbers in a proportion-drop finding.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DriftEvidence {
    /// Whether the drift test raised the finding; `false`: the sudden-drop test did and these
    /// are the drift test's numbers at that time.
    pub raised_by_drift: bool,
    /// The frozen reference share.
    #[serde(with = "float_repr")]
    pub reference_share: f64,
    /// The cases the reference was learnt from; 0 when the config stated it.
    #[serde(with = "float_repr")]
    pub reference_cases: f64,
    /// When the statistic last left 0: the slide's estimated start; `None` at 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slide_began_at: Option<Timestamp>,
    /// Good cases since the slide began.
    #[serde(with = "float_repr")]
    pub since_good: f64,
    /// All cases since the slide began.
    #[serde(with = "float_repr")]
    pub since_total: f64,
    /// The CUSUM statistic (a log-likelihood ratio, in nats).
    #[serde(with = "float_repr")]
    pub statistic: f64,
    /// The decision level it fires at.
    #[serde(with = "float_repr")]
    pub decision_level: f64,
    /// The drop the statistic is tuned to.
    #[serde(with = "float_repr")]
    pub min_drop: f64,
}

impl DriftEvidence {
    /// The share since the slide began, 0 without cases.
    #[must_use]
    pub fn since_share(&self) -> f64 {
        if self.since_total > 0.0 {
            self.since_good / self.since_total
        } else {
            0.0
        }
    }
}

/// The learnt reference freezes only once its standard error is at most `min_drop / 10`:
/// a reference too high by a fraction of `min_drop` brings the statistic's mean drift at the
/// true share near 0, and false alarms with it (this is `10^2`).
const SE_PER_DROP_SQUARED: f64 = 100.0;

/// The learnt reference is this many standard errors under the learnt share (at most a
/// fifth of `min_drop` lower): too high by chance only in about 2 % of groups.
const REFERENCE_STANDARD_ERRORS: f64 = 2.0;

/// A frozen reference and the statistic's constants derived from it.
#[derive(Clone, Debug)]
struct Reference {
    share: f64,
    cases: f64,
    weight_good: f64,
    weight_bad: f64,
    decision_level: f64,
}

impl Reference {
    fn new(config: &DriftConfig, share: f64, cases: f64) -> Reference {
        let shifted = (share - config.min_drop).max(share * 0.5);
        let weight_good = ln(shifted / share);
        let weight_bad = ln((1.0 - shifted) / (1.0 - share));
        // KL(p0, p1): the statistic's mean decrease per case at the reference.
        let divergence = -(share * weight_good + (1.0 - share) * weight_bad);
        Reference {
            share,
            cases,
            weight_good,
            weight_bad,
            decision_level: decision_level(divergence, config.cases_between_false_alarms),
        }
    }
}

/// The decision level `h` with `(e^h - h - 1) / divergence = cases_between_false_alarms`
/// (Wald's approximation of a CUSUM's in-control run length), by a fixed-point iteration
/// `h = ln(1 + h + N * divergence)` with a fixed number of steps.
#[must_use]
pub fn decision_level(divergence: f64, cases_between_false_alarms: f64) -> f64 {
    let target = (cases_between_false_alarms * divergence).max(1.0);
    let mut level = ln(1.0 + target);
    for _ in 0..30 {
        level = ln(1.0 + level + target);
    }
    level
}

/// The start of the current slide and its cases.
#[derive(Clone, Debug)]
struct Slide {
    began_ms: i64,
    good: f64,
    total: f64,
}

/// One group's drift test.
#[derive(Clone, Debug)]
pub(super) struct DriftState {
    learnt_good: f64,
    learnt_total: f64,
    reference: Option<Reference>,
    statistic: f64,
    slide: Option<Slide>,
}

impl DriftState {
    /// A group's test before its first case.
    pub(super) fn new(config: &DriftConfig) -> DriftState {
        DriftState {
            learnt_good: 0.0,
            learnt_total: 0.0,
            reference: config
                .reference_share
                .map(|share| Reference::new(config, share, 0.0)),
            statistic: 0.0,
            slide: None,
        }
    }

    /// Adds new cases (`good` of `total`) observed at `at_ms`; `may_learn` is false while a
    /// finding of the group is open, whose cases are not a known-good period.
    pub(super) fn add(
        &mut self,
        config: &DriftConfig,
        at_ms: i64,
        good: f64,
        total: f64,
        may_learn: bool,
    ) {
        if total.is_nan() || total <= 0.0 {
            return;
        }
        let Some(reference) = &self.reference else {
            if may_learn {
                self.learnt_good += good;
                self.learnt_total += total;
                let share = (self.learnt_good + 1.0) / (self.learnt_total + 2.0);
                // The standard error of the learnt share, squared.
                let variance = share * (1.0 - share) / self.learnt_total;
                let precise = variance * SE_PER_DROP_SQUARED <= config.min_drop * config.min_drop;
                if self.learnt_total >= f64::from(config.reference_cases.max(1)) && precise {
                    // The lower end of its interval: a learnt share that happens to be high
                    // would make the suite's usual level look like a slide, again and again.
                    let lower = share - REFERENCE_STANDARD_ERRORS * variance.sqrt();
                    self.reference = Some(Reference::new(config, lower, self.learnt_total));
                }
            }
            return;
        };
        let bad = (total - good).max(0.0);
        let increment = good * reference.weight_good + bad * reference.weight_bad;
        let next = self.statistic + increment;
        if next > 0.0 {
            let slide = self.slide.get_or_insert(Slide {
                began_ms: at_ms,
                good: 0.0,
                total: 0.0,
            });
            slide.good += good;
            slide.total += total;
            self.statistic = next;
        } else {
            self.reset();
        }
    }

    /// Whether the statistic is at or over its decision level.
    pub(super) fn alarm(&self) -> bool {
        self.reference
            .as_ref()
            .is_some_and(|reference| self.statistic >= reference.decision_level)
    }

    /// Whether a recent share lets a finding clear: within `clear_drop` of the reference
    /// (always, while the reference is being learnt).
    pub(super) fn clears(&self, config: &DriftConfig, recent_share: f64) -> bool {
        self.reference
            .as_ref()
            .is_none_or(|reference| reference.share - recent_share <= config.clear_drop)
    }

    /// Restarts the statistic at 0 (it went below, or the finding cleared).
    pub(super) fn reset(&mut self) {
        self.statistic = 0.0;
        self.slide = None;
    }

    /// The numbers for a finding, once the reference is known.
    pub(super) fn evidence(
        &self,
        config: &DriftConfig,
        raised_by_drift: bool,
    ) -> Option<DriftEvidence> {
        let reference = self.reference.as_ref()?;
        Some(DriftEvidence {
            raised_by_drift,
            reference_share: reference.share,
            reference_cases: reference.cases,
            slide_began_at: self.slide.as_ref().map(|slide| Timestamp(slide.began_ms)),
            since_good: self.slide.as_ref().map_or(0.0, |slide| slide.good),
            since_total: self.slide.as_ref().map_or(0.0, |slide| slide.total),
            statistic: self.statistic,
            decision_level: reference.decision_level,
            min_drop: config.min_drop,
        })
    }
}
