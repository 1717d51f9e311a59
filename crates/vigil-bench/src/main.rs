//! vigil's benchmarks: `cargo run --release -p vigil-bench -- <benchmark> [options]`.
//!
//! Each benchmark is a subcommand in a module of its own; add one by adding a module and a
//! line to [`BENCHMARKS`].

// Benchmarks measure wall time, which is what the root clippy.toml's ban on
// `std::time::Instant` and `SystemTime` keeps out of vigil itself.
#![allow(
    clippy::disallowed_types,
    reason = "benchmarks measure elapsed wall time with std's clock by design"
)]

mod assistant;
mod authz;
mod daemon;
mod detectors;
mod diagnosis;
mod edge;
mod leader;
mod ledger;
mod ledger_bytes;
mod ledger_size;
mod parse;
mod replay;
mod report;
mod store;
mod takeover;

use anyhow::bail;

/// A benchmark: its subcommand, a one-line description, and its entry point taking the
/// remaining arguments.
struct Benchmark {
    name: &'static str,
    about: &'static str,
    run: fn(&[String]) -> anyhow::Result<()>,
}

const BENCHMARKS: &[Benchmark] = &[
    Benchmark {
        name: "parse",
        about: parse::ABOUT,
        run: parse::run,
    },
    Benchmark {
        name: "store",
        about: store::ABOUT,
        run: store::run,
    },
    Benchmark {
        name: "detectors",
        about: detectors::ABOUT,
        run: detectors::run,
    },
    Benchmark {
        name: "diagnosis",
        about: diagnosis::ABOUT,
        run: diagnosis::run,
    },
    Benchmark {
        name: "authz",
        about: authz::ABOUT,
        run: authz::run,
    },
    Benchmark {
        name: "ledger",
        about: ledger::ABOUT,
        run: ledger::run,
    },
    Benchmark {
        name: "ledger-bytes",
        about: ledger_bytes::ABOUT,
        run: ledger_bytes::run,
    },
    Benchmark {
        name: "ledger-size",
        about: ledger_size::ABOUT,
        run: ledger_size::run,
    },
    Benchmark {
        name: "daemon",
        about: daemon::ABOUT,
        run: daemon::run,
    },
    Benchmark {
        name: "leader",
        about: leader::ABOUT,
        run: leader::run,
    },
    Benchmark {
        name: "edge",
        about: edge::ABOUT,
        run: edge::run,
    },
    Benchmark {
        name: "replay",
        about: replay::ABOUT,
        run: replay::run,
    },
    Benchmark {
        name: "report",
        about: report::ABOUT,
        run: report::run,
    },
    Benchmark {
        name: "assistant",
        about: assistant::ABOUT,
        run: assistant::run,
    },
    Benchmark {
        name: "takeover",
        about: takeover::ABOUT,
        run: takeover::run,
    },
];

fn usage() -> String {
    let mut text = String::from("usage: vigil-bench <benchmark> [options]\n\nbenchmarks:\n");
    for benchmark in BENCHMARKS {
        text.push_str(&format!("  {:<12} {}\n", benchmark.name, benchmark.about));
    }
    text
}

/// The whole number after a flag such as `--rounds`, or an error naming the flag.
fn number_after(flag: &str, value: Option<&String>) -> anyhow::Result<usize> {
    use anyhow::Context as _;
    value
        .with_context(|| format!("{flag} needs a number"))?
        .parse::<usize>()
        .with_context(|| format!("{flag} needs a number"))
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((name, rest)) = args.split_first() else {
        print!("{}", usage());
        return Ok(());
    };
    if matches!(name.as_str(), "-h" | "--help" | "help") {
        print!("{}", usage());
        return Ok(());
    }
    match BENCHMARKS.iter().find(|benchmark| benchmark.name == name) {
        Some(benchmark) => (benchmark.run)(rest),
        None => bail!("unknown benchmark `{name}`\n\n{}", usage()),
    }
}
