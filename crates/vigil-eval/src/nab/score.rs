//! NAB's scoring function, as published in the NAB repository (numenta/NAB, `nab/sweeper.py`,
//! `nab/runner.py`, `config/profiles.json`), for one series and one profile. Pure: rows and
//! windows in, a score out.
//!
//! Rows are indexed from 0; a window is an inclusive range of rows (its first and last
//! timestamps, which NAB's labeler requires to be timestamps of the file). What follows is
//! what NAB's code does, detail by detail, with the function each comes from.
//!
//! - **The scaled sigmoid** (`sweeper.py`, `scaledSigmoid`): `2 * sigmoid(-5 * y) - 1` with
//!   `sigmoid(x) = 1 / (1 + exp(-x))`, that is `2 / (1 + exp(5 * y)) - 1`, and exactly `-1.0`
//!   when `y > 3.0`. The constant is 5; the clipping applies only above 3.
//! - **Position in a window** (`Sweeper.calcSweepScore`): a row `i` inside a window of
//!   `width = last - first + 1` rows has `y = -(last - i + 1) / width`. The first row has
//!   `y = -1`; the last row has `y = -1 / width`, not 0, so a detection at the last row still
//!   scores a little above zero. The row's true-positive weight is
//!   `scaledSigmoid(y) * A_TP / scaledSigmoid(-1)`, so a detection at the first row earns
//!   exactly `A_TP`.
//! - **False positives** (`Sweeper.calcSweepScore`): a row outside every window after some
//!   window weighs `scaledSigmoid(|prev_last - i| / (prev_width - 1)) * A_FP`, where `prev_*`
//!   is the closest window that ended before it (even one inside probation). The row just
//!   after a window of width `w` has `y = 1 / (w - 1)`; from `y > 3` on the weight is `-A_FP`.
//!   A row with no window before it weighs `-1.0 * A_FP`.
//!   NAB divides by zero (a Python exception) after a window of a single row; here that
//!   position is infinite, so the weight is `-A_FP`.
//! - **Probation** (`Sweeper._getProbationaryLength`, `util.getProbationPeriod`): the first
//!   `min(floor(0.15 * n), 0.15 * 5000)` rows (at most 750), computed in `f64` exactly as NAB
//!   does, are dropped before scoring (`prepAnomalyListForScoring`): a detection there is
//!   neither a false positive nor a true positive, even inside a window. A window with at
//!   least one row after probation is scored (its earlier rows just cannot detect it); a
//!   window entirely inside probation is not scored at all, neither found nor missed
//!   (`_prepareScoreByThresholdParts` only creates entries for rows after probation).
//! - **One detection per window** (`Sweeper.calcScoreByThreshold`): a window starts at
//!   `-A_FN` and takes the maximum of that and the weights of its detections. The weight
//!   falls strictly from the first row to the last, so the maximum is the earliest detection:
//!   later ones in the same window add nothing. A window with no detection costs `-A_FN`.
//! - **The series score** (`calcScoreByThreshold`): the sum of every false positive's weight
//!   and every scored window's value. NAB adds the false positives in descending order of
//!   anomaly score; here they are added in row order, which can differ in the last bits only.
//! - **Detections** (`Sweeper.scoreDataSet`): a row is a detection when its anomaly score is
//!   at least the threshold; here the detector says so itself (its `alert`), so the boolean
//!   per row is what gets scored.
//! - **Profiles** (`config/profiles.json`): `(A_TP, A_FP, A_FN)` are standard
//!   `(1.0, 0.11, 1.0)`, `reward_low_FP_rate` `(1.0, 0.22, 1.0)`, `reward_low_FN_rate`
//!   `(1.0, 0.11, 2.0)`. The `tnWeight` there is never read by the scorer.
//! - **Normalisation** (`Runner.normalize`): `100 * (S - S_null) / (S_perfect - S_null)` over
//!   the whole corpus, where `S` and `S_null` are sums over files of the detector's and the
//!   null detector's scores (the null detector never fires, so `S_null` is `-A_FN` per scored
//!   window), and `S_perfect = A_TP * ` the number of windows in the labels file. A window
//!   inside probation therefore counts in `S_perfect` but not in `S_null`; no window of the
//!   published corpus lies there.

use std::ops::Range;

/// How much a true positive earns and false positives and misses cost: one of NAB's three
/// application profiles.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Profile {
    /// NAB's name for it, as in `config/profiles.json`.
    pub name: &'static str,
    /// `A_TP`: the reward for detecting a window at its first row.
    pub true_positive_weight: f64,
    /// `A_FP`: the largest cost of one false-positive row.
    pub false_positive_weight: f64,
    /// `A_FN`: the cost of a window left undetected.
    pub false_negative_weight: f64,
}

/// NAB's standard profile.
pub const STANDARD: Profile = Profile {
    name: "standard",
    true_positive_weight: 1.0,
    false_positive_weight: 0.11,
    false_negative_weight: 1.0,
};

