//! The real OpenTelemetry Python SDK (PyPI `opentelemetry-sdk==1.45.2` with
//! `opentelemetry-exporter-otlp-proto-http==1.45.2`, see `.ci/setup-otel`) exports GenAI spans
//! with its `OTLPSpanExporter`, OTLP/HTTP in protobuf (its default), to a running
//! `vigil serve` on loopback with the intake's bearer token (`tests/integration/otel_export.py`);
//! vigil's ledger must then hold exactly those spans, with their signals.
//!
//! `VIGIL_TEST_OTEL_PYTHON` names the virtualenv's Python. Without it the test says it is
//! skipping and passes, unless `CI` is set: then it fails.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests fail loudly at the first broken assumption, helper functions included"
)]
#![allow(
    clippy::disallowed_types,
    reason = "these tests drive vigil as a separate process, in real time: their deadlines are std wall-clock instants, which tokio's paused time could not move anyway"
)]

#[allow(dead_code, reason = "shared with the cli tests, which use the rest")]
#[path = "../support/mod.rs"]
mod support;

#[allow(
    dead_code,
    reason = "shared with the LiteLLM test, which also writes its config and reads scrapes"
)]
#[path = "litellm/serve.rs"]
mod serve;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::json;
use vigil_core::engine::Event;
use vigil_core::intake::{Pushed, SignalKind, SpanBatch};

use serve::Served;
use support::{TempDir, finish, repo_root, strong_token, write_secret};

/// Hang guard for the Python exporter (it starts, sends one request and exits).
const EXPORT_LIMIT: Duration = Duration::from_secs(120);

/// The virtualenv's Python, or `None` (skip) outside CI.
fn python() -> Option<PathBuf> {
    match std::env::var_os("VIGIL_TEST_OTEL_PYTHON") {
        Some(path) => {
            let path = PathBuf::from(path);
            assert!(
                path.is_file(),
                "VIGIL_TEST_OTEL_PYTHON is `{}`, which is not a file (run .ci/setup-otel)",
                path.display()
            );
            Some(path)
        }
        None => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI is set but VIGIL_TEST_OTEL_PYTHON is not: the OpenTelemetry SDK is not \
                 installed (run .ci/setup-otel and export the python path it prints)"
            );
            println!(
                "skipping: the OpenTelemetry Python SDK is not installed (run .ci/setup-otel)"
            );
            None
        }
    }
}

/// A config with the intake on, behind the token in `token_file`, and a source that is never
/// due (vigil needs one).
fn write_config(dir: &Path, token_file: &Path) -> (PathBuf, PathBuf) {
    let ledger = dir.join("ledger.db");
    std::fs::create_dir_all(dir.join("runbooks")).expect("creating runbooks/");
    let config = format!(
        r#"mode: autonomous
environment: test
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
  bearer_token: {{ file: "{token_file}" }}
pager:
  kind: log
"#,
        ledger = ledger.display(),
        policies = repo_root().join("policies").display(),
        runbooks = dir.join("runbooks").display(),
        token_file = token_file.display(),
    );
    let path = dir.join("vigil.yaml");
    std::fs::write(&path, config).expect("writing the vigil config");
    (path, ledger)
}

