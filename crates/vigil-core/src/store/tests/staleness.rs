//! Staleness: a series absent from its source's next complete scrape is gone, not zero.

use super::*;

const MINUTE_MS: i64 = 60_000;

#[test]
fn a_vanished_series_is_stale_and_has_no_value_or_rate() {
    let mut store = store();
    store.ingest("gw", secs(0), &[counter("a", 1.0), counter("b", 10.0)]);
    store.ingest("gw", secs(15), &[counter("a", 2.0), counter("b", 20.0)]);
    let report = store.ingest("gw", secs(30), &[counter("a", 3.0)]);
    assert_eq!(report.n_marked_stale, 1);
    let b = key_series(&store, "b");
    assert!(store.is_stale(b));
    assert_eq!(store.latest(b), None);
    assert_eq!(store.rate(b, 5 * MINUTE_MS, secs(30)), None);
    assert_eq!(store.increase(b, 5 * MINUTE_MS, secs(30)), None);
    assert_eq!(store.instant_rate(b, 5 * MINUTE_MS, secs(30)), None);
    assert_eq!(store.value_at(b, secs(40), 5 * MINUTE_MS), None);
    // Before it vanished, it had a value and a rate.
    assert_eq!(
        store.value_at(b, secs(29), 5 * MINUTE_MS).unwrap().value,
        20.0
    );
    assert_close(
        store.instant_rate(b, MINUTE_MS, secs(29)),
        Some(10.0 / 15.0),
        "irate",
    );
    // It is still selectable (it exists until it expires); a later scrape without it does
    // not mark it again.
    assert_eq!(store.select(&[Matcher::equal("key", "b")]), [b]);
    assert_eq!(
        store
            .ingest("gw", secs(45), &[counter("a", 4.0)])
            .n_marked_stale,
        0
    );
}

#[test]
fn a_returning_series_gets_a_fresh_rate_that_does_not_span_the_gap() {
    let mut store = store();
    store.ingest("gw", secs(0), &[counter("a", 0.0), counter("b", 100.0)]);
    store.ingest("gw", secs(15), &[counter("a", 15.0), counter("b", 115.0)]);
    store.ingest("gw", secs(30), &[counter("a", 30.0)]);
    store.ingest("gw", secs(45), &[counter("a", 45.0)]);
    // `b` comes back with a value far above where it left: across the gap that would look
    // like a burst of 385 requests.
    store.ingest("gw", secs(60), &[counter("a", 60.0), counter("b", 500.0)]);
    let b = key_series(&store, "b");
    assert!(!store.is_stale(b));
    assert_eq!(store.latest(b).unwrap().value, 500.0);
    // One point in its new run: no rate yet.
    assert_eq!(store.rate(b, 5 * MINUTE_MS, secs(60)), None);
    assert_eq!(store.instant_rate(b, 5 * MINUTE_MS, secs(60)), None);

    store.ingest("gw", secs(75), &[counter("a", 75.0), counter("b", 530.0)]);
    assert_eq!(
        points_of(&store, b, secs(75)),
        [(60.0, 500.0), (75.0, 530.0)]
    );
    assert_close(
        store.instant_rate(b, 5 * MINUTE_MS, secs(75)),
        Some(2.0),
        "irate",
    );
    // increase over (15, 75]: run points 60 → 75, increase 30 over 15 s; the start is 45 s
    // away (≥ 1.1 × 15 s) so it extrapolates 7.5 s back (the zero point, 250 s back, is
    // further); the end is at the window's edge. 30 × (15 + 7.5) / 15 = 45.
    assert_close(
        store.increase(b, MINUTE_MS, secs(75)),
        Some(45.0),
        "increase",
    );
    assert_close(store.rate(b, MINUTE_MS, secs(75)), Some(0.75), "rate");
}

#[test]
fn a_failed_scrape_marks_every_series_of_the_source_stale() {
    let mut store = store();
    store.ingest("gw", secs(0), &[counter("a", 1.0), counter("b", 1.0)]);
    store.ingest("other", secs(0), &[counter("c", 1.0)]);
    let report = store.mark_stale("gw", secs(15));
    assert_eq!(report.n_marked_stale, 2);
    assert!(store.is_stale(key_series(&store, "a")));
    assert!(store.is_stale(key_series(&store, "b")));
    assert!(!store.is_stale(key_series(&store, "c")));
}

#[test]
fn pushed_samples_are_never_marked_stale() {
    let mut store = store();
    store.ingest_partial("gw", secs(0), &[counter("pushed", 1.0)]);
    store.ingest("gw", secs(0), &[counter("scraped", 1.0)]);
    store.ingest("gw", secs(15), &[]);
    assert!(!store.is_stale(key_series(&store, "pushed")));
    assert!(store.is_stale(key_series(&store, "scraped")));
}

#[test]
fn a_marker_goes_after_a_sample_stamped_later_than_the_scrape() {
    let mut store = store();
    let mut ahead = counter("a", 1.0);
    ahead.timestamp_ms = Some(20_000);
    store.ingest("gw", secs(10), &[ahead]);
    store.ingest("gw", secs(15), &[]);
    let a = key_series(&store, "a");
    assert!(store.is_stale(a));
    assert_eq!(
        store
            .value_at(a, Timestamp(20_000), MINUTE_MS)
            .unwrap()
            .value,
        1.0
    );
    assert_eq!(store.value_at(a, Timestamp(20_001), MINUTE_MS), None);
}

#[test]
fn stale_series_are_dropped_after_the_retention() {
    let mut store = SeriesStore::new(StoreConfig {
        retention_ms: 2 * MINUTE_MS,
        ..StoreConfig::default()
    });
    store.ingest("gw", secs(0), &[counter("a", 1.0), counter("b", 1.0)]);
    store.ingest("gw", secs(15), &[counter("a", 2.0)]);
    let b = key_series(&store, "b");
    let mut n_expired = 0;
    for idx in 2..=12 {
        n_expired += store
            .ingest("gw", secs(idx * 15), &[counter("a", idx as f64)])
            .n_expired_series;
    }
    assert_eq!(n_expired, 1);
    assert_eq!(store.n_series(), 1);
    assert_eq!(store.identity(b), None);
    assert_eq!(store.select(&[Matcher::equal("key", "b")]), []);
}
