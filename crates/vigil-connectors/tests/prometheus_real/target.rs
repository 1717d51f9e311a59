//! The scrape target: a tiny HTTP server on 127.0.0.1:0 serving a known exposition at
//! `/metrics`. Gauges are constant; the counter grows by [`COUNTER_STEP`] per scrape and
//! carries an explicit timestamp one second after the previous one, so the samples Prometheus
//! stores are fixed by the test, not by when the scrapes happen.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// How much the counter grows per scrape, that is per second of its timestamps.
pub const COUNTER_STEP: f64 = 10.0;

/// A label value with everything the text format escapes, and the characters that broke
/// other parsers (`,` `=` `}` and an escaped quote), and some non-ASCII.
pub const TRICKY_VALUE: &str = "quote \" backslash \\ newline \n comma, equals= brace} {é ✓}";

/// The origin of the counter's line given one of its samples: the time at which it would be 0.
pub fn counter_base_ms((at, value): (i64, f64)) -> i64 {
    at - (value / COUNTER_STEP) as i64 * 1000
}

/// The target's exposition text for scrape number `n` (from 1), whose counter sample is
/// stamped `at_ms`.
fn exposition(n: u64, at_ms: i64) -> String {
    let tricky = TRICKY_VALUE
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n");
    format!(
        "# HELP vigil_test_gauge Gauges with known values.\n\
         # TYPE vigil_test_gauge gauge\n\
         vigil_test_gauge{{case=\"plain\"}} 42.5\n\
         vigil_test_gauge{{case=\"negative\"}} -0.125\n\
         vigil_test_gauge{{case=\"huge\"}} 1e300\n\
         vigil_test_gauge{{case=\"tiny\"}} 5e-324\n\
         vigil_test_gauge{{case=\"nan\"}} NaN\n\
         vigil_test_gauge{{case=\"inf\"}} +Inf\n\
         vigil_test_gauge{{case=\"neginf\"}} -Inf\n\
         vigil_test_gauge{{case=\"empty-label\",empty=\"\"}} 3\n\
         vigil_test_gauge{{case=\"tricky\",value=\"{tricky}\"}} 7\n\
         # HELP vigil_test_requests_total A counter stamped by the target.\n\
         # TYPE vigil_test_requests_total counter\n\
         vigil_test_requests_total{{route=\"/v1/chat/completions\"}} {value} {at_ms}\n",
        value = COUNTER_STEP * n as f64,
    )
}

/// The running target; it stops when dropped.
pub struct ExpositionTarget {
    address: SocketAddr,
    stop: CancellationToken,
}

impl ExpositionTarget {
    /// Starts serving on 127.0.0.1:0.
    pub async fn start() -> ExpositionTarget {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let stop = CancellationToken::new();
        let scrapes = Arc::new(AtomicU64::new(0));
        // The first scrape's wall time, in ms; every later sample is one second further.
        let base_ms = Arc::new(AtomicI64::new(0));
        let token = stop.clone();
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    () = token.cancelled() => break,
                    accepted = listener.accept() => accepted,
                };
                let Ok((stream, _)) = accepted else { break };
                let scrapes = Arc::clone(&scrapes);
                let base_ms = Arc::clone(&base_ms);
                tokio::spawn(answer(stream, scrapes, base_ms));
            }
        });
        ExpositionTarget { address, stop }
    }

    /// `127.0.0.1:PORT`, as Prometheus's `instance` label shows it.
    pub fn address(&self) -> String {
        self.address.to_string()
    }
}

impl Drop for ExpositionTarget {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Answers one request on `stream`, then closes it.
#[allow(
    clippy::disallowed_types,
    reason = "a real Prometheus, another process, scrapes this target: its samples carry the real wall clock"
)]
async fn answer(mut stream: TcpStream, scrapes: Arc<AtomicU64>, base_ms: Arc<AtomicI64>) {
    let mut request = Vec::new();
    let mut buffer = [0_u8; 4096];
    // A bounded read of the request head; the body (there is none) is not needed.
    while !request.windows(4).any(|window| window == b"\r\n\r\n") && request.len() < 65_536 {
        match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buffer[..n]),
        }
    }
    let head = String::from_utf8_lossy(&request);
    let (status, body) = if head.starts_with("GET /metrics ") {
        // Scrapes are numbered in the order they are answered; their stamps follow.
        let n = scrapes.fetch_add(1, Ordering::SeqCst) + 1;
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        let _ = base_ms.compare_exchange(0, now_ms, Ordering::SeqCst, Ordering::SeqCst);
        let at_ms = base_ms.load(Ordering::SeqCst) + (n as i64 - 1) * 1000;
        ("200 OK", exposition(n, at_ms))
    } else {
        ("404 Not Found", "not found\n".to_owned())
    };
    let answer = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _written = stream.write_all(answer.as_bytes()).await;
    let _shut = stream.shutdown().await;
}
