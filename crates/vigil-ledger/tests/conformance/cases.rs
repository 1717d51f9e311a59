//! The conformance cases for appending, reading, reopening, blobs and queries; each takes a
//! fixture and runs unchanged on every backend.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use vigil_ledger::{Entry, EntryKind, Ledger, LedgerError, NewEntry, VerifyReport};

use crate::fixture::{Bind, Fixture, TestResult, execute, query_i64};

/// The entry the sample logs hold at `seq`: every kind, with and without incident, varied
/// payloads.
pub fn sample_entry(seq: u64) -> NewEntry {
    let kind = if seq.is_multiple_of(10) {
        EntryKind::Session
    } else if seq % 2 == 1 {
        EntryKind::Event
    } else {
        EntryKind::Command
    };
    NewEntry {
        at_ms: 1_700_000_000_000 + seq as i64 * 250,
        kind,
        incident_id: (!seq.is_multiple_of(3)).then(|| format!("inc-{}", seq % 3)),
        payload: json!({
            "seq": seq,
            "note": format!("entry {seq}"),
            "ratio": seq as f64 / 7.0,
            "tags": ["b", "a"],
            "nested": {"z": seq % 5, "a": null},
        }),
    }
}

/// The sample entries for `seqs`.
pub fn sample_entries(seqs: std::ops::Range<u64>) -> Vec<NewEntry> {
    seqs.map(sample_entry).collect()
}

/// A ledger at a fresh location of `fixture` holding sample entries `0..n_entries`, returned
/// with its location and the entries as stored.
pub async fn sample_ledger(
    fixture: &Fixture,
    n_entries: u64,
) -> TestResult<(Ledger, vigil_ledger::LedgerLocation, Vec<Entry>)> {
    let location = fixture.new_location();
    let mut ledger = Ledger::open(&location).await?;
    let entries = ledger.append(&sample_entries(0..n_entries)).await?;
    Ok((ledger, location, entries))
}

/// The report of an intact log of `entries` (from seq 0, in order), with its tree head
/// computed by the recursive definition.
pub fn intact(entries: &[Entry]) -> VerifyReport {
    let last = entries.last();
    let leaves: Vec<[u8; 32]> = entries.iter().map(|entry| entry.leaf_hash).collect();
    VerifyReport {
        n_entries: last.map_or(0, |entry| entry.seq + 1),
        head_chain_hash: last.map(|entry| entry.chain_hash),
        tree_head: vigil_ledger::merkle::root(&leaves),
        first_problem: None,
    }
}

/// The seqs of `entries`.
fn seqs(entries: &[Entry]) -> Vec<u64> {
    entries.iter().map(|entry| entry.seq).collect()
}

/// Checks every entry's hashes against the definitions, computed here with `sha2` directly.
fn assert_hashes_follow_the_spec(entries: &[Entry], mut previous_chain_hash: [u8; 32]) {
    for entry in entries {
        let leaf: [u8; 32] = Sha256::new()
            .chain_update([0x00])
            .chain_update(entry.entry_bytes().as_bytes())
            .finalize()
            .into();
        assert_eq!(leaf, entry.leaf_hash, "leaf hash of entry {}", entry.seq);
        let chain: [u8; 32] = Sha256::new()
            .chain_update(previous_chain_hash)
            .chain_update(leaf)
            .finalize()
            .into();
        assert_eq!(chain, entry.chain_hash, "chain hash of entry {}", entry.seq);
        previous_chain_hash = chain;
    }
}

