//! The incidents as the console shows them, read from a ledger: the list
//! ([`vigil_core::incidents`] fed the recorded commands of a period) and one incident in
//! full (its entries, the finding that opened it, and the people's instructions that
//! touched it), every part taken from what was recorded, so the page shows what an auditor
//! replays.

use std::collections::BTreeSet;

use vigil_connectors::exchange::Exchange;
use vigil_core::detector::Finding;
use vigil_core::diagnosis::Diagnosis;
use vigil_core::engine::{Command, Event, Record, WhyPacket};
use vigil_core::incidents::{IncidentFilter, IncidentIndex, IncidentRow};
use vigil_core::time::Timestamp;
use vigil_ledger::{Entry, EntryFilter, EntryKind, Ledger, PageLimits};

use crate::journal::{self, Recorded};

/// How many entries before an incident's opening are searched for the finding that opened
/// it (it is raised in the same event, a few commands earlier).
const FINDING_LOOKBACK: u64 = 256;

/// The most entries of one incident shown; a longer incident says how many were left out.
pub const MAX_INCIDENT_ENTRIES: usize = 2000;

/// The most HTTP exchanges read per action.
const MAX_EXCHANGES: usize = 20;

/// The list read from a ledger, with what could not be read.
#[derive(Debug, Default)]
pub struct IncidentList {
    /// The incidents the filter kept, the latest opened first.
    pub rows: Vec<IncidentRow>,
    /// How many the filter kept in all (the rows stop at the limit).
    pub n_kept: usize,
    /// Incidents read.
    pub n_incidents: usize,
    /// The hypothesis kinds seen (the filter's choices).
    pub hypotheses: Vec<&'static str>,
    /// Command entries that could not be decoded.
    pub n_unreadable: u64,
}

/// Reads the incidents opened since `since` (all when `None`) and lists the ones `filter`
/// keeps, at most `limit`.
///
/// # Errors
///
/// When the ledger cannot be read.
pub async fn list(
    ledger: &Ledger,
    since: Option<Timestamp>,
    filter: &IncidentFilter,
    limit: usize,
) -> anyhow::Result<IncidentList> {
    let mut index = IncidentIndex::new();
    let entry_filter = EntryFilter {
        incident_id: None,
        since_ms: since.map(|since| since.0),
        kind: Some(EntryKind::Command),
    };
    let mut reader = ledger.entries(entry_filter, PageLimits::default());
    let mut n_unreadable = 0;
    while let Some(entry) = reader.next().await? {
        match journal::decode(&entry) {
            Ok(Recorded::Command(record)) => index.command(Timestamp(entry.at_ms), &record.command),
            Ok(_) => {}
            Err(_) => n_unreadable += 1,
        }
    }
    let (rows, n_kept) = index.list(filter, limit);
    Ok(IncidentList {
        rows,
        n_kept,
        n_incidents: index.len(),
        hypotheses: index.hypotheses(),
        n_unreadable,
    })
}

/// One line of an incident's timeline.
#[derive(Debug, Clone)]
pub struct TimelineLine {
    /// The entry's seq (its proof and its replay start here).
    pub seq: u64,
    /// When it was recorded.
    pub at: Timestamp,
    /// What, in words.
    pub text: String,
}

/// A policy decision about a step.
#[derive(Debug, Clone)]
pub struct DecisionView {
    /// The entry holding the decision.
    pub seq: u64,
    /// Who asked to do what to which resource.
    pub request: String,
    /// The decision, as recorded.
    pub decision: vigil_core::authz::AuthzDecision,
    /// Whether it was about a person's instruction (an approval), not a runbook's step.
    pub about_a_person: bool,
}

/// An action and its answer.
#[derive(Debug, Clone)]
pub struct ActionView {
    /// The entry of the `execute` command.
    pub seq: u64,
    /// Its id.
    pub action_id: String,
    /// What it did, for people.
    pub describe: String,
    /// The answer, once recorded.
    pub outcome: Option<vigil_core::engine::ActionOutcome>,
    /// The recorded HTTP exchanges behind the answer (secrets redacted when recorded).
    pub exchanges: Vec<Exchange>,
    /// Why the exchanges could not be shown, when they could not.
    pub exchanges_problem: Option<String>,
}

