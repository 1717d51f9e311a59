//! `vigil-bench leader`: one leader's limits, each against a baseline measured in the same run.
//!
//! One replica leads at a time (`daemon/replica/`), so its limits are the deployment's until
//! the user shards (ARCHITECTURE.md, "Scale and sharding"). Four parts:
//!
//! 1. **Series watched** ([`series`]): LiteLLM-shaped gateways of `--per-gateway` series
//!    ([`workload`]), five detectors each, scraped every 15 s, at each size of `--series`. An
//!    interval's cost is every gateway's scrape taken the daemon's way: parse the text and keep
//!    the series the engine reads (the baseline: what reading the scrape costs at all), one
//!    engine step (`journal::step`: store, detectors, Cedar), and the durable append of the
//!    scrape (compact, the default: held in the open batch and appended when it closes,
//!    amortized; and JSON, one entry per scrape, `ledger.scrape_batch_secs: 0`), on SQLite and,
//!    when `VIGIL_TEST_DATABASE_URL` is set, on PostgreSQL with a lease held, so every append
//!    passes the fence. A size keeps up when an interval costs at most 7.5 s (50 % headroom on
//!    one core); the implied maximum scales the largest size's cost to 7.5 s.
//! 2. **Pushes per second** ([`pushes`]): the `daemon` benchmark's measurement (acknowledged
//!    eval pushes through the real daemon on SQLite, against `Ledger::append`); with
//!    PostgreSQL, `Replication::inbox_put` against a plain `INSERT` into a table of the same
//!    shape, and a replica leading in process: pushes acknowledged by its intake (committed to
//!    the inbox) and drained into the chain.
//! 3. **Incidents per minute** ([`incidents`]): `--runaway` keys of one gateway of `--keys`
//!    run away at once (30 times their tokens and spend); the engine opens, diagnoses,
//!    authorizes (Cedar answering inline) and records every incident durably. Each burst is
//!    compared with a twin engine stepping the same scrapes with nothing running away.
//! 4. **Ledger size per day** ([`size`]): 10,000 series at 15 s, `--pushes-per-sec` eval
//!    pushes and `--incidents-per-day` incidents, measured on SQLite files after `VACUUM` and
//!    extrapolated, for the JSON and the compact scrape encodings.
//!
//! Run it with `cargo run --release -p vigil-bench -- leader` (`--help` lists the options).
//! No number is asserted: the benchmark prints them.

mod incidents;
mod pushes;
mod series;
mod size;
mod workload;

use std::time::Duration;

use anyhow::{Context as _, bail};
use vigil_ledger::LedgerLocation;

/// The one-line description in the benchmark list.
pub const ABOUT: &str = "leader: one leader's limits (series watched, pushes/s, incidents/min, ledger bytes/day), each against a baseline";

/// The environment variable naming a PostgreSQL database to measure on (as the tests use).
const DATABASE_URL_ENV: &str = "VIGIL_TEST_DATABASE_URL";

const HELP: &str = "options:
  --series LIST          sizes to watch, in series (default 10000,50000,100000,200000)
  --per-gateway N        series per gateway (default 10000: 1,000 keys x 10 series)
  --warmup N             intervals of warm-up per size (default 12; the detectors' warm-up
                         is 4 fewer samples, so they are past it when timing starts)
  --timed N              timed intervals per size (default 3)
  --json-intervals N     of those, how many also append as JSON (default 1; 0: none)
  --pushes N             pushes per client pattern (default 2000)
  --clients N            concurrent clients (default 16)
  --keys N               keys of the gateway whose keys run away (default 1000)
  --runaway LIST         keys running away at once (default 1,100,1000)
  --minutes N            window of compact scrapes written for the size per day (default 20)
  --pushes-per-sec N     pushes a second for the size per day (default 10)
  --incidents-per-day N  incidents a day for the size per day (default 20)
  --parts LIST           which parts to run: series,pushes,incidents,size (default all)
PostgreSQL is measured too when VIGIL_TEST_DATABASE_URL is set.";

/// The options, with their defaults.
#[derive(Clone, Debug)]
pub(crate) struct Options {
    pub(crate) series: Vec<usize>,
    pub(crate) per_gateway: usize,
    pub(crate) warmup: usize,
    pub(crate) timed: usize,
    pub(crate) json_intervals: usize,
    pub(crate) pushes: usize,
    pub(crate) clients: usize,
    pub(crate) keys: usize,
    pub(crate) runaway: Vec<usize>,
    pub(crate) minutes: usize,
    pub(crate) pushes_per_sec: usize,
    pub(crate) incidents_per_day: usize,
    parts: Vec<String>,
    /// The PostgreSQL URL, from the environment.
    pub(crate) postgres: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            series: vec![10_000, 50_000, 100_000, 200_000],
            per_gateway: 10_000,
            warmup: 12,
            timed: 3,
            json_intervals: 1,
            pushes: 2_000,
            clients: 16,
            keys: 1_000,
            runaway: vec![1, 100, 1_000],
            minutes: 20,
            pushes_per_sec: 10,
            incidents_per_day: 20,
            parts: ["series", "pushes", "incidents", "size"]
                .map(str::to_owned)
                .to_vec(),
            postgres: None,
        }
    }
}

