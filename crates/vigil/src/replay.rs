//! `vigil replay`: re-run a recorded session through a fresh engine and compare commands.
//!
//! The session entry before the incident gives the engine's configuration and the policy set
//! (from their content-addressed copies). Every event of that session up to the incident's
//! last entry is fed to the engine with its recorded `now`, and every command the engine
//! issues is compared, in order, with the command recorded after that event. Authorization
//! answers are also re-evaluated with the recorded policies and compared with the recorded
//! decisions. Replay starts at the session's start because detector baselines depend on all
//! earlier scrapes.

use std::collections::{BTreeMap, VecDeque};
use std::path::Path;
use std::process::ExitCode;

use vigil_core::Timestamp;
use vigil_core::authz::AuthzRequest;
use vigil_core::engine::{Command, Engine, Event};
use vigil_ledger::{EntryKind, Ledger};

use crate::ledger_cmd::open_existing;
use crate::session::{self, CommandRecord, EventRecord, SessionRecord};

/// Entries read per page.
const PAGE_ROWS: u32 = 5_000;

/// What a replay found.
#[derive(Debug, Default)]
pub struct ReplayReport {
    /// The incident.
    pub incident_id: String,
    /// The session entry replay started from.
    pub session_seq: u64,
    /// The policy set the session ran with.
    pub policy_set_hash: String,
    /// Events fed to the engine.
    pub n_events: u64,
    /// Commands compared.
    pub n_commands: u64,
    /// Of which belong to the incident.
    pub n_incident_commands: u64,
    /// Authorization decisions re-evaluated with the recorded policies.
    pub n_decisions_rechecked: u64,
    /// Every difference, with the entry it concerns.
    pub mismatches: Vec<String>,
    /// The incident's recorded commands, one line each, for the printout.
    pub incident_lines: Vec<String>,
}

/// Replays the session that holds `incident_id`.
pub async fn replay_incident(ledger: &Ledger, incident_id: &str) -> anyhow::Result<ReplayReport> {
    let incident_entries = ledger.entries_for_incident(incident_id).await?;
    let (Some(first), Some(last)) = (incident_entries.first(), incident_entries.last()) else {
        anyhow::bail!("the ledger has no incident `{incident_id}`");
    };
    let (first_seq, last_seq) = (first.seq, last.seq);
    let Some(session_entry) = ledger.last_session_at_or_before(first_seq).await? else {
        anyhow::bail!("no session entry precedes incident `{incident_id}`");
    };
    // Policy reloads happen within a session, and a session that resumed an interrupted one
    // continues its engine: start at the first session of the chain.
    let session_entry = session::session_start_of(ledger, session_entry).await?;
    let session_entry = session::chain_origin(ledger, session_entry).await?;
    let SessionRecord::SessionStarted {
        engine_config,
        policy_set_hash,
        policies_blob,
        ..
    } = session::session_of(&session_entry)?
    else {
        anyhow::bail!(
            "entry {} ends a session; incident `{incident_id}` has no start",
            session_entry.seq
        );
    };
    let mut authorizer = session::recorded_authorizer(ledger, &policies_blob).await?;
    let mut report = ReplayReport {
        incident_id: incident_id.to_owned(),
        session_seq: session_entry.seq,
        policy_set_hash: policy_set_hash.clone(),
        ..ReplayReport::default()
    };
    if authorizer.policy_set_hash() != policy_set_hash {
        report.mismatches.push(format!(
            "the recorded policies hash to {} but the session recorded {policy_set_hash}",
            authorizer.policy_set_hash()
        ));
    }
    let mut engine = Engine::new(*engine_config);
    let mut expected: VecDeque<Command> = VecDeque::new();
    let mut current_event_seq = session_entry.seq;
    let mut requests: BTreeMap<String, AuthzRequest> = BTreeMap::new();
    let mut from = session_entry.seq + 1;
    'pages: loop {
        let page = ledger.read(from, PAGE_ROWS).await?;
        let Some(last_entry) = page.last() else { break };
        from = last_entry.seq + 1;
        for entry in page {
            match entry.kind {
                // An end, and the start of a session that resumed this one, continue it.
                EntryKind::Session => match session::session_of(&entry)? {
                    SessionRecord::SessionEnded { .. } => continue,
                    // From here on, decisions were made with the reloaded policies.
                    SessionRecord::PoliciesReloaded { policies_blob, .. } => {
                        authorizer = session::recorded_authorizer(ledger, &policies_blob).await?;
                        continue;
                    }
                    SessionRecord::SessionStarted {
                        resumes: Some(_), ..
                    } => {
                        // The commands a crash kept out of the ledger are recorded right
                        // after the resuming session's start, as caused by the last event.
                        continue;
                    }
                    SessionRecord::SessionStarted { .. } => break 'pages,
                },
                EntryKind::Event => {
                    if entry.seq > last_seq {
                        break 'pages;
                    }
                    leftover(&mut expected, current_event_seq, &mut report);
                    let record: EventRecord =
                        serde_json::from_str(&entry.payload).map_err(|error| {
                            anyhow::anyhow!("entry {}: unreadable event: {error}", entry.seq)
                        })?;
                    if let Event::AuthorizationDecided {
                        request_id,
                        decision,
                        ..
                    } = &record.event
                    {
                        match requests.get(request_id) {
                            Some(request) => {
                                report.n_decisions_rechecked += 1;
                                let again = authorizer.authorize(request);
                                if &again != decision {
                                    report.mismatches.push(format!(
                                        "entry {}: the recorded policies now decide {} (by {:?}), the ledger says {} (by {:?})",
                                        entry.seq,
                                        json(&again.effect),
                                        again.determining_policies,
                                        json(&decision.effect),
                                        decision.determining_policies
                                    ));
                                }
                            }
                            None => report.mismatches.push(format!(
                                "entry {}: a decision for unknown request `{request_id}`",
                                entry.seq
                            )),
                        }
                    }
                    report.n_events += 1;
                    current_event_seq = entry.seq;
                    expected = engine.handle(&record.event, Timestamp(entry.at_ms)).into();
                }
                EntryKind::Command => {
                    let record: CommandRecord =
                        serde_json::from_str(&entry.payload).map_err(|error| {
                            anyhow::anyhow!("entry {}: unreadable command: {error}", entry.seq)
                        })?;
                    report.n_commands += 1;
                    if record.command.incident_id() == Some(incident_id) {
                        report.n_incident_commands += 1;
                        report.incident_lines.push(format!(
                            "{:>7} {} {}",
                            entry.seq,
                            Timestamp(entry.at_ms).to_rfc3339(),
                            describe(&record.command)
                        ));
                    }
                    if let Command::Authorize {
                        request_id,
                        request,
                        ..
                    } = &record.command
                    {
                        requests.insert(request_id.clone(), request.clone());
                    }
                    if record.caused_by != current_event_seq {
                        report.mismatches.push(format!(
                            "entry {}: recorded as caused by entry {}, but follows entry {}",
                            entry.seq, record.caused_by, current_event_seq
                        ));
                    }
                    match expected.pop_front() {
                        None => report.mismatches.push(format!(
                            "entry {}: the ledger has a command the replay did not issue: {}",
                            entry.seq,
                            json(&record.command)
                        )),
                        Some(replayed) => {
                            if json(&replayed) != json(&record.command) {
                                report.mismatches.push(format!(
                                    "entry {}: replay issued {}\n      the ledger has {}",
                                    entry.seq,
                                    json(&replayed),
                                    json(&record.command)
                                ));
                            }
                        }
                    }
                }
            }
        }
    }
    leftover(&mut expected, current_event_seq, &mut report);
    Ok(report)
}

