//! Shared helpers for vigil-sim's loopback tests: a gateway with known keys and models, an
//! HTTP client, and a small exposition-text reader.

#![allow(
    dead_code,
    reason = "each test binary uses a different subset of these helpers"
)]

use std::collections::BTreeMap;

use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use vigil_sim::{GatewayConfig, SimGateway, SimKey, SimModel};

pub const MASTER_KEY: &str = "sk-master-9f2c1e7a";
pub const ALICE_KEY: &str = "sk-alice-0001";
pub const BOB_KEY: &str = "sk-bob-0002";
pub const MODEL: &str = "gpt-4o";
pub const INPUT_PRICE: f64 = 2.5e-6;
pub const OUTPUT_PRICE: f64 = 1e-5;

pub fn config() -> GatewayConfig {
    GatewayConfig {
        master_key: MASTER_KEY.to_owned(),
        keys: vec![
            SimKey {
                raw_key: ALICE_KEY.to_owned(),
                alias: "alice-app".to_owned(),
                team: "search".to_owned(),
                user_id: "alice".to_owned(),
                max_budget_usd: None,
            },
            SimKey {
                raw_key: BOB_KEY.to_owned(),
                alias: String::new(),
                team: String::new(),
                user_id: String::new(),
                max_budget_usd: Some(5.0),
            },
        ],
        models: vec![SimModel {
            name: MODEL.to_owned(),
            provider: "openai".to_owned(),
            input_cost_per_token: INPUT_PRICE,
            output_cost_per_token: OUTPUT_PRICE,
        }],
        ignore_blocks: false,
        require_auth_for_metrics: true,
    }
}

pub async fn start(config: GatewayConfig) -> (SimGateway, CancellationToken) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let shutdown = CancellationToken::new();
    let gateway = SimGateway::start(listener, config, shutdown.clone())
        .await
        .expect("start gateway");
    (gateway, shutdown)
}

pub fn client() -> reqwest::Client {
    let _already_installed = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("build client")
}

/// Sends one chat request; returns the status and the JSON body.
pub async fn chat(
    client: &reqwest::Client,
    gateway: &SimGateway,
    key: &str,
    content: &str,
    max_tokens: u32,
) -> (u16, Value) {
    let response = client
        .post(format!("{}/chat/completions", gateway.base_url()))
        .bearer_auth(key)
        .json(&json!({"model": MODEL, "messages": [{"role": "user", "content": content}], "max_tokens": max_tokens}))
        .send()
        .await
        .expect("chat request");
    let status = response.status().as_u16();
    (status, response.json().await.expect("chat body is json"))
}

/// Sends one admin request with the master key; returns the status and the JSON body.
pub async fn admin(
    client: &reqwest::Client,
    gateway: &SimGateway,
    path: &str,
    body: Value,
) -> (u16, Value) {
    let response = client
        .post(format!("{}{path}", gateway.base_url()))
        .bearer_auth(MASTER_KEY)
        .json(&body)
        .send()
        .await
        .expect("admin request");
    let status = response.status().as_u16();
    (status, response.json().await.expect("admin body is json"))
}

pub async fn scrape(client: &reqwest::Client, gateway: &SimGateway) -> String {
    let response = client
        .get(format!("{}/metrics/", gateway.base_url()))
        .bearer_auth(MASTER_KEY)
        .send()
        .await
        .expect("scrape");
    assert_eq!(response.status().as_u16(), 200);
    response.text().await.expect("scrape body")
}

/// One sample line: its name, its labels in order, and its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

impl Sample {
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(label, _)| label == name)
            .map(|(_, value)| value.as_str())
    }
}

/// Parses one sample line strictly: `name{a="x",...} value`, with escapes in values.
pub fn parse_sample(line: &str) -> Result<Sample, String> {
    let name_end = line.find(['{', ' ']).ok_or("no value")?;
    let name = &line[..name_end];
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    {
        return Err(format!("bad metric name `{name}`"));
    }
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(after_brace) = rest.strip_prefix('{') {
        rest = after_brace;
        loop {
            if let Some(after) = rest.strip_prefix('}') {
                rest = after;
                break;
            }
            let eq = rest.find('=').ok_or("label without =")?;
            let label = rest[..eq].to_owned();
            rest = rest[eq + 1..]
                .strip_prefix('"')
                .ok_or("label value not quoted")?;
            let mut value = String::new();
            let mut chars = rest.char_indices();
            let end = loop {
                match chars.next().ok_or("unterminated label value")? {
                    (idx, '"') => break idx,
                    (_, '\\') => match chars.next().ok_or("dangling escape")?.1 {
                        'n' => value.push('\n'),
                        other => value.push(other),
                    },
                    (_, other) => value.push(other),
                }
            };
            labels.push((label, value));
            rest = &rest[end + 1..];
            rest = rest.strip_prefix(',').unwrap_or(rest);
        }
    }
    let value_text = rest.strip_prefix(' ').ok_or("no space before value")?;
    let value = match value_text {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        other => other.parse().map_err(|_| format!("bad value `{other}`"))?,
    };
    Ok(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

/// Every sample of an exposition, after checking that each line is a HELP, TYPE or sample.
pub fn samples(text: &str) -> Vec<Sample> {
    let mut parsed = Vec::new();
    for line in text.lines() {
        if let Some(comment) = line.strip_prefix("# ") {
            assert!(
                comment.starts_with("HELP ") || comment.starts_with("TYPE "),
                "odd comment `{line}`"
            );
            continue;
        }
        parsed.push(parse_sample(line).unwrap_or_else(|error| panic!("line `{line}`: {error}")));
    }
    parsed
}

/// The value of the sample named `name` whose labels include all of `want`, or 0.
pub fn value(text: &str, name: &str, want: &[(&str, &str)]) -> f64 {
    samples(text)
        .into_iter()
        .filter(|sample| sample.name == name)
        .filter(|sample| {
            want.iter()
                .all(|(label, value)| sample.label(label) == Some(value))
        })
        .map(|sample| sample.value)
        .sum()
}

/// The `# TYPE` of every family in the text.
pub fn types(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.split_once(' '))
        .map(|(name, kind)| (name.to_owned(), kind.to_owned()))
        .collect()
}
