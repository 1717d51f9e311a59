//! `vigil-bench report --db FILE [--rounds N]`: how long `vigil report` takes to read a
//! ledger, against the way it would read without the ledger's kind filter.
//!
//! Make a large ledger first with `vigil-bench ledger-size --out FILE` (320 MB of days of
//! scrapes, one incident a day, multi-MB pushes). Each round runs
//! `vigil::journal::report::read` over the whole ledger (a period from its first entry to its
//! last): the database returns only the command entries. The baseline, in the same run over
//! the same ledger, reads every entry of the period and decodes the commands among them,
//! which is what the report would cost if the filter were done after reading. Both must
//! count the same incidents.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use vigil::journal::report::{Since, read};
use vigil::journal::{self, Recorded};
use vigil_core::report::{Assumptions, Period, ReportBuilder};
use vigil_core::time::Timestamp;
use vigil_ledger::{EntryFilter, EntryKind, Ledger, LedgerLocation, PageLimits};

/// The one-line description in the benchmark list.
pub const ABOUT: &str =
    "report: time for `vigil report` over a whole ledger (--db FILE), against reading every entry";

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let mut rounds = 3_usize;
    let mut db = None;
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        match arg.as_str() {
            "--rounds" => rounds = crate::number_after("--rounds", iter.next())?.max(1),
            "--db" => db = Some(iter.next().context("--db needs a file")?.clone()),
            other => anyhow::bail!("unknown option `{other}` (use --db FILE [--rounds N])"),
        }
    }
    let db = db.context("give --db FILE (make one with `vigil-bench ledger-size --out FILE`)")?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("a runtime")?;
    runtime.block_on(bench(&db, rounds))
}

async fn bench(db: &str, rounds: usize) -> anyhow::Result<()> {
    let location = LedgerLocation::Sqlite { path: db.into() };
    let ledger = Ledger::open_existing(&location).await?;
    let n_entries = ledger.len();
    let first = ledger
        .read(0, 1)
        .await?
        .first()
        .map(|entry| entry.at_ms)
        .context("an empty ledger")?;
    let since = Since::At(Timestamp(first));
    let (mut shipped, mut baseline) = (Vec::new(), Vec::new());
    let (mut shipped_incidents, mut baseline_incidents) = (0, 0);
    for _ in 0..rounds {
        let started = Instant::now();
        let report = read(&ledger, since, None, Assumptions::default()).await?;
        shipped.push(started.elapsed());
        shipped_incidents = report.report.incidents;

        let started = Instant::now();
        baseline_incidents = read_everything(&ledger, first, report.report.period).await?;
        baseline.push(started.elapsed());
    }
    ledger.close().await;
    anyhow::ensure!(
        shipped_incidents == baseline_incidents,
        "the two reads disagree: {shipped_incidents} against {baseline_incidents} incidents"
    );
    let median = |times: &mut Vec<Duration>| {
        times.sort();
        times.get(times.len() / 2).copied().unwrap_or_default()
    };
    let (shipped, baseline) = (median(&mut shipped), median(&mut baseline));
    let bytes = std::fs::metadata(db).map(|m| m.len()).unwrap_or_default();
    println!(
        "report over {n_entries} entries ({} MB), {shipped_incidents} incidents; median of {rounds} rounds",
        bytes >> 20
    );
    println!(
        "  vigil report (commands only, filtered by the database): {:>8.1} ms",
        shipped.as_secs_f64() * 1e3
    );
    println!(
        "  baseline (every entry read, the commands decoded):      {:>8.1} ms",
        baseline.as_secs_f64() * 1e3
    );
    println!(
        "  ratio: the baseline takes {:.1}x as long",
        baseline.as_secs_f64() / shipped.as_secs_f64().max(1e-9)
    );
    Ok(())
}

/// The baseline: the same report with every entry of the period read.
async fn read_everything(ledger: &Ledger, from_ms: i64, period: Period) -> anyhow::Result<u64> {
    let filter = EntryFilter {
        since_ms: Some(from_ms),
        ..EntryFilter::default()
    };
    let mut reader = ledger.entries(filter, PageLimits::default());
    let mut builder = ReportBuilder::new(period);
    while let Some(entry) = reader.next().await? {
        if entry.kind != EntryKind::Command {
            continue;
        }
        if let Ok(Recorded::Command(record)) = journal::decode(&entry) {
            builder.command(Timestamp(entry.at_ms), &record.command);
        }
    }
    Ok(builder.finish(Assumptions::default()).incidents)
}
