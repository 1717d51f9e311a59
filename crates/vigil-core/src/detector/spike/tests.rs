//! Behaviour of the spike detector on small, hand-made series.

use super::*;
use crate::signal::Sample;
use crate::store::StoreConfig;

fn config() -> SpikeConfig {
    SpikeConfig {
        name: "token-spike".to_owned(),
        source: "gateway".to_owned(),
        metric: "tokens_total".to_owned(),
        read: SeriesRead::CounterRate,
        unit: Default::default(),
        group_by: "key".to_owned(),
        alias_label: Some("alias".to_owned()),
        team_label: None,
        ignore_values: vec!["None".to_owned()],
        max_groups: 10,
        thresholds: SpikeThresholds {
            warmup_samples: 5,
            baseline_half_life_secs: 60.0,
            fire_z: 6.0,
            fire_ratio: 3.0,
            min_rate_per_sec: 50.0,
            fire_after_samples: 2,
            clear_ratio: 1.5,
            clear_after_samples: 2,
            noise_floor_ratio: 0.1,
            page_ratio: 10.0,
            season_secs: 0,
            run_evidence: false,
            season_memory: SeasonMemory::Average,
        },
    }
}

/// A detector with the store it reads: each `observe` turns per-key rates into counter
/// samples one second apart, stores them as one complete scrape, then runs the detector.
struct Harness {
    detector: SpikeDetector,
    store: SeriesStore,
    counters: BTreeMap<(String, String), f64>,
    last_at: Option<Timestamp>,
}

impl Harness {
    fn new(config: SpikeConfig) -> Self {
        Harness {
            detector: SpikeDetector::new(config),
            store: SeriesStore::new(StoreConfig::default()),
            counters: BTreeMap::new(),
            last_at: None,
        }
    }

    /// `series`: (metric, key, rate per second over the last second).
    fn observe_series(&mut self, at: Timestamp, series: &[(&str, &str, f64)]) -> Vec<Transition> {
        if self.last_at.is_none() {
            // A first scrape a second earlier, so that the first observation has a rate.
            let priming = self.samples(series, true);
            self.store
                .ingest("gateway", at.plus_millis(-1000), &priming);
        }
        let samples = self.samples(series, false);
        self.store.ingest("gateway", at, &samples);
        self.last_at = Some(at);
        self.detector.observe(at, &self.store)
    }

    fn samples(&mut self, series: &[(&str, &str, f64)], priming: bool) -> Vec<Sample> {
        series
            .iter()
            .map(|(metric, key, rate)| {
                let counter = self
                    .counters
                    .entry(((*metric).to_owned(), (*key).to_owned()))
                    .or_insert(0.0);
                if !priming {
                    *counter += rate;
                }
                Sample {
                    name: (*metric).to_owned(),
                    labels: [("key", *key), ("alias", "alias-of-key")]
                        .into_iter()
                        .collect(),
                    value: *counter,
                    timestamp_ms: None,
                }
            })
            .collect()
    }

    fn observe(&mut self, at: Timestamp, rates: &[(&str, f64)]) -> Vec<Transition> {
        let series: Vec<(&str, &str, f64)> = rates
            .iter()
            .map(|(key, rate)| ("tokens_total", *key, *rate))
            .collect();
        self.observe_series(at, &series)
    }
}

/// Feeds `values` for key `a`, one per second, and returns the transitions as short strings.
fn run(detector: &mut Harness, start_sec: i64, values: &[f64]) -> Vec<String> {
    let mut log = Vec::new();
    for (offset, value) in values.iter().enumerate() {
        let at = Timestamp((start_sec + offset as i64) * 1000);
        for transition in detector.observe(at, &[("a", *value)]) {
            log.push(match transition {
                Transition::Fired(finding) => format!(
                    "fired@{} {:?} {}",
                    offset,
                    finding.severity,
                    finding.subject.display_name()
                ),
                Transition::Cleared(cleared) => {
                    format!(
                        "cleared@{} after {}ms",
                        offset,
                        cleared.cleared_at.millis_since(cleared.raised_at)
                    )
                }
            });
        }
    }
    log
}

const NORMAL: [f64; 10] = [
    100.0, 110.0, 95.0, 105.0, 98.0, 102.0, 97.0, 108.0, 101.0, 99.0,
];

