//! `vigil ledger verify`: the log against its hashes and checkpoints in one streaming pass,
//! an export file offline, a line at a time, or a proof offline.

use std::io::BufReader;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use vigil_ledger::checkpoint::Checkpoint;
use vigil_ledger::{CheckpointHead, LedgerError, LedgerLocation};

use super::open_location;
use crate::checkpoints::{Verdict, judge_head};

/// What the stored checkpoints said, tallied as the verification meets them (one at a time:
/// they are not all held).
struct CheckpointTally {
    /// The key every checkpoint must be signed with, if known.
    expected_key: Option<String>,
    /// The first stored checkpoint that does not hold, with the head at its size.
    first_failure: Option<CheckpointHead>,
    /// Stored checkpoints validly signed by another key: they vouch for nothing.
    n_other_key: u64,
    /// Stored checkpoints signed by the expected key.
    n_vouching: u64,
    /// The tree size of the newest of those.
    newest_vouching: Option<u64>,
}

impl CheckpointTally {
    /// Judges one stored checkpoint. Its head is `None` only when the intact log ends before
    /// it, so the log's length there is taken as one short of it; [`describe_verdict`] is told
    /// the real length once the pass is over.
    fn meet(&mut self, met: CheckpointHead) {
        let checkpoint = &met.checkpoint;
        if Some(&checkpoint.public_key) == self.expected_key.as_ref() {
            self.n_vouching += 1;
            self.newest_vouching = Some(checkpoint.tree_size);
        }
        if self.first_failure.is_some() {
            return;
        }
        let held = match met.head {
            Some(_) => checkpoint.tree_size,
            None => checkpoint.tree_size.saturating_sub(1),
        };
        match judge_head(
            checkpoint,
            held,
            met.head.as_ref(),
            self.expected_key.as_deref(),
        ) {
            Verdict::Holds => {}
            // A stored checkpoint signed by another key (an earlier key, or anyone's who can
            // write the database) vouches for nothing and is only counted.
            Verdict::OtherKey { .. } => self.n_other_key += 1,
            Verdict::Refused(_) | Verdict::Truncated { .. } | Verdict::Rewritten => {
                self.first_failure = Some(met);
            }
        }
    }
}

/// Recomputes every hash, link and the tree head in one pass, and checks the log against
/// every checkpoint stored in it (read a page at a time as the pass reaches their sizes) and
/// the one in `outside` (a file kept elsewhere, which a truncation that also deleted the
/// stored ones cannot reach); exit 1 at the first bad entry or checkpoint.
pub async fn verify(
    db: &LedgerLocation,
    public_key: Option<&str>,
    outside: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    let outside = match outside {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            let checkpoint: Checkpoint = serde_json::from_str(&text)
                .with_context(|| format!("{} is not a checkpoint", path.display()))?;
            Some((path, checkpoint))
        }
        None => None,
    };
    let ledger = open_location(db).await?;
    let newest = match ledger.last_checkpoint().await {
        Ok(newest) => newest,
        Err(error) => {
            ledger.close().await;
            println!("ledger `{db}`: BROKEN: {error}");
            return Ok(ExitCode::FAILURE);
        }
    };
    // All checkpoints must be signed by one key: the pinned one, else the newest stored
    // one's, else the outside one's.
    let expected_key = public_key
        .map(str::to_owned)
        .or_else(|| newest.map(|newest| newest.public_key))
        .or_else(|| {
            outside
                .as_ref()
                .map(|(_, checkpoint)| checkpoint.public_key.clone())
        });
    let mut tally = CheckpointTally {
        expected_key,
        first_failure: None,
        n_other_key: 0,
        n_vouching: 0,
        newest_vouching: None,
    };
    // One pass: the hashes, the links, the RFC 6962 tree head, the heads at every stored
    // checkpoint's size (judged as they are met) and at the outside one's.
    let sizes = outside
        .iter()
        .map(|(_, checkpoint)| checkpoint.tree_size)
        .collect();
    let verified = ledger
        .verify_with_checkpoints(&sizes, |met| tally.meet(met))
        .await;
    ledger.close().await;
    let (report, heads) = match verified {
        Ok(verified) => verified,
        Err(error @ LedgerError::MalformedCheckpoint { .. }) => {
            println!("ledger `{db}`: BROKEN: {error}");
            return Ok(ExitCode::FAILURE);
        }
        Err(error) => return Err(error).context("reading the ledger"),
    };
    if let Some(problem) = report.first_problem {
        println!(
            "ledger `{db}`: BROKEN at entry {}: {problem} ({} entries before it verify)",
            problem.seq, report.n_entries
        );
        return Ok(ExitCode::FAILURE);
    }
    let expected_key = tally.expected_key.as_deref();
    if let Some(failed) = &tally.first_failure {
        let verdict = judge_head(
            &failed.checkpoint,
            report.n_entries,
            failed.head.as_ref(),
            expected_key,
        );
        if let Some(problem) = describe_verdict(&verdict, &failed.checkpoint, report.n_entries) {
            println!("ledger `{db}`: {problem} (checkpoint stored in the ledger)");
            return Ok(ExitCode::FAILURE);
        }
    }
    if let Some((path, checkpoint)) = &outside {
        // The file given on the command line must be signed by the expected key.
        let verdict = judge_head(
            checkpoint,
            report.n_entries,
            heads.get(&checkpoint.tree_size),
            expected_key,
        );
        if let Some(problem) = describe_verdict(&verdict, checkpoint, report.n_entries) {
            println!(
                "ledger `{db}`: {problem} (checkpoint file `{}`)",
                path.display()
            );
            return Ok(ExitCode::FAILURE);
        }
    }
    let head = report
        .head_chain_hash
        .map_or_else(|| "(empty)".to_owned(), hex::encode);
    let pinned = if public_key.is_some() {
        " (the pinned key)"
    } else {
        " (key not pinned: pass --public-key)"
    };
    let mut vouched = match (tally.newest_vouching, expected_key) {
        (Some(newest), Some(key)) => format!(
            "; consistent with its {} stored checkpoint(s), the newest of {newest} entries, signed by {key}{pinned}",
            tally.n_vouching,
        ),
        _ => "; no stored checkpoint vouches for it".to_owned(),
    };
    if tally.n_other_key > 0 {
        vouched.push_str(&format!(
            "; {} stored checkpoint(s) signed by other keys vouch for nothing",
            tally.n_other_key
        ));
    }
    if let Some((path, checkpoint)) = &outside {
        vouched.push_str(&format!(
            "; consistent with the checkpoint file `{}` of {} entries",
            path.display(),
            checkpoint.tree_size
        ));
    }
    println!(
        "ledger `{db}`: {} entries, every hash link intact; head {head}; RFC 6962 tree head {}{vouched}",
        report.n_entries,
        hex::encode(report.tree_head)
    );
    Ok(ExitCode::SUCCESS)
}