pub async fn append_read_round_trip(fixture: &Fixture) -> TestResult {
    let location = fixture.new_location();
    let mut ledger = Ledger::open(&location).await?;
    let third = 1.0_f64 / 3.0;
    let new_entries = vec![
        NewEntry {
            at_ms: 1_700_000_000_000,
            kind: EntryKind::Session,
            incident_id: None,
            payload: json!({
                "zeta": 1,
                "alpha": {"b": [3, 1.5, "x"], "a": null},
                "third": third,
                "tiny": 1e-300,
                "text": "café \"q\"\n😀",
            }),
        },
        NewEntry {
            at_ms: -1,
            kind: EntryKind::Event,
            incident_id: Some("inc/ü'\"1".to_owned()),
            payload: json!([]),
        },
        NewEntry {
            at_ms: i64::MAX,
            kind: EntryKind::Command,
            incident_id: Some("inc/ü'\"1".to_owned()),
            payload: json!({"b": 2, "a": 1}),
        },
    ];
    let appended = ledger.append(&new_entries).await?;
    assert_eq!(seqs(&appended), vec![0, 1, 2]);
    assert_eq!(ledger.len(), 3);
    let canonical_payloads: Vec<&str> = appended
        .iter()
        .map(|entry| entry.payload.as_str())
        .collect();
    assert_eq!(
        canonical_payloads,
        vec![
            r#"{"alpha":{"a":null,"b":[3,1.5,"x"]},"text":"café \"q\"\n😀","third":0.3333333333333333,"tiny":1e-300,"zeta":1}"#,
            "[]",
            r#"{"a":1,"b":2}"#,
        ]
    );
    let first_bytes = appended.first().map(Entry::entry_bytes).unwrap_or_default();
    assert_eq!(
        first_bytes,
        format!(
            r#"{{"at_ms":1700000000000,"incident_id":null,"kind":"session","payload":{},"seq":0}}"#,
            canonical_payloads.first().unwrap_or(&"")
        )
    );

    let read = ledger.read(0, 100).await?;
    assert_eq!(
        read, appended,
        "entries read back differ from the entries appended"
    );
    for (entry, new_entry) in read.iter().zip(&new_entries) {
        assert_eq!(entry.at_ms, new_entry.at_ms);
        assert_eq!(entry.kind, new_entry.kind);
        assert_eq!(entry.incident_id, new_entry.incident_id);
        assert_eq!(entry.payload_value()?, new_entry.payload);
    }
    let stored_third = read
        .first()
        .map(Entry::payload_value)
        .transpose()?
        .and_then(|payload| payload.get("third").and_then(Value::as_f64));
    assert_eq!(
        stored_third.map(f64::to_bits),
        Some(third.to_bits()),
        "floats round-trip exactly"
    );
    assert_hashes_follow_the_spec(&read, [0; 32]);

    assert_eq!(ledger.verify().await?, intact(&read));
    assert_eq!(
        ledger.head_chain_hash(),
        read.last().map(|entry| entry.chain_hash)
    );
    ledger.close().await;
    Ok(())
}

pub async fn empty_ledger(fixture: &Fixture) -> TestResult {
    let location = fixture.new_location();
    let mut ledger = Ledger::open(&location).await?;
    assert_eq!(ledger.len(), 0);
    assert!(ledger.is_empty());
    assert_eq!(ledger.head_chain_hash(), None);
    assert_eq!(ledger.append(&[]).await?, Vec::new());
    assert_eq!(ledger.len(), 0);
    assert_eq!(ledger.read(0, 10).await?, Vec::new());
    assert_eq!(ledger.entries_for_incident("inc-1").await?, Vec::new());
    assert_eq!(ledger.last_session_at_or_before(u64::MAX).await?, None);
    assert_eq!(ledger.verify().await?, intact(&[]));
    ledger.close().await;
    Ok(())
}

pub async fn reopen_continues_the_chain(fixture: &Fixture) -> TestResult {
    let location = fixture.new_location();
    let mut ledger = Ledger::open(&location).await?;
    let mut appended = ledger.append(&sample_entries(0..3)).await?;
    appended.extend(ledger.append(&sample_entries(3..5)).await?);
    let head = ledger.head_chain_hash();
    ledger.close().await;

    let mut reopened = Ledger::open(&location).await?;
    assert_eq!(reopened.len(), 5, "the head's seq is restored");
    assert_eq!(
        reopened.head_chain_hash(),
        head,
        "the head's chain hash is restored"
    );
    appended.extend(reopened.append(&sample_entries(5..7)).await?);
    assert_eq!(seqs(&appended), (0..7).collect::<Vec<_>>());
    assert_hashes_follow_the_spec(&appended, [0; 32]);
    assert_eq!(reopened.read(0, 100).await?, appended);
    assert_eq!(reopened.verify().await?, intact(&appended));
    reopened.close().await;

    let reopened_again = Ledger::open(&location).await?;
    assert_eq!(reopened_again.len(), 7);
    assert_eq!(reopened_again.verify().await?, intact(&appended));
    reopened_again.close().await;
    Ok(())
}

