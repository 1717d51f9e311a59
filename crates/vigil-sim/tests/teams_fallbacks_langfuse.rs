//! Loopback tests of the raw shapes of the gateway's team and fallback routes and of the
//! Langfuse fake: bodies, validation details, auth answers, and state the tests can inspect.

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
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use vigil_sim::{FakePromptVersion, LangfuseFake, SimError};

#[tokio::test]
async fn team_routes_answer_with_the_team_row_and_fastapi_details() {
    let (gateway, shutdown) = start(config()).await;
    let client = client();

    let (status, body) = admin(
        &client,
        &gateway,
        "/team/block",
        json!({"team_id": "search"}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        (&body["team_id"], &body["blocked"]),
        (&json!("search"), &json!(true))
    );
    for field in [
        "members_with_roles",
        "spend",
        "models",
        "created_at",
        "updated_at",
    ] {
        assert!(body.get(field).is_some(), "{field} missing from {body}");
    }
    assert_eq!(gateway.is_team_blocked("search"), Some(true));
    assert_eq!(gateway.is_team_blocked("nobody"), None);
    // Bob has no team; the block does not touch him.
    assert_eq!(chat(&client, &gateway, BOB_KEY, "hi", 5).await.0, 200);
    let (status, body) = chat(&client, &gateway, ALICE_KEY, "hi", 5).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["type"], "auth_error");

    let (status, body) = admin(&client, &gateway, "/team/unblock", json!({})).await;
    assert_eq!(status, 422);
    assert_eq!(body["detail"][0]["loc"], json!(["body", "team_id"]));
    assert_eq!(body["detail"][0]["msg"], "Field required");
    let (status, body) = admin(&client, &gateway, "/team/unblock", json!({"team_id": "x"})).await;
    assert_eq!(status, 404);
    assert_eq!(
        body,
        json!({"detail": {"error": "Team not found, passed team_id=x"}})
    );
    shutdown.cancel();
}

#[tokio::test]
async fn a_gateway_that_ignores_blocks_keeps_serving_a_blocked_team() {
    let (gateway, shutdown) = start(vigil_sim::GatewayConfig {
        ignore_blocks: true,
        ..config()
    })
    .await;
    let client = client();
    let (status, _) = admin(
        &client,
        &gateway,
        "/team/block",
        json!({"team_id": "search"}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(chat(&client, &gateway, ALICE_KEY, "hi", 5).await.0, 200);
    shutdown.cancel();
}

#[tokio::test]
async fn fallback_routes_validate_like_pydantic_and_keep_types_apart() {
    let (gateway, shutdown) = start(config()).await;
    let client = client();

    let (status, body) = admin(
        &client,
        &gateway,
        "/fallback",
        json!({"model": " ", "fallback_models": ["a", "a"], "fallback_type": "weekly"}),
    )
    .await;
    assert_eq!(status, 422);
    let messages: Vec<&str> = body["detail"]
        .as_array()
        .unwrap()
        .iter()
        .map(|detail| detail["msg"].as_str().unwrap())
        .collect();
    assert_eq!(
        messages,
        [
            "Value error, model must be a non-empty string",
            "Value error, fallback_models must not contain duplicates",
            "Input should be 'general', 'context_window' or 'content_policy'",
        ]
    );

    // Fallbacks of another type are not the general ones.
    let response = client
        .delete(format!(
            "{}/fallback/{MODEL}?fallback_type=context_window",
            gateway.base_url()
        ))
        .bearer_auth(MASTER_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["detail"]["error"],
        format!("No context_window fallbacks configured for model '{MODEL}'")
    );
    assert_eq!(gateway.fallbacks(MODEL), None);
    assert_eq!(gateway.fallbacks_of_type("context_window", MODEL), None);
    shutdown.cancel();
}

async fn langfuse(
    prompts: Vec<FakePromptVersion>,
) -> Result<(LangfuseFake, CancellationToken), SimError> {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let shutdown = CancellationToken::new();
    let fake =
        LangfuseFake::start(listener, "pk-lf-1", "sk-lf-1", prompts, shutdown.clone()).await?;
    Ok((fake, shutdown))
}

fn prompt(version: u32, labels: &[&str]) -> FakePromptVersion {
    FakePromptVersion {
        name: "greet".to_owned(),
        version,
        prompt: format!("Hello v{version}"),
        labels: labels.iter().map(|label| (*label).to_owned()).collect(),
    }
}

#[tokio::test]
async fn the_langfuse_fake_answers_auth_and_validation_failures_as_langfuse_does() {
    let (fake, shutdown) = langfuse(vec![prompt(1, &["production"]), prompt(2, &[])])
        .await
        .unwrap();
    let client = client();
    let url = format!("{}/api/public/v2/prompts/greet", fake.url());

    let answer = |response: reqwest::Response| async move {
        let status = response.status().as_u16();
        (status, response.json::<Value>().await.unwrap())
    };
    let ok = answer(
        client
            .get(&url)
            .basic_auth("pk-lf-1", Some("sk-lf-1"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (ok.0, &ok.1["version"], &ok.1["isActive"]),
        (200, &json!(1), &json!(true))
    );
    assert_eq!(ok.1["prompt"], "Hello v1");

    // GET goes through `withMiddlewares`, which names the error class; PATCH does not.
    let unauthorized = answer(client.get(&url).send().await.unwrap()).await;
    assert_eq!(
        unauthorized,
        (
            401,
            json!({"message": "No authorization header", "error": "UnauthorizedError"})
        )
    );
    let patch_url = format!("{url}/versions/2");
    let unauthorized = answer(
        client
            .patch(&patch_url)
            .basic_auth("pk-lf-1", Some("wrong"))
            .json(&json!({"newLabels": ["production"]}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        unauthorized,
        (
            401,
            json!({"message": "Invalid credentials. Confirm that you've configured the correct host."})
        )
    );
    // The public key alone (Bearer) reaches scores, not prompts.
    let forbidden = answer(
        client
            .get(&url)
            .bearer_auth("pk-lf-1")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(forbidden.0, 403);
    assert_eq!(forbidden.1["error"], "ForbiddenError");

    let invalid = answer(
        client
            .patch(&patch_url)
            .basic_auth("pk-lf-1", Some("sk-lf-1"))
            .json(&json!({"newLabels": "production"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(invalid.0, 400);
    assert_eq!(invalid.1["message"], "Invalid request data");
    assert_eq!(invalid.1["error"][0]["path"], json!(["newLabels"]));

    // Nothing above changed a label.
    assert_eq!(fake.version_with_label("greet", "production"), Some(1));
    assert_eq!(fake.version_with_label("greet", "latest"), Some(2));
    assert_eq!(fake.calls().len(), 5);
    shutdown.cancel();
}

#[tokio::test]
async fn a_label_on_two_versions_is_an_invalid_fake() {
    let refused = langfuse(vec![prompt(1, &["production"]), prompt(2, &["production"])]).await;
    let message = refused.err().map(|error| error.to_string());
    assert_eq!(
        message.as_deref(),
        Some("invalid langfuse prompts: label `production` is on two versions of prompt `greet`")
    );
}
