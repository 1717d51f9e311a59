//! One incident's state: where it is in its runbook and what has happened so far.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use super::Action;
use crate::authz::Mode;
use crate::detector::{Finding, Point};
use crate::diagnosis::Diagnosis;
use crate::time::Timestamp;
use crate::topology::NodeId;

/// Whether a step moves forward or undoes an earlier one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    Forward,
    Compensation,
}

impl Phase {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Phase::Forward => "forward",
            Phase::Compensation => "compensation",
        }
    }
}

/// Where an incident is.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Stage {
    /// Waiting for the policy engine's answer about a step.
    Authorizing {
        step_idx: usize,
        phase: Phase,
        request_id: String,
    },
    /// Waiting for an action target's answer.
    Acting {
        step_idx: usize,
        phase: Phase,
        action_id: String,
    },
    /// Watching the signal until it passes or the deadline comes.
    Verifying {
        started_at: Timestamp,
        deadline: Timestamp,
        n_ok: u32,
        observed: Vec<Point>,
    },
    /// Not acting: before a runbook is chosen, or held by a guardrail or a silence;
    /// waiting for the finding to clear.
    Proposed,
    /// A step was proposed (advisory mode, or a guardrail turned it into a proposal);
    /// waiting for `vigil approve` or `vigil reject`, or for the finding to clear.
    AwaitingApproval {
        step_idx: usize,
        proposal_id: String,
        action_hash: String,
        action: Action,
        requested_by: String,
    },
    /// Waiting for the pager's answer.
    Paging { page_id: String },
    /// A verified temporary change (a failover) stays in place while the finding still
    /// fires; `clear_since` is when all its findings last became clear.
    Holding { clear_since: Option<Timestamp> },
    /// Resolved inside a handler; the engine drops it at the end of the event.
    Done,
}

/// An open incident.
#[derive(Clone, Debug)]
pub(crate) struct Incident {
    pub(crate) id: String,
    pub(crate) opened_at: Timestamp,
    pub(crate) finding: Finding,
    pub(crate) diagnosis: Diagnosis,
    pub(crate) runbook_idx: Option<usize>,
    pub(crate) mode: Mode,
    pub(crate) attempt: u32,
    /// Forward steps that succeeded, in order.
    pub(crate) completed: Vec<usize>,
    /// Steps still to be undone, the next one last.
    pub(crate) to_compensate: Vec<usize>,
    /// Forward steps that were undone, in the order they were.
    pub(crate) undone: Vec<usize>,
    pub(crate) stage: Stage,
    /// What vigil did, for the why packet.
    pub(crate) history: Vec<String>,
    /// Why vigil is handing over, once it is.
    pub(crate) escalation: Option<Escalation>,
    /// The state each completed forward step replaced, by step index, for restores.
    pub(crate) priors: BTreeMap<usize, BTreeMap<String, String>>,
    /// Whether the finding has cleared since the incident opened.
    pub(crate) cleared: bool,
    /// Its findings, the one that opened it first; with a topology, connected findings join.
    pub(crate) members: Vec<Member>,
    /// The causes ranked over all its findings, once a second one joined (the page tells
    /// this one; the runbook chosen at the opening keeps the opening's diagnosis).
    pub(crate) ranked: Option<Diagnosis>,
    /// The rung of the runbook's escalation ladder running now (1 first).
    pub(crate) rung: u32,
    /// Whether the compensation running undoes a held change after recovery (it resolves
    /// when done) rather than a failed fix (it pages).
    pub(crate) undo_on_recovery: bool,
    /// The title of the page it sent, once it paged.
    pub(crate) page_title: Option<String>,
    /// Why this run proposes instead of acting, when a guardrail made it advisory.
    pub(crate) advisory_why: Option<String>,
    /// The assistant's investigation of it (sessions with an assistant).
    pub(crate) assistant: super::investigate::AssistantState,
    n_ids: u32,
}

/// One finding of an incident.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Member {
    pub(crate) fingerprint: String,
    /// The node of the topology it is about, if any.
    pub(crate) node: Option<NodeId>,
    /// When it last fired.
    pub(crate) raised_at: Timestamp,
    /// Whether it has cleared since.
    pub(crate) cleared: bool,
    /// The finding, as it last fired.
    pub(crate) finding: Finding,
    /// Its own diagnosis when it fired.
    pub(crate) diagnosis: Diagnosis,
}

impl Member {
    pub(crate) fn of(finding: &Finding, diagnosis: &Diagnosis) -> Self {
        Member {
            fingerprint: finding.fingerprint.clone(),
            node: super::grouping::node_of(finding),
            raised_at: finding.raised_at,
            cleared: false,
            finding: finding.clone(),
            diagnosis: diagnosis.clone(),
        }
    }
}

/// Why an incident goes to a human.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Escalation {
    pub(crate) reason: String,
    pub(crate) ask: super::packet::Ask,
}

impl Incident {
    pub(crate) fn new(finding: Finding, diagnosis: Diagnosis, mode: Mode, now: Timestamp) -> Self {
        let member = Member::of(&finding, &diagnosis);
        Incident {
            id: incident_id(&finding.fingerprint, now),
            opened_at: now,
            finding,
            diagnosis,
            runbook_idx: None,
            mode,
            attempt: 0,
            completed: Vec::new(),
            to_compensate: Vec::new(),
            undone: Vec::new(),
            stage: Stage::Proposed,
            history: Vec::new(),
            escalation: None,
            priors: BTreeMap::new(),
            cleared: false,
            members: vec![member],
            ranked: None,
            rung: 1,
            undo_on_recovery: false,
            page_title: None,
            advisory_why: None,
            assistant: super::investigate::AssistantState::default(),
            n_ids: 0,
        }
    }

    /// A new id for a request, action or page of this incident.
    pub(crate) fn next_id(&mut self, kind: &str) -> String {
        self.n_ids += 1;
        format!("{}/{kind}-{}", self.id, self.n_ids)
    }
}

/// A stable, unique incident id: the fingerprint and the opening time, hashed.
fn incident_id(fingerprint: &str, now: Timestamp) -> String {
    let digest = Sha256::digest(format!("{fingerprint}\n{}", now.0).as_bytes());
    let hex = hex::encode(digest);
    format!("inc-{}", hex.get(..12).unwrap_or(&hex))
}

/// The idempotency key of one step run: the same step of the same attempt always gets the
/// same key, so a retried call is recognisable.
pub(crate) fn idempotency_key(
    incident_id: &str,
    step_id: &str,
    phase: Phase,
    attempt: u32,
) -> String {
    let digest = Sha256::digest(
        format!("{incident_id}\n{step_id}\n{}\n{attempt}", phase.as_str()).as_bytes(),
    );
    let hex = hex::encode(digest);
    hex.get(..32).unwrap_or(&hex).to_owned()
}