/// NAB's profile that punishes false positives twice as hard.
pub const REWARD_LOW_FP_RATE: Profile = Profile {
    name: "reward_low_FP_rate",
    true_positive_weight: 1.0,
    false_positive_weight: 0.22,
    false_negative_weight: 1.0,
};

/// NAB's profile that punishes missed windows twice as hard.
pub const REWARD_LOW_FN_RATE: Profile = Profile {
    name: "reward_low_FN_rate",
    true_positive_weight: 1.0,
    false_positive_weight: 0.11,
    false_negative_weight: 2.0,
};

/// The three profiles in NAB's order.
pub const PROFILES: [Profile; 3] = [STANDARD, REWARD_LOW_FP_RATE, REWARD_LOW_FN_RATE];

/// A labelled anomaly window: the rows from `first_row` to `last_row`, both included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowRows {
    /// The row of the window's first timestamp.
    pub first_row: usize,
    /// The row of the window's last timestamp.
    pub last_row: usize,
}

impl WindowRows {
    /// The number of rows in the window.
    #[must_use]
    pub fn width(&self) -> usize {
        self.last_row - self.first_row + 1
    }
}

/// Windows that cannot be scored, or detections that do not match their series.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScoreError {
    /// A window ends before it starts.
    #[error("window {window_idx} ends (row {last_row}) before it starts (row {first_row})")]
    WindowReversed {
        /// The window's position in the list, from 0.
        window_idx: usize,
        /// Its first row.
        first_row: usize,
        /// Its last row.
        last_row: usize,
    },
    /// A window reaches past the series' last row.
    #[error("window {window_idx} ends at row {last_row} but the series has {n_rows} rows")]
    WindowOutOfRange {
        /// The window's position in the list, from 0.
        window_idx: usize,
        /// Its last row.
        last_row: usize,
        /// The series' length.
        n_rows: usize,
    },
    /// A window starts at or before the last row of the window before it.
    #[error("window {window_idx} does not start after the end of the window before it")]
    WindowsOverlap {
        /// The later window's position in the list, from 0.
        window_idx: usize,
    },
    /// There is not exactly one detection flag per row.
    #[error("{actual} detection flags for a series of {expected} rows")]
    AlertCount {
        /// The series' length.
        expected: usize,
        /// The number of flags given.
        actual: usize,
    },
}

/// A series' labels: its length and its windows, in order and disjoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Labels {
    n_rows: usize,
    windows: Vec<WindowRows>,
}

impl Labels {
    /// Labels for a series of `n_rows` rows.
    ///
    /// # Errors
    ///
    /// When a window ends before it starts, reaches past the last row, or does not start
    /// after the end of the window before it (NAB's `validateLabels` wants them ordered and
    /// disjoint; one shared row would make NAB's window tracking enter the next window before
    /// leaving the current one).
    pub fn new(n_rows: usize, windows: Vec<WindowRows>) -> Result<Labels, ScoreError> {
        let mut previous_last_row: Option<usize> = None;
        for (window_idx, window) in windows.iter().enumerate() {
            if window.last_row < window.first_row {
                return Err(ScoreError::WindowReversed {
                    window_idx,
                    first_row: window.first_row,
                    last_row: window.last_row,
                });
            }
            if window.last_row >= n_rows {
                return Err(ScoreError::WindowOutOfRange {
                    window_idx,
                    last_row: window.last_row,
                    n_rows,
                });
            }
            if previous_last_row.is_some_and(|last_row| window.first_row <= last_row) {
                return Err(ScoreError::WindowsOverlap { window_idx });
            }
            previous_last_row = Some(window.last_row);
        }
        Ok(Labels { n_rows, windows })
    }

    /// The number of rows in the series.
    #[must_use]
    pub fn n_rows(&self) -> usize {
        self.n_rows
    }

    /// The windows, in order.
    #[must_use]
    pub fn windows(&self) -> &[WindowRows] {
        &self.windows
    }
}

/// How one series scored under one profile.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct SeriesScore {
    /// NAB's raw score.
    pub score: f64,
    /// Scored windows with at least one detection after probation.
    pub n_windows_detected: usize,
    /// Scored windows without one.
    pub n_windows_missed: usize,
    /// Windows entirely inside probation, which are not scored.
    pub n_windows_in_probation: usize,
    /// Detections after probation outside every window.
    pub n_false_positives: usize,
}

/// The number of rows at the start of a series of `n_rows` rows that are not scored:
/// `min(floor(0.15 * n_rows), 750)`, in `f64` as NAB computes it.
#[must_use]
pub fn probation_rows(n_rows: usize) -> usize {
    const PROBATION_FRACTION: f64 = 0.15;
    // NAB caps probation at the fraction of a 5000-row file.
    const PROBATION_CAP: f64 = PROBATION_FRACTION * 5000.0;
    let rows = (PROBATION_FRACTION * n_rows as f64)
        .floor()
        .min(PROBATION_CAP);
    // INVARIANT: a whole number from 0 to 750, so the conversion is exact.
    debug_assert!((0.0..=PROBATION_CAP).contains(&rows));
    rows as usize
}

