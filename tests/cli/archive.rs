//! Retention through the CLI: `vigil ledger archive` moves the session chains that ended
//! before a time to a segment, and the live ledger, the segment and both together still
//! verify (against a checkpoint signed before the archive), prove and replay.

use std::path::{Path, PathBuf};

use sqlx::{Connection as _, SqliteConnection};
use vigil_core::Timestamp;
use vigil_ledger::{EntryKind, Ledger, LedgerLocation, NewEntry};

use crate::support::{TempDir, incident_ids, simulate_scenario, vigil};

/// Appends every entry of the ledger at `from` to `into` (and the blobs they name), its
/// commands' `caused_by` moved by the entries already there: two game days, one after the
/// other, as two session chains of one ledger. Returns the time of the first one's last entry.
pub(crate) async fn append_ledger(into: &mut Ledger, from: &Path) -> i64 {
    let source = Ledger::open_existing(&LedgerLocation::Sqlite {
        path: from.to_path_buf(),
    })
    .await
    .unwrap();
    let offset = into.len();
    let mut entries = Vec::new();
    let mut last_at_ms = 0;
    let mut reader = source.entries(Default::default(), Default::default());
    while let Some(entry) = reader.next().await.unwrap() {
        let mut payload = entry.payload_value().unwrap();
        if entry.kind == EntryKind::Command {
            let caused_by = payload["caused_by"].as_u64().unwrap();
            payload["caused_by"] = serde_json::json!(caused_by + offset);
        }
        for (at, _) in entry.payload.match_indices("_blob\":\"") {
            let hash = &entry.payload[at + 8..at + 8 + 64];
            let blob = source.get_blob(hash).await.unwrap().unwrap();
            into.put_blob(&blob).await.unwrap();
        }
        last_at_ms = entry.at_ms;
        entries.push(NewEntry {
            at_ms: entry.at_ms,
            kind: entry.kind,
            incident_id: entry.incident_id.clone(),
            payload,
        });
    }
    source.close().await;
    into.append(&entries).await.unwrap();
    last_at_ms
}

fn run(args: &[&str], dir: &Path) -> crate::support::Finished {
    vigil(args.iter().copied(), dir)
}

/// `vigil ledger archive --db DB --before TIME --out OUT` with `extra` options.
fn archive_before(
    db: &str,
    before: &str,
    out: &Path,
    extra: &[&str],
    dir: &Path,
) -> crate::support::Finished {
    let out = out.to_str().unwrap();
    let mut args = vec![
        "ledger", "archive", "--db", db, "--before", before, "--out", out,
    ];
    args.extend_from_slice(extra);
    run(&args, dir)
}

/// The segment files of `dir`.
fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "db"))
        .collect();
    found.sort();
    found
}

