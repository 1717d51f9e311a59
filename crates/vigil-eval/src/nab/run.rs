//! Running a streaming detector over every series of a NAB folder and scoring it with NAB's
//! three profiles: per-series results, per-category tables and the normalised totals.
//!
//! The detector is anything that implements [`StreamDetector`]; a fresh one is made for each
//! series, which it sees row by row, probation included (as NAB's detectors do). Only its
//! `alert` is scored; its `score` must lie in `[0, 1]`, which NAB's `AnomalyDetector.run`
//! also demands. A row whose value is not a finite number (the loader keeps such rows, with
//! the value `NaN`) is not given to the detector: its output row is
//! [`RowOutput::Skipped`], and it is never an alert.

use std::fmt::Write as _;

use anyhow::{Context as _, bail};
use vigil_core::time::Timestamp;

use super::data::{Corpus, LabelledSeries};
use super::score::{
    PROFILES, SeriesScore, normalised_score, null_score, perfect_score, score_series,
};

/// What a detector says about one row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DetectorStep {
    /// How anomalous the row looks, from 0 to 1. Checked, not scored.
    pub score: f64,
    /// Whether the detector raises an alert at this row: what NAB scores.
    pub alert: bool,
}

/// A detector fed one row at a time, in order, with state of its own.
pub trait StreamDetector {
    /// Takes the next row (its timestamp in milliseconds since the Unix epoch and its value)
    /// and says whether it alerts. Timestamps never go backwards but may repeat.
    fn step(&mut self, at_ms: i64, value: f64) -> DetectorStep;
}

impl<D: StreamDetector + ?Sized> StreamDetector for Box<D> {
    fn step(&mut self, at_ms: i64, value: f64) -> DetectorStep {
        (**self).step(at_ms, value)
    }
}

/// What the runner made of one row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RowOutput {
    /// The detector saw the row and said this.
    Scored(DetectorStep),
    /// The row's value is not a finite number: the detector did not see it, and it is no
    /// alert.
    Skipped,
}

impl RowOutput {
    /// Whether the row is an alert.
    #[must_use]
    pub fn alert(&self) -> bool {
        match self {
            RowOutput::Scored(step) => step.alert,
            RowOutput::Skipped => false,
        }
    }
}

/// How a detector did on one series.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesResult {
    /// The series' category (its folder under `data/`).
    pub category: String,
    /// The series' file name.
    pub file_name: String,
    /// Its number of rows.
    pub n_rows: usize,
    /// Its number of labelled windows.
    pub n_windows: usize,
    /// The rows where the detector alerted, probation included.
    pub n_alerts: usize,
    /// Its score under each profile, in the order of [`PROFILES`].
    pub scores: [SeriesScore; 3],
    /// The null detector's score under each profile.
    pub null_scores: [f64; 3],
    /// The perfect score under each profile.
    pub perfect_scores: [f64; 3],
    /// One output per row, in file order.
    pub rows: Vec<RowOutput>,
}

/// One profile's totals over a whole corpus.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProfileTotal {
    /// NAB's name for the profile.
    pub profile_name: &'static str,
    /// The detector's raw score, summed over the series.
    pub score: f64,
    /// The null detector's.
    pub null: f64,
    /// The perfect detector's.
    pub perfect: f64,
    /// `100 * (score - null) / (perfect - null)`; `None` when the corpus has no window.
    pub normalised: Option<f64>,
}

/// A detector's results on a whole corpus.
#[derive(Debug, Clone, PartialEq)]
pub struct CorpusReport {
    /// What was run, for the report's title.
    pub detector_name: String,
    /// One result per series, in the corpus' order.
    pub series: Vec<SeriesResult>,
}

/// Runs a fresh detector from `new_detector` over each series of `corpus` and scores it
/// with every profile.
///
/// # Errors
///
/// When `new_detector` fails, or a detector gives a score outside `[0, 1]`.
pub fn run_corpus<D: StreamDetector>(
    corpus: &Corpus,
    detector_name: &str,
    mut new_detector: impl FnMut() -> anyhow::Result<D>,
) -> anyhow::Result<CorpusReport> {
    let mut results = Vec::with_capacity(corpus.series.len());
    for series in &corpus.series {
        let detector = new_detector()
            .with_context(|| format!("cannot make a detector for `{}`", series.key()))?;
        results.push(run_series(series, detector)?);
    }
    Ok(CorpusReport {
        detector_name: detector_name.to_owned(),
        series: results,
    })
}

fn run_series(
    series: &LabelledSeries,
    mut detector: impl StreamDetector,
) -> anyhow::Result<SeriesResult> {
    let mut outputs = Vec::with_capacity(series.values.len());
    // Every row is scored, in file order. A row whose clock went back is given to the
    // detector at the latest time seen: its baselines and seasonal slots assume time moves
    // forward. A row whose value is not a finite number is skipped.
    let mut latest_ms = i64::MIN;
    for (row, (&at_ms, &value)) in series.timestamps_ms.iter().zip(&series.values).enumerate() {
        latest_ms = latest_ms.max(at_ms);
        if !value.is_finite() {
            outputs.push(RowOutput::Skipped);
            continue;
        }
        let step = detector.step(latest_ms, value);
        if !(0.0..=1.0).contains(&step.score) {
            bail!(
                "the detector scored row {row} of `{}` ({}) {}, outside [0, 1]",
                series.key(),
                Timestamp(at_ms).to_rfc3339(),
                step.score
            );
        }
        outputs.push(RowOutput::Scored(step));
    }
    let alerts: Vec<bool> = outputs.iter().map(RowOutput::alert).collect();
    let labels = &series.labels;
    let mut scores = [SeriesScore::default(); 3];
    for (score, profile) in scores.iter_mut().zip(&PROFILES) {
        *score = score_series(labels, &alerts, profile)?;
    }
    Ok(SeriesResult {
        category: series.category.clone(),
        file_name: series.file_name.clone(),
        n_rows: labels.n_rows(),
        n_windows: labels.windows().len(),
        n_alerts: alerts.iter().filter(|&&alert| alert).count(),
        scores,
        null_scores: PROFILES.map(|profile| null_score(labels, &profile)),
        perfect_scores: PROFILES.map(|profile| perfect_score(labels, &profile)),
        rows: outputs,
    })
}

