//! Leave-one-category-out cross-validation of the adaptive detector's settings on a NAB
//! folder: does a setting chosen on some kinds of data do well on a kind it never saw?
//!
//! Every candidate of a small fixed grid ([`candidate_grid`]) is run once over every series.
//! Then, for each category (folder under `data/`) left out in turn, the candidate with the
//! best normalised standard score on the *other* categories is chosen (ties go to the
//! earlier candidate of the grid) and the left-out category is scored with it, normalised by
//! that category's own null and perfect scores. The pooled cross-validated score scores every
//! series with the candidate chosen without its category and normalises the totals over the
//! whole corpus, as NAB does. The candidate chosen on all categories is what the procedure
//! would ship. Everything is deterministic: the grid is fixed and the runs are independent.

use std::fmt::Write as _;

use vigil_core::detector::adaptive::{AdaptiveConfig, AdaptiveDetector};
use vigil_core::time::Timestamp;

use super::data::Corpus;
use super::run::{CorpusReport, DetectorStep, SeriesResult, StreamDetector, run_corpus};
use super::score::{PROFILES, normalised_score};

/// [`AdaptiveDetector`] seen as a [`StreamDetector`].
#[derive(Debug, Clone)]
pub struct AdaptiveStream(pub AdaptiveDetector);

impl StreamDetector for AdaptiveStream {
    fn step(&mut self, at_ms: i64, value: f64) -> DetectorStep {
        let step = self.0.step(Timestamp(at_ms), value);
        DetectorStep {
            score: step.score,
            alert: step.alert,
        }
    }
}

/// One setting of the detector that cross-validation may choose.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// A short name for reports (`p=1e-6 recent=10`).
    pub name: String,
    /// The detector's configuration.
    pub config: AdaptiveConfig,
}

/// The alert probabilities of the grid.
pub const GRID_ALERT_PROBABILITIES: [f64; 8] = [1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8, 1e-9];

/// The lengths of the short mean (`recent_samples`) of the grid.
pub const GRID_RECENT_SAMPLES: [usize; 2] = [5, 10];

/// The refractory periods (`refractory_samples`) of the grid.
pub const GRID_REFRACTORY_SAMPLES: [u32; 2] = [200, 400];

/// The fixed grid: every alert probability of [`GRID_ALERT_PROBABILITIES`] with every
/// short-mean length of [`GRID_RECENT_SAMPLES`] and every refractory period of
/// [`GRID_REFRACTORY_SAMPLES`] (32 candidates), everything else as in `base`.
#[must_use]
pub fn candidate_grid(base: &AdaptiveConfig) -> Vec<Candidate> {
    let mut grid = Vec::new();
    for &recent_samples in &GRID_RECENT_SAMPLES {
        for &refractory_samples in &GRID_REFRACTORY_SAMPLES {
            for &alert_probability in &GRID_ALERT_PROBABILITIES {
                grid.push(Candidate {
                    name: format!(
                        "p={alert_probability:e} recent={recent_samples} refractory={refractory_samples}"
                    ),
                    config: AdaptiveConfig {
                        alert_probability,
                        recent_samples,
                        refractory_samples,
                        ..base.clone()
                    },
                });
            }
        }
    }
    grid
}

/// The settle lengths (`settle_samples`) of the structure grid.
pub const STRUCTURE_SETTLE_SAMPLES: [u32; 3] = [10, 20, 40];

/// The caps on one point's surprise (`max_surprise`) of the structure grid.
pub const STRUCTURE_MAX_SURPRISES: [f64; 3] = [10.0, 20.0, 40.0];

/// The seasonal learning rates (`season_learning_rate`) of the structure grid.
pub const STRUCTURE_SEASON_LEARNING_RATES: [f64; 3] = [0.1, 0.2, 0.4];

