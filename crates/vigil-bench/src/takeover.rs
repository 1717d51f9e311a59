//! `vigil-bench takeover`: what a new leader spends rebuilding the last term's engine, from
//! scratch (the baseline: crash recovery's `recovery::rebuild`, as every term did before
//! standbys kept the engine warm) against handing over a standby's warm engine
//! (`journal::follow::Follower::finish`).
//!
//! The ledger is the day-long game day (`crates/vigil-bench/scenarios/day-then-runaway.yaml`,
//! 5,760 scrapes and an incident), simulated, then copied into a fresh ledger (SQLite, and
//! PostgreSQL when `VIGIL_TEST_DATABASE_URL` is set) but for its last `--tail` entries
//! (default 2: a standby looks every 0.5 s). A
//! follower catches up with the copy as a standby does (timed too: its cost, paid while
//! standing by); the tail is then appended, as the old leader's last steps before it died;
//! and the handover is timed. The cold rebuild reads the same ledger. Both must give the same
//! engine and unfinished work, which the benchmark checks.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use vigil::journal::follow::Follower;
use vigil::journal::{self, recovery};
use vigil_ledger::{Entry, Ledger, LedgerLocation, NewEntry};

/// The one-line description in the benchmark list.
pub const ABOUT: &str = "takeover: a new leader's rebuild of the last term, from scratch against a standby's warm engine";

/// The environment variable naming a PostgreSQL database to measure on (as the tests use).
const DATABASE_URL_ENV: &str = "VIGIL_TEST_DATABASE_URL";

