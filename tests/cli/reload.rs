//! `vigil serve` reloads its Cedar policies on SIGHUP: a set with a problem is refused whole,
//! with the problem's file and line, and the set in force stays; a valid set takes over and
//! the ledger records it (with its texts, so that replay decides with it from that entry on).

use std::time::{Duration, Instant};

use crate::crash::wait_for_line;
use crate::ledger::session_payloads;
use crate::serve::Served;
use crate::support::{TempDir, http_get, repo_root, vigil};

fn hangup(served: &Served) {
    let sent = std::process::Command::new("kill")
        .args(["-HUP", &served.child.id().to_string()])
        .status()
        .expect("running kill");
    assert!(sent.success(), "kill -HUP failed");
}

/// Waits until the daemon answers, which it does only once it listens for SIGHUP (before,
/// SIGHUP's default action would end it).
fn wait_healthy(served: &Served) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while http_get(served.address, "/healthz").map_or(true, |r| r.status != 200) {
        assert!(
            Instant::now() < deadline,
            "vigil serve never answered /healthz"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn sighup_reloads_valid_policies_and_keeps_the_set_in_force_when_they_are_not() {
    let dir = TempDir::new("reload");
    let policies = dir.join("policies");
    std::fs::create_dir_all(&policies).unwrap();
    for entry in std::fs::read_dir(repo_root().join("policies")).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::copy(&path, policies.join(path.file_name().unwrap())).unwrap();
        }
    }
    std::fs::create_dir_all(dir.join("runbooks")).unwrap();
    let ledger = dir.join("ledger.db");
    let config = dir.join("vigil.yaml");
    std::fs::write(
        &config,
        format!(
            "mode: autonomous\nledger:\n  sqlite_path: \"{}\"\npolicies_dir: policies\nrunbooks_dir: runbooks\n\
             sources:\n  - name: gateway\n    kind: litellm\n    url: http://127.0.0.1:9/metrics/\n\
             detectors: []\npager:\n  kind: log\n",
            ledger.display()
        ),
    )
    .unwrap();
    let mut served = Served::start(&config, dir.path());
    wait_healthy(&served);

    // A policy that names an attribute the schema does not have: refused whole.
    std::fs::write(
        policies.join("extra.cedar"),
        "@id(\"bad-extra\")\npermit (principal, action, resource) when { context.nope == 1 };\n",
    )
    .unwrap();
    hangup(&served);
    let refused = wait_for_line(&mut served, "the policies were not reloaded");
    assert!(refused.contains("extra.cedar"), "{refused}");

    // Fixed: the new set takes over.
    std::fs::write(
        policies.join("extra.cedar"),
        "@id(\"notify-on-anything\")\npermit (principal, action == Vigil::Action::\"notify\", resource);\n",
    )
    .unwrap();
    hangup(&served);
    let reloaded = wait_for_line(&mut served, "policies reloaded");
    let (code, stderr) = served.stop_with("TERM");
    assert_eq!(code, Some(0), "{stderr}");

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let payloads = runtime.block_on(session_payloads(&ledger));
    let types: Vec<&str> = payloads
        .iter()
        .map(|payload| payload["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        ["session_started", "policies_reloaded", "session_ended"],
        "{reloaded}"
    );
    assert_ne!(
        payloads[0]["policy_set_hash"], payloads[1]["policy_set_hash"],
        "the reload must record the new set"
    );
    let shown = ledger.to_str().unwrap();
    vigil(["ledger", "verify", "--db", shown], dir.path()).assert_success("ledger verify");
    let show = vigil(["ledger", "show", "--db", shown], dir.path());
    assert!(
        show.stdout
            .contains("session policies_reloaded (policy set"),
        "{show}"
    );
}

#[test]
fn replay_decides_with_the_policies_that_were_in_force_after_a_reload() {
    let dir = TempDir::new("reload-replay");
    let policies = dir.join("policies");
    std::fs::create_dir_all(&policies).unwrap();
    for entry in std::fs::read_dir(repo_root().join("policies")).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::copy(&path, policies.join(path.file_name().unwrap())).unwrap();
        }
    }
    let stack = crate::crash::Stack::start_with_policies(&dir, "autonomous", "", &policies);
    let mut served = Served::start(&stack.config, dir.path());
    wait_healthy(&served);
    // The reloaded set no longer permits blocking a runaway key.
    std::fs::remove_file(policies.join("runaway-keys.cedar")).unwrap();
    hangup(&served);
    wait_for_line(&mut served, "policies reloaded");
    stack.runaway_after_warmup(&served);
    wait_for_line(&mut served, "incident escalated");
    let (code, stderr) = served.stop_with("TERM");
    assert_eq!(code, Some(0), "{stderr}");

    let shown = stack.ledger.to_str().unwrap();
    let show = vigil(["ledger", "show", "--db", shown], dir.path());
    let incident = crate::support::incident_ids(&show.stdout)
        .into_iter()
        .next()
        .expect("an incident");
    // With the session's first policy set the block would be allowed; replay must use the
    // reloaded one, which denied it, and so find every decision as recorded.
    let replay = vigil(
        ["replay", "--db", shown, "--incident", &incident],
        dir.path(),
    );
    replay.assert_success("replay after a policy reload");
    assert!(
        replay.stdout.contains("result: every command matches"),
        "{replay}"
    );
    assert!(!stack.gateway.is_blocked(&stack.raw_keys[2]));
}

