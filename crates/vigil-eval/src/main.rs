//! `vigil-eval`: scores vigil's detector on public benchmarks.
//!
//! `vigil-eval nab <DIR>` runs the shipped detector over a NAB folder and prints NAB's scores
//! under its three profiles (`cargo run --release -p vigil-eval -- nab ../shared/data/nab`);
//! `vigil-eval nab-cv <DIR>` cross-validates its settings, one NAB category left out at a time;
//! `vigil-eval azure <DIR>` counts false positives on the Azure LLM inference trace.

use std::ffi::OsString;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use vigil_core::detector::adaptive::{AdaptiveConfig, AdaptiveDetector};
use vigil_core::time::Timestamp;
use vigil_eval::nab::cv;
use vigil_eval::nab::data::load_corpus;
use vigil_eval::nab::run::{DetectorStep, StreamDetector, run_corpus};

const USAGE: &str =
    "usage: vigil-eval nab <DIR> [--detector adaptive|spike] | vigil-eval azure <DIR>
       | vigil-eval nab-cv <DIR> [--ablations | --sensitivity | --structure]
       | vigil-eval spikes <DIR> | vigil-eval drift

  nab <DIR> [--detector adaptive|spike]
              run vigil's detector over the NAB folder <DIR> (`combined_windows.json` and
              `data/<category>/<series>.csv`) and print its NAB scores under the standard,
              reward_low_FP_rate and reward_low_FN_rate profiles: the adaptive detector (what
              the `anomaly` kind runs; the default) or the engine's spike detector
  nab-cv <DIR> [--ablations | --sensitivity | --structure]
              leave-one-category-out cross-validation of the detector's settings over the NAB
              folder <DIR>: every fold, the pooled cross-validated score and, with
              --ablations, the same for each variant of the method with one idea turned off;
              with --sensitivity, for each structural constant halved and doubled; with
              --structure, the structure chosen by the folds too (a grid 27 times larger)
  azure <DIR> replay the Azure LLM inference trace (<DIR> holds its two CSVs) as per-minute
              token counters and count the spike findings it raises (all false positives)
  spikes <DIR>
              inject runaway keys (loops, ramps, bursts, nightly batches) into day-long
              per-key token traffic built from the Azure trace (<DIR> holds its two CSVs)
              and print what the spike and anomaly detectors caught, how late, and their
              false alarms
  drift       simulate eval pass rates that slide slowly (95 % to 70 % over 6, 24, 72 h) and
              stable suites, and print the proportion-drop detector's detection delays and
              false alarms with and without its drift test";

/// What the report calls the detector that [`shipped_detector`] makes.
const SHIPPED_DETECTOR_NAME: &str = "vigil_core::detector::adaptive (default config)";

/// The detector that `vigil-eval nab` scores, made fresh for each series: vigil's adaptive
/// detector with its shipped (default) configuration.
fn shipped_detector() -> anyhow::Result<Adaptive> {
    let config = AdaptiveConfig::default();
    config.validate()?;
    Ok(Adaptive(AdaptiveDetector::new(config)))
}

/// [`AdaptiveDetector`] seen as a [`StreamDetector`].
struct Adaptive(AdaptiveDetector);

