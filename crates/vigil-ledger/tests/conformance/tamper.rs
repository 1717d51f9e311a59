//! The tampering cases: raw SQL edits of a sample log through a connection of their own, each
//! detected by verify at the right seq, and the edits a hash chain alone cannot detect.

use vigil_ledger::hash::{chain_hash, entry_bytes, leaf_hash};
use vigil_ledger::{Entry, Ledger, LedgerError, LedgerLocation, ProblemReason, VerifyReport};

use crate::cases::{intact, sample_entries, sample_ledger};
use crate::fixture::{Bind, Fixture, TestResult, execute};

/// How many entries the tampered logs hold.
const N_ENTRIES: u64 = 50;

/// What verify must report after a tampering: entries before `seq` intact, then `reason`.
#[derive(Clone, Copy, Debug)]
struct Expected {
    seq: u64,
    reason: Reason,
}

/// A [`ProblemReason`] to expect; a malformed row's message is not compared.
#[derive(Clone, Copy, Debug)]
enum Reason {
    PayloadModified,
    ChainBroken,
    SequenceGap { expected: u64, found: u64 },
    MalformedRow,
}

/// A tampering done by SQL statements alone.
struct SqlTamper {
    name: &'static str,
    statements: &'static [&'static str],
    expected: Expected,
}

/// Shorthand for the expected problem at `seq`.
const fn problem(seq: u64, reason: Reason) -> Expected {
    Expected { seq, reason }
}

const SQL_TAMPERS: &[SqlTamper] = &[
    SqlTamper {
        name: "payload replaced",
        statements: &["UPDATE ledger_entries SET payload = '{\"forged\":true}' WHERE seq = 17"],
        expected: problem(17, Reason::PayloadModified),
    },
    SqlTamper {
        name: "payload reformatted to the same json value",
        statements: &[
            "UPDATE ledger_entries SET payload = replace(payload, ',', ', ') WHERE seq = 17",
        ],
        expected: problem(17, Reason::PayloadModified),
    },
    SqlTamper {
        name: "at_ms changed",
        statements: &["UPDATE ledger_entries SET at_ms = at_ms + 1 WHERE seq = 17"],
        expected: problem(17, Reason::PayloadModified),
    },
    SqlTamper {
        name: "kind changed",
        statements: &["UPDATE ledger_entries SET kind = 'session' WHERE seq = 17"],
        expected: problem(17, Reason::PayloadModified),
    },
    SqlTamper {
        name: "incident changed",
        statements: &["UPDATE ledger_entries SET incident_id = 'inc-forged' WHERE seq = 17"],
        expected: problem(17, Reason::PayloadModified),
    },
    SqlTamper {
        name: "incident removed",
        statements: &["UPDATE ledger_entries SET incident_id = NULL WHERE seq = 17"],
        expected: problem(17, Reason::PayloadModified),
    },
    SqlTamper {
        name: "first entry modified",
        statements: &["UPDATE ledger_entries SET payload = '{}' WHERE seq = 0"],
        expected: problem(0, Reason::PayloadModified),
    },
    SqlTamper {
        name: "last entry modified",
        statements: &["UPDATE ledger_entries SET payload = '{}' WHERE seq = 49"],
        expected: problem(49, Reason::PayloadModified),
    },
    SqlTamper {
        name: "middle entry deleted",
        statements: &["DELETE FROM ledger_entries WHERE seq = 17"],
        expected: problem(
            17,
            Reason::SequenceGap {
                expected: 17,
                found: 18,
            },
        ),
    },
    SqlTamper {
        name: "first entry deleted",
        statements: &["DELETE FROM ledger_entries WHERE seq = 0"],
        expected: problem(
            0,
            Reason::SequenceGap {
                expected: 0,
                found: 1,
            },
        ),
    },
    SqlTamper {
        name: "range of entries deleted",
        statements: &["DELETE FROM ledger_entries WHERE seq >= 10 AND seq <= 20"],
        expected: problem(
            10,
            Reason::SequenceGap {
                expected: 10,
                found: 21,
            },
        ),
    },
    SqlTamper {
        name: "two entries swapped",
        statements: &[
            "UPDATE ledger_entries SET seq = -1 WHERE seq = 17",
            "UPDATE ledger_entries SET seq = 17 WHERE seq = 18",
            "UPDATE ledger_entries SET seq = 18 WHERE seq = -1",
        ],
        expected: problem(17, Reason::PayloadModified),
    },
    SqlTamper {
        name: "chain hash copied from another entry",
        statements: &["UPDATE ledger_entries SET chain_hash = \
             (SELECT chain_hash FROM ledger_entries WHERE seq = 3) WHERE seq = 17"],
        expected: problem(17, Reason::ChainBroken),
    },
    SqlTamper {
        name: "leaf hash truncated to 16 bytes",
        statements: &[
            "UPDATE ledger_entries SET leaf_hash = substr(leaf_hash, 1, 16) WHERE seq = 17",
        ],
        expected: problem(17, Reason::MalformedRow),
    },
    SqlTamper {
        name: "entry moved to a negative seq",
        statements: &["UPDATE ledger_entries SET seq = -5 WHERE seq = 17"],
        expected: problem(0, Reason::MalformedRow),
    },
];

