//! The adaptive detector on synthetic streams whose right answer is known.

use super::*;

/// A deterministic noise source in [-1, 1] (xorshift64*).
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let bits = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11;
        bits as f64 / (1_u64 << 53) as f64 * 2.0 - 1.0
    }
}

const MINUTE: i64 = 60_000;

/// Runs `values` (one per `step_ms`) and returns the indices that alerted.
fn alerts(config: AdaptiveConfig, step_ms: i64, values: &[f64]) -> Vec<usize> {
    let mut detector = AdaptiveDetector::new(config);
    values
        .iter()
        .enumerate()
        .filter_map(|(index, value)| {
            let at = Timestamp(1_700_000_000_000 + index as i64 * step_ms);
            detector.step(at, *value).alert.then_some(index)
        })
        .collect()
}

fn noisy(n: usize, level: f64, amplitude: f64, seed: u64) -> Vec<f64> {
    let mut noise = Noise(seed);
    (0..n).map(|_| level + amplitude * noise.next()).collect()
}

#[test]
fn the_upper_tail_matches_the_normal_table() {
    for (x, expected) in [
        (0.0, 0.5),
        (1.0, 0.158_655_25),
        (1.959_964, 0.025),
        (3.0, 0.001_349_898),
        (5.0, 2.866_515_7e-7),
        (-1.0, 0.841_344_75),
    ] {
        let tail = upper_tail(x);
        assert!(
            (tail - expected).abs() <= 1e-7_f64.max(expected * 2e-7),
            "Q({x}) = {tail}, expected {expected}"
        );
    }
    assert_eq!(upper_tail(f64::INFINITY), 0.0);
    assert_eq!(upper_tail(f64::NEG_INFINITY), 1.0);
}

#[test]
fn steady_noise_never_alerts() {
    let values = noisy(3000, 100.0, 5.0, 7);
    assert_eq!(
        alerts(AdaptiveConfig::default(), MINUTE, &values),
        Vec::<usize>::new()
    );
}

#[test]
fn a_spike_alerts_at_once_and_the_refractory_period_holds_the_next() {
    let mut values = noisy(3000, 100.0, 5.0, 11);
    values[1500..1510].fill(180.0);
    // A second burst inside the refractory period, a third after it.
    values[1600..1610].fill(180.0);
    values[2500..2510].fill(180.0);
    let found = alerts(AdaptiveConfig::default(), MINUTE, &values);
    assert_eq!(found.len(), 2, "{found:?}");
    assert!((1500..1503).contains(&found[0]), "{found:?}");
    // The first two bursts widened the history of short means, so the third needs a few of
    // its points in the short mean before it stands out; still well inside the burst.
    assert!((2500..2506).contains(&found[1]), "{found:?}");
}

#[test]
fn a_level_shift_down_alerts_in_both_and_down_but_not_up() {
    let mut values = noisy(3000, 100.0, 5.0, 13);
    for value in &mut values[2000..] {
        *value -= 60.0;
    }
    for (direction, expected) in [
        (Direction::Both, true),
        (Direction::Down, true),
        (Direction::Up, false),
    ] {
        let config = AdaptiveConfig {
            direction,
            ..AdaptiveConfig::default()
        };
        let found = alerts(config, MINUTE, &values);
        let near_shift = found.iter().any(|index| (2000..2005).contains(index));
        assert_eq!(near_shift, expected, "{direction:?}: {found:?}");
    }
}

#[test]
fn a_daily_spike_stops_alerting_once_it_is_learned_unless_seasonality_is_off() {
    // A point every 5 minutes over 14 days; every day at 03:00 a 15-minute batch job.
    let step = 5 * MINUTE;
    let per_day = 288;
    let mut values = noisy(per_day * 14, 20.0, 1.0, 17);
    for day in 0..14 {
        for slot in 36..39 {
            values[day * per_day + slot] = 80.0;
        }
    }
    let seasonal = alerts(AdaptiveConfig::default(), step, &values);
    let late = |found: &[usize]| found.iter().filter(|index| **index >= per_day * 4).count();
    assert_eq!(late(&seasonal), 0, "alerts after day 4: {seasonal:?}");
    let blind = alerts(
        AdaptiveConfig {
            season_secs: 0,
            ..AdaptiveConfig::default()
        },
        step,
        &values,
    );
    assert!(
        late(&blind) >= 5,
        "without seasonality the daily batch keeps alerting: {blind:?}"
    );
}

