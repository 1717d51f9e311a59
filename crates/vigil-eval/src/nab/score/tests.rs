//! The scorer on hand-made series whose scores are worked out by hand.
//!
//! The hand computations use `2 / (1 + exp(5y)) - 1 = tanh(-5y / 2)`, so a detection at
//! position `y` inside a window earns `tanh(-5y / 2) / tanh(5 / 2)` (times `A_TP`), and a false
//! positive at position `y` past a window costs `tanh(5y / 2)` (times `A_FP`). Every expected
//! value below was also checked once against NAB's own `Sweeper.scoreDataSet`.

use super::*;

const TOLERANCE: f64 = 1e-12;

/// `tanh(5 / 2)`: the unweighted score of a detection at a window's first row.
fn max_true_positive() -> f64 {
    2.5_f64.tanh()
}

fn labels(n_rows: usize, windows: &[(usize, usize)]) -> Labels {
    let windows = windows
        .iter()
        .map(|&(first_row, last_row)| WindowRows {
            first_row,
            last_row,
        })
        .collect();
    Labels::new(n_rows, windows).unwrap()
}

fn alerts_at(n_rows: usize, rows: &[usize]) -> Vec<bool> {
    (0..n_rows).map(|row| rows.contains(&row)).collect()
}

/// One case: a series of `n_rows` rows with these windows, alerts at these rows, the profile,
/// the expected score and what the case is about.
struct Case {
    about: &'static str,
    n_rows: usize,
    windows: &'static [(usize, usize)],
    alert_rows: &'static [usize],
    profile: Profile,
    expected: f64,
}

fn check(cases: &[Case]) {
    for case in cases {
        let labels = labels(case.n_rows, case.windows);
        let alerts = alerts_at(case.n_rows, case.alert_rows);
        let scored = score_series(&labels, &alerts, &case.profile).unwrap();
        assert!(
            (scored.score - case.expected).abs() < TOLERANCE,
            "{}: scored {}, expected {}",
            case.about,
            scored.score,
            case.expected
        );
    }
}

// Forty rows: probation is floor(0.15 * 40) = 6 rows (0 to 5). One window of ten rows,
// 10 to 19.
const FORTY_ROWS: usize = 40;
const ONE_WINDOW: &[(usize, usize)] = &[(10, 19)];

#[test]
fn detections_inside_a_window_earn_more_the_earlier_they_come() {
    let max = max_true_positive();
    check(&[
        Case {
            about: "no detection: the window is missed, -A_FN",
            n_rows: FORTY_ROWS,
            windows: ONE_WINDOW,
            alert_rows: &[],
            profile: STANDARD,
            expected: -1.0,
        },
        Case {
            about: "left edge: y = -(19 - 10 + 1) / 10 = -1, exactly A_TP",
            n_rows: FORTY_ROWS,
            windows: ONE_WINDOW,
            alert_rows: &[10],
            profile: STANDARD,
            expected: 1.0,
        },
        Case {
            about: "right edge: y = -(19 - 19 + 1) / 10 = -0.1, tanh(0.25) / tanh(2.5) = 0.2482",
            n_rows: FORTY_ROWS,
            windows: ONE_WINDOW,
            alert_rows: &[19],
            profile: STANDARD,
            expected: 0.25_f64.tanh() / max,
        },
        Case {
            about: "middle: y = -(19 - 15 + 1) / 10 = -0.5, tanh(1.25) / tanh(2.5) = 0.8598",
            n_rows: FORTY_ROWS,
            windows: ONE_WINDOW,
            alert_rows: &[15],
            profile: STANDARD,
            expected: 1.25_f64.tanh() / max,
        },
        Case {
            about: "a second detection in the window adds nothing: as row 15 alone",
            n_rows: FORTY_ROWS,
            windows: ONE_WINDOW,
            alert_rows: &[15, 19],
            profile: STANDARD,
            expected: 1.25_f64.tanh() / max,
        },
        Case {
            about: "the earliest detection counts: row 12, y = -0.8, tanh(2) / tanh(2.5)",
            n_rows: FORTY_ROWS,
            windows: ONE_WINDOW,
            alert_rows: &[12, 15],
            profile: STANDARD,
            expected: 2.0_f64.tanh() / max,
        },
    ]);
}

