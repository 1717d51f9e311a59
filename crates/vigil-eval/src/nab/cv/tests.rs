//! Cross-validation on hand-made reports whose right choice is known.

use super::*;
use crate::nab::score::SeriesScore;

/// A series result with one window and the given standard score (other profiles the same).
fn result(category: &str, score: f64) -> SeriesResult {
    let series_score = SeriesScore {
        score,
        ..SeriesScore::default()
    };
    SeriesResult {
        category: category.to_owned(),
        file_name: format!("{category}.csv"),
        n_rows: 100,
        n_windows: 1,
        n_alerts: 0,
        scores: [series_score; 3],
        null_scores: [-1.0; 3],
        perfect_scores: [1.0; 3],
        rows: Vec::new(),
    }
}

fn report(scores: [f64; 3]) -> CorpusReport {
    CorpusReport {
        detector_name: "test".to_owned(),
        series: vec![
            result("a", scores[0]),
            result("b", scores[1]),
            result("c", scores[2]),
        ],
    }
}

#[test]
fn each_fold_is_chosen_without_its_category_and_pooled_over_the_corpus() {
    // Candidate 0 is best on a and b, candidate 1 on c; candidate 1 wins overall by c alone.
    let reports = [report([0.5, 0.5, -1.0]), report([0.0, 0.0, 1.0])];
    let default = report([0.0, 0.0, 0.0]);
    let names = vec!["zero".to_owned(), "one".to_owned()];
    let cross_validation = cross_validate(names, &reports, &default);
    let chosen: Vec<(&str, usize)> = cross_validation
        .folds
        .iter()
        .map(|fold| (fold.category.as_str(), fold.chosen))
        .collect();
    // Without a: b (0.5 vs 0) and c (-1 vs 1) sum to -0.5 vs 1: candidate 1. Without b: the
    // same. Without c: candidate 0.
    assert_eq!(chosen, [("a", 1), ("b", 1), ("c", 0)]);
    let held_out: Vec<Option<f64>> = cross_validation
        .folds
        .iter()
        .map(|fold| fold.held_out.normalised)
        .collect();
    assert_eq!(held_out, [Some(50.0), Some(50.0), Some(0.0)]);
    // Pooled: 0 + 0 + (-1) over null -3 and perfect 3: 100 * 2 / 6.
    let pooled = cross_validation.pooled[0].normalised.unwrap();
    assert!((pooled - 100.0 / 3.0).abs() < 1e-9, "{pooled}");
    assert_eq!(cross_validation.chosen_on_all, 1);
    assert_eq!(
        cross_validation.folds[0].default_held_out.normalised,
        Some(50.0)
    );
    let text = cross_validation.render();
    assert!(text.contains("chosen on every category: one"), "{text}");
}

#[test]
fn ties_go_to_the_earlier_candidate() {
    let reports = [report([0.0, 0.0, 0.0]), report([0.0, 0.0, 0.0])];
    let cross_validation = cross_validate(
        vec!["first".to_owned(), "second".to_owned()],
        &reports,
        &reports[1],
    );
    assert!(cross_validation.folds.iter().all(|fold| fold.chosen == 0));
    assert_eq!(cross_validation.chosen_on_all, 0);
}

#[test]
fn the_grid_is_small_and_valid() {
    let grid = candidate_grid(&AdaptiveConfig::default());
    assert!(grid.len() <= 36, "{}", grid.len());
    for candidate in &grid {
        assert_eq!(candidate.config.validate(), Ok(()), "{}", candidate.name);
    }
}

#[test]
fn the_structure_grid_holds_the_shipped_setting_and_every_structure_once() {
    let shipped = AdaptiveConfig::default();
    let grid = structure_grid(&shipped);
    assert_eq!(grid.len(), 27 * candidate_grid(&shipped).len());
    assert_eq!(
        grid.iter()
            .filter(|candidate| candidate.config == shipped)
            .count(),
        1,
        "the shipped setting is one candidate"
    );
    let mut names: Vec<&str> = grid
        .iter()
        .map(|candidate| candidate.name.as_str())
        .collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), grid.len(), "every candidate has its own name");
    for candidate in &grid {
        assert_eq!(candidate.config.validate(), Ok(()), "{}", candidate.name);
    }
}

#[test]
fn the_sensitivity_variants_change_one_constant_each_by_half_and_double() {
    let shipped = AdaptiveConfig::default();
    let variants = sensitivity_variants(&shipped);
    assert_eq!(
        variants.first(),
        Some(&("shipped".to_owned(), shipped.clone()))
    );
    assert_eq!(variants.len(), 1 + 2 * 7);
    for (name, config) in variants.iter().skip(1) {
        assert_ne!(config, &shipped, "{name} changes nothing");
        assert_eq!(config.validate(), Ok(()), "{name}");
        // Exactly one field differs: the Debug forms differ on one line.
        let (ours, theirs) = (format!("{config:#?}"), format!("{shipped:#?}"));
        let differing = ours
            .lines()
            .zip(theirs.lines())
            .filter(|(a, b)| a != b)
            .count();
        assert_eq!(differing, 1, "{name}");
    }
    let settle: Vec<u32> = variants
        .iter()
        .filter(|(name, _)| name.starts_with("settle_samples"))
        .map(|(_, config)| config.settle_samples)
        .collect();
    assert_eq!(
        settle,
        [shipped.settle_samples / 2, shipped.settle_samples * 2]
    );
}
