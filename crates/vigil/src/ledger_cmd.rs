//! `vigil ledger verify`, `show`, `prove`, `export` and `checkpoint`: the ledger for auditors.

use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use vigil_core::Timestamp;
use vigil_ledger::{EntryKind, Ledger, LedgerLocation};

use crate::session::{CommandRecord, EventRecord, SessionRecord};

/// Opens an existing SQLite ledger; a missing file is an error, not a new ledger.
pub async fn open_existing(db: &Path) -> anyhow::Result<Ledger> {
    open_location(&LedgerLocation::Sqlite {
        path: db.to_path_buf(),
    })
    .await
}

/// Opens an existing ledger; a missing file or schema is an error, not a new ledger.
pub async fn open_location(location: &LedgerLocation) -> anyhow::Result<Ledger> {
    // Every ledger error names the ledger already.
    Ok(Ledger::open_existing(location).await?)
}

/// The ledger `--db` names: a `postgres://` or `postgresql://` URL (with `--schema`), else a
/// SQLite file.
///
/// # Errors
///
/// When `--schema` is given with a SQLite file.
pub fn location_of(db: &str, schema: Option<&str>) -> anyhow::Result<LedgerLocation> {
    if db.starts_with("postgres://") || db.starts_with("postgresql://") {
        return Ok(LedgerLocation::Postgres {
            url: db.to_owned(),
            schema: schema.map(str::to_owned),
        });
    }
    anyhow::ensure!(
        schema.is_none(),
        "--schema names a PostgreSQL schema, but --db `{db}` is a SQLite file"
    );
    Ok(LedgerLocation::Sqlite {
        path: std::path::PathBuf::from(db),
    })
}

/// Recomputes every hash, link and the tree head in one pass, and checks the log against
/// every checkpoint stored in it and the one in `outside` (a file kept elsewhere, which a
/// truncation that also deleted the stored ones cannot reach); exit 1 at the first bad entry
/// or checkpoint.
pub async fn verify(
    db: &LedgerLocation,
    public_key: Option<&str>,
    outside: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    let outside = match outside {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            let checkpoint: vigil_ledger::checkpoint::Checkpoint = serde_json::from_str(&text)
                .with_context(|| format!("{} is not a checkpoint", path.display()))?;
            Some((path, checkpoint))
        }
        None => None,
    };
    let ledger = open_location(db).await?;
    let checkpoints = ledger.checkpoints().await;
    let checkpoints = match checkpoints {
        Ok(checkpoints) => checkpoints,
        Err(error) => {
            ledger.close().await;
            println!("ledger `{db}`: BROKEN: {error}");
            return Ok(ExitCode::FAILURE);
        }
    };
    // One pass: the hashes, the links, the RFC 6962 tree head and the heads at every
    // checkpoint's size.
    let mut sizes = crate::checkpoints::sizes(&checkpoints);
    sizes.extend(outside.iter().map(|(_, checkpoint)| checkpoint.tree_size));
    let verified = ledger
        .verify_with_heads(&sizes)
        .await
        .context("reading the ledger");
    ledger.close().await;
    let (report, heads) = verified?;
    if let Some(problem) = report.first_problem {
        println!(
            "ledger `{db}`: BROKEN at entry {}: {problem} ({} entries before it verify)",
            problem.seq, report.n_entries
        );
        return Ok(ExitCode::FAILURE);
    }
    // All checkpoints must be signed by one key: the pinned one, else the newest stored
    // one's, else the outside one's.
    let expected_key = public_key
        .map(str::to_owned)
        .or_else(|| checkpoints.last().map(|newest| newest.public_key.clone()))
        .or_else(|| {
            outside
                .as_ref()
                .map(|(_, checkpoint)| checkpoint.public_key.clone())
        });
    let stored = checkpoints
        .iter()
        .map(|checkpoint| (checkpoint, "checkpoint stored in the ledger".to_owned()));
    let outside_one = outside
        .iter()
        .map(|(path, checkpoint)| (checkpoint, format!("checkpoint file `{}`", path.display())));
    let mut n_other_key = 0;
    for (checkpoint, origin) in stored.chain(outside_one) {
        let verdict = crate::checkpoints::judge(
            checkpoint,
            report.n_entries,
            &heads,
            expected_key.as_deref(),
        );
        // A stored checkpoint signed by another key (an earlier key, or anyone's who can
        // write the database) vouches for nothing and is only counted; the file given on the
        // command line must be signed by the expected key.
        let is_stored = origin.starts_with("checkpoint stored");
        if is_stored && matches!(verdict, crate::checkpoints::Verdict::OtherKey { .. }) {
            n_other_key += 1;
            continue;
        }
        if let Some(problem) = describe_verdict(&verdict, checkpoint, report.n_entries) {
            println!("ledger `{db}`: {problem} ({origin})");
            return Ok(ExitCode::FAILURE);
        }
    }
    let head = report
        .head_chain_hash
        .map_or_else(|| "(empty)".to_owned(), hex::encode);
    let vouching: Vec<&vigil_ledger::checkpoint::Checkpoint> = checkpoints
        .iter()
        .filter(|checkpoint| Some(&checkpoint.public_key) == expected_key.as_ref())
        .collect();
    let pinned = if public_key.is_some() {
        " (the pinned key)"
    } else {
        " (key not pinned: pass --public-key)"
    };
    let mut vouched = match (vouching.last(), &expected_key) {
        (Some(newest), Some(key)) => format!(
            "; consistent with its {} stored checkpoint(s), the newest of {} entries, signed by {key}{pinned}",
            vouching.len(),
            newest.tree_size,
        ),
        _ => "; no stored checkpoint vouches for it".to_owned(),
    };
    if n_other_key > 0 {
        vouched.push_str(&format!(
            "; {n_other_key} stored checkpoint(s) signed by other keys vouch for nothing"
        ));
    }
    let vouched = match &outside {
        Some((path, checkpoint)) => format!(
            "{vouched}; consistent with the checkpoint file `{}` of {} entries",
            path.display(),
            checkpoint.tree_size
        ),
        None => vouched,
    };
    println!(
        "ledger `{db}`: {} entries, every hash link intact; head {head}; RFC 6962 tree head {}{vouched}",
        report.n_entries,
        hex::encode(report.tree_head)
    );
    Ok(ExitCode::SUCCESS)
}