#[test]
fn steady_noise_never_fires() {
    let mut detector = Harness::new(config());
    assert!(run(&mut detector, 0, &NORMAL).is_empty());
    assert!(run(&mut detector, 10, &[130.0, 80.0, 125.0, 90.0]).is_empty());
}

#[test]
fn sustained_spike_fires_once_after_the_minimum_duration_then_clears_with_hysteresis() {
    let mut detector = Harness::new(config());
    run(&mut detector, 0, &NORMAL);
    let log = run(
        &mut detector,
        10,
        &[2000.0, 2100.0, 1900.0, 140.0, 120.0, 100.0],
    );
    // Fires on the second hot observation; 140 is under 1.5x baseline, so the first calm
    // observation counts, and the second clears.
    assert_eq!(
        log,
        vec!["fired@1 Page alias-of-key", "cleared@4 after 3000ms"]
    );
}

#[test]
fn a_single_hot_observation_does_not_fire() {
    let mut detector = Harness::new(config());
    run(&mut detector, 0, &NORMAL);
    assert!(run(&mut detector, 10, &[2000.0, 100.0, 2000.0, 100.0]).is_empty());
}

#[test]
fn the_baseline_is_frozen_while_firing_so_a_long_spike_stays_firing() {
    let mut detector = Harness::new(config());
    run(&mut detector, 0, &NORMAL);
    let log = run(&mut detector, 10, &[2000.0; 60]);
    assert_eq!(log, vec!["fired@1 Page alias-of-key"]);
    let view = detector.detector.view("a").unwrap();
    assert!(view.firing);
    assert!(
        view.baseline_per_sec < 120.0,
        "baseline absorbed the spike: {view:?}"
    );
}

#[test]
fn warm_up_prevents_firing_on_the_first_observations() {
    let mut detector = Harness::new(config());
    assert!(run(&mut detector, 0, &[100.0, 100.0, 5000.0, 5000.0]).is_empty());
}

#[test]
fn a_vanished_group_is_stale_not_recovered() {
    let mut detector = Harness::new(config());
    run(&mut detector, 0, &NORMAL);
    run(&mut detector, 10, &[2000.0, 2000.0]);
    // Scrapes with no sample for `a` change nothing: its series is stale, not at zero.
    for sec in 12..20 {
        assert!(detector.observe(Timestamp(sec * 1000), &[]).is_empty());
    }
    assert!(detector.detector.view("a").unwrap().firing);
    // When it comes back, its first scrape only restarts the rate; no recovery is read.
    assert!(
        detector
            .observe(Timestamp(20_000), &[("a", 0.0)])
            .is_empty()
    );
    assert!(detector.detector.view("a").unwrap().firing);
}

#[test]
fn moderate_spikes_are_tickets_and_small_rates_never_fire() {
    let mut detector = Harness::new(config());
    run(&mut detector, 0, &NORMAL);
    let log = run(&mut detector, 10, &[500.0, 500.0]);
    assert_eq!(log, vec!["fired@1 Ticket alias-of-key"]);

    let mut quiet = Harness::new(config());
    run(&mut quiet, 0, &[1.0, 1.2, 0.9, 1.1, 1.0, 1.0]);
    // 40/s is 40x the baseline but under the 50/s floor.
    assert!(run(&mut quiet, 6, &[40.0, 40.0, 40.0]).is_empty());
}

#[test]
fn ignored_values_and_other_metrics_are_not_groups() {
    let mut detector = Harness::new(config());
    detector.observe_series(
        Timestamp(0),
        &[("tokens_total", "None", 5.0), ("other_total", "b", 5.0)],
    );
    assert!(detector.detector.views().is_empty());
}

#[test]
fn groups_past_the_limit_are_refused_and_counted() {
    let mut limited = config();
    limited.max_groups = 1;
    let mut detector = Harness::new(limited);
    detector.observe(Timestamp(0), &[("a", 1.0), ("b", 1.0)]);
    assert_eq!(detector.detector.views().len(), 1);
    assert_eq!(detector.detector.n_groups_refused(), 1);
}

