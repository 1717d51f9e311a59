//! The drivers' conformance suite. vigil's rule (event → engine → Cedar inline → engine) is
//! written once, in `vigil::journal::step`, and every driver of the engine must agree on it,
//! as every ledger backend passes vigil-ledger's one conformance suite.
//!
//! Each shipped scenario is run by the simulator into a SQLite ledger. Replay must then issue
//! every recorded command and decision again. And recovery, from that ledger cut after any
//! entry (every prefix), must rebuild an engine that, carried on as the daemon carries on an
//! interrupted session (the unrecorded commands recorded, unanswered authorizations answered
//! and stepped) and then stepped through the rest of the recorded world's events, writes the
//! same entries again: the same commands, the same decisions, the same tree head.

use std::collections::BTreeMap;
use std::path::Path;

use vigil::journal::{self, SessionRecord, recovery, replay};
use vigil_core::Timestamp;
use vigil_core::engine::{Engine, EngineConfig, Event};
use vigil_ledger::{Entry, EntryKind, Ledger, NewEntry};
use vigil_policy::Authorizer;

use crate::ledgers::{new_entry, read_all, series_blobs, simulate_into, sqlite};
use crate::support::{TempDir, repo_root};

/// The scenarios whose ledger is cut after every entry: a fix that works, one that fails and
/// is compensated and paged (actions, verification, compensation, a page, wake-ups), and an
/// advisory proposal a person approves (people's instructions put to Cedar).
const EVERY_PREFIX: &[&str] = &["advisory-approval", "failed-fix", "runaway-key"];

/// The other scenarios' ledgers are cut at a deterministic sample of at most this many
/// places: where a crash matters most, in the middle of or right after a step that issued
/// commands, evenly spaced among them, with the first and the last prefix. (Every prefix of
/// every scenario takes minutes: one fresh SQLite ledger per cut.)
const SAMPLED_CUTS: usize = 12;

