//! Ledgers for the tests that drive `vigil::journal` directly: a shipped scenario simulated
//! into a SQLite ledger, and its entries read back and written again elsewhere.

use std::path::Path;
use std::process::ExitCode;

use vigil::commands::simulate::{self, SimulateArgs};
use vigil::journal;
use vigil_ledger::{Entry, Ledger, LedgerLocation, NewEntry};

use crate::support::repo_root;

/// Runs `tests/scenarios/NAME.yaml` through the simulator into `location`, checking its
/// expectations.
pub async fn simulate_into(location: &LedgerLocation, name: &str) {
    let code = simulate::run(&SimulateArgs {
        scenario: repo_root().join(format!("tests/scenarios/{name}.yaml")),
        json: false,
        check: true,
        ledger: Some(location.clone()),
        quiet: true,
    })
    .await
    .unwrap();
    assert_eq!(
        format!("{code:?}"),
        format!("{:?}", ExitCode::SUCCESS),
        "{name}: simulate --check"
    );
}

/// Every entry of `ledger`, in seq order.
pub async fn read_all(ledger: &Ledger) -> Vec<Entry> {
    let mut all = Vec::new();
    let mut entries = journal::Entries::new(ledger, 0, u64::MAX);
    while let Some(entry) = entries.next().await.unwrap() {
        all.push(entry);
    }
    all
}

/// The series blobs that the scrape batches among `entries` name, read from `ledger`.
pub async fn series_blobs(ledger: &Ledger, entries: &[Entry]) -> Vec<Vec<u8>> {
    let mut blobs = Vec::new();
    for entry in entries {
        if let Ok(journal::Recorded::ScrapeBatch(batch)) = journal::decode(entry) {
            let blob = ledger.get_blob(&batch.scrape_batch.series_blob).await;
            blobs.push(blob.unwrap().unwrap());
        }
    }
    blobs
}

/// `entry` as it is appended again.
pub fn new_entry(entry: &Entry) -> NewEntry {
    NewEntry {
        at_ms: entry.at_ms,
        kind: entry.kind,
        incident_id: entry.incident_id.clone(),
        payload: entry.payload_value().unwrap(),
    }
}

/// A SQLite ledger at `path`.
pub fn sqlite(path: &Path) -> LedgerLocation {
    LedgerLocation::Sqlite {
        path: path.to_path_buf(),
    }
}