fn parse_options(args: &[String]) -> anyhow::Result<Options> {
    let mut options = Options::default();
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        let mut text = || -> anyhow::Result<&String> {
            iter.next()
                .with_context(|| format!("`{arg}` needs a value"))
        };
        let number = |text: &str| -> anyhow::Result<usize> {
            text.replace('_', "")
                .parse()
                .with_context(|| format!("`{arg}` needs a number, not `{text}`"))
        };
        let list =
            |text: &str| -> anyhow::Result<Vec<usize>> { text.split(',').map(number).collect() };
        match arg.as_str() {
            "--series" => options.series = list(text()?)?,
            "--per-gateway" => options.per_gateway = number(text()?)?,
            "--warmup" => options.warmup = number(text()?)?,
            "--timed" => options.timed = number(text()?)?,
            "--json-intervals" => options.json_intervals = number(text()?)?,
            "--pushes" => options.pushes = number(text()?)?,
            "--clients" => options.clients = number(text()?)?,
            "--keys" => options.keys = number(text()?)?,
            "--runaway" => options.runaway = list(text()?)?,
            "--minutes" => options.minutes = number(text()?)?,
            "--pushes-per-sec" => options.pushes_per_sec = number(text()?)?,
            "--incidents-per-day" => options.incidents_per_day = number(text()?)?,
            "--parts" => {
                options.parts = text()?.split(',').map(str::to_owned).collect();
            }
            "-h" | "--help" => bail!("{HELP}"),
            other => bail!("unknown option `{other}`\n{HELP}"),
        }
    }
    if options.series.contains(&0)
        || options.per_gateway < 10
        || options.timed == 0
        || options.warmup < 5
        || options.pushes == 0
        || options.clients == 0
        || options.minutes < 2
    {
        bail!("sizes, the timed intervals, pushes, clients and minutes must be positive\n{HELP}");
    }
    if options.runaway.iter().any(|&n| n == 0 || n > options.keys) {
        bail!(
            "each --runaway must be between 1 and --keys ({})",
            options.keys
        );
    }
    if let Some(part) = options
        .parts
        .iter()
        .find(|part| !["series", "pushes", "incidents", "size"].contains(&part.as_str()))
    {
        bail!("unknown part `{part}`\n{HELP}");
    }
    options.postgres = std::env::var(DATABASE_URL_ENV)
        .ok()
        .filter(|url| !url.is_empty());
    Ok(options)
}

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let options = parse_options(args)?;
    vigil_connectors::install_crypto_provider();
    let dir = std::env::temp_dir().join(format!("vigil-bench-leader-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let result = run_parts(&options, &dir);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn run_parts(options: &Options, dir: &std::path::Path) -> anyhow::Result<()> {
    println!(
        "leader: one leader's limits on this machine ({} cores, load average {}); PostgreSQL: {}",
        std::thread::available_parallelism().map_or(0, std::num::NonZero::get),
        load_average(),
        if options.postgres.is_some() {
            "yes"
        } else {
            "no (set VIGIL_TEST_DATABASE_URL)"
        }
    );
    let wants = |part: &str| options.parts.iter().any(|wanted| wanted == part);
    // The engine is one task: the parts that time it run on one thread.
    let one_thread = || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("a runtime")
    };
    if wants("series") {
        one_thread()?.block_on(series::run(options, dir))?;
    }
    if wants("pushes") {
        // The daemon's tasks, as `vigil serve` runs them.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .context("a runtime")?;
        runtime.block_on(pushes::run(options, dir))?;
    }
    if wants("incidents") {
        one_thread()?.block_on(incidents::run(options, dir))?;
    }
    if wants("size") {
        one_thread()?.block_on(size::run(options, dir))?;
    }
    Ok(())
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "unknown".to_owned())
}

/// A PostgreSQL schema of the benchmark's own; [`Schema::drop_now`] drops it (dropping needs
/// the runtime, so it is not `Drop`).
pub(crate) struct Schema {
    pub(crate) url: String,
    pub(crate) name: String,
}

impl Schema {
    /// A fresh schema name for `what` (ours: `vigil_bench_leader_<pid>_<what>`).
    pub(crate) fn new(url: &str, what: &str) -> Schema {
        Schema {
            url: url.to_owned(),
            name: format!("vigil_bench_leader_{}_{what}", std::process::id()),
        }
    }

    /// The ledger in it.
    pub(crate) fn location(&self) -> LedgerLocation {
        LedgerLocation::Postgres {
            url: self.url.clone(),
            schema: Some(self.name.clone()),
        }
    }

    /// Drops it (a failure is reported, not fatal).
    pub(crate) async fn drop_now(self) {
        crate::ledger::drop_schema(&self.url, &self.name).await;
    }
}

/// Takes the lease of the ledger at `location` for the benchmark, so that its appends carry
/// an epoch and pass the fence as a leader's do.
pub(crate) async fn lead(ledger: &mut vigil_ledger::Ledger) -> anyhow::Result<()> {
    let grant = ledger
        .replication()?
        .try_acquire(
            "vigil-bench",
            "http://127.0.0.1:9",
            Duration::from_secs(3_600),
        )
        .await?
        .context("somebody else holds the benchmark schema's lease")?;
    ledger.set_epoch(Some(grant.epoch));
    Ok(())
}

/// The on-CPU time of `work` on this thread where Linux tells it, else its wall time, and
/// its wall time.
pub(crate) fn cpu_timed<T>(work: impl FnOnce() -> T) -> (T, Duration, Duration) {
    let cpu_before = crate::store::thread_cpu_time();
    let started = std::time::Instant::now();
    let result = work();
    let wall = started.elapsed();
    let cpu = crate::store::thread_cpu_time()
        .zip(cpu_before)
        .map_or(wall, |(after, before)| after.saturating_sub(before));
    (result, cpu, wall)
}

/// `n` with thousands separators.
pub(crate) fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (idx, digit) in digits.chars().enumerate() {
        if idx > 0 && (digits.len() - idx).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// A duration in milliseconds with two decimals.
pub(crate) fn ms(duration: Duration) -> String {
    format!("{:.2}", duration.as_secs_f64() * 1e3)
}
