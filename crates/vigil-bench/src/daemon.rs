//! `vigil-bench daemon`: acknowledged pushes per second through the real daemon.
//!
//! Starts vigil's daemon in process (a SQLite ledger in a temporary folder, the shipped
//! policies, no runbook, the push intake on loopback) and posts eval results to
//! `POST /v1/push/evals`, one result per request, first from one client in sequence, then from
//! `--clients` clients at once. A 2xx means the push's event is durably in the ledger, so
//! acknowledged pushes per second is the daemon's durable ingest rate. The baseline, measured
//! in the same run on the same disk, is `Ledger::append` of one entry per transaction.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;
use vigil::daemon::{Clock, Daemon, DaemonOptions};
use vigil_ledger::{EntryKind, Ledger, LedgerLocation, NewEntry};

/// The one-line description in the benchmark list.
pub const ABOUT: &str =
    "daemon: acknowledged (durable) pushes/s through the real daemon, against raw ledger appends";

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let mut pushes = 2_000_usize;
    let mut clients = 16_usize;
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        let mut number = |name: &str| -> anyhow::Result<usize> {
            iter.next()
                .with_context(|| format!("{name} needs a number"))?
                .parse::<usize>()
                .with_context(|| format!("{name} needs a number"))
        };
        match arg.as_str() {
            "--pushes" => pushes = number("--pushes")?.max(1),
            "--clients" => clients = number("--clients")?.max(1),
            other => anyhow::bail!("unknown option `{other}` (use --pushes N, --clients N)"),
        }
    }
    vigil_connectors::install_crypto_provider();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("a runtime")?;
    let dir = std::env::temp_dir().join(format!("vigil-bench-daemon-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let result = runtime.block_on(bench(&dir, pushes, clients));
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn config(dir: &Path) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    format!(
        r#"mode: autonomous
environment: bench
ledger:
  sqlite_path: "{ledger}"
policies_dir: "{policies}"
runbooks_dir: "{runbooks}"
sources:
  - name: gateway
    kind: litellm
    url: http://127.0.0.1:9/metrics/
    scrape_interval_secs: 3600
detectors:
  - name: token-spike
    kind: spike
    source: gateway
intake:
  max_concurrent_pushes: 16              # one per client: none is refused
pager:
  kind: log
"#,
        ledger = dir.join("daemon.db").display(),
        policies = root.join("policies").display(),
        runbooks = dir.join("runbooks").display(),
    )
}

/// Acknowledged pushes per second, and the baseline measured beside them.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PushRates {
    /// `Ledger::append`, one entry per transaction, on the same disk.
    pub(crate) baseline: f64,
    /// One client, one push after another.
    pub(crate) sequential: f64,
    /// The same pushes from several clients at once.
    pub(crate) concurrent: f64,
}

async fn bench(dir: &Path, pushes: usize, clients: usize) -> anyhow::Result<()> {
    let PushRates {
        baseline,
        sequential,
        concurrent,
    } = measure(dir, pushes, clients).await?;
    println!(
        "daemon: eval pushes acknowledged once durably in the ledger (SQLite WAL, synchronous=FULL)"
    );
    println!("  baseline: Ledger::append, one entry per transaction: {baseline:>8.0} appends/s");
    println!(
        "  one client, in sequence:      {sequential:>8.0} pushes/s ({:.2}x the baseline)",
        sequential / baseline
    );
    println!(
        "  {clients} clients at once:          {concurrent:>8.0} pushes/s ({:.2}x the baseline)",
        concurrent / baseline
    );
    Ok(())
}

/// Runs the measurement in `dir`: the baseline, then the daemon with `pushes` pushes from one
/// client and as many from `clients` clients.
pub(crate) async fn measure(
    dir: &Path,
    pushes: usize,
    clients: usize,
) -> anyhow::Result<PushRates> {
    // The baseline: one entry per transaction, on the same disk.
    let baseline = raw_appends(dir, pushes).await?;

    // No runbook: the benchmark measures recording, not remediation.
    std::fs::create_dir_all(dir.join("runbooks")).context("creating the runbooks folder")?;
    let config_path = dir.join("vigil.yaml");
    std::fs::write(&config_path, config(dir)).context("writing the config")?;
    let bundle = vigil::bundle::load(&config_path)
        .map_err(|problems| anyhow::anyhow!("the benchmark config is invalid:\n{problems}"))?;
    let ledger = Ledger::open(&LedgerLocation::Sqlite {
        path: dir.join("daemon.db"),
    })
    .await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let daemon = Daemon::build(
        bundle,
        ledger,
        Some(listener),
        Clock::system(),
        DaemonOptions::default(),
    )?;
    let cancel = CancellationToken::new();
    let running = tokio::spawn(daemon.run(cancel.clone()));
    let client = reqwest::Client::new();
    let url = format!("http://{address}/v1/push/evals");
    wait_ready(&client, &format!("http://{address}/healthz")).await?;

    let started = Instant::now();
    for n in 0..pushes {
        push(&client, &url, &format!("s{n}")).await?;
    }
    let sequential = pushes as f64 / started.elapsed().as_secs_f64();

    let started = Instant::now();
    let per_client = pushes.div_ceil(clients);
    let client = Arc::new(client);
    let mut tasks = Vec::with_capacity(clients);
    for c in 0..clients {
        let (client, url) = (Arc::clone(&client), url.clone());
        tasks.push(tokio::spawn(async move {
            for n in 0..per_client {
                push(&client, &url, &format!("c{c}-{n}")).await?;
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    let concurrent = (per_client * clients) as f64 / started.elapsed().as_secs_f64();
    cancel.cancel();
    running.await??.close().await;
    Ok(PushRates {
        baseline,
        sequential,
        concurrent,
    })
}

async fn raw_appends(dir: &Path, n: usize) -> anyhow::Result<f64> {
    let mut ledger = Ledger::open(&LedgerLocation::Sqlite {
        path: dir.join("baseline.db"),
    })
    .await?;
    let started = Instant::now();
    for i in 0..n {
        let entry = NewEntry {
            at_ms: 1_767_225_600_000,
            kind: EntryKind::Event,
            incident_id: None,
            payload: serde_json::json!({"event": {"type": "pushed", "n": i}}),
        };
        ledger.append(&[entry]).await?;
    }
    let rate = n as f64 / started.elapsed().as_secs_f64();
    ledger.close().await;
    Ok(rate)
}

pub(crate) async fn wait_ready(client: &reqwest::Client, url: &str) -> anyhow::Result<()> {
    for _ in 0..200 {
        if let Ok(response) = client.get(url).send().await
            && response.status().is_success()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    anyhow::bail!("the daemon never became ready at {url}")
}

pub(crate) async fn push(client: &reqwest::Client, url: &str, case: &str) -> anyhow::Result<()> {
    let body = serde_json::json!({"results": [{
        "suite": "bench", "case": case, "passed": true, "model": "m",
        "prompt_name": "p", "prompt_version": "v1"
    }]});
    let response = client.post(url).json(&body).send().await?;
    anyhow::ensure!(
        response.status().is_success(),
        "push {case} answered {}",
        response.status()
    );
    Ok(())
}
