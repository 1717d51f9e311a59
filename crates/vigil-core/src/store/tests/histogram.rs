//! `histogram_quantile` on hand-made buckets, then over bucket series in the store.

use super::*;

const INF: f64 = f64::INFINITY;

/// (what, φ, buckets as (le, count), expected quantile).
type QuantileCase = (&'static str, f64, &'static [(f64, f64)], f64);

const STEADY: &[(f64, f64)] = &[(1.0, 2.0), (2.0, 5.0), (4.0, 9.0), (INF, 10.0)];

const QUANTILE_CASES: &[QuantileCase] = &[
    // Rank 5 reaches the le=2 bucket (count 5): 1 + (2 - 1) × (5 - 2)/(5 - 2).
    ("median", 0.5, STEADY, 2.0),
    // Rank 2.5 in le=2: 1 + 1 × 0.5/3.
    ("interpolated", 0.25, STEADY, 1.0 + 0.5 / 3.0),
    // Rank 1 in the lowest bucket, which starts at 0: 0 + 1 × 1/2.
    ("lowest bucket starts at 0", 0.1, STEADY, 0.5),
    // Rank 9 exactly reaches le=4: 2 + 2 × 4/4.
    ("rank on a bucket's count", 0.9, STEADY, 4.0),
    // Rank 9.5 is only reached by +Inf: the highest finite bound.
    ("rank in the +Inf bucket", 0.95, STEADY, 4.0),
    ("phi 1", 1.0, STEADY, 4.0),
    ("phi 0", 0.0, STEADY, 0.0),
    ("phi below 0", -0.1, STEADY, f64::NEG_INFINITY),
    ("phi above 1", 1.1, STEADY, INF),
    ("phi NaN", f64::NAN, STEADY, f64::NAN),
    (
        "any order",
        0.25,
        &[(INF, 10.0), (4.0, 9.0), (1.0, 2.0), (2.0, 5.0)],
        1.0 + 0.5 / 3.0,
    ),
    ("no +Inf bucket", 0.5, &[(1.0, 2.0), (2.0, 5.0)], f64::NAN),
    ("only the +Inf bucket", 0.5, &[(INF, 5.0)], f64::NAN),
    ("no buckets", 0.5, &[], f64::NAN),
    ("no observations", 0.5, &[(1.0, 0.0), (INF, 0.0)], f64::NAN),
    // The lowest bucket's bound is at most 0: it is the answer, not interpolated from 0.
    (
        "negative lowest bucket",
        0.3,
        &[(-1.0, 3.0), (1.0, 5.0), (INF, 6.0)],
        -1.0,
    ),
    // Rank 3.6 in le=1: -1 + 2 × 0.6/2.
    (
        "above a negative bucket",
        0.6,
        &[(-1.0, 3.0), (1.0, 5.0), (INF, 6.0)],
        -0.4,
    ),
    (
        "lowest bucket at 0",
        0.25,
        &[(0.0, 4.0), (1.0, 8.0), (INF, 8.0)],
        0.0,
    ),
    // le=2 (3) is raised to 5: rank 6 in le=4 is 2 + 2 × (6 - 5)/(8 - 5); unfixed it would
    // be 2 + 2 × 3/5 = 3.2.
    (
        "monotonicity fix-up",
        0.6,
        &[(1.0, 5.0), (2.0, 3.0), (4.0, 8.0), (INF, 10.0)],
        2.0 + 2.0 / 3.0,
    ),
    // Two le=1 buckets are merged to 2: rank 2 is reached in le=1, 0 + 1 × 2/2.
    (
        "equal bounds merged",
        0.5,
        &[(1.0, 1.0), (1.0, 1.0), (2.0, 4.0), (INF, 4.0)],
        1.0,
    ),
    // 10.000000000000002 is floating-point noise over 10: taken as 10, so the rank is 5
    // exactly and the answer exactly 0.5.
    (
        "precision noise smoothed",
        0.5,
        &[
            (1.0, 10.0),
            (2.0, 10.000000000000002),
            (4.0, 10.0),
            (INF, 10.0),
        ],
        0.5,
    ),
];

#[test]
fn bucket_quantile_matches_hand_computed_values() {
    for &(what, phi, buckets, expected) in QUANTILE_CASES {
        let mut buckets: Vec<Bucket> = buckets
            .iter()
            .map(|&(upper_bound, count)| Bucket { upper_bound, count })
            .collect();
        let actual = bucket_quantile(phi, &mut buckets);
        let same = actual == expected
            || (actual.is_nan() && expected.is_nan())
            || (actual - expected).abs() <= 1e-12 * expected.abs();
        assert!(same, "{what}: {actual} != {expected}");
    }
}

#[test]
fn precision_noise_is_smoothed_exactly() {
    // Unsmoothed, the noise would carry into the total and give 0.5000000000000001.
    let mut buckets = vec![
        Bucket {
            upper_bound: 1.0,
            count: 10.0,
        },
        Bucket {
            upper_bound: 2.0,
            count: 10.000000000000002,
        },
        Bucket {
            upper_bound: INF,
            count: 10.000000000000002,
        },
    ];
    assert_eq!(
        bucket_quantile(0.5, &mut buckets).to_bits(),
        0.5_f64.to_bits()
    );
}

const LATENCY: &str = "latency_seconds_bucket";

