//! `rate`, `increase` and `irate` against hand-computed values.
//!
//! Each case is a series of (seconds, value) points, evaluated at `at` over a window; the
//! comment gives the computation of Prometheus' `extrapolatedRate`: the increase (with the
//! value before every drop added back), its sampled interval, the average interval between
//! points, and the durations by which it extrapolates to the window's edges.

use super::*;

struct Case {
    name: &'static str,
    points: &'static [(i64, f64)],
    at_secs: i64,
    window_secs: i64,
    increase: Option<f64>,
    irate: Option<f64>,
}

const CASES: &[Case] = &[
    Case {
        // Window (0, 60]: the point at 0 is outside (left-open). Increase 30 over 45 s,
        // average 15 s. Start: 15 s to the edge, < 16.5 s, so all the way; the zero point
        // (45 × 10/30 = 15 s) does not cut it. End: 0. 30 × 60/45 = 40.
        name: "steady counter",
        points: &[(0, 0.0), (15, 10.0), (30, 20.0), (45, 30.0), (60, 40.0)],
        at_secs: 60,
        window_secs: 60,
        increase: Some(40.0),
        irate: Some(10.0 / 15.0),
    },
    Case {
        // A reset from 20 to 5 adds the 20 back: 15 - 10 + 20 = 25 over 45 s. The zero
        // point is 45 × 10/25 = 18 s back, further than 15 s. 25 × 60/45.
        name: "reset in the middle",
        points: &[(15, 10.0), (30, 20.0), (45, 5.0), (60, 15.0)],
        at_secs: 60,
        window_secs: 60,
        increase: Some(25.0 * 60.0 / 45.0),
        irate: Some(10.0 / 15.0),
    },
    Case {
        // A reset as the last step: irate counts the new value (3) as the increase.
        // Increase 3 - 10 + 20 = 13; zero point 45 × 10/13 ≈ 34.6 s back. 13 × 60/45.
        name: "reset at the end",
        points: &[(15, 10.0), (30, 15.0), (45, 20.0), (60, 3.0)],
        at_secs: 60,
        window_secs: 60,
        increase: Some(13.0 * 60.0 / 45.0),
        irate: Some(3.0 / 15.0),
    },
    Case {
        // Starts near 0: the zero point is 45 × 1/30 = 1.5 s back, closer than the edge
        // (15 s): extrapolate 1.5 s only. 30 × 46.5/45 = 31.
        name: "counter starting near zero",
        points: &[(15, 1.0), (30, 11.0), (45, 21.0), (60, 31.0)],
        at_secs: 60,
        window_secs: 60,
        increase: Some(31.0),
        irate: Some(10.0 / 15.0),
    },
    Case {
        // Window (0, 120], series starts at 75 s: 75 s ≥ 16.5 s, so only half an interval
        // (7.5 s) back. 30 × 52.5/45 = 35.
        name: "series starting inside the window",
        points: &[(75, 100.0), (90, 110.0), (105, 120.0), (120, 130.0)],
        at_secs: 120,
        window_secs: 120,
        increase: Some(35.0),
        irate: Some(10.0 / 15.0),
    },
    Case {
        // Window (0, 120], last point at 45 s: 75 s ≥ 16.5 s to the end, so 7.5 s forward.
        // It starts at 0: the zero point is 0 s back. 30 × (30 + 0 + 7.5)/30 = 37.5.
        name: "series ending inside the window",
        points: &[(15, 0.0), (30, 15.0), (45, 30.0)],
        at_secs: 120,
        window_secs: 120,
        increase: Some(37.5),
        irate: Some(1.0),
    },
    Case {
        // Evaluated between points: window (10, 70] holds 15..60; 5 s to the start and
        // 10 s to the end, both under 16.5 s. 30 × (45 + 5 + 10)/45 = 40.
        name: "window not aligned with the points",
        points: &[
            (0, 0.0),
            (15, 10.0),
            (30, 20.0),
            (45, 30.0),
            (60, 40.0),
            (75, 50.0),
        ],
        at_secs: 70,
        window_secs: 60,
        increase: Some(40.0),
        irate: Some(10.0 / 15.0),
    },
    Case {
        name: "one point is not enough",
        points: &[(0, 0.0), (60, 40.0)],
        at_secs: 60,
        window_secs: 30,
        increase: None,
        irate: None,
    },
    Case {
        // A flat counter: no increase, and no extrapolation of nothing.
        name: "flat counter",
        points: &[(15, 7.0), (30, 7.0), (45, 7.0), (60, 7.0)],
        at_secs: 60,
        window_secs: 60,
        increase: Some(0.0),
        irate: Some(0.0),
    },
];

#[test]
fn rates_match_hand_computed_values() {
    for case in CASES {
        let mut store = store();
        for &(at, value) in case.points {
            store.ingest("gw", secs(at), &[counter("a", value)]);
        }
        let series = key_series(&store, "a");
        let window_ms = case.window_secs * 1000;
        let at = secs(case.at_secs);
        let increase = store.increase(series, window_ms, at);
        assert_close(increase, case.increase, case.name);
        let rate = store.rate(series, window_ms, at);
        let expected_rate = case
            .increase
            .map(|increase| increase / case.window_secs as f64);
        assert_close(rate, expected_rate, case.name);
        assert_close(
            store.instant_rate(series, window_ms, at),
            case.irate,
            case.name,
        );
    }
}

#[test]
fn rate_divides_by_fractional_windows_as_go_durations_do() {
    let mut store = store();
    for (at, value) in [(0, 0.0), (1500, 3.0), (3000, 6.0)] {
        store.ingest("gw", Timestamp(at), &[counter("a", value)]);
    }
    let series = key_series(&store, "a");
    // Window (0, 3000] holds 1.5 s and 3 s: increase 3 extrapolated to 6 over the 3 s;
    // 1.5 s to the start equals the average interval, and the zero point (1.5 × 3/3) too.
    assert_close(
        store.increase(series, 3000, Timestamp(3000)),
        Some(6.0),
        "increase",
    );
    assert_close(store.rate(series, 3000, Timestamp(3000)), Some(2.0), "rate");
    // Window (1500, 3000] holds only the point at 3 s.
    assert_close(store.rate(series, 1500, Timestamp(3000)), None, "one point");
}

#[test]
fn rates_of_dropped_or_empty_windows_are_none() {
    let mut store = store();
    store.ingest("gw", secs(0), &[counter("a", 1.0)]);
    store.ingest("gw", secs(15), &[counter("a", 2.0)]);
    let series = key_series(&store, "a");
    assert_eq!(store.rate(series, 0, secs(15)), None);
    assert_eq!(store.rate(series, 60_000, secs(-100)), None);
    assert!(store.rate(series, 60_000, secs(15)).is_some());
}
