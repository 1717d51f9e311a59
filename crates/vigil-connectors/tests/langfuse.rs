//! Loopback tests of the Langfuse prompt client against the fake Langfuse: reading versions,
//! moving `production` forward and back (a rollback), and Langfuse's own refusals.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "tests fail loudly by design"
)]

mod common;

use std::collections::BTreeMap;

use common::client;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use vigil_connectors::ConnectorError;
use vigil_connectors::langfuse::{LangfuseClient, PromptVersion};
use vigil_connectors::secret::Secret;
use vigil_sim::{FakePromptVersion, LangfuseFake};

const PUBLIC_KEY: &str = "pk-lf-7d0c2a51";
const SECRET_KEY: &str = "sk-lf-4b9e18f3c6";
/// A name with a folder, which must travel as one path segment.
const PROMPT: &str = "support/answer";

async fn langfuse() -> (LangfuseFake, CancellationToken) {
    let version = |version, labels: &[&str]| FakePromptVersion {
        name: PROMPT.to_owned(),
        version,
        prompt: format!("Answer the customer (v{version}): {{{{question}}}}"),
        labels: labels.iter().map(|label| (*label).to_owned()).collect(),
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let shutdown = CancellationToken::new();
    let fake = LangfuseFake::start(
        listener,
        PUBLIC_KEY,
        SECRET_KEY,
        vec![
            version(1, &["production"]),
            version(2, &[]),
            version(3, &["staging"]),
        ],
        shutdown.clone(),
    )
    .await
    .unwrap();
    (fake, shutdown)
}

fn langfuse_client(fake: &LangfuseFake, secret_key: &str) -> LangfuseClient {
    LangfuseClient::new(
        format!("{}/", fake.url()),
        PUBLIC_KEY.to_owned(),
        Secret::new(secret_key),
        client(),
    )
}

fn labels(pairs: &[(u32, &[&str])]) -> BTreeMap<u32, Vec<String>> {
    pairs
        .iter()
        .map(|(version, labels)| {
            let labels = labels.iter().map(|label| (*label).to_owned()).collect();
            (*version, labels)
        })
        .collect()
}

fn version(version: u32, labels: &[&str]) -> PromptVersion {
    PromptVersion {
        name: PROMPT.to_owned(),
        version,
        labels: labels.iter().map(|label| (*label).to_owned()).collect(),
    }
}

#[tokio::test]
async fn production_moves_forward_and_rolls_back() {
    let (fake, shutdown) = langfuse().await;
    let langfuse = langfuse_client(&fake, SECRET_KEY);
    let production = ["production".to_owned()];

    // Without a label or version, Langfuse serves the `production` version.
    assert_eq!(
        langfuse.prompt(PROMPT, None, None).await.unwrap(),
        version(1, &["production"])
    );
    assert_eq!(
        langfuse.prompt(PROMPT, Some("latest"), None).await.unwrap(),
        version(3, &["staging", "latest"])
    );
    assert_eq!(
        langfuse.prompt(PROMPT, None, Some(2)).await.unwrap(),
        version(2, &[])
    );

    // Promote v3: the label leaves v1, and v3 keeps its own labels.
    let promoted = langfuse.set_labels(PROMPT, 3, &production).await.unwrap();
    assert_eq!(promoted, version(3, &["production", "staging", "latest"]));
    assert_eq!(
        fake.labels(PROMPT),
        labels(&[
            (1, &[]),
            (2, &[]),
            (3, &["production", "staging", "latest"])
        ])
    );

    // Roll back: `production` returns to v1; `latest` stays where Langfuse keeps it.
    let rolled_back = langfuse.set_labels(PROMPT, 1, &production).await.unwrap();
    assert!(rolled_back.has_label("production"));
    assert_eq!(fake.version_with_label(PROMPT, "production"), Some(1));
    assert_eq!(
        fake.labels(PROMPT),
        labels(&[(1, &["production"]), (2, &[]), (3, &["staging", "latest"])])
    );

    // Every call sent the public key and the name as one encoded segment.
    let calls = fake.calls();
    assert_eq!(calls.len(), 5);
    for call in &calls {
        assert_eq!(call.public_key.as_deref(), Some(PUBLIC_KEY));
        assert_eq!(call.prompt_name.as_deref(), Some(PROMPT));
        assert!(call.path.contains("support%2Fanswer"), "{call:?}");
    }
    assert_eq!(
        calls
            .last()
            .map(|call| (call.method.as_str(), call.path.as_str())),
        Some((
            "PATCH",
            "/api/public/v2/prompts/support%2Fanswer/versions/1"
        ))
    );
    shutdown.cancel();
}

#[tokio::test]
async fn a_wrong_secret_key_is_a_401_that_never_shows_the_key() {
    let (fake, shutdown) = langfuse().await;
    let wrong = "sk-lf-wrong-00042";
    let langfuse = langfuse_client(&fake, wrong);

    let error = langfuse
        .set_labels(PROMPT, 3, &["production".to_owned()])
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "langfuse `set_labels` answered http 401: Invalid credentials. Confirm that you've configured the correct host."
    );
    let error = langfuse.prompt(PROMPT, None, None).await.unwrap_err();
    assert!(
        matches!(
            &error,
            ConnectorError::Langfuse {
                operation: "prompt",
                status: 401,
                ..
            }
        ),
        "{error:?}"
    );
    let shown = format!("{error} {error:?} {langfuse:?}");
    assert!(!shown.contains(wrong), "{shown}");
    assert_eq!(fake.version_with_label(PROMPT, "production"), Some(1));
    shutdown.cancel();
}

