//! `vigil backtest --detector NAME --csv FILE [--config FILE]`: streams a `timestamp,value`
//! history through a detector and writes `timestamp,value,anomaly_score,alert` to stdout, so
//! that an SRE can see what a detector would have said about their own data before trusting
//! it.
//!
//! Detectors: `adaptive` (the univariate anomaly detector scored on NAB) and `spike` (the
//! engine's token and spend spike detector, each value read as the rate it watches), with
//! their shipped settings; or, with `--config`, a spike, threshold or anomaly detector
//! configured there by name (a threshold or anomaly detector reads each value as its
//! reading: the latency quantile, the ratio, the hours left; an anomaly detector keeps its
//! direction, daily memory, probability, warm-up and clearing). Detectors of two counters (`burn_rate`,
//! `proportion_drop`) and version markers do not read one series and are refused with why.
//!
//! Timestamps may be calendar (`2024-05-01 12:00:00`, `2024-05-01T12:00:00.250Z`, read as
//! UTC), Unix seconds (`1714564800`, `1714564800.25`) or Unix milliseconds (an integer of 12
//! digits or more).
//!
//! Every input row gets an output row (blank lines aside, as pandas skips them), with a
//! fifth column, `note`, empty for a scored row. A row that cannot be scored is reported on
//! stderr with its line and written with an empty score, alert 0 and the reason in `note`;
//! the rows around it still go through. That covers a value that is not a number, NaN or
//! infinite, a timestamp that does not parse, a row without two fields, and a timestamp
//! earlier than the latest one scored: a clock that went back (as exported clocks do around
//! a daylight-saving change) or rows out of order. Such a point is not fed to the detector,
//! whose baselines and windows assume time moves forward: it is kept, said and not scored.
//! A timestamp equal to the latest one is scored (repeats are common in exports). A first line
//! whose second field is not a number is a header, whatever its column names: the timestamp
//! is the first column and the value the one named `value` (in any case), else the second;
//! the choice is said on stderr when the header names another layout. Exit status: 0
//! when every row was scored, 1 when some were not, 2 when the input or the config could not
//! be read.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use vigil_core::Timestamp;
use vigil_core::detector::adaptive::{AdaptiveConfig, AdaptiveDetector};
use vigil_core::detector::anomaly::{AnomalyConfig, AnomalyDetector};
use vigil_core::detector::spike::{SeriesRead, SpikeConfig, SpikeDetector, SpikeThresholds};
use vigil_core::detector::threshold::{Bound, Reading, ThresholdConfig, ThresholdDetector};
use vigil_core::detector::{DetectorConfig, Transition};
use vigil_core::signal::{Labels, Sample};
use vigil_core::store::{Selector, SeriesStore, StoreConfig};

use crate::config;

/// The command's arguments.
#[derive(Debug, Clone)]
pub struct BacktestArgs {
    /// `adaptive`, `spike`, or the name of a detector in `config`.
    pub detector: String,
    /// The CSV, or `-` for standard input.
    pub csv: PathBuf,
    /// A vigil config whose detectors may be named.
    pub config: Option<PathBuf>,
}

/// Exit status when the input or the config could not be read.
const UNREADABLE: u8 = 2;

/// Runs the command.
pub fn run(args: &BacktestArgs) -> ExitCode {
    let mut detector = match Detector::build(&args.detector, args.config.as_deref()) {
        Ok(detector) => detector,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(UNREADABLE);
        }
    };
    let shown = args.csv.display().to_string();
    let reader: Box<dyn BufRead> = if args.csv.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        match std::fs::File::open(&args.csv) {
            Ok(file) => Box::new(std::io::BufReader::new(file)),
            Err(error) => {
                eprintln!("error: cannot read `{shown}`: {error}");
                return ExitCode::from(UNREADABLE);
            }
        }
    };
    let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
    let summary = match stream(reader, &shown, &mut detector, &mut stdout) {
        Ok(summary) => summary,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(UNREADABLE);
        }
    };
    if stdout.flush().is_err() {
        // A closed pipe (`| head`): what was wanted was written.
        return ExitCode::SUCCESS;
    }
    eprintln!(
        "{shown}: {} rows through `{}`, {} alerts, {} rows not scored",
        summary.rows, args.detector, summary.alerts, summary.skipped
    );
    if summary.skipped == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// What one run did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Rows that went through the detector.
    pub rows: u64,
    /// Rows that alerted.
    pub alerts: u64,
    /// Rows reported and not scored (written with their reason).
    pub skipped: u64,
}