#[test]
fn false_positives_cost_more_the_further_they_are_from_the_preceding_window() {
    check(&[
        Case {
            about: "right after: y = (20 - 19) / (10 - 1) = 1/9, -1 - 0.11 * tanh(5/18)",
            n_rows: FORTY_ROWS,
            windows: ONE_WINDOW,
            alert_rows: &[20],
            profile: STANDARD,
            expected: -1.0 - 0.11 * (5.0_f64 / 18.0).tanh(),
        },
        Case {
            about: "far after: y = 20 / 9, not yet clipped, -1 - 0.11 * tanh(50/9)",
            n_rows: FORTY_ROWS,
            windows: ONE_WINDOW,
            alert_rows: &[39],
            profile: STANDARD,
            expected: -1.0 - 0.11 * (50.0_f64 / 9.0).tanh(),
        },
        Case {
            // A hundred rows (probation 15), one window of five rows, 20 to 24.
            about: "at y = (36 - 24) / 4 = 3 exactly the sigmoid still applies: tanh(7.5)",
            n_rows: 100,
            windows: &[(20, 24)],
            alert_rows: &[36],
            profile: STANDARD,
            expected: -1.0 - 0.11 * 7.5_f64.tanh(),
        },
        Case {
            about: "past y = 3 (here 13 / 4) the weight is clipped to exactly -1",
            n_rows: 100,
            windows: &[(20, 24)],
            alert_rows: &[37],
            profile: STANDARD,
            expected: -1.0 - 0.11,
        },
        Case {
            about: "before any window: -1 * A_FP, plus the missed window",
            n_rows: FORTY_ROWS,
            windows: ONE_WINDOW,
            alert_rows: &[8],
            profile: STANDARD,
            expected: -0.11 - 1.0,
        },
        Case {
            // NAB itself raises ZeroDivisionError here: |11 - 10| / (1 - 1).
            about: "after a one-row window the position is infinite, so -1 * A_FP",
            n_rows: FORTY_ROWS,
            windows: &[(10, 10)],
            alert_rows: &[11],
            profile: STANDARD,
            expected: -0.11 - 1.0,
        },
    ]);
}

#[test]
fn probation_rows_are_not_scored() {
    let max = max_true_positive();
    check(&[
        Case {
            about: "a false positive at row 3, inside probation (rows 0 to 5), is ignored",
            n_rows: FORTY_ROWS,
            windows: ONE_WINDOW,
            alert_rows: &[3],
            profile: STANDARD,
            expected: -1.0,
        },
        Case {
            about: "a window of rows 4 to 9 is scored, but its detection at row 5 is not",
            n_rows: FORTY_ROWS,
            windows: &[(4, 9)],
            alert_rows: &[5],
            profile: STANDARD,
            expected: -1.0,
        },
        Case {
            about: "its first row after probation: y = -(9 - 6 + 1) / 6, tanh(5/3) / tanh(2.5)",
            n_rows: FORTY_ROWS,
            windows: &[(4, 9)],
            alert_rows: &[6],
            profile: STANDARD,
            expected: (5.0_f64 / 3.0).tanh() / max,
        },
        Case {
            about: "row 5 ignored, row 8 counts: y = -2/6, tanh(5/6) / tanh(2.5)",
            n_rows: FORTY_ROWS,
            windows: &[(4, 9)],
            alert_rows: &[5, 8],
            profile: STANDARD,
            expected: (5.0_f64 / 6.0).tanh() / max,
        },
        Case {
            about: "a window entirely inside probation is neither found nor missed",
            n_rows: FORTY_ROWS,
            windows: &[(1, 3)],
            alert_rows: &[2],
            profile: STANDARD,
            expected: 0.0,
        },
        Case {
            about: "but it still precedes: row 10 is at y = 7 / 2 > 3 past it, -1 * A_FP",
            n_rows: FORTY_ROWS,
            windows: &[(1, 3)],
            alert_rows: &[2, 10],
            profile: STANDARD,
            expected: -0.11,
        },
    ]);
}