/// [`candidate_grid`] over every structure of a small grid as well: the shipped structural
/// constants the sensitivity table shows the score to depend on most (`settle_samples`,
/// `max_surprise`, `season_learning_rate`, each halved, kept and doubled: 27 structures,
/// 864 candidates). Cross-validated over it, the structure is chosen on the folds kept in
/// too, so the pooled score no longer takes the shipped structure, chosen on the whole
/// corpus, as given.
#[must_use]
pub fn structure_grid(base: &AdaptiveConfig) -> Vec<Candidate> {
    let mut grid = Vec::new();
    for &settle_samples in &STRUCTURE_SETTLE_SAMPLES {
        for &max_surprise in &STRUCTURE_MAX_SURPRISES {
            for &season_learning_rate in &STRUCTURE_SEASON_LEARNING_RATES {
                let structure = AdaptiveConfig {
                    settle_samples,
                    max_surprise,
                    season_learning_rate,
                    ..base.clone()
                };
                grid.extend(candidate_grid(&structure).into_iter().map(|candidate| {
                    Candidate {
                        name: format!(
                            "settle={settle_samples} cap={max_surprise} season_rate={season_learning_rate} {}",
                            candidate.name
                        ),
                        config: candidate.config,
                    }
                }));
            }
        }
    }
    grid
}

/// Runs the adaptive detector with `config` over every series of `corpus`.
///
/// # Errors
///
/// When the config is invalid or a score is out of range.
pub fn run_config(
    corpus: &Corpus,
    name: &str,
    config: &AdaptiveConfig,
) -> anyhow::Result<CorpusReport> {
    config.validate()?;
    run_corpus(corpus, name, || {
        Ok(AdaptiveStream(AdaptiveDetector::new(config.clone())))
    })
}

/// One candidate's report, once its thread has run it.
type Slot = Option<anyhow::Result<CorpusReport>>;

/// Runs every candidate over `corpus`, on up to `n_threads` threads; the reports come back
/// in the order of `candidates` whatever the threads did.
///
/// # Errors
///
/// The first candidate (in grid order) that failed.
pub fn run_candidates(
    corpus: &Corpus,
    candidates: &[Candidate],
    n_threads: usize,
) -> anyhow::Result<Vec<CorpusReport>> {
    let n_threads = n_threads.clamp(1, candidates.len().max(1));
    let mut slots: Vec<Slot> = candidates.iter().map(|_| None).collect();
    std::thread::scope(|scope| {
        // Candidate `i` goes to thread `i % n_threads`: a fixed split.
        let mut chunks: Vec<Vec<(usize, &mut Slot)>> = (0..n_threads).map(|_| Vec::new()).collect();
        for (idx, slot) in slots.iter_mut().enumerate() {
            if let Some(chunk) = chunks.get_mut(idx % n_threads) {
                chunk.push((idx, slot));
            }
        }
        for chunk in chunks {
            scope.spawn(move || {
                for (idx, slot) in chunk {
                    if let Some(candidate) = candidates.get(idx) {
                        *slot = Some(run_config(corpus, &candidate.name, &candidate.config));
                    }
                }
            });
        }
    });
    slots
        .into_iter()
        .map(|slot| slot.unwrap_or_else(|| Err(anyhow::anyhow!("a candidate was not run"))))
        .collect()
}

/// Scores summed over some series under one profile, and normalised.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SubsetScore {
    /// The detector's raw score.
    pub score: f64,
    /// The null detector's.
    pub null: f64,
    /// The perfect detector's.
    pub perfect: f64,
    /// `100 * (score - null) / (perfect - null)`; `None` without windows.
    pub normalised: Option<f64>,
}

impl SubsetScore {
    fn add(&mut self, result: &SeriesResult, profile_idx: usize) {
        self.score += result
            .scores
            .get(profile_idx)
            .map_or(0.0, |score| score.score);
        self.null += result.null_scores.get(profile_idx).copied().unwrap_or(0.0);
        self.perfect += result
            .perfect_scores
            .get(profile_idx)
            .copied()
            .unwrap_or(0.0);
        self.normalised = normalised_score(self.score, self.null, self.perfect);
    }

    fn zero() -> SubsetScore {
        SubsetScore {
            score: 0.0,
            null: 0.0,
            perfect: 0.0,
            normalised: None,
        }
    }
}

