//! `vigil ledger verify`, `show`, `prove`, `export`, `checkpoint`, `blob` and `archive`: the
//! ledger for auditors.
//!
//! # Memory
//!
//! Every command here reads the ledger with bounded memory, whatever its size: a constant
//! plus a few copies of the largest single entry (or blob), never a multiple of the number or
//! the total size of the entries. The ledger is read in pages of at most 10,000 rows and
//! 4 MiB of row data, or one larger entry alone (`vigil_ledger::PageLimits`), and:
//!
//! - `verify` keeps the Merkle frontier (O(log n) hashes), at most 65,536 checked blob hashes
//!   (about 4 MiB), the stored checkpoints of the current page (read a page at a time as the
//!   pass reaches their sizes, and judged one by one: a tally, not a list) and one blob while
//!   hashing it;
//! - `show` prints each entry as it is read (`--incident` and `--since` filter in SQL), reading
//!   only the type of an event (and its exchanges blob) to summarize it;
//! - `export` verifies the log while writing its leaf hashes to `OUT.tree`, builds the Merkle
//!   tree's levels there (about 64 bytes per entry on disk, removed afterwards), then reads the
//!   entries again and writes each with its proof, read from that file (O(log n) nodes);
//! - `verify --export` reads the file twice, a line at a time (a line is about twice its
//!   entry: the payload is escaped as a JSON string);
//! - `prove` reads the leaf hashes once and keeps only the O(log n) ranges of the proof.
//!
//! So the peak is about 20 MB (the process, SQLite, the runtime: `show --since` that keeps
//! nothing) plus a 4 MiB page plus about 2.5 live copies of the largest entry while it is
//! read (SQLite's value, the driver's copy, the decoded text); glibc may also keep freed
//! copies in each thread's arena. Measured (release build, `/usr/bin/time -v`, maximum
//! resident set size) on the ledger that `cargo run --release -p vigil-bench -- ledger-size
//! --out FILE --mb 320` writes (367 MB of SQLite, 207,954 entries, 18 pushed batches of 4 to
//! 19 MB), before (b9362b7) and after these reads were bounded:
//!
//! | command | before | after |
//! | --- | --- | --- |
//! | `verify` | 176 MB | 113 MB |
//! | `show` | 460 MB | 82 MB |
//! | `show --since 2m` (nothing that recent) | 419 MB | 19 MB |
//! | `show --all` | 516 MB | 82 MB |
//! | `show --full` | (no such flag) | 84 MB |
//! | `export` (a 659 MB file; the same bytes before and after) | 2,153 MB | 84 MB |
//! | `verify --export` of that file | 1,528 MB | 88 MB |
//! | `prove 123456` | 471 MB | 80 MB |
//!
//! The peak does not follow the ledger's size. With the same largest entry (19 MB), every
//! command but `show --since` peaks at 68 to 88 MB on a 122 MB ledger (before: `show` 217 MB,
//! `export` 701 MB), and `verify`, `show` and `show --full` at 82 to 125 MB over two runs on a
//! 1.1 GB one (623,862 entries); what varies is what glibc keeps: with
//! `MALLOC_MMAP_THRESHOLD_=1048576`, which returns every large buffer when it is freed,
//! `verify` peaks at 63 MB on the 122 MB ledger and 65 MB on the 367 MB one. PostgreSQL (the
//! same 320 MB written to a schema): `verify` 104 MB, `show` 88 MB, `export` 100 MB (before:
//! 122, 479 and 2,073 MB).

mod archive;
mod export;
mod show;
mod verify;

use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use vigil_ledger::LedgerLocation;

pub use archive::{archive, verify_segments};
pub use export::{export, prove, prove_consistency};
pub use show::{ShowOptions, show};
pub use verify::{verify, verify_export, verify_proof};

pub use crate::journal::{location_of, open_existing, open_location};

/// `vigil ledger checkpoint --db FILE --key FILE --out FILE`: signs the tree head of a log
/// that verifies, stores the checkpoint in the ledger and writes it to `out`.
pub async fn checkpoint(
    db: &LedgerLocation,
    key: &Path,
    place: crate::checkpoints::KeyPlace,
    out: &Path,
) -> anyhow::Result<ExitCode> {
    // Before anything else: a key that cannot be had must not cost a verification first.
    crate::checkpoints::check_key(key, place)?;
    let ledger = open_location(db).await?;
    let report = ledger.verify().await.context("reading the ledger")?;
    if let Some(problem) = report.first_problem {
        ledger.close().await;
        println!(
            "ledger `{db}`: BROKEN at entry {}: {problem}; no checkpoint",
            problem.seq
        );
        return Ok(ExitCode::FAILURE);
    }
    let key = crate::checkpoints::load_or_create_key(key, place)?;
    let signed = crate::checkpoints::take(&ledger, &key, crate::checkpoints::now_ms()).await;
    ledger.close().await;
    let signed = signed?;
    crate::checkpoints::publish_file(out, &signed)?;
    println!(
        "checkpoint of {} entries (tree head {}) signed by {}, stored in the ledger and written to {}",
        signed.tree_size,
        signed.tree_head,
        signed.public_key,
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// The time `--since` names, in milliseconds since the epoch: an RFC 3339 time, or a
/// duration (`30m`, `2h`, `7d`) before now.
///
/// # Errors
///
/// When the text is neither, saying what was expected.
pub fn parse_since(text: &str) -> anyhow::Result<i64> {
    if let Ok(ago) = crate::duration::parse_duration(text) {
        let now = crate::clock::since_epoch().unwrap_or_default();
        let since = now.saturating_sub(ago);
        return Ok(i64::try_from(since.as_millis()).unwrap_or(i64::MAX));
    }
    vigil_core::datetime::parse_timestamp_ms(text).map_err(|error| {
        anyhow::anyhow!(
            "--since `{text}`: neither a time ago (90s, 30m, 2h, 7d) nor an RFC 3339 time ({error})"
        )
    })
}

/// `vigil ledger blob --db FILE HASH`: prints a blob after checking its hash (pretty JSON
/// when it is JSON).
pub async fn blob(db: &LedgerLocation, hash: &str) -> anyhow::Result<ExitCode> {
    let ledger = open_location(db).await?;
    let content = ledger.get_blob(hash).await;
    ledger.close().await;
    let Some(content) = content? else {
        println!("ledger `{db}` holds no blob {hash}");
        return Ok(ExitCode::FAILURE);
    };
    match serde_json::from_slice::<serde_json::Value>(&content) {
        Ok(value) => println!("{}", serde_json::to_string_pretty(&value)?),
        Err(_) => {
            std::io::stdout()
                .write_all(&content)
                .context("writing the blob")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