#[test]
fn each_profile_weighs_the_same_detections_differently() {
    // Windows at rows 10 to 19 and 30 to 34. Alerts: row 8 (before any window, -A_FP),
    // row 19 (the first window's last row, tanh(0.25) / tanh(2.5) * A_TP), row 22
    // (y = 3 / 9 past the first window, -tanh(5/6) * A_FP); the second window is missed
    // (-A_FN).
    let windows: &[(usize, usize)] = &[(10, 19), (30, 34)];
    let alert_rows: &[usize] = &[8, 19, 22];
    let found = 0.25_f64.tanh() / max_true_positive();
    let far = (5.0_f64 / 6.0).tanh();
    check(&[
        Case {
            about: "standard (1.0, 0.11, 1.0)",
            n_rows: FORTY_ROWS,
            windows,
            alert_rows,
            profile: STANDARD,
            expected: -0.11 + found - 0.11 * far - 1.0,
        },
        Case {
            about: "reward_low_FP_rate (1.0, 0.22, 1.0)",
            n_rows: FORTY_ROWS,
            windows,
            alert_rows,
            profile: REWARD_LOW_FP_RATE,
            expected: -0.22 + found - 0.22 * far - 1.0,
        },
        Case {
            about: "reward_low_FN_rate (1.0, 0.11, 2.0)",
            n_rows: FORTY_ROWS,
            windows,
            alert_rows,
            profile: REWARD_LOW_FN_RATE,
            expected: -0.11 + found - 0.11 * far - 2.0,
        },
    ]);
}

#[test]
fn the_tally_counts_windows_and_false_positives() {
    let labels = labels(FORTY_ROWS, &[(1, 3), (10, 19), (30, 34)]);
    // Row 2 is in probation, 8 and 22 are false positives, 12 and 15 find the second window.
    let alerts = alerts_at(FORTY_ROWS, &[2, 8, 12, 15, 22]);
    let scored = score_series(&labels, &alerts, &STANDARD).unwrap();
    assert_eq!(
        (
            scored.n_windows_in_probation,
            scored.n_windows_detected,
            scored.n_windows_missed,
            scored.n_false_positives
        ),
        (1, 1, 1, 2)
    );
}

#[test]
fn probation_is_fifteen_percent_capped_at_750_rows() {
    let cases = [
        (0, 0),
        (6, 0),
        (7, 1),
        (40, 6),
        (100, 15),
        (4999, 749),
        (5000, 750),
        (5006, 750),
        (15_902, 750),
    ];
    for (n_rows, expected) in cases {
        assert_eq!(probation_rows(n_rows), expected, "{n_rows} rows");
    }
}

#[test]
fn the_sigmoid_matches_nab_at_its_documented_points() {
    // From NAB's scaledSigmoid docstring: -1 gives 0.98661, -0.5 gives 0.84828, 0 gives 0,
    // 1 gives -0.98661; past 3 it is -1.
    let cases = [
        (-1.0, 0.98661),
        (-0.5, 0.84828),
        (0.0, 0.0),
        (1.0, -0.98661),
        (3.0, -0.99999939),
        (3.000_001, -1.0),
    ];
    for (position, expected) in cases {
        assert!(
            (scaled_sigmoid(position) - expected).abs() < 1e-5,
            "{position}: {}",
            scaled_sigmoid(position)
        );
    }
    assert_eq!(scaled_sigmoid(3.000_001), -1.0);
}

