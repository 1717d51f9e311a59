//! Replay: re-run recorded sessions through a fresh engine and compare commands (what
//! `vigil replay` prints, and what the demo checks).
//!
//! An incident is replayed from the start of the session chain that holds it (a session that
//! resumed an interrupted one continues its engine): the session entry gives the engine's
//! configuration and the policy set (from their content-addressed copies), and every event up
//! to the incident's last entry is fed to the engine with its recorded `now`, through the one
//! step with the recorded answers ([`journal::RerunChain`]). Every command the engine issues
//! is compared, in order, with the command recorded after that event. The
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
//! format ([`ADDED_FIELDS`]) is compared only when the recorded command has it. The words
//! of records and pages are compared too: a session's engine config carries the style its
//! numbers were written in ([`vigil_core::human::NumberStyle`]), absent (the original words)
//! in sessions recorded before readable numbers, so they replay as they ran. The golden
//! ledgers in `tests/golden/` guard this.

use std::collections::{BTreeMap, VecDeque};

use serde_json::Value;
use vigil_core::Timestamp;
use vigil_core::authz::{AuthzDecision, AuthzRequest, HumanAuthzRequest};
use vigil_core::engine::{Command, Engine, Event};
use vigil_ledger::{Entry, Ledger};
use vigil_policy::Authorizer;

use crate::journal::{self, CommandRecord, EventRecord, Rerun, RerunChain, SessionRecord};

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
    let first_seq = first.seq;
    // The event that made the incident's last entry may have issued more commands after it
    // (for other incidents): the replay compares the whole event, so it reads to its end.
    let last_seq = end_of_event(ledger, last.seq).await?;
    let Some(session_entry) = ledger.last_session_at_or_before(first_seq).await? else {
        anyhow::bail!("no session entry precedes incident `{incident_id}`");
    };
    // Policy reloads happen within a session, and a session that resumed an interrupted one
    // continues its engine: start at the first session of the chain.
    let session_entry = journal::session_start_of(ledger, session_entry).await?;
    let origin = journal::chain_origin(ledger, session_entry).await?;
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

/// The last entry of the event that `seq` belongs to: the last command before the next event
/// or session entry (or the ledger's end).
async fn end_of_event(ledger: &Ledger, seq: u64) -> anyhow::Result<u64> {
    const PAGE: u32 = 256;
    let mut end = seq;
    // Bounded by the ledger's length: each round reads at least one entry or stops.
    for _ in 0..=ledger.len() {
        let page = ledger.read(end.saturating_add(1), PAGE).await?;
        if page.is_empty() {
            break;
        }
        for entry in &page {
            if entry.kind != vigil_ledger::EntryKind::Command {
                return Ok(end);
            }
            end = entry.seq;
        }
    }
    Ok(end)
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
        let Some(origin) = journal::next_origin(ledger, from).await? else {
            break;
        };
        from = origin.seq + 1;
        replay_chain(ledger, origin, u64::MAX, alternative, &mut report).await?;
    }
    Ok(report)
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
    } = journal::session_of(&origin)?
    else {
        anyhow::bail!("entry {} does not start a session", origin.seq);
    };
    let mut authorizer = journal::recorded_authorizer(ledger, &policies_blob).await?;
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
        expected: VecDeque::new(),
        current_event_seq: origin.seq,
        requests: BTreeMap::new(),
        human_requests: BTreeMap::new(),
    };
    let mut entries = RerunChain::new(ledger, &origin, last_seq, Engine::new(*engine_config));
    while let Some((entry, rerun)) = entries.next().await? {
        match rerun {
            // An end, and the start of a session that resumed this one, continue it. The
            // commands a crash kept out of the ledger are recorded right after the resuming
            // session's start, as caused by the last event.
            Rerun::Session(
                SessionRecord::SessionEnded { .. } | SessionRecord::SessionStarted { .. },
            ) => {}
            // From here on, decisions were made with the reloaded policies.
            Rerun::Session(SessionRecord::PoliciesReloaded { policies_blob, .. }) => {
                authorizer = journal::recorded_authorizer(ledger, &policies_blob).await?;
            }
            Rerun::Event { record, issued } => {
                chain.event(&entry, &record, issued, &authorizer, alternative, report);
            }
            Rerun::Command(record) => chain.command(&entry, record, report)?,
        }
    }
    chain.leftover(report);
    Ok(())
}

/// One session chain's replay in progress.
struct Chain {
    /// The commands the replay issued for the current event and the ledger has not shown yet.
    expected: VecDeque<Command>,
    current_event_seq: u64,
    /// Every authorization request seen, by id, with the [`ADDED_FIELDS`] it lacks.
    requests: BTreeMap<String, (AuthzRequest, Vec<String>)>,
    /// People's instructions put to the policy engine, by request id.
    human_requests: BTreeMap<String, HumanAuthzRequest>,
}

impl Chain {
    /// Takes the commands the engine issued for a recorded event as the ones to compare next
    /// (after checking a recorded decision).
    fn event(
        &mut self,
        entry: &Entry,
        record: &EventRecord,
        issued: Vec<Command>,
        authorizer: &Authorizer,
        alternative: Option<&Alternative>,
        report: &mut ReplayReport,
    ) {
        self.leftover(report);
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
        self.expected = issued.into();
    }

    /// Compares a recorded command with the next one the replay issued.
    fn command(
        &mut self,
        entry: &Entry,
        record: CommandRecord,
        report: &mut ReplayReport,
    ) -> anyhow::Result<()> {
        let unreadable = |error: serde_json::Error| {
            anyhow::anyhow!("entry {}: unreadable command: {error}", entry.seq)
        };
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

pub(crate) fn describe_request(request: &AuthzRequest) -> String {
    format!(
        "{} {} on {} {}",
        request.principal.uid.id,
        request.action.cedar_id(),
        request.resource.uid.entity_type.cedar_name(),
        request.resource.uid.id.chars().take(12).collect::<String>()
    )
}

pub(crate) fn describe_human_request(request: &HumanAuthzRequest) -> String {
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
        Command::ResolvePage { title, .. } => format!("resolve page: {title}"),
        Command::UpdatePage { title, note, .. } => {
            format!("update page: {title}: {}", note.agreement)
        }
        Command::Investigate {
            investigation_id, ..
        } => format!("investigate {investigation_id}"),
        Command::Notify { notice, .. } => format!("notify {}: {}", notice.owner, notice.change),
        Command::WakeAt { at } => format!("wake at {}", at.to_rfc3339()),
    }
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
