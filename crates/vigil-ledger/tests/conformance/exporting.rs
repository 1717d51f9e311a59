//! The conformance cases for exports and proofs computed with bounded memory: the streamed
//! export is the in-memory one byte for byte, and proofs from one pass over the leaf hashes
//! are the proofs of the recursive definition.

use serde_json::json;
use vigil_ledger::export::{export_lines, verify_export_from};
use vigil_ledger::{Entry, EntryKind, Ledger, NewEntry};

use crate::cases::{intact, sample_ledger};
use crate::fixture::{Fixture, TestResult, execute};

/// A scratch path no other test uses, in the system's temporary folder.
fn scratch_path(name: &str) -> std::path::PathBuf {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let id = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    std::env::temp_dir().join(format!(
        "vigil-export-test-{}-{id}-{name}",
        std::process::id()
    ))
}

/// The export of `ledger` written by the two streaming passes.
async fn streamed_export(ledger: &Ledger) -> TestResult<Vec<u8>> {
    let scratch = scratch_path("tree");
    let tree = ledger
        .export_tree(&scratch)
        .await?
        .map_err(|report| format!("the ledger does not verify: {report:?}"))?;
    assert!(scratch.exists(), "the tree is built in the scratch file");
    let mut out = Vec::new();
    tree.write(ledger, &mut out).await?;
    assert!(
        !scratch.exists(),
        "the scratch file is removed after the export"
    );
    Ok(out)
}

/// The export of `entries` built in memory, as the old `vigil ledger export` wrote it.
fn in_memory_export(entries: &[Entry]) -> Vec<u8> {
    let mut text = export_lines(entries).join("\n");
    text.push('\n');
    text.into_bytes()
}

pub async fn the_streamed_export_is_the_export_in_memory_byte_for_byte(
    fixture: &Fixture,
) -> TestResult {
    for n_entries in [0_u64, 1, 2, 37] {
        let (ledger, _location, entries) = sample_ledger(fixture, n_entries).await?;
        let streamed = streamed_export(&ledger).await?;
        assert_eq!(
            String::from_utf8_lossy(&streamed),
            String::from_utf8_lossy(&in_memory_export(&entries)),
            "{n_entries} entries"
        );
        let mut reader = std::io::Cursor::new(streamed);
        let report = verify_export_from(&mut reader)?
            .map_err(|problem| format!("the export does not verify: {problem}"))?;
        assert_eq!(report.n_entries, n_entries);
        assert_eq!(
            report.tree_head,
            hex::encode(intact(&entries).tree_head),
            "{n_entries} entries"
        );
        ledger.close().await;
    }

    // Large entries too: pages of one entry each, and escapes in the payload text.
    let location = fixture.new_location();
    let mut ledger = Ledger::open(&location).await?;
    let new_entries: Vec<NewEntry> = (0..9_u64)
        .map(|seq| NewEntry {
            at_ms: 1_700_000_000_000 + seq as i64,
            kind: EntryKind::Event,
            incident_id: (seq % 2 == 1).then(|| "inc-\"q\"".to_owned()),
            payload: json!({"body": "\"x\"\n".repeat(if seq % 3 == 0 { 400_000 } else { 1 })}),
        })
        .collect();
    let entries = ledger.append(&new_entries).await?;
    assert_eq!(streamed_export(&ledger).await?, in_memory_export(&entries));
    ledger.close().await;
    Ok(())
}

pub async fn a_broken_ledger_is_not_exported(fixture: &Fixture) -> TestResult {
    let (ledger, location, _entries) = sample_ledger(fixture, 20).await?;
    execute(
        &location,
        "UPDATE ledger_entries SET at_ms = at_ms + 1 WHERE seq = 6",
        &[],
    )
    .await?;
    let scratch = scratch_path("broken");
    match ledger.export_tree(&scratch).await? {
        Ok(_) => return Err("a broken ledger was prepared for export".into()),
        Err(report) => assert_eq!(report.first_problem.map(|problem| problem.seq), Some(6)),
    }
    assert!(!scratch.exists(), "the scratch file is removed");
    ledger.close().await;
    Ok(())
}

pub async fn proofs_from_one_pass_over_the_leaves_are_the_recursive_proofs(
    fixture: &Fixture,
) -> TestResult {
    let (ledger, _location, entries) = sample_ledger(fixture, 45).await?;
    let leaves: Vec<[u8; 32]> = entries.iter().map(|entry| entry.leaf_hash).collect();
    let prefix = |n: u64| leaves.get(..n as usize).unwrap_or_default();
    for (seq, tree_size) in [(0, 1), (0, 45), (17, 45), (44, 45), (3, 8), (7, 33)] {
        let proof = ledger
            .prove_inclusion(seq, tree_size)
            .await?
            .ok_or("no inclusion proof")?;
        assert_eq!(
            Some(proof.proof),
            vigil_ledger::merkle::inclusion_proof(prefix(tree_size), seq as usize),
            "entry {seq} of {tree_size}"
        );
        assert_eq!(
            proof.tree_head,
            vigil_ledger::merkle::root(prefix(tree_size))
        );
        assert_eq!(Some(&proof.leaf_hash), leaves.get(seq as usize));
    }
    for (from, to) in [(1, 45), (17, 45), (45, 45), (8, 33), (3, 4)] {
        let proof = ledger
            .prove_consistency(from, to)
            .await?
            .ok_or("no consistency proof")?;
        assert_eq!(
            Some(proof.proof),
            vigil_ledger::merkle::consistency_proof(prefix(to), from as usize),
            "from {from} to {to}"
        );
        assert_eq!(proof.from_head, vigil_ledger::merkle::root(prefix(from)));
        assert_eq!(proof.to_head, vigil_ledger::merkle::root(prefix(to)));
    }
    // Outside the tree, or beyond the log: no proof.
    assert_eq!(ledger.prove_inclusion(45, 45).await?, None);
    assert_eq!(ledger.prove_inclusion(3, 46).await?, None);
    assert_eq!(ledger.prove_consistency(0, 10).await?, None);
    assert_eq!(ledger.prove_consistency(11, 10).await?, None);
    assert_eq!(ledger.prove_consistency(10, 46).await?, None);
    ledger.close().await;
    Ok(())
}