/// The score of `report` over the series that `keep` accepts, under profile `profile_idx`.
#[must_use]
pub fn subset_score(
    report: &CorpusReport,
    profile_idx: usize,
    keep: impl Fn(&SeriesResult) -> bool,
) -> SubsetScore {
    let mut total = SubsetScore::zero();
    for result in report.series.iter().filter(|result| keep(result)) {
        total.add(result, profile_idx);
    }
    total
}

/// One fold: a category left out.
#[derive(Debug, Clone, PartialEq)]
pub struct Fold {
    /// The category left out.
    pub category: String,
    /// The index in the grid of the candidate chosen on the other categories.
    pub chosen: usize,
    /// Its normalised standard score on the other categories.
    pub training: Option<f64>,
    /// The left-out category scored with the chosen candidate (standard profile).
    pub held_out: SubsetScore,
    /// The left-out category scored with the shipped default (standard profile).
    pub default_held_out: SubsetScore,
}

/// The whole cross-validation.
#[derive(Debug, Clone, PartialEq)]
pub struct CrossValidation {
    /// The candidates' names, in grid order.
    pub candidate_names: Vec<String>,
    /// One fold per category, in the corpus' order.
    pub folds: Vec<Fold>,
    /// Every series scored by the candidate chosen without its category, per profile.
    pub pooled: [SubsetScore; 3],
    /// The shipped default over the whole corpus, per profile.
    pub default_whole: [SubsetScore; 3],
    /// The candidate chosen on every category (what the procedure would ship).
    pub chosen_on_all: usize,
    /// Its score over the whole corpus, per profile (an in-sample figure).
    pub chosen_on_all_whole: [SubsetScore; 3],
}

/// The best candidate over the series that `keep` accepts (standard profile); ties go to the
/// earlier candidate, and a candidate with no normalised score never wins over one with.
fn best_candidate(
    reports: &[CorpusReport],
    keep: impl Fn(&SeriesResult) -> bool,
) -> (usize, Option<f64>) {
    let mut best: (usize, Option<f64>) = (0, None);
    for (idx, report) in reports.iter().enumerate() {
        let normalised = subset_score(report, 0, &keep).normalised;
        let better = match (normalised, best.1) {
            (Some(score), Some(best_score)) => score > best_score,
            (Some(_), None) => true,
            (None, _) => false,
        };
        if better || idx == 0 {
            best = (idx, normalised);
        }
    }
    best
}

/// Cross-validates, leaving one category out at a time, from the candidates' reports (in
/// grid order, each over the same corpus) and the shipped default's report.
#[must_use]
pub fn cross_validate(
    candidate_names: Vec<String>,
    reports: &[CorpusReport],
    default_report: &CorpusReport,
) -> CrossValidation {
    let mut categories: Vec<&str> = default_report
        .series
        .iter()
        .map(|result| result.category.as_str())
        .collect();
    categories.dedup();
    let mut folds = Vec::new();
    let mut pooled = [SubsetScore::zero(); 3];
    for category in categories {
        let in_fold = |result: &SeriesResult| result.category == category;
        let (chosen, training) = best_candidate(reports, |result| !in_fold(result));
        let Some(chosen_report) = reports.get(chosen) else {
            continue;
        };
        for (profile_idx, total) in pooled.iter_mut().enumerate() {
            for result in chosen_report.series.iter().filter(|result| in_fold(result)) {
                total.add(result, profile_idx);
            }
        }
        folds.push(Fold {
            category: category.to_owned(),
            chosen,
            training,
            held_out: subset_score(chosen_report, 0, in_fold),
            default_held_out: subset_score(default_report, 0, in_fold),
        });
    }
    let (chosen_on_all, _) = best_candidate(reports, |_| true);
    let whole = |report: Option<&CorpusReport>| {
        [0, 1, 2].map(|profile_idx| {
            report.map_or(SubsetScore::zero(), |report| {
                subset_score(report, profile_idx, |_| true)
            })
        })
    };
    CrossValidation {
        candidate_names,
        folds,
        pooled,
        default_whole: whole(Some(default_report)),
        chosen_on_all,
        chosen_on_all_whole: whole(reports.get(chosen_on_all)),
    }
}

