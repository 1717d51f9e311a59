//! Loopback tests of the generic HTTP action against a small echo server: what is sent,
//! which statuses count, the host allow-list, the body limit, and secrets kept out of sight.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "tests fail loudly by design"
)]

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::routing::any;
use common::client;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use vigil_connectors::ConnectorError;
use vigil_connectors::http_action::{
    HttpCallOutcome, HttpCaller, HttpHeaderValue, HttpMethod, HttpRequestSpec,
};
use vigil_connectors::secret::Secret;

const TOKEN: &str = "Bearer tok-9c4e1f07aa";

/// One request the echo server saw.
#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    path: String,
    headers: HeaderMap,
    body: Bytes,
}

type Log = Arc<Mutex<Vec<Seen>>>;

/// Answers `/status/{code}` with that status and a body echoing the request's headers;
/// `/large` with 300 KiB.
async fn echo(
    State(log): State<Log>,
    method: Method,
    Path(path): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    log.lock().unwrap().push(Seen {
        method,
        path: path.clone(),
        headers: headers.clone(),
        body,
    });
    if path == "large" {
        return (StatusCode::OK, "x".repeat(300 * 1024));
    }
    let status = path
        .strip_prefix("status/")
        .and_then(|code| code.parse::<u16>().ok())
        .and_then(|code| StatusCode::from_u16(code).ok())
        .unwrap_or(StatusCode::OK);
    let echoed: Vec<String> = headers
        .iter()
        .map(|(name, value)| format!("{name}={}", value.to_str().unwrap_or("?")))
        .collect();
    (
        status,
        format!("answered {status}; saw {}", echoed.join(", ")),
    )
}

async fn server() -> (SocketAddr, Log, CancellationToken) {
    let log: Log = Arc::default();
    let app = Router::new()
        .route("/{*path}", any(echo))
        .with_state(Arc::clone(&log));
    let (addr, shutdown) = common::serve(app).await;
    (addr, log, shutdown)
}

fn spec(method: HttpMethod, url: String) -> HttpRequestSpec {
    HttpRequestSpec {
        method,
        url,
        headers: Vec::new(),
        body: None,
        expected_statuses: Vec::new(),
        idempotency_key: None,
    }
}

fn caller(allow_hosts: &[String]) -> HttpCaller {
    HttpCaller::new(allow_hosts.to_vec(), client())
}

#[tokio::test]
async fn a_call_sends_its_method_headers_body_and_idempotency_key() {
    let (addr, log, shutdown) = server().await;
    let caller = caller(&["127.0.0.1".to_owned()]);
    let mut request = spec(HttpMethod::Post, format!("http://{addr}/status/202"));
    request.headers = vec![
        (
            "Authorization".to_owned(),
            HttpHeaderValue::Secret(Secret::new(TOKEN)),
        ),
        (
            "X-Vigil-Incident".to_owned(),
            HttpHeaderValue::Plain("inc-7".to_owned()),
        ),
    ];
    request.body = Some(json!({ "action": "drain", "replicas": 0 }));
    request.idempotency_key = Some("inc-7-step-2".to_owned());

    let outcome = caller.call(&request).await.unwrap();
    assert_eq!(outcome.status, 202);
    // The answer echoed the token; the outcome shows it scrubbed.
    assert!(
        outcome.excerpt.contains("authorization=<redacted>"),
        "{outcome:?}"
    );
    assert!(!outcome.excerpt.contains("tok-9c4e1f07aa"), "{outcome:?}");

    let seen = log.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    let seen = &seen[0];
    assert_eq!(seen.method, Method::POST);
    assert_eq!(seen.path, "status/202");
    assert_eq!(seen.headers["authorization"], TOKEN);
    assert_eq!(seen.headers["x-vigil-incident"], "inc-7");
    assert_eq!(seen.headers["idempotency-key"], "inc-7-step-2");
    assert_eq!(seen.headers["content-type"], "application/json");
    let body: Value = serde_json::from_slice(&seen.body).unwrap();
    assert_eq!(body, json!({ "action": "drain", "replicas": 0 }));
    shutdown.cancel();
}