#[tokio::test]
async fn unknown_prompts_and_versions_are_404s_with_langfuses_message() {
    let (fake, shutdown) = langfuse().await;
    let langfuse = langfuse_client(&fake, SECRET_KEY);
    let message = |error: ConnectorError| error.to_string();

    assert_eq!(
        message(langfuse.prompt("nope", None, None).await.unwrap_err()),
        "langfuse `prompt` answered http 404: Prompt not found: 'nope' with label 'production'"
    );
    assert_eq!(
        message(langfuse.prompt(PROMPT, None, Some(9)).await.unwrap_err()),
        "langfuse `prompt` answered http 404: Prompt not found: 'support/answer' with version 9"
    );
    assert_eq!(
        message(
            langfuse
                .set_labels(PROMPT, 9, &["production".to_owned()])
                .await
                .unwrap_err()
        ),
        "langfuse `set_labels` answered http 404: Prompt 'support/answer' version 9 not found in project"
    );
    shutdown.cancel();
}

#[tokio::test]
async fn latest_and_contradictory_requests_are_refused() {
    let (fake, shutdown) = langfuse().await;
    let langfuse = langfuse_client(&fake, SECRET_KEY);

    let error = langfuse
        .set_labels(PROMPT, 1, &["latest".to_owned()])
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "langfuse `set_labels` answered http 400: Invalid request data: newLabels: Label 'latest' is always assigned to the latest prompt version"
    );
    assert_eq!(fake.version_with_label(PROMPT, "latest"), Some(3));

    let error = langfuse
        .prompt(PROMPT, Some("production"), Some(1))
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "langfuse `prompt` answered http 400: Cannot specify both version and label"
    );
    shutdown.cancel();
}

#[tokio::test]
async fn an_unreachable_langfuse_is_a_transport_error() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap().port()
    };
    let langfuse = LangfuseClient::new(
        format!("http://127.0.0.1:{port}"),
        PUBLIC_KEY.to_owned(),
        Secret::new(SECRET_KEY),
        client(),
    );
    let error = langfuse
        .prompt(PROMPT, Some("production"), None)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, ConnectorError::Transport { url, .. }
            if url == &format!("http://127.0.0.1:{port}/api/public/v2/prompts/support%2Fanswer")),
        "{error:?}"
    );
}
