//! The list of incidents that the console shows, built from recorded commands, like
//! [`crate::report`]: fed each command with the time it was recorded, in ledger order, it
//! keeps one row per incident (what it is about, what vigil thinks caused it, which runbook
//! ran, where it stands) and answers a filter.
//!
//! Pure: the caller reads the ledger. An incident id opened again later (ledgers joined from
//! separate runs) starts a new row in place of the old one, which the list no longer shows.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::authz::Mode;
use crate::engine::{Command, Record};
use crate::people::HumanCommand;
use crate::time::Timestamp;

/// Where an incident stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentState {
    /// Opened; vigil is diagnosing, acting or verifying.
    Open,
    /// A step waits for a person's approval.
    AwaitingApproval,
    /// A person was paged; the incident is theirs.
    Paged,
    /// It ended: the fix held, or the findings cleared.
    Resolved,
}

impl IncidentState {
    /// Every state, in the order the console's filter lists them.
    pub const ALL: [IncidentState; 4] = [
        IncidentState::Open,
        IncidentState::AwaitingApproval,
        IncidentState::Paged,
        IncidentState::Resolved,
    ];

    /// Its name in URLs and JSON.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentState::Open => "open",
            IncidentState::AwaitingApproval => "awaiting_approval",
            IncidentState::Paged => "paged",
            IncidentState::Resolved => "resolved",
        }
    }

    /// Its name for people.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            IncidentState::Open => "open",
            IncidentState::AwaitingApproval => "awaiting approval",
            IncidentState::Paged => "paged",
            IncidentState::Resolved => "resolved",
        }
    }

    /// The state named `name` ([`IncidentState::as_str`]).
    #[must_use]
    pub fn parse(name: &str) -> Option<IncidentState> {
        IncidentState::ALL
            .into_iter()
            .find(|state| state.as_str() == name)
    }
}

/// One incident, as the list shows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct IncidentRow {
    /// Its id.
    pub id: String,
    /// When it was opened.
    pub opened_at: Timestamp,
    /// When anything about it was last recorded.
    pub last_at: Timestamp,
    /// The detector that raised its first finding (empty when not recorded).
    pub detector: String,
    /// What it is about, for people (the alias, else the value).
    pub subject: String,
    /// The subject's label and value, for the filter (`hashed_api_key=...`).
    pub subject_key: String,
    /// The team that owns the subject, when known.
    pub team: Option<String>,
    /// How urgent.
    pub severity: &'static str,
    /// The best hypothesis, once diagnosed.
    pub hypothesis: Option<&'static str>,
    /// The runbook chosen, if any.
    pub runbook: Option<String>,
    /// The mode the runbook ran in.
    pub mode: Option<Mode>,
    /// Where it stands.
    pub state: IncidentState,
    /// How it ended, when it did.
    pub outcome: Option<String>,
    /// Pages sent.
    pub pages: u32,
}

/// What to list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IncidentFilter {
    /// Only incidents in this state.
    pub state: Option<IncidentState>,
    /// Only incidents whose best hypothesis is this kind.
    pub hypothesis: Option<String>,
    /// Only incidents whose subject's name, label=value or team contains this text
    /// (ignoring case).
    pub subject: Option<String>,
    /// Only incidents opened at or after.
    pub since: Option<Timestamp>,
    /// Only incidents opened at or before.
    pub until: Option<Timestamp>,
}

impl IncidentFilter {
    fn keeps(&self, row: &IncidentRow) -> bool {
        let state = self.state.is_none_or(|state| row.state == state);
        let hypothesis = self
            .hypothesis
            .as_deref()
            .is_none_or(|kind| row.hypothesis == Some(kind));
        let subject = self.subject.as_deref().is_none_or(|needle| {
            let needle = needle.to_lowercase();
            [
                Some(row.subject.as_str()),
                Some(row.subject_key.as_str()),
                row.team.as_deref(),
            ]
            .into_iter()
            .flatten()
            .any(|text| text.to_lowercase().contains(&needle))
        });
        let since = self.since.is_none_or(|since| row.opened_at >= since);
        let until = self.until.is_none_or(|until| row.opened_at <= until);
        state && hypothesis && subject && since && until
    }
}

/// Builds the list from recorded commands.
#[derive(Debug, Default)]
pub struct IncidentIndex {
    rows: BTreeMap<String, IncidentRow>,
    /// The detector of the latest finding per fingerprint.
    detectors: BTreeMap<String, String>,
    /// Proposal id to incident id.
    proposals: BTreeMap<String, String>,
}

impl IncidentIndex {
    /// An empty index.
    #[must_use]
    pub fn new() -> IncidentIndex {
        IncidentIndex::default()
    }

    /// Takes one command, recorded at `at`.
    pub fn command(&mut self, at: Timestamp, command: &Command) {
        match command {
            Command::Record(record) => self.record(at, record),
            Command::Page { incident_id, .. } => {
                if let Some(row) = self.touch(incident_id, at) {
                    row.pages = row.pages.saturating_add(1);
                }
            }
            Command::Authorize { incident_id, .. }
            | Command::Execute { incident_id, .. }
            | Command::ResolvePage { incident_id, .. }
            | Command::Notify { incident_id, .. }
            | Command::UpdatePage { incident_id, .. } => {
                self.touch(incident_id, at);
            }
            Command::AuthorizeHuman { .. }
            | Command::Investigate { .. }
            | Command::WakeAt { .. } => {}
        }
    }

