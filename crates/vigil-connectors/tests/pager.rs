//! Loopback tests of the webhook pager against the simulated pager sink: delivery, retries on
//! 5xx and transport errors, no retries on 4xx, and giving up after three attempts.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "tests fail loudly by design"
)]

mod common;

use common::client;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use vigil_connectors::ConnectorError;
use vigil_connectors::pager::{Resolution, WebhookPager};
use vigil_connectors::secret::Secret;
use vigil_sim::PagerSink;

async fn sink() -> (PagerSink, CancellationToken) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let shutdown = CancellationToken::new();
    (
        PagerSink::start(listener, shutdown.clone()).await.unwrap(),
        shutdown,
    )
}

fn page() -> serde_json::Value {
    json!({"title": "block of key alice-batch did not hold", "severity": "critical"})
}

#[tokio::test]
async fn a_page_is_delivered() {
    let (sink, shutdown) = sink().await;
    let pager = WebhookPager::new(sink.url(), Some(Secret::new("pager-token")), client());
    pager.send(&page()).await.unwrap();
    assert_eq!(sink.pages(), vec![page()]);
    assert_eq!(sink.attempts(), 1);
    shutdown.cancel();
}

#[tokio::test]
async fn a_resolution_follows_the_page_with_a_resolved_status() {
    let (sink, shutdown) = sink().await;
    sink.fail_next(1);
    let pager = WebhookPager::new(sink.url(), Some(Secret::new("pager-token")), client());
    pager.send(&page()).await.unwrap();
    let resolution = Resolution {
        dedup_key: "inc-0007".to_owned(),
        title: "block of key alice-batch did not hold".to_owned(),
        summary: "the finding cleared after vigil's change".to_owned(),
        details: json!({"duration": "14 min"}),
    };
    pager.resolve(&resolution).await.unwrap();
    assert_eq!(
        sink.pages(),
        vec![
            page(),
            json!({
                "source": "vigil",
                "status": "resolved",
                "incident_id": "inc-0007",
                "title": "block of key alice-batch did not hold",
                "summary": "the finding cleared after vigil's change",
                "details": {"duration": "14 min"},
            }),
        ]
    );
    // The page failed once and was retried; the resolution went through at once.
    assert_eq!(sink.attempts(), 3);
    shutdown.cancel();
}

#[tokio::test]
async fn a_failing_receiver_is_retried_until_it_recovers() {
    let (sink, shutdown) = sink().await;
    sink.fail_next(2);
    let pager = WebhookPager::new(sink.url(), None, client());
    pager.send(&page()).await.unwrap();
    assert_eq!(sink.attempts(), 3);
    assert_eq!(sink.pages(), vec![page()]);
    shutdown.cancel();
}

#[tokio::test]
async fn the_pager_gives_up_after_three_attempts() {
    let (sink, shutdown) = sink().await;
    sink.fail_next(10);
    let secret = "pager-token-never-shown";
    let pager = WebhookPager::new(sink.url(), Some(Secret::new(secret)), client());
    let error = pager.send(&page()).await.unwrap_err();
    let ConnectorError::PagerGaveUp { attempts, last, .. } = &error else {
        panic!("{error:?}")
    };
    assert_eq!(*attempts, 3);
    assert_eq!(last.status(), Some(503));
    assert_eq!(sink.attempts(), 3);
    assert!(sink.pages().is_empty());
    let shown = format!("{error} {error:?} {pager:?}");
    assert!(!shown.contains(secret), "{shown}");
    // A webhook's path is often its secret: errors show only the origin.
    assert!(
        !shown.contains("/pages") && shown.contains("/<redacted>"),
        "{shown}"
    );
    shutdown.cancel();
}

#[tokio::test]
async fn a_client_error_is_not_retried() {
    let (sink, shutdown) = sink().await;
    let pager = WebhookPager::new(format!("{}/elsewhere", sink.url()), None, client());
    let error = pager.send(&page()).await.unwrap_err();
    assert!(
        matches!(error, ConnectorError::Status { status: 404, .. }),
        "{error:?}"
    );
    shutdown.cancel();
}

#[tokio::test]
async fn an_unreachable_receiver_is_retried_then_given_up() {
    let port = {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap().port()
    };
    let pager = WebhookPager::new(format!("http://127.0.0.1:{port}/pages"), None, client());
    let started = tokio::time::Instant::now();
    let error = pager.send(&page()).await.unwrap_err();
    assert!(
        matches!(&error, ConnectorError::PagerGaveUp { attempts: 3, last, .. } if matches!(**last, ConnectorError::Transport { .. })),
        "{error:?}"
    );
    // Two backoffs, of 100 ms and 200 ms, lie between the three attempts.
    assert!(started.elapsed() >= std::time::Duration::from_millis(300));
}

#[tokio::test]
async fn a_receiver_that_never_answers_times_out_on_each_attempt() {
    let shutdown = CancellationToken::new();
    let url = common::silent_server(shutdown.clone()).await;
    let pager = WebhookPager::new(format!("{url}/pages"), None, client())
        .with_timeout(std::time::Duration::from_millis(100));
    let error = pager.send(&page()).await.unwrap_err();
    let ConnectorError::PagerGaveUp {
        attempts: 3, last, ..
    } = &error
    else {
        panic!("{error:?}")
    };
    assert!(
        last.to_string()
            .starts_with("`pager` did not answer within 100ms"),
        "{last}"
    );
    shutdown.cancel();
}
