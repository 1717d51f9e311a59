//! Commands: everything the engine asks the runtime to do, and the records it keeps.

use serde::{Deserialize, Serialize};

use crate::action::Action;
use crate::authz::{AuthzRequest, HumanAuthzRequest, Mode};
use crate::detector::change::Change;
use crate::detector::{Finding, FindingCleared, Point, Severity, Subject};
use crate::diagnosis::Diagnosis;
use crate::investigation::{CheckedAnswer, Failure, InvestigationRequest, Usage};
use crate::people::HumanCommand;
use crate::time::Timestamp;
use crate::topology::{Edge, NodeId};

/// An instruction from the engine. The runtime appends each to the ledger before carrying it
/// out, and feeds the result back as an [`Event`](super::Event).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Command {
    /// Keep a decision in the ledger (and show it to people); nothing else to do.
    Record(Record),
    /// Ask the policy engine; answer with `Event::AuthorizationDecided`.
    Authorize {
        /// Unique id of this request.
        request_id: String,
        /// The incident.
        incident_id: String,
        /// The question.
        request: AuthzRequest,
    },
    /// Ask the policy engine about a person's instruction; answer with
    /// `Event::HumanDecided`.
    AuthorizeHuman {
        /// Unique id of this request.
        request_id: String,
        /// The incident the instruction is about, if any (an approval's).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        incident_id: Option<String>,
        /// The question.
        request: HumanAuthzRequest,
    },
    /// Change something in the world; answer with `Event::ActionFinished`.
    Execute {
        /// Unique id of this action.
        action_id: String,
        /// The incident.
        incident_id: String,
        /// Same key for a retry of the same step: the target may be called twice safely.
        idempotency_key: String,
        /// What to do.
        action: Action,
    },
    /// Wake a human; answer with `Event::PageFinished`.
    Page {
        /// Unique id of this page.
        page_id: String,
        /// The incident.
        incident_id: String,
        /// What to tell them.
        page: Page,
    },
    /// Resolve the page an incident sent, now that the incident ended (PagerDuty's
    /// `resolve` with the same dedup key, a follow-up on Slack and the webhook). Nothing
    /// answers it: a failure is the daemon's to log and count.
    ResolvePage {
        /// The incident whose page to resolve (the page's dedup key).
        incident_id: String,
        /// The page's title.
        title: String,
        /// How it ended.
        summary: String,
    },
    /// Tell the owner of something vigil changed (a notification, not a page). Nothing
    /// answers it: a failure is the daemon's to log and count.
    Notify {
        /// The incident.
        incident_id: String,
        /// What to tell whom.
        notice: super::Notice,
    },
    /// Investigate an incident with the assistant (sessions whose config has
    /// `diagnosis.assistant`); answer with `Event::InvestigationFinished` before the request's
    /// deadline. Read-only: nothing waits for it.
    Investigate {
        /// Unique id of this investigation.
        investigation_id: String,
        /// What to investigate, with its bounds.
        request: Box<InvestigationRequest>,
    },
    /// Tell the human an incident paged what the assistant found, once it checked out (a
    /// follow-up to the page: PagerDuty's alert log, a Slack follow-up, a webhook body with
    /// `status: updated`). Nothing answers it: a failure is the daemon's to log and count.
    UpdatePage {
        /// The incident whose page to follow up (the page's dedup key).
        incident_id: String,
        /// The page's title.
        title: String,
        /// The assistant's checked findings.
        note: Box<AssistantNote>,
    },
    /// Send an `Event::Tick` at this time (or soon after).
    WakeAt {
        /// When.
        at: Timestamp,
    },
}

impl Command {
    /// The incident the command belongs to, if any.
    #[must_use]
    pub fn incident_id(&self) -> Option<&str> {
        match self {
            Command::Record(record) => record.incident_id(),
            Command::Authorize { incident_id, .. }
            | Command::Execute { incident_id, .. }
            | Command::Page { incident_id, .. }
            | Command::ResolvePage { incident_id, .. }
            | Command::Notify { incident_id, .. }
            | Command::UpdatePage { incident_id, .. } => Some(incident_id),
            Command::AuthorizeHuman { incident_id, .. } => incident_id.as_deref(),
            Command::Investigate { request, .. } => request.incident_id.as_deref(),
            Command::WakeAt { .. } => None,
        }
    }
}

/// What a page tells the human: enough to act in thirty seconds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Page {
    /// How urgent.
    pub severity: Severity,
    /// One line.
    pub title: String,
    /// The "why" packet.
    pub why: WhyPacket,
}

/// The short explanation attached to every page.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WhyPacket {
    /// The incident.
    pub incident_id: String,
    /// What vigil saw, in two or three sentences.
    pub summary: String,
    /// The facts behind the diagnosis.
    pub evidence: Vec<String>,
    /// What vigil did and what came of it, in order.
    pub actions: Vec<String>,
    /// Why vigil is handing over.
    pub reason: String,
    /// What the human should look at first: the one thing to do.
    pub ask: String,
    /// The root cause in one line (sessions with a topology; empty before).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cause: String,
    /// From the symptom to the cause, one line per finding with its layer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chain: Vec<String>,
    /// What speaks against the cause, each with its layer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub against: Vec<String>,
    /// vigil's changes still in place, each with how to undo it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub left_in_place: Vec<String>,
    /// The commands that show and replay the incident.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub commands: Vec<String>,
    /// The assistant's findings, checked against vigil's store, beside the diagnosis
    /// (sessions with an assistant whose investigation answered before the page).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assistant: Option<Box<AssistantNote>>,
}

