//! Loopback tests of the simulated gateway's exposition: LiteLLM's names, labels and
//! `_created` lines, exact accounting of chat usage, blocks that stop counters, redirects.

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

/// Label names and order of LiteLLM 1.106.2's token counters, from a real scrape.
const TOKEN_LABELS: &[&str] = &[
    "api_key_alias",
    "api_provider",
    "end_user",
    "hashed_api_key",
    "model",
    "model_id",
    "org_alias",
    "org_id",
    "requested_model",
    "team",
    "team_alias",
    "user",
    "user_email",
];
/// Label names and order of `litellm_proxy_failed_requests_metric`, from a real scrape.
const FAILED_LABELS: &[&str] = &[
    "api_key_alias",
    "api_provider",
    "client_ip",
    "end_user",
    "exception_class",
    "exception_status",
    "hashed_api_key",
    "model_id",
    "org_alias",
    "org_id",
    "requested_model",
    "route",
    "team",
    "team_alias",
    "user",
    "user_agent",
    "user_email",
];

fn label_names(sample: &Sample) -> Vec<&str> {
    sample
        .labels
        .iter()
        .map(|(name, _)| name.as_str())
        .collect()
}

#[tokio::test]
async fn exposition_has_litellm_names_labels_and_created_lines() {
    let (gateway, shutdown) = start(config()).await;
    let client = client();
    assert_eq!(
        chat(&client, &gateway, ALICE_KEY, "hello there", 10)
            .await
            .0,
        200
    );
    assert_eq!(chat(&client, &gateway, BOB_KEY, "hi", 10).await.0, 200);

    let response = client
        .get(format!("{}/metrics/", gateway.base_url()))
        .bearer_auth(MASTER_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = response.text().await.unwrap();
    let types = types(&text);
    for counter in [
        "litellm_total_tokens_metric",
        "litellm_input_tokens_metric",
        "litellm_output_tokens_metric",
        "litellm_spend_metric",
        "litellm_requests_metric",
        "litellm_proxy_total_requests_metric",
    ] {
        assert_eq!(types[&format!("{counter}_total")], "counter", "{counter}");
        assert_eq!(types[&format!("{counter}_created")], "gauge", "{counter}");
    }
    assert_eq!(
        types["litellm_proxy_failed_requests_metric_total"],
        "counter"
    );
    assert_eq!(types["litellm_remaining_api_key_budget_metric"], "gauge");
    assert_eq!(types["litellm_in_flight_requests"], "gauge");
    assert_eq!(types["process_start_time_seconds"], "gauge");
    assert_eq!(types["python_gc_objects_collected_total"], "counter");

    // Every line parses, and every counter series has a `_created` twin with the same labels.
    let samples = samples(&text);
    let alice = SimGateway::hashed(ALICE_KEY);
    let tokens: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.name == "litellm_total_tokens_metric_total")
        .collect();
    assert_eq!(tokens.len(), 2);
    for sample in &tokens {
        assert_eq!(label_names(sample), TOKEN_LABELS);
        let created_name = "litellm_total_tokens_metric_created";
        let created = samples
            .iter()
            .find(|s| s.name == created_name && s.labels == sample.labels)
            .unwrap();
        assert!(
            created.value > 1.7e9,
            "created is a unix time: {}",
            created.value
        );
    }
    let alice_tokens = tokens
        .iter()
        .find(|s| s.label("hashed_api_key") == Some(alice.as_str()))
        .unwrap();
    assert_eq!(alice_tokens.label("api_key_alias"), Some("alice-app"));
    assert_eq!(alice_tokens.label("team"), Some("search"));
    assert_eq!(alice_tokens.label("user"), Some("alice"));
    assert_eq!(alice_tokens.label("end_user"), Some("None"));
    assert_eq!(
        alice_tokens.label("model_id"),
        Some(SimGateway::hashed(MODEL).as_str())
    );
    // A key without alias, team or user reads "None" for each, as LiteLLM writes it.
    let bob = SimGateway::hashed(BOB_KEY);
    let bob_tokens = tokens
        .iter()
        .find(|s| s.label("hashed_api_key") == Some(bob.as_str()))
        .unwrap();
    assert_eq!(bob_tokens.label("api_key_alias"), Some("None"));
    assert_eq!(bob_tokens.label("team"), Some("None"));

    assert!(text.contains(&format!(
        "litellm_remaining_api_key_budget_metric{{api_key_alias=\"alice-app\",hashed_api_key=\"{alice}\"}} +Inf\n"
    )));
    assert!(
        text.contains("litellm_in_flight_requests 1.0\n"),
        "the scrape itself is in flight"
    );
    assert!(text.contains("python_gc_objects_collected_total{generation=\"0\"} 1470.0\n"));

    // A third-party parser agrees on the counter (it drops some lines, but not these).
    let lines = text.lines().map(|line| Ok(line.to_owned()));
    let scrape = prometheus_parse::Scrape::parse(lines).unwrap();
    let parsed = scrape
        .samples
        .iter()
        .find(|s| {
            s.metric == "litellm_total_tokens_metric_total"
                && s.labels.get("hashed_api_key") == Some(alice.as_str())
        })
        .unwrap();
    assert!(
        matches!(parsed.value, prometheus_parse::Value::Counter(value) if value == alice_tokens.value)
    );
    shutdown.cancel();
    gateway.stopped().await;
}

