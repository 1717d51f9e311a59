//! `vigil-bench ledger-size --out FILE [--mb N]`: writes a realistic SQLite ledger of at
//! least N MB (default 320), to measure what the ledger commands need on a large ledger;
//! `--out postgres://... --schema NAME` writes it to a PostgreSQL schema (which must not
//! hold a ledger yet) instead.
//!
//! The same command writes the same ledger. Each round copies a simulated day (the day-long
//! game day of `scenarios/day-then-runaway.yaml`, as `vigil simulate --ledger` records it:
//! its session, 5,760 scrapes of 15 s, one runaway-key incident with its commands, and the
//! blobs they refer to) with its times moved a day on and its incident renamed; every second
//! round then appends one pushed batch of agent runs of 4 to 19 MB (within the 20 MB intake
//! body limit: 1,000 runs, each with hundreds of tool calls). It stops once the payloads
//! reach N MB; the file is about a tenth larger. Everything goes through `Ledger::append`; a
//! checkpoint signed by a fixed key is stored every 10,000 entries and at the end. Measure
//! with `/usr/bin/time -v vigil ledger verify --db FILE` and friends.

use std::path::Path;
use std::time::Instant;

use anyhow::Context as _;
use vigil_core::Timestamp;
use vigil_core::engine::Event;
use vigil_core::intake::{AgentOutcome, AgentRun, AgentRunBatch, Pushed, ToolCall};
use vigil_ledger::checkpoint::Checkpoint;
use vigil_ledger::{Entry, Ledger, LedgerLocation, NewEntry};

/// The one-line description in the benchmark list.
pub const ABOUT: &str = "ledger-size: write a realistic ledger of at least --mb MB (scrapes, incidents, multi-MB pushes) to FILE";

/// A simulated day, in milliseconds: how far each round moves its entries.
const DAY_MS: i64 = 86_400_000;

/// Runs per pushed batch (the intake's limit).
const RUNS_PER_PUSH: usize = 1_000;

/// The pushed batches' sizes in MB, in turn (each comes out about 6% larger: at most 19.1 MB).
const PUSH_MB: [usize; 6] = [4, 8, 12, 16, 18, 10];

/// Entries appended per transaction.
const BATCH: usize = 1_000;

