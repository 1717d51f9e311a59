//! `vigil replay`: re-run recorded sessions through a fresh engine and compare commands.
//!
//! An incident is replayed from the start of the session chain that holds it (a session that
//! resumed an interrupted one continues its engine): the session entry gives the engine's
//! configuration and the policy set (from their content-addressed copies), and every event up
//! to the incident's last entry is fed to the engine with its recorded `now`. Every command
//! the engine issues is compared, in order, with the command recorded after that event. The
//! outside world's answers (scrapes, pushed payloads, action results, pages, people) are the
//! recorded events, so nothing outside is called. Authorization answers are re-evaluated
//! with the recorded policies and compared with the recorded decisions. Replay starts at the
//! session's start because detector baselines depend on all earlier scrapes.
//!
//! `--all` replays every session chain of the ledger once, to its end, and reports every
//! incident in it.
//!
//! With another policy set (`--policies DIR`, or `--with-current-policies` for the config's),
//! every recorded authorization request is also decided by that set, and each decision that
//! would differ is shown as a diff. Only the decisions are compared: what the engine would
//! have done after a different answer depends on how the world would have answered actions
//! that never ran, which the ledger cannot know (`vigil simulate` explores that).
//!
//! # Ledgers written by older builds
//!
//! They stay replayable. A policy set is loaded with the context vocabulary it was written
//! for ([`vigil_policy::ContextVersion`]), and a command field added since the first ledger
//! format ([`ADDED_FIELDS`]) is compared only when the recorded command has it. The golden
//! ledgers in `tests/golden/` guard this.

use std::collections::{BTreeMap, VecDeque};
use std::process::ExitCode;

use serde_json::Value;
use vigil_core::Timestamp;
use vigil_core::authz::{AuthzDecision, AuthzRequest, HumanAuthzRequest};
use vigil_core::engine::{Command, Engine, Event};
use vigil_ledger::{Entry, EntryKind, Ledger};
use vigil_policy::Authorizer;

use crate::ledger_cmd::open_location;
use crate::session::{self, CommandRecord, EventRecord, SessionRecord};

/// Entries read per page.
const PAGE_ROWS: u32 = 5_000;

/// Command fields added after the first ledger format, as (JSON pointer of the object that
/// holds the field, field name): a ledger written before the field existed lacks it, so the
/// replay's value is compared only where the recorded command has one.
pub const ADDED_FIELDS: &[(&str, &str)] = &[
    // The trust score in the Cedar context (issue 5).
    ("/request/context", "trust_pct"),
];

/// Another policy set to decide every recorded request with.
#[derive(Debug)]
pub struct Alternative {
    /// Where it came from, for the printout.
    pub label: String,
    /// The policies.
    pub authorizer: Authorizer,
}

/// A recorded decision that another policy set would have made differently.
#[derive(Debug, Clone)]
pub struct DecisionDiff {
    /// The entry holding the recorded decision.
    pub seq: u64,
    /// The incident.
    pub incident_id: String,
    /// Who asked to do what to which resource, in one line.
    pub request: String,
    /// What the recorded policies decided.
    pub recorded: AuthzDecision,
    /// What the other policies decide.
    pub alternative: AuthzDecision,
    /// Context fields the recorded request lacks because it predates them (read as their
    /// defaults): a difference may come from them rather than from the policies.
    pub predates: Vec<String>,
}

/// What the replay found about one incident.
#[derive(Debug, Default, Clone)]
pub struct IncidentReplay {
    /// The incident's recorded commands compared.
    pub n_commands: u64,
    /// The incident's recorded commands, one line each, for the printout.
    pub lines: Vec<String>,
}

/// What a replay found.
#[derive(Debug, Default)]
pub struct ReplayReport {
    /// The session entries replay started from, one per session chain.
    pub session_seqs: Vec<u64>,
    /// The policy sets the sessions started with.
    pub policy_set_hashes: Vec<String>,
    /// Events fed to the engine.
    pub n_events: u64,
    /// Commands compared.
    pub n_commands: u64,
    /// Authorization decisions re-evaluated with the recorded policies.
    pub n_decisions_rechecked: u64,
    /// Every incident met, with its commands.
    pub incidents: BTreeMap<String, IncidentReplay>,
    /// Every difference between the replay and the ledger, with the entry it concerns.
    pub mismatches: Vec<String>,
    /// Decisions another policy set would have made differently (with an [`Alternative`]).
    pub decision_diffs: Vec<DecisionDiff>,
}