/// A verification's result.
#[derive(Debug, Clone)]
pub struct VerificationView {
    /// Its entry.
    pub seq: u64,
    /// Whether it passed.
    pub passed: bool,
    /// What was checked, or why it failed.
    pub detail: String,
    /// The readings it observed.
    pub observed: Vec<vigil_core::detector::Point>,
}

/// A page sent.
#[derive(Debug, Clone)]
pub struct PageView {
    /// Its entry.
    pub seq: u64,
    /// Its title.
    pub title: String,
    /// Whether it reached the pager, once answered.
    pub delivered: Option<bool>,
    /// The pager's answer.
    pub detail: String,
}

/// A person's instruction about the incident.
#[derive(Debug, Clone)]
pub struct HumanView {
    /// The event's entry.
    pub seq: u64,
    /// Who, as authenticated.
    pub by: String,
    /// Why, in their words.
    pub reason: String,
    /// What.
    pub command: String,
    /// What vigil made of it, when recorded.
    pub outcome: Option<(bool, String)>,
}

/// One incident, read in full.
#[derive(Debug, Default)]
pub struct IncidentDetail {
    /// Its id.
    pub id: String,
    /// Its row, as the list shows it.
    pub row: Option<IncidentRow>,
    /// The finding that opened it (and those that joined it), when found.
    pub findings: Vec<Finding>,
    /// The latest diagnosis.
    pub diagnosis: Option<Diagnosis>,
    /// The why-packet of the latest page.
    pub packet: Option<WhyPacket>,
    /// Every entry, in words.
    pub timeline: Vec<TimelineLine>,
    /// Entries past [`MAX_INCIDENT_ENTRIES`], not shown.
    pub n_left_out: usize,
    /// The policy decisions.
    pub decisions: Vec<DecisionView>,
    /// The actions.
    pub actions: Vec<ActionView>,
    /// The verifications.
    pub verifications: Vec<VerificationView>,
    /// The pages.
    pub pages: Vec<PageView>,
    /// People's instructions.
    pub people: Vec<HumanView>,
    /// Findings that joined the incident through the topology: their subject, and the
    /// shared dependency that connected them (the chain from symptom to cause).
    pub joined: Vec<(String, String)>,
    /// Proposals made, as `(proposal_id, action_hash, describe, requested_by)`.
    pub proposals: Vec<(String, String, String, String)>,
    /// Entries that could not be decoded.
    pub n_unreadable: u64,
}

/// Reads incident `incident_id`; `None` when the ledger has no entry of it.
///
/// # Errors
///
/// When the ledger cannot be read.
pub async fn detail(ledger: &Ledger, incident_id: &str) -> anyhow::Result<Option<IncidentDetail>> {
    let entries = ledger.entries_for_incident(incident_id).await?;
    let Some(first) = entries.first() else {
        return Ok(None);
    };
    let mut detail = IncidentDetail {
        id: incident_id.to_owned(),
        ..IncidentDetail::default()
    };
    let mut index = IncidentIndex::new();
    let mut fingerprints = BTreeSet::new();
    let mut causes = BTreeSet::new();
    detail.n_left_out = entries.len().saturating_sub(MAX_INCIDENT_ENTRIES);
    for entry in &entries {
        let recorded = match journal::decode(entry) {
            Ok(recorded) => recorded,
            Err(_) => {
                detail.n_unreadable += 1;
                continue;
            }
        };
        let at = Timestamp(entry.at_ms);
        match recorded {
            Recorded::Command(record) => {
                causes.insert(record.caused_by);
                index.command(at, &record.command);
                take_command(&mut detail, &mut fingerprints, entry, &record.command);
            }
            Recorded::Event(record) => {
                take_event(ledger, &mut detail, entry, &record).await;
            }
            Recorded::Session(_) | Recorded::ScrapeBatch(_) => {}
        }
    }
    detail.timeline.truncate(MAX_INCIDENT_ENTRIES);
    detail.row = index
        .list(&IncidentFilter::default(), 1)
        .0
        .into_iter()
        .next();
    detail.findings = findings_before(ledger, first.seq, &fingerprints).await?;
    // The finding is recorded before the incident, without its id: name its detector here.
    if let (Some(row), Some(finding)) = (&mut detail.row, detail.findings.first())
        && row.detector.is_empty()
    {
        row.detector = finding.detector.clone();
    }
    detail.people = people(ledger, &causes).await?;
    Ok(Some(detail))
}