/// What the assistant found, as people read it: only what survived the checks, marked as
/// the assistant's, with its agreement with the diagnosis stated.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AssistantNote {
    /// Whether its best hypothesis agrees with the diagnosis (absent: none survived).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agrees: Option<bool>,
    /// The agreement in words.
    pub agreement: String,
    /// Its surviving hypotheses, best first, each with the facts it cites.
    pub hypotheses: Vec<String>,
    /// Its narrative, if it survived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub narrative: Option<String>,
    /// The next check it suggests for a human, if it survived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_check: Option<String>,
    /// How many of its claims were checked and how many dropped.
    pub checked: String,
}

/// A decision the engine made, kept in the ledger.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "snake_case")]
pub enum Record {
    /// A detector raised a finding.
    FindingRaised {
        /// The finding.
        finding: Finding,
    },
    /// A detector cleared a finding.
    FindingCleared {
        /// Which.
        cleared: FindingCleared,
    },
    /// A group reported a version it had not reported before: a marker for the diagnoser.
    VersionChanged {
        /// The change.
        change: Change,
    },
    /// A source reached its cardinality limit: its new series are refused (existing ones keep
    /// updating). Recorded once per episode; the episode ends with a scrape that refuses none.
    SeriesRefused {
        /// The source.
        source: String,
        /// Samples of new series refused in the scrape that started the episode.
        n_refused: u64,
        /// Series the source holds.
        n_series: u64,
        /// One refused series, for people.
        example: String,
    },
    /// A finding opened an incident.
    IncidentOpened {
        /// The new incident.
        incident_id: String,
        /// The finding's fingerprint.
        fingerprint: String,
        /// What it is about.
        subject: Subject,
        /// How urgent.
        severity: Severity,
    },
    /// The diagnoser explained the incident.
    Diagnosed {
        /// The incident.
        incident_id: String,
        /// The explanation.
        diagnosis: Diagnosis,
    },
    /// A runbook was chosen.
    RunbookSelected {
        /// The incident.
        incident_id: String,
        /// Which.
        runbook_id: String,
        /// The effective mode (the stricter of global and runbook).
        mode: Mode,
    },
    /// The policy engine refused a step.
    StepDenied {
        /// The incident.
        incident_id: String,
        /// The step.
        step_id: String,
        /// The policies that decided, empty for a default deny.
        determining_policies: Vec<String>,
    },
    /// Advisory mode: the step was authorized but only proposed. `vigil approve
    /// PROPOSAL_ID` carries it out.
    StepProposed {
        /// The incident.
        incident_id: String,
        /// The step.
        step_id: String,
        /// What it would do.
        action: Action,
        /// The id to approve or reject it by (empty in ledgers older than approvals).
        #[serde(default)]
        proposal_id: String,
        /// The hash an approval must carry: of the incident, the step and the action.
        #[serde(default)]
        action_hash: String,
        /// Who asks for it: the runbook's owner, who may not approve it.
        #[serde(default)]
        requested_by: String,
        /// Why it is a proposal rather than an action (advisory mode, or a guardrail).
        #[serde(default)]
        why: String,
    },
    /// A person's instruction and what vigil made of it.
    HumanAction {
        /// Who.
        by: String,
        /// Why, in their words.
        reason: String,
        /// What.
        command: HumanCommand,
        /// Whether vigil accepted it.
        accepted: bool,
        /// What it did, or why it refused.
        outcome: String,
        /// The credential that authenticated `by` (a token's id, `issuer#subject`, a
        /// certificate's fingerprint); absent before people were authenticated.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        credential_id: Option<String>,
    },
    /// A guardrail stopped vigil from acting.
    GuardrailHeld {
        /// The incident.
        incident_id: String,
        /// Which guardrail.
        guardrail: String,
        /// The numbers.
        detail: String,
    },
    /// Verification began.
    VerificationStarted {
        /// The incident.
        incident_id: String,
        /// The condition, for people.
        condition: String,
        /// When it must hold by.
        deadline: Timestamp,
    },
    /// Verification passed.
    VerificationPassed {
        /// The incident.
        incident_id: String,
        /// The observations that passed.
        observed: Vec<Point>,
    },
    /// Verification failed.
    VerificationFailed {
        /// The incident.
        incident_id: String,
        /// Why, with numbers.
        reason: String,
        /// The observations made.
        observed: Vec<Point>,
    },
    /// Compensation began for steps that did not work.
    CompensationStarted {
        /// The incident.
        incident_id: String,
        /// The steps to undo, in the order they will be undone.
        step_ids: Vec<String>,
    },
    /// The incident is over and nobody needs to be woken.
    IncidentResolved {
        /// The incident.
        incident_id: String,
        /// How it ended.
        outcome: String,
        /// From opening to resolution.
        duration_ms: i64,
    },
    /// The topology grew: what a source's signals showed that was not known (or, at the
    /// start of an episode of a full graph, what could not be added).
    TopologyGrew {
        /// The source whose signals showed it (`litellm-gateway`, `push:spans`).
        source: String,
        /// New nodes.
        nodes: Vec<NodeId>,
        /// New edges.
        edges: Vec<Edge>,
        /// Nodes refused because the graph was full.
        #[serde(default, skip_serializing_if = "is_zero")]
        n_refused_nodes: u64,
        /// Edges refused because the graph was full.
        #[serde(default, skip_serializing_if = "is_zero")]
        n_refused_edges: u64,
        /// Nodes in the graph afterwards.
        n_nodes: u64,
        /// Edges in the graph afterwards.
        n_edges: u64,
    },
    /// A finding connected in the topology to an incident's findings joined it instead of
    /// opening an incident of its own.
    FindingJoined {
        /// The incident.
        incident_id: String,
        /// The finding's fingerprint.
        fingerprint: String,
        /// What it is about.
        subject: Subject,
        /// How it connects to the incident.
        via: String,
    },
    /// A fix that did not fully work was measured: the harm at the finding against the
    /// harm at the deadline, and what vigil does about it (`not_enough`: the next rung of the
    /// ladder; `partly_fixed`: kept and escalated; `no_effect`: undone).
    EffectMeasured {
        /// The incident.
        incident_id: String,
        /// The harm when the finding fired, when measurable.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        before: Option<f64>,
        /// The harm at the deadline, when measurable.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        after: Option<f64>,
        /// For people: `8,000 → 4,000 tokens/s (−50 %) removed 50 % of the harm`.
        detail: String,
        /// `not_enough`, `partly_fixed` or `no_effect`.
        verdict: String,
    },
    /// The owner of something vigil changed was told (a notification, not a page).
    OwnerNotified {
        /// The incident.
        incident_id: String,
        /// What they were told.
        notice: super::Notice,
    },
    /// The assistant answered and vigil checked the answer against the evidence its tools
    /// returned: what survived, what was dropped and why, and whether its best hypothesis
    /// agrees with the diagnosis.
    InvestigationChecked {
        /// The investigation.
        investigation_id: String,
        /// The incident, if the investigation was about one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        incident_id: Option<String>,
        /// What survived and what was dropped.
        checked: Box<CheckedAnswer>,
        /// Whether its best surviving hypothesis is the diagnosis' best (absent: none
        /// survived). Cedar's `context.assistant_agrees` from now on.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        agrees: Option<bool>,
        /// What it cost.
        usage: Usage,
        /// The transcript's blob.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        transcript_blob: Option<String>,
    },
    /// The assistant gave no answer; the incident goes on without it.
    InvestigationFailed {
        /// The investigation.
        investigation_id: String,
        /// The incident, if the investigation was about one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        incident_id: Option<String>,
        /// Why.
        failure: Failure,
        /// The detail.
        detail: String,
        /// What it cost.
        usage: Usage,
        /// The transcript so far, a blob.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        transcript_blob: Option<String>,
    },
    /// An incident that paged ended: its findings all cleared. Its page is resolved.
    PageResolved {
        /// The incident.
        incident_id: String,
        /// How it ended.
        outcome: String,
    },
    /// The incident was handed to a human.
    IncidentEscalated {
        /// The incident.
        incident_id: String,
        /// Why.
        reason: String,
        /// Whether the page reached the pager.
        page_delivered: bool,
    },
}

