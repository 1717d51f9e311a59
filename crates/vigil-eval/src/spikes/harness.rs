//! Running a detector over the clean traffic and over each injected case, and scoring what it
//! raised: detection and delay on the injected key, false alarms on the others.
//!
//! The clean run goes once over every day; each case starts from a copy of the detector as
//! the clean run left it just before the case's first scrape, in a fresh store given the hour
//! of clean scrapes before it (all a detector can read: the store keeps an hour).

use std::collections::{BTreeMap, BTreeSet};

use vigil_core::detector::spike::SpikeDetector;
use vigil_core::detector::{Severity, Transition};
use vigil_core::signal::{Labels, Sample};
use vigil_core::store::{SeriesStore, StoreConfig};
use vigil_core::time::Timestamp;

use super::traffic::{SCRAPES_PER_HOUR, Traffic};

/// The source the shipped config scrapes LiteLLM as.
pub const SOURCE: &str = "litellm-gateway";

/// LiteLLM's token counter.
pub const METRIC: &str = Signal::Tokens.metric();

pub use super::traffic::Signal;

/// The label that names a key.
pub const KEY_LABEL: &str = "hashed_api_key";

/// A detector the harness can run: it observes the store after each scrape.
pub trait WatchesStore: Clone {
    /// What changed after the scrape stored at `at`.
    fn observe(&mut self, at: Timestamp, store: &SeriesStore) -> Vec<Transition>;
}

impl WatchesStore for SpikeDetector {
    fn observe(&mut self, at: Timestamp, store: &SeriesStore) -> Vec<Transition> {
        SpikeDetector::observe(self, at, store)
    }
}

/// A finding raised: when, on which key, and whether it pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Alarm {
    /// The scrape it was raised at.
    pub scrape: usize,
    /// The key (index into [`Traffic::keys`]); `None` for a subject that is no key.
    pub key: Option<usize>,
    /// Whether its severity is `page` (else a ticket or lower).
    pub page: bool,
}

/// Feeds scrapes to a store and a detector, keeping the findings it raised.
struct Feeder<D> {
    store: SeriesStore,
    detector: D,
    samples: Vec<Sample>,
    keys: Vec<String>,
}

impl<D: WatchesStore> Feeder<D> {
    fn new(detector: D, keys: &[String], signal: Signal) -> Self {
        let samples = keys
            .iter()
            .map(|key| Sample {
                name: signal.metric().to_owned(),
                labels: Labels::from_iter([(KEY_LABEL, key.as_str())]),
                value: 0.0,
                timestamp_ms: None,
            })
            .collect();
        Feeder {
            store: SeriesStore::new(StoreConfig::default()),
            detector,
            samples,
            keys: keys.to_vec(),
        }
    }

    /// Stores scrape `scrape` with these counter values.
    fn store(&mut self, scrape: usize, counters: impl Iterator<Item = f64>) {
        for (sample, value) in self.samples.iter_mut().zip(counters) {
            sample.value = value;
        }
        let at = Timestamp(Traffic::scrape_at(scrape));
        self.store.ingest(SOURCE, at, &self.samples);
    }

    /// Stores scrape `scrape` and lets the detector observe it.
    fn step(&mut self, scrape: usize, counters: impl Iterator<Item = f64>) -> Vec<Alarm> {
        self.store(scrape, counters);
        let at = Timestamp(Traffic::scrape_at(scrape));
        self.detector
            .observe(at, &self.store)
            .into_iter()
            .filter_map(|transition| match transition {
                Transition::Fired(finding) => Some(Alarm {
                    scrape,
                    key: self.keys.binary_search(&finding.subject.value).ok(),
                    page: finding.severity == Severity::Page,
                }),
                Transition::Cleared(_) => None,
            })
            .collect()
    }
}

/// Per key, its counter at each scrape (the running sum of its clean tokens).
#[must_use]
pub fn counters(rows: &[Vec<f64>]) -> Vec<Vec<f64>> {
    rows.iter()
        .map(|row| {
            let mut total = 0.0;
            row.iter()
                .map(|tokens| {
                    total += tokens;
                    total
                })
                .collect()
        })
        .collect()
}