fn take_command(
    detail: &mut IncidentDetail,
    fingerprints: &mut BTreeSet<String>,
    entry: &Entry,
    command: &Command,
) {
    let text = match command {
        Command::Record(record) => {
            match record {
                Record::IncidentOpened { fingerprint, .. } => {
                    fingerprints.insert(fingerprint.clone());
                }
                Record::FindingJoined {
                    fingerprint,
                    subject,
                    via,
                    ..
                } => {
                    fingerprints.insert(fingerprint.clone());
                    detail.joined.push((subject.readable_name(), via.clone()));
                }
                Record::Diagnosed { diagnosis, .. } => detail.diagnosis = Some(diagnosis.clone()),
                Record::VerificationPassed { observed, .. } => {
                    detail.verifications.push(VerificationView {
                        seq: entry.seq,
                        passed: true,
                        detail: "passed".to_owned(),
                        observed: observed.clone(),
                    });
                }
                Record::VerificationFailed {
                    reason, observed, ..
                } => detail.verifications.push(VerificationView {
                    seq: entry.seq,
                    passed: false,
                    detail: reason.clone(),
                    observed: observed.clone(),
                }),
                Record::StepProposed {
                    proposal_id,
                    action_hash,
                    action,
                    requested_by,
                    ..
                } => detail.proposals.push((
                    proposal_id.clone(),
                    action_hash.clone(),
                    action.describe(),
                    requested_by.clone(),
                )),
                _ => {}
            }
            record.describe()
        }
        Command::Authorize { request, .. } => {
            format!("asked Cedar: {}", super::replay::describe_request(request))
        }
        Command::AuthorizeHuman { request, .. } => format!(
            "asked Cedar about a person's instruction: {}",
            super::replay::describe_human_request(request)
        ),
        Command::Execute {
            action_id, action, ..
        } => {
            detail.actions.push(ActionView {
                seq: entry.seq,
                action_id: action_id.clone(),
                describe: action.describe(),
                outcome: None,
                exchanges: Vec::new(),
                exchanges_problem: None,
            });
            format!("act: {}", action.describe())
        }
        Command::Page { page_id, page, .. } => {
            detail.packet = Some(page.why.clone());
            detail.pages.push(PageView {
                seq: entry.seq,
                title: page.title.clone(),
                delivered: None,
                detail: page_id.clone(),
            });
            format!("page: {}", page.title)
        }
        Command::ResolvePage { title, .. } => format!("resolve the page: {title}"),
        Command::Notify { notice, .. } => format!("tell {}: {}", notice.owner, notice.change),
        Command::UpdatePage { title, .. } => format!("follow the page up: {title}"),
        Command::Investigate { .. } => "ask the assistant to investigate".to_owned(),
        Command::WakeAt { at } => format!("wake at {}", at.to_rfc3339()),
    };
    detail.timeline.push(TimelineLine {
        seq: entry.seq,
        at: Timestamp(entry.at_ms),
        text,
    });
}

async fn take_event(
    ledger: &Ledger,
    detail: &mut IncidentDetail,
    entry: &Entry,
    record: &journal::EventRecord,
) {
    let text = match &record.event {
        Event::AuthorizationDecided {
            decision,
            request_id,
            ..
        }
        | Event::HumanDecided {
            decision,
            request_id,
            ..
        } => {
            let about_a_person = matches!(record.event, Event::HumanDecided { .. });
            detail.decisions.push(DecisionView {
                seq: entry.seq,
                request: request_id.clone(),
                decision: decision.clone(),
                about_a_person,
            });
            format!(
                "Cedar: {} ({})",
                effect_word(decision),
                if decision.determining_policies.is_empty() {
                    "no policy applied: denied by default".to_owned()
                } else {
                    decision.determining_policies.join(", ")
                }
            )
        }
        Event::ActionFinished {
            action_id, outcome, ..
        } => {
            let (exchanges, problem) = match &record.exchanges_blob {
                Some(hash) => exchanges(ledger, hash).await,
                None => (Vec::new(), None),
            };
            if let Some(action) = detail
                .actions
                .iter_mut()
                .rev()
                .find(|action| &action.action_id == action_id)
            {
                action.outcome = Some(outcome.clone());
                action.exchanges = exchanges;
                action.exchanges_problem = problem;
            }
            format!(
                "the action {}: {}",
                if outcome.succeeded {
                    "succeeded"
                } else {
                    "failed"
                },
                outcome.detail
            )
        }
        Event::PageFinished {
            page_id,
            delivered,
            detail: answer,
            ..
        } => {
            if let Some(page) = detail
                .pages
                .iter_mut()
                .rev()
                .find(|page| &page.detail == page_id)
            {
                page.delivered = Some(*delivered);
                page.detail = answer.clone();
            }
            format!(
                "the page {}: {answer}",
                if *delivered {
                    "was delivered"
                } else {
                    "was NOT delivered"
                }
            )
        }
        other => format!("event: {}", event_kind(other)),
    };
    detail.timeline.push(TimelineLine {
        seq: entry.seq,
        at: Timestamp(entry.at_ms),
        text,
    });
}

