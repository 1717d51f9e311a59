//! `vigil-bench edge --vigil PATH`: the peak memory of a `vigil serve` binary under maximum
//! pushes and slow connections.
//!
//! Runs the given binary (so that an earlier build can be measured the same way) with a
//! SQLite ledger in a temporary folder, the shipped policies and the push intake on loopback,
//! then opens `--slow-connections` connections that send half a request head, sends
//! `--pushes` eval batches of about `--body-bytes` each at once, and prints the answers and the
//! daemon's resident memory (VmRSS, and VmHWM, the peak) before and after. Linux only: it
//! reads `/proc/PID/status`. `--max-concurrent-pushes N` and `--max-connections N` set the
//! keys of the same names (leave them out for builds that do not know them).

use std::collections::BTreeMap;
use std::io::{BufRead as _, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

/// The one-line description in the benchmark list.
pub const ABOUT: &str =
    "edge: peak RSS of a vigil serve binary under maximum pushes and slow connections";

struct Options {
    vigil: PathBuf,
    pushes: usize,
    body_bytes: usize,
    slow_connections: usize,
    max_concurrent_pushes: Option<usize>,
    max_connections: Option<usize>,
}

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let mut options = Options {
        vigil: PathBuf::new(),
        pushes: 16,
        body_bytes: 11_400_000,
        slow_connections: 0,
        max_concurrent_pushes: None,
        max_connections: None,
    };
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        let mut value = |name: &str| -> anyhow::Result<&String> {
            iter.next().with_context(|| format!("{name} needs a value"))
        };
        let number = |text: &String, name: &str| -> anyhow::Result<usize> {
            text.parse::<usize>()
                .with_context(|| format!("{name} needs a number"))
        };
        match arg.as_str() {
            "--vigil" => options.vigil = PathBuf::from(value("--vigil")?),
            "--pushes" => options.pushes = number(value("--pushes")?, "--pushes")?.max(1),
            "--body-bytes" => options.body_bytes = number(value("--body-bytes")?, "--body-bytes")?,
            "--slow-connections" => {
                options.slow_connections =
                    number(value("--slow-connections")?, "--slow-connections")?;
            }
            "--max-concurrent-pushes" => {
                let text = value("--max-concurrent-pushes")?;
                options.max_concurrent_pushes = Some(number(text, "--max-concurrent-pushes")?);
            }
            "--max-connections" => {
                let text = value("--max-connections")?;
                options.max_connections = Some(number(text, "--max-connections")?);
            }
            other => bail!(
                "unknown option `{other}` (use --vigil PATH, --pushes N, --body-bytes N, \
                 --slow-connections N, --max-concurrent-pushes N, --max-connections N)"
            ),
        }
    }
    if options.vigil.as_os_str().is_empty() {
        bail!("--vigil PATH is required: the vigil binary to measure");
    }
    let dir = std::env::temp_dir().join(format!("vigil-bench-edge-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("runbooks"))
        .with_context(|| format!("creating {}", dir.display()))?;
    let result = bench(&dir, &options);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn config(dir: &Path, options: &Options) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut intake = String::from("  max_body_bytes: 20971520\n");
    if let Some(limit) = options.max_concurrent_pushes {
        intake.push_str(&format!("  max_concurrent_pushes: {limit}\n"));
    }
    let server = options
        .max_connections
        .map(|limit| {
            format!("server:\n  max_connections: {limit}\n  header_read_timeout_secs: 120\n")
        })
        .unwrap_or_default();
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
{server}intake:
{intake}pager:
  kind: log
"#,
        ledger = dir.join("edge.db").display(),
        policies = root.join("policies").display(),
        runbooks = dir.join("runbooks").display(),
    )
}

/// A valid eval batch of 10,000 results of about `body_bytes` in all (at most about 11.8 MB:
/// names are at most 256 characters).
fn eval_batch(body_bytes: usize) -> String {
    let pad = ((body_bytes / 10_000).saturating_sub(180) / 4).min(240);
    let filler = "x".repeat(pad);
    let results: Vec<serde_json::Value> = (0..10_000)
        .map(|idx| {
            serde_json::json!({
                "suite": format!("suite-{filler}"), "case": format!("case-{idx}-{filler}"),
                "passed": idx % 3 != 0, "score": 0.5, "model": format!("gpt-4o-{filler}"),
                "prompt_name": "answer", "prompt_version": "12", "input_tokens": 3120,
                "run_id": format!("run-{filler}")
            })
        })
        .collect();
    serde_json::json!({ "results": results }).to_string()
}