/// Checks `report` against `expected` for a log that held `entries` before tampering.
fn assert_report(report: &VerifyReport, expected: Expected, entries: &[Entry], case: &str) {
    let Expected { seq, reason } = expected;
    let problem = report.first_problem.as_ref();
    assert_eq!(
        problem.map(|problem| problem.seq),
        Some(seq),
        "{case}: {report:?}"
    );
    let reason_matches = match (reason, problem.map(|problem| &problem.reason)) {
        (Reason::PayloadModified, Some(ProblemReason::PayloadModified))
        | (Reason::ChainBroken, Some(ProblemReason::ChainBroken))
        | (Reason::MalformedRow, Some(ProblemReason::MalformedRow(_))) => true,
        (
            Reason::SequenceGap { expected, found },
            Some(ProblemReason::SequenceGap {
                expected: actual_expected,
                found: actual_found,
            }),
        ) => (expected, found) == (*actual_expected, *actual_found),
        _ => false,
    };
    assert!(
        reason_matches,
        "{case}: expected {reason:?}, got {report:?}"
    );
    assert_eq!(
        report.n_entries, seq,
        "{case}: the entries before the problem are intact"
    );
    let last_intact = seq
        .checked_sub(1)
        .and_then(|last| entries.iter().find(|entry| entry.seq == last));
    assert_eq!(
        report.head_chain_hash,
        last_intact.map(|entry| entry.chain_hash),
        "{case}"
    );
}

pub async fn sql_tampering_is_detected(fixture: &Fixture) -> TestResult {
    for case in SQL_TAMPERS {
        let (ledger, location, entries) = sample_ledger(fixture, N_ENTRIES).await?;
        for statement in case.statements {
            let n_changed = execute(&location, statement, &[]).await?;
            assert!(
                n_changed > 0,
                "{}: `{statement}` changed nothing",
                case.name
            );
        }
        let report = ledger.verify().await?;
        assert_report(&report, case.expected, &entries, case.name);
        // Where the pages break must not change the verdict.
        assert_eq!(
            ledger.verify_with_page_size(7).await?,
            report,
            "{}: pages of 7",
            case.name
        );
        ledger.close().await;
    }
    Ok(())
}

/// Inserts a forged entry at `seq` with the given hashes.
async fn insert_forged(
    location: &LedgerLocation,
    seq: u64,
    hashes: ([u8; 32], [u8; 32]),
) -> TestResult {
    let (leaf, chain) = hashes;
    let binds = [
        Bind::Int(i64::try_from(seq)?),
        Bind::Int(1_700_000_000_000),
        Bind::Text("command".to_owned()),
        Bind::Text("inc-forged".to_owned()),
        Bind::Text(FORGED_PAYLOAD.to_owned()),
        Bind::Bytes(leaf.to_vec()),
        Bind::Bytes(chain.to_vec()),
    ];
    let statement = "INSERT INTO ledger_entries \
         (seq, at_ms, kind, incident_id, payload, leaf_hash, chain_hash) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)";
    execute(location, statement, &binds).await?;
    Ok(())
}

/// The payload of forged entries.
const FORGED_PAYLOAD: &str = r#"{"action":"delete_everything"}"#;

/// The leaf hash a forger computes for the forged entry at `seq`.
fn forged_leaf_hash(seq: u64) -> [u8; 32] {
    let bytes = entry_bytes(
        seq,
        1_700_000_000_000,
        "command",
        Some("inc-forged"),
        FORGED_PAYLOAD,
    );
    leaf_hash(bytes.as_bytes())
}

/// Moves every entry from `seq` on one place up, as a forger making room would.
async fn make_room_at(location: &LedgerLocation, seq: i64) -> TestResult {
    // Two steps, because unique keys are checked row by row while the update runs.
    let moved = execute(
        location,
        "UPDATE ledger_entries SET seq = -(seq + 1) WHERE seq >= $1",
        &[Bind::Int(seq)],
    )
    .await?;
    assert!(moved > 0, "nothing to move from seq {seq}");
    execute(
        location,
        "UPDATE ledger_entries SET seq = -seq WHERE seq < 0",
        &[],
    )
    .await?;
    Ok(())
}