/// Replays the session chain that holds `incident_id`, up to the incident's last entry.
///
/// # Errors
///
/// When the ledger cannot be read, has no such incident, or a recorded session cannot be
/// rebuilt (a missing blob, unreadable policies).
pub async fn replay_incident(
    ledger: &Ledger,
    incident_id: &str,
    alternative: Option<&Alternative>,
) -> anyhow::Result<ReplayReport> {
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
    let origin = session::chain_origin(ledger, session_entry).await?;
    let mut report = ReplayReport::default();
    replay_chain(ledger, origin, last_seq, alternative, &mut report).await?;
    report
        .incidents
        .retain(|incident, _| incident == incident_id);
    report
        .decision_diffs
        .retain(|diff| diff.incident_id == incident_id);
    Ok(report)
}

/// Replays every session chain of the ledger to its end.
///
/// # Errors
///
/// As for [`replay_incident`].
pub async fn replay_all(
    ledger: &Ledger,
    alternative: Option<&Alternative>,
) -> anyhow::Result<ReplayReport> {
    let mut report = ReplayReport::default();
    let mut from = 0;
    // Bounded by the ledger's length: each round moves past one session start.
    for _ in 0..=ledger.len() {
        let Some(origin) = next_origin(ledger, from).await? else {
            break;
        };
        from = origin.seq + 1;
        replay_chain(ledger, origin, u64::MAX, alternative, &mut report).await?;
    }
    Ok(report)
}

/// The first session start from seq `from` on that does not resume an earlier session.
async fn next_origin(ledger: &Ledger, mut from: u64) -> anyhow::Result<Option<Entry>> {
    loop {
        let page = ledger.read(from, PAGE_ROWS).await?;
        let Some(last) = page.last() else {
            return Ok(None);
        };
        from = last.seq + 1;
        for entry in page {
            if entry.kind == EntryKind::Session
                && let SessionRecord::SessionStarted { resumes: None, .. } =
                    session::session_of(&entry)?
            {
                return Ok(Some(entry));
            }
        }
    }
}

/// Replays the session chain starting at `origin` (a session start) up to entry `last_seq`
/// or the next session that does not resume it, adding what it finds to `report`.
async fn replay_chain(
    ledger: &Ledger,
    origin: Entry,
    last_seq: u64,
    alternative: Option<&Alternative>,
    report: &mut ReplayReport,
) -> anyhow::Result<()> {
    let SessionRecord::SessionStarted {
        engine_config,
        policy_set_hash,
        policies_blob,
        ..
    } = session::session_of(&origin)?
    else {
        anyhow::bail!("entry {} does not start a session", origin.seq);
    };
    let mut authorizer = session::recorded_authorizer(ledger, &policies_blob).await?;
    report.session_seqs.push(origin.seq);
    report.policy_set_hashes.push(policy_set_hash.clone());
    if authorizer.policy_set_hash() != policy_set_hash {
        report.mismatches.push(format!(
            "entry {}: the recorded policies hash to {} but the session recorded {policy_set_hash}",
            origin.seq,
            authorizer.policy_set_hash()
        ));
    }
    let mut chain = Chain {
        engine: Engine::new(*engine_config),
        expected: VecDeque::new(),
        current_event_seq: origin.seq,
        requests: BTreeMap::new(),
        human_requests: BTreeMap::new(),
    };
    let mut from = origin.seq + 1;
    'pages: loop {
        let page = ledger.read(from, PAGE_ROWS).await?;
        let Some(last_entry) = page.last() else { break };
        from = last_entry.seq + 1;
        for entry in page {
            if entry.seq > last_seq {
                break 'pages;
            }
            match entry.kind {
                // An end, and the start of a session that resumed this one, continue it.
                EntryKind::Session => match session::session_of(&entry)? {
                    SessionRecord::SessionEnded { .. } => {}
                    // From here on, decisions were made with the reloaded policies.
                    SessionRecord::PoliciesReloaded { policies_blob, .. } => {
                        authorizer = session::recorded_authorizer(ledger, &policies_blob).await?;
                    }
                    // The commands a crash kept out of the ledger are recorded right after
                    // the resuming session's start, as caused by the last event.
                    SessionRecord::SessionStarted {
                        resumes: Some(_), ..
                    } => {}
                    SessionRecord::SessionStarted { .. } => break 'pages,
                },
                EntryKind::Event => chain.event(&entry, &authorizer, alternative, report)?,
                EntryKind::Command => chain.command(&entry, report)?,
            }
        }
    }
    chain.leftover(report);
    Ok(())
}

