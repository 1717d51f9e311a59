//! A standby's warm engine (`vigil::journal::follow`) against crash recovery's rebuild from
//! scratch (`vigil::journal::recovery::rebuild`): a follower that looks at a ledger while it
//! grows, a few entries at a time (cut anywhere, even inside a step), and reads the rest at
//! takeover, must end with the same engine and the same unfinished work as a rebuild of the
//! whole ledger.
//!
//! The ledgers: shipped scenarios run by the simulator (a fix, a failed fix with its
//! compensation and page, an approval, a storm, a nightly batch recorded in scrape batches),
//! the golden ledgers of earlier builds, and two sessions one after the other where the
//! second starts afresh (the follower must leave the first chain for it).

use vigil::journal::follow::Follower;
use vigil::journal::{self, recovery};
use vigil_ledger::{Entry, Ledger, LedgerLocation, NewEntry};

use crate::ledgers::{new_entry, read_all, series_blobs, simulate_into, sqlite};
use crate::support::{TempDir, repo_root};

const SCENARIOS: &[&str] = &[
    "advisory-approval",
    "failed-fix",
    "nightly-batch",
    "runaway-key",
    "storm",
];

/// How many entries the writer appends between two looks, in turn.
const CHUNKS: &[usize] = &[1, 2, 3, 5, 8, 13];

/// Entries a look may rerun: small, so that the follower also lags behind.
const BUDGET: u64 = 4;

#[test]
fn a_follower_fed_a_growing_ledger_ends_with_the_rebuild_from_scratch() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let dir = TempDir::new("warm-standby");
        let mut sources = Vec::new();
        for name in SCENARIOS {
            let (entries, blobs) = simulated(&dir, name).await;
            sources.push(((*name).to_owned(), entries, blobs));
        }
        for file in [
            "2026-11-issue6-demo-runaway-key.db",
            "2026-12-issue12-simulate-advisory-approval.db",
        ] {
            let copy = dir.join(file);
            std::fs::copy(repo_root().join("tests/golden").join(file), &copy).unwrap();
            let (entries, blobs) = read_source(&sqlite(&copy)).await;
            sources.push((file.to_owned(), entries, blobs));
        }
        // Two sessions in a row, the second afresh.
        let (first, first_blobs) = simulated(&dir, "failed-fix").await;
        let (second, second_blobs) = simulated(&dir, "runaway-key").await;
        let both: Vec<Entry> = first.into_iter().chain(second).collect();
        let both_blobs = first_blobs.into_iter().chain(second_blobs).collect();
        sources.push(("failed-fix then runaway-key".to_owned(), both, both_blobs));

        for (idx, (name, entries, blobs)) in sources.iter().enumerate() {
            // The whole ledger, and the ledger of a leader killed before its last step was
            // followed (its session never ended).
            let crashed = &entries[..entries.len() - 1];
            for (variant, entries, idle) in [
                (0, &entries[..], false),
                (1, crashed, false),
                (2, &entries[..], true),
            ] {
                let db = dir.join(&format!("follow-{idx}-{variant}.db"));
                check(name, &sqlite(&db), entries, blobs, idle).await;
            }
        }
    });
}

/// Appends `entries` to a fresh ledger in chunks, with a follower on its own connection
/// looking after each chunk; then compares its handover with a rebuild from scratch. The
/// follower reads less than is appended, so at the handover it lags behind and reads the
/// rest; or, `idle`, the leader is quiet for long enough that it catches up first.
async fn check(
    name: &str,
    location: &LedgerLocation,
    entries: &[Entry],
    blobs: &[Vec<u8>],
    idle: bool,
) {
    let mut writer = Ledger::open(location).await.unwrap();
    for blob in blobs {
        writer.put_blob(blob).await.unwrap();
    }
    let reader = Ledger::open(location).await.unwrap();
    let mut follower = Follower::new(&reader);
    let mut n_read = 0;
    let mut at = 0;
    for chunk in CHUNKS.iter().cycle() {
        if at >= entries.len() {
            break;
        }
        let end = (at + chunk).min(entries.len());
        let batch: Vec<NewEntry> = entries[at..end].iter().map(new_entry).collect();
        writer.append(&batch).await.unwrap();
        at = end;
        n_read += follower.catch_up(BUDGET).await.unwrap().n_read;
    }
    assert!(
        n_read > 0,
        "{name}: the follower read nothing before the handover"
    );
    if idle {
        catch_up(name, &mut follower, entries).await;
    }
    let warm = follower.finish().await.unwrap();
    let cold = recovery::rebuild(&reader, true).await.unwrap();
    assert_eq!(
        format!("{warm:?}"),
        format!("{cold:?}"),
        "{name}: the warm engine differs from the rebuild from scratch (idle: {idle})"
    );
    assert!(cold.is_some(), "{name}: nothing to resume");
    reader.close().await;
    writer.close().await;
}

/// The standby catches up with an idle leader, and then follows the last chain itself
/// ([`Follower::finish`] would otherwise rebuild from scratch).
async fn catch_up(name: &str, follower: &mut Follower<'_>, entries: &[Entry]) {
    // Bounded: every look but the last reads.
    for _ in 0..entries.len() {
        let progress = follower.catch_up(BUDGET).await.unwrap();
        if progress.n_read == 0 && !progress.more {
            break;
        }
    }
    let last_fresh_start = entries.iter().rposition(|entry| {
        matches!(
            journal::decode(entry),
            Ok(journal::Recorded::Session(
                journal::SessionRecord::SessionStarted { resumes: None, .. }
            ))
        )
    });
    assert_eq!(
        follower.origin_seq(),
        last_fresh_start.map(|idx| idx as u64),
        "{name}: the follower is not on the last chain"
    );
}

/// A shipped scenario's ledger, simulated: its entries and the series blobs its batches name.
async fn simulated(dir: &TempDir, name: &str) -> (Vec<Entry>, Vec<Vec<u8>>) {
    let location = sqlite(&dir.join(&format!("simulated-{name}.db")));
    simulate_into(&location, name).await;
    read_source(&location).await
}

/// Every entry of a ledger and the series blobs its scrape batches name.
async fn read_source(location: &LedgerLocation) -> (Vec<Entry>, Vec<Vec<u8>>) {
    let ledger = journal::open_location(location).await.unwrap();
    let entries = read_all(&ledger).await;
    let blobs = series_blobs(&ledger, &entries).await;
    ledger.close().await;
    (entries, blobs)
}