/// Commands the replay issued for an event that the ledger does not have.
fn leftover(expected: &mut VecDeque<Command>, event_seq: u64, report: &mut ReplayReport) {
    for command in expected.drain(..) {
        report.mismatches.push(format!(
            "after entry {event_seq}: replay issued a command the ledger lacks: {}",
            json(&command)
        ));
    }
}

fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .map(|value| vigil_ledger::canonical_json(&value))
        .unwrap_or_default()
}

fn describe(command: &Command) -> String {
    match command {
        Command::Record(record) => {
            let value = serde_json::to_value(record).unwrap_or_default();
            let name = value
                .get("record")
                .and_then(|name| name.as_str())
                .unwrap_or("record")
                .to_owned();
            format!("record {name}")
        }
        Command::Authorize { request, .. } => format!(
            "authorize {} {} on {}",
            request.principal.uid.id,
            request.action.cedar_id(),
            request.resource.uid.id.chars().take(12).collect::<String>()
        ),
        Command::Execute { action, .. } => format!("execute {}", action.describe()),
        Command::Page { page, .. } => format!("page: {}", page.title),
        Command::WakeAt { at } => format!("wake at {}", at.to_rfc3339()),
    }
}

/// `vigil replay --db PATH --incident ID`: exit 0 when every command matches, 1 otherwise.
pub async fn run(db: &Path, incident_id: &str) -> anyhow::Result<ExitCode> {
    let ledger = open_existing(db).await?;
    let report = replay_incident(&ledger, incident_id).await;
    ledger.close().await;
    let report = report?;
    println!(
        "replaying incident {} from the session at entry {} (policy set {})",
        report.incident_id,
        report.session_seq,
        report.policy_set_hash.get(..12).unwrap_or_default()
    );
    println!("the incident's commands as recorded:");
    for line in &report.incident_lines {
        println!("{line}");
    }
    println!(
        "{} events replayed; {} commands compared ({} of this incident); {} authorization decisions re-evaluated",
        report.n_events,
        report.n_commands,
        report.n_incident_commands,
        report.n_decisions_rechecked
    );
    if report.mismatches.is_empty() {
        println!("result: every command matches");
        Ok(ExitCode::SUCCESS)
    } else {
        println!("result: {} MISMATCHES", report.mismatches.len());
        for mismatch in &report.mismatches {
            println!("  {mismatch}");
        }
        Ok(ExitCode::FAILURE)
    }
}