/// Bucket samples of one histogram with cumulative `counts` for le 0.1, 0.5, 1, +Inf.
fn buckets(model: &str, counts: [f64; 4]) -> Vec<Sample> {
    ["0.1", "0.5", "1", "+Inf"]
        .iter()
        .zip(counts)
        .map(|(le, count)| sample(LATENCY, &[("le", le), ("model", model)], count))
        .collect()
}

/// Model `a`: every 15 s, 1 observation ≤ 0.1, 2 in (0.1, 0.5], 1 in (0.5, 1]. Model `b`:
/// 5 above 1. Scrapes at 0, 15, …, 60 s.
fn latency_store() -> SeriesStore {
    let mut store = store();
    for scrape in 0..=4 {
        let k = f64::from(scrape);
        let mut samples = buckets(
            "a",
            [10.0 + k, 30.0 + 3.0 * k, 40.0 + 4.0 * k, 40.0 + 4.0 * k],
        );
        samples.extend(buckets("b", [0.0, 0.0, 0.0, 5.0 * k]));
        // Not buckets: no `le`, or one that is not a number. Both are left out.
        samples.push(sample(LATENCY, &[("model", "a")], 1.0));
        samples.push(sample(LATENCY, &[("le", "fast"), ("model", "a")], 1.0));
        store.ingest("gw", secs(i64::from(scrape) * 15), &samples);
    }
    store
}

fn quantiles(
    store: &SeriesStore,
    phi: f64,
    values: BucketValues,
    grouping: &Grouping,
) -> Vec<(String, f64)> {
    store
        .histogram_quantile(
            phi,
            &[Matcher::metric_name(LATENCY)],
            values,
            grouping,
            secs(60),
        )
        .into_iter()
        .map(|group| {
            let source = group.source.unwrap_or_default();
            (format!("{source}{}", group.labels), group.value)
        })
        .collect()
}

fn assert_quantiles(actual: &[(String, f64)], expected: &[(&str, f64)]) {
    assert_eq!(actual.len(), expected.len(), "{actual:?}");
    for ((group, value), (expected_group, expected_value)) in actual.iter().zip(expected) {
        assert_eq!(group, expected_group);
        assert_close(Some(*value), Some(*expected_value), group);
    }
}

#[test]
fn quantiles_from_bucket_rates_per_histogram() {
    let store = latency_store();
    // Over (0, 60] every bucket's rate is its increase over 45 s extrapolated by 60/45, per
    // 60 s, so the rates are proportional to the per-scrape increases: a = [1, 3, 4, 4].
    let rate = BucketValues::Rate { window_ms: 60_000 };
    // a: rank 2 of 4 in le=0.5: 0.1 + 0.4 × (2 - 1)/(3 - 1). b: all above 1, so 1.
    assert_quantiles(
        &quantiles(&store, 0.5, rate, &Grouping::Each),
        &[(r#"gw{model="a"}"#, 0.3), (r#"gw{model="b"}"#, 1.0)],
    );
    // a: rank 3.6 in le=1: 0.5 + 0.5 × 0.6/1.
    assert_quantiles(
        &quantiles(&store, 0.9, rate, &Grouping::Each),
        &[(r#"gw{model="a"}"#, 0.8), (r#"gw{model="b"}"#, 1.0)],
    );
}

#[test]
fn quantiles_from_summed_bucket_rates() {
    let store = latency_store();
    let rate = BucketValues::Rate { window_ms: 60_000 };
    // sum by (le): a + b = [1, 3, 4, 4 + 5]. Rank 2.25 in le=0.5: 0.1 + 0.4 × 1.25/2.
    assert_quantiles(
        &quantiles(&store, 0.25, rate, &Grouping::By(Vec::new())),
        &[("{}", 0.35)],
    );
    // Rank 4.5 is past every finite bucket (4).
    assert_quantiles(
        &quantiles(
            &store,
            0.5,
            rate,
            &Grouping::By(vec![SOURCE_LABEL.to_owned()]),
        ),
        &[("gw{}", 1.0)],
    );
}

#[test]
fn quantiles_from_latest_bucket_values() {
    let store = latency_store();
    let latest = BucketValues::Latest {
        lookback_ms: 300_000,
    };
    // At 60 s, a = [14, 42, 56, 56]: rank 14 reaches le=0.1 exactly: 0.1. b = [0, 0, 0, 20].
    assert_quantiles(
        &quantiles(&store, 0.25, latest, &Grouping::Each),
        &[(r#"gw{model="a"}"#, 0.1), (r#"gw{model="b"}"#, 1.0)],
    );
    // Rank 28 in le=0.5: 0.1 + 0.4 × 14/28.
    assert_quantiles(
        &quantiles(&store, 0.5, latest, &Grouping::By(vec!["model".to_owned()])),
        &[(r#"{model="a"}"#, 0.3), (r#"{model="b"}"#, 1.0)],
    );
}

#[test]
fn a_histogram_without_observations_is_nan() {
    let mut store = store();
    for scrape in 0..3 {
        store.ingest("gw", secs(scrape * 15), &buckets("idle", [0.0; 4]));
    }
    let rate = BucketValues::Rate { window_ms: 60_000 };
    let found = quantiles(&store, 0.5, rate, &Grouping::Each);
    assert_eq!(found.len(), 1);
    assert!(found[0].1.is_nan());
}