/// What is wrong with a log according to `checkpoint`, if anything.
fn describe_verdict(verdict: &Verdict, checkpoint: &Checkpoint, n_entries: u64) -> Option<String> {
    match verdict {
        Verdict::Holds => None,
        Verdict::Refused(error) => Some(format!(
            "checkpoint of {} entries REFUSED: {error}",
            checkpoint.tree_size
        )),
        Verdict::OtherKey { found, expected } => Some(format!(
            "checkpoint of {} entries REFUSED: signed by key {found}, not the expected {expected}",
            checkpoint.tree_size
        )),
        Verdict::Truncated { vouched, held } => Some(format!(
            "TRUNCATED: a checkpoint vouches for {vouched} entries, the ledger holds {held}"
        )),
        Verdict::Rewritten => Some(format!(
            "REWRITTEN: its first {} entries (of {n_entries}) no longer form the checkpoint's tree head {}",
            checkpoint.tree_size, checkpoint.tree_head
        )),
    }
}

/// `vigil ledger verify --export FILE`: checks an export with no database, a line at a time
/// (two passes over the file).
pub fn verify_export(file: &Path) -> anyhow::Result<ExitCode> {
    let opened =
        std::fs::File::open(file).with_context(|| format!("reading {}", file.display()))?;
    let mut reader = BufReader::with_capacity(64 * 1024, opened);
    let checked = vigil_ledger::export::verify_export_from(&mut reader)
        .with_context(|| format!("reading {}", file.display()))?;
    match checked {
        Ok(report) => {
            println!(
                "export `{}`: {} entries, every hash, link and inclusion proof intact; RFC 6962 tree head {}",
                file.display(),
                report.n_entries,
                report.tree_head
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(problem) => {
            println!("export `{}`: BROKEN at {problem}", file.display());
            Ok(ExitCode::FAILURE)
        }
    }
}
/// `vigil ledger verify --proof FILE`: checks an inclusion or consistency proof printed by
/// `vigil ledger prove`, with no database.
pub fn verify_proof(file: &Path) -> anyhow::Result<ExitCode> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let value: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", file.display()))?;
    let hex_field = |name: &str| -> anyhow::Result<Vec<u8>> {
        value
            .get(name)
            .and_then(serde_json::Value::as_str)
            .and_then(|text| hex::decode(text).ok())
            .with_context(|| format!("{}: `{name}` is missing or not hex", file.display()))
    };
    let number = |name: &str| -> anyhow::Result<u64> {
        value
            .get(name)
            .and_then(serde_json::Value::as_u64)
            .with_context(|| format!("{}: `{name}` is missing or not a number", file.display()))
    };
    let proof: Vec<Vec<u8>> = value
        .get("proof")
        .and_then(serde_json::Value::as_array)
        .with_context(|| format!("{}: `proof` is missing", file.display()))?
        .iter()
        .map(|component| {
            component
                .as_str()
                .and_then(|text| hex::decode(text).ok())
                .with_context(|| format!("{}: a proof component is not hex", file.display()))
        })
        .collect::<anyhow::Result<_>>()?;
    let components: Vec<&[u8]> = proof.iter().map(Vec::as_slice).collect();
    let shown = file.display();
    if value.get("seq").is_some() {
        let (seq, size) = (number("seq")?, number("tree_size")?);
        let (leaf, head) = (hex_field("leaf_hash")?, hex_field("tree_head")?);
        match vigil_ledger::merkle::verify_inclusion(seq, size, &leaf, &components, &head) {
            Ok(()) => {
                println!(
                    "proof `{shown}`: entry {seq} (leaf {}) is in the tree of {size} entries with head {}",
                    hex::encode(&leaf),
                    hex::encode(&head)
                );
                Ok(ExitCode::SUCCESS)
            }
            Err(error) => {
                println!("proof `{shown}`: REFUSED: {error}");
                Ok(ExitCode::FAILURE)
            }
        }
    } else {
        let (from, to) = (number("from_size")?, number("to_size")?);
        let (from_head, to_head) = (hex_field("from_head")?, hex_field("to_head")?);
        match vigil_ledger::merkle::verify_consistency(from, to, &from_head, &to_head, &components)
        {
            Ok(()) => {
                println!(
                    "proof `{shown}`: the tree of {from} entries (head {}) is a prefix of the tree of {to} entries (head {})",
                    hex::encode(&from_head),
                    hex::encode(&to_head)
                );
                Ok(ExitCode::SUCCESS)
            }
            Err(error) => {
                println!("proof `{shown}`: REFUSED: {error}");
                Ok(ExitCode::FAILURE)
            }
        }
    }
}
