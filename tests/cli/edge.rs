//! The bounded edge of `vigil serve`: 2,000 connections that send half a request head and 16
//! maximum-size pushes (eval batches, the costliest shape per byte measured) at once. /healthz
//! answers while they are held, the push limit answers 503 with `Retry-After` past it and
//! 202 within it, the server closes every slow connection
//! after its header timeout, and the daemon's peak resident memory stays under the bound that
//! `daemon/server/mod.rs` and `examples/vigil.yaml` document. Then the connection limit and
//! the idle timeout, with a small limit and short timeouts.
//!
//! Nothing here is timed: every wait is a bounded poll for what must happen (issue 12).

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::{Arc, Barrier, mpsc};
use std::time::{Duration, Instant};

use crate::serve::Served;
use crate::support::{TempDir, http_get, repo_root};

/// Connections that send half a request head and stop.
const SLOW_CONNECTIONS: usize = 2000;

/// Threads that open the slow connections.
const OPENERS: usize = 8;

/// `server.header_read_timeout_secs` in the first test: longer than opening 2,000
/// connections takes on a busy machine, so that they are all held at once.
const HEADER_READ_TIMEOUT_SECS: u64 = 20;

/// Pushes sent at once.
const PUSHES: usize = 16;

/// `intake.max_concurrent_pushes` in the test's config.
const MAX_CONCURRENT_PUSHES: usize = 4;

/// `intake.max_body_bytes` in the test's config: each push is as large as this allows.
const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// `server.max_connections` in the first test: room for the slow ones, the pushes and polls.
const MAX_CONNECTIONS: usize = 2100;

/// The documented bound (`daemon/server/mod.rs`): a push costs at most this many times its
/// body at its peak plus the largest tree one of its items may become, and a connection at
/// most this many bytes.
const PUSH_COST_PER_BODY_BYTE: usize = vigil::daemon::server::PUSH_COST_PER_BODY_BYTE as usize;
const PUSH_COST_FIXED_BYTES: usize = vigil::daemon::server::PUSH_COST_FIXED_BYTES as usize;
const CONNECTION_COST_BYTES: usize = vigil::daemon::server::CONNECTION_COST_BYTES as usize;

/// Hang guards, far above what anything here needs.
const LIMIT: Duration = Duration::from_secs(180);
const POLL_PAUSE: Duration = Duration::from_millis(100);

fn write_config(dir: &TempDir, server: &str) -> PathBuf {
    let root = repo_root();
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
server:
{server}
intake:
  max_body_bytes: {MAX_BODY_BYTES}
  max_concurrent_pushes: {MAX_CONCURRENT_PUSHES}
pager:
  kind: log
"#,
        ledger = dir.join("ledger.db").display(),
        policies = root.join("policies").display(),
        runbooks = dir.join("runbooks").display(),
    );
    let path = dir.join("vigil.yaml");
    std::fs::write(&path, config).expect("writing the config");
    path
}

/// A valid eval batch of 10,000 results, as close to `MAX_BODY_BYTES` as padding allows.
fn largest_eval_batch() -> String {
    let batch = |pad: usize| {
        let filler = "x".repeat(pad);
        let results: Vec<serde_json::Value> = (0..10_000)
            .map(|idx| {
                serde_json::json!({
                    "suite": format!("suite-{filler}"), "case": format!("case-{idx}-{filler}"),
                    "passed": idx % 3 != 0, "score": 0.5, "model": format!("gpt-4o-{filler}"),
                    "prompt_name": "answer", "prompt_version": "12", "input_tokens": 3120
                })
            })
            .collect();
        serde_json::json!({ "results": results }).to_string()
    };
    let per_pad_char = batch(1).len() - batch(0).len();
    let pad = (MAX_BODY_BYTES - batch(0).len()) / per_pad_char;
    let body = batch(pad);
    assert!(
        body.len() <= MAX_BODY_BYTES && body.len() > MAX_BODY_BYTES - per_pad_char,
        "{}",
        body.len()
    );
    body
}