impl StreamDetector for Adaptive {
    fn step(&mut self, at_ms: i64, value: f64) -> DetectorStep {
        let step = self.0.step(Timestamp(at_ms), value);
        DetectorStep {
            score: step.score,
            alert: step.alert,
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    match args.as_slice() {
        [command, folder, rest @ ..]
            if command == "nab"
                && (rest.is_empty()
                    || rest == ["--detector", "adaptive"]
                    || rest == ["--detector", "spike"]) =>
        {
            match nab(
                Path::new(folder),
                rest.last().is_some_and(|name| name == "spike"),
            ) {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!("error: {error:#}");
                    ExitCode::FAILURE
                }
            }
        }
        [command, folder, rest @ ..]
            if command == "nab-cv"
                && (rest.is_empty()
                    || rest == ["--ablations"]
                    || rest == ["--sensitivity"]
                    || rest == ["--structure"]) =>
        {
            let variants = if rest == ["--ablations"] {
                Variants::Ablations
            } else if rest == ["--sensitivity"] {
                Variants::Sensitivity
            } else if rest == ["--structure"] {
                Variants::Structure
            } else {
                Variants::None
            };
            match nab_cv(Path::new(folder), variants) {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!("error: {error:#}");
                    ExitCode::FAILURE
                }
            }
        }
        [command, folder] if command == "azure" => {
            match vigil_eval::azure::run(Path::new(folder)) {
                Ok(report) => {
                    print!("{report}");
                    ExitCode::SUCCESS
                }
                Err(error) => {
                    eprintln!("error: {error:#}");
                    ExitCode::FAILURE
                }
            }
        }
        [command, folder] if command == "spikes" => {
            match vigil_eval::spikes::run(Path::new(folder)) {
                Ok(report) => {
                    print!("{report}");
                    ExitCode::SUCCESS
                }
                Err(error) => {
                    eprintln!("error: {error:#}");
                    ExitCode::FAILURE
                }
            }
        }
        [command] if command == "drift" => {
            print!(
                "{}",
                vigil_eval::drift::report(vigil_eval::drift::REPORT_SIZES)
            );
            ExitCode::SUCCESS
        }
        [flag] if flag == "-h" || flag == "--help" => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn nab(folder: &Path, spike: bool) -> anyhow::Result<()> {
    let corpus = load_corpus(folder)
        .with_context(|| format!("cannot load the NAB folder `{}`", folder.display()))?;
    for series in &corpus.series {
        if let Some(first) = series.clock_went_back.first() {
            eprintln!(
                "{}/{}: the clock goes back at {} line(s), first at line {first}; every row is kept in file order and scored at the latest time seen",
                series.category,
                series.file_name,
                series.clock_went_back.len()
            );
        }
        if let Some(columns) = &series.columns {
            eprintln!("{}/{}: {columns}", series.category, series.file_name);
        }
        for bad_value in &series.bad_values {
            eprintln!(
                "{}/{}:{}: {}; the row is kept, not given to the detector and never an alert",
                series.category, series.file_name, bad_value.line, bad_value.reason
            );
        }
    }
    let report = if spike {
        run_corpus(&corpus, SPIKE_DETECTOR_NAME, || Ok(Spike::new()))?
    } else {
        run_corpus(&corpus, SHIPPED_DETECTOR_NAME, shipped_detector)?
    };
    print!("{}", report.render());
    Ok(())
}

/// What the report calls the spike detector.
const SPIKE_DETECTOR_NAME: &str =
    "vigil_core::detector::spike (SpikeThresholds::default(), each value read as the rate)";

/// The engine's spike detector with its shipped thresholds over a one-series store, each
/// value read as the rate it watches (as `vigil backtest --detector spike` does). It is built
/// for the rate of a counter per key, upward only, with a floor of 50 units per second, so
/// NAB is not what it is for; the score says how it does on streams in general.
struct Spike {
    detector: vigil_core::detector::spike::SpikeDetector,
    store: vigil_core::store::SeriesStore,
}

impl Spike {
    fn new() -> Spike {
        use vigil_core::detector::spike::{
            SeriesRead, SpikeConfig, SpikeDetector, SpikeThresholds,
        };
        Spike {
            detector: SpikeDetector::new(SpikeConfig {
                name: "spike".to_owned(),
                source: "nab".to_owned(),
                metric: "nab_value".to_owned(),
                read: SeriesRead::Value,
                unit: Default::default(),
                group_by: "series".to_owned(),
                alias_label: None,
                team_label: None,
                ignore_values: Vec::new(),
                max_groups: 1,
                thresholds: SpikeThresholds::default(),
            }),
            store: vigil_core::store::SeriesStore::new(vigil_core::store::StoreConfig::default()),
        }
    }
}

impl StreamDetector for Spike {
    fn step(&mut self, at_ms: i64, value: f64) -> DetectorStep {
        let at = Timestamp(at_ms);
        let sample = vigil_core::signal::Sample {
            name: "nab_value".to_owned(),
            labels: vigil_core::signal::Labels::from_iter([("series", "nab")]),
            value,
            timestamp_ms: None,
        };
        self.store.ingest("nab", at, std::slice::from_ref(&sample));
        let alert = self
            .detector
            .observe(at, &self.store)
            .iter()
            .any(|transition| matches!(transition, vigil_core::detector::Transition::Fired(_)));
        let score = if self.detector.view("nab").is_some_and(|view| view.firing) {
            1.0
        } else {
            0.0
        };
        DetectorStep { score, alert }
    }
}

/// The threads `nab-cv` runs candidates on.
const NAB_CV_THREADS: usize = 2;

/// Which variants of the method `nab-cv` cross-validates after the shipped one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Variants {
    None,
    /// One idea turned on or off at a time.
    Ablations,
    /// One structural constant halved or doubled at a time.
    Sensitivity,
    /// No variants: the grid itself spans the structures too.
    Structure,
}

fn nab_cv(folder: &Path, variants: Variants) -> anyhow::Result<()> {
    let corpus = load_corpus(folder)
        .with_context(|| format!("cannot load the NAB folder `{}`", folder.display()))?;
    let default = AdaptiveConfig::default();
    let grid = if variants == Variants::Structure {
        cv::structure_grid(&default)
    } else {
        cv::candidate_grid(&default)
    };
    let reports = cv::run_candidates(&corpus, &grid, NAB_CV_THREADS)?;
    let default_report = cv::run_config(&corpus, SHIPPED_DETECTOR_NAME, &default)?;
    let names = grid.into_iter().map(|candidate| candidate.name).collect();
    print!(
        "{}",
        cv::cross_validate(names, &reports, &default_report).render()
    );
    let (title, variants) = match variants {
        Variants::None | Variants::Structure => return Ok(()),
        Variants::Ablations => ("ablations", cv::ablation_variants(&default)),
        Variants::Sensitivity => (
            "sensitivity (each structural constant halved and doubled, the grid re-chosen)",
            cv::sensitivity_variants(&default),
        ),
    };
    let lines = cv::ablations(&corpus, &variants, NAB_CV_THREADS)?;
    print!("\n{title}:\n{}", cv::render_ablations(&lines));
    Ok(())
}
