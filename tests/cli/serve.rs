//! `vigil serve` against a simulated LiteLLM gateway on loopback: health, readiness and
//! metrics over HTTP, then a graceful stop on SIGTERM or SIGINT that closes the session.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use sha2::Digest as _;
use tokio_util::sync::CancellationToken;
use vigil_sim::{GatewayConfig, SimGateway};

use crate::ledger::session_payloads;
use crate::support::{
    ChildGuard, TempDir, http_get, http_post_json, repo_root, vigil, vigil_command,
};

/// The source's name in the config and in vigil's metrics.
const SOURCE: &str = "sim-gateway";

/// Hang guards: far above what starting, a first scrape and stopping need.
const START_LIMIT: Duration = Duration::from_secs(60);
const STOP_LIMIT: Duration = Duration::from_secs(60);
const POLL_ROUNDS: u32 = 300;
const POLL_PAUSE: Duration = Duration::from_millis(100);

/// A simulated gateway running on its own runtime until dropped.
struct Gateway {
    runtime: tokio::runtime::Runtime,
    gateway: SimGateway,
    stop: CancellationToken,
}

impl Gateway {
    /// Starts a gateway on 127.0.0.1:0 that requires `master_key` on `/metrics/`.
    fn start(master_key: &str) -> Gateway {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime");
        let stop = CancellationToken::new();
        let gateway = runtime.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("binding a loopback port");
            SimGateway::start(
                listener,
                GatewayConfig {
                    master_key: master_key.to_owned(),
                    keys: Vec::new(),
                    models: Vec::new(),
                    ignore_blocks: false,
                    require_auth_for_metrics: true,
                },
                stop.child_token(),
            )
            .await
            .expect("starting the simulated gateway")
        });
        Gateway {
            runtime,
            gateway,
            stop,
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.stop.cancel();
        let gateway = self.gateway.clone();
        // Bounded: a gateway that does not stop is left to the runtime's shutdown.
        let _ = self.runtime.block_on(async {
            tokio::time::timeout(Duration::from_secs(10), gateway.stopped()).await
        });
    }
}

/// A master key nobody can guess, as LiteLLM requires.
pub(crate) fn random_master_key() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos());
    let digest = sha2::Sha256::digest(format!("{nanos}/{}", std::process::id()).as_bytes());
    format!("sk-test-{}", &hex::encode(digest)[..32])
}

/// Writes a config for `gateway` into `dir`; returns the config and ledger paths.
fn write_config(dir: &TempDir, gateway: &Gateway, master_key: &str) -> (PathBuf, PathBuf) {
    let key_file = dir.join("master-key");
    crate::support::write_secret(&key_file, &format!("{master_key}\n"));
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
    url: "{gateway}/metrics/"
    scrape_interval_secs: 1
    scrape_timeout_secs: 1
    bearer_token: {{ file: "{key_file}" }}
    admin:
      master_key: {{ file: "{key_file}" }}
      timeout_secs: 2
detectors:
  - name: token-spike
    kind: spike
    source: {SOURCE}
pager:
  kind: log
"#,
        ledger = ledger.display(),
        policies = root.join("policies").display(),
        runbooks = root.join("examples/demo/runbooks").display(),
        gateway = gateway.gateway.base_url(),
        key_file = key_file.display(),
    );
    let path = dir.join("vigil.yaml");
    std::fs::write(&path, config).expect("writing the config");
    (path, ledger)
}

/// A running `vigil serve`, its stderr lines arriving on a channel.
pub(crate) struct Served {
    pub(crate) child: ChildGuard,
    pub(crate) address: SocketAddr,
    /// The line that says what is served where (`vigil serving ... on http://ADDRESS`).
    pub(crate) startup_line: String,
    stderr_lines: mpsc::Receiver<String>,
    stderr: Vec<String>,
}

impl Served {
    /// Starts `vigil serve --config CONFIG --listen 127.0.0.1:0` and waits for its address.
    pub(crate) fn start(config: &Path, cwd: &Path) -> Served {
        let command = vigil_command(
            [
                "serve".as_ref(),
                "--config".as_ref(),
                config.as_os_str(),
                "--listen".as_ref(),
                "127.0.0.1:0".as_ref(),
            ],
            cwd,
        );
        Served::spawn(command)
    }

