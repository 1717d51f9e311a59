//! Tampering with the runaway-key demo's ledger: a changed byte is caught by the hash chain,
//! and a rewrite that recomputes the chain is still caught by replay.

use crate::demo::runaway_demo;
use crate::ledger::{Row, read_rows, rewrite_rows};
use crate::support::{TempDir, vigil};

/// The index (in `rows`) of the recorded `runbook_selected` command.
fn runbook_selected(rows: &[Row]) -> usize {
    let found: Vec<usize> = rows
        .iter()
        .enumerate()
        .filter(|(_, row)| {
            row.kind == "command" && row.payload_json()["command"]["record"] == "runbook_selected"
        })
        .map(|(idx, _)| idx)
        .collect();
    assert_eq!(found.len(), 1, "expected one runbook_selected command");
    found[0]
}

#[tokio::test]
async fn ledger_verify_names_the_entry_whose_payload_changed() {
    let run = runaway_demo();
    run.finished.assert_success("vigil demo");
    let dir = TempDir::new("tamper-byte");
    let db = run.restore_ledger(&dir, "demo.db");
    let shown = db.to_str().expect("a UTF-8 path");
    vigil(["ledger", "verify", "--db", shown], dir.path())
        .assert_success("ledger verify before tampering");

    let rows = read_rows(&db).await;
    let target = runbook_selected(&rows);
    let mut edited = rows[target].clone();
    let byte_idx = edited
        .payload
        .find("autonomous")
        .expect("the runbook ran autonomously");
    // One byte: `autonomous` becomes `autonomouS`; the JSON stays valid.
    edited
        .payload
        .replace_range(byte_idx + 9..byte_idx + 10, "S");
    assert_eq!(edited.payload.len(), rows[target].payload.len());
    rewrite_rows(&db, &[edited.clone()]).await;

    let verify = vigil(["ledger", "verify", "--db", shown], dir.path());
    assert_eq!(verify.code(), 1, "a changed payload verified: {verify}");
    assert!(
        verify.stdout.contains(&format!(
            "BROKEN at entry {seq}: entry {seq} was modified",
            seq = edited.seq
        )),
        "verify does not name entry {}: {verify}",
        edited.seq
    );
}

#[tokio::test]
async fn replay_catches_a_rewrite_that_recomputes_the_hash_chain() {
    // What the hash chain alone cannot catch: whoever can write the database rewrites an
    // entry and recomputes every hash after it (and deletes the stored checkpoints, which
    // would catch it). Replay re-runs the engine and disagrees.
    let run = runaway_demo();
    run.finished.assert_success("vigil demo");
    let incident_id = run.incident_id();
    let dir = TempDir::new("tamper-rechain");
    let db = run.restore_ledger(&dir, "demo.db");
    let shown = db.to_str().expect("a UTF-8 path");

    let rows = read_rows(&db).await;
    // The published hash definitions are the ones the ledger uses: recomputing every stored
    // hash from the stored columns gives back the stored hashes.
    let mut previous = vigil_ledger::hash::GENESIS_CHAIN_HASH;
    for row in &rows {
        let leaf = row.computed_leaf_hash();
        assert_eq!(row.leaf_hash, leaf, "leaf hash of entry {}", row.seq);
        let chain = vigil_ledger::hash::chain_hash(&previous, &leaf);
        assert_eq!(row.chain_hash, chain, "chain hash of entry {}", row.seq);
        previous = chain;
    }

    let target = runbook_selected(&rows);
    let mut payload = rows[target].payload_json();
    assert_eq!(payload["command"]["mode"], "autonomous");
    payload["command"]["mode"] = "advisory".into();
    let mut rewritten: Vec<Row> = rows[target..].to_vec();
    rewritten[0].payload = vigil_ledger::canonical_json(&payload);
    let mut previous: [u8; 32] = match target.checked_sub(1) {
        Some(before) => rows[before]
            .chain_hash
            .clone()
            .try_into()
            .expect("32 bytes"),
        None => vigil_ledger::hash::GENESIS_CHAIN_HASH,
    };
    for row in &mut rewritten {
        let leaf = row.computed_leaf_hash();
        let chain = vigil_ledger::hash::chain_hash(&previous, &leaf);
        row.leaf_hash = leaf.to_vec();
        row.chain_hash = chain.to_vec();
        previous = chain;
    }
    rewrite_rows(&db, &rewritten).await;

    // The demo signs checkpoints: the one stored in the ledger catches the rewrite.
    let caught = vigil(["ledger", "verify", "--db", shown], dir.path());
    assert_eq!(caught.code(), 1, "{caught}");
    assert!(caught.stdout.contains("REWRITTEN"), "{caught}");
    // Whoever rewrote the log can delete the stored checkpoints too.
    let mut connection = crate::ledger::connect(&db).await;
    sqlx::query("DELETE FROM ledger_checkpoints")
        .execute(&mut connection)
        .await
        .expect("deleting the stored checkpoints");
    drop(connection);
    let verify = vigil(["ledger", "verify", "--db", shown], dir.path());
    verify.assert_success("ledger verify after a consistent rewrite (the chain cannot tell)");

    let replay = vigil(
        ["replay", "--db", shown, "--incident", &incident_id],
        dir.path(),
    );
    assert_eq!(
        replay.code(),
        1,
        "replay accepted a rewritten command: {replay}"
    );
    let seq = rows[target].seq;
    assert!(
        replay.stdout.contains("MISMATCHES"),
        "replay reports no mismatch: {replay}"
    );
    let mismatch = replay
        .stdout
        .lines()
        .find(|line| {
            line.trim_start()
                .starts_with(&format!("entry {seq}: replay issued"))
        })
        .unwrap_or_else(|| panic!("replay does not name entry {seq}: {replay}"));
    assert!(
        mismatch.contains("\"mode\":\"autonomous\""),
        "replay should show what the engine issued: {replay}"
    );
    assert!(
        replay.stdout.contains("\"mode\":\"advisory\""),
        "replay should show what the ledger has: {replay}"
    );
}

