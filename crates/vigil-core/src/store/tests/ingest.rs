//! Ingesting, selecting, and the ring's bounds by count and time.

use super::*;

#[test]
fn ingest_creates_series_and_select_finds_them_in_label_order() {
    let mut store = store();
    let report = store.ingest(
        "gw",
        secs(10),
        &[
            counter("b", 1.0),
            counter("a", 2.0),
            sample("other", &[], 3.0),
        ],
    );
    assert_eq!(report.n_appended, 3);
    assert_eq!(report.n_new_series, 3);
    assert_eq!(store.n_series(), 3);
    assert_eq!(store.n_series_of("gw"), 3);

    let found = store.select(&[Matcher::metric_name("requests_total")]);
    let keys: Vec<_> = found
        .iter()
        .map(|&series| store.label_value(series, "key").unwrap())
        .collect();
    assert_eq!(keys, ["a", "b"]);
    let latest = store.latest(found[0]).unwrap();
    assert_eq!((latest.at, latest.value), (secs(10), 2.0));

    let identity = store.identity(found[1]).unwrap();
    assert_eq!(identity.to_string(), r#"requests_total{key="b"} from `gw`"#);
    assert_eq!(
        store.label_value(found[1], METRIC_NAME_LABEL),
        Some("requests_total")
    );
    assert_eq!(store.label_value(found[1], SOURCE_LABEL), Some("gw"));
    assert_eq!(store.label_value(found[1], "absent"), None);

    // A second scrape appends to the same series instead of creating new ones.
    let report = store.ingest("gw", secs(25), &[counter("b", 4.0), counter("a", 5.0)]);
    assert_eq!(report.n_new_series, 0);
    assert_eq!(report.n_appended, 2);
    assert_eq!(
        points_of(&store, found[1], secs(25)),
        [(10.0, 1.0), (25.0, 4.0)]
    );
}

#[test]
fn the_same_labels_from_two_sources_are_two_series() {
    let mut store = store();
    store.ingest("eu", secs(0), &[counter("a", 1.0)]);
    store.ingest("us", secs(0), &[counter("a", 100.0)]);
    let found = store.select(&[Matcher::metric_name("requests_total")]);
    let sources: Vec<_> = found
        .iter()
        .map(|&series| store.label_value(series, SOURCE_LABEL).unwrap())
        .collect();
    assert_eq!(sources, ["eu", "us"]);
    let only_us = store.select(&[
        Matcher::metric_name("requests_total"),
        Matcher::equal(SOURCE_LABEL, "us"),
    ]);
    assert_eq!(store.latest(only_us[0]).unwrap().value, 100.0);
}

#[test]
fn a_sample_timestamp_wins_over_the_scrape_time() {
    let mut store = store();
    let mut stamped = counter("a", 1.0);
    stamped.timestamp_ms = Some(7_500);
    store.ingest("gw", secs(10), &[stamped]);
    let series = key_series(&store, "a");
    assert_eq!(store.latest(series).unwrap().at, Timestamp(7_500));
}

#[test]
fn out_of_order_and_repeated_samples() {
    let mut store = store();
    store.ingest("gw", secs(10), &[counter("a", 1.0)]);
    let mut early = counter("a", 2.0);
    early.timestamp_ms = Some(5_000);
    let report = store.ingest_partial("gw", secs(11), &[early]);
    assert_eq!(report.n_out_of_order, 1);
    // The same point again (an exporter with its own unchanged timestamp) is ignored
    // silently; a different value at the same time is out of order.
    let mut same = counter("a", 1.0);
    same.timestamp_ms = Some(10_000);
    let mut different = counter("a", 9.0);
    different.timestamp_ms = Some(10_000);
    let report = store.ingest_partial("gw", secs(12), &[same, different]);
    assert_eq!((report.n_appended, report.n_out_of_order), (0, 1));
    let series = key_series(&store, "a");
    assert_eq!(points_of(&store, series, secs(12)), [(10.0, 1.0)]);
}

#[test]
fn nan_values_are_kept_and_never_taken_for_staleness() {
    let mut store = store();
    // Even a NaN with the staleness marker's bits is stored as an ordinary NaN.
    let marker_lookalike = f64::from_bits(0x7ff0_0000_0000_0002);
    store.ingest("gw", secs(0), &[counter("a", marker_lookalike)]);
    let series = key_series(&store, "a");
    assert!(!store.is_stale(series));
    assert!(store.latest(series).unwrap().value.is_nan());
}

#[test]
fn the_ring_keeps_at_most_max_points() {
    let mut store = SeriesStore::new(StoreConfig {
        max_points_per_series: 3,
        ..StoreConfig::default()
    });
    for idx in 0..6 {
        store.ingest("gw", secs(idx * 15), &[counter("a", idx as f64)]);
    }
    let series = key_series(&store, "a");
    assert_eq!(
        points_of(&store, series, secs(75)),
        [(45.0, 3.0), (60.0, 4.0), (75.0, 5.0)]
    );
}

#[test]
fn the_ring_keeps_only_the_retention_window() {
    let mut store = SeriesStore::new(StoreConfig {
        retention_ms: 60_000,
        ..StoreConfig::default()
    });
    for idx in 0..10 {
        store.ingest("gw", secs(idx * 15), &[counter("a", idx as f64)]);
    }
    let series = key_series(&store, "a");
    // Newest at 135 s: points at or before 75 s are gone.
    assert_eq!(
        points_of(&store, series, secs(135)),
        [(90.0, 6.0), (105.0, 7.0), (120.0, 8.0), (135.0, 9.0)]
    );
    // A sample older than the retention window is refused instead of stored.
    let mut ancient = counter("new", 1.0);
    ancient.timestamp_ms = Some(10_000);
    let report = store.ingest_partial("gw", secs(136), &[ancient]);
    assert_eq!((report.n_too_old, report.n_new_series), (1, 0));
}

#[test]
fn pushed_series_expire_after_the_retention_and_their_handles_die() {
    let mut store = SeriesStore::new(StoreConfig {
        retention_ms: 60_000,
        ..StoreConfig::default()
    });
    store.ingest_partial("push", secs(0), &[counter("gone", 1.0)]);
    let gone = key_series(&store, "gone");
    store.ingest_partial("push", secs(30), &[counter("kept", 1.0)]);
    assert_eq!(store.evict_expired(secs(59)), 0);
    assert_eq!(store.evict_expired(secs(60)), 1);
    assert_eq!(store.n_series(), 1);
    assert_eq!(store.latest(gone), None);
    assert_eq!(store.identity(gone), None);
    // A new series may reuse the slot; the old handle still answers nothing.
    store.ingest_partial("push", secs(61), &[counter("new", 1.0)]);
    let new = key_series(&store, "new");
    assert_ne!(new, gone);
    assert_eq!(store.latest(gone), None);
    assert_eq!(store.latest(new).unwrap().value, 1.0);
}

#[test]
fn ingest_sweeps_expired_series_on_its_own() {
    let mut store = SeriesStore::new(StoreConfig {
        retention_ms: 80_000,
        ..StoreConfig::default()
    });
    store.ingest_partial("push", secs(0), &[counter("old", 1.0)]);
    let mut expired = 0;
    for idx in 1..=20 {
        expired += store
            .ingest("gw", secs(idx * 10), &[counter("live", idx as f64)])
            .n_expired_series;
    }
    assert_eq!(expired, 1);
    assert_eq!(store.n_series(), 1);
    assert_eq!(store.n_series_of("push"), 0);
}

#[test]
fn value_at_looks_back_like_an_instant_query() {
    let mut store = store();
    store.ingest("gw", secs(0), &[counter("a", 1.0)]);
    store.ingest("gw", secs(15), &[counter("a", 2.0)]);
    let series = key_series(&store, "a");
    let value = |at, lookback_ms| store.value_at(series, at, lookback_ms).map(|p| p.value);
    assert_eq!(value(secs(14), 300_000), Some(1.0));
    assert_eq!(value(secs(15), 300_000), Some(2.0));
    assert_eq!(value(secs(100), 60_000), None);
    assert_eq!(value(Timestamp(-1), 300_000), None);
}
