//! Advisory mode with a person in the loop, through the real binary and the admin API.
//!
//! vigil proposes blocking a runaway key and changes nothing. `vigil approve` by the
//! runbook's requester is refused, and so is a request without the admin token; `vigil
//! approve` by someone else carries out exactly the proposed step, which is then verified.
//! Every instruction is in the ledger with who gave it and what vigil made of it.

use std::time::Duration;

use crate::crash::{Stack, wait_for_line};
use crate::ledger::read_rows;
use crate::serve::Served;
use crate::support::{Finished, TempDir, finish, vigil, vigil_command};

const TOKEN_ENV: &str = "VIGIL_TEST_ADMIN_TOKEN";
const TOKEN: &str = "admin-token-for-the-approval-test";
const LIMIT: Duration = Duration::from_secs(60);

/// Runs an admin command of the CLI against the served daemon.
fn admin(served: &Served, dir: &TempDir, args: &[&str], token: &str) -> Finished {
    let url = format!("http://{}", served.address);
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--url", &url, "--token-env", TOKEN_ENV]);
    let mut command = vigil_command(all, dir.path());
    command.env(TOKEN_ENV, token);
    finish(command, LIMIT)
}

#[test]
fn an_advisory_proposal_is_approved_by_another_person_and_never_by_its_requester() {
    let dir = TempDir::new("approve");
    let token_file = dir.join("admin-token");
    std::fs::write(&token_file, TOKEN).expect("writing the token file");
    let extra = format!(
        "admin:\n  token: {{ file: \"{}\" }}\n",
        token_file.display()
    );
    let stack = Stack::start(&dir, "advisory", &extra);
    let mut served = Served::start(&stack.config, dir.path());
    // This config signs no checkpoints: asking for one says so.
    let checkpoint =
        crate::support::http_post_json(served.address, "/v1/admin/checkpoint", Some(TOKEN), "")
            .expect("POST");
    assert_eq!(checkpoint.status, 503, "{}", checkpoint.body);
    assert!(
        checkpoint.body.contains("checkpoints are not configured"),
        "{}",
        checkpoint.body
    );
    let runaway = stack.runaway_after_warmup(&served);
    let line = wait_for_line(&mut served, "step proposed");
    assert!(!stack.gateway.is_blocked(&runaway), "{line}");

    let listed = admin(&served, &dir, &["proposals"], TOKEN);
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

    // Without the right token: refused before anything reaches the engine.
    let intruder = admin(
        &served,
        &dir,
        &["approve", &proposal_id, "--as", "mallory"],
        "wrong",
    );
    assert_eq!(intruder.code(), 1, "{intruder}");
    assert!(intruder.stderr.contains("401"), "{intruder}");
    // The requester (the runbook's owner, `vigil` by default) cannot approve.
    let own = admin(
        &served,
        &dir,
        &["approve", &proposal_id, "--as", "vigil"],
        TOKEN,
    );
    assert_eq!(own.code(), 1, "{own}");
    assert!(
        own.stderr
            .contains("refused: vigil requested this step and cannot also approve it"),
        "{own}"
    );
    assert!(!stack.gateway.is_blocked(&runaway));

    let approved = admin(
        &served,
        &dir,
        &[
            "approve",
            &proposal_id,
            "--as",
            "alice",
            "--reason",
            "checked the traffic",
        ],
        TOKEN,
    );
    approved.assert_success("vigil approve by another person");
    assert!(approved.stdout.contains("accepted: approved"), "{approved}");
    wait_for_line(&mut served, "incident resolved");
    assert!(stack.gateway.is_blocked(&runaway));
    let (code, stderr) = served.stop_with("TERM");
    assert_eq!(code, Some(0), "{stderr}");

    let rows = stack.runtime.block_on(read_rows(&stack.ledger));
    let human: Vec<&str> = rows
        .iter()
        .filter(|row| row.payload.contains("\"record\":\"human_action\""))
        .map(|row| row.payload.as_str())
        .collect();
    assert_eq!(human.len(), 2, "{human:#?}");
    assert!(human[0].contains("\"by\":\"vigil\"") && human[0].contains("\"accepted\":false"));
    assert!(human[1].contains("\"by\":\"alice\"") && human[1].contains("\"accepted\":true"));
    let shown = stack.ledger.to_str().expect("a UTF-8 path");
    vigil(["ledger", "verify", "--db", shown], dir.path()).assert_success("ledger verify");
}