#[tokio::test]
async fn a_chat_request_adds_exactly_its_usage_to_the_key_counters() {
    let (gateway, shutdown) = start(config()).await;
    let client = client();
    let alice = SimGateway::hashed(ALICE_KEY);
    let key = [("hashed_api_key", alice.as_str())];
    let before = scrape(&client, &gateway).await;
    assert_eq!(
        value(&before, "litellm_total_tokens_metric_total", &key),
        0.0
    );

    // 41 characters make ceil(41 / 4) = 11 prompt tokens.
    let (status, body) = chat(&client, &gateway, ALICE_KEY, &"x".repeat(41), 120).await;
    assert_eq!(status, 200);
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(
        body["usage"],
        json!({
            "prompt_tokens": 11, "completion_tokens": 120, "total_tokens": 131,
            "completion_tokens_details": null, "prompt_tokens_details": null,
        })
    );

    let after = scrape(&client, &gateway).await;
    assert_eq!(
        value(&after, "litellm_total_tokens_metric_total", &key),
        131.0
    );
    assert_eq!(
        value(&after, "litellm_input_tokens_metric_total", &key),
        11.0
    );
    assert_eq!(
        value(&after, "litellm_output_tokens_metric_total", &key),
        120.0
    );
    let spend = value(&after, "litellm_spend_metric_total", &key);
    assert!(
        (spend - (11.0 * INPUT_PRICE + 120.0 * OUTPUT_PRICE)).abs() < 1e-12,
        "{spend}"
    );
    let ok = [
        ("hashed_api_key", alice.as_str()),
        ("status_code", "200"),
        ("route", "/chat/completions"),
    ];
    assert_eq!(
        value(&after, "litellm_proxy_total_requests_metric_total", &ok),
        1.0
    );
    assert_eq!(gateway.key_spend_usd(ALICE_KEY), Some(spend));

    // Without max_tokens, the completion is 16 tokens; the /v1 route counts the same way.
    let response = client
        .post(format!("{}/v1/chat/completions", gateway.base_url()))
        .bearer_auth(ALICE_KEY)
        .json(&json!({"model": MODEL, "messages": [{"role": "user", "content": "abcd"}]}))
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["usage"]["total_tokens"], 17);
    let last = scrape(&client, &gateway).await;
    assert_eq!(
        value(&last, "litellm_total_tokens_metric_total", &key),
        148.0
    );
    shutdown.cancel();
}