/// One session chain's replay in progress.
struct Chain {
    engine: Engine,
    /// The commands the replay issued for the current event and the ledger has not shown yet.
    expected: VecDeque<Command>,
    current_event_seq: u64,
    /// Every authorization request seen, by id, with the [`ADDED_FIELDS`] it lacks.
    requests: BTreeMap<String, (AuthzRequest, Vec<String>)>,
    /// People's instructions put to the policy engine, by request id.
    human_requests: BTreeMap<String, HumanAuthzRequest>,
}

impl Chain {
    /// Feeds a recorded event to the engine (after checking a recorded decision).
    fn event(
        &mut self,
        entry: &Entry,
        authorizer: &Authorizer,
        alternative: Option<&Alternative>,
        report: &mut ReplayReport,
    ) -> anyhow::Result<()> {
        self.leftover(report);
        let record: EventRecord = serde_json::from_str(&entry.payload)
            .map_err(|error| anyhow::anyhow!("entry {}: unreadable event: {error}", entry.seq))?;
        if let Event::AuthorizationDecided {
            request_id,
            incident_id,
            decision,
        } = &record.event
        {
            match self.requests.get(request_id) {
                Some((request, predates)) => {
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
                    if let Some(alternative) = alternative {
                        let other = alternative.authorizer.authorize(request);
                        if other.effect != decision.effect
                            || other.determining_policies != decision.determining_policies
                        {
                            report.decision_diffs.push(DecisionDiff {
                                seq: entry.seq,
                                incident_id: incident_id.clone(),
                                request: describe_request(request),
                                recorded: decision.clone(),
                                alternative: other,
                                predates: predates.clone(),
                            });
                        }
                    }
                }
                None => report.mismatches.push(format!(
                    "entry {}: a decision for unknown request `{request_id}`",
                    entry.seq
                )),
            }
        }
        if let Event::HumanDecided {
            request_id,
            incident_id,
            decision,
        } = &record.event
        {
            self.recheck_human(
                entry.seq,
                request_id,
                incident_id.as_deref(),
                decision,
                authorizer,
                alternative,
                report,
            );
        }
        report.n_events += 1;
        self.current_event_seq = entry.seq;
        self.expected = self
            .engine
            .handle(&record.event, Timestamp(entry.at_ms))
            .into();
        Ok(())
    }