/// Streams `input` (named `file` in messages) through `detector`, writing the output CSV to
/// `out` and each skipped row to stderr.
///
/// # Errors
/// When `input` cannot be read; bad rows are not errors.
pub fn stream(
    input: impl BufRead,
    file: &str,
    detector: &mut Detector,
    out: &mut impl Write,
) -> Result<Summary, String> {
    let mut summary = Summary::default();
    let mut previous_at: Option<i64> = None;
    // The value's column: the second unless a header names another `value`.
    let mut value_column = 1;
    let write_failed = |error: std::io::Error| format!("cannot write the output: {error}");
    writeln!(out, "timestamp,value,anomaly_score,alert,note").map_err(write_failed)?;
    for (index, line) in input.lines().enumerate() {
        let number = index + 1;
        let line =
            line.map_err(|error| format!("cannot read `{file}` at line {number}: {error}"))?;
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        if number == 1 && is_header(line) {
            value_column = value_column_of(line);
            let names: Vec<&str> = line.split(',').map(unquote).collect();
            if names.len() != 2 || value_column != 1 {
                eprintln!(
                    "{file}:1: header `{}`: timestamps from `{}`, values from `{}`; other columns ignored",
                    line.escape_debug(),
                    names.first().copied().unwrap_or_default().escape_debug(),
                    names
                        .get(value_column)
                        .copied()
                        .unwrap_or_default()
                        .escape_debug()
                );
            }
            continue;
        }
        let row = match parse_row(line, value_column) {
            Ok(row) => row,
            Err(reason) => {
                eprintln!("{file}:{number}: {reason}; row not scored");
                summary.skipped += 1;
                write_unscored(out, line, value_column, &reason).map_err(write_failed)?;
                continue;
            }
        };
        if let Some(previous) = previous_at
            && row.at_ms < previous
        {
            let reason = format!(
                "timestamp `{}` is earlier than the latest scored row (the clock went back, or rows are out of order)",
                row.timestamp
            );
            eprintln!("{file}:{number}: {reason}; row not scored");
            summary.skipped += 1;
            write_unscored(out, line, value_column, &reason).map_err(write_failed)?;
            continue;
        }
        previous_at = Some(row.at_ms);
        let (score, alert) = detector.step(Timestamp(row.at_ms), row.value);
        summary.rows += 1;
        summary.alerts += u64::from(alert);
        writeln!(
            out,
            "{},{},{score:.6},{},",
            csv_field(row.timestamp),
            csv_field(row.value_text),
            u8::from(alert)
        )
        .map_err(write_failed)?;
    }
    Ok(summary)
}

/// A CSV field without its surrounding spaces and quotes.
fn unquote(field: &str) -> &str {
    field.trim().trim_matches('"')
}

/// The column of a header named `value` (in any case), else the second.
fn value_column_of(header: &str) -> usize {
    header
        .split(',')
        .map(unquote)
        .position(|name| name.eq_ignore_ascii_case("value"))
        .filter(|&column| column > 0)
        .unwrap_or(1)
}

/// Writes a row that was not scored: its timestamp and value fields as written, no score,
/// alert 0, and why.
fn write_unscored(
    out: &mut impl Write,
    line: &str,
    value_column: usize,
    reason: &str,
) -> std::io::Result<()> {
    let fields: Vec<&str> = line.split(',').map(unquote).collect();
    let timestamp = fields.first().copied().unwrap_or_default();
    let value = fields.get(value_column).copied().unwrap_or_default();
    writeln!(
        out,
        "{},{},,0,{}",
        csv_field(timestamp),
        csv_field(value),
        csv_field(&format!("not scored: {reason}"))
    )
}

