//! Loopback tests of the simulated gateway's admin API: master-key auth, LiteLLM's error
//! bodies, key info and updates, and a gateway that accepts blocks without enforcing them.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "tests fail loudly by design"
)]

mod common;

use common::*;
use serde_json::{Value, json};
use vigil_sim::SimGateway;

#[tokio::test]
async fn a_gateway_that_ignores_blocks_accepts_the_call_but_keeps_serving() {
    let (gateway, shutdown) = start(vigil_sim::GatewayConfig {
        ignore_blocks: true,
        ..config()
    })
    .await;
    let client = client();
    let (status, body) = admin(&client, &gateway, "/key/block", json!({"key": ALICE_KEY})).await;
    assert_eq!((status, &body["blocked"]), (200, &json!(true)));
    assert!(gateway.is_blocked(ALICE_KEY));
    assert_eq!(
        chat(&client, &gateway, ALICE_KEY, "still here", 10).await.0,
        200
    );
    shutdown.cancel();
}

#[tokio::test]
async fn the_admin_api_admits_only_the_master_key() {
    let (gateway, shutdown) = start(config()).await;
    let client = client();
    let url = format!("{}/key/block", gateway.base_url());
    let body = json!({"key": ALICE_KEY});

    let missing = client.post(&url).json(&body).send().await.unwrap();
    assert_eq!(missing.status().as_u16(), 401);
    let missing: Value = missing.json().await.unwrap();
    assert_eq!(
        missing["error"]["message"],
        "Authentication Error, No api key passed in."
    );
    assert_eq!(missing["error"]["code"], "401");

    let virtual_key = client
        .post(&url)
        .bearer_auth(BOB_KEY)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(virtual_key.status().as_u16(), 401);

    let wrong = client
        .post(&url)
        .bearer_auth("sk-not-the-master")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status().as_u16(), 401);
    let wrong: Value = wrong.json().await.unwrap();
    assert_eq!(wrong["error"]["type"], "token_not_found_in_db");
    assert!(
        !wrong.to_string().contains("sk-not-the-master"),
        "the key is abbreviated: {wrong}"
    );

    let info = client
        .get(format!("{}/key/info?key={ALICE_KEY}", gateway.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(info.status().as_u16(), 401);

    assert!(!gateway.is_blocked(ALICE_KEY));
    let statuses: Vec<u16> = gateway
        .admin_calls()
        .iter()
        .map(|call| call.status)
        .collect();
    assert_eq!(statuses, [401, 401, 401, 401]);
    shutdown.cancel();
}

#[tokio::test]
async fn unknown_and_malformed_admin_requests_answer_like_litellm() {
    let (gateway, shutdown) = start(config()).await;
    let client = client();
    let (status, body) = admin(&client, &gateway, "/key/block", json!({"key": "sk-nobody"})).await;
    assert_eq!(status, 404);
    assert_eq!(
        body,
        json!({"error": {
            "message": "Key sk-nobody not found", "type": "bad_request_error", "param": "key", "code": "404",
        }})
    );
    let (status, body) = admin(
        &client,
        &gateway,
        "/key/unblock",
        json!({"key": "not-a-key"}),
    )
    .await;
    assert_eq!(
        (status, &body["error"]["message"]),
        (400, &json!("Invalid key format."))
    );
    let (status, body) = admin(
        &client,
        &gateway,
        "/key/block",
        json!({"keys": [ALICE_KEY]}),
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(body["detail"][0]["loc"], json!(["body", "key"]));
    assert_eq!(body["detail"][0]["msg"], "Field required");

    let malformed = client
        .post(format!("{}/key/block", gateway.base_url()))
        .bearer_auth(MASTER_KEY)
        .header("content-type", "application/json")
        .body("{\"key\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status().as_u16(), 422);
    let malformed: Value = malformed.json().await.unwrap();
    assert_eq!(malformed["detail"][0]["type"], "json_invalid");

    let info = client
        .get(format!("{}/key/info?key=sk-nobody", gateway.base_url()))
        .bearer_auth(MASTER_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(info.status().as_u16(), 404);
    let info: Value = info.json().await.unwrap();
    assert_eq!(info["error"]["message"], "Key not found in database");

    let (status, _) = admin(
        &client,
        &gateway,
        "/key/update",
        json!({"key": "sk-nobody", "max_budget": 1.0}),
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = admin(
        &client,
        &gateway,
        "/key/update",
        json!({"key": ALICE_KEY, "rpm_limit": "many"}),
    )
    .await;
    assert_eq!(status, 422);
    shutdown.cancel();
}

#[tokio::test]
async fn key_info_and_update_round_trip_and_limits_are_enforced() {
    let (gateway, shutdown) = start(config()).await;
    let client = client();
    let alice = SimGateway::hashed(ALICE_KEY);
    let info: Value = client
        .get(format!("{}/key/info?key={alice}", gateway.base_url()))
        .bearer_auth(MASTER_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["key"], alice);
    assert_eq!(info["info"]["key_alias"], "alice-app");
    assert_eq!(info["info"]["key_name"], "sk-...0001");
    assert_eq!(info["info"]["blocked"], Value::Null);
    assert!(
        info["info"].get("token").is_none(),
        "LiteLLM drops the token from /key/info"
    );

    let (status, body) = admin(
        &client,
        &gateway,
        "/key/update",
        json!({"key": ALICE_KEY, "max_budget": 0.0, "rpm_limit": 100}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        (&body["token"], &body["max_budget"], &body["rpm_limit"]),
        (&json!(alice), &json!(0.0), &json!(100))
    );
    let (status, body) = chat(&client, &gateway, ALICE_KEY, "over budget", 10).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["type"], "budget_exceeded");

    let (status, _) = admin(
        &client,
        &gateway,
        "/key/update",
        json!({"key": ALICE_KEY, "max_budget": 100.0, "rpm_limit": 1}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(chat(&client, &gateway, ALICE_KEY, "first", 10).await.0, 200);
    assert_eq!(
        chat(&client, &gateway, ALICE_KEY, "second", 10).await.0,
        429
    );

    let (status, body) = admin(
        &client,
        &gateway,
        "/key/update",
        json!({"key": ALICE_KEY, "blocked": true}),
    )
    .await;
    assert_eq!((status, &body["blocked"]), (200, &json!(true)));
    assert!(gateway.is_blocked(ALICE_KEY));
    shutdown.cancel();
}

#[tokio::test]
async fn invalid_configurations_are_refused() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let bad_master = vigil_sim::GatewayConfig {
        master_key: "master".to_owned(),
        ..config()
    };
    let error = SimGateway::start(
        listener,
        bad_master,
        tokio_util::sync::CancellationToken::new(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(error, vigil_sim::SimError::InvalidConfig(_)),
        "{error}"
    );
    assert!(
        !format!("{:?}", config()).contains(MASTER_KEY),
        "Debug redacts keys"
    );
}
