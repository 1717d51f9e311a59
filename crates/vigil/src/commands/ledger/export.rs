//! `vigil ledger export` and `vigil ledger prove`: the ledger with proofs for offline
//! checks, each computed in passes over the log with bounded memory.

use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use vigil_ledger::{Ledger, LedgerLocation, VerifyReport};

use super::open_location;

/// `path` with `suffix` appended to its file name.
fn beside(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Verifies the ledger; its report when intact, or `None` after saying where it is broken
/// and that the command (`refusal`) was not carried out.
async fn intact_report(
    ledger: &Ledger,
    db: &LedgerLocation,
    refusal: &str,
) -> anyhow::Result<Option<VerifyReport>> {
    let report = ledger.verify().await.context("reading the ledger")?;
    if report.first_problem.is_some() {
        say_broken(db, &report, refusal);
        return Ok(None);
    }
    Ok(Some(report))
}

/// Says where the ledger is broken and that the command (`refusal`) was not carried out.
fn say_broken(db: &LedgerLocation, report: &VerifyReport, refusal: &str) {
    if let Some(problem) = &report.first_problem {
        println!(
            "ledger `{db}`: BROKEN at entry {}: {problem}; {refusal}",
            problem.seq
        );
    }
}

/// `vigil ledger export --db FILE --out FILE`: the ledger with proofs, for offline checks.
///
/// Two passes: the first verifies the log and builds its Merkle tree in `OUT.tree` (64
/// bytes per entry, removed afterwards), the second writes `OUT.partial`, renamed to `OUT`
/// once complete and synced.
pub async fn export(db: &LedgerLocation, out: &Path) -> anyhow::Result<ExitCode> {
    let ledger = open_location(db).await?;
    let outcome = export_from(&ledger, db, out).await;
    ledger.close().await;
    outcome
}

async fn export_from(ledger: &Ledger, db: &LedgerLocation, out: &Path) -> anyhow::Result<ExitCode> {
    let scratch = beside(out, ".tree");
    anyhow::ensure!(
        !scratch.exists(),
        "`{}` exists: another export to `{}` is running, or one was interrupted (then remove it)",
        scratch.display(),
        out.display()
    );
    let tree = match ledger.export_tree(&scratch).await? {
        Ok(tree) => tree,
        Err(report) => {
            say_broken(db, &report, "not exported");
            return Ok(ExitCode::FAILURE);
        }
    };
    let partial = beside(out, ".partial");
    let file = std::fs::File::create(&partial)
        .with_context(|| format!("writing {}", partial.display()))?;
    let mut writer = BufWriter::with_capacity(64 * 1024, file);
    let written = tree.write(ledger, &mut writer).await;
    let finished = written.map_err(anyhow::Error::from).and_then(|n_entries| {
        let file = writer.into_inner().map_err(|error| error.into_error())?;
        file.sync_all()?;
        std::fs::rename(&partial, out)?;
        Ok(n_entries)
    });
    let n_entries = match finished {
        Ok(n_entries) => n_entries,
        Err(error) => {
            let _ = std::fs::remove_file(&partial);
            return Err(error.context(format!("writing {}", out.display())));
        }
    };
    println!(
        "exported {n_entries} entries of `{db}` to `{}`; check it with `vigil ledger verify --export {}`",
        out.display(),
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// `vigil ledger prove --db FILE SEQ`: the inclusion proof of entry `seq` in the current tree,
/// checked before it is printed.
pub async fn prove(db: &LedgerLocation, seq: u64) -> anyhow::Result<ExitCode> {
    let ledger = open_location(db).await?;
    let proved = prove_in(&ledger, db, seq).await;
    ledger.close().await;
    proved
}

async fn prove_in(ledger: &Ledger, db: &LedgerLocation, seq: u64) -> anyhow::Result<ExitCode> {
    let Some(report) = intact_report(ledger, db, "no proof").await? else {
        return Ok(ExitCode::FAILURE);
    };
    let size = report.n_entries;
    let Some(proof) = ledger.prove_inclusion(seq, size).await? else {
        anyhow::bail!("the ledger has {size} entries; there is no entry {seq}");
    };
    let printed = crate::journal::proof::checked_inclusion_json(&proof)?;
    println!("{}", serde_json::to_string_pretty(&printed)?);
    Ok(ExitCode::SUCCESS)
}

/// `vigil ledger prove --db FILE --consistency FROM [--to TO]`: the consistency proof from
/// the tree of `from` entries to the tree of `to` (default: all of them), checked before it
/// is printed.
pub async fn prove_consistency(
    db: &LedgerLocation,
    from: u64,
    to: Option<u64>,
) -> anyhow::Result<ExitCode> {
    let ledger = open_location(db).await?;
    let proved = prove_consistency_in(&ledger, db, from, to).await;
    ledger.close().await;
    proved
}

async fn prove_consistency_in(
    ledger: &Ledger,
    db: &LedgerLocation,
    from: u64,
    to: Option<u64>,
) -> anyhow::Result<ExitCode> {
    let Some(report) = intact_report(ledger, db, "no proof").await? else {
        return Ok(ExitCode::FAILURE);
    };
    let size = report.n_entries;
    let to = to.unwrap_or(size);
    anyhow::ensure!(
        0 < from && from <= to && to <= size,
        "the ledger has {size} entries; a consistency proof needs 0 < FROM <= TO <= {size} (got {from} and {to})",
    );
    let proof = ledger
        .prove_consistency(from, to)
        .await?
        .context("no consistency proof for these sizes")?;
    let components: Vec<&[u8]> = proof.proof.iter().map(<[u8; 32]>::as_slice).collect();
    vigil_ledger::merkle::verify_consistency(
        from,
        to,
        &proof.from_head,
        &proof.to_head,
        &components,
    )
    .context("the proof this ledger produced does not verify")?;
    let printed = serde_json::json!({
        "from_size": from,
        "from_head": hex::encode(proof.from_head),
        "to_size": to,
        "to_head": hex::encode(proof.to_head),
        "proof": proof.proof.iter().map(hex::encode).collect::<Vec<_>>(),
    });
    println!("{}", serde_json::to_string_pretty(&printed)?);
    Ok(ExitCode::SUCCESS)
}
