//! A PromQL query source end to end: a real Prometheus (Debian package `prometheus`, installed
//! by `.ci/run`) scrapes a simulated LiteLLM gateway carrying real HTTP traffic; `vigil serve`
//! evaluates an instant and a range query against it on an interval; the ledger must hold the
//! results exactly as Prometheus answers them when asked again at the recorded times.
//!
//! Without a `prometheus` binary the test says it is skipping and passes, unless `CI` is set:
//! then it fails.

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
    reason = "shared with the LiteLLM test, which uses the rest"
)]
#[path = "litellm/serve.rs"]
mod serve;

#[allow(
    dead_code,
    reason = "shared with the connector tests, which use the rest"
)]
#[path = "../../crates/vigil-connectors/tests/prometheus_real/server.rs"]
mod server;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use sha2::Digest as _;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use vigil_connectors::prometheus::QueryClient;
use vigil_core::engine::Event;
use vigil_core::signal::Sample;
use vigil_sim::{GatewayConfig, KeyTraffic, SimGateway, SimKey, SimModel, TrafficDriver};

use serve::Served;
use support::TempDir;

const INSTANT: &str = "prom-key-tokens";
const RANGE: &str = "prom-key-tokens-range";
const PROMQL: &str = "sum by (hashed_api_key) (litellm_total_tokens_metric_total)";

/// One recorded query result.
struct Queried {
    source: String,
    evaluated_at: i64,
    range: bool,
    samples: Vec<Sample>,
}

async fn recorded_queries(ledger: &Path) -> Vec<Queried> {
    serve::recorded_events(ledger)
        .await
        .into_iter()
        .filter_map(|event| match event {
            Event::Queried {
                source,
                evaluated_at,
                range,
                samples,
            } => Some(Queried {
                source,
                evaluated_at: evaluated_at.0,
                range,
                samples,
            }),
            _ => None,
        })
        .collect()
}

fn write_config(dir: &TempDir, prometheus_url: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let ledger = dir.join("ledger.db");
    let runbooks = dir.join("runbooks");
    std::fs::create_dir_all(&runbooks).unwrap();
    let config = format!(
        r#"mode: advisory
ledger:
  sqlite_path: "{ledger}"
policies_dir: "{policies}"
runbooks_dir: "{runbooks}"
queries:
  - name: {INSTANT}
    url: "{prometheus_url}"
    promql: '{PROMQL}'
    metric: key_tokens_total
    interval_secs: 1
    timeout_secs: 1
  - name: {RANGE}
    url: "{prometheus_url}"
    promql: '{PROMQL}'
    interval_secs: 2
    timeout_secs: 2
    range: {{ lookback_secs: 20, step_secs: 5 }}
detectors:
  - name: query-token-spike
    kind: spike
    source: {INSTANT}
    metric: key_tokens_total
    group_by: hashed_api_key
    alias_label: null
    team_label: null
pager:
  kind: log
"#,
        ledger = ledger.display(),
        policies = support::repo_root().join("policies").display(),
        runbooks = runbooks.display(),
    );
    let path = dir.join("vigil.yaml");
    std::fs::write(&path, config).unwrap();
    (path, ledger)
}

