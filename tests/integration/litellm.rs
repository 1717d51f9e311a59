//! A real LiteLLM proxy (PyPI `litellm[proxy]==1.106.2`, see `.ci/setup-litellm`) on loopback
//! with mock models: real chat completions through it, successes and rate-limit errors, then
//! its `/metrics/` read through vigil's own scrape path (`vigil_connectors::scrape::fetch` and
//! `vigil_core::exposition::parse_text`) and by a running `vigil serve`, whose ledger must hold
//! the same token counts.
//!
//! `VIGIL_TEST_LITELLM_PYTHON` names the virtualenv's Python. Without it the test says it is
//! skipping and passes, unless `CI` is set: then it fails.
//!
//! LiteLLM updates its metrics in callbacks after it has answered, so the test polls (bounded)
//! until every expected series is there, then asserts exact values; nothing depends on timing.

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

#[path = "litellm/expected.rs"]
mod expected;
#[path = "litellm/proxy.rs"]
mod proxy;
#[path = "litellm/serve.rs"]
mod serve;

use std::time::Duration;

use sha2::Digest as _;
use vigil_connectors::scrape::{ScrapeTarget, fetch};
use vigil_connectors::secret::Secret;

use expected::{Expected, Traffic, series};
use proxy::{LitellmProxy, MODEL_LIMITED, MODEL_OK};
use support::TempDir;

/// Calls of each kind: successes, calls to the rate-limited deployment, and calls to the
/// healthy model that ask for a mock rate-limit error themselves.
const N_OK: u32 = 3;
const N_LIMITED: u32 = 2;
const N_REQUEST_LIMITED: u32 = 1;

/// Hang guard for the metrics to settle: rounds of [`POLL_PAUSE`].
const POLL_ROUNDS: u32 = 300;
const POLL_PAUSE: Duration = Duration::from_millis(200);

/// A master key nobody can guess: LiteLLM refuses well-known ones such as `sk-1234`.
fn random_master_key() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos());
    let digest = sha2::Sha256::digest(format!("{nanos}/{}", std::process::id()).as_bytes());
    format!("sk-test-{}", &hex::encode(digest)[..32])
}

fn scrape_target(proxy: &LitellmProxy, path: &str, bearer: Option<&str>) -> ScrapeTarget {
    ScrapeTarget {
        name: "litellm".to_owned(),
        url: format!("{}{path}", proxy.base_url()),
        timeout: Duration::from_secs(60),
        bearer: bearer.map(Secret::new),
        max_body_bytes: 16 * 1024 * 1024,
    }
}

/// One chat completion through the proxy: its status, its JSON body, and the cost LiteLLM
/// reported in `x-litellm-response-cost`.
async fn chat(
    http: &reqwest::Client,
    proxy: &LitellmProxy,
    master_key: &str,
    model: &str,
    content: &str,
    ask_for_rate_limit: bool,
) -> (u16, serde_json::Value, Option<f64>) {
    let mut request = serde_json::json!({
        "model": model,
        "messages": [{"role": "user", "content": content}],
    });
    if ask_for_rate_limit {
        request["mock_testing_rate_limit_error"] = serde_json::Value::Bool(true);
    }
    let response = http
        .post(format!("{}/chat/completions", proxy.base_url()))
        .bearer_auth(master_key)
        .json(&request)
        .send()
        .await
        .unwrap_or_else(|error| panic!("POST /chat/completions ({model}): {error}"));
    let status = response.status().as_u16();
    let cost = response
        .headers()
        .get("x-litellm-response-cost")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse().ok());
    let body = response.json().await.expect("a JSON answer");
    (status, body, cost)
}