/// Entries a standby's look reruns at most, as `daemon/replica/warm.rs` does.
const BUDGET: u64 = 2_000;

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let mut rounds = 3_usize;
    let mut tail = 2_usize;
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        match arg.as_str() {
            "--rounds" => rounds = crate::number_after("--rounds", iter.next())?.max(1),
            "--tail" => tail = crate::number_after("--tail", iter.next())?,
            other => anyhow::bail!("unknown option `{other}` (use --rounds N, --tail N)"),
        }
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("a runtime")?;
    let dir = std::env::temp_dir().join(format!("vigil-bench-takeover-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let result = runtime.block_on(bench(&dir, rounds, tail));
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn bench(dir: &Path, rounds: usize, tail: usize) -> anyhow::Result<()> {
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/day-then-runaway.yaml");
    let simulated = LedgerLocation::Sqlite {
        path: dir.join("simulated.db"),
    };
    let code = vigil::commands::simulate::run(&vigil::commands::simulate::SimulateArgs {
        scenario,
        json: false,
        check: false,
        ledger: Some(simulated.clone()),
        quiet: true,
    })
    .await?;
    anyhow::ensure!(
        code == std::process::ExitCode::SUCCESS,
        "simulating day-then-runaway failed"
    );
    let (entries, blobs) = read_source(&simulated).await?;
    anyhow::ensure!(entries.len() > tail, "the ledger is shorter than --tail");
    println!(
        "takeover: the last term's engine rebuilt by a new leader; day-then-runaway, {} entries, the last {tail} appended after the standby's last look; median of {rounds} rounds",
        entries.len()
    );
    println!(
        "{:<11} {:>16} {:>16} {:>8} {:>20}",
        "ledger", "from scratch ms", "warm handover ms", "ratio", "standby catch-up ms"
    );
    let mut locations = vec![(
        "sqlite",
        LedgerLocation::Sqlite {
            path: dir.join("copy.db"),
        },
    )];
    if let Ok(url) = std::env::var(DATABASE_URL_ENV) {
        // Dropped after every round (`reset`).
        locations.push((
            "postgresql",
            crate::leader::Schema::new(&url, "takeover").location(),
        ));
    }
    for (name, location) in locations {
        let (cold, warm, catch_up) = measure(&location, &entries, &blobs, tail, rounds)
            .await
            .with_context(|| format!("on {name}"))?;
        println!(
            "{name:<11} {:>16.1} {:>16.1} {:>7.3}x {:>20.1}",
            ms(cold),
            ms(warm),
            warm.as_secs_f64() / cold.as_secs_f64().max(1e-9),
            ms(catch_up)
        );
    }
    println!(
        "  from scratch grows with the session chain (every entry since its first session); the handover with what the old leader appended after the standby's last look"
    );
    Ok(())
}

/// The medians of the cold rebuild, the warm handover and the standby's catch-up.
async fn measure(
    location: &LedgerLocation,
    entries: &[Entry],
    blobs: &[Vec<u8>],
    tail: usize,
    rounds: usize,
) -> anyhow::Result<(Duration, Duration, Duration)> {
    let mut cold_times = Vec::new();
    let mut warm_times = Vec::new();
    let mut catch_up_times = Vec::new();
    for _ in 0..rounds {
        let mut writer = Ledger::open(location).await?;
        for blob in blobs {
            writer.put_blob(blob).await?;
        }
        let split = entries.len() - tail;
        let (before, after) = entries.split_at(split);
        append_all(&mut writer, before).await?;
        let reader = Ledger::open(location).await?;
        let mut follower = Follower::new(&reader);
        let started = Instant::now();
        // Bounded by the ledger's length: every look but the last reads.
        for _ in 0..entries.len() {
            let progress = follower.catch_up(BUDGET).await?;
            if progress.n_read == 0 && !progress.more {
                break;
            }
        }
        catch_up_times.push(started.elapsed());
        append_all(&mut writer, after).await?;
        let started = Instant::now();
        let warm = follower.finish().await?;
        warm_times.push(started.elapsed());
        let started = Instant::now();
        let cold = recovery::rebuild(&reader, true).await?;
        cold_times.push(started.elapsed());
        anyhow::ensure!(
            format!("{warm:?}") == format!("{cold:?}"),
            "the warm engine differs from the rebuild from scratch"
        );
        reader.close().await;
        writer.close().await;
        reset(location).await;
    }
    Ok((
        median(&mut cold_times),
        median(&mut warm_times),
        median(&mut catch_up_times),
    ))
}

/// Removes the ledger at `location` after a round.
async fn reset(location: &LedgerLocation) {
    match location {
        LedgerLocation::Sqlite { path } => {
            for suffix in ["", "-wal", "-shm"] {
                let mut file = path.as_os_str().to_owned();
                file.push(suffix);
                let _ = std::fs::remove_file(&file);
            }
        }
        LedgerLocation::Postgres { url, schema } => {
            if let Some(schema) = schema {
                crate::ledger::drop_schema(url, schema).await;
            }
        }
    }
}

async fn append_all(ledger: &mut Ledger, entries: &[Entry]) -> anyhow::Result<()> {
    for chunk in entries.chunks(500) {
        let batch: Vec<NewEntry> = chunk
            .iter()
            .map(|entry| {
                Ok(NewEntry {
                    at_ms: entry.at_ms,
                    kind: entry.kind,
                    incident_id: entry.incident_id.clone(),
                    payload: entry.payload_value()?,
                })
            })
            .collect::<anyhow::Result<_>>()?;
        ledger.append(&batch).await?;
    }
    Ok(())
}

/// Every entry of the ledger at `location`, and the series blobs its scrape batches name.
async fn read_source(location: &LedgerLocation) -> anyhow::Result<(Vec<Entry>, Vec<Vec<u8>>)> {
    let ledger = Ledger::open(location).await?;
    let mut entries = Vec::new();
    let mut all = journal::Entries::new(&ledger, 0, u64::MAX);
    while let Some(entry) = all.next().await? {
        entries.push(entry);
    }
    let mut blobs = Vec::new();
    for entry in &entries {
        if let Ok(journal::Recorded::ScrapeBatch(batch)) = journal::decode(entry) {
            let blob = ledger
                .get_blob(&batch.scrape_batch.series_blob)
                .await?
                .context("a batch's series blob is missing")?;
            blobs.push(blob);
        }
    }
    ledger.close().await;
    Ok((entries, blobs))
}

fn median(times: &mut [Duration]) -> Duration {
    times.sort();
    times.get(times.len() / 2).copied().unwrap_or_default()
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}
