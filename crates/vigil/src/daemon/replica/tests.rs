//! A replica's lease view and what it answers on `/readyz` and the admin API's routes.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::get;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;
use vigil_ledger::replication::LeaseHolder;

use super::LeaseView;
use super::status::{AdminSlot, Gate, ReplicaStatus, admin_gate};

#[tokio::test(start_paused = true)]
async fn an_action_waits_for_a_renewal_and_a_lease_too_short_ends_the_term() {
    let lost = CancellationToken::new();
    let lease = Arc::new(LeaseView::new(
        7,
        Instant::now() + Duration::from_secs(12),
        lost.clone(),
    ));
    assert_eq!(lease.epoch(), 7);
    // 12 s left: a 10 s call may go.
    assert!(
        lease
            .ensure(Duration::from_secs(10), Duration::from_secs(10))
            .await
    );
    tokio::time::advance(Duration::from_secs(4)).await;
    // 8 s left: not enough for 10 s, and no renewal comes within the wait.
    assert!(
        !lease
            .ensure(Duration::from_secs(10), Duration::from_secs(2))
            .await
    );
    assert!(lost.is_cancelled(), "the term ends");
    assert_eq!(lease.remaining(), Duration::ZERO);
    assert!(!lease.ensure(Duration::ZERO, Duration::from_secs(1)).await);
}

#[tokio::test(start_paused = true)]
async fn a_lease_that_ran_out_has_nothing_left() {
    let lease = LeaseView::new(
        1,
        Instant::now() + Duration::from_secs(3),
        CancellationToken::new(),
    );
    tokio::time::advance(Duration::from_secs(5)).await;
    assert_eq!(lease.remaining(), Duration::ZERO);
    assert!(
        !lease.is_lost(),
        "only the renewer or an action ends the term"
    );
}

fn request(path: &str) -> Request<Body> {
    Request::builder()
        .method("POST")
        .uri(path)
        .body(Body::empty())
        .unwrap()
}

async fn body_json(response: axum::response::Response) -> serde_json::Value {
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test]
async fn a_standby_says_where_the_leader_is_and_a_leader_serves_its_admin_api() {
    let status = Arc::new(ReplicaStatus::new(
        "r2".to_owned(),
        "http://r2:9464".to_owned(),
    ));
    let slot = AdminSlot::default();
    let gate = Arc::new(Gate {
        slot: Arc::clone(&slot),
        status: Arc::clone(&status),
    });
    let router = Router::new()
        .route("/v1/admin/{*rest}", axum::routing::any(admin_gate))
        .with_state(gate);

    // Nobody known to lead yet.
    let response = router
        .clone()
        .oneshot(request("/v1/admin/human"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body_json(response).await["leader"], serde_json::Value::Null);

    // Another replica leads.
    status.observed(Ok(Some(r1_holds(Duration::from_secs(9)))));
    let response = router
        .clone()
        .oneshot(request("/v1/admin/human"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["vigil-leader"], "http://r1:9464");
    assert_eq!(response.headers()["retry-after"], "1");
    let body = body_json(response).await;
    assert_eq!(body["leader"]["replica"], "r1");
    let (code, ready) = status.readiness();
    assert_eq!(code, StatusCode::OK, "a standby is ready: it takes pushes");
    assert_eq!(ready["role"], "standby");
    assert_eq!(ready["epoch"], 4);
    assert_eq!(ready["leader"]["url"], "http://r1:9464");

    // An expired lease names no leader.
    status.observed(Ok(Some(r1_holds(Duration::ZERO))));
    assert_eq!(status.readiness().1["leader"], serde_json::Value::Null);

    // This replica leads: its admin API answers.
    status.leading(5);
    *slot.write().unwrap() = Some(
        Router::new()
            .route(
                "/v1/admin/human",
                axum::routing::post(|| async { "served" }),
            )
            .route("/v1/admin/whoami", get(|| async { "me" })),
    );
    let response = router
        .clone()
        .oneshot(request("/v1/admin/human"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let (_, ready) = status.readiness();
    assert_eq!(ready["role"], "leader");
    assert_eq!(ready["leader"]["replica"], "r2");
    assert_eq!(ready["epoch"], 5);

    // The database stops answering: not ready, and why.
    status.standing_by();
    *slot.write().unwrap() = None;
    status.observed(Err("connection refused".to_owned()));
    let (code, ready) = status.readiness();
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(ready["problem"], "connection refused");
}

/// Replica r1's lease of epoch 4, running for `runs_for` more.
fn r1_holds(runs_for: Duration) -> LeaseHolder {
    LeaseHolder {
        epoch: 4,
        replica: "r1".to_owned(),
        url: "http://r1:9464".to_owned(),
        runs_for,
    }
}

#[tokio::test]
async fn a_replica_hands_the_console_to_the_leading_term_and_a_standby_links_to_the_leader() {
    let status = Arc::new(ReplicaStatus::new(
        "r2".to_owned(),
        "http://r2:9464".to_owned(),
    ));
    let slot = AdminSlot::default();
    let gate = Gate {
        slot: Arc::clone(&slot),
        status: Arc::clone(&status),
    };
    let router = crate::daemon::http::replicated_router(
        Arc::new(crate::daemon::Telemetry::default()),
        Arc::clone(&status),
        None,
        Some(gate),
        true,
    );
    let body_text = |response: axum::response::Response| async move {
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    };
    // The description lists the console's routes, as the gate serves them.
    let openapi = body_text(
        router
            .clone()
            .oneshot(get_request("/v1/openapi.json"))
            .await
            .unwrap(),
    )
    .await;
    assert!(openapi.contains("\"/console/incidents\""), "{openapi}");
    // A standby: a page that says where the console answers, the leader's URL escaped.
    status.observed(Ok(Some(r1_holds(Duration::from_secs(9)))));
    let response = router
        .clone()
        .oneshot(get_request("/console/incidents"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["vigil-leader"], "http://r1:9464");
    assert!(response.headers().contains_key("content-security-policy"));
    let page = body_text(response).await;
    assert!(
        page.contains("<a href=\"http://r1:9464/console/incidents\">"),
        "{page}"
    );
    // The leading term's console answers through the gate.
    status.leading(5);
    *slot.write().unwrap() = Some(
        Router::new()
            .route("/", get(|| async { "root" }))
            .route("/console/incidents", get(|| async { "incidents" })),
    );
    for (path, answer) in [("/", "root"), ("/console/incidents", "incidents")] {
        let response = router.clone().oneshot(get_request(path)).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert_eq!(body_text(response).await, answer);
    }
}

fn get_request(path: &str) -> Request<Body> {
    Request::builder().uri(path).body(Body::empty()).unwrap()
}