    /// Starts a prepared `vigil serve` command and waits for its address.
    pub(crate) fn spawn(mut command: std::process::Command) -> Served {
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
            startup_line: String::new(),
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
            // `on http://ADDRESS` or `on https://ADDRESS`, last on the line.
            if line.contains("vigil serving")
                && let Some((_, address)) = line.rsplit_once("://")
            {
                served.startup_line = line.clone();
                break address
                    .trim()
                    .parse()
                    .unwrap_or_else(|error| panic!("bad address in `{line}`: {error}"));
            }
        };
        served
    }

    /// The next stderr line before `deadline`; `None` at the end of the stream or the deadline.
    pub(crate) fn next_line(&mut self, deadline: Instant) -> Option<String> {
        let remaining = deadline.checked_duration_since(Instant::now())?;
        let line = self.stderr_lines.recv_timeout(remaining).ok()?;
        self.stderr.push(line.clone());
        Some(line)
    }

    /// Everything it printed on stderr so far.
    pub(crate) fn stderr_text(&self) -> String {
        self.stderr.join("\n")
    }

    /// Polls `path` until `done` accepts the response; panics after the bounded rounds.
    pub(crate) fn poll(
        &self,
        path: &str,
        what: &str,
        done: impl Fn(&crate::support::Response) -> bool,
    ) -> String {
        let mut last = String::from("no answer");
        for _ in 0..POLL_ROUNDS {
            match http_get(self.address, path) {
                Ok(response) if done(&response) => return response.body,
                Ok(response) => last = format!("{} {}", response.status, response.body),
                Err(error) => last = error.to_string(),
            }
            std::thread::sleep(POLL_PAUSE);
        }
        panic!("{what}: gave up polling {path}; last answer: {last}");
    }

    /// Sends `signal` (`TERM` or `INT`), waits for the exit, and returns the code and stderr.
    pub(crate) fn stop_with(mut self, signal: &str) -> (Option<i32>, String) {
        let sent = std::process::Command::new("kill")
            .args([format!("-{signal}"), self.child.id().to_string()])
            .status()
            .expect("running kill");
        assert!(sent.success(), "kill -{signal} failed");
        let status = self
            .child
            .wait_at_most(STOP_LIMIT, "vigil serve after a signal");
        // The stream ends with the process; the deadline only guards against a stuck pipe.
        let deadline = Instant::now() + STOP_LIMIT;
        while self.next_line(deadline).is_some() {}
        (status.code(), self.stderr.join("\n"))
    }
}

/// The value of the sample `name{labels}` in an exposition, parsed with vigil's own parser.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let exposition = vigil_core::exposition::parse_text(text);
    exposition
        .samples
        .iter()
        .find(|sample| {
            sample.name == name
                && labels.iter().all(|(key, value)| {
                    sample
                        .labels
                        .iter()
                        .any(|(label, label_value)| label == key && label_value == value)
                })
        })
        .map(|sample| sample.value)
}

pub(crate) fn scrapes_ok(metrics: &str) -> f64 {
    sample(
        metrics,
        "vigil_scrapes_total",
        &[("source", SOURCE), ("result", "ok")],
    )
    .unwrap_or(0.0)
}

/// `GET /v1/openapi.json` of a running daemon describes exactly the routes its startup line
/// lists, as OpenAPI 3.1.
fn assert_described_as_served(served: &Served) {
    let listed: std::collections::BTreeSet<String> = served
        .startup_line
        .strip_prefix("vigil serving ")
        .and_then(|rest| rest.split(" on http").next())
        .unwrap_or_else(|| panic!("not a startup line: {}", served.startup_line))
        .split(", ")
        .map(str::to_owned)
        .collect();
    let response = http_get(served.address, "/v1/openapi.json").expect("GET /v1/openapi.json");
    assert_eq!(response.status, 200, "{}", response.body);
    let document: serde_json::Value =
        serde_json::from_str(&response.body).expect("the description is JSON");
    assert_eq!(document["openapi"], "3.1.0");
    let mut described = std::collections::BTreeSet::new();
    for (path, methods) in document["paths"].as_object().expect("paths") {
        for method in methods.as_object().expect("methods").keys() {
            described.insert(format!("{} {path}", method.to_ascii_uppercase()));
        }
    }
    assert_eq!(described, listed, "{}", response.body);
}