#[test]
fn a_gauge_is_read_by_its_value() {
    let mut gauge = config();
    gauge.read = SeriesRead::Value;
    gauge.metric = "tokens_per_sec".to_owned();
    let mut harness = Harness::new(gauge);
    let mut log = Vec::new();
    // The harness turns its inputs into running totals; as a gauge, a running total that
    // jumps by 2,000 a second reads as a jump in value, which is the spike.
    for (sec, step) in [100.0, 0.0, 0.0, 0.0, 0.0, 0.0, 2000.0, 2000.0]
        .into_iter()
        .enumerate()
    {
        let transitions = harness.observe_series(
            Timestamp(sec as i64 * 1000),
            &[("tokens_per_sec", "a", step)],
        );
        log.extend(
            transitions
                .into_iter()
                .map(|transition| matches!(transition, Transition::Fired(_))),
        );
    }
    assert_eq!(log, vec![true]);
    assert_eq!(harness.detector.view("a").unwrap().baseline_per_sec, 100.0);
}

/// Four days of one key's rate, a reading a minute: 100/s with a wobble, plus a nightly batch
/// at 1,000/s from 02:00 to 02:20 and, on the last day, an unusual burst at 14:00. Returns
/// the minutes (since the start) at which a finding fired.
fn four_days(season_secs: i64) -> Vec<i64> {
    let mut config = config();
    config.read = SeriesRead::Value;
    config.metric = "tokens_rate".to_owned();
    config.thresholds = SpikeThresholds {
        season_secs,
        ..SpikeThresholds::default()
    };
    let mut detector = SpikeDetector::new(config);
    let mut store = SeriesStore::new(StoreConfig::default());
    let mut fired = Vec::new();
    // Midnight UTC.
    let start_ms = 1_800_057_600_000;
    assert_eq!(start_ms % 86_400_000, 0);
    for minute in 0..4 * 1440_i64 {
        let minute_of_day = minute % 1440;
        let batch = (120..140).contains(&minute_of_day);
        let unusual = (3 * 1440 + 14 * 60..3 * 1440 + 14 * 60 + 10).contains(&minute);
        let value = if batch || unusual {
            1000.0
        } else {
            100.0 + [0.0, 3.0, -2.0, 1.0, -4.0, 2.0][(minute % 6) as usize]
        };
        let at = Timestamp(start_ms + minute * 60_000);
        let sample = Sample {
            name: "tokens_rate".to_owned(),
            labels: [("key", "a")].into_iter().collect(),
            value,
            timestamp_ms: None,
        };
        store.ingest("gateway", at, std::slice::from_ref(&sample));
        for transition in detector.observe(at, &store) {
            if let Transition::Fired(_) = transition {
                fired.push(minute);
            }
        }
    }
    fired
}

#[test]
fn a_nightly_batch_fires_every_night_without_seasonality() {
    let night = |day: i64| day * 1440 + 121;
    assert_eq!(
        four_days(0),
        vec![
            night(0),
            night(1),
            night(2),
            night(3),
            3 * 1440 + 14 * 60 + 1
        ]
    );
}

#[test]
fn with_daily_seasonality_the_batch_fires_only_on_its_first_night_and_an_unusual_hour_still_fires()
{
    assert_eq!(four_days(86_400), vec![121, 3 * 1440 + 14 * 60 + 1]);
}

#[test]
fn a_config_recorded_before_seasonality_reads_as_off() {
    let mut recorded = serde_json::to_value(SpikeThresholds::default()).unwrap();
    recorded.as_object_mut().unwrap().remove("season_secs");
    let thresholds: SpikeThresholds = serde_json::from_value(recorded).unwrap();
    assert_eq!(thresholds.season_secs, 0);
    assert_eq!(SpikeThresholds::default().season_secs, 86_400);
}

#[test]
fn a_config_recorded_before_run_evidence_and_the_peak_memory_reads_as_the_first_design() {
    let mut recorded = serde_json::to_value(SpikeThresholds::default()).unwrap();
    let object = recorded.as_object_mut().unwrap();
    object.remove("run_evidence");
    object.remove("season_memory");
    let thresholds: SpikeThresholds = serde_json::from_value(recorded).unwrap();
    assert!(!thresholds.run_evidence);
    assert_eq!(thresholds.season_memory, SeasonMemory::Average);
    assert!(SpikeThresholds::default().run_evidence);
    assert_eq!(SpikeThresholds::default().season_memory, SeasonMemory::Peak);
}

