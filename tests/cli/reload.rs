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
    let deadline = Instant::now() + Duration::from_secs(60);
    while http_get(served.address, "/healthz").map_or(true, |r| r.status != 200) {
        assert!(
            Instant::now() < deadline,
            "vigil serve never answered /healthz"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

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