/// Asserts LiteLLM's OpenAI-style rate-limit error: HTTP 429, `throttling_error`, code "429".
fn assert_rate_limited(status: u16, body: &serde_json::Value, message_start: &str) {
    assert_eq!(status, 429, "{body}");
    let error = &body["error"];
    assert_eq!(error["type"], "throttling_error", "{body}");
    assert_eq!(error["code"], "429", "{body}");
    let message = error["message"].as_str().unwrap();
    assert!(message.starts_with(message_start), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_litellm_proxy_reports_the_traffic_sent_through_it() {
    let Some(python) = proxy::python() else {
        return;
    };
    let dir = TempDir::new("litellm-proxy");
    let master_key = random_master_key();
    let http = vigil_connectors::http::client(Duration::from_secs(120)).unwrap();
    let proxy = LitellmProxy::start(&python, dir.path(), &master_key, &http).await;

    // Without the key the metrics are refused, and LiteLLM counts the refusal as a failed
    // request of its own (route `/metrics/`).
    let refused = fetch(&http, &scrape_target(&proxy, "/metrics/", None))
        .await
        .unwrap_err();
    assert_eq!(refused.status(), Some(401), "{refused}");
    assert!(
        refused
            .to_string()
            .contains("Unauthorized access to metrics endpoint"),
        "{refused}"
    );

    let mut traffic = Traffic::default();
    for idx in 0..N_OK {
        let content = format!("request {idx}: say hello");
        let (status, body, cost) =
            chat(&http, &proxy, &master_key, MODEL_OK, &content, false).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            body["choices"][0]["message"]["content"], "Hello from the mock",
            "{body}"
        );
        traffic.add_success(&body["usage"], cost.expect("x-litellm-response-cost"));
    }
    for idx in 0..N_LIMITED {
        let content = format!("limited {idx}");
        let (status, body, _) =
            chat(&http, &proxy, &master_key, MODEL_LIMITED, &content, false).await;
        assert_rate_limited(
            status,
            &body,
            "litellm.RateLimitError: this is a mock rate limit error",
        );
        traffic.n_limited += 1;
    }
    for idx in 0..N_REQUEST_LIMITED {
        let content = format!("asks for a rate limit {idx}");
        let (status, body, _) = chat(&http, &proxy, &master_key, MODEL_OK, &content, true).await;
        assert_rate_limited(
            status,
            &body,
            "litellm.RateLimitError: This is a mock exception for model=mock-ok",
        );
        traffic.n_request_limited += 1;
    }
    traffic.n_refused_scrapes = 1;
    let expected = Expected::new(&traffic);

    // Scrape until every callback has landed (bounded), through vigil's own code path.
    let authorized = scrape_target(&proxy, "/metrics/", Some(&master_key));
    let mut metrics = String::new();
    for _ in 0..POLL_ROUNDS {
        let scraped = fetch(&http, &authorized)
            .await
            .expect("an authorized scrape");
        assert_eq!(scraped.status, 200);
        metrics = String::from_utf8(scraped.body).expect("LiteLLM's metrics are UTF-8");
        if expected.settled(&metrics) {
            break;
        }
        tokio::time::sleep(POLL_PAUSE).await;
    }
    expected.assert_matches(&metrics);

    // `/metrics` redirects to `/metrics/`; vigil's client follows it with the key.
    let redirected = fetch(&http, &scrape_target(&proxy, "/metrics", Some(&master_key)))
        .await
        .expect("a scrape of /metrics through the redirect");
    expected.assert_matches(&String::from_utf8_lossy(&redirected.body));

    check_vigil_serve(&dir, &proxy, &master_key, &traffic).await;
}

/// `vigil serve` scrapes the proxy successfully, parses every line, and records the token
/// counter exactly as the proxy reported it.
async fn check_vigil_serve(
    dir: &TempDir,
    proxy: &LitellmProxy,
    master_key: &str,
    traffic: &Traffic,
) {
    let key_file = dir.join("master-key");
    support::write_secret(&key_file, &format!("{master_key}\n"));
    let metrics_url = format!("{}/metrics/", proxy.base_url());
    let (config, ledger) = serve::write_config(dir.path(), &metrics_url, &key_file);

    let mut served = serve::Served::start(&config, dir.path());
    let self_metrics = served.poll_metrics("a successful scrape of the proxy", |text| {
        series(text, "vigil_scrapes_total")
            .into_iter()
            .any(|(labels, value)| {
                labels.get("source").map(String::as_str) == Some(serve::SOURCE)
                    && labels.get("result").map(String::as_str) == Some("ok")
                    && value >= 1.0
            })
    });
    let for_source = |name: &str| -> Vec<f64> {
        series(&self_metrics, name)
            .into_iter()
            .filter(|(labels, _)| labels.get("source").map(String::as_str) == Some(serve::SOURCE))
            .map(|(_, value)| value)
            .collect()
    };
    assert_eq!(for_source("vigil_source_up"), [1.0], "{self_metrics}");
    assert_eq!(
        for_source("vigil_scrape_malformed_lines_total"),
        [0.0],
        "LiteLLM's exposition has lines vigil cannot parse:\n{self_metrics}\n{}",
        served.stderr()
    );
    assert!(
        for_source("vigil_scrape_samples")
            .first()
            .is_some_and(|n| *n > 100.0),
        "{self_metrics}"
    );

    let (code, stderr) = served.stop();
    assert_eq!(
        code,
        Some(0),
        "vigil serve did not exit 0 on SIGTERM:\n{stderr}"
    );

    let scrapes = serve::recorded_scrapes(&ledger).await;
    let last = scrapes
        .last()
        .unwrap_or_else(|| panic!("no scrape of `{}` in the ledger:\n{stderr}", serve::SOURCE));
    let tokens: Vec<(String, String, f64)> = last
        .iter()
        .filter(|sample| sample.name == "litellm_total_tokens_metric_total")
        .map(|sample| {
            (
                sample.labels.get("hashed_api_key").unwrap_or("").to_owned(),
                sample
                    .labels
                    .get("requested_model")
                    .unwrap_or("")
                    .to_owned(),
                sample.value,
            )
        })
        .collect();
    assert_eq!(
        tokens,
        [(
            "litellm_proxy_master_key".to_owned(),
            MODEL_OK.to_owned(),
            f64::from(traffic.total_tokens)
        )],
        "{last:#?}"
    );
}