/// The peak resident memory of process `pid` (VmHWM), in bytes.
fn peak_rss(pid: u32) -> usize {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("reading status");
    let line = status
        .lines()
        .find(|line| line.starts_with("VmHWM:"))
        .expect("a VmHWM line");
    let kib: usize = line
        .split_whitespace()
        .nth(1)
        .and_then(|value| value.parse().ok())
        .expect("VmHWM in kB");
    kib * 1024
}

/// The value of `name{labels}` in vigil's /metrics (0 when absent).
fn metric(address: SocketAddr, name: &str, labels: &[(&str, &str)]) -> f64 {
    let Ok(response) = http_get(address, "/metrics") else {
        return 0.0;
    };
    let exposition = vigil_core::exposition::parse_text(&response.body);
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
        .map_or(0.0, |sample| sample.value)
}

fn poll_until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + LIMIT;
    while !done() {
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        std::thread::sleep(POLL_PAUSE);
    }
}

/// What a push client got back.
#[derive(Debug)]
struct Answer {
    status: u16,
    retry_after: Option<String>,
    body: String,
}

/// Sends the head and half the body, waits at `sent`, then for `go`, sends the rest and
/// reads the answer (the server may answer, and stop reading, before the rest is sent).
fn push(
    address: SocketAddr,
    body: Arc<String>,
    sent: Arc<Barrier>,
    go: mpsc::Receiver<()>,
) -> Answer {
    let mut stream = TcpStream::connect(address).expect("connecting");
    stream
        .set_read_timeout(Some(LIMIT))
        .expect("a read timeout");
    let head = format!(
        "POST /v1/push/evals HTTP/1.1\r\nHost: vigil\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let (first, rest) = body.as_bytes().split_at(body.len() / 2);
    stream.write_all(head.as_bytes()).expect("sending the head");
    stream.write_all(first).expect("sending half the body");
    sent.wait();
    go.recv().expect("the go signal");
    let _ = stream.write_all(rest);
    let mut bytes = Vec::new();
    let _ = stream.read_to_end(&mut bytes);
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no answer: {text:?}"));
    let retry_after = head
        .lines()
        .find_map(|line| line.strip_prefix("retry-after: ").map(str::to_owned));
    Answer {
        status,
        retry_after,
        body: body.to_owned(),
    }
}

/// Waits until the server closes `stream` (EOF or reset); panics at the deadline.
fn closed_by_server(stream: &mut TcpStream, deadline: Instant) {
    let remaining = deadline.saturating_duration_since(Instant::now());
    assert!(!remaining.is_zero(), "a slow connection is still open");
    stream
        .set_read_timeout(Some(remaining))
        .expect("a read timeout");
    let mut byte = [0_u8; 1];
    match stream.read(&mut byte) {
        Ok(0) => {}
        Ok(_) => panic!("the server answered half a head"),
        Err(error) if error.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(error) => panic!("a slow connection was not closed: {error}"),
    }
}

#[test]
fn slow_connections_and_maximum_pushes_stay_within_the_bounds() {
    // The test itself holds 2,000 sockets.
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let dir = TempDir::new("edge-bounds");
    let config = write_config(
        &dir,
        &format!(
            "  max_connections: {MAX_CONNECTIONS}\n  header_read_timeout_secs: {HEADER_READ_TIMEOUT_SECS}\n  refused_log_interval_secs: 1"
        ),
    );
    let served = Served::start(&config, dir.path());
    let address = served.address;
    let pid = served.child.id();
    let base = peak_rss(pid);
    let body = Arc::new(largest_eval_batch());

    // 16 pushes, their heads and half their bodies sent; the limit answers 12 at once.
    let sent = Arc::new(Barrier::new(PUSHES + 1));
    let mut go = Vec::new();
    let mut clients = Vec::new();
    for _ in 0..PUSHES {
        let (go_tx, go_rx) = mpsc::channel();
        go.push(go_tx);
        let (body, sent) = (Arc::clone(&body), Arc::clone(&sent));
        clients.push(std::thread::spawn(move || push(address, body, sent, go_rx)));
    }
    sent.wait();
    let refused_pushes = || {
        metric(
            address,
            "vigil_http_refused_total",
            &[("route", "/v1/push/evals"), ("reason", "push_limit")],
        )
    };
    poll_until("the pushes past the limit to be refused", || {
        refused_pushes() >= (PUSHES - MAX_CONCURRENT_PUSHES) as f64
    });

    // 2,000 connections that send half a head, held while the pushes are. They are opened
    // from several threads: on a busy loopback some SYNs are retried after a second.
    let opened: Vec<std::thread::JoinHandle<Vec<TcpStream>>> = (0..OPENERS)
        .map(|_| {
            std::thread::spawn(move || {
                (0..SLOW_CONNECTIONS / OPENERS)
                    .map(|_| {
                        let mut stream =
                            TcpStream::connect(address).expect("connecting a slow connection");
                        stream
                            .write_all(b"POST /v1/push/evals HTTP/1.1\r\nHost: vigil\r\nContent-Ty")
                            .expect("sending half a head");
                        stream
                    })
                    .collect()
            })
        })
        .collect();
    let mut slow: Vec<TcpStream> = opened
        .into_iter()
        .flat_map(|opener| opener.join().expect("an opener"))
        .collect();
    let opened_by = Instant::now();
    poll_until("the slow connections to be open at once", || {
        metric(address, "vigil_http_connections", &[]) >= SLOW_CONNECTIONS as f64
    });
    let health =
        http_get(address, "/healthz").expect("GET /healthz while the connections are held");
    assert_eq!((health.status, health.body.trim()), (200, "ok"));

    // The pushes within the limit finish; those past it were refused.
    for go in go {
        go.send(()).expect("releasing a push");
    }
    let answers: Vec<Answer> = clients
        .into_iter()
        .map(|client| client.join().expect("a push client"))
        .collect();
    let accepted: Vec<&Answer> = answers
        .iter()
        .filter(|answer| answer.status == 202)
        .collect();
    let refused: Vec<&Answer> = answers
        .iter()
        .filter(|answer| answer.status == 503)
        .collect();
    assert_eq!(
        (accepted.len(), refused.len()),
        (MAX_CONCURRENT_PUSHES, PUSHES - MAX_CONCURRENT_PUSHES),
        "{answers:#?}"
    );
    for answer in &accepted {
        let body: serde_json::Value =
            serde_json::from_str(answer.body.trim()).expect("a JSON answer");
        assert_eq!(body["accepted"], 10000, "{answer:?}");
        assert_eq!(body["series"]["refused"], 0, "{answer:?}");
    }
    for answer in &refused {
        assert_eq!(answer.retry_after.as_deref(), Some("1"), "{answer:?}");
        assert!(
            answer.body.contains("intake.max_concurrent_pushes"),
            "{answer:?}"
        );
    }

    // Every slow connection is closed by the server after its header timeout.
    let deadline = opened_by + LIMIT;
    for stream in &mut slow {
        closed_by_server(stream, deadline);
    }
    poll_until("the header timeouts to be counted", || {
        metric(
            address,
            "vigil_http_refused_total",
            &[("route", "connection"), ("reason", "header_timeout")],
        ) >= SLOW_CONNECTIONS as f64
    });

    let peak = peak_rss(pid);
    let bound = base
        + MAX_CONNECTIONS * CONNECTION_COST_BYTES
        + MAX_CONCURRENT_PUSHES
            * (PUSH_COST_PER_BODY_BYTE * MAX_BODY_BYTES + PUSH_COST_FIXED_BYTES);
    eprintln!(
        "vigil serve peak RSS: {} MiB (at start {} MiB, bound {} MiB)",
        peak >> 20,
        base >> 20,
        bound >> 20
    );
    assert!(peak <= bound, "peak RSS {peak} is over the bound {bound}");

    // One summary line per interval, not a line per refusal.
    let (code, stderr) = served.stop_with("TERM");
    assert_eq!(code, Some(0), "{stderr}");
    let summaries = crate::support::lines_with(&stderr, "refused ");
    // The 12 refusals may straddle two intervals (x3 then x9): count them over the lines.
    let counted: u64 = summaries
        .iter()
        .filter_map(|line| line.split("/v1/push/evals push_limit x").nth(1))
        .filter_map(|rest| {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse::<u64>().ok()
        })
        .sum();
    assert_eq!(counted, 12, "{stderr}");
    assert!(summaries.len() < 60, "{} summary lines", summaries.len());
}

/// Sends a keep-alive GET and reads exactly its answer (by its Content-Length).
fn keep_alive_get(stream: &mut TcpStream, path: &str) -> String {
    let head = format!("GET {path} HTTP/1.1\r\nHost: vigil\r\n\r\n");
    stream.write_all(head.as_bytes()).expect("sending");
    let mut bytes = Vec::new();
    let mut chunk = [0_u8; 4096];
    loop {
        let n = stream.read(&mut chunk).expect("reading the answer");
        assert!(n > 0, "closed before the answer: {bytes:?}");
        bytes.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length: usize = head
                .lines()
                .find_map(|line| line.strip_prefix("content-length: "))
                .and_then(|value| value.parse().ok())
                .expect("a content-length");
            if body.len() >= length {
                return text;
            }
        }
    }
}

