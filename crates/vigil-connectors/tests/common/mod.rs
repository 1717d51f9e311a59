//! Shared helpers for the connector tests: a simulated LiteLLM gateway and a pager sink on
//! loopback, an axum app served on loopback, and tiny raw TCP servers that misbehave on
//! purpose.

#![allow(
    dead_code,
    reason = "each test binary uses a different subset of these helpers"
)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use vigil_sim::{GatewayConfig, SimGateway, SimKey, SimModel};

pub const MASTER_KEY: &str = "sk-master-4c1d9b77e0";
pub const ALICE_KEY: &str = "sk-alice-runaway-01";

pub fn gateway_config() -> GatewayConfig {
    GatewayConfig {
        master_key: MASTER_KEY.to_owned(),
        keys: vec![SimKey {
            raw_key: ALICE_KEY.to_owned(),
            alias: "alice-batch".to_owned(),
            team: "research".to_owned(),
            user_id: "alice".to_owned(),
            max_budget_usd: None,
        }],
        models: vec![SimModel {
            name: "gpt-4o".to_owned(),
            provider: "openai".to_owned(),
            input_cost_per_token: 2.5e-6,
            output_cost_per_token: 1e-5,
        }],
        ignore_blocks: false,
        require_auth_for_metrics: true,
    }
}

pub async fn gateway() -> (SimGateway, CancellationToken) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let shutdown = CancellationToken::new();
    let gateway = SimGateway::start(listener, gateway_config(), shutdown.clone())
        .await
        .expect("start gateway");
    (gateway, shutdown)
}

pub fn client() -> reqwest::Client {
    vigil_connectors::install_crypto_provider();
    vigil_connectors::http::client(Duration::from_secs(5)).expect("build client")
}

/// A server that accepts connections and never answers; returns its base URL.
/// Serves `app` on a loopback port until the returned token is cancelled.
pub async fn serve(app: axum::Router) -> (SocketAddr, CancellationToken) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await
            .expect("serve");
    });
    (addr, shutdown)
}

pub async fn silent_server(shutdown: CancellationToken) -> String {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let url = format!("http://{}", listener.local_addr().expect("local addr"));
    tokio::spawn(async move {
        let mut held = Vec::new();
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) if held.len() < 64 => held.push(stream),
                    _ => break,
                },
            }
        }
    });
    url
}

/// A server answering every request with `307` to `location`; returns its base URL and a
/// count of the requests it saw.
pub async fn redirecting_server(
    location: String,
    shutdown: CancellationToken,
) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let url = format!("http://{}", listener.local_addr().expect("local addr"));
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&seen);
    tokio::spawn(async move {
        for _ in 0..64 {
            let accepted = tokio::select! {
                () = shutdown.cancelled() => break,
                accepted = listener.accept() => accepted,
            };
            let Ok((mut stream, _)) = accepted else { break };
            let counter = Arc::clone(&counter);
            let location = location.clone();
            tokio::spawn(async move {
                let mut buffer = [0_u8; 4096];
                // One request per connection is enough for these tests.
                if stream.read(&mut buffer).await.unwrap_or(0) == 0 {
                    return;
                }
                counter.fetch_add(1, Ordering::SeqCst);
                let answer = format!(
                    "HTTP/1.1 307 Temporary Redirect\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
                let _written = stream.write_all(answer.as_bytes()).await;
            });
        }
    });
    (url, seen)
}