/// The clean run: every finding, and a copy of the detector just before each scrape of
/// `snapshot_at`.
pub struct CleanRun<D> {
    /// Every finding raised on clean traffic.
    pub alarms: Vec<Alarm>,
    /// The detector before each requested scrape.
    pub snapshots: BTreeMap<usize, D>,
}

/// Runs `detector` over the clean traffic.
pub fn run_clean<D: WatchesStore>(
    traffic: &Traffic,
    signal: Signal,
    counters: &[Vec<f64>],
    detector: D,
    snapshot_at: &BTreeSet<usize>,
) -> CleanRun<D> {
    let mut feeder = Feeder::new(detector, &traffic.keys, signal);
    let mut run = CleanRun {
        alarms: Vec::new(),
        snapshots: BTreeMap::new(),
    };
    for scrape in 0..traffic.n_scrapes {
        if snapshot_at.contains(&scrape) {
            run.snapshots.insert(scrape, feeder.detector.clone());
        }
        let values = counters
            .iter()
            .map(|row| row.get(scrape).copied().unwrap_or(0.0));
        run.alarms.extend(feeder.step(scrape, values));
    }
    run
}

/// One injected case: `extra[i]` tokens added to `key` in scrape `start + i`.
#[derive(Debug, Clone, PartialEq)]
pub struct Injection {
    /// The key.
    pub key: usize,
    /// The first scrape with extra tokens.
    pub start: usize,
    /// Extra tokens per scrape from `start`.
    pub extra: Vec<f64>,
    /// The scrapes to observe, from `start`.
    pub observe_scrapes: usize,
}

/// Runs one injected case from `detector`, the clean run's copy from just before
/// `injection.start`, and returns the findings raised from `start` on.
pub fn run_case<D: WatchesStore>(
    traffic: &Traffic,
    signal: Signal,
    counters: &[Vec<f64>],
    detector: D,
    injection: &Injection,
) -> Vec<Alarm> {
    let mut feeder = Feeder::new(detector, &traffic.keys, signal);
    let clean_at = |scrape: usize| {
        counters
            .iter()
            .map(move |row| row.get(scrape).copied().unwrap_or(0.0))
    };
    // The hour before, as the store held it (not observed: the copy has seen it).
    for scrape in injection.start.saturating_sub(SCRAPES_PER_HOUR)..injection.start {
        feeder.store(scrape, clean_at(scrape));
    }
    let mut added = 0.0;
    let mut alarms = Vec::new();
    for offset in 0..injection.observe_scrapes {
        let scrape = injection.start + offset;
        if scrape >= traffic.n_scrapes {
            break;
        }
        added += injection.extra.get(offset).copied().unwrap_or(0.0);
        let values = clean_at(scrape).enumerate().map(|(key, value)| {
            if key == injection.key {
                value + added
            } else {
                value
            }
        });
        alarms.extend(feeder.step(scrape, values));
    }
    alarms
}

/// What a detector made of one episode of an injection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Episode {
    /// Scrapes from the episode's start to the first finding on the key, counting both ends
    /// (1: the first scrape that saw the runaway); `None` if none came before the episode
    /// ended plus [`GRACE_SCRAPES`].
    pub delay: Option<usize>,
    /// Whether that finding pages.
    pub page: bool,
}

/// Scrapes after an episode's end in which a finding still counts as detecting it.
pub const GRACE_SCRAPES: usize = 2;

/// What a detector made of one injected case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Per episode (one, or one a night).
    pub episodes: Vec<Episode>,
    /// Findings on other keys while an episode ran (plus the grace).
    pub collateral: usize,
}