#[tokio::test]
async fn only_expected_statuses_succeed() {
    let (addr, _log, shutdown) = server().await;
    let caller = caller(&["127.0.0.1".to_owned()]);

    let mut request = spec(HttpMethod::Delete, format!("http://{addr}/status/204"));
    let outcome = caller.call(&request).await.unwrap();
    assert_eq!(
        outcome,
        HttpCallOutcome {
            status: 204,
            excerpt: String::new()
        }
    );

    // A listed status outside 2xx counts, and 2xx does not once a list is given.
    request.url = format!("http://{addr}/status/409");
    request.expected_statuses = vec![200, 409];
    assert_eq!(caller.call(&request).await.unwrap().status, 409);
    request.expected_statuses = vec![200];
    request.url = format!("http://{addr}/status/201");
    let error = caller.call(&request).await.unwrap_err();
    assert!(
        matches!(&error, ConnectorError::Status { status: 201, excerpt, .. }
            if excerpt.starts_with("answered 201 Created")),
        "{error:?}"
    );

    request.expected_statuses = Vec::new();
    request.url = format!("http://{addr}/status/500");
    let error = caller.call(&request).await.unwrap_err();
    assert_eq!(error.status(), Some(500));
    assert!(
        error.to_string().starts_with(&format!(
            "`http action` answered http 500 (`http://{addr}/status/500`): answered 500"
        )),
        "{error}"
    );
    shutdown.cancel();
}

#[tokio::test]
async fn hosts_off_the_allow_list_are_refused_before_any_request() {
    let (addr, log, shutdown) = server().await;
    let port = addr.port();
    let url = format!("http://127.0.0.1:{port}/status/200");

    let error = caller(&["hooks.example.com".to_owned()])
        .call(&spec(HttpMethod::Post, url.clone()))
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        format!("host `127.0.0.1:{port}` is not on `actions.http.allow_hosts`")
    );
    // The entry's port must match when it has one.
    let other_port = port.wrapping_add(1);
    let error = caller(&[format!("127.0.0.1:{other_port}")])
        .call(&spec(HttpMethod::Get, url.clone()))
        .await
        .unwrap_err();
    assert!(
        matches!(error, ConnectorError::HostNotAllowed { .. }),
        "{error:?}"
    );
    let error = caller(&["127.0.0.1".to_owned()])
        .call(&spec(HttpMethod::Get, "file:///etc/passwd".to_owned()))
        .await
        .unwrap_err();
    assert!(
        matches!(error, ConnectorError::UnsupportedScheme { .. }),
        "{error:?}"
    );
    assert!(log.lock().unwrap().is_empty(), "nothing was sent");

    // Host names compare without case, and a matching port admits the call.
    let caller_by_name = caller(&[format!("LocalHost:{port}")]);
    let by_name = spec(
        HttpMethod::Get,
        format!("http://localhost:{port}/status/200"),
    );
    assert_eq!(caller_by_name.call(&by_name).await.unwrap().status, 200);
    assert_eq!(log.lock().unwrap().len(), 1);
    shutdown.cancel();
}

#[tokio::test]
async fn secrets_in_the_url_and_headers_never_show_in_errors() {
    let (addr, _log, shutdown) = server().await;
    let caller = caller(&["127.0.0.1".to_owned()]);
    let mut request = spec(
        HttpMethod::Put,
        format!("http://admin:pw-5a1e@{addr}/status/503?token=q-77f3"),
    );
    request.headers = vec![(
        "Authorization".to_owned(),
        HttpHeaderValue::Secret(Secret::new(TOKEN)),
    )];
    let error = caller.call(&request).await.unwrap_err();
    assert_eq!(error.status(), Some(503));
    let shown = format!("{error} {error:?} {request:?}");
    // reqwest sends the URL's credentials as `Basic YWRtaW46...`, which the server echoed.
    for secret in [
        "pw-5a1e",
        "YWRtaW46cHctNWExZQ==",
        "q-77f3",
        "tok-9c4e1f07aa",
    ] {
        assert!(!shown.contains(secret), "{secret} in {shown}");
    }
    assert!(shown.contains("authorization=<redacted>"), "{shown}");
    shutdown.cancel();
}

#[tokio::test]
async fn answers_past_the_size_limit_are_refused() {
    let (addr, _log, shutdown) = server().await;
    let error = caller(&["127.0.0.1".to_owned()])
        .call(&spec(HttpMethod::Get, format!("http://{addr}/large")))
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            ConnectorError::BodyTooLarge {
                limit_bytes: 262_144,
                ..
            }
        ),
        "{error:?}"
    );
    shutdown.cancel();
}
