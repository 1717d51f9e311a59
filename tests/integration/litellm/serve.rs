//! `vigil serve` scraping the real proxy: its config, the running process (killed if the test
//! fails), its self-metrics, and the scrapes it recorded in its ledger.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use vigil::journal::{ChainEntries, Recorded};
use vigil_core::engine::Event;
use vigil_core::signal::Sample;
use vigil_ledger::{Ledger, LedgerLocation};

use crate::support::{ChildGuard, http_get, repo_root, vigil_command};

/// The source's name in the config, vigil's metrics and the ledger.
pub const SOURCE: &str = "litellm-real";

/// Hang guards, far above what starting, a few scrapes and stopping need.
const START_LIMIT: Duration = Duration::from_secs(120);
const STOP_LIMIT: Duration = Duration::from_secs(60);
const POLL_ROUNDS: u32 = 600;
const POLL_PAUSE: Duration = Duration::from_millis(200);

/// Writes a config scraping `metrics_url` with the key in `key_file`; returns the config and
/// ledger paths.
pub fn write_config(dir: &Path, metrics_url: &str, key_file: &Path) -> (PathBuf, PathBuf) {
    let ledger = dir.join("ledger.db");
    let root = repo_root();
    let config = format!(
        r#"mode: autonomous
environment: test
ledger:
  sqlite_path: "{ledger}"
policies_dir: "{policies}"
runbooks_dir: "{runbooks}"
sources:
  - name: {SOURCE}
    kind: litellm
    url: "{metrics_url}"
    scrape_interval_secs: 2
    scrape_timeout_secs: 2
    bearer_token: {{ file: "{key_file}" }}
    admin:
      master_key: {{ file: "{key_file}" }}
      timeout_secs: 2
detectors:
  - name: token-spike
    kind: spike
    source: {SOURCE}
    metric: litellm_total_tokens_metric_total
    group_by: hashed_api_key
pager:
  kind: log
"#,
        ledger = ledger.display(),
        policies = root.join("policies").display(),
        runbooks = root.join("examples/demo/runbooks").display(),
        key_file = key_file.display(),
    );
    let path = dir.join("vigil.yaml");
    std::fs::write(&path, config).expect("writing the vigil config");
    (path, ledger)
}

/// A running `vigil serve`.
pub struct Served {
    child: ChildGuard,
    address: SocketAddr,
    stderr_lines: mpsc::Receiver<String>,
    stderr: Vec<String>,
}

impl Served {
    /// Starts `vigil serve --config CONFIG --listen 127.0.0.1:0` and waits for its address.
    pub fn start(config: &Path, cwd: &Path) -> Served {
        let mut command = vigil_command(
            [
                "serve".as_ref(),
                "--config".as_ref(),
                config.as_os_str(),
                "--listen".as_ref(),
                "127.0.0.1:0".as_ref(),
            ],
            cwd,
        );
        let mut child = ChildGuard::new(command.spawn().expect("spawning vigil serve"));
        let stderr = child.child_mut().stderr.take().expect("piped stderr");
        // Nobody reads stdout; dropping it would make a print fail, so keep it open.
        let stdout = child.child_mut().stdout.take().expect("piped stdout");
        let (sender, stderr_lines) = mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead as _;
            let _stdout = stdout;
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let mut served = Served {
            child,
            address: SocketAddr::from(([127, 0, 0, 1], 0)),
            stderr_lines,
            stderr: Vec::new(),
        };
        let deadline = Instant::now() + START_LIMIT;
        served.address = loop {
            let line = served.next_line(deadline).unwrap_or_else(|| {
                panic!(
                    "vigil serve printed no address:\n{}",
                    served.stderr.join("\n")
                )
            });
            if line.contains("vigil serving")
                && let Some((_, address)) = line.rsplit_once("on http://")
            {
                break address
                    .trim()
                    .parse()
                    .unwrap_or_else(|error| panic!("bad address in `{line}`: {error}"));
            }
        };
        served
    }

    /// The next stderr line before `deadline`; `None` at the end of the stream or the deadline.
    fn next_line(&mut self, deadline: Instant) -> Option<String> {
        let remaining = deadline.checked_duration_since(Instant::now())?;
        let line = self.stderr_lines.recv_timeout(remaining).ok()?;
        self.stderr.push(line.clone());
        Some(line)
    }

    /// Where it listens.
    #[allow(
        dead_code,
        reason = "used by the OpenTelemetry SDK test (otel_sdk.rs), which shares this file"
    )]
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Everything vigil printed on stderr so far.
    pub fn stderr(&mut self) -> String {
        while let Ok(line) = self.stderr_lines.try_recv() {
            self.stderr.push(line);
        }
        self.stderr.join("\n")
    }

    /// Polls vigil's `/metrics` until `done` accepts the text; panics after the bounded rounds.
    pub fn poll_metrics(&mut self, what: &str, done: impl Fn(&str) -> bool) -> String {
        let mut last = String::from("no answer");
        for _ in 0..POLL_ROUNDS {
            match http_get(self.address, "/metrics") {
                Ok(response) if response.status == 200 && done(&response.body) => {
                    return response.body;
                }
                Ok(response) => last = format!("{} {}", response.status, response.body),
                Err(error) => last = error.to_string(),
            }
            std::thread::sleep(POLL_PAUSE);
        }
        panic!(
            "{what}: gave up polling vigil's /metrics; last answer: {last}\n--- vigil stderr ---\n{}",
            self.stderr()
        );
    }

    /// Stops vigil with SIGTERM; returns its exit code and stderr.
    pub fn stop(mut self) -> (Option<i32>, String) {
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("running kill");
        assert!(sent.success(), "kill -TERM failed");
        let status = self
            .child
            .wait_at_most(STOP_LIMIT, "vigil serve after SIGTERM");
        let deadline = Instant::now() + STOP_LIMIT;
        while self.next_line(deadline).is_some() {}
        (status.code(), self.stderr.join("\n"))
    }
}

/// Every event recorded in the ledger at `ledger`, oldest first, read as replay reads them
/// (`vigil::journal::ChainEntries`): a batch of scrapes gives each of its scrapes.
pub async fn recorded_events(ledger: &Path) -> Vec<Event> {
    let ledger = Ledger::open(&LedgerLocation::Sqlite {
        path: ledger.to_path_buf(),
    })
    .await
    .expect("opening vigil's ledger");
    let first = ledger.read(0, 1).await.expect("reading the ledger");
    let Some(origin) = first.first() else {
        ledger.close().await;
        return Vec::new();
    };
    let mut events = Vec::new();
    let mut chain = ChainEntries::new(&ledger, origin, u64::MAX);
    // Bounded by the ledger's length: each call reads on or ends.
    while let Some((_, recorded)) = chain.next().await.expect("reading the ledger") {
        if let Recorded::Event(record) = recorded {
            events.push(record.event);
        }
    }
    ledger.close().await;
    events
}

/// The samples of every `scraped` event of [`SOURCE`] in the ledger, oldest first.
pub async fn recorded_scrapes(ledger: &Path) -> Vec<Vec<Sample>> {
    recorded_events(ledger)
        .await
        .into_iter()
        .filter_map(|event| match event {
            Event::Scraped {
                source, samples, ..
            } if source == SOURCE => Some(samples),
            _ => None,
        })
        .collect()
}
