//! `vigil-bench ledger`: durable appends per second and verification time.
//!
//! Appends event-sized entries (a scrape of a few samples, ~600 bytes of canonical JSON) to
//! a fresh SQLite ledger in a temporary folder, and to PostgreSQL when `--postgres URL` is
//! given (a schema of its own, dropped afterwards by name), in two ways measured in the same
//! run: one entry per `append` (one transaction, so one fsync, per entry: the baseline) and
//! batches of `--batch` entries per `append` (one fsync per batch). An append is durable when
//! it returns: SQLite in WAL mode with `synchronous=FULL`, PostgreSQL with its default
//! synchronous commit. Then it times `Ledger::verify` (every leaf hash and chain link
//! recomputed from the stored columns and the RFC 6962 tree head, in one pass) over
//! `--entries` entries, against reading the same rows back without hashing, and reopening
//! the ledger (which loads the tree's frontier from the leaf hashes).

use std::time::{Duration, Instant};

use anyhow::Context as _;
use vigil_ledger::{EntryKind, Ledger, LedgerLocation, NewEntry};

/// The one-line description in the benchmark list.
pub const ABOUT: &str =
    "ledger: durable appends/s (one per transaction vs batched), verify time for N entries";

/// Targets from the ledger's brief.
const TARGET_APPENDS_PER_SEC: f64 = 5_000.0;
const TARGET_VERIFY_1M_SECS: f64 = 10.0;

struct Options {
    single: usize,
    batch: usize,
    entries: usize,
    postgres: Option<String>,
}

fn parse(args: &[String]) -> anyhow::Result<Options> {
    let mut options = Options {
        single: 2_000,
        batch: 500,
        entries: 1_000_000,
        postgres: None,
    };
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        let mut number = |name: &str| -> anyhow::Result<usize> {
            iter.next()
                .with_context(|| format!("{name} needs a number"))?
                .parse()
                .with_context(|| format!("{name} needs a number"))
        };
        match arg.as_str() {
            "--single" => options.single = number("--single")?,
            "--batch" => options.batch = number("--batch")?.max(1),
            "--entries" => options.entries = number("--entries")?,
            "--postgres" => {
                options.postgres = Some(iter.next().context("--postgres needs a URL")?.clone());
            }
            other => anyhow::bail!(
                "unknown option `{other}` (use --single N, --batch N, --entries N, --postgres URL)"
            ),
        }
    }
    Ok(options)
}

fn entry(i: usize) -> NewEntry {
    NewEntry {
        at_ms: 1_767_225_600_000 + i as i64 * 15,
        kind: EntryKind::Event,
        incident_id: None,
        payload: serde_json::json!({
            "event": {
                "type": "scraped",
                "source": "litellm-gateway",
                "scraped_at": 1_767_225_600_000_i64 + i as i64 * 15,
                "samples": (0..4).map(|k| serde_json::json!({
                    "name": "litellm_total_tokens_metric_total",
                    "labels": {"hashed_api_key": format!("key-{k}"), "api_key_alias": format!("app-{k}"), "team": "ml"},
                    "value": (i * 37 + k) as f64,
                })).collect::<Vec<_>>()
            }
        }),
    }
}

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let options = parse(args)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("a runtime")?;
    runtime.block_on(async {
        let dir = std::env::temp_dir().join(format!("vigil-bench-ledger-{}", std::process::id()));
        std::fs::create_dir_all(&dir).context("a temporary folder")?;
        let result = bench_all(&options, &dir).await;
        let _ = std::fs::remove_dir_all(&dir);
        result
    })
}

async fn bench_all(options: &Options, dir: &std::path::Path) -> anyhow::Result<()> {
    println!(
        "ledger: event-sized entries; durable appends (SQLite WAL synchronous=FULL, PostgreSQL synchronous commit)"
    );
    let sqlite = |name: &str| LedgerLocation::Sqlite {
        path: dir.join(name),
    };
    appends("sqlite", &sqlite("appends.db"), options).await?;
    if let Some(url) = &options.postgres {
        let schema = format!("vigil_bench_{}", std::process::id());
        let location = LedgerLocation::Postgres {
            url: url.clone(),
            schema: Some(schema.clone()),
        };
        let measured = appends("postgres", &location, options).await;
        drop_schema(url, &schema).await;
        measured?;
    }
    verify_time(&sqlite("verify.db"), options.entries, options.batch).await
}

