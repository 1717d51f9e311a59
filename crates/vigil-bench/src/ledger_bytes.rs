//! `vigil-bench ledger-bytes [--batch-secs N] [--keys N]`: what a scraped sample costs in the
//! ledger, recorded one JSON entry per scrape (as sessions did before batches, and as
//! `ledger.scrape_batch_secs: 0` still records) and in compact batches (the default), in the
//! same run.
//!
//! Each scenario is simulated twice with `vigil simulate --ledger` into a fresh SQLite file,
//! once per encoding, from a copy of the scenario's config that differs only in
//! `ledger.scrape_batch_secs`: the day-long `scenarios/day-then-runaway.yaml` (5,760 scrapes
//! of 3 series, then an incident) and a wide hour generated here (`--keys` series, 1,000 by
//! default, scraped every 15 s). For each ledger it prints:
//!
//! - the payload bytes per sample: the scrape entries' payloads (and, batched, the series
//!   blobs they name), over the samples scraped;
//! - the file after `VACUUM`, per sample (everything: the session's texts, the incident);
//! - on disk per sample, scrapes only: the file after `VACUUM` minus the same file with the
//!   scrape entries and their series blobs deleted, over the samples.
//!
//! Both ledgers are verified and replayed (`replay_all`, every command compared) before
//! they are measured.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use sqlx::{Connection as _, SqliteConnection};
use vigil_core::engine::Event;
use vigil_ledger::{EntryKind, Ledger, LedgerLocation};