#[test]
fn null_and_perfect_detectors_normalise_to_0_and_100() {
    let corpus = [
        labels(FORTY_ROWS, ONE_WINDOW),
        labels(FORTY_ROWS, &[(10, 19), (30, 34)]),
        labels(100, &[(20, 24)]),
        labels(FORTY_ROWS, &[]),
    ];
    for profile in PROFILES {
        let mut null_total = 0.0;
        let mut perfect_total = 0.0;
        let mut null_detector_total = 0.0;
        let mut perfect_detector_total = 0.0;
        let mut middle_detector_total = 0.0;
        for labels in &corpus {
            null_total += null_score(labels, &profile);
            perfect_total += perfect_score(labels, &profile);
            let never = alerts_at(labels.n_rows(), &[]);
            null_detector_total += score_series(labels, &never, &profile).unwrap().score;
            let first_rows: Vec<usize> = labels.windows().iter().map(|w| w.first_row).collect();
            let at_starts = alerts_at(labels.n_rows(), &first_rows);
            perfect_detector_total += score_series(labels, &at_starts, &profile).unwrap().score;
            let middles: Vec<usize> = labels
                .windows()
                .iter()
                .map(|w| w.first_row + w.width() / 2)
                .collect();
            let at_middles = alerts_at(labels.n_rows(), &middles);
            middle_detector_total += score_series(labels, &at_middles, &profile).unwrap().score;
        }
        // Four windows: null is -4 A_FN, perfect is 4 A_TP.
        assert_eq!(
            null_total,
            -4.0 * profile.false_negative_weight,
            "{}",
            profile.name
        );
        assert_eq!(perfect_total, 4.0, "{}", profile.name);
        let normalise = |total| normalised_score(total, null_total, perfect_total).unwrap();
        assert_eq!(normalise(null_detector_total), 0.0, "{}", profile.name);
        assert_eq!(normalise(perfect_detector_total), 100.0, "{}", profile.name);

        // Detecting each window at its middle row: y = -5/10 twice (rows 15 and 15 of width-10
        // windows), y = -3/5 once (row 32 of 30 to 34), y = -3/5 once (row 22 of 20 to 24).
        let middle = (2.0 * 1.25_f64.tanh() + 2.0 * 1.5_f64.tanh()) / max_true_positive();
        let expected = 100.0 * (middle - null_total) / (4.0 - null_total);
        assert!(
            (normalise(middle_detector_total) - expected).abs() < TOLERANCE,
            "{}",
            profile.name
        );
    }
}

#[test]
fn normalising_without_windows_is_undefined() {
    assert_eq!(normalised_score(-0.5, 0.0, 0.0), None);
}

#[test]
fn labels_must_be_ordered_disjoint_and_inside_the_series() {
    let window = |first_row, last_row| WindowRows {
        first_row,
        last_row,
    };
    let cases = [
        (
            vec![window(5, 4)],
            ScoreError::WindowReversed {
                window_idx: 0,
                first_row: 5,
                last_row: 4,
            },
        ),
        (
            vec![window(5, 10)],
            ScoreError::WindowOutOfRange {
                window_idx: 0,
                last_row: 10,
                n_rows: 10,
            },
        ),
        (
            vec![window(1, 3), window(3, 5)],
            ScoreError::WindowsOverlap { window_idx: 1 },
        ),
        (
            vec![window(4, 5), window(1, 2)],
            ScoreError::WindowsOverlap { window_idx: 1 },
        ),
    ];
    for (windows, expected) in cases {
        assert_eq!(
            Labels::new(10, windows),
            Err(expected.clone()),
            "{expected}"
        );
    }
    assert!(Labels::new(10, vec![window(0, 0), window(1, 9)]).is_ok());
}

#[test]
fn alerts_must_match_the_rows() {
    let labels = labels(10, &[]);
    assert_eq!(
        score_series(&labels, &[false; 9], &STANDARD),
        Err(ScoreError::AlertCount {
            expected: 10,
            actual: 9
        })
    );
}