    fn touch(&mut self, incident_id: &str, at: Timestamp) -> Option<&mut IncidentRow> {
        let row = self.rows.get_mut(incident_id)?;
        row.last_at = row.last_at.max(at);
        Some(row)
    }

    fn record(&mut self, at: Timestamp, record: &Record) {
        match record {
            Record::FindingRaised { finding } => {
                self.detectors
                    .insert(finding.fingerprint.clone(), finding.detector.clone());
            }
            Record::IncidentOpened {
                incident_id,
                fingerprint,
                subject,
                severity,
            } => {
                let detector = self.detectors.get(fingerprint).cloned().unwrap_or_default();
                self.rows.insert(
                    incident_id.clone(),
                    IncidentRow {
                        id: incident_id.clone(),
                        opened_at: at,
                        last_at: at,
                        detector,
                        subject: subject.readable_name(),
                        subject_key: format!("{}={}", subject.label, subject.value),
                        team: subject.team.clone(),
                        severity: severity.as_str(),
                        hypothesis: None,
                        runbook: None,
                        mode: None,
                        state: IncidentState::Open,
                        outcome: None,
                        pages: 0,
                    },
                );
            }
            Record::Diagnosed {
                incident_id,
                diagnosis,
            } => {
                if let Some(row) = self.touch(incident_id, at) {
                    row.hypothesis = diagnosis.best().map(|best| best.kind.as_str());
                }
            }
            Record::RunbookSelected {
                incident_id,
                runbook_id,
                mode,
            } => {
                if let Some(row) = self.touch(incident_id, at) {
                    row.runbook = Some(runbook_id.clone());
                    row.mode = Some(*mode);
                }
            }
            Record::StepProposed {
                incident_id,
                proposal_id,
                ..
            } => {
                self.proposals
                    .insert(proposal_id.clone(), incident_id.clone());
                if let Some(row) = self.touch(incident_id, at)
                    && row.state == IncidentState::Open
                {
                    row.state = IncidentState::AwaitingApproval;
                }
            }
            Record::HumanAction {
                command:
                    HumanCommand::Approve { proposal_id, .. } | HumanCommand::Reject { proposal_id },
                accepted: true,
                ..
            } => {
                let incident_id = self.proposals.get(proposal_id).cloned();
                if let Some(row) = incident_id.and_then(|id| self.touch(&id, at))
                    && row.state == IncidentState::AwaitingApproval
                {
                    row.state = IncidentState::Open;
                }
            }
            Record::IncidentEscalated { incident_id, .. } => {
                if let Some(row) = self.touch(incident_id, at)
                    && row.state != IncidentState::Resolved
                {
                    row.state = IncidentState::Paged;
                }
            }
            Record::IncidentResolved {
                incident_id,
                outcome,
                ..
            }
            | Record::PageResolved {
                incident_id,
                outcome,
            } => {
                if let Some(row) = self.touch(incident_id, at) {
                    row.state = IncidentState::Resolved;
                    row.outcome = Some(outcome.clone());
                }
            }
            Record::StepDenied { incident_id, .. }
            | Record::GuardrailHeld { incident_id, .. }
            | Record::VerificationStarted { incident_id, .. }
            | Record::VerificationPassed { incident_id, .. }
            | Record::VerificationFailed { incident_id, .. }
            | Record::CompensationStarted { incident_id, .. }
            | Record::FindingJoined { incident_id, .. }
            | Record::EffectMeasured { incident_id, .. }
            | Record::OwnerNotified { incident_id, .. } => {
                self.touch(incident_id, at);
            }
            Record::FindingCleared { .. }
            | Record::VersionChanged { .. }
            | Record::SeriesRefused { .. }
            | Record::HumanAction { .. }
            | Record::TopologyGrew { .. }
            | Record::InvestigationChecked { .. }
            | Record::InvestigationFailed { .. } => {}
        }
    }

    /// How many incidents it holds.
    #[must_use]
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether it holds none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The incidents `filter` keeps, the latest opened first, at most `limit`; and how many
    /// it kept in all.
    #[must_use]
    pub fn list(&self, filter: &IncidentFilter, limit: usize) -> (Vec<IncidentRow>, usize) {
        let mut kept: Vec<&IncidentRow> =
            self.rows.values().filter(|row| filter.keeps(row)).collect();
        kept.sort_by(|a, b| b.opened_at.cmp(&a.opened_at).then_with(|| b.id.cmp(&a.id)));
        let n_kept = kept.len();
        (kept.into_iter().take(limit).cloned().collect(), n_kept)
    }

    /// The hypothesis kinds seen, for the filter's choices.
    #[must_use]
    pub fn hypotheses(&self) -> Vec<&'static str> {
        let mut kinds: Vec<&'static str> = self
            .rows
            .values()
            .filter_map(|row| row.hypothesis)
            .collect();
        kinds.sort_unstable();
        kinds.dedup();
        kinds
    }
}

#[cfg(test)]
mod tests;
