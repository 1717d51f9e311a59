//! The cardinality limit, bounded memory, and the memory a LiteLLM series takes.

use super::*;
use crate::store::bench_support::{self, LitellmWorkload};

#[test]
fn new_series_past_the_limit_are_refused_and_existing_ones_keep_updating() {
    let mut store = SeriesStore::new(StoreConfig {
        max_series: 3,
        ..StoreConfig::default()
    });
    let first: Vec<Sample> = ["a", "b", "c", "d", "e"]
        .iter()
        .map(|key| counter(key, 1.0))
        .collect();
    let report = store.ingest("gw", secs(0), &first);
    assert_eq!((report.n_new_series, report.n_refused), (3, 2));
    let example = report.refused_example.unwrap();
    assert_eq!(example.to_string(), r#"requests_total{key="d"} from `gw`"#);
    assert_eq!(store.n_series(), 3);

    let second: Vec<Sample> = ["a", "b", "c", "d", "e"]
        .iter()
        .map(|key| counter(key, 2.0))
        .collect();
    let report = store.ingest("gw", secs(15), &second);
    assert_eq!((report.n_appended, report.n_refused), (3, 2));
    assert_eq!(store.latest(key_series(&store, "c")).unwrap().value, 2.0);
    assert!(store.select(&[Matcher::equal("key", "d")]).is_empty());
}

#[test]
fn a_source_limit_keeps_one_noisy_source_from_taking_every_slot() {
    let mut store = SeriesStore::new(StoreConfig {
        max_series: 10,
        ..StoreConfig::default()
    });
    store.set_source_max_series("noisy", Some(2));
    let flood: Vec<Sample> = (0..5).map(|idx| counter(&idx.to_string(), 1.0)).collect();
    let report = store.ingest("noisy", secs(0), &flood);
    assert_eq!((report.n_new_series, report.n_refused), (2, 3));
    let report = store.ingest("quiet", secs(0), &flood);
    assert_eq!((report.n_new_series, report.n_refused), (5, 0));
    store.set_source_max_series("noisy", None);
    assert_eq!(store.ingest("noisy", secs(15), &flood).n_new_series, 3);
}

/// `n` samples of series no store has seen, unique to `round`.
fn fresh_series(round: usize, n: usize) -> Vec<Sample> {
    (0..n)
        .map(|idx| {
            sample(
                "flood_total",
                &[("request_id", &format!("{round}-{idx}")), ("team", "ml")],
                1.0,
            )
        })
        .collect()
}

#[test]
fn memory_stays_bounded_under_a_flood_of_new_series() {
    let config = StoreConfig {
        max_series: 100,
        ..StoreConfig::default()
    };
    let mut control = SeriesStore::new(config.clone());
    let mut flooded = SeriesStore::new(config);
    let existing = fresh_series(usize::MAX, 100);
    for round in 0..10 {
        let at = secs(round as i64 * 15);
        control.ingest("gw", at, &existing);
        let mut samples = existing.clone();
        samples.extend(fresh_series(round, 1000));
        let report = flooded.ingest("gw", at, &samples);
        assert_eq!(report.n_refused, 1000);
        assert!(report.refused_example.is_some());
    }
    // The refused series left nothing behind: not a string, not a slot. (The flooded store
    // even holds a little less: it keeps no scrape-order cache for a scrape larger than
    // `max_series`.)
    assert_eq!(flooded.n_series(), 100);
    assert!(flooded.memory_bytes() <= control.memory_bytes());
    assert!(control.memory_bytes() - flooded.memory_bytes() <= 100 * 4);
}

#[test]
fn memory_stays_bounded_under_series_churn() {
    // Every scrape replaces all series with new ones (request ids as labels, a classic
    // cardinality bug): the old ones go stale and expire, and their strings are freed.
    let mut store = SeriesStore::new(StoreConfig {
        max_series: 1000,
        retention_ms: 60_000,
        ..StoreConfig::default()
    });
    let mut memory_at = Vec::new();
    for round in 0..80 {
        store.ingest("gw", secs(round as i64 * 15), &fresh_series(round, 100));
        memory_at.push(store.memory_bytes());
    }
    assert!(store.n_series() <= 600, "{}", store.n_series());
    let settled = memory_at[20];
    let latest = memory_at[79];
    assert!(latest <= settled + settled / 20, "{settled} then {latest}");
}

#[test]
fn a_litellm_series_holding_an_hour_takes_at_most_4_kib() {
    let store = bench_support::store_after_one_hour(1000);
    assert_eq!(store.n_series(), 1000);
    let series = store.select(&[Matcher::metric_name(bench_support::METRIC_NAME)]);
    let at = Timestamp(bench_support::START_MS + 239 * bench_support::SCRAPE_INTERVAL_MS);
    assert_eq!(store.run_points(series[0], 3_600_000, at).len(), 240);
    assert_eq!(store.identity(series[0]).unwrap().labels.len(), 20);
    let per_series = store.memory_bytes() / store.n_series();
    assert!(per_series <= 4096, "{per_series} bytes per series");
}

#[test]
fn memory_bytes_counts_what_a_series_holds() {
    // One series: its labels, its ring and its strings must all show up.
    let mut store = store();
    let empty = store.memory_bytes();
    let mut workload = LitellmWorkload::new(1);
    let (at, samples) = workload.next_scrape();
    store.ingest("gw", at, samples);
    let one_point = store.memory_bytes();
    let label_text: usize = samples[0]
        .labels
        .iter()
        .map(|(name, value)| name.len() + value.len())
        .sum();
    assert!(
        one_point - empty >= label_text + 20 * 8 + 4 * 12,
        "{}",
        one_point - empty
    );
    for _ in 0..239 {
        let (at, samples) = workload.next_scrape();
        store.ingest("gw", at, samples);
    }
    // 240 points in a ring grown to 256: 3 KiB of points.
    assert!(store.memory_bytes() - one_point >= (256 - 4) * 12);
}

#[test]
fn a_report_names_the_positions_of_the_refused_samples() {
    let mut store = SeriesStore::new(StoreConfig::default());
    store.set_source_max_series("push:evals", Some(2));
    let pushed = [counter("a", 1.0), counter("b", 1.0), counter("c", 1.0)];
    let report = store.ingest_partial("push:evals", secs(0), &pushed);
    assert_eq!(report.refused_samples, [2]);
    // Known series are taken whatever their place; only new ones are refused.
    let pushed = [counter("d", 1.0), counter("b", 2.0), counter("e", 1.0)];
    let report = store.ingest_partial("push:evals", secs(1), &pushed);
    assert_eq!((report.n_appended, report.refused_samples), (1, vec![0, 2]));
    let report = store.ingest("gw-full", secs(1), &pushed);
    assert!(report.refused_samples.is_empty());
}

#[test]
fn holds_answers_for_a_series_until_the_sweep_drops_it() {
    let mut store = SeriesStore::new(StoreConfig {
        retention_ms: 60_000,
        ..StoreConfig::default()
    });
    let labels = |key: &str| -> crate::signal::Labels { [("key", key)].into_iter().collect() };
    store.ingest_partial("push:evals", secs(0), &[counter("a", 1.0)]);
    assert!(store.holds("push:evals", "requests_total", &labels("a")));
    assert!(!store.holds("push:evals", "requests_total", &labels("b")));
    assert!(!store.holds("gw", "requests_total", &labels("a")));
    assert!(!store.holds("push:evals", "requests", &labels("a")));
    // An empty label is no label, here as everywhere.
    let with_empty: crate::signal::Labels = [("key", "a"), ("zone", "")].into_iter().collect();
    assert!(store.holds("push:evals", "requests_total", &with_empty));

    assert_eq!(store.advance_to(secs(30)), 0);
    assert_eq!(store.n_dropped_series(), 0);
    // 61 s: the point left the window, and a sweep is due (one every eighth of the retention).
    assert_eq!(store.advance_to(secs(61)), 1);
    assert_eq!(store.n_dropped_series(), 1);
    assert!(!store.holds("push:evals", "requests_total", &labels("a")));
    // Time never goes back, and nothing more is due.
    assert_eq!(store.advance_to(secs(0)), 0);
}
