//! A group's seasonal memory: per slot of the period (hour of the day), the rate it usually
//! has, as an average or as its busiest quarter hour (the peak memory).

use crate::time::Timestamp;

/// The number of slots of the seasonal period (hours of a day).
pub const SEASON_SLOTS: usize = 24;

/// The half-life of a slot's memory, in periods (days).
pub const SEASON_HALF_LIFE_PERIODS: f64 = 2.0;

/// A slot's observations in one period enter its memory only when there are this many.
pub const SEASON_MIN_OBSERVATIONS: u32 = 10;

/// The seasonal slot of `at` in a period of `period_ms`; `None` while seasonality is off.
pub(super) fn slot_at(at: Timestamp, period_ms: Option<i64>) -> Option<usize> {
    let period_ms = period_ms?;
    let into = at.0.rem_euclid(period_ms);
    usize::try_from(i128::from(into) * SEASON_SLOTS as i128 / i128::from(period_ms)).ok()
}

/// The start, in milliseconds, of slot `slot` (which may be [`SEASON_SLOTS`], the next
/// period's first) of period `period`.
pub(super) fn slot_start(period: i64, slot: usize, period_ms: i64) -> i64 {
    let into = i128::from(period_ms) * slot as i128 / SEASON_SLOTS as i128;
    i64::try_from(i128::from(period).saturating_mul(i128::from(period_ms)) + into)
        .unwrap_or(i64::MAX)
}

/// The quarter hours of a slot that the peak memory compares.
pub(super) const QUARTERS: usize = 4;

/// One slot of a group's seasonal memory.
#[derive(Clone, Copy, Debug)]
pub(super) struct SlotMemory {
    /// The remembered rate from earlier periods, exponentially weighted; NaN before the first.
    pub(super) past: f64,
    /// The period whose observations `sum`, `n` and `quarters` hold.
    pub(super) period: i64,
    /// The sum of this period's observations in the slot (average memory).
    pub(super) sum: f64,
    /// Their number.
    pub(super) n: u32,
    /// Peak memory: per quarter hour of this period's slot, the sum and number of its
    /// observations.
    pub(super) quarters: [(f64, u32); QUARTERS],
    /// Peak memory: the level of the last hour folded in; NaN before the first.
    pub(super) latest: f64,
    /// Peak memory: `past` and `latest` before the last hour was folded in...
    pub(super) before: (f64, f64),
    /// ...and when that hour started (`i64::MIN` before the first).
    pub(super) folded_start: i64,
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
    pub(super) fn peak_seen_at(&self, at: Timestamp, period_ms: i64) -> f64 {
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
    pub(super) fn fold_peak(&mut self, started_ms: i64) {
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
    pub(super) fn clear_hour(&mut self) {
        self.sum = 0.0;
        self.n = 0;
        self.quarters = [(0.0, 0); QUARTERS];
    }
}
