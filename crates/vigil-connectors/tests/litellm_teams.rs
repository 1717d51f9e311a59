//! Loopback tests of the LiteLLM admin client's team and fallback calls against the
//! simulated gateway: blocking a team refuses its keys, fallbacks are set and restored, and
//! every refusal carries LiteLLM's own message.

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
use vigil_connectors::ConnectorError;
use vigil_connectors::litellm::{AdminClient, Fallbacks, TeamState};
use vigil_connectors::secret::Secret;
use vigil_sim::{SimGateway, SimModel};

fn admin(gateway: &SimGateway, master_key: &str) -> AdminClient {
    AdminClient::new(gateway.base_url(), Secret::new(master_key), client())
}

/// The shared gateway with two more models to fall back to.
async fn gateway_with_models() -> (SimGateway, CancellationToken) {
    let mut config = gateway_config();
    for name in ["gpt-4o-mini", "claude-3-haiku"] {
        config.models.push(SimModel {
            name: name.to_owned(),
            provider: "openai".to_owned(),
            input_cost_per_token: 1e-7,
            output_cost_per_token: 4e-7,
        });
    }
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let shutdown = CancellationToken::new();
    let gateway = SimGateway::start(listener, config, shutdown.clone())
        .await
        .unwrap();
    (gateway, shutdown)
}