/// A CSV field: quoted (with quotes doubled) when it holds a comma, a quote or a line break.
fn csv_field(text: &str) -> std::borrow::Cow<'_, str> {
    if text.contains([',', '"', '\n', '\r']) {
        std::borrow::Cow::Owned(format!("\"{}\"", text.replace('"', "\"\"")))
    } else {
        std::borrow::Cow::Borrowed(text)
    }
}

/// A first line that names columns rather than holding a row.
fn is_header(line: &str) -> bool {
    line.split(',')
        .nth(1)
        .is_some_and(|value| value.trim().trim_matches('"').parse::<f64>().is_err())
}

/// One usable row, with its fields as written (echoed to the output).
#[derive(Debug, Clone, PartialEq)]
struct Row<'a> {
    timestamp: &'a str,
    at_ms: i64,
    value_text: &'a str,
    value: f64,
}

fn parse_row(line: &str, value_column: usize) -> Result<Row<'_>, String> {
    let fields: Vec<&str> = line.split(',').map(unquote).collect();
    let (Some(&timestamp), Some(&value_text)) = (fields.first(), fields.get(value_column)) else {
        return Err(if value_column == 1 {
            "expected `timestamp,value`".to_owned()
        } else {
            format!("expected a value in column {}", value_column + 1)
        });
    };
    let at_ms = parse_time(timestamp)?;
    let value: f64 = value_text
        .parse()
        .map_err(|_| format!("value `{value_text}` is not a number"))?;
    if !value.is_finite() {
        return Err(format!("value `{value_text}` is not finite"));
    }
    Ok(Row {
        timestamp,
        at_ms,
        value_text,
        value,
    })
}

/// Unix seconds below this magnitude (the year 5138); integers at or above it are
/// milliseconds.
const SECONDS_LIMIT: i64 = 100_000_000_000;

/// A timestamp in milliseconds: calendar, Unix seconds (with up to three decimals) or Unix
/// milliseconds.
fn parse_time(text: &str) -> Result<i64, String> {
    let numeric = |part: &str| !part.is_empty() && part.bytes().all(|byte| byte.is_ascii_digit());
    let unsigned = text.strip_prefix('-').unwrap_or(text);
    let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    if numeric(whole) && (fraction.is_empty() || numeric(fraction)) {
        let sign = if text.starts_with('-') { -1 } else { 1 };
        let whole: i64 = whole
            .parse()
            .map_err(|_| format!("timestamp `{text}` is out of range"))?;
        if fraction.is_empty() && whole >= SECONDS_LIMIT {
            return Ok(sign * whole);
        }
        if fraction.len() > 3 && fraction.bytes().skip(3).any(|byte| byte != b'0') {
            return Err(format!("timestamp `{text}` is finer than a millisecond"));
        }
        let millis = fraction
            .bytes()
            .chain(std::iter::repeat(b'0'))
            .take(3)
            .fold(0_i64, |acc, byte| acc * 10 + i64::from(byte - b'0'));
        return whole
            .checked_mul(1000)
            .and_then(|ms| ms.checked_add(millis))
            .map(|ms| sign * ms)
            .ok_or_else(|| format!("timestamp `{text}` is out of range"));
    }
    vigil_core::datetime::parse_timestamp_ms(text).map_err(|error| error.to_string())
}

