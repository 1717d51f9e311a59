//! A real Prometheus server for one test: its own config and data folder under cargo's
//! temporary folder, a free loopback port, its output in a log file (printed if the test
//! fails), and the process killed and its folder removed on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Attempts at starting, each on a fresh port, in case another process takes the port
/// between our probe and Prometheus binding it.
const START_ATTEMPTS: u32 = 3;
/// Hang guard for readiness: rounds of [`POLL_PAUSE`].
const READY_ROUNDS: u32 = 1200;
const POLL_PAUSE: Duration = Duration::from_millis(100);

/// The Prometheus binary: `VIGIL_TEST_PROMETHEUS`, else `prometheus` on `PATH`, else
/// `/usr/bin/prometheus`; `None` when none of them exists.
pub fn find_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("VIGIL_TEST_PROMETHEUS") {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "VIGIL_TEST_PROMETHEUS is `{}`, which is not a file",
            path.display()
        );
        return Some(path);
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("prometheus"))
            .find(|candidate| candidate.is_file())
    });
    on_path.or_else(|| {
        let fallback = PathBuf::from("/usr/bin/prometheus");
        fallback.is_file().then_some(fallback)
    })
}

/// A running Prometheus.
pub struct PrometheusServer {
    child: Child,
    dir: PathBuf,
    base_url: String,
    http: reqwest::Client,
}

impl PrometheusServer {
    /// Starts Prometheus scraping `target` (`host:port`, path `/metrics`) every second under
    /// the job name `job`, and waits until it is ready.
    pub async fn start(binary: &Path, job: &str, target: &str) -> PrometheusServer {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "prometheus-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: {job}\n    honor_timestamps: true\n    \
                 static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .unwrap();
        let http = vigil_connectors::http::client(Duration::from_secs(10)).unwrap();

        let mut last_log = String::new();
        for attempt in 0..START_ATTEMPTS {
            let port = free_port();
            let log_path = dir.join(format!("prometheus-{attempt}.log"));
            let log = std::fs::File::create(&log_path).unwrap();
            let mut child = Command::new(binary)
                .arg(format!("--config.file={}", config.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.join(format!("data-{attempt}")).display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap_or_else(|error| panic!("cannot run {}: {error}", binary.display()));
            let base_url = format!("http://127.0.0.1:{port}");
            match wait_ready(&mut child, &base_url, &http).await {
                Ok(()) => {
                    return PrometheusServer {
                        child,
                        dir,
                        base_url,
                        http,
                    };
                }
                Err(why) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    last_log = format!(
                        "{why}\n{}",
                        std::fs::read_to_string(&log_path).unwrap_or_default()
                    );
                }
            }
            if !last_log.contains("address already in use") {
                break;
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
        panic!("prometheus did not start:\n{last_log}");
    }

    /// The server's base URL, `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Everything the server logged so far.
    pub fn log(&self) -> String {
        let mut logs = String::new();
        let mut paths: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .map(|entries| {
                entries
                    .filter_map(|entry| entry.ok().map(|entry| entry.path()))
                    .collect()
            })
            .unwrap_or_default();
        paths.sort();
        for path in paths
            .iter()
            .filter(|path| path.extension().is_some_and(|ext| ext == "log"))
        {
            logs.push_str(&format!("--- {} ---\n", path.display()));
            logs.push_str(&std::fs::read_to_string(path).unwrap_or_default());
        }
        logs
    }

    /// `/api/v1/targets` shows exactly one active target, healthy, with no scrape error.
    pub async fn assert_target_healthy(&self) {
        let url = format!("{}/api/v1/targets", self.base_url);
        let targets: serde_json::Value = self
            .http
            .get(&url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let active = targets["data"]["activeTargets"].as_array().unwrap();
        assert_eq!(active.len(), 1, "{targets}");
        assert_eq!(active[0]["health"], "up", "{targets}");
        assert_eq!(active[0]["lastError"], "", "{targets}");
    }

    fn kill(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

impl Drop for PrometheusServer {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!("prometheus' log:\n{}", self.log());
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Polls `/-/ready` until it answers 200; an error says why not (the process exited, or
/// the bounded polling ran out).
async fn wait_ready(
    child: &mut Child,
    base_url: &str,
    http: &reqwest::Client,
) -> Result<(), String> {
    let ready = format!("{base_url}/-/ready");
    for _ in 0..READY_ROUNDS {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("prometheus exited: {status}"));
        }
        if let Ok(response) = http.get(&ready).send().await
            && response.status().is_success()
        {
            return Ok(());
        }
        tokio::time::sleep(POLL_PAUSE).await;
    }
    Err(format!(
        "prometheus was not ready after {READY_ROUNDS} polls"
    ))
}

/// A loopback port that was free a moment ago.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}