/// A truncated tail passes the hash chain (what is left still links), but not a signed
/// checkpoint taken before (stored in the ledger, and a copy outside it that survives the
/// stored one's deletion); the checkpoint also refuses another signer when its key is pinned.
#[tokio::test]
async fn a_signed_checkpoint_catches_a_truncated_tail_that_the_chain_cannot() {
    let run = runaway_demo();
    run.finished.assert_success("vigil demo");
    let dir = TempDir::new("tamper-truncate");
    let db = run.restore_ledger(&dir, "demo.db");
    let shown = db.to_str().expect("a UTF-8 path");
    let key = dir.join("checkpoint.key");
    let checkpoint = dir.join("checkpoint.json");
    vigil(
        [
            "ledger",
            "checkpoint",
            "--db",
            shown,
            "--key",
            key.to_str().unwrap(),
            "--out",
            checkpoint.to_str().unwrap(),
        ],
        dir.path(),
    )
    .assert_success("ledger checkpoint");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the signing key must be private");
    }
    let signed: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&checkpoint).unwrap()).unwrap();
    let public_key = signed["public_key"].as_str().unwrap().to_owned();
    let with_checkpoint = |pinned: &str| {
        vigil(
            [
                "ledger",
                "verify",
                "--db",
                shown,
                "--checkpoint",
                checkpoint.to_str().unwrap(),
                "--public-key",
                pinned,
            ],
            dir.path(),
        )
    };
    with_checkpoint(&public_key).assert_success("verify against the checkpoint");
    let other = with_checkpoint(&"ab".repeat(32));
    assert_eq!(other.code(), 1, "{other}");
    assert!(other.stdout.contains("REFUSED: signed by key"), "{other}");

    // Cut the last three entries: the chain still verifies, the checkpoint does not.
    let rows = read_rows(&db).await;
    let keep = rows.len() - 3;
    let mut connection = crate::ledger::connect(&db).await;
    sqlx::query("DELETE FROM ledger_entries WHERE seq >= ?")
        .bind(keep as i64)
        .execute(&mut connection)
        .await
        .unwrap();
    // The checkpoint stored in the ledger catches it.
    let caught = vigil(["ledger", "verify", "--db", shown], dir.path());
    assert_eq!(caught.code(), 1, "{caught}");
    assert!(
        caught.stdout.contains(&format!(
            "TRUNCATED: a checkpoint vouches for {} entries, the ledger holds {keep}",
            rows.len()
        )),
        "{caught}"
    );
    // Whoever cut the log can delete the stored checkpoints too: the chain alone then
    // verifies, but the copy kept outside the database still catches the truncation.
    sqlx::query("DELETE FROM ledger_checkpoints")
        .execute(&mut connection)
        .await
        .unwrap();
    drop(connection);
    vigil(["ledger", "verify", "--db", shown], dir.path())
        .assert_success("the chain alone cannot see a truncated tail");
    let truncated = with_checkpoint(&public_key);
    assert_eq!(truncated.code(), 1, "{truncated}");
    assert!(
        truncated.stdout.contains(&format!(
            "TRUNCATED: a checkpoint vouches for {} entries, the ledger holds {keep}",
            rows.len()
        )),
        "{truncated}"
    );
}