/// The one-line description in the benchmark list.
pub const ABOUT: &str = "ledger-bytes: bytes per scraped sample in the ledger, JSON against compact batches (day-long and wide scenarios)";

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let mut batch_secs = 600_u64;
    let mut keys = 1_000_usize;
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        let mut number = |name: &str| -> anyhow::Result<u64> {
            iter.next()
                .with_context(|| format!("{name} needs a number"))?
                .parse()
                .with_context(|| format!("{name} needs a number"))
        };
        match arg.as_str() {
            "--batch-secs" => batch_secs = number("--batch-secs")?.clamp(1, 3_600),
            "--keys" => keys = usize::try_from(number("--keys")?)?.max(1),
            other => anyhow::bail!("unknown option `{other}` (use --batch-secs N, --keys N)"),
        }
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("a runtime")?;
    let dir = std::env::temp_dir().join(format!("vigil-bench-bytes-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let result = runtime.block_on(bench(&dir, batch_secs, keys));
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// What one ledger cost.
struct Measured {
    n_scrapes: u64,
    n_samples: u64,
    n_scrape_entries: u64,
    /// The scrape entries' payloads and the series blobs they name.
    payload_bytes: u64,
    /// The file after VACUUM.
    file_bytes: u64,
    /// The same without the scrape entries and their blobs.
    file_without_scrapes: u64,
}

async fn bench(dir: &Path, batch_secs: u64, keys: usize) -> anyhow::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let wide = dir.join("wide-hour.yaml");
    std::fs::write(&wide, wide_scenario(keys))?;
    let scenarios = [
        (
            "day-then-runaway",
            root.join("scenarios/day-then-runaway.yaml"),
        ),
        ("wide hour", wide),
    ];
    println!(
        "ledger-bytes: bytes per scraped sample, SQLite, JSON (one entry per scrape) against compact batches of at most {batch_secs} s"
    );
    println!(
        "{:<18} {:<8} {:>8} {:>9} {:>8} {:>11} {:>9} {:>11} {:>12}",
        "scenario",
        "encoding",
        "scrapes",
        "samples",
        "entries",
        "payload B/s",
        "file MB",
        "file B/s",
        "on disk B/s"
    );
    for (name, scenario) in scenarios {
        let json = measure(dir, &scenario, 0).await?;
        let batched = measure(dir, &scenario, batch_secs).await?;
        anyhow::ensure!(
            (json.n_scrapes, json.n_samples) == (batched.n_scrapes, batched.n_samples),
            "{name}: the two runs scraped differently"
        );
        for (encoding, measured) in [("json", &json), ("compact", &batched)] {
            println!(
                "{name:<18} {encoding:<8} {:>8} {:>9} {:>8} {:>11.1} {:>9.2} {:>11.1} {:>12.2}",
                measured.n_scrapes,
                measured.n_samples,
                measured.n_scrape_entries,
                per_sample(measured.payload_bytes, measured.n_samples),
                measured.file_bytes as f64 / 1e6,
                per_sample(measured.file_bytes, measured.n_samples),
                per_sample(
                    measured
                        .file_bytes
                        .saturating_sub(measured.file_without_scrapes),
                    measured.n_samples
                ),
            );
        }
        let on_disk = |measured: &Measured| {
            per_sample(
                measured
                    .file_bytes
                    .saturating_sub(measured.file_without_scrapes),
                measured.n_samples,
            )
        };
        println!(
            "{name:<18} ratio    payload {:.0}x smaller, file {:.0}x, on disk per sample {:.0}x",
            json.payload_bytes as f64 / batched.payload_bytes.max(1) as f64,
            json.file_bytes as f64 / batched.file_bytes.max(1) as f64,
            on_disk(&json) / on_disk(&batched).max(1e-9),
        );
    }
    Ok(())
}

fn per_sample(bytes: u64, n_samples: u64) -> f64 {
    bytes as f64 / n_samples.max(1) as f64
}

/// An hour of `keys` LiteLLM keys with steady token counters (rates of 1 to 997 tokens a
/// second, some fractional) and a spend gauge each, every 15 s.
fn wide_scenario(keys: usize) -> String {
    let config =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/scenarios/config/vigil.yaml");
    let mut text = format!(
        "name: wide-hour\ndescription: {keys} keys scraped every 15 s for an hour\nconfig: {}\nduration_secs: 3600\nscrape_interval_secs: 15\nseries:\n",
        config.display()
    );
    for key in 0..keys {
        let rate = (key * 37) % 997 + 1;
        let fraction = if key % 4 == 0 { ".25" } else { "" };
        let _ = write!(
            text,
            "  - id: tokens-{key}\n    source: litellm-gateway\n    metric: litellm_total_tokens_metric_total\n    labels: {{ hashed_api_key: k-{key:05}, api_key_alias: app-{key}, team: team-{} }}\n    counter:\n      - {{ from_secs: 0, per_sec: {rate}{fraction} }}\n",
            key % 17
        );
    }
    text.push_str("expect:\n  incidents: 0\n");
    text
}

/// Simulates `scenario` with `ledger.scrape_batch_secs: batch_secs` and measures its ledger.
async fn measure(dir: &Path, scenario: &Path, batch_secs: u64) -> anyhow::Result<Measured> {
    let copy = with_batch_secs(dir, scenario, batch_secs)?;
    let db = dir.join(format!("ledger-{batch_secs}.db"));
    let code = vigil::commands::simulate::run(&vigil::commands::simulate::SimulateArgs {
        scenario: copy,
        json: false,
        check: true,
        ledger: Some(LedgerLocation::Sqlite { path: db.clone() }),
        quiet: true,
    })
    .await?;
    anyhow::ensure!(
        code == std::process::ExitCode::SUCCESS,
        "simulating {} failed",
        scenario.display()
    );
    let location = LedgerLocation::Sqlite { path: db.clone() };
    let ledger = Ledger::open(&location).await?;
    let report = ledger.verify().await?;
    anyhow::ensure!(report.is_intact(), "{:?}", report.first_problem);
    let replayed = vigil::journal::replay::replay_all(&ledger, None).await?;
    anyhow::ensure!(replayed.mismatches.is_empty(), "{:?}", replayed.mismatches);
    let mut measured = count(&ledger).await?;
    ledger.close().await;
    measured.file_bytes = vacuumed_size(&db, false).await?;
    measured.file_without_scrapes = vacuumed_size(&db, true).await?;
    std::fs::remove_file(&db)?;
    Ok(measured)
}

/// Counts the scrapes, samples and their payload bytes (with the series blobs, once each).
async fn count(ledger: &Ledger) -> anyhow::Result<Measured> {
    let mut measured = Measured {
        n_scrapes: 0,
        n_samples: 0,
        n_scrape_entries: 0,
        payload_bytes: 0,
        file_bytes: 0,
        file_without_scrapes: 0,
    };
    let mut series_blobs = std::collections::BTreeSet::new();
    let mut entries = vigil::journal::Entries::new(ledger, 0, u64::MAX);
    while let Some(entry) = entries.next().await? {
        if entry.kind != EntryKind::Event {
            continue;
        }
        match vigil::journal::decode(&entry)? {
            vigil::journal::Recorded::Event(record) => {
                if let Event::Scraped { samples, .. } = &record.event {
                    measured.n_scrapes += 1;
                    measured.n_samples += samples.len() as u64;
                    measured.n_scrape_entries += 1;
                    measured.payload_bytes += entry.payload.len() as u64;
                }
            }
            vigil::journal::Recorded::ScrapeBatch(record) => {
                let body = &record.scrape_batch;
                measured.n_scrapes += u64::from(body.n_scrapes);
                measured.n_samples += body.n_samples;
                measured.n_scrape_entries += 1;
                measured.payload_bytes += entry.payload.len() as u64;
                if series_blobs.insert(body.series_blob.clone()) {
                    let blob = ledger
                        .get_blob(&body.series_blob)
                        .await?
                        .context("a batch's series blob")?;
                    measured.payload_bytes += blob.len() as u64;
                }
            }
            vigil::journal::Recorded::Session(_) | vigil::journal::Recorded::Command(_) => {}
        }
    }
    Ok(measured)
}

/// The size of a copy of the SQLite file `db` after `VACUUM`; without its scrape entries and
/// their series blobs when `without_scrapes`.
async fn vacuumed_size(db: &Path, without_scrapes: bool) -> anyhow::Result<u64> {
    let copy: PathBuf = db.with_extension(if without_scrapes {
        "bare.db"
    } else {
        "copy.db"
    });
    // The ledger was closed: its WAL was checkpointed into the file.
    std::fs::copy(db, &copy).with_context(|| format!("copying {}", db.display()))?;
    let url = format!("sqlite://{}", copy.display());
    let mut connection = SqliteConnection::connect(&url).await?;
    if without_scrapes {
        sqlx::query(
            "DELETE FROM ledger_blobs WHERE hash IN (SELECT substr(payload, instr(payload, '\"series_blob\":\"') + 15, 64) FROM ledger_entries WHERE kind = 'event' AND payload LIKE '{\"scrape_batch\":%')",
        )
        .execute(&mut connection)
        .await?;
        sqlx::query(
            "DELETE FROM ledger_entries WHERE kind = 'event' AND (payload LIKE '{\"scrape_batch\":%' OR payload LIKE '{\"event\":{\"samples\":%')",
        )
        .execute(&mut connection)
        .await?;
    }
    sqlx::query("VACUUM").execute(&mut connection).await?;
    connection.close().await?;
    let size = std::fs::metadata(&copy)?.len();
    std::fs::remove_file(&copy)?;
    Ok(size)
}

/// A copy of `scenario` in `dir` whose config is a copy of its own with
/// `ledger.scrape_batch_secs: batch_secs` (and its folders absolute).
fn with_batch_secs(dir: &Path, scenario: &Path, batch_secs: u64) -> anyhow::Result<PathBuf> {
    let text = std::fs::read_to_string(scenario)?;
    let base = scenario.parent().context("the scenario's folder")?;
    let config_line = text
        .lines()
        .find_map(|line| line.strip_prefix("config: "))
        .context("the scenario names no config")?;
    let config_path = base.join(config_line.trim());
    let config_dir = config_path.parent().context("the config's folder")?;
    let mut config = std::fs::read_to_string(&config_path)
        .with_context(|| format!("reading {}", config_path.display()))?;
    for (key, folder) in [
        ("policies_dir: ", "policies"),
        ("runbooks_dir: ", "runbooks"),
    ] {
        let line = config
            .lines()
            .find(|line| line.starts_with(key))
            .with_context(|| format!("the config has no `{key}`"))?
            .to_owned();
        let relative = line.trim_start_matches(key).trim();
        let absolute = config_dir.join(relative);
        anyhow::ensure!(absolute.ends_with(folder), "{line}");
        config = config.replace(&line, &format!("{key}{}", absolute.display()));
    }
    anyhow::ensure!(
        config.contains("ledger:\n  sqlite_path: unused.db\n"),
        "the config's ledger section changed; update this benchmark"
    );
    config = config.replace(
        "ledger:\n  sqlite_path: unused.db\n",
        &format!("ledger:\n  sqlite_path: unused.db\n  scrape_batch_secs: {batch_secs}\n"),
    );
    let config_copy = dir.join(format!("vigil-{batch_secs}.yaml"));
    std::fs::write(&config_copy, config)?;
    let scenario_copy = dir.join(format!("scenario-{batch_secs}.yaml"));
    std::fs::write(
        &scenario_copy,
        text.replace(
            &format!("config: {config_line}"),
            &format!("config: {}", config_copy.display()),
        ),
    )?;
    Ok(scenario_copy)
}