fn effect_word(decision: &vigil_core::authz::AuthzDecision) -> &'static str {
    match decision.effect {
        vigil_core::authz::Effect::Allow => "allowed",
        vigil_core::authz::Effect::Deny => "denied",
    }
}

fn event_kind(event: &Event) -> String {
    serde_json::to_value(event)
        .ok()
        .and_then(|value| {
            value
                .get("type")
                .and_then(|kind| kind.as_str().map(str::to_owned))
        })
        .unwrap_or_else(|| "event".to_owned())
}

async fn exchanges(ledger: &Ledger, hash: &str) -> (Vec<Exchange>, Option<String>) {
    match ledger.get_blob(hash).await {
        Ok(Some(bytes)) => match serde_json::from_slice::<Vec<Exchange>>(&bytes) {
            Ok(mut exchanges) => {
                exchanges.truncate(MAX_EXCHANGES);
                (exchanges, None)
            }
            Err(error) => (
                Vec::new(),
                Some(format!("blob {hash} is unreadable: {error}")),
            ),
        },
        Ok(None) => (Vec::new(), Some(format!("blob {hash} is missing"))),
        Err(error) => (Vec::new(), Some(format!("blob {hash}: {error}"))),
    }
}

/// The findings of `fingerprints` raised in the entries just before `seq` (the latest of each).
async fn findings_before(
    ledger: &Ledger,
    seq: u64,
    fingerprints: &BTreeSet<String>,
) -> anyhow::Result<Vec<Finding>> {
    let from = seq.saturating_sub(FINDING_LOOKBACK);
    let n = u32::try_from(seq.saturating_sub(from).saturating_add(1)).unwrap_or(u32::MAX);
    let mut found: Vec<Finding> = Vec::new();
    for entry in ledger.read(from, n).await? {
        if entry.kind != EntryKind::Command {
            continue;
        }
        if let Ok(Recorded::Command(record)) = journal::decode(&entry)
            && let Command::Record(Record::FindingRaised { finding }) = record.command
            && fingerprints.contains(&finding.fingerprint)
        {
            found.retain(|earlier| earlier.fingerprint != finding.fingerprint);
            found.push(finding);
        }
    }
    Ok(found)
}

/// The people's instructions among the events that caused the incident's commands, with
/// what vigil made of each.
async fn people(ledger: &Ledger, causes: &BTreeSet<u64>) -> anyhow::Result<Vec<HumanView>> {
    let mut people = Vec::new();
    for &seq in causes {
        let Some(entry) = ledger.read(seq, 1).await?.into_iter().next() else {
            continue;
        };
        let Ok(Recorded::Event(record)) = journal::decode(&entry) else {
            continue;
        };
        if let Event::Human {
            by,
            reason,
            command,
            ..
        } = &record.event
        {
            people.push(HumanView {
                seq,
                by: by.clone(),
                reason: reason.clone(),
                command: command.describe(),
                outcome: None,
            });
        }
    }
    // What vigil made of each: the `human_action` record its event issued.
    for person in &mut people {
        let following = ledger.read(person.seq.saturating_add(1), 64).await?;
        for entry in following {
            if entry.kind != EntryKind::Command {
                break;
            }
            if let Ok(Recorded::Command(record)) = journal::decode(&entry)
                && let Command::Record(Record::HumanAction {
                    accepted, outcome, ..
                }) = record.command
            {
                person.outcome = Some((accepted, outcome));
                break;
            }
        }
    }
    Ok(people)
}