/// What is wrong with a log according to `checkpoint`, if anything.
fn describe_verdict(
    verdict: &crate::checkpoints::Verdict,
    checkpoint: &vigil_ledger::checkpoint::Checkpoint,
    n_entries: u64,
) -> Option<String> {
    use crate::checkpoints::Verdict;
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

/// `vigil ledger export --db FILE --out FILE`: the ledger with proofs, for offline checks.
pub async fn export(db: &LedgerLocation, out: &Path) -> anyhow::Result<ExitCode> {
    let Some(entries) = intact_entries(db, "not exported").await? else {
        return Ok(ExitCode::FAILURE);
    };
    let lines = vigil_ledger::export::export_lines(&entries);
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(out, text).with_context(|| format!("writing {}", out.display()))?;
    println!(
        "exported {} entries of `{}` to `{}`; check it with `vigil ledger verify --export {}`",
        entries.len(),
        db,
        out.display(),
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// `vigil ledger verify --export FILE`: checks an export with no database.
pub fn verify_export(file: &Path) -> anyhow::Result<ExitCode> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    match vigil_ledger::export::verify_export(&text) {
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

/// Every entry, in order.
async fn read_all(ledger: &Ledger) -> anyhow::Result<Vec<vigil_ledger::Entry>> {
    let mut entries = Vec::with_capacity(usize::try_from(ledger.len()).unwrap_or(0));
    let mut from = 0;
    loop {
        let page = ledger.read(from, 10_000).await?;
        let Some(last) = page.last() else { break };
        from = last.seq + 1;
        entries.extend(page);
    }
    Ok(entries)
}

/// The entries of a ledger that verifies, or `None` after saying where it is broken and that
/// the command (`refusal`) was not carried out.
async fn intact_entries(
    db: &LedgerLocation,
    refusal: &str,
) -> anyhow::Result<Option<Vec<vigil_ledger::Entry>>> {
    let ledger = open_location(db).await?;
    let report = ledger.verify().await.context("reading the ledger")?;
    if let Some(problem) = report.first_problem {
        ledger.close().await;
        println!(
            "ledger `{}`: BROKEN at entry {}: {problem}; {refusal}",
            db, problem.seq
        );
        return Ok(None);
    }
    let entries = read_all(&ledger).await?;
    ledger.close().await;
    Ok(Some(entries))
}

/// Every entry's leaf hash, in order.
fn leaf_hashes(entries: &[vigil_ledger::Entry]) -> Vec<[u8; 32]> {
    entries.iter().map(|entry| entry.leaf_hash).collect()
}

/// `vigil ledger prove --db FILE SEQ`: the inclusion proof of entry `seq` in the current tree,
/// checked before it is printed.
pub async fn prove(db: &LedgerLocation, seq: u64) -> anyhow::Result<ExitCode> {
    let Some(entries) = intact_entries(db, "no proof").await? else {
        return Ok(ExitCode::FAILURE);
    };
    let leaves = leaf_hashes(&entries);
    let index = usize::try_from(seq).unwrap_or(usize::MAX);
    let Some(proof) = vigil_ledger::merkle::inclusion_proof(&leaves, index) else {
        anyhow::bail!(
            "the ledger has {} entries; there is no entry {seq}",
            leaves.len()
        );
    };
    let root = vigil_ledger::merkle::root(&leaves);
    let leaf = leaves.get(index).copied().unwrap_or_default();
    let components: Vec<&[u8]> = proof.iter().map(<[u8; 32]>::as_slice).collect();
    vigil_ledger::merkle::verify_inclusion(seq, leaves.len() as u64, &leaf, &components, &root)
        .context("the proof this ledger produced does not verify")?;
    let printed = serde_json::json!({
        "seq": seq,
        "tree_size": leaves.len(),
        "tree_head": hex::encode(root),
        "leaf_hash": hex::encode(leaf),
        "proof": proof.iter().map(hex::encode).collect::<Vec<_>>(),
    });
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
    let Some(entries) = intact_entries(db, "no proof").await? else {
        return Ok(ExitCode::FAILURE);
    };
    let leaves = leaf_hashes(&entries);
    let to = to.unwrap_or(leaves.len() as u64);
    anyhow::ensure!(
        0 < from && from <= to && to <= leaves.len() as u64,
        "the ledger has {} entries; a consistency proof needs 0 < FROM <= TO <= {} (got {from} and {to})",
        leaves.len(),
        leaves.len()
    );
    let later = leaves
        .get(..usize::try_from(to).unwrap_or(usize::MAX))
        .unwrap_or_default();
    let earlier = later
        .get(..usize::try_from(from).unwrap_or(usize::MAX))
        .unwrap_or_default();
    let proof = vigil_ledger::merkle::consistency_proof(later, earlier.len())
        .context("no consistency proof for these sizes")?;
    let (from_head, to_head) = (
        vigil_ledger::merkle::root(earlier),
        vigil_ledger::merkle::root(later),
    );
    let components: Vec<&[u8]> = proof.iter().map(<[u8; 32]>::as_slice).collect();
    vigil_ledger::merkle::verify_consistency(from, to, &from_head, &to_head, &components)
        .context("the proof this ledger produced does not verify")?;
    let printed = serde_json::json!({
        "from_size": from,
        "from_head": hex::encode(from_head),
        "to_size": to,
        "to_head": hex::encode(to_head),
        "proof": proof.iter().map(hex::encode).collect::<Vec<_>>(),
    });
    println!("{}", serde_json::to_string_pretty(&printed)?);
    Ok(ExitCode::SUCCESS)
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

/// The time `--since` names, in milliseconds since the epoch: an RFC 3339 time, or a
/// duration (`30m`, `2h`, `7d`) before now.
///
/// # Errors
///
/// When the text is neither, saying what was expected.
pub fn parse_since(text: &str) -> anyhow::Result<i64> {
    if let Ok(ago) = crate::human_cmd::parse_duration(text) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let since = now.saturating_sub(ago);
        return Ok(i64::try_from(since.as_millis()).unwrap_or(i64::MAX));
    }
    vigil_core::datetime::parse_timestamp_ms(text).map_err(|error| {
        anyhow::anyhow!(
            "--since `{text}`: neither a time ago (90s, 30m, 2h, 7d) nor an RFC 3339 time ({error})"
        )
    })
}

/// Prints entries, one line each: an incident's, or all of them; only those at or after
/// `since_ms` when given.
pub async fn show(
    db: &LedgerLocation,
    incident: Option<&str>,
    since_ms: Option<i64>,
    all: bool,
) -> anyhow::Result<ExitCode> {
    let ledger = open_location(db).await?;
    let entries = match incident {
        Some(incident) => ledger.entries_for_incident(incident).await?,
        None => read_all(&ledger).await?,
    };
    let mut lines = Vec::with_capacity(entries.len());
    for entry in &entries {
        if since_ms.is_some_and(|since| entry.at_ms < since) {
            continue;
        }
        let summary = match entry.kind {
            EntryKind::Event => match serde_json::from_str::<EventRecord>(&entry.payload) {
                Ok(record) => {
                    let kind = record.event.kind();
                    if !all && matches!(kind, "scraped" | "tick") {
                        continue;
                    }
                    match &record.exchanges_blob {
                        Some(hash) => {
                            format!("event {kind} [{}]", exchanges_summary(&ledger, hash).await)
                        }
                        None => format!("event {kind}"),
                    }
                }
                Err(error) => format!("event (unreadable: {error})"),
            },
            EntryKind::Command => match serde_json::from_str::<CommandRecord>(&entry.payload) {
                Ok(record) => format!(
                    "command (caused by {}) {}",
                    record.caused_by,
                    short_json(&record.command)
                ),
                Err(error) => format!("command (unreadable: {error})"),
            },
            EntryKind::Session => session_summary(&entry.payload),
        };
        let incident = entry.incident_id.as_deref().unwrap_or("-");
        let at = Timestamp(entry.at_ms).to_rfc3339();
        lines.push(format!("{:>7} {at} {incident:<16} {summary}", entry.seq));
    }
    ledger.close().await;
    let mut stdout = std::io::stdout().lock();
    for line in lines {
        // A closed pipe (`| head`) ends the listing quietly instead of panicking.
        if writeln!(stdout, "{line}").is_err() {
            break;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The HTTP exchanges in blob `hash`, one short summary each.
async fn exchanges_summary(ledger: &Ledger, hash: &str) -> String {
    match ledger.get_blob(hash).await {
        Ok(Some(bytes)) => {
            match serde_json::from_slice::<Vec<vigil_connectors::exchange::Exchange>>(&bytes) {
                Ok(exchanges) => exchanges
                    .iter()
                    .map(vigil_connectors::exchange::Exchange::summary)
                    .collect::<Vec<_>>()
                    .join("; "),
                Err(error) => format!("exchanges {hash}: unreadable: {error}"),
            }
        }
        Ok(None) => format!("exchanges {hash}: MISSING"),
        Err(error) => format!("exchanges {hash}: {error}"),
    }
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

fn session_summary(payload: &str) -> String {
    match serde_json::from_str::<SessionRecord>(payload) {
        Ok(SessionRecord::SessionStarted {
            vigil_version,
            engine_config,
            policy_set_hash,
            ..
        }) => format!(
            "session session_started (vigil {vigil_version}, mode {}, {} sources, {} detectors, \
             {} runbooks, policy set {})",
            engine_config.mode.as_str(),
            engine_config.sources.len(),
            engine_config.detectors.len(),
            engine_config.runbooks.len(),
            policy_set_hash.get(..12).unwrap_or_default()
        ),
        Ok(SessionRecord::PoliciesReloaded {
            policy_set_hash, ..
        }) => format!(
            "session policies_reloaded (policy set {})",
            policy_set_hash.get(..12).unwrap_or_default()
        ),
        Ok(SessionRecord::SessionEnded {
            reason,
            interrupted,
        }) => {
            format!("session session_ended ({reason}; interrupted: {interrupted:?})")
        }
        Err(error) => format!("session (unreadable: {error})"),
    }
}

fn short_json<T: serde::Serialize>(value: &T) -> String {
    let text = serde_json::to_string(value).unwrap_or_default();
    if text.chars().count() > 160 {
        format!("{}…", text.chars().take(160).collect::<String>())
    } else {
        text
    }
}
