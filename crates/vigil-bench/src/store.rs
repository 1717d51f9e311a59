//! `vigil-bench store`: the series store's ingest rate on one core and its memory per series.
//!
//! It ingests a LiteLLM-like workload (by default 10,000 counter series with 20 labels each,
//! scraped every 15 s for one hour) and reports ingest samples per second in the steady state
//! (wall clock, and on-CPU time where Linux tells it, since a shared machine steals the core),
//! the time of the first scrape (which creates every series), a `rate()` over every series,
//! and `memory_bytes()` per series once the hour is in.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use vigil_core::Timestamp;
use vigil_core::store::bench_support::{self, LitellmWorkload};
use vigil_core::store::{Matcher, SeriesStore, StoreConfig};

/// The one-line description in the benchmark list.
pub const ABOUT: &str = "series store: ingest samples/s (10k LiteLLM series) and bytes per series";

/// The targets from the store's brief.
const TARGET_SAMPLES_PER_SEC: f64 = 1_000_000.0;
const TARGET_BYTES_PER_SERIES: usize = 4096;

struct Options {
    n_series: usize,
    n_scrapes: usize,
}

fn parse_options(args: &[String]) -> anyhow::Result<Options> {
    let mut options = Options {
        n_series: 10_000,
        n_scrapes: 240,
    };
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        let value = |name: &str, value: Option<&String>| -> anyhow::Result<usize> {
            value
                .with_context(|| format!("`{name}` needs a number"))?
                .parse()
                .with_context(|| format!("`{name}` needs a number"))
        };
        match arg.as_str() {
            "--series" => options.n_series = value(arg, iter.next())?,
            "--scrapes" => options.n_scrapes = value(arg, iter.next())?,
            other => bail!(
                "unknown option `{other}` (options: --series N, default 10000; --scrapes N, default 240)"
            ),
        }
    }
    if options.n_series == 0 || options.n_scrapes < 2 {
        bail!("need at least 1 series and 2 scrapes");
    }
    Ok(options)
}

/// This thread's on-CPU time, where Linux reports it.
pub(crate) fn thread_cpu_time() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let nanos = text.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(nanos))
}

/// A string's length and its first and last bytes: enough to bring its memory into the
/// cache, and something a compiler cannot skip computing.
fn byte_sum(text: &str) -> u64 {
    let bytes = text.as_bytes();
    let edge = |byte: Option<&u8>| u64::from(byte.copied().unwrap_or(0));
    bytes.len() as u64 + edge(bytes.first()) + edge(bytes.last())
}

/// Runs the benchmark with `args` (`--series N`, `--scrapes N`).
pub fn run(args: &[String]) -> anyhow::Result<()> {
    let options = parse_options(args)?;
    let n_series = options.n_series;
    println!(
        "store: {n_series} series x {} scrapes at 15 s, {} labels each",
        options.n_scrapes,
        bench_support::litellm_labels(0).len()
    );
    let mut store = SeriesStore::new(StoreConfig {
        max_series: n_series,
        ..StoreConfig::default()
    });
    let mut workload = LitellmWorkload::new(n_series);

    let mut first_scrape = Duration::ZERO;
    let mut steady_wall = Duration::ZERO;
    let mut steady_cpu = Some(Duration::ZERO);
    let mut n_steady_samples = 0_usize;
    let mut last_at = Timestamp(0);
    for scrape in 0..options.n_scrapes {
        let (at, samples) = workload.next_scrape();
        last_at = at;
        let cpu_before = thread_cpu_time();
        let started = Instant::now();
        let report = store.ingest(bench_support::SOURCE, at, samples);
        let wall = started.elapsed();
        let cpu = thread_cpu_time()
            .zip(cpu_before)
            .map(|(after, before)| after.saturating_sub(before));
        if report.n_appended != n_series {
            bail!(
                "scrape {scrape} appended {} samples, not {n_series}",
                report.n_appended
            );
        }
        if scrape == 0 {
            first_scrape = wall;
        } else {
            steady_wall += wall;
            steady_cpu = steady_cpu.zip(cpu).map(|(total, cpu)| total + cpu);
            n_steady_samples += n_series;
        }
    }

    let per_sec = |elapsed: Duration| n_steady_samples as f64 / elapsed.as_secs_f64().max(1e-9);
    let wall_rate = per_sec(steady_wall);
    println!("first scrape (creates the series): {first_scrape:.2?}");
    println!(
        "steady ingest:  {wall_rate:>12.0} samples/s wall clock ({:.0} ns/sample)",
        1e9 / wall_rate
    );
    if let Some(cpu) = steady_cpu {
        let cpu_rate = per_sec(cpu);
        println!(
            "                {cpu_rate:>12.0} samples/s on-CPU     ({:.0} ns/sample)",
            1e9 / cpu_rate
        );
    }

    // What merely walking the input costs here: every sample's name, label map and strings,
    // which ingest must read to tell which series a sample belongs to.
    let mut read_cpu = Some(Duration::ZERO);
    let mut read_wall = Duration::ZERO;
    let mut checksum = 0_u64;
    for _ in 0..options.n_scrapes.min(20) {
        let (_, samples) = workload.next_scrape();
        let cpu_before = thread_cpu_time();
        let started = Instant::now();
        for sample in samples {
            checksum = checksum.wrapping_add(byte_sum(&sample.name));
            for (name, value) in sample.labels.iter() {
                checksum = checksum.wrapping_add(byte_sum(name) ^ byte_sum(value));
            }
            checksum = checksum.wrapping_add(sample.value.to_bits());
        }
        read_wall += started.elapsed();
        let cpu = thread_cpu_time()
            .zip(cpu_before)
            .map(|(after, before)| after.saturating_sub(before));
        read_cpu = read_cpu.zip(cpu).map(|(total, cpu)| total + cpu);
    }
    std::hint::black_box(checksum);
    let n_read = options.n_scrapes.min(20) * n_series;
    let read_rate = |elapsed: Duration| n_read as f64 / elapsed.as_secs_f64().max(1e-9);
    println!(
        "walking input:  {:>12.0} samples/s wall clock, {:.0} on-CPU (no store: a floor)",
        read_rate(read_wall),
        read_cpu.map_or(0.0, read_rate)
    );

    let started = Instant::now();
    let series = store.select(&[Matcher::metric_name(bench_support::METRIC_NAME)]);
    let n_rates = series
        .iter()
        .filter(|&&one| store.rate(one, 300_000, last_at).is_some())
        .count();
    println!(
        "select + rate[5m] over {n_rates} series: {:.2?}",
        started.elapsed()
    );

    let bytes_per_series = store.memory_bytes() / store.n_series().max(1);
    println!(
        "memory: {} bytes for {} series, {bytes_per_series} bytes per series",
        store.memory_bytes(),
        store.n_series()
    );
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    let best_rate = steady_cpu.map_or(wall_rate, |cpu| per_sec(cpu).max(wall_rate));
    println!(
        "targets: >= {TARGET_SAMPLES_PER_SEC:.0} samples/s {}; <= {TARGET_BYTES_PER_SERIES} bytes/series {}",
        verdict(best_rate >= TARGET_SAMPLES_PER_SEC),
        verdict(bytes_per_series <= TARGET_BYTES_PER_SERIES),
    );
    Ok(())
}
