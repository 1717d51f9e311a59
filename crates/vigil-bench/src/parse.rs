//! `parse`: exposition parse throughput of `vigil_core::exposition` against `prometheus-parse`
//! 0.2.5, on the same inputs in the same run.

mod inputs;
#[cfg(test)]
mod tests;

use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use prometheus_parse::Scrape;
use vigil_core::exposition::{self, Format};

pub(crate) const ABOUT: &str =
    "exposition parse throughput (MB/s, samples/s): vigil-core against prometheus-parse 0.2.5";

const USAGE: &str =
    "usage: vigil-bench parse [--iterations N] [--series N] [--fixture FILE] [--only vigil]

  --iterations N   timed runs per parser and input; the median is reported (default 11)
  --series N       series in the synthetic vLLM-style scrape (default 100000)
  --fixture FILE   the real scrape to measure (default: the LiteLLM 1.106.2 scrape in
                   ../shared/fixtures, skipped when absent)
  --only vigil     measure vigil-core alone (for profiling)";

struct Options {
    iterations: usize,
    series: usize,
    fixture: PathBuf,
    only_vigil: bool,
}

fn parse_options(args: &[String]) -> anyhow::Result<Options> {
    let mut options = Options {
        iterations: 11,
        series: 100_000,
        fixture: inputs::litellm_fixture_dir().join("metrics_success.txt"),
        only_vigil: false,
    };
    let mut args = args.iter();
    while let Some(flag) = args.next() {
        let mut value = || {
            args.next()
                .with_context(|| format!("`{flag}` needs a value\n\n{USAGE}"))
        };
        match flag.as_str() {
            "--iterations" => options.iterations = value()?.parse().context("--iterations")?,
            "--series" => options.series = value()?.parse().context("--series")?,
            "--fixture" => options.fixture = PathBuf::from(value()?),
            "--only" => match value()?.as_str() {
                "vigil" => options.only_vigil = true,
                other => bail!("`--only` takes `vigil`, not `{other}`"),
            },
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown option `{other}`\n\n{USAGE}"),
        }
    }
    if options.iterations == 0 {
        bail!("--iterations must be at least 1");
    }
    Ok(options)
}

/// One exposition to measure.
struct Input {
    name: String,
    text: String,
    n_sample_lines: usize,
}

impl Input {
    fn new(name: impl Into<String>, text: String) -> Self {
        let n_sample_lines = text
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .count();
        Input {
            name: name.into(),
            text,
            n_sample_lines,
        }
    }
}

/// The median time of one parse and how many samples the parser returned.
struct Measurement {
    median: Duration,
    n_kept: usize,
}

/// What the benchmark times: the CPU time of its thread where Linux tells it, so that other
/// load on a shared machine does not count, else the wall clock.
#[derive(Clone, Copy)]
enum Clock {
    ThreadCpu,
    Wall,
}

impl Clock {
    fn detect() -> Clock {
        if thread_cpu_time().is_some() {
            Clock::ThreadCpu
        } else {
            Clock::Wall
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Clock::ThreadCpu => "thread CPU time (/proc/thread-self/schedstat)",
            Clock::Wall => "wall-clock time",
        }
    }

    /// Runs `work` and returns how long it took.
    fn time(self, work: impl FnOnce()) -> Duration {
        match self {
            Clock::ThreadCpu => {
                let before = thread_cpu_time().unwrap_or_default();
                work();
                thread_cpu_time().unwrap_or_default().saturating_sub(before)
            }
            Clock::Wall => {
                let started = Instant::now();
                work();
                started.elapsed()
            }
        }
    }
}

/// The CPU time this thread has run, from `/proc/thread-self/schedstat` (Linux). The kernel
/// brings it up to date at least every scheduler tick, so timed runs last 200 ms or more.
fn thread_cpu_time() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let nanos: u64 = text.split_whitespace().next()?.parse().ok()?;
    (nanos > 0).then(|| Duration::from_nanos(nanos))
}

/// A parser under test: its name and a run over the input returning how many samples it
/// gave back.
struct Contestant<'t> {
    parser: &'static str,
    run: Box<dyn FnMut() -> usize + 't>,
}

/// Times each contestant `iterations` times after a warm-up, taking turns so that a change
/// in the machine's load hits them alike; smaller inputs are repeated within each timed run
/// so that every run lasts at least 200 ms.
fn measure(
    clock: Clock,
    iterations: usize,
    contestants: &mut [Contestant<'_>],
) -> Vec<(&'static str, Measurement)> {
    let mut warm: Vec<(usize, u32)> = Vec::new();
    for contestant in contestants.iter_mut() {
        let started = Instant::now();
        let n_kept = (contestant.run)();
        let first = started.elapsed().as_nanos().max(1);
        let repeats = u32::try_from((200_000_000 / first).clamp(1, 1_000_000)).unwrap_or(1);
        warm.push((n_kept, repeats));
    }
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); contestants.len()];
    for _ in 0..iterations {
        for ((contestant, &(_, repeats)), times) in
            contestants.iter_mut().zip(&warm).zip(&mut times)
        {
            let total = clock.time(|| {
                for _ in 0..repeats {
                    black_box((contestant.run)());
                }
            });
            times.push(total / repeats);
        }
    }
    contestants
        .iter()
        .zip(warm)
        .zip(times)
        .map(|((contestant, (n_kept, _)), mut times)| {
            times.sort();
            let median = times.get(times.len() / 2).copied().unwrap_or_default();
            (contestant.parser, Measurement { median, n_kept })
        })
        .collect()
}