async fn appends(name: &str, location: &LedgerLocation, options: &Options) -> anyhow::Result<()> {
    let mut ledger = Ledger::open(location).await.context("opening the ledger")?;
    let started = Instant::now();
    for i in 0..options.single {
        ledger.append(&[entry(i)]).await?;
    }
    let single = options.single as f64 / started.elapsed().as_secs_f64();
    let n_batches = (options.single * 10 / options.batch).max(1);
    let started = Instant::now();
    for b in 0..n_batches {
        let batch: Vec<NewEntry> = (0..options.batch)
            .map(|i| entry(b * options.batch + i))
            .collect();
        ledger.append(&batch).await?;
    }
    let batched = (n_batches * options.batch) as f64 / started.elapsed().as_secs_f64();
    ledger.close().await;
    println!(
        "  {name:<8} one entry per append: {single:>10.0} appends/s   batches of {}: {batched:>10.0} entries/s ({:.1}x); target {TARGET_APPENDS_PER_SEC:.0}/s: {}",
        options.batch,
        batched / single,
        if batched >= TARGET_APPENDS_PER_SEC {
            "met (batched)"
        } else {
            "NOT met"
        }
    );
    Ok(())
}

async fn verify_time(location: &LedgerLocation, n: usize, batch: usize) -> anyhow::Result<()> {
    let mut ledger = Ledger::open(location).await.context("opening the ledger")?;
    let started = Instant::now();
    let mut written = 0;
    while written < n {
        let size = batch.max(1000).min(n - written);
        let entries: Vec<NewEntry> = (written..written + size).map(entry).collect();
        ledger.append(&entries).await?;
        written += size;
    }
    let fill = started.elapsed();
    ledger.close().await;
    // Reopening loads the Merkle frontier from the stored leaf hashes.
    let started = Instant::now();
    let ledger = Ledger::open(location)
        .await
        .context("reopening the ledger")?;
    let reopen = started.elapsed();
    // The baseline: reading every row back, with no hashing.
    let started = Instant::now();
    let mut from = 0;
    let mut n_read = 0_usize;
    loop {
        let page = ledger.read(from, vigil_ledger::VERIFY_PAGE_ROWS).await?;
        let Some(last) = page.last() else { break };
        from = last.seq + 1;
        n_read += page.len();
    }
    let read = started.elapsed();
    anyhow::ensure!(n_read == n, "read back {n_read} of {n} entries");
    // One pass: every leaf hash, every chain link and the RFC 6962 tree head.
    let started = Instant::now();
    let report = ledger.verify().await?;
    let verify = started.elapsed();
    anyhow::ensure!(report.is_intact(), "the benchmark ledger does not verify");
    anyhow::ensure!(
        ledger.tree_head() == Some((report.n_entries, report.tree_head)),
        "the frontier and the verification disagree on the tree head"
    );
    ledger.close().await;
    let scaled_1m = verify.as_secs_f64() * 1_000_000.0 / n.max(1) as f64;
    println!(
        "  verify {n} entries (hashes, chain and tree head {}, one pass): {}; per 1M: {scaled_1m:.1} s; target {TARGET_VERIFY_1M_SECS:.0} s: {}",
        &hex_prefix(&report.tree_head),
        secs(verify),
        if scaled_1m <= TARGET_VERIFY_1M_SECS {
            "met"
        } else {
            "NOT met"
        }
    );
    println!(
        "  baseline, reading the same rows without hashing: {} (verify / read = {:.2}x)",
        secs(read),
        verify.as_secs_f64() / read.as_secs_f64().max(1e-9)
    );
    println!(
        "  reopening (loads the tree frontier from the leaf hashes): {}",
        secs(reopen)
    );
    println!("  (filling the ledger took {})", secs(fill));
    Ok(())
}

/// Drops the benchmark's schema (its name is ours: `vigil_bench_<pid>`); a failure is
/// reported, not fatal.
pub(crate) async fn drop_schema(url: &str, schema: &str) {
    use sqlx::{Connection as _, Executor as _};
    let dropped = async {
        let mut connection = sqlx::PgConnection::connect(url).await?;
        connection
            .execute(sqlx::AssertSqlSafe(format!(
                "DROP SCHEMA \"{schema}\" CASCADE"
            )))
            .await?;
        connection.close().await
    }
    .await;
    if let Err(error) = dropped {
        eprintln!("cannot drop the benchmark schema `{schema}` (drop it by hand): {error}");
    }
}

fn secs(duration: Duration) -> String {
    format!("{:.2} s", duration.as_secs_f64())
}

fn hex_prefix(bytes: &[u8; 32]) -> String {
    bytes.iter().take(6).map(|b| format!("{b:02x}")).collect()
}