/// Runs `vigil serve` until it has scraped the gateway, checks its endpoints, stops it with
/// `signal`, and returns its stderr.
fn serve_once(dir: &TempDir, config: &Path, signal: &str) -> String {
    let served = Served::start(config, dir.path());

    // Neither the intake nor the admin API is on: the startup line lists only what is.
    assert_eq!(
        served.startup_line,
        format!(
            "vigil serving GET /healthz, GET /readyz, GET /metrics, GET /v1/openapi.json on http://{}",
            served.address
        )
    );
    assert_described_as_served(&served);
    let health = http_get(served.address, "/healthz").expect("GET /healthz");
    assert_eq!((health.status, health.body.trim()), (200, "ok"));

    served.poll("/readyz", "readiness", |response| response.status == 200);

    // Readiness only says a scrape was attempted; wait for one that succeeded, which needs
    // the master key read from the file and sent as a bearer token.
    let metrics = served.poll("/metrics", "a successful scrape", |response| {
        response.status == 200 && scrapes_ok(&response.body) > 0.0
    });
    let exposition = vigil_core::exposition::parse_text(&metrics);
    assert!(
        exposition.errors.is_empty(),
        "vigil's /metrics does not parse: {:?}\n{metrics}",
        exposition.errors
    );
    assert_eq!(
        sample(&metrics, "vigil_build_info", &[]),
        Some(1.0),
        "{metrics}"
    );
    assert!(
        metrics.contains(&format!(
            "vigil_scrapes_total{{source=\"{SOURCE}\",result=\"ok\"}}"
        )),
        "{metrics}"
    );

    let (code, stderr) = served.stop_with(signal);
    assert_eq!(
        code,
        Some(0),
        "vigil serve did not exit 0 on SIG{signal}:\n{stderr}"
    );
    assert!(
        stderr.contains(&format!("SIG{signal}: stopping")),
        "{stderr}"
    );
    assert!(
        stderr.lines().any(|line| line.trim() == "vigil stopped"),
        "{stderr}"
    );
    stderr
}

/// Asserts that the ledger verifies and holds the given session entries, in order.
fn assert_sessions(
    dir: &TempDir,
    ledger: &Path,
    runtime: &tokio::runtime::Runtime,
    expected: &[&str],
) {
    let shown = ledger.to_str().expect("a UTF-8 path");
    let verify = vigil(["ledger", "verify", "--db", shown], dir.path());
    verify.assert_success("ledger verify of the served ledger");

    let show = vigil(["ledger", "show", "--db", shown], dir.path());
    show.assert_success("ledger show");
    let session_lines: Vec<&str> = show
        .stdout
        .lines()
        .filter(|line| line.split_whitespace().nth(3) == Some("session"))
        .collect();
    assert_eq!(session_lines.len(), expected.len(), "{show}");
    let ended = session_lines
        .iter()
        .filter(|line| line.contains("session session_ended"))
        .count();
    let n_ended = expected
        .iter()
        .filter(|kind| **kind == "session_ended")
        .count();
    assert_eq!(ended, n_ended, "ledger show: {show}");

    // The types and reasons are also read from the ledger itself, independently of `show`.
    let payloads = runtime.block_on(session_payloads(ledger));
    let types: Vec<&str> = payloads
        .iter()
        .map(|payload| payload["type"].as_str().expect("a session type"))
        .collect();
    assert_eq!(types, expected);
    for payload in payloads
        .iter()
        .filter(|payload| payload["type"] == "session_ended")
    {
        assert_eq!(payload["reason"], "shutdown", "{payload}");
    }
}