#[test]
fn the_simulator_replay_and_recovery_from_every_prefix_give_the_same_commands_and_tree_head() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut scenarios: Vec<String> = std::fs::read_dir(repo_root().join("tests/scenarios"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .map(|path| path.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    scenarios.sort();
    assert!(scenarios.len() >= 10, "scenarios: {scenarios:?}");
    for name in &scenarios {
        runtime.block_on(check_scenario(name));
    }
}

async fn check_scenario(name: &str) {
    let dir = TempDir::new(&format!("conformance-{name}"));
    let location = sqlite(&dir.join("simulated.db"));
    simulate_into(&location, name).await;

    let ledger = journal::open_location(&location).await.unwrap();
    let entries = read_all(&ledger).await;
    let simulated = ledger.verify().await.unwrap();
    assert!(
        simulated.is_intact(),
        "{name}: {:?}",
        simulated.first_problem
    );

    // Replay: every recorded command again, and every decision again from the policies.
    let replayed = replay::replay_all(&ledger, None).await.unwrap();
    assert!(
        replayed.mismatches.is_empty(),
        "{name}: replay: {:#?}",
        replayed.mismatches
    );
    let n_commands = entries
        .iter()
        .filter(|entry| entry.kind == EntryKind::Command)
        .count() as u64;
    assert_eq!(replayed.n_commands, n_commands, "{name}: commands replayed");
    let n_decisions = entries.iter().filter(|entry| is_decision(entry)).count() as u64;
    assert_eq!(
        replayed.n_decisions_rechecked, n_decisions,
        "{name}: decisions replayed"
    );

    let session = journal::session_of(&entries[0]).unwrap();
    let SessionRecord::SessionStarted {
        engine_config,
        policies_blob,
        ..
    } = session.clone()
    else {
        panic!("{name}: the ledger does not open with a session");
    };
    let authorizer = journal::recorded_authorizer(&ledger, &policies_blob)
        .await
        .unwrap();
    let world = World::read(&ledger, &entries[0], session).await;
    ledger.close().await;
    let Some((end, body)) = entries.split_last() else {
        panic!("{name}: an empty ledger");
    };
    assert!(
        matches!(
            journal::session_of(end).unwrap(),
            SessionRecord::SessionEnded { .. }
        ),
        "{name}: the simulated session does not end"
    );

    // Recovery from every prefix that holds the session's start, up to the whole session
    // without its end (a crash just before a clean stop).
    for cut in cuts(name, body) {
        let db = dir.join(&format!("cut-{cut}.db"));
        let recovered =
            recover_and_carry_on(&db, body, end, cut, &engine_config, &authorizer, &world).await;
        for (original, again) in entries.iter().zip(&recovered) {
            assert_eq!(
                (original.at_ms, original.kind, &original.payload),
                (again.at_ms, again.kind, &again.payload),
                "{name}: cut after {cut} entries: entry {} differs",
                original.seq
            );
        }
        assert_eq!(
            recovered.len(),
            entries.len(),
            "{name}: cut after {cut} entries: another number of entries"
        );
        let ledger = journal::open_location(&sqlite(&db)).await.unwrap();
        let report = ledger.verify().await.unwrap();
        ledger.close().await;
        assert_eq!(
            report.tree_head, simulated.tree_head,
            "{name}: cut after {cut} entries: another tree head"
        );
        std::fs::remove_file(&db).unwrap();
    }
}

/// Where the ledger is cut: after every entry (keeping at least the session's start) for the
/// scenarios in [`EVERY_PREFIX`], else a deterministic sample of [`SAMPLED_CUTS`] places.
fn cuts(name: &str, body: &[Entry]) -> Vec<usize> {
    if EVERY_PREFIX.contains(&name) {
        return (1..=body.len()).collect();
    }
    // A cut after `cut` entries falls inside or right after a step that issued commands when
    // the entry before or after it is a command.
    let inside_steps: Vec<usize> = (1..body.len())
        .filter(|&cut| {
            body[cut - 1].kind == EntryKind::Command || body[cut].kind == EntryKind::Command
        })
        .collect();
    let mut cuts = vec![1, body.len()];
    let n_sampled = inside_steps.len().min(SAMPLED_CUTS - 2);
    for idx in 0..n_sampled {
        cuts.push(inside_steps[idx * inside_steps.len() / n_sampled]);
    }
    cuts.sort_unstable();
    cuts.dedup();
    cuts
}

/// What the simulated world told the engine, as the ledger holds it: every recorded event by
/// the seq of its entry (a batch of scrapes holds several, each with its time), the series
/// blobs the batches name, and the session's start (how it records scrapes).
struct World {
    events: BTreeMap<u64, Vec<(i64, journal::EventRecord)>>,
    series_blobs: Vec<Vec<u8>>,
    session: SessionRecord,
}

impl World {
    async fn read(ledger: &Ledger, origin: &Entry, session: SessionRecord) -> World {
        let mut events: BTreeMap<u64, Vec<(i64, journal::EventRecord)>> = BTreeMap::new();
        let mut chain = journal::ChainEntries::new(ledger, origin, u64::MAX);
        while let Some((entry, recorded)) = chain.next().await.unwrap() {
            if let journal::Recorded::Event(record) = recorded {
                events
                    .entry(entry.seq)
                    .or_default()
                    .push((entry.at_ms, record));
            }
        }
        let series_blobs = series_blobs(ledger, &read_all(ledger).await).await;
        World {
            events,
            series_blobs,
            session,
        }
    }
}

/// Writes the first `cut` entries of `body` to a fresh ledger, rebuilds the interrupted
/// session with `vigil::journal::recovery`, carries it on with `vigil::journal::step` as the
/// daemon would, steps every later event of the world (actions' and pages' answers, scrapes,
/// pushes, people, ticks: the answers of Cedar are the step's own) and records it as the
/// session does (scrapes that issued no command in batches, when it batches), appends `end`,
/// and returns the ledger's entries.
async fn recover_and_carry_on(
    db: &Path,
    body: &[Entry],
    end: &Entry,
    cut: usize,
    engine_config: &EngineConfig,
    authorizer: &Authorizer,
    world: &World,
) -> Vec<Entry> {
    let mut ledger = Ledger::open(&sqlite(db)).await.unwrap();
    for blob in &world.series_blobs {
        ledger.put_blob(blob).await.unwrap();
    }
    let prefix: Vec<NewEntry> = body[..cut].iter().map(new_entry).collect();
    ledger.append(&prefix).await.unwrap();
    let resumed = match recovery::resume(&ledger, engine_config).await.unwrap() {
        Ok(resumed) => resumed,
        Err(not_resumed) => panic!("cut after {cut} entries: not resumed: {not_resumed:?}"),
    };
    let mut engine: Engine = resumed.engine;
    let at = Timestamp(body[usize::try_from(resumed.last_event_seq).unwrap()].at_ms);

    // What the daemon's `carry_on` does: record the commands the crash kept out of the
    // ledger, then answer every authorization request still unanswered and step the answer.
    // (Kept in memory and appended at the end in one transaction: one file sync per cut.)
    let mut continued =
        journal::command_entries(&resumed.unrecorded, resumed.last_event_seq, at.0).unwrap();
    for command in resumed.unrecorded.iter().chain(&resumed.unfinished) {
        if let Some(answer) = journal::answer(authorizer, command) {
            let taken = journal::step(&mut engine, authorizer, answer, at);
            let first_seq = ledger.len() + continued.len() as u64;
            continued.extend(journal::step_entries(&taken.handled, first_seq, at.0, None).unwrap());
        }
    }

    // Then the world goes on: every later event that Cedar did not answer, stepped, and
    // recorded as the session records (a batch of scrapes is empty between two entries).
    let mut scrapes = journal::ScrapeBatcher::for_session(&world.session);
    for entry in &body[cut..] {
        if entry.kind != EntryKind::Event || is_decision(entry) {
            continue;
        }
        for (at_ms, record) in &world.events[&entry.seq] {
            let at = Timestamp(*at_ms);
            let taken = journal::step(&mut engine, authorizer, record.event.clone(), at);
            let first_seq = ledger.len() + continued.len() as u64;
            let recorded = scrapes
                .step_entries(
                    &taken.handled,
                    first_seq,
                    at.0,
                    record.exchanges_blob.clone(),
                )
                .unwrap();
            for blob in &recorded.blobs {
                ledger.put_blob(blob).await.unwrap();
            }
            continued.extend(recorded.entries);
        }
    }
    let mut closed = journal::scrape_batch::BatchedEntries::default();
    scrapes.close_into(&mut closed).unwrap();
    continued.extend(closed.entries);
    continued.push(new_entry(end));
    ledger.append(&continued).await.unwrap();
    let entries = read_all(&ledger).await;
    ledger.close().await;
    entries
}

fn is_decision(entry: &Entry) -> bool {
    if entry.kind != EntryKind::Event || journal::scrape_batch::is_batch_payload(&entry.payload) {
        return false;
    }
    let record: journal::EventRecord = serde_json::from_str(&entry.payload).unwrap();
    matches!(
        record.event,
        Event::AuthorizationDecided { .. } | Event::HumanDecided { .. }
    )
}
