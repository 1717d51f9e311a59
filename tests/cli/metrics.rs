//! `vigil metrics parse`: one JSON object per sample on stdout, a summary on stderr, and the
//! exit status (0 clean, 1 some lines malformed, 2 unreadable) for files, standard input and
//! URLs served on loopback; and agreement with `prometheus-parse` where that parser is right.

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::net::TcpListener;
use std::path::Path;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{Finished, POLL, TempDir, repo_root, vigil, vigil_command};

/// The JSON lines of a run, each parsed.
fn json_lines(run: &Finished) -> Vec<Value> {
    run.stdout
        .lines()
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|error| panic!("{error}: {line}\n{run}"))
        })
        .collect()
}

fn write(dir: &TempDir, name: &str, bytes: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path.display().to_string()
}

fn parse_file(dir: &Path, file: &str, extra: &[&str]) -> Finished {
    let mut args = vec!["metrics", "parse", file];
    args.extend_from_slice(extra);
    vigil(args, dir)
}

#[test]
fn a_clean_exposition_exits_0_with_every_sample_exact() {
    let dir = TempDir::new("metrics-clean");
    let file = write(
        &dir,
        "clean.prom",
        concat!(
            "# HELP vllm:num_requests_running Requests running.\n",
            "# TYPE vllm:num_requests_running gauge\n",
            "vllm:num_requests_running{model_name=\"llama\",path=\"/a,b=c}\\\"\"} 3 9007199254740993\r\n",
            "# HELP empty A sample with an empty label set.\n",
            "# TYPE empty gauge\n",
            "empty{} NaN\n",
            "# HELP temp Special values.\n",
            "# TYPE temp gauge\n",
            "temp{side=\"hi\"} +Inf\n",
            "temp{side=\"lo\"} -Inf -1\n",
        )
        .as_bytes(),
    );
    let run = parse_file(dir.path(), &file, &[]);
    assert_eq!(run.code(), 0, "{run}");
    let samples = json_lines(&run);
    assert_eq!(
        samples,
        [
            serde_json::json!({
                "name": "vllm:num_requests_running",
                "labels": {"model_name": "llama", "path": "/a,b=c}\""},
                "value": 3.0,
                // 2^53 + 1: a float would have rounded it.
                "timestamp_ms": 9_007_199_254_740_993_i64,
                "type": "gauge",
            }),
            serde_json::json!({"name": "empty", "labels": {}, "value": "NaN", "timestamp_ms": null, "type": "gauge"}),
            serde_json::json!({"name": "temp", "labels": {"side": "hi"}, "value": "+Inf", "timestamp_ms": null, "type": "gauge"}),
            serde_json::json!({"name": "temp", "labels": {"side": "lo"}, "value": "-Inf", "timestamp_ms": -1, "type": "gauge"}),
        ],
        "{run}"
    );
    assert!(
        run.stdout
            .lines()
            .next()
            .unwrap()
            .contains("\"timestamp_ms\":9007199254740993"),
        "the timestamp is printed as exact digits: {run}"
    );
    assert!(
        run.stderr
            .contains("3 families, 4 samples, 0 malformed lines"),
        "{run}"
    );
}

