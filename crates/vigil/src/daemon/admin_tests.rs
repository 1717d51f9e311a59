//! The admin API over real HTTP on loopback, with a stand-in for the engine loop that answers
//! each instruction through its reply and each proposal query from a list: who gets in, who
//! is refused and how, and that the event carries the authenticated principal.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use vigil_core::engine::{Action, Event, HumanCommand, KillScope, PendingProposal};
use vigil_core::people::{InstructionLimits, Role};

use super::*;
use crate::identity::tokens::{TokenDirectory, entry_yaml, new_token};
use crate::identity::{Authenticator, RoleMapping};

struct Server {
    url: String,
    client: reqwest::Client,
    /// Every event the admin API handed to the engine.
    events: Arc<Mutex<Vec<Event>>>,
    telemetry: Arc<Telemetry>,
    failures: Arc<FailureLog>,
    /// What the stand-in engine answers proposal queries with.
    proposals: Arc<Mutex<Vec<PendingProposal>>>,
}

/// Tokens of four people, by name.
fn people() -> (BTreeMap<&'static str, String>, TokenDirectory) {
    let mut tokens = BTreeMap::new();
    let mut text = String::new();
    for (name, groups, roles) in [
        ("olga", vec!["sre"], vec![Role::Operator]),
        ("bob", vec!["search-oncall"], vec![Role::Approver]),
        ("vic", vec![], vec![Role::Viewer]),
        ("nobody", vec![], vec![]),
    ] {
        let token = new_token().unwrap();
        let groups: Vec<String> = groups.into_iter().map(str::to_owned).collect();
        text.push_str(&entry_yaml(name, name, &token, &groups, &roles, None));
        tokens.insert(name, token);
    }
    (tokens, TokenDirectory::parse(&text, "tokens.yaml").unwrap())
}