/// The Python exporter's command, its output piped.
fn exporter(python: &Path, script: &Path, endpoint: &str, token: &str) -> Command {
    let mut command = Command::new(python);
    command
        .arg(script)
        .arg(endpoint)
        .arg(token)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// Every pushed span batch in the ledger, oldest first.
async fn recorded_span_batches(ledger: &Path) -> Vec<SpanBatch> {
    serve::recorded_events(ledger)
        .await
        .into_iter()
        .filter_map(|event| match event {
            Event::Pushed {
                payload: Pushed::Spans(batch),
            } => Some(batch),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_python_sdk_exports_gen_ai_spans_to_vigil_in_protobuf() {
    let Some(python) = python() else {
        return;
    };
    let dir = TempDir::new("otel-sdk");
    let token = strong_token("otel-sdk-intake");
    let token_file = dir.join("intake-token");
    write_secret(&token_file, &token);
    let (config, ledger) = write_config(dir.path(), &token_file);
    let served = Served::start(&config, dir.path());
    let endpoint = format!("http://{}/v1/traces", served.address());
    let script = repo_root().join("tests/integration/otel_export.py");

    // A wrong token: the exporter is refused (401) and says so.
    let refused = finish(
        exporter(&python, &script, &endpoint, "not-the-token"),
        EXPORT_LIMIT,
    );
    assert_eq!(refused.code(), 1, "{refused}");
    assert!(refused.stderr.contains("the export failed"), "{refused}");

    let exported = finish(exporter(&python, &script, &endpoint, &token), EXPORT_LIMIT);
    exported.assert_success("the OTLP/HTTP protobuf export");
    assert!(
        exported.stdout.trim_end().ends_with("exported 3 spans"),
        "{exported}"
    );

    // A 200 is sent only once the push is in the ledger, so it is there now.
    let (code, stderr) = served.stop();
    assert_eq!(code, Some(0), "{stderr}");
    let batches = recorded_span_batches(&ledger).await;
    assert_eq!(
        batches.len(),
        1,
        "one export, one pushed event: {batches:?}"
    );
    let batch = &batches[0];
    assert_eq!(batch.spans_received, 3, "the HTTP span counted, not kept");
    let kept: Vec<serde_json::Value> = batch
        .spans
        .iter()
        .map(|span| {
            assert_eq!(span.trace_id.len(), 32);
            assert_eq!(span.span_id.len(), 16);
            assert!(span.end_time_unix_nano >= span.start_time_unix_nano);
            json!({
                "service": span.service_name, "name": span.name, "kind": span.kind,
                "provider": span.provider, "operation": span.operation,
                "request_model": span.request_model, "response_model": span.response_model,
                "input_tokens": span.input_tokens, "output_tokens": span.output_tokens,
                "finish_reasons": span.finish_reasons, "error_type": span.error_type,
                "status": span.status,
            })
        })
        .collect();
    assert_eq!(
        kept,
        vec![
            json!({"service": "otel-sdk-test", "name": "chat gpt-4o", "kind": "client",
                   "provider": "openai", "operation": "chat", "request_model": "gpt-4o",
                   "response_model": "gpt-4o-2024-08-06", "input_tokens": 812,
                   "output_tokens": 64, "finish_reasons": ["stop"], "error_type": null,
                   "status": {"code": "unset"}}),
            json!({"service": "otel-sdk-test", "name": "chat gpt-4o-mini", "kind": "client",
                   "provider": "openai", "operation": null, "request_model": "gpt-4o-mini",
                   "response_model": null, "input_tokens": null, "output_tokens": null,
                   "finish_reasons": [], "error_type": "429",
                   "status": {"code": "error", "message": "rate limited"}}),
        ]
    );

    // The signals the engine derived from it: requests per model and error class, tokens.
    let signals: Vec<String> = Pushed::Spans(batch.clone())
        .signals()
        .iter()
        .filter(|signal| signal.name != "vigil_genai_request_duration_seconds_bucket")
        .map(|signal| match signal.kind {
            SignalKind::CounterIncrement(by) => format!("{}{} +{by}", signal.name, signal.labels),
            SignalKind::Gauge(value) => format!("{}{} = {value}", signal.name, signal.labels),
        })
        .collect();
    for expected in [
        r#"vigil_genai_requests_total{error_type="",model="gpt-4o",operation="chat",provider="openai",response_model="gpt-4o-2024-08-06"} +1"#,
        r#"vigil_genai_requests_total{error_type="429",model="gpt-4o-mini",operation="",provider="openai",response_model=""} +1"#,
        r#"vigil_genai_tokens_total{direction="input",model="gpt-4o",provider="openai"} +812"#,
        r#"vigil_genai_tokens_total{direction="output",model="gpt-4o",provider="openai"} +64"#,
        r#"vigil_genai_finish_reasons_total{model="gpt-4o",provider="openai",reason="stop"} +1"#,
    ] {
        assert!(
            signals.iter().any(|signal| signal == expected),
            "{expected} missing from:\n{}",
            signals.join("\n")
        );
    }
}