/// Sends one chat request with `key`; returns the status and the body.
async fn chat(gateway: &SimGateway, key: &str) -> (u16, Value) {
    let response = client()
        .post(format!("{}/chat/completions", gateway.base_url()))
        .bearer_auth(key)
        .json(&json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

fn strings(names: &[&str]) -> Vec<String> {
    names.iter().map(|name| (*name).to_owned()).collect()
}

#[tokio::test]
async fn blocking_a_team_refuses_its_keys_until_it_is_unblocked() {
    let (gateway, shutdown) = gateway().await;
    let admin = admin(&gateway, MASTER_KEY);
    let research = |blocked| TeamState {
        team_id: "research".to_owned(),
        blocked,
    };
    assert_eq!(
        gateway.team_keys("research"),
        [SimGateway::hashed(ALICE_KEY)]
    );
    assert_eq!(chat(&gateway, ALICE_KEY).await.0, 200);

    assert_eq!(admin.block_team("research").await.unwrap(), research(true));
    assert_eq!(gateway.is_team_blocked("research"), Some(true));
    let (status, body) = chat(&gateway, ALICE_KEY).await;
    assert_eq!(status, 401);
    assert_eq!(
        body["error"]["message"],
        "Authentication Error, Team=research is blocked. Update via `/team/unblock` if you're an admin."
    );
    // The key itself is not blocked; its team is. A hashed key still reads the key.
    let key = admin
        .key_info(&SimGateway::hashed(ALICE_KEY))
        .await
        .unwrap();
    assert!(!key.blocked);
    assert_eq!(key.team_id.as_deref(), Some("research"));

    assert_eq!(
        admin.unblock_team("research").await.unwrap(),
        research(false)
    );
    assert_eq!(gateway.is_team_blocked("research"), Some(false));
    assert_eq!(chat(&gateway, ALICE_KEY).await.0, 200);

    let calls: Vec<(String, Option<String>, u16)> = gateway
        .admin_calls()
        .into_iter()
        .map(|call| (call.path, call.subject, call.status))
        .collect();
    let research_id = Some("research".to_owned());
    assert_eq!(
        calls,
        [
            ("/team/block".to_owned(), research_id.clone(), 200),
            ("/key/info".to_owned(), None, 200),
            ("/team/unblock".to_owned(), research_id, 200),
        ]
    );
    shutdown.cancel();
}

#[tokio::test]
async fn team_refusals_carry_litellms_message() {
    let (gateway, shutdown) = gateway().await;

    let error = admin(&gateway, MASTER_KEY)
        .block_team("nobody")
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "litellm `block_team` answered http 404: Team not found, passed team_id=nobody"
    );

    let wrong = "sk-wrong-master-key-0042";
    let wrong_admin = admin(&gateway, wrong);
    let error = wrong_admin.unblock_team("research").await.unwrap_err();
    assert_eq!(error.status(), Some(401));
    let shown = format!("{error} {error:?} {wrong_admin:?}");
    assert!(
        shown.contains("Invalid proxy server token passed"),
        "{shown}"
    );
    assert!(!shown.contains(wrong), "{shown}");

    // A virtual key is not an admin.
    let error = admin(&gateway, ALICE_KEY)
        .block_team("research")
        .await
        .unwrap_err();
    assert!(
        matches!(&error, ConnectorError::Api { status: 401, message, .. }
            if message.contains("Only proxy admin can be used")),
        "{error:?}"
    );
    assert_eq!(gateway.is_team_blocked("research"), Some(false));
    shutdown.cancel();
}

#[tokio::test]
async fn fallbacks_are_set_read_and_restored() {
    let (gateway, shutdown) = gateway_with_models().await;
    let admin = admin(&gateway, MASTER_KEY);
    let none = Fallbacks {
        model: "gpt-4o".to_owned(),
        fallback_models: Vec::new(),
    };

    let before = admin.fallbacks("gpt-4o").await.unwrap();
    assert_eq!(before, none);
    let set = admin
        .set_fallbacks("gpt-4o", &strings(&["gpt-4o-mini", "claude-3-haiku"]))
        .await
        .unwrap();
    assert_eq!(set.fallback_models, ["gpt-4o-mini", "claude-3-haiku"]);
    assert_eq!(
        gateway.fallbacks("gpt-4o"),
        Some(strings(&["gpt-4o-mini", "claude-3-haiku"]))
    );
    assert_eq!(admin.fallbacks("gpt-4o").await.unwrap(), set);

    // The compensation puts back what was there before: nothing.
    admin.restore_fallbacks(&before).await.unwrap();
    assert_eq!(gateway.fallbacks("gpt-4o"), None);
    // And it can run again, as a retried compensation does.
    admin.restore_fallbacks(&before).await.unwrap();

    // With fallbacks before the change, restoring sets them again.
    let earlier = admin
        .set_fallbacks("gpt-4o", &strings(&["claude-3-haiku"]))
        .await
        .unwrap();
    admin
        .set_fallbacks("gpt-4o", &strings(&["gpt-4o-mini"]))
        .await
        .unwrap();
    admin.restore_fallbacks(&earlier).await.unwrap();
    assert_eq!(
        gateway.fallbacks("gpt-4o"),
        Some(strings(&["claude-3-haiku"]))
    );
    shutdown.cancel();
}

#[tokio::test]
async fn fallback_refusals_carry_litellms_message() {
    let (gateway, shutdown) = gateway_with_models().await;
    let admin = admin(&gateway, MASTER_KEY);
    let refusal = |result: Result<Fallbacks, ConnectorError>| result.unwrap_err().to_string();

    assert_eq!(
        refusal(admin.set_fallbacks("nope", &strings(&["gpt-4o"])).await),
        "litellm `set_fallbacks` answered http 404: Model 'nope' not found in router"
    );
    assert_eq!(
        refusal(
            admin
                .set_fallbacks("gpt-4o", &strings(&["nope", "gpt-4o-mini"]))
                .await
        ),
        "litellm `set_fallbacks` answered http 400: Invalid fallback models: ['nope']"
    );
    assert_eq!(
        refusal(admin.set_fallbacks("gpt-4o", &strings(&["gpt-4o"])).await),
        "litellm `set_fallbacks` answered http 400: Model 'gpt-4o' cannot be its own fallback"
    );
    assert_eq!(
        refusal(admin.set_fallbacks("gpt-4o", &[]).await),
        "litellm `set_fallbacks` answered http 422: body.fallback_models: List should have at least 1 item after validation, not 0"
    );
    let error = AdminClient::new(gateway.base_url(), Secret::new("sk-wrong-0042"), client())
        .set_fallbacks("gpt-4o", &strings(&["gpt-4o-mini"]))
        .await
        .unwrap_err();
    assert_eq!(error.status(), Some(401));
    assert_eq!(gateway.fallbacks("gpt-4o"), None);

    // LiteLLM routes `{model}` as one segment, so a model with `/` is not found at all.
    let error = admin.fallbacks("openai/gpt-4o").await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "litellm `fallbacks` answered http 404: Not Found"
    );
    shutdown.cancel();
}