#[test]
fn query_results_reach_the_ledger_exactly_as_prometheus_answers() {
    let Some(binary) = server::find_binary() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "prometheus is not installed, and CI needs this test"
        );
        eprintln!("skipping: prometheus not installed (Debian package `prometheus`)");
        return;
    };
    vigil_connectors::install_crypto_provider();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let stop = CancellationToken::new();
    let raw_keys = ["sk-alpha-0001", "sk-beta-0002"];
    let (gateway, _traffic, prometheus) = runtime.block_on(async {
        let gateway = SimGateway::start(
            TcpListener::bind("127.0.0.1:0").await.unwrap(),
            GatewayConfig {
                master_key: "sk-master-query-test".to_owned(),
                keys: raw_keys
                    .iter()
                    .map(|raw_key| SimKey {
                        raw_key: (*raw_key).to_owned(),
                        alias: raw_key.replace("sk-", ""),
                        team: "search".to_owned(),
                        user_id: "u".to_owned(),
                        max_budget_usd: None,
                    })
                    .collect(),
                models: vec![SimModel {
                    name: "gpt-4o".to_owned(),
                    provider: "openai".to_owned(),
                    input_cost_per_token: 1e-6,
                    output_cost_per_token: 2e-6,
                }],
                ignore_blocks: false,
                require_auth_for_metrics: false,
            },
            stop.clone(),
        )
        .await
        .unwrap();
        let traffic = TrafficDriver::start(
            &gateway.base_url(),
            raw_keys
                .iter()
                .map(|raw_key| KeyTraffic {
                    raw_key: (*raw_key).to_owned(),
                    model: "gpt-4o".to_owned(),
                    requests_per_sec: 4.0,
                    prompt_chars: 400,
                    max_tokens: 50,
                })
                .collect(),
            11,
            stop.clone(),
        )
        .unwrap();
        let target = gateway.base_url().trim_start_matches("http://").to_owned();
        let prometheus = server::PrometheusServer::start(&binary, "litellm", &target).await;
        (gateway, traffic, prometheus)
    });

    let client = QueryClient::new(
        prometheus.base_url(),
        None,
        vigil_connectors::http::client(Duration::from_secs(5)).unwrap(),
    );
    // Wait (bounded) until Prometheus has scraped both keys' traffic.
    let mut n_series = 0;
    for _ in 0..300 {
        n_series = runtime
            .block_on(client.instant(PROMQL, None))
            .map_or(0, |result| result.series.len());
        if n_series == raw_keys.len() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        n_series,
        raw_keys.len(),
        "Prometheus never had both keys:\n{}",
        prometheus.log()
    );

    let dir = TempDir::new("query-source");
    let (config, ledger) = write_config(&dir, prometheus.base_url());
    let mut served = Served::start(&config, dir.path());
    let ok_count = |text: &str, source: &str| -> f64 {
        let needle = format!("vigil_scrapes_total{{source=\"{source}\",result=\"ok\"}} ");
        text.lines()
            .find_map(|line| line.strip_prefix(needle.as_str()))
            .and_then(|value| value.trim().parse().ok())
            .unwrap_or(0.0)
    };
    served.poll_metrics("query sources evaluated", |text| {
        ok_count(text, INSTANT) >= 4.0 && ok_count(text, RANGE) >= 2.0
    });
    let (code, stderr) = served.stop();
    assert_eq!(code, Some(0), "{stderr}");
    drop(gateway);

    let recorded = runtime.block_on(recorded_queries(&ledger));
    let hashed: BTreeSet<String> = raw_keys
        .iter()
        .map(|raw_key| hex::encode(sha2::Sha256::digest(raw_key.as_bytes())))
        .collect();
    let instants: Vec<&Queried> = recorded
        .iter()
        .filter(|queried| queried.source == INSTANT && !queried.samples.is_empty())
        .collect();
    assert!(instants.len() >= 2, "too few instant results recorded");
    for queried in &instants {
        assert!(!queried.range);
        let keys: BTreeSet<String> = queried
            .samples
            .iter()
            .map(|sample| {
                assert_eq!(
                    sample.name, "key_tokens_total",
                    "the query's metric names unnamed series"
                );
                assert_eq!(sample.timestamp_ms, Some(queried.evaluated_at));
                sample.labels.get("hashed_api_key").unwrap().to_owned()
            })
            .collect();
        assert!(keys.is_subset(&hashed), "{keys:?}");
        // Asked again at the recorded time, Prometheus gives the recorded values, bit for bit.
        let again = runtime
            .block_on(client.instant(PROMQL, Some(queried.evaluated_at)))
            .unwrap();
        let mut expected: Vec<(String, u64)> = again
            .series
            .iter()
            .map(|series| {
                (
                    series.labels["hashed_api_key"].clone(),
                    series.points[0].1.to_bits(),
                )
            })
            .collect();
        let mut got: Vec<(String, u64)> = queried
            .samples
            .iter()
            .map(|sample| {
                (
                    sample.labels.get("hashed_api_key").unwrap().to_owned(),
                    sample.value.to_bits(),
                )
            })
            .collect();
        expected.sort();
        got.sort();
        assert_eq!(got, expected, "at {}", queried.evaluated_at);
    }
    let last_range = recorded
        .iter()
        .rev()
        .find(|queried| queried.source == RANGE && !queried.samples.is_empty())
        .expect("a range result");
    assert!(last_range.range);
    for sample in &last_range.samples {
        let at = sample.timestamp_ms.unwrap();
        assert!(
            at <= last_range.evaluated_at && at >= last_range.evaluated_at - 20_000,
            "{at}"
        );
        assert_eq!(
            (last_range.evaluated_at - at) % 5000,
            0,
            "points sit on the 5 s steps back from the end"
        );
        assert_eq!(
            sample.name, "prom_key_tokens_range",
            "the default metric is the query's name"
        );
    }
    stop.cancel();
}
