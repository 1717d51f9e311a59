//! `vigil ledger archive --before DATE --out DIR`: the session chains that ended before DATE
//! moved to a segment file in DIR (`vigil_ledger::Ledger::write_segment`), with a manifest and
//! a consistency proof from the segment's end to the live ledger, then removed from the live
//! ledger, which keeps their leaf hashes and the chain hash at the cut; and
//! `vigil ledger verify --archive DIR`: every segment verified and chained to the next, the
//! last to where the live ledger carries on. `docs/archive.md` is the auditor's procedure.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use vigil_core::Timestamp;
use vigil_ledger::{Ledger, LedgerLocation};

use super::open_location;
use crate::journal::{self, SessionRecord};

/// `vigil ledger archive`: moves every whole session chain that ended before `before_ms` to
/// a new segment in `out`; exit 0 (also when there is nothing to move), 1 when the live
/// ledger does not verify. The blobs only archived entries name stay in the ledger unless
/// `release_blobs` (safe only while no daemon writes: it may name one of them again).
pub async fn archive(
    db: &LedgerLocation,
    before_ms: i64,
    out: &Path,
    release_blobs: bool,
) -> anyhow::Result<ExitCode> {
    let ledger = open_location(db).await?;
    let archived = archive_in(&ledger, db, before_ms, out, release_blobs).await;
    ledger.close().await;
    archived
}

async fn archive_in(
    ledger: &Ledger,
    db: &LedgerLocation,
    before_ms: i64,
    out: &Path,
    release_blobs: bool,
) -> anyhow::Result<ExitCode> {
    let before = ledger.verify().await?;
    if let Some(problem) = &before.first_problem {
        println!(
            "ledger `{db}`: BROKEN at entry {}: {problem}; nothing archived",
            problem.seq
        );
        return Ok(ExitCode::FAILURE);
    }
    let first_seq = ledger
        .archived_prefix()
        .await?
        .map_or(0, |prefix| prefix.n_entries);
    let Some(cut) = archive_cut(ledger, first_seq, before_ms).await? else {
        println!(
            "ledger `{db}`: no session chain after entry {first_seq} ended before {}; nothing archived",
            Timestamp(before_ms).to_rfc3339()
        );
        return Ok(ExitCode::SUCCESS);
    };
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let name = format!("segment-{first_seq:012}-{:012}", cut - 1);
    let path = out.join(format!("{name}.db"));
    let segment = ledger.write_segment(cut, &path).await?;
    // The segment's end is a prefix of the live tree: proved, and the proof kept beside it
    // (`vigil ledger verify --proof NAME.proof.json` checks it offline).
    let proof = ledger
        .prove_consistency(cut, before.n_entries)
        .await?
        .context("no consistency proof from the segment's end to the live ledger")?;
    anyhow::ensure!(
        proof.from_head == segment.tree_head && proof.to_head == before.tree_head,
        "the segment's tree head does not match the live ledger's"
    );
    let proof_json = serde_json::json!({
        "from_size": proof.from_size,
        "from_head": hex::encode(proof.from_head),
        "to_size": proof.to_size,
        "to_head": hex::encode(proof.to_head),
        "proof": proof.proof.iter().map(hex::encode).collect::<Vec<_>>(),
    });
    let now_ms = crate::clock::wall_now_ms();
    let manifest = serde_json::json!({
        "segment": format!("{name}.db"),
        "first_seq": segment.first_seq,
        "end_seq": segment.end_seq,
        "head_chain_hash": hex::encode(segment.head_chain_hash),
        "tree_head": hex::encode(segment.tree_head),
        "n_blobs": segment.blobs.len(),
        "n_checkpoints": segment.n_checkpoints,
        "before_ms": before_ms,
        "archived_at_ms": now_ms,
        "consistency_proof": format!("{name}.proof.json"),
    });
    write_new(&out.join(format!("{name}.proof.json")), &proof_json)?;
    write_new(&out.join(format!("{name}.json")), &manifest)?;
    let released = if release_blobs {
        segment.blobs.clone()
    } else {
        std::collections::BTreeSet::new()
    };
    ledger
        .archive_prefix(cut, now_ms, &released)
        .await
        .context("removing the archived entries from the live ledger")?;
    let after = ledger.verify().await?;
    anyhow::ensure!(
        after.is_intact()
            && (after.tree_head == before.tree_head || after.n_entries > before.n_entries),
        "the live ledger does not verify after archiving: {:?}",
        after.first_problem
    );
    println!(
        "ledger `{db}`: entries {first_seq} to {} archived to {} (tree head {} at {cut} entries, {} blobs, {} checkpoints); the live ledger keeps their leaf hashes and verifies from entry {cut}{}",
        cut - 1,
        path.display(),
        hex::encode(segment.tree_head),
        segment.blobs.len(),
        segment.n_checkpoints,
        if release_blobs {
            "; the blobs only they named were removed"
        } else {
            ""
        }
    );
    Ok(ExitCode::SUCCESS)
}