/// The stored entry at `seq`.
fn entry_at(entries: &[Entry], seq: u64) -> TestResult<&Entry> {
    entries
        .iter()
        .find(|entry| entry.seq == seq)
        .ok_or_else(|| format!("no entry {seq}").into())
}

pub async fn forgeries_with_recomputed_hashes_are_detected(fixture: &Fixture) -> TestResult {
    // An edit whose leaf hash was recomputed (anyone can) breaks the chain at that entry.
    let (ledger, location, entries) = sample_ledger(fixture, N_ENTRIES).await?;
    let original = entry_at(&entries, 17)?;
    let bytes = entry_bytes(
        17,
        original.at_ms,
        original.kind.as_str(),
        original.incident_id.as_deref(),
        "{}",
    );
    let binds = [Bind::Bytes(leaf_hash(bytes.as_bytes()).to_vec())];
    execute(
        &location,
        "UPDATE ledger_entries SET payload = '{}', leaf_hash = $1 WHERE seq = 17",
        &binds,
    )
    .await?;
    let expected = problem(17, Reason::ChainBroken);
    assert_report(
        &ledger.verify().await?,
        expected,
        &entries,
        "edit with leaf hash recomputed",
    );
    ledger.close().await;

    // An entry inserted with a valid leaf hash and a chain hash copied from the entry it
    // displaces breaks the chain at the insertion.
    let (ledger, location, entries) = sample_ledger(fixture, N_ENTRIES).await?;
    make_room_at(&location, 17).await?;
    insert_forged(
        &location,
        17,
        (forged_leaf_hash(17), entry_at(&entries, 17)?.chain_hash),
    )
    .await?;
    let expected = problem(17, Reason::ChainBroken);
    assert_report(
        &ledger.verify().await?,
        expected,
        &entries,
        "insertion with copied chain hash",
    );
    ledger.close().await;

    // An entry inserted with fully consistent hashes verifies, but the next entry, renumbered,
    // no longer matches its leaf hash (the seq is hashed).
    let (ledger, location, entries) = sample_ledger(fixture, N_ENTRIES).await?;
    make_room_at(&location, 17).await?;
    let leaf = forged_leaf_hash(17);
    let chain = chain_hash(&entry_at(&entries, 16)?.chain_hash, &leaf);
    insert_forged(&location, 17, (leaf, chain)).await?;
    let report = ledger.verify().await?;
    assert_eq!(
        report.first_problem.as_ref().map(|problem| problem.seq),
        Some(18),
        "{report:?}"
    );
    assert_eq!(
        report.head_chain_hash,
        Some(chain),
        "the forged entry itself is consistent"
    );
    assert_eq!(
        report.first_problem.map(|problem| problem.reason),
        Some(ProblemReason::PayloadModified)
    );
    ledger.close().await;
    Ok(())
}

pub async fn tampering_the_tail_is_not_detected_without_a_checkpoint(
    fixture: &Fixture,
) -> TestResult {
    // Deleting the last entries leaves a shorter log that verifies: the hash chain has no
    // record of how long it was. A checkpoint of the head kept elsewhere (a later issue)
    // detects this truncation.
    let (ledger, location, entries) = sample_ledger(fixture, N_ENTRIES).await?;
    let deleted = execute(&location, "DELETE FROM ledger_entries WHERE seq = 49", &[]).await?;
    assert_eq!(deleted, 1);
    assert_eq!(
        ledger.verify().await?,
        intact(entries.get(..49).unwrap_or_default())
    );
    ledger.close().await;
    let mut reopened = Ledger::open(&location).await?;
    assert_eq!(reopened.len(), 49, "the head is reloaded from what is left");
    let appended = reopened.append(&sample_entries(49..50)).await?;
    assert_eq!(appended.first().map(|entry| entry.seq), Some(49));
    let mut now = entries.get(..49).unwrap_or_default().to_vec();
    now.extend(appended);
    assert_eq!(reopened.verify().await?, intact(&now));
    reopened.close().await;

    // Likewise a suffix rewritten with every hash recomputed: the chain has no secret.
    let (ledger, location, entries) = sample_ledger(fixture, N_ENTRIES).await?;
    let mut previous_chain_hash = entry_at(&entries, 39)?.chain_hash;
    for entry in entries.iter().filter(|entry| entry.seq >= 40) {
        let payload = format!(r#"{{"rewritten":{}}}"#, entry.seq);
        let bytes = entry_bytes(
            entry.seq,
            entry.at_ms,
            entry.kind.as_str(),
            entry.incident_id.as_deref(),
            &payload,
        );
        let leaf = leaf_hash(bytes.as_bytes());
        previous_chain_hash = chain_hash(&previous_chain_hash, &leaf);
        let binds = [
            Bind::Text(payload),
            Bind::Bytes(leaf.to_vec()),
            Bind::Bytes(previous_chain_hash.to_vec()),
            Bind::Int(i64::try_from(entry.seq)?),
        ];
        let statement = "UPDATE ledger_entries SET payload = $1, leaf_hash = $2, chain_hash = $3 WHERE seq = $4";
        assert_eq!(execute(&location, statement, &binds).await?, 1);
    }
    let report = ledger.verify().await?;
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.head_chain_hash, Some(previous_chain_hash));
    assert_ne!(
        report.head_chain_hash,
        ledger.head_chain_hash(),
        "only a remembered head tells"
    );
    ledger.close().await;
    Ok(())
}

