//! The runner on a hand-made corpus with a scripted detector (test-only: it alerts at the
//! steps it is told to).

use expect_test::expect;

use super::*;
use crate::nab::score::{Labels, WindowRows};

/// A detector that alerts at the given step numbers of its own life, counted from 0. Its
/// state is the step count, so sharing one between series would shift its alerts.
struct Scripted {
    step_idx: usize,
    alert_steps: &'static [usize],
    score: f64,
}

impl Scripted {
    fn new(alert_steps: &'static [usize]) -> Scripted {
        Scripted {
            step_idx: 0,
            alert_steps,
            score: 0.5,
        }
    }
}

impl StreamDetector for Scripted {
    fn step(&mut self, _at_ms: i64, _value: f64) -> DetectorStep {
        let alert = self.alert_steps.contains(&self.step_idx);
        self.step_idx += 1;
        DetectorStep {
            score: self.score,
            alert,
        }
    }
}

/// Forty rows a minute apart (probation: 6 rows) with the given windows.
fn series(category: &str, file_name: &str, windows: &[(usize, usize)]) -> LabelledSeries {
    const N_ROWS: usize = 40;
    let windows = windows
        .iter()
        .map(|&(first_row, last_row)| WindowRows {
            first_row,
            last_row,
        })
        .collect();
    LabelledSeries {
        category: category.to_owned(),
        file_name: file_name.to_owned(),
        timestamps_ms: (0..N_ROWS as i64)
            .map(|minute| 1_396_310_400_000 + minute * 60_000)
            .collect(),
        values: vec![1.0; N_ROWS],
        labels: Labels::new(N_ROWS, windows).unwrap(),
        clock_went_back: Vec::new(),
        bad_values: Vec::new(),
        columns: None,
    }
}

fn corpus() -> Corpus {
    Corpus {
        series: vec![
            series("artificialNoAnomaly", "flat.csv", &[]),
            series("realThings", "a.csv", &[(10, 19)]),
            series("realThings", "b.csv", &[(10, 19), (30, 34)]),
        ],
    }
}

#[test]
fn scores_each_series_with_a_fresh_detector() {
    // Every series alerts at rows 10 and 22: in `flat.csv` two false positives with no window
    // before them (-A_FP each); in `a.csv` and `b.csv` the first window found at its first row
    // (A_TP) and a false positive 3 rows after a 10-row window (-tanh(5/6) * A_FP, y = 3/9);
    // `b.csv` also misses its second window (-A_FN).
    let report = run_corpus(&corpus(), "scripted", || Ok(Scripted::new(&[10, 22]))).unwrap();

    let far = (5.0_f64 / 6.0).tanh();
    let [standard, low_false_positives, low_false_negatives] = report.totals();
    let expected_scores = [
        -0.22 + 2.0 - 0.22 * far - 1.0,
        -0.44 + 2.0 - 0.44 * far - 1.0,
        -0.22 + 2.0 - 0.22 * far - 2.0,
    ];
    let expected_nulls = [-3.0, -3.0, -6.0];
    for ((total, expected_score), expected_null) in
        [standard, low_false_positives, low_false_negatives]
            .iter()
            .zip(expected_scores)
            .zip(expected_nulls)
    {
        assert!(
            (total.score - expected_score).abs() < 1e-12,
            "{}",
            total.profile_name
        );
        assert_eq!(
            (total.null, total.perfect),
            (expected_null, 3.0),
            "{}",
            total.profile_name
        );
        let expected_normalised = 100.0 * (expected_score - expected_null) / (3.0 - expected_null);
        assert!((total.normalised.unwrap() - expected_normalised).abs() < 1e-9);
    }

    // The standard profile: 100 * (0.78 - 0.22 * tanh(5/6) + 3) / 6 = 60.50.
    expect![[r#"
        NAB: 3 series, 3 windows; detector: scripted
        found/missed: windows with/without a detection after probation; FP: alerting rows after probation outside every window; S: raw NAB score per profile

        artificialNoAnomaly                            rows windows found missed    FP S standard   S low_FP   S low_FN
          flat.csv                                       40       0     0      0     2     -0.220     -0.440     -0.220
          (total)                                        40       0     0      0     2     -0.220     -0.440     -0.220

        realThings                                     rows windows found missed    FP S standard   S low_FP   S low_FN
          a.csv                                          40       1     1      0     1      0.925      0.850      0.925
          b.csv                                          40       2     1      1     1     -0.075     -0.150     -1.075
          (total)                                        80       3     2      1     2      0.850      0.700     -0.150

        normalised NAB score (null detector 0, perfect 100):
        profile                       S     S_null  S_perfect      score
        standard                  0.630     -3.000      3.000      60.50
        reward_low_FP_rate        0.260     -3.000      3.000      54.33
        reward_low_FN_rate       -0.370     -6.000      3.000      62.55
    "#]]
    .assert_eq(&report.render());
}

#[test]
fn a_corpus_without_windows_has_no_normalised_score() {
    let corpus = Corpus {
        series: vec![series("artificialNoAnomaly", "flat.csv", &[])],
    };
    let report = run_corpus(&corpus, "scripted", || Ok(Scripted::new(&[]))).unwrap();
    assert!(
        report
            .totals()
            .iter()
            .all(|total| total.normalised.is_none())
    );
    assert!(
        report
            .render()
            .contains("standard                  0.000      0.000      0.000        n/a")
    );
}

#[test]
fn a_score_outside_0_to_1_is_an_error() {
    let error = run_corpus(&corpus(), "scripted", || {
        Ok(Scripted {
            score: 1.5,
            ..Scripted::new(&[])
        })
    })
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "the detector scored row 0 of `artificialNoAnomaly/flat.csv` (2014-04-01T00:00:00.000Z) 1.5, outside [0, 1]"
    );
}

#[test]
fn a_detector_that_cannot_be_made_is_an_error() {
    let error = run_corpus(&corpus(), "broken", || -> anyhow::Result<Scripted> {
        anyhow::bail!("bad config")
    })
    .unwrap_err();
    assert_eq!(
        format!("{error:#}"),
        "cannot make a detector for `artificialNoAnomaly/flat.csv`: bad config"
    );
}