fn format_normalised(score: &SubsetScore) -> String {
    score.normalised.map_or_else(
        || format!("n/a (S {:.3})", score.score),
        |normalised| format!("{normalised:.2}"),
    )
}

impl CrossValidation {
    /// The report as text: the folds, the pooled score, the choice on every category.
    #[must_use]
    pub fn render(&self) -> String {
        let mut text = String::new();
        let name = |idx: usize| {
            self.candidate_names
                .get(idx)
                .map_or("?", String::as_str)
                .to_owned()
        };
        let _ = writeln!(
            text,
            "leave-one-category-out cross-validation over {} candidates (chosen by the normalised standard score on the other categories)",
            self.candidate_names.len()
        );
        let _ = writeln!(
            text,
            "{:<22} {:<36} {:>9} {:>16} {:>16}",
            "held-out category", "chosen candidate", "training", "held-out", "default held-out"
        );
        for fold in &self.folds {
            let training = fold
                .training
                .map_or_else(|| "n/a".to_owned(), |score| format!("{score:.2}"));
            let _ = writeln!(
                text,
                "{:<22} {:<36} {:>9} {:>16} {:>16}",
                fold.category,
                name(fold.chosen),
                training,
                format_normalised(&fold.held_out),
                format_normalised(&fold.default_held_out),
            );
        }
        let _ = writeln!(
            text,
            "\npooled (each series scored by the candidate chosen without its category; normalised over the corpus):"
        );
        let _ = writeln!(
            text,
            "{:<20} {:>12} {:>16} {:>22}",
            "profile", "CV score", "default score", "chosen on all (in-sample)"
        );
        for (profile_idx, profile) in PROFILES.iter().enumerate() {
            let cell = |scores: &[SubsetScore; 3]| {
                scores
                    .get(profile_idx)
                    .map_or_else(|| "n/a".to_owned(), format_normalised)
            };
            let _ = writeln!(
                text,
                "{:<20} {:>12} {:>16} {:>22}",
                profile.name,
                cell(&self.pooled),
                cell(&self.default_whole),
                cell(&self.chosen_on_all_whole),
            );
        }
        let _ = writeln!(
            text,
            "\nchosen on every category: {}",
            name(self.chosen_on_all)
        );
        text
    }
}

/// One line of an ablation table: a variant of the method, cross-validated with the same
/// grid, and its own setting scored on the whole corpus.
#[derive(Debug, Clone, PartialEq)]
pub struct Ablation {
    /// What the variant changes.
    pub name: String,
    /// The pooled cross-validated standard score over the variant's grid.
    pub cross_validated: Option<f64>,
    /// The variant's base setting on the whole corpus (standard profile).
    pub whole: Option<f64>,
}

/// Cross-validates each variant (a base config for [`candidate_grid`]) and scores its base on
/// the whole corpus.
///
/// # Errors
///
/// When a run fails.
pub fn ablations(
    corpus: &Corpus,
    variants: &[(String, AdaptiveConfig)],
    n_threads: usize,
) -> anyhow::Result<Vec<Ablation>> {
    let mut lines = Vec::new();
    for (name, base) in variants {
        let grid = candidate_grid(base);
        let reports = run_candidates(corpus, &grid, n_threads)?;
        let base_report = run_config(corpus, name, base)?;
        let names = grid.into_iter().map(|candidate| candidate.name).collect();
        let cross_validation = cross_validate(names, &reports, &base_report);
        lines.push(Ablation {
            name: name.clone(),
            cross_validated: cross_validation
                .pooled
                .first()
                .and_then(|score| score.normalised),
            whole: cross_validation
                .default_whole
                .first()
                .and_then(|score| score.normalised),
        });
    }
    Ok(lines)
}