pub async fn blobs_are_content_addressed(fixture: &Fixture) -> TestResult {
    let location = fixture.new_location();
    let ledger = Ledger::open(&location).await?;
    let all_bytes: Vec<u8> = (0..=255).collect();
    let cases: [(&[u8], &str); 3] = [
        (
            b"hello",
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
        ),
        (
            b"",
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        ),
        (
            &all_bytes,
            "40aff2e9d2d8922e47afd4648e6967497158785fbd1da870e7110266bf944880",
        ),
    ];
    for (content, expected_hash) in cases {
        let hash = ledger.put_blob(content).await?;
        assert_eq!(hash, hex::encode(Sha256::digest(content)));
        assert_eq!(hash, expected_hash);
        assert_eq!(
            ledger.put_blob(content).await?,
            hash,
            "storing twice is idempotent"
        );
        assert_eq!(ledger.get_blob(&hash).await?.as_deref(), Some(content));
    }
    let n_blobs = query_i64(&location, "SELECT COUNT(*) FROM ledger_blobs").await?;
    assert_eq!(n_blobs, 3, "each content is stored once");

    let unknown = "0".repeat(64);
    assert_eq!(ledger.get_blob(&unknown).await?, None);
    let uppercase = "2CF24DBA5FB0A30E26E83B2AC5B9E29E1B161E5C1FA7425E73043362938B9824";
    for invalid in ["", "abc", uppercase, &"g".repeat(64), &"0".repeat(65)] {
        let outcome = ledger.get_blob(invalid).await;
        assert!(
            matches!(outcome, Err(LedgerError::InvalidBlobHash { .. })),
            "`{invalid}` gave {outcome:?}"
        );
    }

    let hello_hash = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
    let binds = [
        Bind::Bytes(b"jello".to_vec()),
        Bind::Text(hello_hash.to_owned()),
    ];
    execute(
        &location,
        "UPDATE ledger_blobs SET content = $1 WHERE hash = $2",
        &binds,
    )
    .await?;
    let outcome = ledger.get_blob(hello_hash).await;
    assert!(
        matches!(outcome, Err(LedgerError::BlobCorrupted { .. })),
        "{outcome:?}"
    );
    ledger.close().await;
    Ok(())
}

pub async fn entries_for_incident(fixture: &Fixture) -> TestResult {
    let (mut ledger, _location, mut entries) = sample_ledger(fixture, 30).await?;
    let odd_incident = "inc/ü'\"; DROP TABLE ledger_entries; --";
    let mut odd_entry = sample_entry(30);
    odd_entry.incident_id = Some(odd_incident.to_owned());
    entries.extend(ledger.append(&[odd_entry]).await?);
    for incident_id in ["inc-1", "inc-2", odd_incident, "inc-0", "unknown"] {
        let expected: Vec<Entry> = entries
            .iter()
            .filter(|entry| entry.incident_id.as_deref() == Some(incident_id))
            .cloned()
            .collect();
        let found = ledger.entries_for_incident(incident_id).await?;
        assert_eq!(seqs(&found), seqs(&expected), "entries of {incident_id}");
        assert_eq!(found, expected);
    }
    assert_eq!(ledger.entries_for_incident("inc-1").await?.len(), 10);
    ledger.close().await;
    Ok(())
}

pub async fn last_session_at_or_before(fixture: &Fixture) -> TestResult {
    let location = fixture.new_location();
    let mut ledger = Ledger::open(&location).await?;
    let kinds = [
        EntryKind::Event,
        EntryKind::Session,
        EntryKind::Event,
        EntryKind::Command,
        EntryKind::Session,
        EntryKind::Event,
    ];
    let new_entries: Vec<NewEntry> = (0..)
        .zip(kinds)
        .map(|(seq, kind)| NewEntry {
            kind,
            ..sample_entry(seq)
        })
        .collect();
    let entries = ledger.append(&new_entries).await?;
    let cases: [(u64, Option<u64>); 8] = [
        (0, None),
        (1, Some(1)),
        (2, Some(1)),
        (3, Some(1)),
        (4, Some(4)),
        (5, Some(4)),
        (1_000, Some(4)),
        (u64::MAX, Some(4)),
    ];
    for (at_or_before, expected_seq) in cases {
        let found = ledger.last_session_at_or_before(at_or_before).await?;
        assert_eq!(
            found.as_ref().map(|entry| entry.seq),
            expected_seq,
            "at or before {at_or_before}"
        );
        if let Some(found) = found {
            assert_eq!(
                Some(&found),
                entries.iter().find(|entry| entry.seq == found.seq)
            );
        }
    }
    ledger.close().await;
    Ok(())
}