/// A detector as the backtest drives it: one value at a time, a score and an alert back.
#[derive(Debug)]
pub enum Detector {
    /// The univariate adaptive detector.
    Adaptive(Box<AdaptiveDetector>),
    /// The engine's spike detector over a one-series store.
    Spike {
        /// The detector.
        detector: Box<SpikeDetector>,
        /// The store it reads, holding the one series.
        store: Box<SeriesStore>,
    },
    /// A configured anomaly detector, reading each value as its reading.
    Anomaly {
        /// The detector.
        detector: Box<AnomalyDetector>,
        /// The store it reads, holding the one series.
        store: Box<SeriesStore>,
    },
    /// A configured threshold detector, reading each value as its reading.
    Threshold {
        /// The detector.
        detector: Box<ThresholdDetector>,
        /// The store it reads, holding the one series.
        store: Box<SeriesStore>,
    },
}

/// The source, metric and label the spike detector's one series is stored under.
const SOURCE: &str = "backtest";
const METRIC: &str = "backtest_value";
const GROUP: &str = "series";

impl Detector {
    /// `name` is `adaptive`, `spike`, or a detector configured in `config_path`.
    ///
    /// # Errors
    /// An unknown name, or a config that cannot be read or is invalid.
    pub fn build(name: &str, config_path: Option<&Path>) -> Result<Detector, String> {
        if let Some(path) = config_path {
            let text = std::fs::read_to_string(path)
                .map_err(|error| format!("cannot read `{}`: {error}", path.display()))?;
            let base_dir = path.parent().unwrap_or(Path::new("."));
            let config = config::parse(&text, &path.display().to_string(), base_dir)
                .map_err(|problems| problems.to_string())?;
            if let Some(found) = config
                .detectors
                .iter()
                .find(|detector| detector.name() == name)
            {
                return match found {
                    DetectorConfig::Spike(spike) => {
                        Ok(Detector::spike(&spike.name, spike.thresholds.clone()))
                    }
                    DetectorConfig::BurnRate(_) => Err(format!(
                        "`{name}` is a burn-rate detector, which reads two counters (bad and all events); a backtest streams one series"
                    )),
                    DetectorConfig::Threshold(threshold) => Detector::threshold(threshold),
                    DetectorConfig::Anomaly(anomaly) => Detector::anomaly(anomaly),
                    DetectorConfig::ProportionDrop(_) => Err(format!(
                        "`{name}` is a proportion-drop detector, which reads two counters (good and all events); a backtest streams one series"
                    )),
                    DetectorConfig::VersionChange(_) => Err(format!(
                        "`{name}` is a version-change marker: it watches a label's values, not a series of numbers"
                    )),
                };
            }
            if !matches!(name, "adaptive" | "spike") {
                let names: Vec<&str> = config.detectors.iter().map(DetectorConfig::name).collect();
                return Err(format!(
                    "`{}` configures no detector named `{name}` (it has: {}); the built-in ones are `adaptive` and `spike`",
                    path.display(),
                    names.join(", ")
                ));
            }
        }
        match name {
            "adaptive" => {
                let config = AdaptiveConfig::default();
                config.validate().map_err(|error| error.to_string())?;
                Ok(Detector::Adaptive(Box::new(AdaptiveDetector::new(config))))
            }
            "spike" => Ok(Detector::spike("spike", SpikeThresholds::default())),
            other => Err(format!(
                "unknown detector `{other}`: use `adaptive` or `spike`, or name a detector of `--config`"
            )),
        }
    }

    /// The engine's spike detector with `thresholds`, reading the one series as a rate.
    fn spike(name: &str, thresholds: SpikeThresholds) -> Detector {
        let config = SpikeConfig {
            name: name.to_owned(),
            source: SOURCE.to_owned(),
            metric: METRIC.to_owned(),
            read: SeriesRead::Value,
            unit: Default::default(),
            group_by: GROUP.to_owned(),
            alias_label: None,
            team_label: None,
            ignore_values: Vec::new(),
            max_groups: 1,
            thresholds,
        };
        Detector::Spike {
            detector: Box::new(SpikeDetector::new(config)),
            store: Box::new(SeriesStore::new(StoreConfig::default())),
        }
    }

