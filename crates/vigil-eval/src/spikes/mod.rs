//! The spike detector measured on what it is for (issue 16 item 4): runaway API keys in
//! realistic LLM traffic.
//!
//! [`traffic`] builds clean days of per-key token and request counters from the Azure LLM
//! inference trace, [`shapes`] are the runaways injected into one key at a time, [`harness`] runs a
//! detector over the clean days and each injected case and scores it, and [`report`] prints
//! the table. `vigil-eval spikes <DIR>` is its command line.
//!
//! Besides the detectors on tokens, the shipped spike detector runs on each key's request
//! rate ([`request_spike_detector`]), and [`either`] scores a gateway that runs both: a loop
//! multiplies a key's requests as it does its tokens, and requests are far less noisy than
//! tokens (one long prompt does not move them).

pub mod anomaly;
pub mod harness;
pub mod report;
pub mod shapes;
pub mod traffic;

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::Context as _;
use vigil_core::detector::spike::{
    RateUnit, SeasonMemory, SeriesRead, SpikeConfig, SpikeDetector, SpikeThresholds,
};

use harness::{Alarm, GRACE_SCRAPES, Injection, KEY_LABEL, Outcome, SOURCE, WatchesStore};
use shapes::{INJECTED_RANKS, NIGHTLY_STARTS, STARTS, Shape, scrape_of};
use traffic::{KEYS_PER_SERVICE, SEED, ServiceTrace, Signal, Traffic};

/// Days of clean traffic: day 0 to learn, then the days the injections run in.
pub const N_DAYS: usize = 5;

/// The trace's two services and their files.
const SERVICES: [(&str, &str); 2] = [
    ("code", "AzureLLMInferenceTrace_code.csv"),
    ("conversation", "AzureLLMInferenceTrace_conv.csv"),
];

/// One injected case.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Case {
    /// Its shape's row in the report.
    pub row: usize,
    /// Its shape.
    pub shape: Shape,
    /// The key (index into [`Traffic::keys`]).
    pub key: usize,
    /// The scrape it starts at.
    pub start: usize,
}

/// Every case: each shape injected into each key of [`INJECTED_RANKS`] at each start time
/// ([`STARTS`], or [`NIGHTLY_STARTS`] for the nightly batch).
#[must_use]
pub fn cases(traffic: &Traffic) -> Vec<Case> {
    let mut all = Vec::new();
    for (row, shape) in Shape::all().into_iter().enumerate() {
        let starts: &[(usize, usize, usize)] = match shape {
            Shape::Nightly { .. } => &NIGHTLY_STARTS,
            Shape::Loop { .. } | Shape::Ramp { .. } | Shape::Burst { .. } => &STARTS,
        };
        for (service, _) in SERVICES {
            for rank in INJECTED_RANKS {
                let name = format!("{service}-{rank:02}");
                let Ok(key) = traffic.keys.binary_search(&name) else {
                    continue;
                };
                for (day, hour, minute) in starts {
                    all.push(Case {
                        row,
                        shape,
                        key,
                        start: scrape_of(*day, *hour, *minute),
                    });
                }
            }
        }
    }
    all
}

/// The injection of a case into the clean traffic.
#[must_use]
pub fn injection(traffic: &Traffic, signal: Signal, case: &Case) -> Injection {
    let extra = case
        .shape
        .extra_tokens(traffic.typical_of(signal, case.key, case.start));
    Injection {
        key: case.key,
        start: case.start,
        observe_scrapes: extra.len() + GRACE_SCRAPES,
        extra,
    }
}

/// What one detector made of the clean days and of every case.
#[derive(Debug, Clone, PartialEq)]
pub struct DetectorRun {
    /// The detector's name in the report.
    pub name: String,
    /// Its findings on the clean days.
    pub clean: Vec<harness::Alarm>,
    /// Its outcome for each case, in the order of [`cases`].
    pub outcomes: Vec<Outcome>,
    /// Per case (as `outcomes`), the findings raised while it ran.
    pub case_alarms: Vec<Vec<Alarm>>,
}