pub async fn read_ranges(fixture: &Fixture) -> TestResult {
    let (ledger, _location, _entries) = sample_ledger(fixture, 25).await?;
    let cases: [(u64, u32, std::ops::Range<u64>); 7] = [
        (0, 10, 0..10),
        (20, 10, 20..25),
        (24, u32::MAX, 24..25),
        (25, 5, 0..0),
        (3, 0, 0..0),
        (1_000, 10, 0..0),
        (u64::MAX, 10, 0..0),
    ];
    for (from_seq, limit, expected) in cases {
        let found = ledger.read(from_seq, limit).await?;
        assert_eq!(
            seqs(&found),
            expected.collect::<Vec<_>>(),
            "read({from_seq}, {limit})"
        );
    }
    ledger.close().await;
    Ok(())
}

pub async fn verify_clean_log_of_1000_entries(fixture: &Fixture) -> TestResult {
    let location = fixture.new_location();
    let mut ledger = Ledger::open(&location).await?;
    let mut entries = Vec::new();
    for batch_start in (0..1_000).step_by(250) {
        entries.extend(
            ledger
                .append(&sample_entries(batch_start..batch_start + 250))
                .await?,
        );
    }
    assert_eq!(ledger.len(), 1_000);
    let expected = intact(&entries);
    assert_eq!(ledger.verify().await?, expected);
    assert_eq!(expected.head_chain_hash, ledger.head_chain_hash());
    // Page boundaries must not matter: 0 is taken as 1, the others split the log unevenly.
    for page_rows in [0, 7, 999, 1_000, 1_001] {
        assert_eq!(
            ledger.verify_with_page_size(page_rows).await?,
            expected,
            "pages of {page_rows}"
        );
    }
    ledger.close().await;
    Ok(())
}

pub async fn second_writer_conflicts(fixture: &Fixture) -> TestResult {
    let location = fixture.new_location();
    let mut first = Ledger::open(&location).await?;
    let mut second = Ledger::open(&location).await?;
    first.append(&sample_entries(0..2)).await?;

    let outcome = second.append(&sample_entries(0..1)).await;
    assert!(
        matches!(outcome, Err(LedgerError::Conflict { seq: 0, .. })),
        "{outcome:?}"
    );
    assert_eq!(second.len(), 2, "a conflict reloads the head");
    let appended = second.append(&sample_entries(2..3)).await?;
    assert_eq!(seqs(&appended), vec![2]);

    let outcome = first.append(&sample_entries(2..3)).await;
    assert!(
        matches!(outcome, Err(LedgerError::Conflict { seq: 2, .. })),
        "{outcome:?}"
    );
    let appended = first.append(&sample_entries(3..4)).await?;
    assert_eq!(seqs(&appended), vec![3]);

    let all = first.read(0, 10).await?;
    assert_eq!(seqs(&all), vec![0, 1, 2, 3]);
    assert_eq!(first.verify().await?, intact(&all));
    first.close().await;
    second.close().await;
    Ok(())
}

pub async fn tree_head_follows_appends_and_reopening(fixture: &Fixture) -> TestResult {
    let location = fixture.new_location();
    let mut ledger = Ledger::open(&location).await?;
    assert_eq!(
        ledger.tree_head(),
        Some((0, vigil_ledger::merkle::root(&[])))
    );
    let mut leaves = Vec::new();
    for batch in [1_u64, 2, 5, 8, 17] {
        let from = leaves.len() as u64;
        let appended = ledger.append(&sample_entries(from..from + batch)).await?;
        leaves.extend(appended.iter().map(|entry| entry.leaf_hash));
        assert_eq!(
            ledger.tree_head(),
            Some((leaves.len() as u64, vigil_ledger::merkle::root(&leaves))),
            "after {} entries",
            leaves.len()
        );
    }
    let report = ledger.verify().await?;
    assert_eq!(
        Some((report.n_entries, report.tree_head)),
        ledger.tree_head()
    );
    ledger.close().await;
    let reopened = Ledger::open(&location).await?;
    assert_eq!(
        reopened.tree_head(),
        Some((leaves.len() as u64, vigil_ledger::merkle::root(&leaves)))
    );
    reopened.close().await;
    Ok(())
}