#[test]
fn serve_answers_health_and_metrics_and_stops_on_sigterm() {
    let master_key = random_master_key();
    let gateway = Gateway::start(&master_key);
    let dir = TempDir::new("serve-sigterm");
    let (config, ledger) = write_config(&dir, &gateway, &master_key);

    serve_once(&dir, &config, "TERM");

    assert_sessions(
        &dir,
        &ledger,
        &gateway.runtime,
        &["session_started", "session_ended"],
    );
}

#[test]
fn serve_stops_on_sigint_and_a_restart_extends_the_same_ledger() {
    let master_key = random_master_key();
    let gateway = Gateway::start(&master_key);
    let dir = TempDir::new("serve-sigint");
    let (config, ledger) = write_config(&dir, &gateway, &master_key);

    serve_once(&dir, &config, "INT");
    serve_once(&dir, &config, "INT");

    assert_sessions(
        &dir,
        &ledger,
        &gateway.runtime,
        &[
            "session_started",
            "session_ended",
            "session_started",
            "session_ended",
        ],
    );
}

/// An eval batch: `n_failed` of 4 cases fail.
fn eval_batch(n_failed: usize) -> String {
    let results: Vec<serde_json::Value> = (0..4)
        .map(|idx| {
            serde_json::json!({
                "suite": "rag-answers", "case": format!("case-{idx}"), "passed": idx >= n_failed,
                "score": if idx >= n_failed { 1.0 } else { 0.0 },
                "model": "gpt-4o", "prompt_name": "answer", "prompt_version": "12"
            })
        })
        .collect();
    serde_json::json!({ "results": results }).to_string()
}

#[test]
fn serve_takes_pushed_events_over_http_and_records_them() {
    let master_key = random_master_key();
    let gateway = Gateway::start(&master_key);
    let dir = TempDir::new("serve-intake");
    let (config, ledger) = write_config(&dir, &gateway, &master_key);
    let token_file = dir.join("intake-token");
    let token = crate::support::strong_token("push-secret");
    crate::support::write_secret(&token_file, &format!("{token}\n"));
    let mut text = std::fs::read_to_string(&config).expect("reading the config");
    text = text.replace(
        "pager:\n",
        &format!(
            "  - name: eval-failures\n    kind: spike\n    source: push:evals\n    metric: vigil_eval_cases_total\n    group_by: outcome\n    alias_label: null\n    team_label: null\n    min_rate_per_sec: 0.1\nintake:\n  bearer_token: {{ file: \"{}\" }}\npager:\n",
            token_file.display()
        ),
    );
    std::fs::write(&config, text).expect("writing the config");
    let served = Served::start(&config, dir.path());
    assert!(
        served.startup_line.ends_with(&format!(
            "GET /metrics, GET /v1/openapi.json, POST /v1/push/evals, POST /v1/push/agent-runs, POST /v1/push/alertmanager, POST /v1/traces on http://{}",
            served.address
        )),
        "{}",
        served.startup_line
    );
    assert_described_as_served(&served);
    served.poll("/readyz", "readiness", |response| response.status == 200);

    let evals = eval_batch(1);
    let refused = http_post_json(served.address, "/v1/push/evals", None, &evals).expect("POST");
    assert_eq!(refused.status, 401, "{}", refused.body);
    let wrong =
        http_post_json(served.address, "/v1/push/evals", Some("nope"), &evals).expect("POST");
    assert_eq!(wrong.status, 401, "{}", wrong.body);
    let bad = http_post_json(
        served.address,
        "/v1/push/evals",
        Some(token.as_str()),
        r#"{"results":[{"suite":"s","case":"c","passed":"yes","model":"m","prompt_name":"p","prompt_version":"1"}]}"#,
    )
    .expect("POST");
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert!(
        bad.body.contains("results[0].passed"),
        "the error names the field: {}",
        bad.body
    );
    for _ in 0..3 {
        let accepted = http_post_json(
            served.address,
            "/v1/push/evals",
            Some(token.as_str()),
            &evals,
        )
        .expect("POST");
        assert_eq!(accepted.status, 202, "{}", accepted.body);
        // Four results feed four series (passed and failed cases, score sum and count).
        let body: serde_json::Value = serde_json::from_str(&accepted.body).expect("a JSON answer");
        assert_eq!(
            body,
            serde_json::json!({"accepted": 4, "series": {"accepted": 4, "refused": 0},
                               "refused": [], "refused_not_listed": 0})
        );
    }
    let spans = r#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"chat-api"}}]},"scopeSpans":[{"spans":[{"traceId":"5B8EFFF798038103D269B633813FC60C","spanId":"EEE19B7EC3C1B174","name":"chat gpt-4o","kind":3,"startTimeUnixNano":"1700000000000000000","endTimeUnixNano":"1700000001500000000","attributes":[{"key":"gen_ai.operation.name","value":{"stringValue":"chat"}},{"key":"gen_ai.provider.name","value":{"stringValue":"openai"}},{"key":"gen_ai.request.model","value":{"stringValue":"gpt-4o"}},{"key":"gen_ai.usage.input_tokens","value":{"intValue":"812"}},{"key":"gen_ai.usage.output_tokens","value":{"intValue":"64"}},{"key":"gen_ai.response.finish_reasons","value":{"arrayValue":{"values":[{"stringValue":"length"}]}}}],"status":{}}]}]}]}"#;
    let traced =
        http_post_json(served.address, "/v1/traces", Some(token.as_str()), spans).expect("POST");
    assert_eq!(traced.status, 200, "{}", traced.body);

    // Four payloads were accepted; the engine consumes each as one `pushed` event.
    let metrics = served.poll("/metrics", "the pushed events consumed", |response| {
        sample(&response.body, "vigil_events_total", &[("type", "pushed")]) == Some(4.0)
    });
    assert!(
        sample(&metrics, "vigil_tracked_series", &[]).is_some_and(|n| n >= 4.0),
        "the pushed signals are series now: {metrics}"
    );
    let (code, stderr) = served.stop_with("TERM");
    assert_eq!(code, Some(0), "{stderr}");

    let show = vigil(
        [
            "ledger",
            "show",
            "--db",
            ledger.to_str().expect("utf-8"),
            "--all",
        ],
        dir.path(),
    );
    show.assert_success("ledger show");
    assert_eq!(
        crate::support::lines_with(&show.stdout, "event pushed").len(),
        4,
        "{show}"
    );
}