/// The variants of the ablation table: the shipped method, then the method with one idea
/// turned on (the variants the shipped setting leaves off) or off at a time.
#[must_use]
pub fn ablation_variants(shipped: &AdaptiveConfig) -> Vec<(String, AdaptiveConfig)> {
    let variant = |name: &str, change: fn(&mut AdaptiveConfig)| {
        let mut config = shipped.clone();
        change(&mut config);
        (name.to_owned(), config)
    };
    vec![
        variant("shipped", |_| {}),
        variant("+ sliding history of 2000 short means", |config| {
            config.history_window_samples = 2000;
        }),
        variant("+ sliding history of 4000 short means", |config| {
            config.history_window_samples = 4000;
        }),
        variant("+ robust spread (mean absolute deviation)", |config| {
            config.robust_spread = true;
        }),
        variant("+ single-point time scale", |config| {
            config.point_scale = true;
        }),
        variant("+ 60-sample time scale", |config| {
            config.long_scale_samples = 60;
        }),
        variant("+ empirical tail, peaks over threshold", |config| {
            config.empirical_tail = true;
            config.alert_probability = 1e-2;
        }),
        variant("+ ensemble: normal and empirical tails", |config| {
            config.ensemble_tail_probability = 1e-3;
        }),
        variant("- seasonal discount", |config| config.season_secs = 0),
        variant("- noise floor", |config| config.noise_floor_ratio = 0.0),
    ]
}

/// The variants of the sensitivity table: the shipped method, then each of its structural
/// constants (those the grid does not choose) halved and doubled, one at a time. A method
/// fitted to the corpus it was tuned on sits on a sharp peak: its cross-validated score falls
/// steeply on either side of the shipped constants, even with the grid re-chosen.
#[must_use]
pub fn sensitivity_variants(shipped: &AdaptiveConfig) -> Vec<(String, AdaptiveConfig)> {
    let mut variants = vec![("shipped".to_owned(), shipped.clone())];
    for factor in [0.5, 2.0] {
        let scaled = |value: f64| value * factor;
        let scaled_count = |value: u32| {
            let scaled = (f64::from(value) * factor).round();
            if scaled >= f64::from(u32::MAX) {
                u32::MAX
            } else {
                // In range: a positive count times 0.5 or 2.
                scaled as u32
            }
        };
        let changes: [(&str, AdaptiveConfig); 7] = [
            (
                "baseline_half_life_samples",
                AdaptiveConfig {
                    baseline_half_life_samples: scaled(shipped.baseline_half_life_samples),
                    ..shipped.clone()
                },
            ),
            (
                "history_half_life_samples",
                AdaptiveConfig {
                    history_half_life_samples: scaled(shipped.history_half_life_samples),
                    ..shipped.clone()
                },
            ),
            (
                "settle_samples",
                AdaptiveConfig {
                    settle_samples: scaled_count(shipped.settle_samples),
                    ..shipped.clone()
                },
            ),
            (
                "warmup_samples",
                AdaptiveConfig {
                    warmup_samples: scaled_count(shipped.warmup_samples),
                    ..shipped.clone()
                },
            ),
            (
                "max_surprise",
                AdaptiveConfig {
                    max_surprise: scaled(shipped.max_surprise),
                    ..shipped.clone()
                },
            ),
            (
                "season_learning_rate",
                AdaptiveConfig {
                    season_learning_rate: scaled(shipped.season_learning_rate).min(1.0),
                    ..shipped.clone()
                },
            ),
            (
                "noise_floor_ratio",
                AdaptiveConfig {
                    noise_floor_ratio: scaled(shipped.noise_floor_ratio),
                    ..shipped.clone()
                },
            ),
        ];
        for (field, config) in changes {
            variants.push((format!("{field} x{factor}"), config));
        }
    }
    variants
}

/// An ablation table as text.
#[must_use]
pub fn render_ablations(lines: &[Ablation]) -> String {
    let mut text = String::new();
    let _ = writeln!(
        text,
        "{:<44} {:>10} {:>14}",
        "variant", "CV score", "whole (base)"
    );
    let cell = |score: Option<f64>| score.map_or_else(|| "n/a".to_owned(), |s| format!("{s:.2}"));
    for line in lines {
        let _ = writeln!(
            text,
            "{:<44} {:>10} {:>14}",
            line.name,
            cell(line.cross_validated),
            cell(line.whole)
        );
    }
    text
}

#[cfg(test)]
mod tests;
