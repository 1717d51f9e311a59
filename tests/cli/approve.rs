//! Advisory mode with people in the loop, through the real binary and the admin API.
//!
//! vigil proposes blocking a runaway key and changes nothing. Each person has their own token
//! (made with `vigil admin-token add`), and the ledger records who the token proves, never a
//! name the client claims. The runbook's requester cannot approve under any spelling of its
//! name; an approver off the key's team's rotation is denied by Cedar; a stranger's token is
//! refused with 401 and counted; the on-call approver's approval carries out exactly the
//! proposed step, which is then verified.

use std::time::Duration;

use crate::crash::{Stack, wait_for_line};
use crate::ledger::read_rows;
use crate::serve::Served;
use crate::support::{Finished, Person, TempDir, admin_tokens, finish, vigil, vigil_command};

const TOKEN_ENV: &str = "VIGIL_TEST_ADMIN_TOKEN";
const LIMIT: Duration = Duration::from_secs(60);

/// Runs an admin command of the CLI against the served daemon with `token`.
fn admin(served: &Served, dir: &TempDir, args: &[&str], token: &str) -> Finished {
    let url = format!("http://{}", served.address);
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--url", &url, "--token-env", TOKEN_ENV]);
    let mut command = vigil_command(all, dir.path());
    command.env(TOKEN_ENV, token);
    finish(command, LIMIT)
}

#[test]
fn an_advisory_proposal_is_approved_by_the_on_call_approver_and_never_by_its_requester() {
    let dir = TempDir::new("approve");
    // The runbook's owner (`vigil`) holds a token too, as a team's service account would.
    let (tokens_file, tokens) = admin_tokens(
        dir.path(),
        &[
            Person {
                name: "Vigil",
                groups: &["apps-oncall"],
                roles: &["admin"],
            },
            Person {
                name: "alice@example.com",
                groups: &["apps-oncall"],
                roles: &["approver"],
            },
            Person {
                name: "bob@example.com",
                groups: &["web-oncall"],
                roles: &["approver"],
            },
            Person {
                name: "olga@example.com",
                groups: &["sre"],
                roles: &["operator"],
            },
        ],
    );
    let extra = format!("admin:\n  tokens_file: \"{}\"\n", tokens_file.display());
    let stack = Stack::start(&dir, "advisory", &extra);
    let mut served = Served::start(&stack.config, dir.path());
    // This config signs no checkpoints: asking for one says so (an operator may ask).
    let checkpoint = crate::support::http_post_json(
        served.address,
        "/v1/admin/checkpoint",
        Some(&tokens["olga@example.com"]),
        "",
    )
    .expect("POST");
    assert_eq!(checkpoint.status, 503, "{}", checkpoint.body);
    assert!(
        checkpoint.body.contains("checkpoints are not configured"),
        "{}",
        checkpoint.body
    );
    let whoami = admin(&served, &dir, &["whoami"], &tokens["alice@example.com"]);
    whoami.assert_success("vigil whoami");
    assert!(whoami.stdout.starts_with("alice@example.com\n"), "{whoami}");
    assert!(
        whoami.stdout.contains("roles:      viewer, approver"),
        "{whoami}"
    );

    let runaway = stack.runaway_after_warmup(&served);
    let line = wait_for_line(&mut served, "step proposed");
    assert!(!stack.gateway.is_blocked(&runaway), "{line}");

    let listed = admin(&served, &dir, &["proposals"], &tokens["bob@example.com"]);
    listed.assert_success("vigil proposals");
    let proposal_id = listed
        .stdout
        .lines()
        .next()
        .expect("a proposal")
        .trim()
        .to_owned();
    assert!(proposal_id.contains("/proposal-"), "{listed}");
    assert!(listed.stdout.contains("requested by: vigil"), "{listed}");

    // A stranger's token: refused before anything reaches the engine.
    let intruder = admin(
        &served,
        &dir,
        &["approve", &proposal_id],
        "vigil_adm_guessed",
    );
    assert_eq!(intruder.code(), 1, "{intruder}");
    assert!(intruder.stderr.contains("401"), "{intruder}");
    // A valid token that claims to be someone else: refused, and nothing is recorded.
    let claims = admin(
        &served,
        &dir,
        &["approve", &proposal_id, "--as", "alice@example.com"],
        &tokens["bob@example.com"],
    );
    assert_eq!(claims.code(), 1, "{claims}");
    assert!(claims.stderr.contains("403"), "{claims}");
    // The requester (the runbook's owner, `vigil`), with its own admin token: refused.
    let own = admin(&served, &dir, &["approve", &proposal_id], &tokens["Vigil"]);
    assert_eq!(own.code(), 1, "{own}");
    assert!(
        own.stderr
            .contains("refused (vigil): vigil requested this step and cannot also approve it"),
        "{own}"
    );
    // An approver on another team's rotation: Cedar says no.
    let off_team = admin(
        &served,
        &dir,
        &["approve", &proposal_id, "--reason", "looks fine"],
        &tokens["bob@example.com"],
    );
    assert_eq!(off_team.code(), 1, "{off_team}");
    assert!(
        off_team.stderr.contains("no policy permits you to approve"),
        "{off_team}"
    );
    assert!(!stack.gateway.is_blocked(&runaway));

    let approved = admin(
        &served,
        &dir,
        &["approve", &proposal_id, "--reason", "checked the traffic"],
        &tokens["alice@example.com"],
    );
    approved.assert_success("vigil approve by the on-call approver");
    assert!(
        approved
            .stdout
            .contains("accepted (alice@example.com): approved"),
        "{approved}"
    );
    wait_for_line(&mut served, "incident resolved");
    assert!(stack.gateway.is_blocked(&runaway));
    let metrics = crate::support::http_get(served.address, "/metrics").expect("GET /metrics");
    assert!(
        metrics
            .body
            .contains("vigil_admin_auth_failures_total{reason=\"unknown_token\"} 1"),
        "{}",
        metrics.body
    );
    let (code, stderr) = served.stop_with("TERM");
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("admin API authentication failed"),
        "the failed login is logged with its peer: {stderr}"
    );

    let rows = stack.runtime.block_on(read_rows(&stack.ledger));
    let human: Vec<&str> = rows
        .iter()
        .filter(|row| row.payload.contains("\"record\":\"human_action\""))
        .map(|row| row.payload.as_str())
        .collect();
    assert_eq!(human.len(), 3, "{human:#?}");
    let alice_id = "\"credential_id\":\"alice@example.com-";
    assert!(human[0].contains("\"by\":\"vigil\"") && human[0].contains("\"accepted\":false"));
    assert!(
        human[1].contains("\"by\":\"bob@example.com\"") && human[1].contains("\"accepted\":false")
    );
    assert!(
        human[2].contains("\"by\":\"alice@example.com\"")
            && human[2].contains("\"accepted\":true")
            && human[2].contains(alice_id),
        "{}",
        human[2]
    );
    let decisions = rows
        .iter()
        .filter(|row| row.payload.contains("\"type\":\"human_decided\""))
        .count();
    assert_eq!(decisions, 2, "Cedar decided bob's and alice's approvals");
    let shown = stack.ledger.to_str().expect("a UTF-8 path");
    vigil(["ledger", "verify", "--db", shown], dir.path()).assert_success("ledger verify");
    // Replay decides the people's instructions again with the recorded policies.
    vigil(["replay", "--db", shown, "--all"], dir.path()).assert_success("replay --all");
}