/// A TCP server on 127.0.0.1:0 that accepts connections and never answers; it stops when
/// the returned flag is set (or the test process ends).
fn silent_server() -> (SocketAddr, std::sync::Arc<std::sync::atomic::AtomicBool>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binding a loopback port");
    let address = listener.local_addr().expect("its address");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stopping = std::sync::Arc::clone(&stop);
    listener.set_nonblocking(true).expect("non-blocking");
    std::thread::spawn(move || {
        let mut held = Vec::new();
        while !stopping.load(std::sync::atomic::Ordering::Relaxed) {
            if let Ok((stream, _)) = listener.accept() {
                held.push(stream);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    (address, stop)
}

#[test]
fn a_target_that_never_answers_does_not_stall_the_others() {
    let master_key = random_master_key();
    let gateway = Gateway::start(&master_key);
    let dir = TempDir::new("serve-stuck-target");
    let (config, _ledger) = write_config(&dir, &gateway, &master_key);
    let (silent, stop) = silent_server();
    let mut text = std::fs::read_to_string(&config).expect("reading the config");
    text = text.replace(
        "detectors:\n",
        &format!(
            "  - name: stuck\n    kind: generic\n    url: \"http://{silent}/metrics\"\n    scrape_interval_secs: 1\n    scrape_timeout_secs: 1\ndetectors:\n"
        ),
    );
    std::fs::write(&config, text).expect("writing the config");
    let served = Served::start(&config, dir.path());
    let metrics = served.poll(
        "/metrics",
        "the healthy source keeps its pace",
        |response| {
            response.status == 200
                && scrapes_ok(&response.body) >= 4.0
                && sample(
                    &response.body,
                    "vigil_scrapes_total",
                    &[("source", "stuck"), ("result", "error")],
                )
                .is_some_and(|n| n >= 1.0)
        },
    );
    assert_eq!(
        sample(&metrics, "vigil_source_up", &[("source", "stuck")]),
        Some(0.0),
        "{metrics}"
    );
    assert_eq!(
        sample(&metrics, "vigil_source_up", &[("source", SOURCE)]),
        Some(1.0),
        "{metrics}"
    );
    let (code, stderr) = served.stop_with("TERM");
    assert_eq!(code, Some(0), "{stderr}");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// `line` without the terminal styles (`ESC [ ... m`) the log writes around field names.
fn without_styles(line: &str) -> String {
    let mut plain = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(ch) = chars.next() {
        if ch == '\u{1b}' {
            // Skips to the end of the sequence.
            for skipped in chars.by_ref() {
                if skipped.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            plain.push(ch);
        }
    }
    plain
}

/// Eval results of `n` distinct prompts, `p-{first}` onwards (the first named `first_name`
/// when given): one series each.
fn distinct_prompts(first: usize, n: usize, first_name: Option<&str>) -> String {
    let results: Vec<serde_json::Value> = (first..first + n)
        .map(|idx| {
            let prompt = match first_name {
                Some(name) if idx == first => name.to_owned(),
                _ => format!("p-{idx}"),
            };
            serde_json::json!({
                "suite": "nightly", "case": "c", "passed": true, "model": "gpt-4o",
                "prompt_name": prompt, "prompt_version": "v1"
            })
        })
        .collect();
    serde_json::json!({ "results": results }).to_string()
}

// Regression: 20 pushes of 10,000 distinct prompts were all answered `{"accepted": N}` while
// everything past the first 10,000 series was dropped, uncounted, unlogged and unrecorded.
#[test]
fn pushed_series_past_the_limit_are_refused_out_loud() {
    const N_PUSHES: usize = 20;
    const PER_PUSH: usize = 10_000;
    let master_key = random_master_key();
    let gateway = Gateway::start(&master_key);
    let dir = TempDir::new("serve-push-limit");
    let (config, ledger) = write_config(&dir, &gateway, &master_key);
    let text = std::fs::read_to_string(&config).expect("reading the config");
    let text = text.replace(
        "pager:\n",
        "store:\n  max_pushed_series: 10000\nintake:\n  max_body_bytes: 4194304\npager:\n",
    );
    std::fs::write(&config, text).expect("writing the config");
    let served = Served::start(&config, dir.path());
    served.poll("/readyz", "readiness", |response| response.status == 200);

    // The first refused prompt tries to forge a log line of its own.
    let forger = "p-10000\nforged line \u{1b}[31m";
    for round in 0..N_PUSHES {
        let first_name = (round == 1).then_some(forger);
        let body = distinct_prompts(round * PER_PUSH, PER_PUSH, first_name);
        let answer = http_post_json(served.address, "/v1/push/evals", None, &body).expect("POST");
        assert_eq!(answer.status, 202, "push {round}: {}", answer.body);
        let answer: serde_json::Value = serde_json::from_str(&answer.body).expect("a JSON answer");
        assert_eq!(answer["accepted"], PER_PUSH, "push {round}");
        if round == 0 {
            assert_eq!(
                answer["series"],
                serde_json::json!({"accepted": PER_PUSH, "refused": 0}),
                "{answer}"
            );
            continue;
        }
        assert_eq!(
            answer["series"],
            serde_json::json!({"accepted": 0, "refused": PER_PUSH}),
            "push {round}"
        );
        let listed = answer["refused"].as_array().expect("a list");
        assert_eq!(listed.len(), 10, "{answer}");
        assert_eq!(answer["refused_not_listed"], PER_PUSH - 10);
        let first_prompt =
            first_name.map_or_else(|| format!("p-{}", round * PER_PUSH), str::to_owned);
        assert_eq!(
            listed[0]["series"],
            format!(
                "vigil_eval_cases_total{{model=\"gpt-4o\",outcome=\"passed\",prompt=\"{}\",prompt_version=\"v1\",suite=\"nightly\"}}",
                first_prompt.replace('\n', "\\n")
            )
        );
        assert_eq!(
            listed[0]["reason"],
            "push:evals already tracks 10000 series (store.max_pushed_series); new series are \
             refused until old ones go stale (not pushed for the retention, 3600 s)"
        );
    }

    let metrics = served.poll("/metrics", "every push consumed", |response| {
        sample(&response.body, "vigil_events_total", &[("type", "pushed")]) == Some(N_PUSHES as f64)
    });
    let exposition = vigil_core::exposition::parse_text(&metrics);
    assert!(exposition.errors.is_empty(), "{:?}", exposition.errors);
    let refused = |source: &str| {
        sample(
            &metrics,
            "vigil_series_refused_total",
            &[("source", source)],
        )
    };
    assert_eq!(
        refused("push:evals"),
        Some(((N_PUSHES - 1) * PER_PUSH) as f64),
        "{metrics}"
    );
    assert_eq!(refused(SOURCE), Some(0.0), "{metrics}");
    assert_eq!(refused("push:spans"), Some(0.0), "{metrics}");

    let (code, stderr) = served.stop_with("TERM");
    assert_eq!(code, Some(0), "{stderr}");
    // One log line for the episode, with the example's newline and escape escaped.
    let logged = crate::support::lines_with(&stderr, "cardinality limit reached");
    assert_eq!(logged.len(), 1, "{stderr}");
    let line = without_styles(logged[0]);
    assert!(
        line.contains("source=push:evals")
            && line.contains("n_refused=10000")
            && line.contains(r#"prompt="p-10000\nforged line \u{1b}[31m""#),
        "{line}"
    );
    assert!(
        !stderr.lines().any(|line| line.starts_with("forged line")),
        "{stderr}"
    );

    // The ledger holds the episode once, with its example, and replays.
    let rows = gateway.runtime.block_on(crate::ledger::read_rows(&ledger));
    let records: Vec<serde_json::Value> = rows
        .iter()
        .filter(|row| row.kind == "command")
        .map(|row| row.payload_json()["command"].clone())
        .filter(|command| command["record"] == "series_refused")
        .collect();
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["source"], "push:evals");
    assert_eq!(records[0]["n_refused"], PER_PUSH);
    assert_eq!(records[0]["n_series"], 10_000);
    assert!(
        records[0]["example"]
            .as_str()
            .is_some_and(|example| example.contains("p-10000\\nforged")),
        "{}",
        records[0]
    );
    let shown = ledger.to_str().expect("a UTF-8 path");
    let replay = vigil(["replay", "--db", shown, "--all"], dir.path());
    assert!(
        replay.code() == 0 && replay.stdout.contains("result: every command matches"),
        "{replay}"
    );
}

// With nobody reading its stderr any more (a closed pipe: a terminal that went away, a log
// shipper that died), vigil panicked at its next log line (tracing-subscriber reported the
// failed write on stderr, which panics), and SIGTERM did not stop it (printing "SIGTERM:
// stopping" panicked the signal task before it could cancel).
#[test]
fn serve_stops_on_sigterm_even_when_nobody_reads_its_stderr() {
    use std::io::BufRead as _;
    let master_key = random_master_key();
    let gateway = Gateway::start(&master_key);
    let dir = TempDir::new("serve-closed-stderr");
    let (config, _ledger) = write_config(&dir, &gateway, &master_key);
    let mut command = vigil_command(
        [
            "serve".as_ref(),
            "--config".as_ref(),
            config.as_os_str(),
            "--listen".as_ref(),
            "127.0.0.1:0".as_ref(),
        ],
        dir.path(),
    );
    let mut child = ChildGuard::new(command.spawn().expect("spawning vigil serve"));
    let stderr = child.child_mut().stderr.take().expect("piped stderr");
    let mut lines = std::io::BufReader::new(stderr).lines();
    // Bounded by the process: the stream ends if it exits.
    let started = lines
        .by_ref()
        .map_while(Result::ok)
        .any(|line| line.contains("vigil serving"));
    assert!(started, "vigil serve did not start");
    drop(lines);
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("running kill");
    assert!(sent.success());
    let status = child.wait_at_most(STOP_LIMIT, "vigil serve after SIGTERM with stderr closed");
    assert_eq!(status.code(), Some(0));
}
