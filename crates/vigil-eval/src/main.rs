//! `vigil-eval`: scores vigil's detector on public benchmarks.
//!
//! `vigil-eval nab <DIR>` runs the shipped detector over a NAB folder and prints NAB's scores
//! under its three profiles (`cargo run --release -p vigil-eval -- nab ../shared/data/nab`);
//! `vigil-eval azure <DIR>` counts false positives on the Azure LLM inference trace.

use std::ffi::OsString;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use vigil_core::detector::adaptive::{AdaptiveConfig, AdaptiveDetector};
use vigil_core::time::Timestamp;
use vigil_eval::nab::data::load_corpus;
use vigil_eval::nab::run::{DetectorStep, StreamDetector, run_corpus};

const USAGE: &str = "usage: vigil-eval nab <DIR> | vigil-eval azure <DIR>

  nab <DIR>   run vigil's detector over the NAB folder <DIR> (`combined_windows.json` and
              `data/<category>/<series>.csv`) and print its NAB scores under the standard,
              reward_low_FP_rate and reward_low_FN_rate profiles
  azure <DIR> replay the Azure LLM inference trace (<DIR> holds its two CSVs) as per-minute
              token counters and count the spike findings it raises (all false positives)";

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
        [command, folder] if command == "nab" => match nab(Path::new(folder)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("error: {error:#}");
                ExitCode::FAILURE
            }
        },
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

fn nab(folder: &Path) -> anyhow::Result<()> {
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
    }
    let report = run_corpus(&corpus, SHIPPED_DETECTOR_NAME, shipped_detector)?;
    print!("{}", report.render());
    Ok(())
}