/// Runs `detector` (fresh, with its shipped settings) over the clean days and every case.
pub fn run_detector<D: WatchesStore>(
    name: &str,
    traffic: &Traffic,
    signal: Signal,
    cases: &[Case],
    detector: D,
) -> DetectorRun {
    let counters = harness::counters(signal.rows(traffic));
    let starts: BTreeSet<usize> = cases.iter().map(|case| case.start).collect();
    let clean = harness::run_clean(traffic, signal, &counters, detector, &starts);
    let case_alarms: Vec<Vec<Alarm>> = cases
        .iter()
        .map(|case| {
            let Some(copy) = clean.snapshots.get(&case.start) else {
                return Vec::new();
            };
            let injection = injection(traffic, signal, case);
            harness::run_case(traffic, signal, &counters, copy.clone(), &injection)
        })
        .collect();
    DetectorRun {
        name: name.to_owned(),
        clean: clean.alarms,
        outcomes: score_cases(cases, &case_alarms),
        case_alarms,
    }
}

/// Each case's outcome given the findings raised while it ran.
fn score_cases(cases: &[Case], case_alarms: &[Vec<Alarm>]) -> Vec<Outcome> {
    cases
        .iter()
        .zip(case_alarms)
        .map(|(case, alarms)| harness::score(alarms, case.key, case.start, &case.shape.episodes()))
        .collect()
}

/// Scrapes within which a second finding on the same key joins the first one's incident
/// (one page, one false alarm), as the diagnoser groups findings about one subject.
pub const JOIN_SCRAPES: usize = 60;

/// What a gateway running both detectors gets: the findings of either, a finding on a key
/// that another found within [`JOIN_SCRAPES`] before counted once.
#[must_use]
pub fn either(
    name: &str,
    cases: &[Case],
    first: &DetectorRun,
    second: &DetectorRun,
) -> DetectorRun {
    let case_alarms: Vec<Vec<Alarm>> = first
        .case_alarms
        .iter()
        .zip(&second.case_alarms)
        .map(|(one, other)| joined(one, other))
        .collect();
    DetectorRun {
        name: name.to_owned(),
        clean: joined(&first.clean, &second.clean),
        outcomes: score_cases(cases, &case_alarms),
        case_alarms,
    }
}

/// Both lists of findings in scrape order, those on a key already found within
/// [`JOIN_SCRAPES`] left out (a page by either makes the kept one page).
fn joined(one: &[Alarm], other: &[Alarm]) -> Vec<Alarm> {
    let mut all: Vec<Alarm> = one.iter().chain(other).copied().collect();
    all.sort_by_key(|alarm| (alarm.scrape, alarm.key));
    let mut kept: Vec<Alarm> = Vec::new();
    for alarm in all {
        let joins = kept.iter_mut().rev().find(|earlier| {
            earlier.key == alarm.key && alarm.scrape - earlier.scrape <= JOIN_SCRAPES
        });
        match joins {
            Some(earlier) => earlier.page |= alarm.page,
            None => kept.push(alarm),
        }
    }
    kept
}

/// The request-rate floor of [`request_spike_detector`], per second: twelve requests a
/// minute. Set from what a loop must send to matter, not from this harness's results.
pub const REQUEST_MIN_RATE_PER_SEC: f64 = 0.2;

/// The shipped spike detector's thresholds on a key's request rate
/// (`litellm_requests_metric_total`), its floor in requests.
#[must_use]
pub fn request_spike_detector() -> SpikeDetector {
    let mut config = shipped_spike_detector().config().clone();
    config.name = "key-request-spike".to_owned();
    config.metric = Signal::Requests.metric().to_owned();
    config.unit = RateUnit::Requests;
    config.thresholds.min_rate_per_sec = REQUEST_MIN_RATE_PER_SEC;
    SpikeDetector::new(config)
}

