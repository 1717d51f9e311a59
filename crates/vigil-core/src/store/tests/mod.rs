//! The store's tests, by area, with hand-computed expectations.

mod determinism;
mod histogram;
mod ingest;
mod limits;
mod rates;
mod selector;
mod staleness;

use super::*;
use crate::signal::Sample;

/// A sample of metric `name` with `labels` and no timestamp of its own.
fn sample(name: &str, labels: &[(&str, &str)], value: f64) -> Sample {
    Sample {
        name: name.to_owned(),
        labels: labels.iter().copied().collect(),
        value,
        timestamp_ms: None,
    }
}

/// A counter sample `requests_total{key=...}`.
fn counter(key: &str, value: f64) -> Sample {
    sample("requests_total", &[("key", key)], value)
}

/// Seconds as a timestamp.
fn secs(secs: i64) -> Timestamp {
    Timestamp(secs * 1000)
}

/// A store with the default bounds.
fn store() -> SeriesStore {
    SeriesStore::default()
}

/// The one series `requests_total{key=...}` of the store.
fn key_series(store: &SeriesStore, key: &str) -> SeriesRef {
    let found = store.select(&[
        Matcher::metric_name("requests_total"),
        Matcher::equal("key", key),
    ]);
    assert_eq!(found.len(), 1, "series {key}");
    found[0]
}

/// The points of a series as (seconds, value) over the whole retention, for assertions.
fn points_of(store: &SeriesStore, series: SeriesRef, at: Timestamp) -> Vec<(f64, f64)> {
    store
        .run_points(series, store.config().retention_ms, at)
        .into_iter()
        .map(|point| (point.at.0 as f64 / 1000.0, point.value))
        .collect()
}

/// Whether two floats are equal to 12 significant digits (hand-computed values are exact
/// decimals; the store's are IEEE results).
fn assert_close(actual: Option<f64>, expected: Option<f64>, what: &str) {
    match (actual, expected) {
        (Some(actual), Some(expected)) => assert!(
            (actual - expected).abs() <= 1e-12 * expected.abs().max(1.0),
            "{what}: {actual} != {expected}"
        ),
        _ => assert_eq!(actual, expected, "{what}"),
    }
}