    /// Compares a recorded command with the next one the replay issued.
    fn command(&mut self, entry: &Entry, report: &mut ReplayReport) -> anyhow::Result<()> {
        let unreadable = |error: serde_json::Error| {
            anyhow::anyhow!("entry {}: unreadable command: {error}", entry.seq)
        };
        let record: CommandRecord = serde_json::from_str(&entry.payload).map_err(unreadable)?;
        // Compared with the stored JSON, not with the record parsed back: a field the
        // current build would drop or default must not hide a difference.
        let stored: Value = serde_json::from_str(&entry.payload).map_err(unreadable)?;
        let recorded = stored.get("command").cloned().unwrap_or(Value::Null);
        report.n_commands += 1;
        if let Some(incident_id) = record.command.incident_id() {
            let incident = report.incidents.entry(incident_id.to_owned()).or_default();
            incident.n_commands += 1;
            incident.lines.push(format!(
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
            let predates = ADDED_FIELDS
                .iter()
                .filter(|(pointer, field)| {
                    pointer.starts_with("/request/")
                        && recorded
                            .pointer(pointer)
                            .and_then(Value::as_object)
                            .is_some_and(|object| !object.contains_key(*field))
                })
                .map(|(_, field)| (*field).to_owned())
                .collect();
            self.requests
                .insert(request_id.clone(), (request.clone(), predates));
        }
        if let Command::AuthorizeHuman {
            request_id,
            request,
            ..
        } = &record.command
        {
            self.human_requests
                .insert(request_id.clone(), request.clone());
        }
        if record.caused_by != self.current_event_seq {
            report.mismatches.push(format!(
                "entry {}: recorded as caused by entry {}, but follows entry {}",
                entry.seq, record.caused_by, self.current_event_seq
            ));
        }
        match self.expected.pop_front() {
            None => report.mismatches.push(format!(
                "entry {}: the ledger has a command the replay did not issue: {}",
                entry.seq,
                vigil_ledger::canonical_json(&recorded)
            )),
            Some(replayed) => {
                let replayed = as_recorded(serde_json::to_value(&replayed)?, &recorded);
                if replayed != recorded {
                    report.mismatches.push(format!(
                        "entry {}: replay issued {}\n      the ledger has {}",
                        entry.seq,
                        vigil_ledger::canonical_json(&replayed),
                        vigil_ledger::canonical_json(&recorded)
                    ));
                }
            }
        }
        Ok(())
    }

    /// Decides a recorded decision about a person's instruction again, with the recorded
    /// policies and with the alternative ones.
    #[expect(
        clippy::too_many_arguments,
        reason = "the decision's parts, both policy sets and the report"
    )]
    fn recheck_human(
        &self,
        seq: u64,
        request_id: &str,
        incident_id: Option<&str>,
        decision: &AuthzDecision,
        authorizer: &Authorizer,
        alternative: Option<&Alternative>,
        report: &mut ReplayReport,
    ) {
        let Some(request) = self.human_requests.get(request_id) else {
            report.mismatches.push(format!(
                "entry {seq}: a decision for unknown request `{request_id}`"
            ));
            return;
        };
        report.n_decisions_rechecked += 1;
        let again = authorizer.authorize_human(request);
        if &again != decision {
            report.mismatches.push(format!(
                "entry {seq}: the recorded policies now decide {} (by {:?}), the ledger says {} (by {:?})",
                json(&again.effect),
                again.determining_policies,
                json(&decision.effect),
                decision.determining_policies
            ));
        }
        if let Some(alternative) = alternative {
            let other = alternative.authorizer.authorize_human(request);
            if other.effect != decision.effect
                || other.determining_policies != decision.determining_policies
            {
                report.decision_diffs.push(DecisionDiff {
                    seq,
                    incident_id: incident_id.unwrap_or("-").to_owned(),
                    request: describe_human_request(request),
                    recorded: decision.clone(),
                    alternative: other,
                    predates: Vec::new(),
                });
            }
        }
    }

    /// Commands the replay issued for the current event that the ledger does not have.
    fn leftover(&mut self, report: &mut ReplayReport) {
        for command in self.expected.drain(..) {
            report.mismatches.push(format!(
                "after entry {}: replay issued a command the ledger lacks: {}",
                self.current_event_seq,
                json(&command)
            ));
        }
    }
}

/// `replayed` without the [`ADDED_FIELDS`] that `recorded` lacks: what an older build would
/// have recorded for the same command.
fn as_recorded(mut replayed: Value, recorded: &Value) -> Value {
    for (pointer, field) in ADDED_FIELDS {
        let recorded_has_it = recorded
            .pointer(pointer)
            .and_then(Value::as_object)
            .is_some_and(|object| object.contains_key(*field));
        if !recorded_has_it
            && let Some(object) = replayed.pointer_mut(pointer).and_then(Value::as_object_mut)
        {
            object.remove(*field);
        }
    }
    replayed
}

fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .map(|value| vigil_ledger::canonical_json(&value))
        .unwrap_or_default()
}

fn describe_request(request: &AuthzRequest) -> String {
    format!(
        "{} {} on {} {}",
        request.principal.uid.id,
        request.action.cedar_id(),
        request.resource.uid.entity_type.cedar_name(),
        request.resource.uid.id.chars().take(12).collect::<String>()
    )
}

fn describe_human_request(request: &HumanAuthzRequest) -> String {
    format!(
        "{} {} {} {}",
        request.principal.uid.id,
        request.action.cedar_id(),
        request.resource.uid.entity_type.cedar_name(),
        request.resource.uid.id
    )
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
        Command::Authorize { request, .. } => format!("authorize {}", describe_request(request)),
        Command::AuthorizeHuman { request, .. } => {
            format!("authorize {}", describe_human_request(request))
        }
        Command::Execute { action, .. } => format!("execute {}", action.describe()),
        Command::Page { page, .. } => format!("page: {}", page.title),
        Command::WakeAt { at } => format!("wake at {}", at.to_rfc3339()),
    }
}

/// What `vigil replay` replays.
#[derive(Debug, Clone)]
pub enum Scope {
    /// One incident.
    Incident(String),
    /// Every session chain, to its end.
    All,
}

