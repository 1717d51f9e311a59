//! `vigil-bench replay`: how long `vigil replay` takes per incident.
//!
//! Every shipped game day (`tests/scenarios/*.yaml`) and a day-long one
//! (`crates/vigil-bench/scenarios/day-then-runaway.yaml`: 5,760 scrapes before the incident)
//! is simulated into a fresh SQLite ledger, as `vigil simulate --ledger` writes it. Then each
//! incident is replayed `--rounds` times with `vigil::journal::replay::replay_incident` (read the
//! session chain from the start, rebuild the policies from their blobs, re-run every event
//! through the engine, compare every command, re-decide every authorization). The baseline,
//! measured in the same run over the same entries, only reads them and parses their JSON: the
//! ratio is what the engine and the comparisons add to reading the ledger.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use vigil_ledger::{Ledger, LedgerLocation};

/// The one-line description in the benchmark list.
pub const ABOUT: &str =
    "replay: time to replay each incident of the shipped scenarios and of a day-long session";

/// Entries read per page by the baseline, as replay reads them.
const PAGE_ROWS: u32 = 5_000;

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let mut rounds = 5_usize;
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        match arg.as_str() {
            "--rounds" => rounds = crate::number_after("--rounds", iter.next())?.max(1),
            other => anyhow::bail!("unknown option `{other}` (use --rounds N)"),
        }
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("a runtime")?;
    let dir = std::env::temp_dir().join(format!("vigil-bench-replay-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let result = runtime.block_on(bench_all(&dir, rounds));
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn scenarios() -> anyhow::Result<Vec<PathBuf>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let shipped = root.join("../../tests/scenarios");
    let mut found: Vec<PathBuf> = std::fs::read_dir(&shipped)
        .with_context(|| format!("reading {}", shipped.display()))?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    found.sort();
    found.push(root.join("scenarios/day-then-runaway.yaml"));
    Ok(found)
}

async fn bench_all(dir: &Path, rounds: usize) -> anyhow::Result<()> {
    println!("replay per incident: median of {rounds} rounds (wall time, one thread)");
    println!(
        "{:<58} {:>7} {:>10} {:>12} {:>7} {:>10}",
        "scenario / incident", "events", "replay ms", "baseline ms", "ratio", "events/s"
    );
    let mut total_replay = Duration::ZERO;
    let mut n_incidents = 0_u32;
    for scenario in scenarios()? {
        let name = scenario
            .file_stem()
            .map(|stem| stem.to_string_lossy().into_owned())
            .unwrap_or_default();
        let db = dir.join(format!("{name}.db"));
        let code = vigil::commands::simulate::run(&vigil::commands::simulate::SimulateArgs {
            scenario: scenario.clone(),
            json: false,
            check: false,
            ledger: Some(LedgerLocation::Sqlite { path: db.clone() }),
            quiet: true,
        })
        .await?;
        anyhow::ensure!(
            code == std::process::ExitCode::SUCCESS,
            "simulating {name} failed"
        );
        let ledger = Ledger::open(&LedgerLocation::Sqlite { path: db })
            .await
            .context("opening the simulated ledger")?;
        let all = vigil::journal::replay::replay_all(&ledger, None).await?;
        anyhow::ensure!(all.mismatches.is_empty(), "{name}: {:?}", all.mismatches);
        for incident_id in all.incidents.keys() {
            let mut replay_times = Vec::with_capacity(rounds);
            let mut baseline_times = Vec::with_capacity(rounds);
            let mut n_events = 0;
            for _ in 0..rounds {
                let started = Instant::now();
                let report =
                    vigil::journal::replay::replay_incident(&ledger, incident_id, None).await?;
                replay_times.push(started.elapsed());
                anyhow::ensure!(
                    report.mismatches.is_empty(),
                    "{name} {incident_id}: {:?}",
                    report.mismatches
                );
                n_events = report.n_events;
                let last_seq = ledger
                    .entries_for_incident(incident_id)
                    .await?
                    .last()
                    .map_or(0, |entry| entry.seq);
                let started = Instant::now();
                read_and_parse(&ledger, last_seq).await?;
                baseline_times.push(started.elapsed());
            }
            let replay = median(&mut replay_times);
            let baseline = median(&mut baseline_times);
            total_replay += replay;
            n_incidents += 1;
            println!(
                "{:<58} {:>7} {:>10.2} {:>12.2} {:>6.1}x {:>10.0}",
                format!("{name} / {incident_id}"),
                n_events,
                millis(replay),
                millis(baseline),
                replay.as_secs_f64() / baseline.as_secs_f64().max(1e-9),
                n_events as f64 / replay.as_secs_f64().max(1e-9)
            );
        }
        ledger.close().await;
    }
    if n_incidents > 0 {
        println!(
            "{n_incidents} incidents; mean replay time per incident {:.2} ms",
            millis(total_replay) / f64::from(n_incidents)
        );
    }
    Ok(())
}

/// The baseline: read every entry up to `last_seq` and parse its payload, nothing else.
async fn read_and_parse(ledger: &Ledger, last_seq: u64) -> anyhow::Result<()> {
    let mut from = 0;
    loop {
        let page = ledger.read(from, PAGE_ROWS).await?;
        let Some(last) = page.last() else {
            return Ok(());
        };
        from = last.seq + 1;
        for entry in &page {
            if entry.seq > last_seq {
                return Ok(());
            }
            let value: serde_json::Value = serde_json::from_str(&entry.payload)?;
            std::hint::black_box(value);
        }
    }
}

fn median(times: &mut [Duration]) -> Duration {
    times.sort();
    times.get(times.len() / 2).copied().unwrap_or_default()
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}
