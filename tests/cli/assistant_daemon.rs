//! The assistant in a real daemon: `vigil serve` with `diagnosis.assistant` pointing at the
//! OpenAI fake on loopback. A runaway key is blocked as without it; the investigation runs
//! as an effect, its tool calls served by the engine loop, its checked answer recorded and
//! counted in `/metrics`; `vigil ask` answers a viewer's question through the admin API; the
//! ledger verifies and replays with the fake gone.

use std::time::Duration;

use crate::crash::{Stack, wait_for_line};
use crate::serve::Served;
use crate::support::{Person, TempDir, admin_tokens, finish, vigil, vigil_command};

const TOKEN_ENV: &str = "VIGIL_TEST_ADMIN_TOKEN";

/// The OpenAI fake playing `play`, on a runtime of its own (the daemon is another process).
fn start_fake(
    play: vigil_sim::Play,
) -> (
    tokio::runtime::Runtime,
    tokio_util::sync::CancellationToken,
    vigil_sim::OpenAiFake,
) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a runtime");
    let stop = tokio_util::sync::CancellationToken::new();
    let fake = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        vigil_sim::OpenAiFake::start(listener, play.script(), stop.clone())
            .await
            .expect("the fake")
    });
    (runtime, stop, fake)
}

#[test]
fn the_daemon_investigates_answers_questions_and_replays_without_the_model() {
    let dir = TempDir::new("assistant-daemon");
    let (tokens_file, tokens) = admin_tokens(
        dir.path(),
        &[Person {
            name: "vera@example.com",
            groups: &["sre"],
            roles: &["viewer"],
        }],
    );
    // The fake runs on its own runtime, before the stack (whose config must name it).
    let (runtime, stop, fake) = start_fake(vigil_sim::Play::Good);
    let extra = format!(
        "admin:\n  tokens_file: \"{}\"\ndiagnosis:\n  assistant:\n    enabled: true\n    base_url: {}\n    model: vigil-fake\n    on: all\n    deadline_secs: 30\n    request_timeout_secs: 10\n",
        tokens_file.display(),
        fake.base_url()
    );
    let stack = Stack::start(&dir, "autonomous", &extra);
    let mut served = Served::start(&stack.config, dir.path());
    stack.runaway_after_warmup(&served);
    wait_for_line(&mut served, "carrying out action");
    let line = wait_for_line(&mut served, "the assistant's answer was checked");
    assert!(line.contains("agrees with the diagnosis"), "{line}");
    served.poll("/metrics", "the investigation counted", |response| {
        response
            .body
            .contains("vigil_assistant_investigations_total{outcome=\"answered\"} 1")
    });

    // A viewer asks; the answer is checked like an investigation's.
    let url = format!("http://{}", served.address);
    let mut ask = vigil_command(
        [
            "ask",
            "what is burning tokens?",
            "--url",
            &url,
            "--token-env",
            TOKEN_ENV,
        ],
        dir.path(),
    );
    ask.env(TOKEN_ENV, &tokens["vera@example.com"]);
    let asked = finish(ask, Duration::from_secs(60));
    asked.assert_success("vigil ask");
    assert!(asked.stdout.contains("claims dropped"), "{asked}");
    // Without a token: refused before anything is asked.
    let requests_before = fake.requests().len();
    let refused = crate::support::http_post_json(
        served.address,
        "/v1/admin/ask",
        None,
        r#"{"question":"hello?"}"#,
    )
    .expect("POST");
    assert_eq!(refused.status, 401, "{}", refused.body);
    assert_eq!(fake.requests().len(), requests_before);

    let (code, stderr) = served.stop_with("TERM");
    assert_eq!(code, Some(0), "{stderr}");
    stop.cancel();
    drop(runtime);

    // The model is gone: the ledger verifies and replays from what it recorded.
    let db = stack.ledger.display().to_string();
    vigil(["ledger", "verify", "--db", &db], dir.path()).assert_success("verify");
    let replay = vigil(["replay", "--db", &db, "--all"], dir.path());
    replay.assert_success("replay --all");
    let shown = vigil(["ledger", "show", "--db", &db], dir.path());
    assert!(
        shown.stdout.contains("assistant answered"),
        "{}",
        shown.stdout
    );
}

/// A model that answers 429 with `Retry-After: 86400`: vigil's deadline ends the
/// investigation, the failure is recorded and counted, and the runaway key is blocked and
/// verified exactly as without the assistant.
#[test]
fn a_rate_limited_model_leaves_the_remediation_as_it_is() {
    let dir = TempDir::new("assistant-daemon-429");
    let (runtime, stop, fake) = start_fake(vigil_sim::Play::RateLimited);
    let extra = format!(
        "diagnosis:\n  assistant:\n    enabled: true\n    base_url: {}\n    model: vigil-fake\n    on: all\n    deadline_secs: 3\n    request_timeout_secs: 2\n",
        fake.base_url()
    );
    let stack = Stack::start(&dir, "autonomous", &extra);
    let mut served = Served::start(&stack.config, dir.path());
    let runaway = stack.runaway_after_warmup(&served);
    // Both happen, in either order: nothing waits for the assistant.
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let (mut gave_up, mut resolved) = (None, false);
    while gave_up.is_none() || !resolved {
        let Some(line) = served.next_line(deadline) else {
            panic!("vigil stopped logging:\n{}", served.stderr_text());
        };
        if line.contains("the assistant gave no answer") {
            gave_up = Some(line);
        } else if line.contains("incident resolved") {
            resolved = true;
        }
    }
    let line = gave_up.unwrap_or_default();
    assert!(line.contains("the incident goes on without it"), "{line}");
    assert!(stack.gateway.is_blocked(&runaway));
    served.poll("/metrics", "the failure counted", |response| {
        response.body.lines().any(|line| {
            line.starts_with("vigil_assistant_investigations_total{outcome=\"deadline\"}")
                || line.starts_with("vigil_assistant_investigations_total{outcome=\"status\"}")
        })
    });
    let (code, stderr) = served.stop_with("TERM");
    assert_eq!(code, Some(0), "{stderr}");
    stop.cancel();
    drop(runtime);
    let db = stack.ledger.display().to_string();
    vigil(["replay", "--db", &db, "--all"], dir.path()).assert_success("replay --all");
}