/// VmRSS and VmHWM of `pid`, in MiB.
fn memory(pid: u32) -> anyhow::Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .context("reading /proc/PID/status (Linux only)")?;
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kib| kib.parse::<u64>().ok())
            .map_or(0, |kib| kib / 1024)
    };
    Ok((field("VmRSS:"), field("VmHWM:")))
}

fn bench(dir: &Path, options: &Options) -> anyhow::Result<()> {
    let config_path = dir.join("vigil.yaml");
    std::fs::write(&config_path, config(dir, options)).context("writing the config")?;
    let mut child = Command::new(&options.vigil)
        .args(["serve", "--config"])
        .arg(&config_path)
        .args(["--listen", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", options.vigil.display()))?;
    let result = measure(&mut child, options);
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    result
}

fn measure(child: &mut std::process::Child, options: &Options) -> anyhow::Result<()> {
    let stderr = child.stderr.take().context("vigil's stderr")?;
    let mut lines = std::io::BufReader::new(stderr).lines();
    let address: SocketAddr = loop {
        let line = lines
            .next()
            .context("vigil serve stopped before saying where it listens")??;
        if line.contains("vigil serving")
            && let Some((_, address)) = line.rsplit_once("://")
        {
            break address.trim().parse().context("the address")?;
        }
    };
    // Keep reading stderr so that vigil never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    let pid = child.id();
    std::thread::sleep(Duration::from_secs(1));
    let (rss, hwm) = memory(pid)?;
    println!("edge: {} at {address}", options.vigil.display());
    println!("  idle:            VmRSS {rss:>5} MiB, VmHWM {hwm:>5} MiB");

    let mut slow = Vec::with_capacity(options.slow_connections);
    for _ in 0..options.slow_connections {
        let mut stream = TcpStream::connect(address).context("a slow connection")?;
        stream.write_all(b"POST /v1/push/evals HTTP/1.1\r\nHost: vigil\r\nContent-Ty")?;
        slow.push(stream);
    }
    if options.slow_connections > 0 {
        let (rss, hwm) = memory(pid)?;
        println!(
            "  {:>5} slow conns: VmRSS {rss:>5} MiB, VmHWM {hwm:>5} MiB",
            options.slow_connections
        );
    }

    let body = Arc::new(eval_batch(options.body_bytes));
    let start = Arc::new(Barrier::new(options.pushes));
    let started = Instant::now();
    let clients: Vec<_> = (0..options.pushes)
        .map(|_| {
            let (body, start) = (Arc::clone(&body), Arc::clone(&start));
            std::thread::spawn(move || push(address, &body, &start))
        })
        .collect();
    let mut answers: BTreeMap<String, usize> = BTreeMap::new();
    for client in clients {
        let answer = client
            .join()
            .unwrap_or_else(|_| "a client panicked".to_owned());
        *answers.entry(answer).or_default() += 1;
    }
    let elapsed = started.elapsed();
    std::thread::sleep(Duration::from_secs(1));
    let (rss, hwm) = memory(pid)?;
    println!(
        "  {} pushes of {:.1} MB at once, answered in {:.1}s: {answers:?}",
        options.pushes,
        body.len() as f64 / 1e6,
        elapsed.as_secs_f64()
    );
    println!("  after:           VmRSS {rss:>5} MiB, VmHWM {hwm:>5} MiB (peak)");
    drop(slow);
    Ok(())
}

/// One push; returns its status line (or what went wrong).
fn push(address: SocketAddr, body: &str, start: &Barrier) -> String {
    start.wait();
    let attempt = || -> std::io::Result<String> {
        let mut stream = TcpStream::connect(address)?;
        stream.set_read_timeout(Some(Duration::from_secs(300)))?;
        let head = format!(
            "POST /v1/push/evals HTTP/1.1\r\nHost: vigil\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes())?;
        // The server may answer (503) and stop reading before the body is all sent.
        let _ = stream.write_all(body.as_bytes());
        let mut bytes = Vec::new();
        let _ = stream.read_to_end(&mut bytes);
        let text = String::from_utf8_lossy(&bytes);
        Ok(text.lines().next().unwrap_or("no answer").to_owned())
    };
    attempt().unwrap_or_else(|error| format!("error: {error}"))
}