#[test]
fn a_config_and_a_finding_recorded_before_units_read_as_tokens_and_serialize_as_recorded() {
    // A token detector serializes as before units existed, so recorded sessions and their
    // findings replay byte for byte; another unit is recorded.
    let tokens = serde_json::to_value(config()).unwrap();
    assert!(tokens.get("unit").is_none(), "{tokens}");
    let read: SpikeConfig = serde_json::from_value(tokens).unwrap();
    assert_eq!(read.unit, RateUnit::Tokens);
    let mut requests = config();
    requests.unit = RateUnit::Requests;
    let recorded = serde_json::to_value(&requests).unwrap();
    assert_eq!(recorded["unit"], "requests");
    let read: SpikeConfig = serde_json::from_value(recorded).unwrap();
    assert_eq!(read, requests);

    let mut detector = Harness::new(requests);
    let findings: Vec<Finding> = (0..40)
        .flat_map(|sec| {
            let rate = if sec < 30 {
                100.0 + f64::from(sec % 3)
            } else {
                2000.0
            };
            detector.observe(Timestamp(i64::from(sec) * 1000), &[("a", rate)])
        })
        .filter_map(|transition| match transition {
            Transition::Fired(finding) => Some(*finding),
            Transition::Cleared(_) => None,
        })
        .collect();
    let [finding] = findings.as_slice() else {
        panic!("{findings:?}");
    };
    assert_eq!(finding.evidence.rate_unit(), RateUnit::Requests);
    let mut recorded = serde_json::to_value(finding).unwrap();
    assert_eq!(recorded["evidence"]["unit"], "requests");
    recorded["evidence"].as_object_mut().unwrap().remove("unit");
    let before_units: Finding = serde_json::from_value(recorded).unwrap();
    assert_eq!(before_units.evidence.rate_unit(), RateUnit::Tokens);
    let again = serde_json::to_value(&before_units).unwrap();
    assert!(again["evidence"].get("unit").is_none(), "{again}");
}

/// A noisy key (one big request every third second, 100/s on average), then a steady loop
/// adding 400/s (5x): the first scrape of the loop at `LOOP_START`.
fn noisy_then_loop(run_evidence: bool) -> Vec<String> {
    let mut config = config();
    config.thresholds.warmup_samples = 30;
    config.thresholds.baseline_half_life_secs = 600.0;
    config.thresholds.run_evidence = run_evidence;
    let mut detector = Harness::new(config);
    let values: Vec<f64> = (0..LOOP_START + 60)
        .map(|sec| {
            let noise = if sec % 3 == 0 { 300.0 } else { 0.0 };
            noise + if sec >= LOOP_START { 400.0 } else { 0.0 }
        })
        .collect();
    run(&mut detector, 0, &values)
}

const LOOP_START: usize = 300;

#[test]
fn a_steady_loop_on_a_noisy_key_fires_with_run_evidence_only() {
    // The key's spread is about 1.4x its mean, so each scrape of the loop is 2 to 3.5
    // spreads up: never 6, but a run of them adds up.
    assert!(noisy_then_loop(false).is_empty());
    let log = noisy_then_loop(true);
    assert_eq!(log.len(), 1, "{log:?}");
    let fired_at: usize = log[0]
        .trim_start_matches("fired@")
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (LOOP_START + 2..LOOP_START + 30).contains(&fired_at),
        "{log:?}"
    );
}

#[test]
fn with_run_evidence_one_huge_scrape_in_a_run_of_middling_ones_does_not_fire() {
    let mut config = config();
    config.thresholds.run_evidence = true;
    let mut detector = Harness::new(config);
    // A noisy key: 0 and 200 in turn, a mean of 100 and a spread of about 100.
    let noisy: Vec<f64> = (0..40)
        .map(|i| if i % 2 == 0 { 0.0 } else { 200.0 })
        .collect();
    run(&mut detector, 0, &noisy);
    // 5,000 alone is far past 6 spreads; the 320 after it is 3x but only about 2 spreads
    // up. Each counts for at most 6 spreads, so the run of two is not enough.
    assert!(run(&mut detector, 40, &[5000.0, 320.0, 100.0]).is_empty());
    // Two scrapes both far up fire, as without run evidence (the 5,000 was learned as the
    // key's noise once its run ended, so far up is further now).
    assert_eq!(
        run(&mut detector, 43, &[6000.0, 6000.0]),
        vec!["fired@1 Page alias-of-key"]
    );
}

