//! Loopback tests of the checkpoint webhook: the checkpoint arrives as JSON, a 2xx is a
//! delivery, anything else is an error that quotes the answer and hides the URL's path.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "tests fail loudly by design"
)]

mod common;

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use vigil_connectors::{CheckpointWebhook, ConnectorError};

type Log = Arc<Mutex<Vec<Value>>>;

/// Records each posted body; `/status/{code}` answers that status.
async fn receive(
    State(log): State<Log>,
    Path(code): Path<u16>,
    axum::Json(body): axum::Json<Value>,
) -> (StatusCode, &'static str) {
    log.lock().unwrap().push(body);
    (
        StatusCode::from_u16(code).unwrap(),
        "the receiver says no\n\tbecause",
    )
}

async fn server() -> (String, Log, CancellationToken) {
    let log: Log = Arc::default();
    let app = Router::new()
        .route("/status/{code}", post(receive))
        .with_state(Arc::clone(&log));
    let (addr, shutdown) = common::serve(app).await;
    (format!("http://{addr}"), log, shutdown)
}

fn checkpoint() -> Value {
    json!({"tree_size": 3, "tree_head": "ab", "at_ms": 10})
}

#[tokio::test]
async fn a_checkpoint_is_posted_as_json_and_a_2xx_delivers_it() {
    let (base, log, shutdown) = server().await;
    let webhook = CheckpointWebhook::new(format!("{base}/status/204").parse().unwrap()).unwrap();
    webhook.post(&checkpoint()).await.unwrap();
    assert_eq!(*log.lock().unwrap(), vec![checkpoint()]);
    shutdown.cancel();
}

#[tokio::test]
async fn a_refusal_is_an_error_naming_the_status_and_only_the_origin() {
    let (base, log, shutdown) = server().await;
    let webhook = CheckpointWebhook::new(format!("{base}/status/503").parse().unwrap()).unwrap();
    let error = webhook.post(&checkpoint()).await.unwrap_err();
    assert!(
        matches!(error, ConnectorError::Status { status: 503, .. }),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.contains("the receiver says no because"),
        "{message}"
    );
    assert!(!message.contains("status/503"), "{message}");
    assert!(
        !format!("{webhook:?}").contains("status/503"),
        "{webhook:?}"
    );
    assert_eq!(log.lock().unwrap().len(), 1, "a refusal is not retried");
    shutdown.cancel();
}

#[tokio::test]
async fn no_answer_is_a_transport_error() {
    // A port nobody listens on: bound, then closed.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let webhook = CheckpointWebhook::new(format!("http://{address}/x").parse().unwrap()).unwrap();
    let error = webhook.post(&checkpoint()).await.unwrap_err();
    assert!(
        matches!(error, ConnectorError::Transport { .. }),
        "{error:?}"
    );
}
