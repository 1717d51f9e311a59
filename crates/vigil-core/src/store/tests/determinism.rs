//! Determinism: the same input gives the same outputs, bit for bit, whatever the order of
//! the samples within a scrape.

use std::fmt::Write as _;

use super::*;

/// A scenario touching every path: two sources, resets, a vanishing and returning series,
/// refused series, histograms, and expiry. Returns the scrapes as (source, time, samples).
fn scenario() -> Vec<(&'static str, Timestamp, Vec<Sample>)> {
    let mut scrapes = Vec::new();
    for step in 0..40_i64 {
        let at = secs(step * 15);
        let mut samples = Vec::new();
        for key in 0..6_i64 {
            // Key 3 resets every 10 scrapes; key 4 is away from scrape 10 to 19.
            let value = if key == 3 {
                ((step % 10) * 7) as f64
            } else {
                (step * (key + 1)) as f64 * 1.5
            };
            // Key 5 vanishes for good at scrape 15 and expires 300 s later.
            if (key == 4 && (10..20).contains(&step)) || (key == 5 && step >= 15) {
                continue;
            }
            samples.push(sample(
                "requests_total",
                &[
                    ("key", &format!("k{key}")),
                    ("team", ["ml", "search"][(key % 2) as usize]),
                ],
                value,
            ));
        }
        for (le, share) in [("0.5", 1.0), ("1", 3.0), ("+Inf", 4.0)] {
            samples.push(sample(
                "latency_seconds_bucket",
                &[("le", le)],
                (step as f64) * share,
            ));
        }
        scrapes.push(("gw", at, samples));
        scrapes.push((
            "edge",
            at,
            vec![counter(&format!("churn{}", step % 5), step as f64)],
        ));
    }
    scrapes
}

/// Everything the store answers after `scrapes`, as text with the bits of every float.
fn transcript(scrapes: &[(&'static str, Timestamp, Vec<Sample>)]) -> String {
    let mut store = SeriesStore::new(StoreConfig {
        max_series: 12,
        retention_ms: 300_000,
        max_points_per_series: 16,
    });
    let mut out = String::new();
    for (source, at, samples) in scrapes {
        let report = store.ingest(source, *at, samples);
        let refused = report.refused_example.as_ref().map(ToString::to_string);
        writeln!(
            out,
            "{source}@{}: +{} new {} refused {} ({refused:?}) stale {} expired {}",
            at.0,
            report.n_appended,
            report.n_new_series,
            report.n_refused,
            report.n_marked_stale,
            report.n_expired_series
        )
        .unwrap();
        for series in store.select(&[Matcher::new("key", MatchOp::RegexMatch, ".+").unwrap()]) {
            let bits = |value: Option<f64>| value.map(f64::to_bits);
            writeln!(
                out,
                "  {} rate {:?} increase {:?} irate {:?} latest {:?}",
                store.identity(series).unwrap(),
                bits(store.rate(series, 60_000, *at)),
                bits(store.increase(series, 120_000, *at)),
                bits(store.instant_rate(series, 60_000, *at)),
                store.latest(series).map(|point| point.value.to_bits()),
            )
            .unwrap();
        }
        let quantiles = store.histogram_quantile(
            0.9,
            &[Matcher::metric_name("latency_seconds_bucket")],
            BucketValues::Rate { window_ms: 60_000 },
            &Grouping::Each,
            *at,
        );
        for group in quantiles {
            writeln!(out, "  p90 {} {}", group.labels, group.value.to_bits()).unwrap();
        }
        writeln!(
            out,
            "  memory {} series {}",
            store.memory_bytes(),
            store.n_series()
        )
        .unwrap();
    }
    out
}

#[test]
fn two_stores_fed_the_same_input_answer_the_same() {
    let scrapes = scenario();
    let first = transcript(&scrapes);
    let second = transcript(&scrapes);
    assert_eq!(first, second);
    // The scenario does reach the paths it is meant to.
    assert!(first.contains("refused 1"), "{first}");
    assert!(first.contains("stale 1"));
    assert!(first.contains("expired 1"));
}

#[test]
fn the_order_of_samples_within_a_scrape_does_not_matter() {
    let scrapes = scenario();
    let reversed: Vec<_> = scrapes
        .iter()
        .map(|(source, at, samples)| {
            let mut samples = samples.clone();
            samples.reverse();
            (*source, *at, samples)
        })
        .collect();
    // Which series is refused first depends on the order, so compare a store that refuses
    // nothing: everything else must match bit for bit.
    let unrefused = |scrapes: &[(&'static str, Timestamp, Vec<Sample>)]| {
        let mut store = store();
        let mut out = String::new();
        for (source, at, samples) in scrapes {
            store.ingest(source, *at, samples);
            for series in store.select(&[Matcher::new("key", MatchOp::RegexMatch, ".+").unwrap()]) {
                let rate = store.rate(series, 60_000, *at).map(f64::to_bits);
                writeln!(out, "{} {rate:?}", store.identity(series).unwrap()).unwrap();
            }
        }
        out
    };
    assert_eq!(unrefused(&scrapes), unrefused(&reversed));
}