#[test]
fn non_finite_values_are_skipped_and_the_same_input_gives_the_same_bits() {
    let mut values = noisy(1500, 10.0, 1.0, 19);
    values[700] = f64::NAN;
    values[701] = f64::INFINITY;
    values[1200] = 25.0;
    let run = || {
        let mut detector = AdaptiveDetector::new(AdaptiveConfig::default());
        values
            .iter()
            .enumerate()
            .map(|(index, value)| {
                let step = detector.step(Timestamp(index as i64 * MINUTE), *value);
                (step.score.to_bits(), step.alert, step.surprise.to_bits())
            })
            .collect::<Vec<_>>()
    };
    let first = run();
    assert_eq!(first, run());
    assert_eq!(first[700], (0.0_f64.to_bits(), false, 0.0_f64.to_bits()));
    assert!(
        first
            .iter()
            .all(|(score, _, _)| (0.0..=1.0).contains(&f64::from_bits(*score)))
    );
    let alerted: Vec<usize> = first
        .iter()
        .enumerate()
        .filter_map(|(index, (_, alert, _))| alert.then_some(index))
        .collect();
    assert_eq!(alerted, [1200]);
}

#[test]
fn validation_names_the_field() {
    type Breaker = fn(&mut AdaptiveConfig);
    let cases: [(Breaker, &str); 6] = [
        (
            |c| c.baseline_half_life_samples = 0.0,
            "baseline_half_life_samples",
        ),
        (
            |c| c.history_half_life_samples = -1.0,
            "history_half_life_samples",
        ),
        (|c| c.recent_samples = 0, "recent_samples"),
        (|c| c.recent_samples = 1001, "recent_samples"),
        (|c| c.alert_probability = 1.0, "alert_probability"),
        (|c| c.season_learning_rate = 1.5, "season_learning_rate"),
    ];
    assert_eq!(AdaptiveConfig::default().validate(), Ok(()));
    for (break_it, field) in cases {
        let mut config = AdaptiveConfig::default();
        break_it(&mut config);
        assert_eq!(config.validate().unwrap_err().field, field);
    }
}

#[test]
fn the_short_mean_keeps_only_the_latest_surprises() {
    let mut recent = Recent::default();
    assert_eq!(recent.push_and_mean(4.0, 3), 4.0);
    assert_eq!(recent.push_and_mean(2.0, 3), 3.0);
    assert_eq!(recent.push_and_mean(6.0, 3), 4.0);
    // 4 leaves the window: (2 + 6 + 10) / 3.
    assert_eq!(recent.push_and_mean(10.0, 3), 6.0);
    assert_eq!(recent.values.len(), 3);
}

#[test]
fn the_history_is_a_plain_mean_and_variance_until_its_half_life_then_forgets() {
    let mut history = History::default();
    assert_eq!(history.moments(), (0.0, 0.0));
    // With a negligible weight every value weighs 1/n: the population mean and variance.
    for value in [1.0, 2.0, 3.0, 4.0, 5.0] {
        history.learn(value, 1e-9);
    }
    let (mean, spread) = history.moments();
    assert!((mean - 3.0).abs() < 1e-12, "{mean}");
    assert!((spread - 2.0_f64.sqrt()).abs() < 1e-12, "{spread}");
    // With a weight of one half, a new level takes over within a few values.
    let mut history = History::default();
    for _ in 0..40 {
        history.learn(10.0, 0.5);
    }
    let (mean, spread) = history.moments();
    assert!(
        (mean - 10.0).abs() < 1e-9 && spread < 1e-6,
        "{mean} {spread}"
    );
}

#[test]
fn a_run_of_mildly_high_values_alerts_though_none_is_extreme() {
    // Noise in [49, 51] (standard deviation 0.58); then 30 points in [51.2, 51.4], each only
    // about two standard deviations out: one of them would be unremarkable, a run is not.
    let mut values = noisy(3000, 50.0, 1.0, 23);
    values[1500] = 51.4;
    assert_eq!(
        alerts(AdaptiveConfig::default(), MINUTE, &values),
        Vec::<usize>::new()
    );
    let mut high = Noise(29);
    for value in &mut values[2600..2630] {
        *value = 51.3 + 0.1 * high.next();
    }
    let found = alerts(AdaptiveConfig::default(), MINUTE, &values);
    assert!(
        found.len() == 1 && (2600..2630).contains(&found[0]),
        "{found:?}"
    );
}