pub async fn malformed_rows_are_errors_not_panics(fixture: &Fixture) -> TestResult {
    let (ledger, location, entries) = sample_ledger(fixture, N_ENTRIES).await?;
    execute(
        &location,
        "UPDATE ledger_entries SET kind = 'audit' WHERE seq = 3",
        &[],
    )
    .await?;
    let outcome = ledger.read(0, 10).await;
    assert!(
        matches!(outcome, Err(LedgerError::MalformedRow { seq: 3, .. })),
        "{outcome:?}"
    );
    assert_report(
        &ledger.verify().await?,
        problem(3, Reason::PayloadModified),
        &entries,
        "unknown kind",
    );

    let statement =
        "UPDATE ledger_entries SET chain_hash = substr(chain_hash, 1, 31) WHERE seq = 49";
    execute(&location, statement, &[]).await?;
    let outcome = ledger.read(49, 1).await;
    assert!(
        matches!(outcome, Err(LedgerError::MalformedRow { seq: 49, .. })),
        "{outcome:?}"
    );
    ledger.close().await;
    let outcome = Ledger::open(&location).await;
    assert!(
        matches!(outcome, Err(LedgerError::MalformedRow { seq: 49, .. })),
        "{outcome:?}"
    );
    Ok(())
}

pub async fn a_gap_in_the_leaves_withholds_the_tree_head(fixture: &Fixture) -> TestResult {
    let (ledger, location, _) = sample_ledger(fixture, 20).await?;
    ledger.close().await;
    let deleted = execute(&location, "DELETE FROM ledger_entries WHERE seq = 7", &[]).await?;
    assert_eq!(deleted, 1);
    // Opening still works, so that verify can say where the log is broken.
    let reopened = Ledger::open(&location).await?;
    assert_eq!(reopened.tree_head(), None);
    let report = reopened.verify().await?;
    assert_eq!(report.n_entries, 7);
    reopened.close().await;
    Ok(())
}

pub async fn a_missing_or_changed_blob_is_named_by_the_entry_that_refers_to_it(
    fixture: &Fixture,
) -> TestResult {
    let location = fixture.new_location();
    let mut ledger = Ledger::open(&location).await?;
    let mut entries = ledger.append(&sample_entries(0..3)).await?;
    let hash = ledger
        .blob_store()
        .put(b"the policies, as recorded")
        .await?;
    assert_eq!(
        ledger.get_blob(&hash).await?.as_deref(),
        Some(&b"the policies, as recorded"[..])
    );
    let referring = vigil_ledger::NewEntry {
        at_ms: 1_767_225_600_000,
        kind: vigil_ledger::EntryKind::Session,
        incident_id: None,
        payload: serde_json::json!({"type": "session_started", "policies_blob": hash}),
    };
    entries.extend(ledger.append(&[referring]).await?);
    entries.extend(ledger.append(&sample_entries(4..6)).await?);
    assert_eq!(ledger.verify().await?, intact(&entries));

    execute(
        &location,
        "UPDATE ledger_blobs SET content = $1",
        &[Bind::Bytes(b"changed".to_vec())],
    )
    .await?;
    let report = ledger.verify().await?;
    assert_eq!(
        report
            .first_problem
            .map(|problem| (problem.seq, problem.reason)),
        Some((3, ProblemReason::CorruptBlob { hash: hash.clone() }))
    );
    execute(&location, "DELETE FROM ledger_blobs", &[]).await?;
    let report = ledger.verify().await?;
    assert_eq!(
        report
            .first_problem
            .map(|problem| (problem.seq, problem.reason)),
        Some((3, ProblemReason::MissingBlob { hash }))
    );
    ledger.close().await;
    Ok(())
}