    /// A configured threshold detector, its reading replaced by the one series' value (the
    /// levels, runs and severity kept).
    fn threshold(configured: &ThresholdConfig) -> Result<Detector, String> {
        let config = ThresholdConfig {
            source: SOURCE.to_owned(),
            reading: Reading::Value {
                selector: Selector::parse(METRIC).map_err(|error| error.to_string())?,
            },
            group_by: None,
            ..configured.clone()
        };
        let detector = ThresholdDetector::new(config);
        Ok(Detector::Threshold {
            detector: Box::new(detector),
            store: Box::new(SeriesStore::new(StoreConfig::default())),
        })
    }

    /// A configured anomaly detector, its reading replaced by the one series' value (the
    /// method, clearing and severity kept).
    fn anomaly(configured: &AnomalyConfig) -> Result<Detector, String> {
        let config = AnomalyConfig {
            source: SOURCE.to_owned(),
            reading: Reading::Value {
                selector: Selector::parse(METRIC).map_err(|error| error.to_string())?,
            },
            group_by: None,
            ..configured.clone()
        };
        Ok(Detector::Anomaly {
            detector: Box::new(AnomalyDetector::new(config)),
            store: Box::new(SeriesStore::new(StoreConfig::default())),
        })
    }

    /// Feeds one value: the anomaly score in `[0, 1]` and whether this row alerts.
    pub fn step(&mut self, at: Timestamp, value: f64) -> (f64, bool) {
        match self {
            Detector::Adaptive(detector) => {
                let step = detector.step(at, value);
                (step.score, step.alert)
            }
            Detector::Spike { detector, store } => {
                let fired = fired(detector.observe(at, ingest_one(store, at, value)));
                let fire_ratio = detector.config().thresholds.fire_ratio;
                // How far the value is towards firing: 0 at the baseline, 1 at `fire_ratio`
                // times it, and 1 while a finding is open.
                let score = detector.view("csv").map_or(0.0, |view| {
                    if view.firing {
                        1.0
                    } else if view.baseline_per_sec > 0.0 && fire_ratio > 1.0 {
                        let ratio = view.rate_per_sec / view.baseline_per_sec;
                        ((ratio - 1.0) / (fire_ratio - 1.0)).clamp(0.0, 1.0)
                    } else {
                        0.0
                    }
                });
                (score, fired)
            }
            Detector::Anomaly { detector, store } => {
                let (transitions, views) =
                    detector.observe_with_views(at, ingest_one(store, at, value));
                // The adaptive detector's `1 - p` for the readings up to this one.
                let score = views.first().map_or(0.0, |(_, view)| view.score);
                (score, fired(transitions))
            }
            Detector::Threshold { detector, store } => {
                let fired = fired(detector.observe(at, ingest_one(store, at, value)));
                let config = detector.config();
                // How far the value is from the clearing level towards the firing one: 0 on
                // the good side of `clear`, 1 at `fire` and beyond, and 1 while firing.
                let (towards, span) = match config.bound {
                    Bound::Above => (value - config.clear, config.fire - config.clear),
                    Bound::Below => (config.clear - value, config.clear - config.fire),
                };
                let score = if detector.is_firing("") {
                    1.0
                } else if span > 0.0 {
                    (towards / span).clamp(0.0, 1.0)
                } else if towards >= 0.0 {
                    1.0
                } else {
                    0.0
                };
                (score, fired)
            }
        }
    }
}

/// Stores one value of the backtest's series at `at`.
fn ingest_one(store: &mut SeriesStore, at: Timestamp, value: f64) -> &SeriesStore {
    let sample = Sample {
        name: METRIC.to_owned(),
        labels: Labels::from_iter([(GROUP, "csv")]),
        value,
        timestamp_ms: None,
    };
    store.ingest(SOURCE, at, std::slice::from_ref(&sample));
    store
}

/// Whether a detector's transitions include a firing.
fn fired(transitions: Vec<Transition>) -> bool {
    transitions
        .iter()
        .any(|transition| matches!(transition, Transition::Fired(_)))
}

#[cfg(test)]
mod tests;
