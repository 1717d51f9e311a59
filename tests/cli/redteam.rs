//! The red team: every attack of the hardening review, as an attacker and a careless
//! operator would try them, against one real `vigil serve` with the intake and the admin API
//! on, counted. Each bad input must be refused (and, where it says so, refused loudly but
//! once in the log); none may be accepted. The count is printed and written to
//! `target/tmp/redteam-summary.txt`, which `.ci/run` prints.
//!
//! The attacks: guessed and malformed admin credentials (a brute force must be visible and
//! must not flood the log), a credential claiming another name, the requester approving its
//! own proposal under other spellings of its name, an approver off the owning rotation,
//! silences without scope, too long or too long for the role, admin bodies that are not
//! JSON, too large, too deep or malformed, a forged log line in a reason, unauthenticated and
//! malformed pushes, a push flood of distinct series past the limit, and an unknown incident
//! asked of the ledger.

use std::net::SocketAddr;
use std::time::Duration;

use crate::crash::{Stack, wait_for_line};
use crate::serve::Served;
use crate::support::{
    Person, Response, TempDir, admin_tokens, http_request, strong_token, vigil, write_secret,
};

/// What the red team tried and what got through that should not have.
#[derive(Default)]
struct Tally {
    tried: usize,
    wrongly_accepted: Vec<String>,
}

impl Tally {
    /// A bad input whose answer must not be a success.
    fn refused(&mut self, what: &str, answer: &std::io::Result<Response>) {
        self.tried += 1;
        match answer {
            Ok(response) if (200..300).contains(&response.status) => self
                .wrongly_accepted
                .push(format!("{what}: {} {}", response.status, response.body)),
            // A refusal, or a connection the server closed: either way not accepted.
            Ok(_) | Err(_) => {}
        }
    }

    /// A bad input the engine must refuse (HTTP 409 with `accepted: false`).
    fn refused_by_engine(&mut self, what: &str, answer: &std::io::Result<Response>) {
        self.tried += 1;
        match answer {
            Ok(response) if response.status == 409 => {}
            Ok(response) => self
                .wrongly_accepted
                .push(format!("{what}: {} {}", response.status, response.body)),
            Err(error) => self.wrongly_accepted.push(format!("{what}: {error}")),
        }
    }
}

fn post(
    address: SocketAddr,
    path: &str,
    token: Option<&str>,
    content_type: &str,
    body: &str,
) -> std::io::Result<Response> {
    let auth = token.map(|token| format!("Bearer {token}"));
    let mut headers = vec![("Content-Type", content_type)];
    if let Some(auth) = &auth {
        headers.push(("Authorization", auth.as_str()));
    }
    http_request(address, "POST", path, &headers, body)
}

fn instruct(
    address: SocketAddr,
    token: &str,
    body: &serde_json::Value,
) -> std::io::Result<Response> {
    post(
        address,
        "/v1/admin/human",
        Some(token),
        "application/json",
        &body.to_string(),
    )
}

fn metric(metrics: &str, line_start: &str) -> f64 {
    metrics
        .lines()
        .find(|line| line.starts_with(line_start))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
        .unwrap_or(0.0)
}

