//! Loopback tests of the traffic driver against the simulated gateway, and of the pager sink.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "tests fail loudly by design"
)]

mod common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use vigil_sim::{KeyTraffic, PagerSink, SimError, SimGateway, TrafficDriver};

fn traffic(raw_key: &str, requests_per_sec: f64) -> KeyTraffic {
    KeyTraffic {
        raw_key: raw_key.to_owned(),
        model: MODEL.to_owned(),
        requests_per_sec,
        prompt_chars: 200,
        max_tokens: 100,
    }
}

#[tokio::test]
async fn the_driver_sends_real_requests_reacts_to_rate_changes_and_blocks_and_stops() {
    let (gateway, gateway_shutdown) = start(config()).await;
    let client = client();
    let shutdown = CancellationToken::new();
    let keys = vec![traffic(ALICE_KEY, 40.0), traffic(BOB_KEY, 0.0)];
    let driver = TrafficDriver::start(&gateway.base_url(), keys, 7, shutdown.clone()).unwrap();

    tokio::time::sleep(Duration::from_millis(500)).await;
    let alice = driver.stats_for(ALICE_KEY).unwrap();
    assert!(alice.sent >= 3 && alice.ok >= 3, "{alice:?}");
    assert_eq!(
        driver.stats_for(BOB_KEY).unwrap().sent,
        0,
        "a zero rate idles the key"
    );
    let alice_hash = SimGateway::hashed(ALICE_KEY);
    let text = scrape(&client, &gateway).await;
    let tokens = value(
        &text,
        "litellm_total_tokens_metric_total",
        &[("hashed_api_key", alice_hash.as_str())],
    );
    // 200 characters make 50 prompt tokens; max_tokens varies within ±20 % of 100.
    assert!(tokens >= 3.0 * (50.0 + 80.0), "{tokens}");

    driver.set_rate(BOB_KEY, 40.0, 50).unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        driver.stats_for(BOB_KEY).unwrap().ok >= 3,
        "the rate change took effect"
    );

    let (status, _) = admin(&client, &gateway, "/key/block", json!({"key": ALICE_KEY})).await;
    assert_eq!(status, 200);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let blocked = driver.stats_for(ALICE_KEY).unwrap();
    assert!(blocked.rejected >= 3, "{blocked:?}");
    let frozen = scrape(&client, &gateway).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let later = scrape(&client, &gateway).await;
    let key = [("hashed_api_key", alice_hash.as_str())];
    assert_eq!(
        value(&frozen, "litellm_total_tokens_metric_total", &key),
        value(&later, "litellm_total_tokens_metric_total", &key),
        "a blocked key's tokens stop growing"
    );
    assert!(
        driver.stats_for(ALICE_KEY).unwrap().rejected > blocked.rejected,
        "traffic keeps coming"
    );

    assert!(matches!(
        driver.set_rate("sk-nobody", 1.0, 1),
        Err(SimError::UnknownKey { .. })
    ));
    assert!(matches!(
        driver.set_rate(BOB_KEY, -1.0, 1),
        Err(SimError::InvalidRate(_))
    ));
    assert_eq!(driver.stats().len(), 2);

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(1), driver.stopped())
        .await
        .expect("tasks end promptly");
    let settled = driver.stats_for(ALICE_KEY).unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        driver.stats_for(ALICE_KEY).unwrap(),
        settled,
        "nothing is sent after shutdown"
    );
    gateway_shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(2), gateway.stopped())
        .await
        .expect("gateway stops");
}

#[tokio::test]
async fn a_driver_pointed_at_nothing_counts_errors_and_keeps_going() {
    // A port that was bound and released: connections are refused.
    let port = {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap().port()
    };
    let shutdown = CancellationToken::new();
    let driver = TrafficDriver::start(
        &format!("http://127.0.0.1:{port}"),
        vec![traffic(ALICE_KEY, 50.0)],
        1,
        shutdown.clone(),
    )
    .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stats = driver.stats_for(ALICE_KEY).unwrap();
    assert!(stats.errors >= 3 && stats.ok == 0, "{stats:?}");
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(1), driver.stopped())
        .await
        .expect("tasks end promptly");
}

#[tokio::test]
async fn the_pager_sink_stores_pages_and_can_fail_on_purpose() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let shutdown = CancellationToken::new();
    let sink = PagerSink::start(listener, shutdown.clone()).await.unwrap();
    let client = client();
    assert!(sink.url().starts_with("http://127.0.0.1:") && sink.url().ends_with("/pages"));

    let page = json!({"summary": "runaway key blocked but still spending", "severity": "critical"});
    let response = client.post(sink.url()).json(&page).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 202);
    assert_eq!(sink.pages(), vec![page.clone()]);
    let listed: Vec<Value> = client
        .get(sink.url())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed, vec![page.clone()]);

    let invalid = client
        .post(sink.url())
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(invalid.status().as_u16(), 400);

    sink.fail_next(2);
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(
            client
                .post(sink.url())
                .json(&page)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16(),
        );
    }
    assert_eq!(statuses, [503, 503, 202]);
    assert_eq!(sink.pages().len(), 2);
    assert_eq!(sink.attempts(), 5);

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(2), sink.stopped())
        .await
        .expect("sink stops");
}