async fn start(directory: TokenDirectory) -> Server {
    vigil_connectors::install_crypto_provider();
    let (instructions, mut instructions_rx) = mpsc::channel::<Instruction>(16);
    let (proposal_requests, mut proposal_requests_rx) = mpsc::channel::<ProposalsRequest>(16);
    let (checkpoints, _) = mpsc::channel(1);
    let events = Arc::new(Mutex::new(Vec::new()));
    let telemetry = Arc::new(Telemetry::default());
    let failures = Arc::new(FailureLog::default());
    let proposals: Arc<Mutex<Vec<PendingProposal>>> = Arc::default();
    // The stand-in engine: accepts kill switches, leaves unkills unanswered, refuses
    // everything else.
    let recorded = Arc::clone(&events);
    tokio::spawn(async move {
        while let Some(Instruction { event, reply }) = instructions_rx.recv().await {
            if let Event::Human { command, .. } = &event {
                let accepted = matches!(command, HumanCommand::Kill { .. });
                if !matches!(command, HumanCommand::Unkill { .. }) {
                    let _ = reply.send(InstructionAnswer {
                        accepted,
                        outcome: if accepted { "done" } else { "no" }.to_owned(),
                    });
                }
            }
            recorded.lock().unwrap().push(event);
        }
    });
    let pending = Arc::clone(&proposals);
    tokio::spawn(async move {
        while let Some(reply) = proposal_requests_rx.recv().await {
            let _ = reply.send(pending.lock().unwrap().clone());
        }
    });
    let router: Router = router(AdminState {
        authenticator: Arc::new(Authenticator::with_tokens(
            directory,
            RoleMapping::default(),
        )),
        limits: InstructionLimits {
            max_reason_chars: 100,
        },
        checkpoints,
        instructions,
        proposals: proposal_requests,
        telemetry: Arc::clone(&telemetry),
        failures: Arc::clone(&failures),
        clock: Clock::system(),
        ask: None,
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    Server {
        url,
        client: reqwest::Client::new(),
        events,
        telemetry,
        failures,
        proposals,
    }
}

impl Server {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        content_type: Option<&str>,
        body: Option<String>,
    ) -> (u16, Value) {
        let mut request = self.client.request(method, format!("{}{path}", self.url));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        if let Some(body) = body {
            request = request.body(body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        let body =
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"));
        (status, body)
    }

    async fn instruct(&self, token: Option<&str>, body: &Value) -> (u16, Value) {
        self.call(
            reqwest::Method::POST,
            "/v1/admin/human",
            token,
            Some("application/json"),
            Some(body.to_string()),
        )
        .await
    }
}

fn kill() -> Value {
    json!({"reason": "maintenance", "command": {"command": "kill", "scope": {"scope": "global"}}})
}

#[tokio::test]
async fn the_event_carries_the_authenticated_principal_never_a_claimed_name() {
    let (tokens, directory) = people();
    let server = start(directory).await;
    let (status, body) = server.instruct(Some(&tokens["olga"]), &kill()).await;
    assert_eq!((status, &body["by"]), (200, &json!("olga")), "{body}");
    // A body that names the sender is fine; one that names someone else is refused and
    // never reaches the engine.
    let mut claimed = kill();
    claimed["by"] = json!(" OLGA ");
    assert_eq!(
        server.instruct(Some(&tokens["olga"]), &claimed).await.0,
        200
    );
    claimed["by"] = json!("sre-platform");
    let (status, body) = server.instruct(Some(&tokens["olga"]), &claimed).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("belongs to `olga`")
    );
    let events = server.events.lock().unwrap().clone();
    assert_eq!(events.len(), 2);
    for event in events {
        let Event::Human { by, principal, .. } = event else {
            panic!("{event:?}")
        };
        let principal = principal.expect("the principal travels with the event");
        assert_eq!((by.as_str(), principal.name.as_str()), ("olga", "olga"));
        assert_eq!(principal.credential_id, "olga");
        assert_eq!(principal.roles, [Role::Operator]);
        assert_eq!(principal.groups, ["sre"]);
    }
    // The engine's refusal is a 409 with its reason.
    let silence = json!({"reason": "r", "command": {"command": "unsilence", "silence_id": "s"}});
    let (status, body) = server.instruct(Some(&tokens["olga"]), &silence).await;
    assert_eq!(
        (status, &body["accepted"], &body["outcome"]),
        (409, &json!(false), &json!("no"))
    );
    // An instruction whose reply is dropped unanswered is recorded, not yet answered: 202.
    let unkill =
        json!({"reason": "r", "command": {"command": "unkill", "scope": {"scope": "global"}}});
    let (status, body) = server.instruct(Some(&tokens["olga"]), &unkill).await;
    assert_eq!((status, &body["accepted"]), (202, &json!(null)), "{body}");
}

#[tokio::test]
async fn failed_authentication_is_401_counted_by_reason_and_summarised() {
    let (tokens, directory) = people();
    let server = start(directory).await;
    let cases: [(Option<&str>, &str); 3] = [
        (None, "no credential"),
        (Some("vigil_adm_guessed"), "the token is not known"),
        (
            Some("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.x"),
            "OIDC tokens are not accepted here",
        ),
    ];
    for (token, says) in cases {
        for _ in 0..3 {
            let (status, body) = server.instruct(token, &kill()).await;
            assert_eq!(status, 401, "{body}");
            assert!(body["error"].as_str().unwrap().contains(says), "{body}");
        }
    }
    // A malformed header.
    let response = server
        .client
        .get(format!("{}/v1/admin/proposals", server.url))
        .header("authorization", "Basic b2xnYTpzZWNyZXQ=")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
    assert!(server.events.lock().unwrap().is_empty());
    let metrics = server.telemetry.render();
    for line in [
        "vigil_admin_auth_failures_total{reason=\"missing\"} 3",
        "vigil_admin_auth_failures_total{reason=\"unknown_token\"} 3",
        "vigil_admin_auth_failures_total{reason=\"oidc_unavailable\"} 3",
        "vigil_admin_auth_failures_total{reason=\"malformed_header\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} in {metrics}");
    }
    // One peer (unknown here: the plain test server attaches no peer), ten failures: the
    // first was logged, the rest make one summary line.
    let summary = server
        .failures
        .take_summary(std::time::Duration::from_secs(60))
        .unwrap();
    assert!(
        summary.starts_with("10 admin API authentication failures from 1 peer(s)"),
        "{summary}"
    );
    assert!(
        server
            .failures
            .take_summary(std::time::Duration::from_secs(60))
            .is_none(),
        "the interval was reset"
    );
    let _ = tokens;
}

#[tokio::test]
async fn roles_gate_reading_and_every_error_is_json() {
    let (tokens, directory) = people();
    let server = start(directory).await;
    let action = Action::LitellmBlockKey {
        source: "gw".to_owned(),
        key: "k".to_owned(),
    };
    server.proposals.lock().unwrap().push(PendingProposal {
        proposal_id: "inc-1/proposal-1".to_owned(),
        incident_id: "inc-1".to_owned(),
        step_id: "block-key".to_owned(),
        action: action.clone(),
        action_hash: "h".to_owned(),
        requested_by: "alice".to_owned(),
        why: "advisory mode".to_owned(),
    });
    let get = |path: &'static str, token: &'static str| {
        let token = tokens[token].clone();
        let server = &server;
        async move {
            server
                .call(reqwest::Method::GET, path, Some(&token), None, None)
                .await
        }
    };
    let (status, body) = get("/v1/admin/proposals", "vic").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        serde_json::from_value::<Vec<ProposalView>>(body).unwrap(),
        [ProposalView {
            proposal_id: "inc-1/proposal-1".to_owned(),
            incident_id: "inc-1".to_owned(),
            step_id: "block-key".to_owned(),
            describe: action.describe(),
            action,
            action_hash: "h".to_owned(),
            requested_by: "alice".to_owned(),
            why: "advisory mode".to_owned(),
        }]
    );
    let (status, body) = get("/v1/admin/proposals", "nobody").await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(
        body["error"],
        "nobody is authenticated but does not hold the `viewer` role"
    );
    let (status, body) = get("/v1/admin/whoami", "bob").await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"name": "bob", "credential_id": "bob", "via": "token",
               "groups": ["search-oncall"], "roles": ["viewer", "approver"]})
    );
    let (status, body) = get("/v1/admin/nope", "bob").await;
    assert_eq!(
        (status, &body["error"]),
        (404, &json!("no such admin route"))
    );
    let (status, body) = server
        .call(
            reqwest::Method::DELETE,
            "/v1/admin/human",
            Some(&tokens["bob"]),
            None,
            None,
        )
        .await;
    assert_eq!(status, 405, "{body}");
    // The checkpoint needs an operator.
    let (status, _) = server
        .call(
            reqwest::Method::POST,
            "/v1/admin/checkpoint",
            Some(&tokens["bob"]),
            None,
            None,
        )
        .await;
    assert_eq!(status, 403);
    // Bodies: JSON only, bounded, every problem named.
    let bob = Some(tokens["bob"].as_str());
    let (status, body) = server
        .call(
            reqwest::Method::POST,
            "/v1/admin/human",
            bob,
            Some("text/plain"),
            Some(kill().to_string()),
        )
        .await;
    assert_eq!(status, 415, "{body}");
    let (status, body) = server
        .call(
            reqwest::Method::POST,
            "/v1/admin/human",
            bob,
            None,
            Some(kill().to_string()),
        )
        .await;
    assert_eq!(status, 415, "{body}");
    let huge = json!({"reason": "x".repeat(70_000), "command": {"command": "kill", "scope": {"scope": "global"}}});
    let (status, body) = server.instruct(bob, &huge).await;
    assert_eq!(status, 413, "{body}");
    let long_reason = json!({"by": "bob\nINFO forged", "reason": "x".repeat(101),
        "command": {"command": "silence", "silence_id": "s", "expires_at": 0}});
    let (status, body) = server.instruct(bob, &long_reason).await;
    assert_eq!(status, 400);
    let paths: Vec<&str> = body["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|problem| problem["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["by", "reason", "command.expires_at"]);
    assert!(server.events.lock().unwrap().is_empty());
    let _ = KillScope::Global;
}
