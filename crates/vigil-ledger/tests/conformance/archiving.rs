//! Retention on every backend: a prefix archived to a segment leaves a live ledger with the
//! same tree head, checkpoint heads and proofs, which reopens and grows; each segment verifies
//! on its own and continues the one before it; what the archive must not do is refused and
//! damage to what the live ledger keeps is named.

#![allow(
    clippy::indexing_slicing,
    reason = "a test fails loudly at the first broken assumption; its fixtures have the entries it indexes"
)]

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::json;
use vigil_ledger::checkpoint::Checkpoint;
use vigil_ledger::{ArchivedPrefix, Ledger, LedgerError, LedgerLocation, ProblemReason};

use crate::cases::{intact, sample_entries};
use crate::fixture::{Fixture, TestResult, execute};

/// A segment path no other test uses, removed when dropped.
struct SegmentPath(PathBuf);

impl SegmentPath {
    fn new() -> SegmentPath {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let id = NEXT.fetch_add(1, Ordering::Relaxed);
        SegmentPath(
            std::env::temp_dir().join(format!("vigil-segment-{}-{id}.db", std::process::id())),
        )
    }
}

impl Drop for SegmentPath {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let mut name = self.0.as_os_str().to_owned();
            name.push(suffix);
            let _ = std::fs::remove_file(PathBuf::from(name));
        }
    }
}

pub async fn an_archived_prefix_keeps_the_tree_checkpoints_and_proofs(
    fixture: &Fixture,
) -> TestResult {
    let location = fixture.new_location();
    let mut ledger = Ledger::open(&location).await?;
    let released = ledger.put_blob(b"named by archived entries only").await?;
    let kept = ledger.put_blob(b"named by a live entry too").await?;
    let mut new_entries = sample_entries(0..120);
    new_entries[5].payload["a_blob"] = json!(released);
    new_entries[6].payload["b_blob"] = json!(kept);
    new_entries[100].payload["b_blob"] = json!(kept);
    let mut entries = ledger.append(&new_entries).await?;
    let leaves: Vec<[u8; 32]> = entries.iter().map(|entry| entry.leaf_hash).collect();
    let root_of = |n: usize| vigil_ledger::merkle::root(leaves.get(..n).unwrap_or_default());
    let key = ed25519_dalek::SigningKey::from_bytes(&[5; 32]);
    for size in [40_usize, 120] {
        let checkpoint = Checkpoint::sign(&key, size as u64, root_of(size), 1_000);
        assert!(ledger.store_checkpoint(&checkpoint).await?);
    }
    let inclusion = ledger.prove_inclusion(10, 120).await?;
    let consistency = ledger.prove_consistency(40, 120).await?;
    assert!(inclusion.is_some() && consistency.is_some());

    let first_path = SegmentPath::new();
    let segment = ledger.write_segment(60, &first_path.0).await?;
    assert_eq!((segment.first_seq, segment.end_seq), (0, 60));
    assert_eq!(segment.head_chain_hash, entries[59].chain_hash);
    assert_eq!(segment.tree_head, root_of(60));
    assert_eq!(
        segment.blobs,
        [released.clone(), kept.clone()].into_iter().collect()
    );
    assert_eq!(segment.n_checkpoints, 1);
    let prefix = ledger.archive_prefix(60, 7, &segment.blobs).await?;
    let expected_prefix = ArchivedPrefix {
        n_entries: 60,
        chain_hash: entries[59].chain_hash,
        at_ms: 7,
    };
    assert_eq!(prefix, expected_prefix);
    assert_eq!(ledger.archived_prefix().await?, Some(expected_prefix));

    // The live ledger: the whole log's report, heads at both checkpoints, the same proofs.
    assert_eq!(ledger.verify().await?, intact(&entries));
    let mut met = Vec::new();
    let (report, _) = ledger
        .verify_with_checkpoints(&BTreeSet::new(), |checkpoint| met.push(checkpoint))
        .await?;
    assert!(report.is_intact());
    let heads: Vec<_> = met
        .iter()
        .map(|met| (met.checkpoint.tree_size, met.head))
        .collect();
    assert_eq!(heads, [(40, Some(root_of(40))), (120, Some(root_of(120)))]);
    assert_eq!(ledger.prove_inclusion(10, 120).await?, inclusion);
    assert_eq!(ledger.prove_consistency(40, 120).await?, consistency);
    assert_eq!(
        ledger.read(0, 5).await?.first().map(|entry| entry.seq),
        Some(60)
    );
    assert_eq!(
        ledger.get_blob(&released).await?,
        None,
        "released with its entries"
    );
    assert!(
        ledger.get_blob(&kept).await?.is_some(),
        "a live entry still names it"
    );

    // Reopened, it carries on from the same head and grows.
    ledger.close().await;
    let mut ledger = Ledger::open(&location).await?;
    assert_eq!(ledger.len(), 120);
    assert_eq!(ledger.tree_head(), Some((120, root_of(120))));
    entries.extend(ledger.append(&sample_entries(120..130)).await?);
    assert_eq!(ledger.verify().await?, intact(&entries));

    // The segment on its own is the first 60 entries' ledger.
    let first = Ledger::open_existing(&LedgerLocation::Sqlite {
        path: first_path.0.clone(),
    })
    .await?;
    assert_eq!(first.verify().await?, intact(&entries[..60]));
    assert_eq!(first.checkpoints().await?.len(), 1);
    first.close().await;

    // A second segment starts where the first ends.
    let second_path = SegmentPath::new();
    let segment = ledger.write_segment(90, &second_path.0).await?;
    assert_eq!((segment.first_seq, segment.end_seq), (60, 90));
    ledger.archive_prefix(90, 8, &segment.blobs).await?;
    let second = Ledger::open_existing(&LedgerLocation::Sqlite {
        path: second_path.0.clone(),
    })
    .await?;
    assert_eq!(
        second
            .archived_prefix()
            .await?
            .map(|prefix| prefix.n_entries),
        Some(60)
    );
    assert_eq!(second.verify().await?, intact(&entries[..90]));
    second.close().await;
    assert_eq!(ledger.verify().await?, intact(&entries));

    // Refused: a cut not after the prefix or past the log, a segment file that exists.
    let refused = SegmentPath::new();
    for end_seq in [90, 50, 131] {
        let outcome = ledger.write_segment(end_seq, &refused.0).await;
        assert!(
            matches!(outcome, Err(LedgerError::Archive { .. })),
            "{outcome:?}"
        );
    }
    let outcome = ledger.write_segment(100, &first_path.0).await;
    assert!(
        matches!(outcome, Err(LedgerError::Archive { .. })),
        "{outcome:?}"
    );
    let outcome = ledger.archive_prefix(80, 9, &BTreeSet::new()).await;
    assert!(
        matches!(outcome, Err(LedgerError::Archive { .. })),
        "{outcome:?}"
    );

    // A kept leaf hash removed: verify names the archived prefix.
    execute(
        &location,
        "DELETE FROM ledger_archived_leaves WHERE seq = 30",
        &[],
    )
    .await?;
    let report = ledger.verify().await?;
    let problem = report.first_problem.ok_or("the gap went unnoticed")?;
    assert_eq!(problem.seq, 30);
    assert!(
        matches!(problem.reason, ProblemReason::ArchiveMismatch(_)),
        "{problem:?}"
    );
    ledger.close().await;
    Ok(())
}