#[test]
fn malformed_lines_exit_1_report_their_numbers_and_keep_every_good_sample() {
    let dir = TempDir::new("metrics-malformed");
    let mut bytes = Vec::new();
    bytes.extend_from_slice(b"# TYPE a counter\n");
    bytes.extend_from_slice(b"a_total{k=\"1\"} 1\n");
    bytes.extend_from_slice(b"a_total{k=\"2\" 2\n"); // line 3: unterminated label set
    bytes.extend_from_slice(b"a_total{k=\"3\"} 3\n");
    bytes.extend_from_slice(b"a_total{k=\"\xff\"} 4\n"); // line 5: not UTF-8
    bytes.extend_from_slice(b"a_total{k=\"6\"} six\n"); // line 6: not a number
    bytes.extend_from_slice(b"a_total{k=\"7\"} 7\n");
    let file = write(&dir, "bad.prom", &bytes);
    let run = parse_file(dir.path(), &file, &[]);
    assert_eq!(run.code(), 1, "{run}");
    let kept: Vec<String> = json_lines(&run)
        .iter()
        .map(|sample| sample["labels"]["k"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(kept, ["1", "3", "7"], "{run}");
    assert!(run.stderr.contains("3 malformed lines"), "{run}");
    for line in [3, 5, 6] {
        assert!(
            run.stderr.contains(&format!("line {line}: ")),
            "line {line} is not reported: {run}"
        );
    }
    assert!(run.stderr.contains("not UTF-8"), "{run}");
}

#[test]
fn forcing_the_text_format_on_openmetrics_reports_what_differs() {
    let dir = TempDir::new("metrics-forced");
    let file = write(
        &dir,
        "om.txt",
        b"# TYPE req counter\nreq_total 7 1700000000.123\nreq_created 1700000000\n# EOF\n",
    );
    let detected = parse_file(dir.path(), &file, &[]);
    assert_eq!(detected.code(), 0, "{detected}");
    assert!(
        detected
            .stderr
            .contains("detected: the input ends with `# EOF`"),
        "{detected}"
    );
    let samples = json_lines(&detected);
    assert_eq!(
        samples[0]["timestamp_ms"], 1_700_000_000_123_i64,
        "{detected}"
    );
    assert_eq!(samples[0]["type"], "counter", "{detected}");
    assert_eq!(samples[1]["name"], "req_created", "{detected}");

    // The text format's timestamps are integer milliseconds: `1700000000.123` is malformed.
    let forced = parse_file(dir.path(), &file, &["--format", "text"]);
    assert_eq!(forced.code(), 1, "{forced}");
    assert!(forced.stderr.contains("forced with --format"), "{forced}");
    assert!(forced.stderr.contains("line 2: "), "{forced}");
}

#[test]
fn standard_input_is_read_with_a_dash() {
    let dir = TempDir::new("metrics-stdin");
    let mut command = vigil_command(["metrics", "parse", "-"], dir.path());
    command.stdin(std::process::Stdio::piped());
    let mut child = command.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"up{job=\"x\"} 1\n")
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(
        stdout,
        "{\"name\":\"up\",\"labels\":{\"job\":\"x\"},\"value\":1.0,\"timestamp_ms\":null,\"type\":\"unknown\"}\n"
    );
}

#[test]
fn input_that_cannot_be_read_exits_2() {
    let dir = TempDir::new("metrics-unreadable");
    let missing = parse_file(dir.path(), "no-such-file.prom", &[]);
    assert_eq!(missing.code(), 2, "{missing}");
    assert!(missing.stderr.contains("no-such-file.prom"), "{missing}");
    assert!(missing.stdout.is_empty(), "{missing}");

    // A port nothing listens on.
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let refused = parse_file(
        dir.path(),
        &format!("http://127.0.0.1:{port}/metrics"),
        &["--timeout-secs", "5"],
    );
    assert_eq!(refused.code(), 2, "{refused}");

    // A server that answers 500.
    let server = OneShot::serve("500 Internal Server Error", "text/plain", b"boom".to_vec());
    let failed = parse_file(dir.path(), &server.url(), &[]);
    assert_eq!(failed.code(), 2, "{failed}");
    assert!(failed.stderr.contains("500"), "{failed}");
    server.request();
}

#[test]
fn a_url_is_scraped_with_the_bearer_token_and_its_content_type_decides_the_format() {
    let dir = TempDir::new("metrics-url");
    // Without `# EOF` detection would say "text"; the header says OpenMetrics, whose float
    // seconds timestamp must then be read as exact milliseconds.
    let server = OneShot::serve(
        "200 OK",
        "application/openmetrics-text; version=1.0.0; charset=utf-8",
        b"# TYPE req counter\nreq_total 7 1700000000.125\n".to_vec(),
    );
    let token = "s3cret-token-never-printed";
    let mut command = vigil_command(
        [
            "metrics",
            "parse",
            &server.url(),
            "--bearer-token-env",
            "VIGIL_TEST_METRICS_TOKEN",
        ],
        dir.path(),
    );
    command.env("VIGIL_TEST_METRICS_TOKEN", token);
    let output = command.output().unwrap();
    let run = Finished {
        status: output.status,
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    };
    let request = server.request();
    assert!(
        request.contains(&format!("authorization: Bearer {token}\r\n"))
            || request.contains(&format!("Authorization: Bearer {token}\r\n")),
        "{request}"
    );
    // The exposition lacks `# EOF`, so OpenMetrics reports it missing: exit 1, sample kept.
    assert_eq!(run.code(), 1, "{run}");
    assert!(run.stderr.contains("from the Content-Type header"), "{run}");
    assert!(run.stderr.contains("missing `# EOF`"), "{run}");
    let samples = json_lines(&run);
    assert_eq!(samples.len(), 1, "{run}");
    assert_eq!(samples[0]["timestamp_ms"], 1_700_000_000_125_i64, "{run}");
    assert_eq!(samples[0]["type"], "counter", "{run}");
    assert!(
        !run.stdout.contains(token) && !run.stderr.contains(token),
        "{run}"
    );

    // A missing token variable is a read error, and names the variable, not a value.
    let missing = parse_file(
        dir.path(),
        "http://127.0.0.1:9/metrics",
        &["--bearer-token-env", "VIGIL_TEST_METRICS_TOKEN_UNSET"],
    );
    assert_eq!(missing.code(), 2, "{missing}");
    assert!(
        missing.stderr.contains("VIGIL_TEST_METRICS_TOKEN_UNSET"),
        "{missing}"
    );
}

/// `prometheus-parse` on what it reads right (counters, gauges and untyped samples of the
/// text format): every one of its samples is one of ours, with the same labels and value.
fn assert_agrees_with_prometheus_parse(dir: &TempDir, name: &str, text: &str) {
    let file = write(dir, name, text.as_bytes());
    let run = parse_file(dir.path(), &file, &[]);
    assert_eq!(run.code(), 0, "{run}");
    let ours: Vec<(String, BTreeMap<String, String>, String)> = json_lines(&run)
        .iter()
        .map(|sample| {
            let labels = sample["labels"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                .collect();
            (
                sample["name"].as_str().unwrap().to_owned(),
                labels,
                sample["value"].to_string(),
            )
        })
        .collect();
    let oracle =
        prometheus_parse::Scrape::parse(text.lines().map(|line| Ok(line.to_owned()))).unwrap();
    let mut compared = 0;
    for sample in &oracle.samples {
        let value = match sample.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => continue,
        };
        let labels: BTreeMap<String, String> = sample
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        // Our JSON spells the values JSON has no number for.
        let shown = if value.is_nan() {
            "\"NaN\"".to_owned()
        } else if value == f64::INFINITY {
            "\"+Inf\"".to_owned()
        } else if value == f64::NEG_INFINITY {
            "\"-Inf\"".to_owned()
        } else {
            serde_json::to_value(value).unwrap().to_string()
        };
        assert!(
            ours.iter()
                .any(|(n, l, v)| *n == sample.metric && *l == labels && *v == shown),
            "{name}: prometheus-parse read {} {labels:?} {shown}, we did not",
            sample.metric
        );
        compared += 1;
    }
    assert!(compared > 0, "{name}: nothing was compared");
}

#[test]
fn agrees_with_prometheus_parse_on_a_gateway_exposition() {
    let dir = TempDir::new("metrics-oracle");
    assert_agrees_with_prometheus_parse(
        &dir,
        "gateway.prom",
        concat!(
            "# HELP litellm_total_tokens_metric_total Total tokens.\n",
            "# TYPE litellm_total_tokens_metric_total counter\n",
            "litellm_total_tokens_metric_total{api_key_alias=\"alice\",model=\"gpt-4o\"} 1234.0\n",
            "litellm_total_tokens_metric_total{api_key_alias=\"bob\",model=\"gpt-4o\"} 5.5e+06\n",
            "# HELP litellm_remaining_requests_metric Remaining requests.\n",
            "# TYPE litellm_remaining_requests_metric gauge\n",
            "litellm_remaining_requests_metric{api_base=\"https://api.openai.com/v1\"} 9999.0\n",
            "process_cpu_seconds_total 15.290000000000001\n",
        ),
    );
    // The real LiteLLM 1.106.2 scrapes, when the shared fixtures are beside the repository.
    let fixtures = repo_root().join("../shared/fixtures/litellm-1.106.2");
    for name in ["metrics_success.txt", "metrics_failures.txt"] {
        match std::fs::read_to_string(fixtures.join(name)) {
            Ok(text) => assert_agrees_with_prometheus_parse(&dir, name, &text),
            Err(_) => eprintln!("skipped {name}: ../shared/fixtures is not beside the repository"),
        }
    }
}

/// A loopback HTTP server that answers one request with a fixed response and hands the
/// request's head back; every wait is bounded.
struct OneShot {
    port: u16,
    thread: Option<JoinHandle<()>>,
    requests: mpsc::Receiver<String>,
}

impl OneShot {
    fn serve(status: &'static str, content_type: &'static str, body: Vec<u8>) -> OneShot {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let (sender, requests) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(60);
            let mut stream = loop {
                match listener.accept() {
                    Ok((stream, _)) => break stream,
                    Err(_) if Instant::now() < deadline => std::thread::sleep(POLL),
                    Err(_) => return,
                }
            };
            stream.set_nonblocking(false).unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            let mut head = Vec::new();
            let mut byte = [0_u8; 1];
            while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
                head.push(byte[0]);
            }
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(&body);
            let _ = sender.send(String::from_utf8_lossy(&head).into_owned());
        });
        OneShot {
            port,
            thread: Some(thread),
            requests,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/metrics", self.port)
    }

    /// The head of the request it answered.
    fn request(mut self) -> String {
        let head = self
            .requests
            .recv_timeout(Duration::from_secs(60))
            .expect("the server saw no request");
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
        head
    }
}
