//! A real LiteLLM proxy for one test: started from the virtualenv's Python with a config of
//! mock models, on a free loopback port, its output kept in a log file that is printed if the
//! test fails, and its whole process group killed on drop.

use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Attempts at starting, each on a fresh port, in case another process takes the port
/// between our probe and uvicorn binding it.
const START_ATTEMPTS: u32 = 3;
/// Hang guard for readiness (LiteLLM imports for a while, longer on a busy machine).
const READY_ROUNDS: u32 = 1200;
const POLL_PAUSE: Duration = Duration::from_millis(250);

/// The model that answers with a mock completion.
pub const MODEL_OK: &str = "mock-ok";
/// Its deployment's underlying model name.
pub const MODEL_OK_DEPLOYMENT: &str = "gpt-4o";
/// The model whose only deployment answers every call with a mock rate-limit error.
pub const MODEL_LIMITED: &str = "mock-limited";
/// Its deployment's underlying model name.
pub const MODEL_LIMITED_DEPLOYMENT: &str = "gpt-4o-mini";

/// The proxy's config: two mock models, Prometheus metrics, no retries, and per-request mock
/// errors allowed.
fn config() -> String {
    format!(
        r#"model_list:
  - model_name: {MODEL_OK}
    litellm_params:
      model: openai/{MODEL_OK_DEPLOYMENT}
      api_key: sk-fake
      mock_response: "Hello from the mock"
  - model_name: {MODEL_LIMITED}
    litellm_params:
      model: openai/{MODEL_LIMITED_DEPLOYMENT}
      api_key: sk-fake
      mock_response: "litellm.RateLimitError"
litellm_settings:
  callbacks: ["prometheus"]
  num_retries: 0
general_settings:
  master_key: os.environ/LITELLM_MASTER_KEY
  dangerously_allow_mock_testing_request_params: true
"#
    )
}

/// The virtualenv's Python from `VIGIL_TEST_LITELLM_PYTHON`. `None` (after saying so) when it
/// is unset outside CI; a failure when it is unset under CI or does not exist.
pub fn python() -> Option<PathBuf> {
    match std::env::var_os("VIGIL_TEST_LITELLM_PYTHON") {
        Some(path) => {
            let path = PathBuf::from(path);
            assert!(
                path.is_file(),
                "VIGIL_TEST_LITELLM_PYTHON is `{}`, which is not a file (run .ci/setup-litellm)",
                path.display()
            );
            Some(path)
        }
        None => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI is set but VIGIL_TEST_LITELLM_PYTHON is not: the LiteLLM proxy is not \
                 installed (run .ci/setup-litellm and export the python path it prints)"
            );
            println!("skipping: the LiteLLM proxy is not installed (run .ci/setup-litellm)");
            None
        }
    }
}

/// A running proxy.
pub struct LitellmProxy {
    child: Child,
    base_url: String,
    log_path: PathBuf,
}

impl LitellmProxy {
    /// Starts the proxy with `python` in `dir` and waits until `/health/liveliness` answers.
    pub async fn start(
        python: &Path,
        dir: &Path,
        master_key: &str,
        http: &reqwest::Client,
    ) -> LitellmProxy {
        let config_path = dir.join("litellm.yaml");
        std::fs::write(&config_path, config()).expect("writing the proxy config");
        let mut last_failure = String::new();
        for attempt in 0..START_ATTEMPTS {
            let port = free_port();
            let log_path = dir.join(format!("litellm-{attempt}.log"));
            let log = std::fs::File::create(&log_path).expect("creating the proxy log");
            let child = Command::new(python)
                .args([
                    "-c",
                    "import sys; from litellm import run_server; sys.exit(run_server())",
                    "--config",
                ])
                .arg(&config_path)
                .args(["--host", "127.0.0.1", "--port", &port.to_string()])
                .current_dir(dir)
                .env("LITELLM_MASTER_KEY", master_key)
                // Its price map is bundled; without this it tries to download a newer one.
                .env("LITELLM_LOCAL_MODEL_COST_MAP", "True")
                .env("PYTHONUNBUFFERED", "1")
                .env_remove("DATABASE_URL")
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("cloning the log file"))
                .stderr(log)
                // Its own process group, so that drop can end everything it started.
                .process_group(0)
                .spawn()
                .unwrap_or_else(|error| panic!("cannot run {}: {error}", python.display()));
            let mut proxy = LitellmProxy {
                child,
                base_url: format!("http://127.0.0.1:{port}"),
                log_path,
            };
            match proxy.wait_ready(http).await {
                Ok(()) => return proxy,
                Err(why) => {
                    last_failure = format!("{why}\n{}", proxy.log());
                    // Dropping ends the process group; the log stays for the next attempt.
                    drop(proxy);
                    if !last_failure.contains("address already in use") {
                        break;
                    }
                }
            }
        }
        panic!("the LiteLLM proxy did not start: {last_failure}");
    }

    async fn wait_ready(&mut self, http: &reqwest::Client) -> Result<(), String> {
        let url = format!("{}/health/liveliness", self.base_url);
        for _ in 0..READY_ROUNDS {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("the proxy exited: {status}"));
            }
            if let Ok(response) = http.get(&url).send().await
                && response.status().is_success()
            {
                return Ok(());
            }
            tokio::time::sleep(POLL_PAUSE).await;
        }
        Err(format!("no answer from {url} after {READY_ROUNDS} polls"))
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// What the proxy printed so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }
}

impl Drop for LitellmProxy {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            // The group's id is the child's pid (process_group(0)); only what it started.
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", self.child.id())])
                .status();
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "--- LiteLLM proxy log ({}) ---\n{}",
                self.log_path.display(),
                self.log()
            );
        }
    }
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binding a loopback port");
    listener.local_addr().expect("the bound address").port()
}