/// `vigil replay --db PATH (--incident ID | --all) [--policies DIR]`: exit 0 when every
/// command matches, 1 otherwise. Decision diffs against other policies do not fail it.
pub async fn run(
    db: &vigil_ledger::LedgerLocation,
    scope: &Scope,
    alternative: Option<&Alternative>,
) -> anyhow::Result<ExitCode> {
    let ledger = open_location(db).await?;
    let report = match scope {
        Scope::Incident(incident_id) => replay_incident(&ledger, incident_id, alternative).await,
        Scope::All => replay_all(&ledger, alternative).await,
    };
    ledger.close().await;
    let report = report?;
    print_report(&report, scope, alternative);
    Ok(if report.mismatches.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn print_report(report: &ReplayReport, scope: &Scope, alternative: Option<&Alternative>) {
    let short = |hash: &str| hash.get(..12).unwrap_or_default().to_owned();
    let sessions: Vec<String> = report
        .session_seqs
        .iter()
        .zip(&report.policy_set_hashes)
        .map(|(seq, hash)| format!("entry {seq} (policy set {})", short(hash)))
        .collect();
    match scope {
        Scope::Incident(incident_id) => println!(
            "replaying incident {incident_id} from the session at {}",
            sessions.join(", ")
        ),
        Scope::All => println!(
            "replaying {} session chain(s) to their end: {}",
            sessions.len(),
            sessions.join(", ")
        ),
    }
    for (incident_id, incident) in &report.incidents {
        match scope {
            Scope::Incident(_) => println!("the incident's commands as recorded:"),
            Scope::All => println!("incident {incident_id}: {} commands", incident.n_commands),
        }
        if matches!(scope, Scope::Incident(_)) {
            for line in &incident.lines {
                println!("{line}");
            }
        }
    }
    let n_incident_commands: u64 = report
        .incidents
        .values()
        .map(|incident| incident.n_commands)
        .sum();
    println!(
        "{} events replayed; {} commands compared ({n_incident_commands} of {} incident(s)); {} authorization decisions re-evaluated",
        report.n_events,
        report.n_commands,
        report.incidents.len(),
        report.n_decisions_rechecked
    );
    if let Some(alternative) = alternative {
        println!(
            "policy diff: {} (policy set {}) against the recorded policies",
            alternative.label,
            short(alternative.authorizer.policy_set_hash())
        );
        for diff in &report.decision_diffs {
            println!(
                "  entry {} {} authorize {}",
                diff.seq, diff.incident_id, diff.request
            );
            println!("    - {}", describe_decision(&diff.recorded));
            println!("    + {}", describe_decision(&diff.alternative));
            if !diff.predates.is_empty() {
                println!(
                    "      (the recorded request predates {}: read as the default)",
                    diff.predates.join(", ")
                );
            }
        }
        println!(
            "{} of {} decisions would differ",
            report.decision_diffs.len(),
            report.n_decisions_rechecked
        );
    }
    if report.mismatches.is_empty() {
        println!("result: every command matches");
    } else {
        println!("result: {} MISMATCHES", report.mismatches.len());
        for mismatch in &report.mismatches {
            println!("  {mismatch}");
        }
    }
}

fn describe_decision(decision: &AuthzDecision) -> String {
    let mut text = format!(
        "{} by {}",
        json(&decision.effect).trim_matches('"'),
        if decision.determining_policies.is_empty() {
            "no policy".to_owned()
        } else {
            decision.determining_policies.join(", ")
        }
    );
    if !decision.errors.is_empty() {
        text.push_str(&format!(" (errors: {})", decision.errors.join("; ")));
    }
    text
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::as_recorded;

    #[test]
    fn a_field_added_since_is_compared_only_where_the_ledger_has_it() {
        let replayed = json!({"request": {"context": {"attempt": 1, "trust_pct": 50}}});
        let old = json!({"request": {"context": {"attempt": 1}}});
        assert_eq!(as_recorded(replayed.clone(), &old), old);
        let current = json!({"request": {"context": {"attempt": 1, "trust_pct": 0}}});
        assert_eq!(as_recorded(replayed.clone(), &current), replayed);
        assert_ne!(as_recorded(replayed, &current), current);
        // A field not in the list is never dropped.
        let replayed = json!({"request": {"context": {"attempt": 2}}});
        assert_ne!(as_recorded(replayed, &old), old);
    }
}