/// The spike detector as examples/vigil.yaml ships it (`token-spike`): its thresholds are
/// [`SpikeThresholds::default`].
#[must_use]
pub fn shipped_spike_detector() -> SpikeDetector {
    SpikeDetector::new(SpikeConfig {
        name: "token-spike".to_owned(),
        source: SOURCE.to_owned(),
        metric: Signal::Tokens.metric().to_owned(),
        read: SeriesRead::CounterRate,
        unit: Default::default(),
        group_by: KEY_LABEL.to_owned(),
        alias_label: None,
        team_label: None,
        ignore_values: vec![String::new(), "None".to_owned()],
        max_groups: 10_000,
        thresholds: SpikeThresholds::default(),
    })
}

/// The spike detector with the settings shipped before `run_evidence` and the peak memory
/// (both off), for comparison.
#[must_use]
pub fn earlier_spike_detector() -> SpikeDetector {
    let mut detector = shipped_spike_detector().config().clone();
    detector.thresholds.run_evidence = false;
    detector.thresholds.season_memory = SeasonMemory::Average;
    SpikeDetector::new(detector)
}

/// The seed of the traffic: [`SEED`], or the environment's `VIGIL_SPIKES_SEED` (a number)
/// to check that a result is not a property of one draw.
///
/// # Errors
/// `VIGIL_SPIKES_SEED` is set but not a number.
pub fn seed() -> anyhow::Result<u64> {
    match std::env::var("VIGIL_SPIKES_SEED") {
        Ok(text) => text
            .trim()
            .parse()
            .with_context(|| format!("VIGIL_SPIKES_SEED `{text}` is not a number")),
        Err(_) => Ok(SEED),
    }
}

/// Loads the trace folder, builds the traffic, runs every detector and renders the report.
///
/// # Errors
/// A missing or malformed trace file.
pub fn run(folder: &Path) -> anyhow::Result<String> {
    let mut services: Vec<ServiceTrace> = Vec::new();
    for (service, file) in SERVICES {
        let path = folder.join(file);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read `{}`", path.display()))?;
        services.push(traffic::load_service(service, &text, file)?);
    }
    let seed = seed()?;
    let traffic = traffic::build(&services, N_DAYS, seed);
    let cases = cases(&traffic);
    let anomaly_detector = anomaly::detector()?;
    let runs = std::thread::scope(|scope| {
        let spike = scope.spawn(|| {
            run_detector(
                "token-spike (shipped)",
                &traffic,
                Signal::Tokens,
                &cases,
                shipped_spike_detector(),
            )
        });
        let earlier = scope.spawn(|| {
            run_detector(
                "spike (before: avg memory)",
                &traffic,
                Signal::Tokens,
                &cases,
                earlier_spike_detector(),
            )
        });
        let anomaly = scope.spawn(|| {
            run_detector(
                "anomaly (adaptive defaults, up)",
                &traffic,
                Signal::Tokens,
                &cases,
                anomaly_detector,
            )
        });
        let requests = scope.spawn(|| {
            run_detector(
                "key-request-spike (shipped)",
                &traffic,
                Signal::Requests,
                &cases,
                request_spike_detector(),
            )
        });
        [
            spike.join(),
            earlier.join(),
            anomaly.join(),
            requests.join(),
        ]
    });
    let mut finished = Vec::new();
    for run in runs {
        match run {
            Ok(run) => finished.push(run),
            Err(_) => anyhow::bail!("a detector's run panicked"),
        }
    }
    if let (Some(tokens), Some(requests)) = (finished.first(), finished.last()) {
        let both = either("both (examples/vigil.yaml)", &cases, tokens, requests);
        finished.push(both);
    }
    let mut report = report::render(&services, &traffic, &cases, &finished, KEYS_PER_SERVICE);
    report.push_str(&report::settings(
        seed,
        &shipped_spike_detector().config().thresholds,
    ));
    Ok(report)
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
    fn findings_of_either_detector_on_one_key_join_within_the_window() {
        let tokens = [alarm(10, 1, false), alarm(200, 1, false)];
        let requests = [alarm(9, 1, true), alarm(12, 2, false), alarm(69, 1, false)];
        assert_eq!(
            joined(&tokens, &requests),
            [alarm(9, 1, true), alarm(12, 2, false), alarm(200, 1, false)]
        );
        assert_eq!(joined(&[], &[]), []);
    }
}