impl CorpusReport {
    /// Each profile's totals over the corpus, in the order of [`PROFILES`].
    #[must_use]
    pub fn totals(&self) -> [ProfileTotal; 3] {
        let mut totals = PROFILES.map(|profile| ProfileTotal {
            profile_name: profile.name,
            score: 0.0,
            null: 0.0,
            perfect: 0.0,
            normalised: None,
        });
        for result in &self.series {
            let per_profile = result
                .scores
                .iter()
                .zip(&result.null_scores)
                .zip(&result.perfect_scores);
            for (total, ((score, null), perfect)) in totals.iter_mut().zip(per_profile) {
                total.score += score.score;
                total.null += null;
                total.perfect += perfect;
            }
        }
        for total in &mut totals {
            total.normalised = normalised_score(total.score, total.null, total.perfect);
        }
        totals
    }

    /// The report as text: a table per category, then the normalised scores.
    #[must_use]
    pub fn render(&self) -> String {
        let mut text = String::new();
        let n_windows: usize = self.series.iter().map(|result| result.n_windows).sum();
        // Writing to a String cannot fail.
        let _ = writeln!(
            text,
            "NAB: {} series, {n_windows} windows; detector: {}",
            self.series.len(),
            self.detector_name
        );
        let _ = writeln!(
            text,
            "found/missed: windows with/without a detection after probation; FP: alerting rows \
             after probation outside every window; S: raw NAB score per profile"
        );
        let mut categories: Vec<&str> = self
            .series
            .iter()
            .map(|result| result.category.as_str())
            .collect();
        categories.dedup();
        for category in categories {
            let rows: Vec<&SeriesResult> = self
                .series
                .iter()
                .filter(|result| result.category == category)
                .collect();
            render_category(&mut text, category, &rows);
        }

        let _ = writeln!(
            text,
            "\nnormalised NAB score (null detector 0, perfect 100):"
        );
        let _ = writeln!(
            text,
            "{:<20} {:>10} {:>10} {:>10} {:>10}",
            "profile", "S", "S_null", "S_perfect", "score"
        );
        for total in self.totals() {
            let normalised = total
                .normalised
                .map_or_else(|| "n/a".to_owned(), |score| format!("{score:.2}"));
            let _ = writeln!(
                text,
                "{:<20} {:>10.3} {:>10.3} {:>10.3} {:>10}",
                total.profile_name, total.score, total.null, total.perfect, normalised
            );
        }
        text
    }
}

fn render_category(text: &mut String, category: &str, rows: &[&SeriesResult]) {
    const NAME_WIDTH: usize = 44;
    let _ = writeln!(
        text,
        "\n{category:<NAME_WIDTH$} {:>6} {:>7} {:>5} {:>6} {:>5} {:>10} {:>10} {:>10}",
        "rows", "windows", "found", "missed", "FP", "S standard", "S low_FP", "S low_FN"
    );
    let mut total = CategoryTotal::default();
    for result in rows {
        let [standard, low_false_positives, low_false_negatives] = &result.scores;
        let _ = writeln!(
            text,
            "  {:<width$} {:>6} {:>7} {:>5} {:>6} {:>5} {:>10.3} {:>10.3} {:>10.3}",
            result.file_name,
            result.n_rows,
            result.n_windows,
            standard.n_windows_detected,
            standard.n_windows_missed,
            standard.n_false_positives,
            standard.score,
            low_false_positives.score,
            low_false_negatives.score,
            width = NAME_WIDTH - 2,
        );
        total.add(result);
    }
    let [
        standard_total,
        low_false_positives_total,
        low_false_negatives_total,
    ] = total.scores;
    let _ = writeln!(
        text,
        "  {:<width$} {:>6} {:>7} {:>5} {:>6} {:>5} {:>10.3} {:>10.3} {:>10.3}",
        "(total)",
        total.n_rows,
        total.n_windows,
        total.n_found,
        total.n_missed,
        total.n_false_positives,
        standard_total,
        low_false_positives_total,
        low_false_negatives_total,
        width = NAME_WIDTH - 2,
    );
}

#[derive(Default)]
struct CategoryTotal {
    n_rows: usize,
    n_windows: usize,
    n_found: usize,
    n_missed: usize,
    n_false_positives: usize,
    scores: [f64; 3],
}

impl CategoryTotal {
    fn add(&mut self, result: &SeriesResult) {
        let [standard, ..] = &result.scores;
        self.n_rows += result.n_rows;
        self.n_windows += result.n_windows;
        self.n_found += standard.n_windows_detected;
        self.n_missed += standard.n_windows_missed;
        self.n_false_positives += standard.n_false_positives;
        for (total, score) in self.scores.iter_mut().zip(&result.scores) {
            *total += score.score;
        }
    }
}

#[cfg(test)]
mod tests;