#[tokio::test]
async fn a_block_rejects_the_key_and_its_counters_stop() {
    let (gateway, shutdown) = start(config()).await;
    let client = client();
    let alice = SimGateway::hashed(ALICE_KEY);
    let key = [("hashed_api_key", alice.as_str())];
    assert_eq!(chat(&client, &gateway, ALICE_KEY, "hello", 50).await.0, 200);

    let (status, body) = admin(&client, &gateway, "/key/block", json!({"key": ALICE_KEY})).await;
    assert_eq!(status, 200);
    assert_eq!(body["token"], alice);
    assert_eq!(body["blocked"], true);
    assert_eq!(body["key_alias"], "alice-app");
    assert_eq!(body["team_id"], "search");
    assert!(gateway.is_blocked(ALICE_KEY) && gateway.is_blocked(&alice));
    let before = scrape(&client, &gateway).await;

    let (status, body) = chat(&client, &gateway, ALICE_KEY, "hello", 50).await;
    assert_eq!(status, 401);
    assert_eq!(
        body,
        json!({"error": {
            "message": "Authentication Error, Key is blocked. Update via `/key/unblock` if you're an admin.",
            "type": "auth_error", "param": "None", "code": "401",
        }})
    );
    let after = scrape(&client, &gateway).await;
    for counter in [
        "litellm_total_tokens_metric_total",
        "litellm_spend_metric_total",
        "litellm_requests_metric_total",
    ] {
        assert_eq!(
            value(&after, counter, &key),
            value(&before, counter, &key),
            "{counter}"
        );
    }
    let failed: Vec<Sample> = samples(&after)
        .into_iter()
        .filter(|s| {
            s.name == "litellm_proxy_failed_requests_metric_total"
                && s.label("hashed_api_key") == Some(alice.as_str())
        })
        .collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(label_names(&failed[0]), FAILED_LABELS);
    assert_eq!(failed[0].label("exception_class"), Some("Exception"));
    // LiteLLM's auth failure hook knows only the hashed key, not its alias.
    assert_eq!(failed[0].label("api_key_alias"), Some("None"));
    assert_eq!(failed[0].label("route"), Some("/chat/completions"));
    assert_eq!(failed[0].label("requested_model"), Some(MODEL));
    assert_eq!(failed[0].value, 1.0);

    // The block by hash is just as good, and unblocking restores service.
    let (status, body) = admin(&client, &gateway, "/key/unblock", json!({"key": alice})).await;
    assert_eq!((status, &body["blocked"]), (200, &json!(false)));
    assert_eq!(chat(&client, &gateway, ALICE_KEY, "hello", 50).await.0, 200);

    let calls = gateway.admin_calls();
    let paths: Vec<(&str, u16)> = calls
        .iter()
        .map(|call| (call.path.as_str(), call.status))
        .collect();
    assert_eq!(paths, [("/key/block", 200), ("/key/unblock", 200)]);
    assert!(
        calls
            .iter()
            .all(|call| call.key.as_deref() == Some(alice.as_str()))
    );
    assert!(calls[0].at <= calls[1].at);
    shutdown.cancel();
}

#[tokio::test]
async fn metrics_redirect_to_the_slash_path_and_need_auth() {
    let (gateway, shutdown) = start(config()).await;
    let client = client();
    let redirect = client
        .get(format!("{}/metrics", gateway.base_url()))
        .bearer_auth(MASTER_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(redirect.status().as_u16(), 307);
    assert_eq!(
        redirect.headers()["location"],
        format!("{}/metrics/", gateway.base_url()).as_str()
    );

    let anonymous = client
        .get(format!("{}/metrics/", gateway.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);
    // The refused scrape is counted the way LiteLLM counts it.
    let text = scrape(&client, &gateway).await;
    let refused = [
        ("route", "/metrics/"),
        ("hashed_api_key", ""),
        ("exception_class", "Exception"),
    ];
    assert_eq!(
        value(
            &text,
            "litellm_proxy_failed_requests_metric_total",
            &refused
        ),
        1.0
    );
    shutdown.cancel();

    let (open, shutdown) = start(vigil_sim::GatewayConfig {
        require_auth_for_metrics: false,
        ..config()
    })
    .await;
    let response = client
        .get(format!("{}/metrics/", open.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    shutdown.cancel();
}

#[tokio::test]
async fn chat_rejects_unknown_keys_and_models_and_serves_the_master_key() {
    let (gateway, shutdown) = start(config()).await;
    let client = client();
    let (status, body) = chat(&client, &gateway, "sk-stranger-key", "hi", 5).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["type"], "token_not_found_in_db");
    assert_eq!(body["error"]["param"], "key");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(&SimGateway::hashed("sk-stranger-key")) && message.contains("sk-...-key"),
        "{message}"
    );

    let response = client
        .post(format!("{}/chat/completions", gateway.base_url()))
        .bearer_auth(ALICE_KEY)
        .json(&json!({"model": "gpt-9", "messages": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Invalid model name passed in model=gpt-9")
    );

    assert_eq!(
        chat(&client, &gateway, MASTER_KEY, "admin testing", 4)
            .await
            .0,
        200
    );
    let text = scrape(&client, &gateway).await;
    let master = [
        ("hashed_api_key", "litellm_proxy_master_key"),
        ("user", "default_user_id"),
    ];
    assert_eq!(
        value(&text, "litellm_total_tokens_metric_total", &master),
        8.0
    );
    shutdown.cancel();
}