#[test]
fn a_point_from_the_past_is_taken_at_the_latest_time_seen() {
    // Regression guard for the documented rule: a timestamp earlier than the latest one is
    // moved up to it, so the run is bit for bit the run with the clock held at the latest.
    let values = noisy(600, 10.0, 1.0, 31);
    let run = |times: &[i64]| {
        let mut detector = AdaptiveDetector::new(AdaptiveConfig::default());
        values
            .iter()
            .zip(times)
            .map(|(value, at)| {
                let step = detector.step(Timestamp(*at), *value);
                (step.score.to_bits(), step.alert, step.surprise.to_bits())
            })
            .collect::<Vec<_>>()
    };
    let forward: Vec<i64> = (0..600).map(|index| index * 5 * MINUTE).collect();
    // The clock goes back an hour at point 300 and repeats that hour.
    let with_jump: Vec<i64> = forward
        .iter()
        .enumerate()
        .map(|(index, at)| if index >= 300 { at - 60 * MINUTE } else { *at })
        .collect();
    let held: Vec<i64> = with_jump
        .iter()
        .scan(i64::MIN, |latest, at| {
            *latest = (*latest).max(*at);
            Some(*latest)
        })
        .collect();
    assert_eq!(run(&with_jump), run(&held));
    assert_ne!(
        run(&with_jump),
        run(&forward),
        "the jump must matter at all"
    );
}

#[test]
fn a_sliding_history_keeps_only_its_window() {
    let mut history = History::with_window(3);
    assert_eq!(history.moments(), (0.0, 0.0));
    for value in [100.0, 1.0, 2.0, 3.0] {
        history.push(value, 0.5);
    }
    let (mean, spread) = history.moments();
    assert!((mean - 2.0).abs() < 1e-12, "{mean}");
    assert!((spread - (2.0_f64 / 3.0).sqrt()).abs() < 1e-12, "{spread}");
    // Many more values: the sums are recomputed and still describe the last three.
    for value in 0..1000 {
        history.push(f64::from(value % 7), 0.5);
    }
    let (mean, _) = history.moments();
    let expected = f64::from(997 % 7 + 998 % 7 + 999 % 7) / 3.0;
    assert!((mean - expected).abs() < 1e-9, "{mean} vs {expected}");
    assert_eq!(history.values.len(), 3);
}

#[test]
fn the_empirical_tail_counts_then_extrapolates() {
    let mut tail = TailHistogram::new(20.0);
    assert_eq!(tail.p_value(5.0), 1.0);
    // 1000 values spread evenly over [0, 10).
    for index in 0..1000 {
        tail.add(f64::from(index) / 100.0);
    }
    // Half of them are at 5 or above (its bin included).
    let middle = tail.p_value(5.0);
    assert!((middle - 500.0 / 1001.0).abs() < 0.01, "{middle}");
    // Beyond the largest ten the tail is extrapolated: smaller, and falling.
    let edge = tail.p_value(9.95);
    let beyond = tail.p_value(12.0);
    let far = tail.p_value(19.0);
    assert!(edge <= 10.0 / 1001.0 + 1e-12, "{edge}");
    assert!(
        beyond < edge && far < beyond && far > 0.0,
        "{edge} {beyond} {far}"
    );
}

#[test]
fn every_variant_alerts_on_a_burst_and_stays_quiet_on_steady_noise() {
    let variants: [fn(&mut AdaptiveConfig); 7] = [
        |_| {},
        |c| c.history_window_samples = 1000,
        |c| c.robust_spread = true,
        |c| c.point_scale = true,
        |c| c.long_scale_samples = 60,
        |c| {
            c.empirical_tail = true;
            c.alert_probability = 1e-4;
        },
        |c| c.ensemble_tail_probability = 1e-4,
    ];
    let steady = noisy(3000, 100.0, 5.0, 37);
    let mut burst = steady.clone();
    burst[2000..2010].fill(180.0);
    for (variant_idx, change) in variants.iter().enumerate() {
        let mut config = AdaptiveConfig::default();
        change(&mut config);
        assert_eq!(config.validate(), Ok(()), "variant {variant_idx}");
        let found = alerts(config.clone(), MINUTE, &burst);
        assert!(
            found.iter().any(|index| (2000..2010).contains(index)),
            "variant {variant_idx}: {found:?}"
        );
        let quiet = alerts(config, MINUTE, &steady);
        assert!(quiet.len() <= 1, "variant {variant_idx}: {quiet:?}");
    }
}

#[test]
fn validation_names_the_new_fields() {
    type Breaker = fn(&mut AdaptiveConfig);
    let cases: [(Breaker, &str); 3] = [
        (
            |c| c.history_window_samples = 5000,
            "history_window_samples",
        ),
        (|c| c.long_scale_samples = 1001, "long_scale_samples"),
        (
            |c| c.ensemble_tail_probability = 1.0,
            "ensemble_tail_probability",
        ),
    ];
    for (break_it, field) in cases {
        let mut config = AdaptiveConfig::default();
        break_it(&mut config);
        assert_eq!(config.validate().unwrap_err().field, field);
    }
}