/// Entries between two stored checkpoints.
const CHECKPOINT_EVERY: u64 = 10_000;

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let mut out = None;
    let mut schema = None;
    let mut mb = 320_u64;
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        match arg.as_str() {
            "--out" => out = Some(iter.next().context("--out needs a file")?.clone()),
            "--schema" => schema = Some(iter.next().context("--schema needs a name")?.clone()),
            "--mb" => {
                mb = iter
                    .next()
                    .context("--mb needs a number")?
                    .parse()
                    .context("--mb needs a number")?;
            }
            other => {
                anyhow::bail!(
                    "unknown option `{other}` (use --out FILE|URL, --schema NAME, --mb N)"
                )
            }
        }
    }
    let out = out.context("--out FILE is required")?;
    let location = vigil::journal::location_of(&out, schema.as_deref())?;
    if let LedgerLocation::Sqlite { path } = &location {
        anyhow::ensure!(
            !path.exists(),
            "{} exists: remove it first (the same command writes the same ledger)",
            path.display()
        );
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("a runtime")?;
    let scratch = std::env::temp_dir().join(format!("vigil-bench-size-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).context("a temporary folder")?;
    let result = runtime.block_on(write_ledger(&location, mb * 1_000_000, &scratch));
    let _ = std::fs::remove_dir_all(&scratch);
    result
}

/// The simulated day every round copies: its entries and the blobs they refer to.
struct Template {
    entries: Vec<Entry>,
    blobs: Vec<Vec<u8>>,
}

async fn template(scratch: &Path) -> anyhow::Result<Template> {
    let db = scratch.join("day.db");
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/day-then-runaway.yaml");
    let code = vigil::commands::simulate::run(&vigil::commands::simulate::SimulateArgs {
        scenario,
        json: false,
        check: true,
        ledger: Some(LedgerLocation::Sqlite { path: db.clone() }),
        quiet: true,
    })
    .await?;
    anyhow::ensure!(
        code == std::process::ExitCode::SUCCESS,
        "simulating the day failed"
    );
    let ledger = Ledger::open(&LedgerLocation::Sqlite { path: db }).await?;
    let mut entries = Vec::new();
    let mut reader = ledger.entries(Default::default(), Default::default());
    while let Some(entry) = reader.next().await? {
        entries.push(entry);
    }
    let mut hashes: Vec<String> = entries
        .iter()
        .flat_map(|entry| blob_references(&entry.payload))
        .collect();
    hashes.sort();
    hashes.dedup();
    let mut blobs = Vec::new();
    for hash in hashes {
        blobs.push(ledger.get_blob(&hash).await?.context("a blob of the day")?);
    }
    ledger.close().await;
    Ok(Template { entries, blobs })
}

/// The blob hashes a payload names (`"..._blob":"<64 hex>"`).
fn blob_references(payload: &str) -> Vec<String> {
    payload
        .match_indices("_blob\":\"")
        .filter_map(|(at, marker)| payload.get(at + marker.len()..at + marker.len() + 64))
        .filter(|hash| hash.bytes().all(|byte| byte.is_ascii_hexdigit()))
        .map(str::to_owned)
        .collect()
}

/// Entry `entry` of the day, in round `round`: a day later per round, its incident renamed
/// (`inc-` and 12 hex digits, the round in the first six).
fn moved(entry: &Entry, round: u32) -> anyhow::Result<NewEntry> {
    let mut payload = entry.payload.clone();
    let incident_id = entry.incident_id.as_ref().map(|id| {
        let renamed = format!("inc-{round:06x}{}", id.get(10..).unwrap_or_default());
        payload = payload.replace(id.as_str(), &renamed);
        renamed
    });
    Ok(NewEntry {
        at_ms: entry.at_ms + i64::from(round) * DAY_MS,
        kind: entry.kind,
        incident_id,
        payload: serde_json::from_str(&payload)?,
    })
}

/// A pushed batch of agent runs of about `mb` MB, the same for the same arguments.
fn push(round: u32, mb: usize, at_ms: i64) -> anyhow::Result<NewEntry> {
    // A tool call is about 100 bytes of JSON, so 1,000 runs of 10 calls are about 1 MB.
    let calls_per_run = mb * 10;
    let tools = [
        "search_web",
        "read_file",
        "run_sql",
        "call_api",
        "summarize",
    ];
    let runs = (0..RUNS_PER_PUSH)
        .map(|run| AgentRun {
            run_id: format!("run-{round}-{run}"),
            agent: format!("agent-{}", run % 7),
            iterations: (calls_per_run / 2) as u64,
            outcome: AgentOutcome::Success,
            input_tokens: Some((run * 131 % 9_000) as u64),
            output_tokens: Some((run * 71 % 2_000) as u64),
            ended_at: Some(Timestamp(at_ms)),
            tool_calls: (0..calls_per_run)
                .map(|call| ToolCall {
                    name: tools
                        .get(call % tools.len())
                        .copied()
                        .unwrap_or_default()
                        .to_owned(),
                    arguments_hash: Some(vigil_ledger::hash::blob_hash(
                        format!("{round}/{run}/{call}").as_bytes(),
                    )),
                })
                .collect(),
            api_key: Some(format!("k-agent-{}", run % 3)),
        })
        .collect();
    let event = Event::Pushed {
        payload: Pushed::AgentRuns(AgentRunBatch { runs }),
    };
    Ok(vigil::journal::event_entry(&event, at_ms, None)?)
}

async fn write_ledger(
    location: &LedgerLocation,
    target_bytes: u64,
    scratch: &Path,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let day = template(scratch).await?;
    let mut ledger = Ledger::open(location).await?;
    anyhow::ensure!(
        ledger.is_empty(),
        "{location} holds a ledger already: give an empty place (the same command writes the same ledger)"
    );
    for blob in &day.blobs {
        ledger.put_blob(blob).await?;
    }
    let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
    let (mut bytes, mut n_pushes, mut largest) = (0_u64, 0_u64, 0_usize);
    let mut next_checkpoint = CHECKPOINT_EVERY;
    let mut round = 0_u32;
    // Bounded: every round adds at least the day's entries (about 3 MB).
    while bytes < target_bytes {
        let mut pending: Vec<NewEntry> = Vec::with_capacity(BATCH);
        for entry in &day.entries {
            pending.push(moved(entry, round)?);
            if pending.len() == BATCH {
                bytes += append(&mut ledger, &mut pending, &mut largest).await?;
            }
        }
        if round % 2 == 1 {
            let last_at = day.entries.last().map_or(0, |entry| entry.at_ms);
            let mb = PUSH_MB
                .get(n_pushes as usize % PUSH_MB.len())
                .copied()
                .unwrap_or(10);
            pending.push(push(round, mb, last_at + i64::from(round) * DAY_MS + 1)?);
            n_pushes += 1;
        }
        bytes += append(&mut ledger, &mut pending, &mut largest).await?;
        if ledger.len() >= next_checkpoint || bytes >= target_bytes {
            store_checkpoint(&ledger, &key).await?;
            next_checkpoint = ledger.len() + CHECKPOINT_EVERY;
        }
        round += 1;
        println!(
            "  round {round}: {} entries, {:.0} MB of payloads",
            ledger.len(),
            bytes as f64 / 1e6
        );
    }
    let (size, head) = ledger.tree_head().context("the tree head")?;
    ledger.close().await;
    let file = match location {
        LedgerLocation::Sqlite { path } => {
            format!(
                "{:.1} MB file, ",
                std::fs::metadata(path)?.len() as f64 / 1e6
            )
        }
        LedgerLocation::Postgres { .. } => String::new(),
    };
    println!(
        "ledger-size: wrote `{location}`: {file}{size} entries ({n_pushes} pushed batches of 4 to 19 MB, the largest entry {:.1} MB), {:.0} MB of payloads, tree head {}, in {:.0} s",
        largest as f64 / 1e6,
        bytes as f64 / 1e6,
        hex::encode(head),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Appends `pending` (emptying it); the bytes of their payloads.
async fn append(
    ledger: &mut Ledger,
    pending: &mut Vec<NewEntry>,
    largest: &mut usize,
) -> anyhow::Result<u64> {
    let appended = ledger.append(pending).await?;
    pending.clear();
    let mut bytes = 0;
    for entry in &appended {
        *largest = (*largest).max(entry.payload.len());
        bytes += entry.payload.len() as u64;
    }
    Ok(bytes)
}

/// Stores a checkpoint of the ledger's tree head, signed by `key`, as the daemon does.
async fn store_checkpoint(ledger: &Ledger, key: &ed25519_dalek::SigningKey) -> anyhow::Result<()> {
    let (size, head) = ledger.tree_head().context("the tree head")?;
    let at_ms = ledger
        .last_checkpoint()
        .await?
        .map_or(0, |checkpoint| checkpoint.at_ms + 1);
    ledger
        .store_checkpoint(&Checkpoint::sign(key, size, head, at_ms))
        .await?;
    Ok(())
}