fn parse_with_vigil(text: &str) -> usize {
    exposition::parse(black_box(text), Format::Text)
        .samples
        .len()
}

/// `prometheus-parse` takes owned lines (`io::Result<String>`); that conversion is counted,
/// as every caller pays it.
fn parse_with_prometheus_parse(text: &str) -> usize {
    let lines = black_box(text).lines().map(|line| Ok(line.to_owned()));
    Scrape::parse_at(lines, Default::default()).map_or(0, |scrape| scrape.samples.len())
}

/// How many times faster than prometheus-parse vigil-core was on an input.
#[derive(Clone, Copy)]
struct Speedup {
    ratio: f64,
    theirs_returned_nothing: bool,
}

struct Row {
    input: String,
    n_bytes: usize,
    n_sample_lines: usize,
    parser: &'static str,
    measurement: Measurement,
    speedup: Option<Speedup>,
}

pub(crate) fn run(args: &[String]) -> anyhow::Result<()> {
    let options = parse_options(args)?;
    let mut inputs = Vec::new();
    match std::fs::read_to_string(&options.fixture) {
        Ok(text) => inputs.push(Input::new("litellm 1.106.2 /metrics/", text)),
        Err(error) => println!(
            "skipping the real LiteLLM scrape: {}: {error}",
            options.fixture.display()
        ),
    }
    let with_colons = inputs::vllm_scrape(options.series, true);
    let without_colons = inputs::vllm_scrape(options.series, false);
    let n_series = with_colons.n_series;
    inputs.push(Input::new(
        format!("vllm synthetic, {n_series} series"),
        with_colons.text,
    ));
    inputs.push(Input::new("  same, colon-free names", without_colons.text));

    let clock = Clock::detect();
    let mut rows = Vec::new();
    for input in &inputs {
        // Both parsers must have read the input the same way before their speed matters.
        let parsed = exposition::parse(&input.text, Format::Text);
        if let Some(error) = parsed.errors.first() {
            bail!("{}: line {}: {}", input.name, error.line, error.reason);
        }
        if parsed.samples.len() != input.n_sample_lines {
            bail!(
                "{}: {} samples from {} sample lines",
                input.name,
                parsed.samples.len(),
                input.n_sample_lines
            );
        }
        let text = input.text.as_str();
        let mut contestants = vec![Contestant {
            parser: "vigil-core",
            run: Box::new(|| parse_with_vigil(text)),
        }];
        if !options.only_vigil {
            contestants.push(Contestant {
                parser: "prometheus-parse",
                run: Box::new(|| parse_with_prometheus_parse(text)),
            });
        }
        let measurements = measure(clock, options.iterations, &mut contestants);
        let theirs = measurements
            .iter()
            .find(|(parser, _)| *parser == "prometheus-parse")
            .map(|(_, measurement)| measurement);
        // On our row: prometheus-parse's time over ours, and whether it skipped every line
        // (then it did far less work, and the ratio means nothing).
        let speedup = theirs.map(|theirs| Speedup {
            ratio: theirs.median.as_secs_f64()
                / measurements
                    .first()
                    .map_or(1e-12, |(_, ours)| ours.median.as_secs_f64().max(1e-12)),
            theirs_returned_nothing: theirs.n_kept == 0,
        });
        for (parser, measurement) in measurements {
            let speedup = speedup.filter(|_| parser == "vigil-core");
            rows.push(Row {
                input: input.name.clone(),
                n_bytes: input.text.len(),
                n_sample_lines: input.n_sample_lines,
                parser,
                measurement,
                speedup,
            });
        }
    }
    print_table(&rows, options.iterations, clock);
    Ok(())
}

fn print_table(rows: &[Row], iterations: usize, clock: Clock) {
    println!(
        "\nexposition parse throughput, text format, one thread: median of {iterations} runs \
         of {}\n",
        clock.describe()
    );
    println!(
        "{:<34} {:>9} {:>8} {:<17} {:>10} {:>9} {:>12} {:>8} {:>9}",
        "input",
        "bytes",
        "samples",
        "parser",
        "median",
        "MB/s",
        "samples/s",
        "returned",
        "speed-up"
    );
    println!("{}", "-".repeat(124));
    for row in rows {
        let seconds = row.measurement.median.as_secs_f64().max(1e-12);
        println!(
            "{:<34} {:>9} {:>8} {:<17} {:>7.3} ms {:>9.1} {:>12.0} {:>8} {:>9}",
            row.input,
            row.n_bytes,
            row.n_sample_lines,
            row.parser,
            seconds * 1e3,
            row.n_bytes as f64 / 1e6 / seconds,
            row.n_sample_lines as f64 / seconds,
            row.measurement.n_kept,
            row.speedup.map_or_else(String::new, |speedup| format!(
                "{:.1}x{}",
                speedup.ratio,
                if speedup.theirs_returned_nothing {
                    "*"
                } else {
                    ""
                }
            )),
        );
    }
    println!(
        "\nsamples/s counts sample lines for both parsers. `returned` is what each gives back:\n\
         prometheus-parse silently drops every name with a colon (all of vLLM's `vllm:*`, hence\n\
         the colon-free variant, the fair comparison) and folds each histogram's buckets into one\n\
         sample per series. Its API takes owned lines; building them is counted. Both parsers'\n\
         results are dropped inside the timed run."
    );
    if rows.iter().any(|row| {
        row.speedup
            .is_some_and(|speedup| speedup.theirs_returned_nothing)
    }) {
        println!(
            "* prometheus-parse returned no sample at all there: it skipped every line, so the \
             ratio\n  compares parsing with skipping; see the colon-free row."
        );
    }
}