/// Scores the findings of a case whose episodes are `(first, scrapes)` from `start`.
#[must_use]
pub fn score(alarms: &[Alarm], key: usize, start: usize, episodes: &[(usize, usize)]) -> Outcome {
    let mut outcome = Outcome {
        episodes: Vec::new(),
        collateral: 0,
    };
    for (first, length) in episodes {
        let window = start + first..start + first + length + GRACE_SCRAPES;
        let on_key = alarms
            .iter()
            .find(|alarm| alarm.key == Some(key) && window.contains(&alarm.scrape));
        outcome.episodes.push(Episode {
            delay: on_key.map(|alarm| alarm.scrape - window.start + 1),
            page: on_key.is_some_and(|alarm| alarm.page),
        });
        outcome.collateral += alarms
            .iter()
            .filter(|alarm| alarm.key != Some(key) && window.contains(&alarm.scrape))
            .count();
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alarm(scrape: usize, key: usize, page: bool) -> Alarm {
        Alarm {
            scrape,
            key: Some(key),
            page,
        }
    }

    #[test]
    fn detection_counts_the_first_finding_on_the_key_inside_the_window() {
        // Injection into key 3 from scrape 100 for 10 scrapes: a finding on key 3 before the
        // start does not count, the one at 101 does (delay 2), later ones do not matter.
        let alarms = [
            alarm(99, 3, true),
            alarm(101, 3, false),
            alarm(105, 3, true),
            alarm(104, 5, false),
            alarm(200, 5, false),
        ];
        let outcome = score(&alarms, 3, 100, &[(0, 10)]);
        assert_eq!(
            outcome,
            Outcome {
                episodes: vec![Episode {
                    delay: Some(2),
                    page: false
                }],
                collateral: 1
            }
        );
    }

    #[test]
    fn a_finding_after_the_grace_is_a_miss_and_within_it_a_late_detection() {
        let episodes = [(0, 2)];
        // Window: scrapes 50, 51 and the grace 52, 53.
        let late = score(&[alarm(53, 0, true)], 0, 50, &episodes);
        assert_eq!(late.episodes[0].delay, Some(4));
        assert!(late.episodes[0].page);
        let missed = score(&[alarm(54, 0, true)], 0, 50, &episodes);
        assert_eq!(missed.episodes[0].delay, None);
        assert!(!missed.episodes[0].page);
    }

    #[test]
    fn each_night_is_scored_on_its_own() {
        let episodes = [(0, 10), (1000, 10), (2000, 10)];
        let alarms = [
            alarm(5, 1, true),
            alarm(2003, 1, false),
            alarm(1005, 2, false),
        ];
        let outcome = score(&alarms, 1, 0, &episodes);
        let delays: Vec<_> = outcome.episodes.iter().map(|e| e.delay).collect();
        assert_eq!(delays, [Some(6), None, Some(4)]);
        assert_eq!(outcome.collateral, 1);
    }

    #[test]
    fn the_harness_feeds_counters_so_a_loop_is_found_and_clean_traffic_is_not() {
        use vigil_core::detector::spike::{SeriesRead, SpikeConfig, SpikeThresholds};
        let n = 400;
        let keys = vec!["a".to_owned(), "b".to_owned()];
        // 1,500 tokens a scrape (100/s) with a small wobble, for both keys.
        let row: Vec<f64> = (0..n).map(|i| 1500.0 + (i % 5) as f64 * 30.0).collect();
        let traffic = Traffic {
            keys,
            tokens: vec![row.clone(), row],
            requests: vec![vec![1.0; n]; 2],
            n_scrapes: n,
        };
        let counters = counters(&traffic.tokens);
        let detector = SpikeDetector::new(SpikeConfig {
            name: "token-spike".to_owned(),
            source: SOURCE.to_owned(),
            metric: METRIC.to_owned(),
            read: SeriesRead::CounterRate,
            unit: Default::default(),
            group_by: KEY_LABEL.to_owned(),
            alias_label: None,
            team_label: None,
            ignore_values: Vec::new(),
            max_groups: 10,
            thresholds: SpikeThresholds::default(),
        });
        let clean = run_clean(
            &traffic,
            Signal::Tokens,
            &counters,
            detector,
            &BTreeSet::from([300]),
        );
        assert_eq!(clean.alarms, []);
        let injection = Injection {
            key: 1,
            start: 300,
            extra: vec![19.0 * 1500.0; 20],
            observe_scrapes: 22,
        };
        let alarms = run_case(
            &traffic,
            Signal::Tokens,
            &counters,
            clean.snapshots[&300].clone(),
            &injection,
        );
        assert_eq!(alarms, [alarm(301, 1, true)]);
        let outcome = score(&alarms, 1, 300, &[(0, 20)]);
        assert_eq!(outcome.episodes[0].delay, Some(2));
    }
}