/// Three days of one key's rate, a reading a minute: 100/s with a wobble, plus a batch at
/// 1,000/s for 30 minutes from `batch_start` (minute of the day) every night. Returns the
/// minutes at which a finding fired.
fn nightly(memory: SeasonMemory, batch_start: i64) -> Vec<i64> {
    let mut config = config();
    config.read = SeriesRead::Value;
    config.metric = "tokens_rate".to_owned();
    config.thresholds = SpikeThresholds {
        season_memory: memory,
        ..SpikeThresholds::default()
    };
    let mut detector = SpikeDetector::new(config);
    let mut store = SeriesStore::new(StoreConfig::default());
    let mut fired = Vec::new();
    let start_ms = 1_800_057_600_000;
    for minute in 0..4 * 1440_i64 {
        let since_batch = (minute - batch_start).rem_euclid(1440);
        let value = if since_batch < 30 && minute >= batch_start {
            1000.0
        } else {
            100.0 + [0.0, 3.0, -2.0, 1.0, -4.0, 2.0][(minute % 6) as usize]
        };
        let at = Timestamp(start_ms + minute * 60_000);
        let sample = Sample {
            name: "tokens_rate".to_owned(),
            labels: [("key", "a")].into_iter().collect(),
            value,
            timestamp_ms: None,
        };
        store.ingest("gateway", at, std::slice::from_ref(&sample));
        for transition in detector.observe(at, &store) {
            if let Transition::Fired(_) = transition {
                fired.push(minute);
            }
        }
    }
    fired
}

#[test]
fn the_peak_memory_fires_a_nightly_batch_on_its_first_night_only_wherever_it_starts() {
    // Inside an hour, across an hour boundary, and three minutes before midnight, where the
    // hour after midnight of the day before is what the batch looks like.
    for batch_start in [60, 165, 1437] {
        assert_eq!(
            nightly(SeasonMemory::Peak, batch_start),
            vec![batch_start + 1],
            "batch at minute {batch_start}"
        );
    }
    // The average memory dilutes a half-hour batch over its hour and fires again.
    assert!(nightly(SeasonMemory::Average, 165).len() > 1);
}

#[test]
fn with_the_peak_memory_a_slow_climb_is_judged_against_earlier_days() {
    // Two quiet days, then a climb from 100/s to 1,000/s over two hours from 10:00: the
    // short baseline follows it, yesterday does not.
    let climb = |memory: SeasonMemory| {
        let mut config = config();
        config.read = SeriesRead::Value;
        config.metric = "tokens_rate".to_owned();
        config.thresholds = SpikeThresholds {
            season_memory: memory,
            ..SpikeThresholds::default()
        };
        let mut detector = SpikeDetector::new(config);
        let mut store = SeriesStore::new(StoreConfig::default());
        let start_ms = 1_800_057_600_000;
        let climb_start = 2 * 1440 + 600;
        for minute in 0..climb_start + 150 {
            let into = (minute - climb_start) as f64;
            let value = if minute >= climb_start {
                100.0 + 900.0 * (into / 120.0).min(1.0)
            } else {
                100.0 + [0.0, 3.0, -2.0, 1.0, -4.0, 2.0][(minute % 6) as usize]
            };
            let at = Timestamp(start_ms + minute * 60_000);
            let sample = Sample {
                name: "tokens_rate".to_owned(),
                labels: [("key", "a")].into_iter().collect(),
                value,
                timestamp_ms: None,
            };
            store.ingest("gateway", at, std::slice::from_ref(&sample));
            for transition in detector.observe(at, &store) {
                if let Transition::Fired(_) = transition {
                    return Some(minute - climb_start);
                }
            }
        }
        None
    };
    let fired = climb(SeasonMemory::Peak).expect("the climb fires");
    // 3x yesterday's busiest quarter hour is reached about 27 minutes in.
    assert!((25..40).contains(&fired), "fired {fired} minutes in");
    assert_eq!(climb(SeasonMemory::Average), None);
}