/// NAB's `scaledSigmoid`: `2 / (1 + exp(5 * position)) - 1`, and `-1` past `3`.
#[must_use]
pub fn scaled_sigmoid(position: f64) -> f64 {
    if position > 3.0 {
        -1.0
    } else {
        2.0 * sigmoid(-5.0 * position) - 1.0
    }
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// The score of one series under `profile`, given whether the detector alerted at each row.
///
/// # Errors
///
/// [`ScoreError::AlertCount`] when `alerts` does not have one flag per row.
pub fn score_series(
    labels: &Labels,
    alerts: &[bool],
    profile: &Profile,
) -> Result<SeriesScore, ScoreError> {
    if alerts.len() != labels.n_rows {
        return Err(ScoreError::AlertCount {
            expected: labels.n_rows,
            actual: alerts.len(),
        });
    }
    Ok(score_alerts(
        labels,
        |row| alerts.get(row).copied().unwrap_or(false),
        profile,
    ))
}

/// The null detector's score (it never alerts): `-A_FN` per window with a row after
/// probation.
#[must_use]
pub fn null_score(labels: &Labels, profile: &Profile) -> f64 {
    score_alerts(labels, |_| false, profile).score
}

/// The perfect score as NAB's `Runner.normalize` counts it: `A_TP` per labelled window,
/// whether or not probation covers it.
#[must_use]
pub fn perfect_score(labels: &Labels, profile: &Profile) -> f64 {
    labels.windows.len() as f64 * profile.true_positive_weight
}

/// `100 * (score - null) / (perfect - null)`: 0 for the null detector, 100 for the perfect
/// one. `None` when there is no window to find, so perfect and null coincide.
#[must_use]
pub fn normalised_score(score: f64, null: f64, perfect: f64) -> Option<f64> {
    let range = perfect - null;
    (range > 0.0).then(|| 100.0 * (score - null) / range)
}

fn score_alerts(
    labels: &Labels,
    is_alert: impl Fn(usize) -> bool,
    profile: &Profile,
) -> SeriesScore {
    let probation = probation_rows(labels.n_rows);
    let mut tally = SeriesScore::default();
    let mut false_positives_total = 0.0;
    let mut windows_total = 0.0;

    // Scores the detections in rows outside every window, after `previous` (if any).
    let mut score_gap =
        |rows: Range<usize>, previous: Option<&WindowRows>, tally: &mut SeriesScore| {
            for row in rows.start.max(probation)..rows.end {
                if is_alert(row) {
                    tally.n_false_positives += 1;
                    false_positives_total += false_positive_weight(previous, row, profile);
                }
            }
        };

    let mut previous: Option<&WindowRows> = None;
    let mut next_row = 0;
    for window in &labels.windows {
        score_gap(next_row..window.first_row, previous, &mut tally);
        if window.last_row < probation {
            tally.n_windows_in_probation += 1;
        } else {
            let best_detection = (window.first_row.max(probation)..=window.last_row)
                .filter(|&row| is_alert(row))
                .map(|row| true_positive_weight(window, row, profile))
                .reduce(f64::max);
            match best_detection {
                Some(weight) => {
                    tally.n_windows_detected += 1;
                    windows_total += weight.max(-profile.false_negative_weight);
                }
                None => {
                    tally.n_windows_missed += 1;
                    windows_total -= profile.false_negative_weight;
                }
            }
        }
        previous = Some(window);
        next_row = window.last_row + 1;
    }
    score_gap(next_row..labels.n_rows, previous, &mut tally);

    tally.score = false_positives_total + windows_total;
    tally
}

/// The weight of a detection at `row` inside `window`.
fn true_positive_weight(window: &WindowRows, row: usize, profile: &Profile) -> f64 {
    let rows_to_end = (window.last_row - row + 1) as f64;
    let position = -rows_to_end / window.width() as f64;
    scaled_sigmoid(position) * profile.true_positive_weight / scaled_sigmoid(-1.0)
}

/// The weight (negative) of a detection at `row`, outside every window, after `previous`.
fn false_positive_weight(previous: Option<&WindowRows>, row: usize, profile: &Profile) -> f64 {
    let unweighted = match previous {
        None => -1.0,
        Some(window) => {
            let rows_past = row.abs_diff(window.last_row) as f64;
            // A single-row window makes this 1 / 0 = infinity, which clips to -1.
            let position = rows_past / (window.width() - 1) as f64;
            scaled_sigmoid(position)
        }
    };
    unweighted * profile.false_positive_weight
}

#[cfg(test)]
mod tests;