#[test]
fn sighup_reloads_the_admin_tokens_and_keeps_them_when_the_file_is_broken() {
    use crate::support::{Person, admin_tokens, http_get_with_bearer};
    let dir = TempDir::new("reload-tokens");
    std::fs::create_dir_all(dir.join("runbooks")).unwrap();
    let (tokens_file, tokens) = admin_tokens(
        dir.path(),
        &[Person {
            name: "olga",
            groups: &[],
            roles: &["viewer"],
        }],
    );
    let config = dir.join("vigil.yaml");
    std::fs::write(
        &config,
        format!(
            "mode: autonomous\nledger:\n  sqlite_path: \"{}\"\npolicies_dir: \"{}\"\nrunbooks_dir: runbooks\n\
             sources:\n  - name: gateway\n    kind: litellm\n    url: http://127.0.0.1:9/metrics/\n\
             detectors: []\nadmin:\n  tokens_file: \"{}\"\npager:\n  kind: log\n",
            dir.join("ledger.db").display(),
            repo_root().join("policies").display(),
            tokens_file.display()
        ),
    )
    .unwrap();
    let mut served = Served::start(&config, dir.path());
    wait_healthy(&served);
    let address = served.address;
    let whoami = |token: &str| {
        http_get_with_bearer(address, "/v1/admin/whoami", token)
            .expect("GET /v1/admin/whoami")
            .status
    };
    assert_eq!(whoami(&tokens["olga"]), 200);
    // A new person: unknown until SIGHUP.
    let (_, added) = admin_tokens(
        dir.path(),
        &[Person {
            name: "bob",
            groups: &[],
            roles: &["approver"],
        }],
    );
    assert_eq!(whoami(&added["bob"]), 401);
    hangup(&served);
    wait_for_line(&mut served, "the admin tokens file was reloaded");
    assert_eq!(whoami(&added["bob"]), 200);
    // A broken file is refused whole; everyone's token keeps working.
    let text = std::fs::read_to_string(&tokens_file).unwrap();
    std::fs::write(
        &tokens_file,
        text.replace("roles: [approver]", "roles: [root]"),
    )
    .unwrap();
    hangup(&served);
    let refused = wait_for_line(&mut served, "the admin tokens were not reloaded");
    assert!(refused.contains("`root` is not a role"), "{refused}");
    assert_eq!(whoami(&added["bob"]), 200);
    assert_eq!(whoami(&tokens["olga"]), 200);
    let (code, stderr) = served.stop_with("TERM");
    assert_eq!(code, Some(0), "{stderr}");
}
