//! The HTTP exchanges behind an action's answer are in the ledger as a content-addressed
//! blob: `vigil ledger show` summarizes them, `vigil ledger blob` prints them, no secret is
//! anywhere in the database, replay still matches, and a deleted blob fails verification at
//! the entry that refers to it.

use crate::crash::{Stack, wait_for_line};
use crate::ledger::read_rows;
use crate::serve::Served;
use crate::support::{TempDir, incident_ids, vigil};

#[test]
fn an_actions_http_exchanges_are_recorded_without_secrets_and_verified() {
    let dir = TempDir::new("exchanges");
    let stack = Stack::start(&dir, "autonomous", "");
    let mut served = Served::start(&stack.config, dir.path());
    let runaway = stack.runaway_after_warmup(&served);
    wait_for_line(&mut served, "incident resolved");
    let (code, stderr) = served.stop_with("TERM");
    assert_eq!(code, Some(0), "{stderr}");

    let db = stack.ledger.to_str().expect("UTF-8").to_owned();
    let show = vigil(["ledger", "show", "--db", &db], dir.path());
    show.assert_success("ledger show");
    let finished: Vec<&str> = show
        .stdout
        .lines()
        .filter(|line| line.contains("event action_finished"))
        .collect();
    assert_eq!(finished.len(), 1, "{show}");
    assert!(finished[0].contains("POST http://127.0.0.1:"), "{show}");
    assert!(finished[0].contains("/key/block → 200 ("), "{show}");

    let rows = stack.runtime.block_on(read_rows(&stack.ledger));
    let payload = rows
        .iter()
        .find(|row| row.payload.contains("\"type\":\"action_finished\""))
        .map(crate::ledger::Row::payload_json)
        .expect("the action's answer");
    let hash = payload["exchanges_blob"]
        .as_str()
        .expect("the answer refers to its exchanges")
        .to_owned();
    let blob = vigil(["ledger", "blob", "--db", &db, &hash], dir.path());
    blob.assert_success("ledger blob");
    let exchanges: serde_json::Value = serde_json::from_str(&blob.stdout).expect("JSON");
    let block = exchanges
        .as_array()
        .and_then(|list| {
            list.iter().find(|exchange| {
                exchange["url"]
                    .as_str()
                    .is_some_and(|url| url.ends_with("/key/block"))
            })
        })
        .expect("the block request");
    assert_eq!(block["method"], "POST");
    assert_eq!(block["status"], 200);
    assert!(
        block["request_body"]
            .as_str()
            .is_some_and(|body| body.contains("key")),
        "{block}"
    );

    // No secret anywhere in the database files: not the master key, not a raw API key.
    let master_key = std::fs::read_to_string(dir.join("master-key")).expect("the master key");
    let mut bytes = Vec::new();
    for suffix in ["", "-wal"] {
        let mut name = stack.ledger.as_os_str().to_owned();
        name.push(suffix);
        if let Ok(content) = std::fs::read(std::path::PathBuf::from(name)) {
            bytes.extend(content);
        }
    }
    let text = String::from_utf8_lossy(&bytes);
    assert!(
        !text.contains(master_key.trim()),
        "the master key is in the ledger"
    );
    for raw_key in &stack.raw_keys {
        assert!(
            !text.contains(raw_key.as_str()),
            "a raw API key is in the ledger"
        );
    }
    assert!(stack.gateway.is_blocked(&runaway));

    vigil(["ledger", "verify", "--db", &db], dir.path()).assert_success("verify");
    let incident = incident_ids(&show.stdout)
        .into_iter()
        .next()
        .expect("an incident");
    let replay = vigil(["replay", "--db", &db, "--incident", &incident], dir.path());
    replay.assert_success("replay");

    // The evidence is covered by verification: without its blob, the answer's entry is named.
    crate::ledger::execute_blocking(
        &stack.ledger,
        &format!("DELETE FROM ledger_blobs WHERE hash = '{hash}'"),
    );
    let broken = vigil(["ledger", "verify", "--db", &db], dir.path());
    assert_eq!(broken.code(), 1, "{broken}");
    assert!(
        broken.stdout.contains(&format!(
            "refers to blob {hash}, which the ledger does not hold"
        )),
        "{broken}"
    );
}
