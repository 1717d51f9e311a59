//! Loopback tests of the LiteLLM admin client against the simulated gateway.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "tests fail loudly by design"
)]

mod common;

use common::*;
use vigil_connectors::ConnectorError;
use vigil_connectors::litellm::{AdminClient, KeyState, KeyUpdate, Limit};
use vigil_connectors::secret::Secret;
use vigil_sim::SimGateway;

fn admin(gateway: &SimGateway, master_key: &str) -> AdminClient {
    AdminClient::new(
        format!("{}/", gateway.base_url()),
        Secret::new(master_key),
        client(),
    )
}

#[tokio::test]
async fn block_unblock_and_info_round_trip() {
    let (gateway, shutdown) = gateway().await;
    let admin = admin(&gateway, MASTER_KEY);
    let token = SimGateway::hashed(ALICE_KEY);
    let alice = |blocked| KeyState {
        token: token.clone(),
        key_alias: Some("alice-batch".to_owned()),
        blocked,
        team_id: Some("research".to_owned()),
        max_budget: None,
        rpm_limit: None,
        tpm_limit: None,
    };

    assert_eq!(admin.key_info(ALICE_KEY).await.unwrap(), alice(false));
    assert_eq!(admin.block_key(&token).await.unwrap(), alice(true));
    assert!(gateway.is_blocked(ALICE_KEY));
    assert_eq!(admin.key_info(&token).await.unwrap(), alice(true));
    assert_eq!(admin.unblock_key(ALICE_KEY).await.unwrap(), alice(false));
    assert!(!gateway.is_blocked(ALICE_KEY));

    let update = KeyUpdate {
        key: token.clone(),
        max_budget: Some(Limit::At(1.0)),
        rpm_limit: Some(Limit::At(30.0)),
        blocked: Some(true),
        ..KeyUpdate::default()
    };
    let limited = KeyState {
        max_budget: Some(1.0),
        rpm_limit: Some(30.0),
        ..alice(true)
    };
    assert_eq!(admin.update_key(&update).await.unwrap(), limited);
    assert!(gateway.is_blocked(&token));
    // `Limit::Unlimited` removes a limit; what is not sent stays.
    let update = KeyUpdate {
        key: token.clone(),
        rpm_limit: Some(Limit::Unlimited),
        ..KeyUpdate::default()
    };
    let unlimited = KeyState {
        max_budget: Some(1.0),
        ..alice(true)
    };
    assert_eq!(admin.update_key(&update).await.unwrap(), unlimited);
    assert_eq!(admin.key_info(ALICE_KEY).await.unwrap(), unlimited);

    let calls: Vec<(String, u16)> = gateway
        .admin_calls()
        .into_iter()
        .map(|call| (call.path, call.status))
        .collect();
    let paths: Vec<(&str, u16)> = calls
        .iter()
        .map(|(path, status)| (path.as_str(), *status))
        .collect();
    assert_eq!(
        paths,
        [
            ("/key/info", 200),
            ("/key/block", 200),
            ("/key/info", 200),
            ("/key/unblock", 200),
            ("/key/update", 200),
            ("/key/update", 200),
            ("/key/info", 200)
        ]
    );
    shutdown.cancel();
}

#[tokio::test]
async fn refusals_carry_the_status_and_litellms_message() {
    let (gateway, shutdown) = gateway().await;
    let admin = admin(&gateway, MASTER_KEY);

    let error = admin.block_key("sk-nobody").await.unwrap_err();
    let ConnectorError::Api {
        operation,
        status,
        message,
    } = &error
    else {
        panic!("{error:?}")
    };
    assert_eq!(
        (*operation, *status, message.as_str()),
        ("block_key", 404, "Key sk-nobody not found")
    );
    assert_eq!(
        error.to_string(),
        "litellm `block_key` answered http 404: Key sk-nobody not found"
    );

    let error = admin.key_info(&"0".repeat(64)).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "litellm `key_info` answered http 404: Key not found in database"
    );

    let error = admin.unblock_key("not-a-key").await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "litellm `unblock_key` answered http 400: Invalid key format."
    );

    let update = KeyUpdate {
        key: "sk-nobody".to_owned(),
        rpm_limit: Some(Limit::At(10.0)),
        ..KeyUpdate::default()
    };
    assert_eq!(
        admin.update_key(&update).await.unwrap_err().status(),
        Some(404)
    );
    shutdown.cancel();
}

#[tokio::test]
async fn a_wrong_master_key_is_a_401_that_never_shows_the_key() {
    let (gateway, shutdown) = gateway().await;
    let wrong = "sk-wrong-master-key-0042";
    let admin = admin(&gateway, wrong);
    let error = admin.block_key(ALICE_KEY).await.unwrap_err();
    assert_eq!(error.status(), Some(401));
    let shown = format!("{error} {error:?} {admin:?}");
    assert!(
        shown.contains("Invalid proxy server token passed"),
        "{shown}"
    );
    assert!(!shown.contains(wrong), "{shown}");
    assert!(!gateway.is_blocked(ALICE_KEY));
    shutdown.cancel();
}

#[tokio::test]
async fn an_unreachable_gateway_is_a_transport_error() {
    let port = {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap().port()
    };
    let admin = AdminClient::new(
        format!("http://127.0.0.1:{port}"),
        Secret::new(MASTER_KEY),
        client(),
    );
    let error = admin.key_info(ALICE_KEY).await.unwrap_err();
    assert!(
        matches!(&error, ConnectorError::Transport { url, .. } if url.ends_with("/key/info")),
        "{error:?}"
    );
    assert!(
        !format!("{error:?}").contains(ALICE_KEY),
        "the query is redacted: {error:?}"
    );
}

#[tokio::test]
async fn a_gateway_that_never_answers_times_out() {
    let shutdown = tokio_util::sync::CancellationToken::new();
    let url = silent_server(shutdown.clone()).await;
    let admin = AdminClient::new(url, Secret::new(MASTER_KEY), client())
        .with_timeout(std::time::Duration::from_millis(200));
    let error = admin.block_key(ALICE_KEY).await.unwrap_err();
    assert!(
        matches!(&error, ConnectorError::Timeout { timeout, .. } if timeout.as_millis() == 200),
        "{error:?}"
    );
    shutdown.cancel();
}