#[test]
fn the_connection_limit_closes_and_counts_and_idle_connections_are_closed() {
    let dir = TempDir::new("edge-limits");
    let config = write_config(
        &dir,
        "  max_connections: 3\n  header_read_timeout_secs: 60\n  idle_timeout_secs: 2",
    );
    let served = Served::start(&config, dir.path());
    let address = served.address;

    // A keep-alive connection that makes one request and then sits idle is closed.
    let mut kept = TcpStream::connect(address).expect("connecting");
    kept.set_read_timeout(Some(LIMIT)).expect("a read timeout");
    let answer = keep_alive_get(&mut kept, "/healthz");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    closed_by_server(&mut kept, Instant::now() + LIMIT);
    poll_until("the idle close to be counted", || {
        metric(address, "vigil_http_idle_connections_closed_total", &[]) >= 1.0
    });

    // Three connections fill the limit; the fourth is closed at once.
    let mut held: Vec<TcpStream> = (0..3)
        .map(|_| {
            let mut stream = TcpStream::connect(address).expect("connecting");
            stream
                .write_all(b"GET /healthz HTTP/1.1\r\n")
                .expect("half a head");
            stream
        })
        .collect();
    // Bounded: the held ones may still be on their way through accept.
    let mut fourth_closed = false;
    for _ in 0..100 {
        let mut fourth = TcpStream::connect(address).expect("connecting the fourth");
        fourth
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: vigil\r\nConnection: close\r\n\r\n")
            .ok();
        fourth
            .set_read_timeout(Some(LIMIT))
            .expect("a read timeout");
        let mut bytes = Vec::new();
        let _ = fourth.read_to_end(&mut bytes);
        if bytes.is_empty() {
            fourth_closed = true;
            break;
        }
        std::thread::sleep(POLL_PAUSE);
    }
    assert!(
        fourth_closed,
        "a fourth connection was served past the limit of 3"
    );
    // Room for /metrics again (two: a closed connection's slot frees a moment after).
    held.truncate(1);
    poll_until("the refused connection to be counted", || {
        metric(
            address,
            "vigil_http_refused_total",
            &[("route", "connection"), ("reason", "connection_limit")],
        ) >= 1.0
    });
    assert_eq!(metric(address, "vigil_http_connections_max", &[]), 3.0);
    drop(held);
    let (code, stderr) = served.stop_with("TERM");
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("connection connection_limit x"),
        "the summary line names it: {stderr}"
    );
}
