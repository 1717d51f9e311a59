//! `vigil serve`'s routes: `/healthz`, `/readyz`, `/metrics`, `/v1/openapi.json` (the
//! description of exactly the routes served, `openapi.rs`), and the pushed-events intake and
//! the admin API when they are on, assembled into one router with the layers every route
//! runs inside (refusal accounting; the push limit on the intake routes). `server/` serves it.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::middleware;
use axum::response::IntoResponse;
use axum::routing::get;

use super::server::refusals::account;
use super::server::{PushLimit, limit_pushes};
use super::telemetry::Telemetry;

/// The routes that are always on, as the startup line lists them.
pub(super) const ALWAYS_ON_ROUTES: &[(&str, &str)] = &[
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", super::openapi::PATH),
];

/// The routes served with the intake, the admin API and the console on or off, in the
/// startup line's order.
pub(super) fn served_routes(
    intake: bool,
    admin: bool,
    console: bool,
) -> Vec<(&'static str, &'static str)> {
    let mut routes = ALWAYS_ON_ROUTES.to_vec();
    if intake {
        routes.extend_from_slice(super::intake::ROUTES);
    }
    if admin {
        routes.extend_from_slice(super::admin::ROUTES);
    }
    if console {
        routes.extend(
            super::console::ROUTES
                .iter()
                .map(|(method, path, _)| (*method, *path)),
        );
    }
    routes
}

/// `GET /v1/openapi.json`, answering with the description of `routes`, rendered once.
fn openapi_router(routes: &[(&str, &str)]) -> Router {
    let body = Arc::new(super::openapi::document(routes).to_string());
    Router::new()
        .route(super::openapi::PATH, get(openapi))
        .with_state(body)
}

async fn openapi(State(body): State<Arc<String>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        body.as_str().to_owned(),
    )
}

/// The daemon's router: the health routes, then `intake` behind `push_limit`, then `admin`
/// and the `console`.
pub(super) fn router(
    telemetry: Arc<Telemetry>,
    intake: Option<(Router, PushLimit)>,
    admin: Option<Router>,
    console: Option<Router>,
) -> Router {
    let routes = served_routes(intake.is_some(), admin.is_some(), console.is_some());
    let mut router = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(Arc::clone(&telemetry))
        .merge(openapi_router(&routes));
    if let Some((intake, push_limit)) = intake {
        router = router
            .merge(intake.route_layer(middleware::from_fn_with_state(push_limit, limit_pushes)));
    }
    if let Some(admin) = admin {
        router = router.merge(admin);
    }
    if let Some(console) = console {
        router = router.merge(console);
    }
    // `layer` wraps every route (and the fallback) after routing, so the accounting sees
    // which route matched.
    router.layer(middleware::from_fn_with_state(telemetry, account))
}

/// A replica's router (`replica/`): the health routes with `/readyz` saying who leads, the
/// intake (into the inbox) behind `push_limit`, and the admin API (and the `console`, when
/// configured) behind the replica's gate, which hands them to the leading term.
pub(super) fn replicated_router(
    telemetry: Arc<Telemetry>,
    status: Arc<super::replica::ReplicaStatus>,
    intake: Option<(Router, PushLimit)>,
    gate: Option<super::replica::status::Gate>,
    console: bool,
) -> Router {
    let health = Router::new()
        .route("/readyz", get(replica_readyz))
        .with_state(status);
    // The gate answers the admin routes (to the leader, or 503 while none leads).
    let console = console && gate.is_some();
    let routes = served_routes(intake.is_some(), gate.is_some(), console);
    let mut router = Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .with_state(Arc::clone(&telemetry))
        .merge(health)
        .merge(openapi_router(&routes));
    if let Some((intake, push_limit)) = intake {
        router = router
            .merge(intake.route_layer(middleware::from_fn_with_state(push_limit, limit_pushes)));
    }
    if let Some(gate) = gate {
        let mut gated = Router::new().route(
            "/v1/admin/{*rest}",
            axum::routing::any(super::replica::status::admin_gate),
        );
        if console {
            gated = gated
                .route("/", axum::routing::any(super::replica::status::admin_gate))
                .route(
                    "/console/{*rest}",
                    axum::routing::any(super::replica::status::admin_gate),
                );
        }
        router = router.merge(gated.with_state(Arc::new(gate)));
    }
    router.layer(middleware::from_fn_with_state(telemetry, account))
}

async fn replica_readyz(
    State(status): State<Arc<super::replica::ReplicaStatus>>,
) -> impl IntoResponse {
    let (code, body) = status.readiness();
    (code, axum::Json(body))
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(telemetry): State<Arc<Telemetry>>) -> impl IntoResponse {
    let reasons = telemetry.not_ready_reasons();
    if reasons.is_empty() {
        (StatusCode::OK, "ready\n".to_owned())
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready:\n{}\n", reasons.join("\n")),
        )
    }
}

async fn metrics(State(telemetry): State<Arc<Telemetry>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        telemetry.render(),
    )
}

#[cfg(test)]
mod tests {
    //! The route lists the startup line prints are the routes served.

    use axum::body::Body;
    use axum::http::Request;
    use tokio::sync::mpsc;
    use tower::ServiceExt as _;
    use vigil_connectors::secret::Secret;

    use super::*;
    use crate::daemon::{admin, intake};

    #[tokio::test]
    async fn every_listed_route_is_routed_with_its_method() {
        let (pushes, _pushes_rx) = mpsc::channel(1);
        let intake = intake::router(intake::IntakeState {
            sender: intake::PushSink::Engine(pushes),
            ack_wait: std::time::Duration::from_millis(1),
            bearer: Some(Secret::new("intake-token")),
            max_body_bytes: 1024,
        });
        let (checkpoints, _checkpoints_rx) = mpsc::channel(1);
        let (instructions, _instructions_rx) = mpsc::channel(1);
        let (proposals, _proposals_rx) = mpsc::channel(1);
        let authenticator = crate::identity::Authenticator::with_tokens(
            crate::identity::tokens::TokenDirectory::default(),
            crate::identity::RoleMapping::default(),
        );
        let admin = admin::router(admin::AdminState {
            authenticator: Arc::new(authenticator),
            limits: vigil_core::people::InstructionLimits {
                max_reason_chars: 100,
            },
            checkpoints,
            instructions,
            proposals,
            telemetry: Arc::new(Telemetry::default()),
            failures: Arc::new(admin::FailureLog::default()),
            clock: crate::daemon::Clock::system(),
            ask: None,
        });
        let router = router(
            Arc::new(Telemetry::default()),
            Some((intake, PushLimit::new(1, 1024))),
            Some(admin),
            None,
        );
        for (method, path) in &served_routes(true, true, false) {
            let request = Request::builder()
                .method(*method)
                .uri(*path)
                .body(Body::empty())
                .unwrap();
            let status = router.clone().oneshot(request).await.unwrap().status();
            assert!(
                status != StatusCode::NOT_FOUND && status != StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path}: {status}"
            );
        }
        // And an unlisted path is not.
        let request = Request::builder()
            .uri("/v1/push/unlisted")
            .body(Body::empty())
            .unwrap();
        let status = router.oneshot(request).await.unwrap().status();
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
}
