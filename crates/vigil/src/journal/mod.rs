//! What the ledger means to vigil: the records it holds ([`records`]), where a ledger is and
//! opening it ([`location`]), reading sessions and chains back ([`reader`]), the trust tally
//! ([`trust`]), and the one step every driver of the engine runs ([`step`](mod@step)), with
//! the drivers that read a ledger, [`replay`] and [`recovery`], which run a recorded chain
//! through it ([`rerun`]).
//!
//! The daemon appends a step's output and carries out its effects, the simulator schedules
//! the world's answers on its virtual clock, replay compares the recorded entries with what
//! the engine and the recorded policies give again, and recovery rebuilds the engine from
//! them.

pub mod follow;
pub mod incidents;
pub mod location;
pub mod proof;
pub mod reader;
pub mod records;
pub mod recovery;
pub mod replay;
pub mod report;
pub mod rerun;
pub mod scrape_batch;
pub mod step;
pub mod trust;

pub use location::{
    location_of, open_existing, open_location, remove_sqlite_ledger, segment_of_incident,
    segments_in,
};
pub use reader::{ChainEntries, Entries, Recorded, decode, next_origin};
pub use records::{
    CommandRecord, EventRecord, SessionRecord, chain_origin, command_entries, event_entry,
    record_bundle, record_policies, recorded_authorizer, scrape_batching, session_entry,
    session_of, session_start_of, step_entries,
};
pub use rerun::{Rerun, RerunChain};
pub use scrape_batch::{ScrapeBatcher, ScrapeBatching};
pub use step::{Answerer, CedarAnswers, RecordedAnswers, Step, answer, step, step_with};

/// A fresh SQLite ledger whose first session is recorded (not appended) from the scenarios'
/// config, for the journal's tests: its path, the ledger and the session's start.
#[cfg(test)]
pub(crate) async fn test_ledger(
    name: &str,
) -> (std::path::PathBuf, vigil_ledger::Ledger, SessionRecord) {
    let path = std::env::temp_dir().join(format!("vigil-{name}-{}.db", std::process::id()));
    remove_sqlite_ledger(&path).unwrap();
    let location = vigil_ledger::LedgerLocation::Sqlite { path: path.clone() };
    let ledger = vigil_ledger::Ledger::open(&location).await.unwrap();
    let bundle = crate::bundle::load(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/scenarios/config/vigil.yaml"),
    )
    .unwrap();
    let started = record_bundle(&ledger, &bundle).await.unwrap();
    (path, ledger, started)
}