#[test]
fn every_attack_of_the_review_is_refused_and_none_gets_through() {
    let dir = TempDir::new("redteam");
    let (tokens_file, tokens) = admin_tokens(
        dir.path(),
        &[
            // The runbooks' owner, `vigil`, under three spellings of its name.
            Person {
                name: "Vigil",
                groups: &["apps-oncall"],
                roles: &["admin"],
            },
            Person {
                name: "ＶＩＧＩＬ",
                groups: &["apps-oncall"],
                roles: &["approver"],
            },
            Person {
                name: "vi\u{200B}gil ",
                groups: &["apps-oncall"],
                roles: &["approver"],
            },
            Person {
                name: "bob",
                groups: &["web-oncall"],
                roles: &["approver"],
            },
            Person {
                name: "olga",
                groups: &["sre"],
                roles: &["operator"],
            },
            Person {
                name: "alice",
                groups: &["apps-oncall"],
                roles: &["approver"],
            },
        ],
    );
    let intake_token = strong_token("redteam-intake");
    write_secret(&dir.join("intake-token"), &intake_token);
    let extra = format!(
        "intake:\n  bearer_token: {{ file: \"{}\" }}\n  max_body_bytes: 1048576\nstore:\n  max_pushed_series: 500\n\
         admin:\n  tokens_file: \"{}\"\nserver:\n  refused_log_interval_secs: 1\n",
        dir.join("intake-token").display(),
        tokens_file.display()
    );
    let stack = Stack::start(&dir, "advisory", &extra);
    let mut served = Served::start(&stack.config, dir.path());
    let address = served.address;
    let mut tally = Tally::default();

    // 1. A brute force of the admin token: refused, counted, and visible without a flood.
    for attempt in 0..300 {
        let guess = format!("vigil_adm_guess{attempt}");
        let answer = http_request(
            address,
            "GET",
            "/v1/admin/proposals",
            &[("Authorization", &format!("Bearer {guess}"))],
            "",
        );
        tally.refused("guessed admin token", &answer);
    }
    let long_header = format!("Bearer {}", "x".repeat(60_000));
    for header in [
        "Basic b2xnYTpzZWNyZXQ=",
        "Bearer",
        "Bearer   ",
        "Token abc",
        &long_header,
    ] {
        let answer = http_request(
            address,
            "GET",
            "/v1/admin/whoami",
            &[("Authorization", header)],
            "",
        );
        tally.refused("malformed Authorization header", &answer);
    }

    // 2. A valid credential claiming another name.
    for claimed in ["alice", "ALICE", "vigil", "alice\nINFO vigil: forged"] {
        let body = serde_json::json!({"by": claimed, "reason": "r",
            "command": {"command": "kill", "scope": {"scope": "global"}}});
        tally.refused("a claimed name", &instruct(address, &tokens["bob"], &body));
    }

    // 3. Silences that need a scope, that last too long, or that need an admin.
    let now_ms = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970")
            .as_millis(),
    )
    .expect("fits");
    let silence = |id: &str, detector: Option<&str>, days: f64, reason: &str| {
        serde_json::json!({"reason": reason, "command": {"command": "silence", "silence_id": id,
            "detector": detector, "expires_at": now_ms + (days * 86_400_000.0) as i64}})
    };
    for (what, body) in [
        ("a silence without scope", silence("s1", None, 0.1, "quiet")),
        (
            "a silence of 100,000 days",
            silence("s2", Some("token-spike"), 100_000.0, "quiet"),
        ),
        (
            "a silence of an unknown detector",
            silence("s3", Some("nope"), 0.1, "quiet"),
        ),
        (
            "a silence of 36 h by an operator",
            silence("s4", Some("token-spike"), 1.5, "quiet"),
        ),
        (
            "a silence without a reason",
            silence("s5", Some("token-spike"), 0.1, " "),
        ),
    ] {
        tally.refused_by_engine(what, &instruct(address, &tokens["olga"], &body));
    }

    // 4. Admin bodies that are not what the API takes.
    let kill = serde_json::json!({"reason": "r", "command": {"command": "kill", "scope": {"scope": "global"}}});
    let deep = format!(
        "{{\"command\": {}{}}}",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let big_by = format!(
        "{{\"by\": \"{}\", \"command\": {{\"command\": \"kill\", \"scope\": {{\"scope\": \"global\"}}}}}}",
        "a".repeat(1_900_000)
    );
    for (what, content_type, body) in [
        (
            "an admin body as text/plain",
            "text/plain",
            kill.to_string(),
        ),
        (
            "an admin body as form data",
            "application/x-www-form-urlencoded",
            "command=kill".to_owned(),
        ),
        ("a 1.9 MB `by`", "application/json", big_by),
        ("JSON nested 100,000 deep", "application/json", deep),
        ("not JSON", "application/json", "{\"command\": ".to_owned()),
        (
            "an unknown field",
            "application/json",
            r#"{"command": {"command": "kill", "scope": {"scope": "global"}}, "sudo": true}"#
                .to_owned(),
        ),
        (
            "an unknown command",
            "application/json",
            r#"{"command": {"command": "rm -rf"}}"#.to_owned(),
        ),
        (
            "a control character in an id",
            "application/json",
            r#"{"reason": "r", "command": {"command": "unsilence", "silence_id": "a\u001b[31m"}}"#
                .to_owned(),
        ),
        (
            "an approval without a hash",
            "application/json",
            r#"{"command": {"command": "approve", "proposal_id": "x", "action_hash": "nope"}}"#
                .to_owned(),
        ),
    ] {
        let answer = post(
            address,
            "/v1/admin/human",
            Some(&tokens["olga"]),
            content_type,
            &body,
        );
        tally.refused(what, &answer);
    }

    // 5. A forged log line hidden in a reason: accepted as text, never as a line.
    let forged = "2026-12-03T00:00:00.000000Z  INFO vigil: approved by the admin";
    let body = serde_json::json!({"reason": format!("maintenance\n{forged}"),
        "command": {"command": "kill", "scope": {"scope": "runbook", "id": "block-runaway-key"}}});
    let answer = instruct(address, &tokens["olga"], &body).expect("the operator's kill switch");
    assert_eq!(answer.status, 200, "{}", answer.body);
    let body = serde_json::json!({"reason": "done",
        "command": {"command": "unkill", "scope": {"scope": "runbook", "id": "block-runaway-key"}}});
    let answer = instruct(address, &tokens["olga"], &body).expect("lifting it");
    assert_eq!(answer.status, 200, "{}", answer.body);

    // 6. Pushes without the token, and malformed ones with it.
    let eval = r#"{"results": [{"suite": "s", "case": "c", "passed": true, "model": "m", "prompt_name": "p", "prompt_version": "v1"}]}"#;
    for _ in 0..2000 {
        let answer = post(address, "/v1/push/evals", None, "application/json", eval);
        tally.refused("an unauthenticated push", &answer);
    }
    let nested = format!("{{\"results\": {}{}}}", "[".repeat(5000), "]".repeat(5000));
    let bad_pushes: Vec<(&str, String)> = vec![
        ("/v1/push/evals", "not json".to_owned()),
        ("/v1/push/evals", r#"{"results": [{"suite": "s", "case": "c", "passed": "yes"}]}"#.to_owned()),
        ("/v1/push/evals", r#"{"results": [{"suite": "s", "case": "c", "passed": true, "score": 1e999}]}"#.to_owned()),
        ("/v1/push/evals", r#"{"results": [{"suite": "s", "case": "c", "passed": true, "score": NaN}]}"#.to_owned()),
        ("/v1/push/evals", nested.clone()),
        ("/v1/push/agent-runs", r#"{"runs": [{"run_id": "r", "agent": "a", "iterations": -4, "outcome": "done"}]}"#.to_owned()),
        ("/v1/push/agent-runs", r#"{"runs": 5}"#.to_owned()),
        ("/v1/push/alertmanager", r#"{"version": "3", "alerts": []}"#.to_owned()),
        ("/v1/push/alertmanager", r#"{"version": "4", "alerts": [{"labels": "x"}]}"#.to_owned()),
        ("/v1/traces", r#"{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "x", "spanId": "W47/95gDgQ==", "name": "chat", "attributes": [{"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}}]}]}]}]}"#.to_owned()),
        ("/v1/traces", "[".repeat(10_000)),
    ];
    for (path, body) in &bad_pushes {
        let answer = post(address, path, Some(&intake_token), "application/json", body);
        tally.refused(&format!("a malformed push to {path}"), &answer);
    }
    for (what, content_type) in [
        ("a protobuf push", "application/x-protobuf"),
        ("a push as text", "text/plain"),
    ] {
        let answer = post(
            address,
            "/v1/push/evals",
            Some(&intake_token),
            content_type,
            eval,
        );
        tally.refused(what, &answer);
    }

    // 7. A flood of distinct series past the limit: recorded, each refusal reported, none dropped silently.
    let mut refused_series = 0_u64;
    for batch in 0..3 {
        let results: Vec<serde_json::Value> = (0..1000)
            .map(|case| serde_json::json!({"suite": "s", "case": format!("c{case}"), "passed": true,
                "model": "m", "prompt_name": format!("prompt-{batch}-{case}"), "prompt_version": "v1"}))
            .collect();
        let answer = post(
            address,
            "/v1/push/evals",
            Some(&intake_token),
            "application/json",
            &serde_json::json!({ "results": results }).to_string(),
        )
        .expect("a push");
        assert_eq!(answer.status, 202, "{}", answer.body);
        let body: serde_json::Value = serde_json::from_str(&answer.body).expect("JSON");
        refused_series += body["series"]["refused"].as_u64().unwrap_or(0);
        tally.tried +=
            usize::try_from(body["series"]["refused"].as_u64().unwrap_or(0)).unwrap_or(0);
    }
    assert!(
        refused_series > 0,
        "the flood went past the limit of 500 series"
    );

    // 8. The requester approving its own proposal under every spelling, and an approver off
    // the owning team's rotation.
    stack.runaway_after_warmup(&served);
    wait_for_line(&mut served, "step proposed");
    // The list follows the engine's records a moment after the log line.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let proposal = loop {
        let listed = http_request(
            address,
            "GET",
            "/v1/admin/proposals",
            &[("Authorization", &format!("Bearer {}", tokens["alice"]))],
            "",
        )
        .expect("the proposals");
        let listed: serde_json::Value = serde_json::from_str(&listed.body).expect("JSON");
        if let Some(first) = listed.get(0) {
            break first.clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no proposal was listed"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let approve = serde_json::json!({"reason": "lgtm", "command": {"command": "approve",
        "proposal_id": proposal["proposal_id"], "action_hash": proposal["action_hash"]}});
    for name in ["Vigil", "ＶＩＧＩＬ", "vi\u{200B}gil ", "bob"] {
        tally.refused_by_engine(
            &format!("an approval by {name:?}"),
            &instruct(address, &tokens[name], &approve),
        );
    }
    let approved = instruct(address, &tokens["alice"], &approve).expect("alice's approval");
    assert_eq!(approved.status, 200, "{}", approved.body);
    wait_for_line(&mut served, "incident resolved");

    // What the daemon showed for all this.
    std::thread::sleep(Duration::from_millis(1500));
    let metrics = crate::support::http_get(address, "/metrics")
        .expect("GET /metrics")
        .body;
    let (code, stderr) = served.stop_with("TERM");
    assert_eq!(code, Some(0), "{stderr}");
    let admin_failures: Vec<&str> = metrics
        .lines()
        .filter(|line| line.starts_with("vigil_admin_auth_failures_total{"))
        .collect();
    assert_eq!(
        metric(
            &metrics,
            "vigil_admin_auth_failures_total{reason=\"unknown_token\"}"
        ),
        301.0,
        "300 guesses and one long header: {admin_failures:?}"
    );
    assert!(
        metric(
            &metrics,
            "vigil_http_refused_total{route=\"/v1/push/evals\",reason=\"unauthorized\"}"
        ) >= 2000.0,
        "{metrics}"
    );
    assert!(
        metric(
            &metrics,
            "vigil_series_refused_total{source=\"push:evals\"}"
        ) >= refused_series as f64,
        "{metrics}"
    );
    let lines: Vec<&str> = stderr.lines().collect();
    let failed_logins = lines
        .iter()
        .filter(|line| line.contains("admin API authentication failed"))
        .count();
    assert_eq!(
        failed_logins, 1,
        "one line for the peer, the rest summarised:\n{stderr}"
    );
    assert!(
        lines
            .iter()
            .any(|line| line.contains("admin API authentication failures from")),
        "the brute force is summarised:\n{stderr}"
    );
    let cardinality = lines
        .iter()
        .filter(|line| line.contains("cardinality limit reached"))
        .count();
    assert_eq!(cardinality, 1, "one line per episode:\n{stderr}");
    assert!(
        lines.len() < 200,
        "{} log lines for thousands of refused requests:\n{stderr}",
        lines.len()
    );
    assert!(
        !lines.iter().any(|line| line.starts_with(forged)),
        "a reason forged a log line:\n{stderr}"
    );
    assert!(
        !stderr.contains('\u{1b}'),
        "colour codes in a log that is not a terminal"
    );

    // 9. The ledger: an unknown incident is an error, and everything still verifies.
    let shown = stack.ledger.to_str().expect("a UTF-8 path");
    let unknown = vigil(
        [
            "ledger",
            "show",
            "--db",
            shown,
            "--incident",
            "inc-000000000000",
        ],
        dir.path(),
    );
    tally.tried += 1;
    if unknown.code() != 1 {
        tally
            .wrongly_accepted
            .push(format!("ledger show of an unknown incident: {unknown}"));
    }
    vigil(["ledger", "verify", "--db", shown], dir.path()).assert_success("ledger verify");

    let summary = format!(
        "red team: {} bad inputs tried, {} accepted wrongly\n",
        tally.tried,
        tally.wrongly_accepted.len()
    );
    eprint!("{summary}");
    let _ = std::fs::write(
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("redteam-summary.txt"),
        &summary,
    );
    assert!(
        tally.wrongly_accepted.is_empty(),
        "accepted wrongly:\n{}",
        tally.wrongly_accepted.join("\n")
    );
}