/// Writes `value` as pretty JSON to a file that must not exist.
fn write_new(path: &Path, value: &serde_json::Value) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    writeln!(file, "{}", serde_json::to_string_pretty(value)?)
        .with_context(|| format!("writing {}", path.display()))
}

/// Where to cut: the latest start of a fresh session chain after `first_seq` whose previous
/// entry (the end of the chains before it) was recorded before `before_ms`. Whole chains
/// only, since replay starts at a chain's origin; the live ledger keeps at least one.
async fn archive_cut(
    ledger: &Ledger,
    first_seq: u64,
    before_ms: i64,
) -> anyhow::Result<Option<u64>> {
    let Some(mut seq) = ledger.len().checked_sub(1) else {
        return Ok(None);
    };
    // Bounded by the number of sessions.
    for _ in 0..1_000_000 {
        let Some(session) = ledger.last_session_at_or_before(seq).await? else {
            return Ok(None);
        };
        if session.seq <= first_seq {
            return Ok(None);
        }
        let fresh = matches!(
            journal::session_of(&session)?,
            SessionRecord::SessionStarted { resumes: None, .. }
        );
        let previous = ledger.read(session.seq - 1, 1).await?.into_iter().next();
        if fresh && previous.is_some_and(|entry| entry.at_ms < before_ms) {
            return Ok(Some(session.seq));
        }
        seq = session.seq - 1;
    }
    Ok(None)
}

/// `vigil ledger verify --archive DIR`: each segment in DIR verifies, starts where the one
/// before it ended (the same chain hash and tree head there), and the last ends where the live
/// ledger `db` carries on. Prints a line per segment; false at the first that does not hold.
pub async fn verify_segments(dir: &Path, db: &LedgerLocation) -> anyhow::Result<bool> {
    let mut previous: Option<(u64, [u8; 32], [u8; 32])> = None;
    for path in journal::segments_in(dir)? {
        let segment = journal::open_existing(&path).await?;
        let checked = check_continues(&segment, previous).await;
        segment.close().await;
        match checked? {
            Ok(end) => {
                println!(
                    "segment `{}`: entries {} to {} intact, tree head {}",
                    path.display(),
                    previous.map_or(0, |(size, ..)| size),
                    end.0 - 1,
                    hex::encode(end.2)
                );
                previous = Some(end);
            }
            Err(problem) => {
                println!("segment `{}`: BROKEN: {problem}", path.display());
                return Ok(false);
            }
        }
    }
    let live = open_location(db).await?;
    let checked = check_continues(&live, previous).await;
    live.close().await;
    match checked? {
        Ok(_) if previous.is_some() => {
            println!("ledger `{db}`: carries on where the last segment ends");
            Ok(true)
        }
        Ok(_) => {
            println!("archive `{}`: no segment", dir.display());
            Ok(true)
        }
        Err(problem) => {
            println!("ledger `{db}`: BROKEN: {problem}");
            Ok(false)
        }
    }
}

/// Verifies `ledger` and checks that it starts where `previous` (size, chain hash and tree
/// head of the previous segment) ends; its own end, or what does not hold.
async fn check_continues(
    ledger: &Ledger,
    previous: Option<(u64, [u8; 32], [u8; 32])>,
) -> anyhow::Result<Result<(u64, [u8; 32], [u8; 32]), String>> {
    let prefix = ledger.archived_prefix().await?;
    let start = prefix.map_or(0, |prefix| prefix.n_entries);
    let sizes = std::iter::once(start).collect();
    let (report, heads) = ledger.verify_with_heads(&sizes).await?;
    if let Some(problem) = report.first_problem {
        return Ok(Err(format!("at entry {}: {problem}", problem.seq)));
    }
    let expected = previous.map_or((0, None, None), |(size, chain, head)| {
        (size, Some(chain), Some(head))
    });
    let actual = (
        start,
        prefix.map(|prefix| prefix.chain_hash),
        (start > 0).then(|| heads.get(&start).copied()).flatten(),
    );
    if actual != expected {
        return Ok(Err(format!(
            "it starts at entry {start}, but the previous segment ends at entry {} (or their chain hashes or tree heads differ there)",
            expected.0
        )));
    }
    let Some(head_chain_hash) = report.head_chain_hash else {
        return Ok(Err("it holds no entry".to_owned()));
    };
    Ok(Ok((report.n_entries, head_chain_hash, report.tree_head)))
}