#[test]
fn an_archived_session_replays_from_its_segment_and_everything_still_verifies() {
    let dir = TempDir::new("archive");
    let (first, second) = (dir.join("first.db"), dir.join("second.db"));
    simulate_scenario("runaway-key", &first);
    simulate_scenario("scheduled-check", &second);
    let live = dir.join("live.db");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let first_end_ms = runtime.block_on(async {
        let mut ledger = Ledger::open(&LedgerLocation::Sqlite { path: live.clone() })
            .await
            .unwrap();
        let first_end_ms = append_ledger(&mut ledger, &first).await;
        append_ledger(&mut ledger, &second).await;
        ledger.close().await;
        first_end_ms
    });
    let db = live.to_str().unwrap();
    let first_incident = incident_ids(
        &run(
            &["ledger", "show", "--db", first.to_str().unwrap()],
            dir.path(),
        )
        .stdout,
    )[0]
    .clone();
    let second_incident = incident_ids(
        &run(
            &["ledger", "show", "--db", second.to_str().unwrap()],
            dir.path(),
        )
        .stdout,
    )[0]
    .clone();

    // A checkpoint signed before the archive, kept outside the ledger.
    let (key, checkpoint) = (dir.join("ledger.key"), dir.join("checkpoint.json"));
    run(
        &[
            "ledger",
            "checkpoint",
            "--db",
            db,
            "--key",
            key.to_str().unwrap(),
            "--out",
            checkpoint.to_str().unwrap(),
        ],
        dir.path(),
    )
    .assert_success("checkpoint");
    let before = run(&["ledger", "verify", "--db", db], dir.path());
    before.assert_success("verify before");
    let tree_head = |text: &str| text.split("RFC 6962 tree head ").nth(1).unwrap()[..64].to_owned();

    // The first game day ended before this time; the second did not start before it.
    let cut_time = Timestamp(first_end_ms + 1).to_rfc3339();
    let archive = dir.join("archive");
    let archived = archive_before(db, &cut_time, &archive, &["--release-blobs"], dir.path());
    archived.assert_success("archive");
    let segment = segments(&archive).pop().expect("a segment");
    let segment_db = segment.to_str().unwrap();

    // The live ledger alone: the same tree head, still consistent with the checkpoint.
    let after = run(
        &[
            "ledger",
            "verify",
            "--db",
            db,
            "--checkpoint",
            checkpoint.to_str().unwrap(),
        ],
        dir.path(),
    );
    after.assert_success("verify after");
    assert_eq!(
        tree_head(&after.stdout),
        tree_head(&before.stdout),
        "{after}"
    );
    assert!(
        !run(&["ledger", "show", "--db", db, "--all"], dir.path())
            .stdout
            .contains(&first_incident)
    );
    // An archived entry's inclusion proof still comes from the kept leaf hashes.
    run(&["ledger", "prove", "--db", db, "3"], dir.path())
        .assert_success("prove an archived entry");
    // The segment alone, the segment and the live ledger together, and the proof between them.
    run(&["ledger", "verify", "--db", segment_db], dir.path()).assert_success("verify the segment");
    let both = run(
        &[
            "ledger",
            "verify",
            "--db",
            db,
            "--archive",
            archive.to_str().unwrap(),
        ],
        dir.path(),
    );
    both.assert_success("verify with the archive");
    assert!(
        both.stdout
            .contains("carries on where the last segment ends"),
        "{both}"
    );
    let proof = segment.with_extension("proof.json");
    run(
        &["ledger", "verify", "--proof", proof.to_str().unwrap()],
        dir.path(),
    )
    .assert_success("the consistency proof");

    // Replay: the archived incident from its segment, the live one from the ledger, all.
    for incident in [&first_incident, &second_incident] {
        let replayed = run(
            &[
                "replay",
                "--db",
                db,
                "--archive",
                archive.to_str().unwrap(),
                "--incident",
                incident,
            ],
            dir.path(),
        );
        replayed.assert_success("replay");
        assert!(
            replayed.stdout.contains("result: every command matches"),
            "{replayed}"
        );
    }
    let all = run(
        &[
            "replay",
            "--db",
            db,
            "--archive",
            archive.to_str().unwrap(),
            "--all",
        ],
        dir.path(),
    );
    all.assert_success("replay --all");
    assert_eq!(
        all.stdout.matches("result: every command matches").count(),
        2,
        "{all}"
    );

    // Nothing more ended before that time: a second archive moves nothing.
    let again = archive_before(db, &cut_time, &archive, &[], dir.path());
    again.assert_success("archive again");
    assert!(again.stdout.contains("nothing archived"), "{again}");
    assert_eq!(segments(&archive).len(), 1);

    // A kept leaf hash changed: the live ledger no longer continues the segment, and the
    // checkpoint signed before no longer holds.
    runtime.block_on(async {
        let mut connection = SqliteConnection::connect(&format!("sqlite://{db}"))
            .await
            .unwrap();
        sqlx::query("UPDATE ledger_archived_leaves SET leaf_hash = zeroblob(32) WHERE seq = 2")
            .execute(&mut connection)
            .await
            .unwrap();
        connection.close().await.unwrap();
    });
    let tampered = run(
        &[
            "ledger",
            "verify",
            "--db",
            db,
            "--archive",
            archive.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert_eq!(tampered.code(), 1, "{tampered}");
    let tampered = run(
        &[
            "ledger",
            "verify",
            "--db",
            db,
            "--checkpoint",
            checkpoint.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert_eq!(tampered.code(), 1, "{tampered}");
}
