//! Loopback tests of scraping: LiteLLM's redirect with bearer auth, auth failures, the body
//! limit, timeouts, redirect limits, and secrets kept out of errors.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "tests fail loudly by design"
)]

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;
use tokio_util::sync::CancellationToken;
use vigil_connectors::ConnectorError;
use vigil_connectors::scrape::{ScrapeTarget, fetch};
use vigil_connectors::secret::Secret;

fn target(url: String, bearer: Option<&str>) -> ScrapeTarget {
    ScrapeTarget {
        name: "litellm".to_owned(),
        url,
        timeout: Duration::from_secs(2),
        bearer: bearer.map(Secret::new),
        max_body_bytes: 1024 * 1024,
    }
}

#[tokio::test]
async fn scraping_follows_litellms_redirect_with_the_bearer_token() {
    let (gateway, shutdown) = gateway().await;
    let client = client();
    let scraped = fetch(
        &client,
        &target(format!("{}/metrics", gateway.base_url()), Some(MASTER_KEY)),
    )
    .await
    .unwrap();
    assert_eq!(scraped.status, 200);
    assert_eq!(
        scraped.content_type.as_deref(),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let body = String::from_utf8(scraped.body).unwrap();
    assert!(body.contains("# TYPE litellm_total_tokens_metric_total counter"));
    assert!(body.ends_with("litellm_in_flight_requests 1.0\n"));
    shutdown.cancel();
}

#[tokio::test]
async fn a_scrape_without_auth_fails_with_the_status_and_an_excerpt() {
    let (gateway, shutdown) = gateway().await;
    let client = client();
    let error = fetch(
        &client,
        &target(format!("{}/metrics/", gateway.base_url()), None),
    )
    .await
    .unwrap_err();
    let ConnectorError::Status {
        target,
        status,
        excerpt,
        ..
    } = &error
    else {
        panic!("{error:?}")
    };
    assert_eq!((target.as_str(), *status), ("litellm", 401));
    assert!(
        excerpt.contains("Unauthorized access to metrics endpoint"),
        "{excerpt}"
    );
    assert_eq!(error.status(), Some(401));
    shutdown.cancel();
}

#[tokio::test]
async fn a_wrong_bearer_never_appears_in_errors() {
    let (gateway, shutdown) = gateway().await;
    let client = client();
    let wrong = "sk-wrong-but-secret-7731";
    let scrape = target(
        format!("{}/metrics/?token={wrong}", gateway.base_url()),
        Some(wrong),
    );
    let error = fetch(&client, &scrape).await.unwrap_err();
    assert_eq!(error.status(), Some(401));
    let shown = format!("{error} {error:?} {scrape:?}");
    assert!(!shown.contains(wrong), "{shown}");
    assert!(!shown.contains("alice-runaway"), "{shown}");
    shutdown.cancel();
}

#[tokio::test]
async fn a_body_over_the_limit_fails_without_being_buffered() {
    let (gateway, shutdown) = gateway().await;
    let client = client();
    let mut small = target(format!("{}/metrics/", gateway.base_url()), Some(MASTER_KEY));
    small.max_body_bytes = 512;
    let error = fetch(&client, &small).await.unwrap_err();
    assert!(
        matches!(&error, ConnectorError::BodyTooLarge { limit_bytes: 512, target, .. } if target == "litellm"),
        "{error:?}"
    );
    shutdown.cancel();
}

#[tokio::test]
async fn a_peer_that_never_answers_times_out_naming_the_target() {
    let shutdown = CancellationToken::new();
    let url = silent_server(shutdown.clone()).await;
    let client = client();
    let mut silent = target(format!("{url}/metrics"), Some(MASTER_KEY));
    silent.name = "silent-exporter".to_owned();
    silent.timeout = Duration::from_millis(300);
    let error = fetch(&client, &silent).await.unwrap_err();
    assert!(matches!(error, ConnectorError::Timeout { .. }), "{error:?}");
    assert!(
        error
            .to_string()
            .starts_with("`silent-exporter` did not answer within 300ms"),
        "{error}"
    );
    shutdown.cancel();
}

#[tokio::test]
async fn redirects_to_another_host_are_not_followed_and_loops_stop_after_three() {
    let shutdown = CancellationToken::new();
    let client = client();

    // 127.0.0.2 is another host on loopback: the bearer token must not travel there.
    let (url, seen) =
        redirecting_server("http://127.0.0.2:9/metrics/".to_owned(), shutdown.clone()).await;
    let error = fetch(&client, &target(format!("{url}/metrics"), Some(MASTER_KEY)))
        .await
        .unwrap_err();
    assert_eq!(error.status(), Some(307), "{error:?}");
    assert_eq!(seen.load(Ordering::SeqCst), 1);

    let (url, seen) = redirecting_server("/metrics/".to_owned(), shutdown.clone()).await;
    let error = fetch(&client, &target(format!("{url}/metrics"), None))
        .await
        .unwrap_err();
    assert!(
        matches!(error, ConnectorError::Transport { .. }),
        "{error:?}"
    );
    assert_eq!(
        seen.load(Ordering::SeqCst),
        4,
        "the first request and three redirects"
    );
    shutdown.cancel();
}