impl Record {
    /// The incident the record belongs to, if any.
    #[must_use]
    pub fn incident_id(&self) -> Option<&str> {
        match self {
            Record::FindingRaised { .. }
            | Record::FindingCleared { .. }
            | Record::VersionChanged { .. }
            | Record::SeriesRefused { .. }
            | Record::TopologyGrew { .. }
            | Record::HumanAction { .. } => None,
            Record::IncidentOpened { incident_id, .. }
            | Record::Diagnosed { incident_id, .. }
            | Record::RunbookSelected { incident_id, .. }
            | Record::StepDenied { incident_id, .. }
            | Record::StepProposed { incident_id, .. }
            | Record::GuardrailHeld { incident_id, .. }
            | Record::VerificationStarted { incident_id, .. }
            | Record::VerificationPassed { incident_id, .. }
            | Record::VerificationFailed { incident_id, .. }
            | Record::CompensationStarted { incident_id, .. }
            | Record::IncidentResolved { incident_id, .. }
            | Record::IncidentEscalated { incident_id, .. }
            | Record::FindingJoined { incident_id, .. }
            | Record::EffectMeasured { incident_id, .. }
            | Record::PageResolved { incident_id, .. }
            | Record::OwnerNotified { incident_id, .. } => Some(incident_id),
            Record::InvestigationChecked { incident_id, .. }
            | Record::InvestigationFailed { incident_id, .. } => incident_id.as_deref(),
        }
    }
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if passes a reference
fn is_zero(count: &u64) -> bool {
    *count == 0
}