pub async fn open_existing_refuses_a_ledger_that_is_not_there(fixture: &Fixture) -> TestResult {
    let location = fixture.new_location();
    match Ledger::open_existing(&location).await {
        Err(LedgerError::NotFound { database }) => {
            assert_eq!(database, location.describe());
        }
        other => return Err(format!("expected NotFound, got {other:?}").into()),
    }
    // Nothing was created: opening it for writing starts an empty ledger, which then exists.
    let mut ledger = Ledger::open(&location).await?;
    ledger.append(&sample_entries(0..3)).await?;
    ledger.close().await;
    let existing = Ledger::open_existing(&location).await?;
    assert_eq!(existing.len(), 3);
    existing.close().await;
    Ok(())
}

pub async fn checkpoints_are_stored_once_per_size_and_heads_come_with_verify(
    fixture: &Fixture,
) -> TestResult {
    use vigil_ledger::checkpoint::Checkpoint;
    let (ledger, location, entries) = sample_ledger(fixture, 30).await?;
    let key = ed25519_dalek::SigningKey::from_bytes(&[3; 32]);
    let leaves: Vec<[u8; 32]> = entries.iter().map(|entry| entry.leaf_hash).collect();
    let root_of = |n: usize| vigil_ledger::merkle::root(leaves.get(..n).unwrap_or_default());
    let first = Checkpoint::sign(&key, 10, root_of(10), 1_000);
    let second = Checkpoint::sign(&key, 30, root_of(30), 2_000);
    assert!(ledger.store_checkpoint(&second).await?);
    assert!(ledger.store_checkpoint(&first).await?);
    // One checkpoint per tree size: a second one of the same size is not stored.
    let again = Checkpoint::sign(&key, 10, root_of(10), 3_000);
    assert!(!ledger.store_checkpoint(&again).await?);
    assert_eq!(
        ledger.checkpoints().await?,
        vec![first.clone(), second.clone()]
    );

    let sizes = [0_u64, 10, 30, 31].into_iter().collect();
    let (report, heads) = ledger.verify_with_heads(&sizes).await?;
    assert_eq!(report, intact(&entries));
    let expected: std::collections::BTreeMap<u64, [u8; 32]> =
        [(0, root_of(0)), (10, root_of(10)), (30, root_of(30))]
            .into_iter()
            .collect();
    assert_eq!(heads, expected, "no head for a size the log does not reach");

    // A row that is not a checkpoint is an error naming its size, not a panic.
    execute(
        &location,
        "UPDATE ledger_checkpoints SET checkpoint = 'garbage' WHERE tree_size = 30",
        &[],
    )
    .await?;
    match ledger.checkpoints().await {
        Err(LedgerError::MalformedCheckpoint { tree_size: 30, .. }) => {}
        other => return Err(format!("expected MalformedCheckpoint, got {other:?}").into()),
    }
    ledger.close().await;
    Ok(())
}

pub async fn a_reader_reads_beside_the_writer_and_cannot_append(fixture: &Fixture) -> TestResult {
    let (mut ledger, location, entries) = sample_ledger(fixture, 30).await?;
    let reader = ledger.reader();
    assert!(reader.is_reader() && !ledger.is_reader());
    assert_eq!(reader.len(), 30);
    assert_eq!(reader.tree_head(), ledger.tree_head());
    assert_eq!(reader.read(0, 100).await?, entries);
    // The writer goes on; the reader keeps the head it was taken at, and reads what is
    // stored now.
    let more = ledger.append(&sample_entries(30..35)).await?;
    assert_eq!(reader.len(), 30);
    assert_eq!(reader.read(30, 100).await?, more);
    let proof = reader.prove_inclusion(3, 30).await?;
    assert!(proof.is_some(), "a reader proves inclusion");
    let mut reader = reader;
    match reader.append(&sample_entries(35..36)).await {
        Err(LedgerError::ReadOnly { database }) => assert_eq!(database, location.describe()),
        other => return Err(format!("expected ReadOnly, got {other:?}").into()),
    }
    assert_eq!(ledger.len(), 35, "the refused append changed nothing");
    ledger.close().await;
    Ok(())
}
