//! The trust tally: how often each runbook's actions were verified to work, read from the
//! ledger.
//!
//! `vigil trust` prints the scores and which advisory runbooks have earned promotion; `vigil
//! serve` seeds the engine with the same tallies when a session starts (they are recorded
//! with the session's config, so replay sees the trust that was in force). The score is the
//! engine's: `(verified + 1) / (runs + 2)` in percent (`TrustTally::score_pct`).
//!
//! Counting follows the engine: a run counts for each distinct action of its forward steps
//! that succeeded, once its verification passed or failed. Proposals, approvals and
//! rejections are counted per runbook for promotion.

use std::collections::{BTreeMap, BTreeSet};

use vigil_core::authz::ActionName;
use vigil_core::engine::{Command, Event, HumanCommand, Record, TrustTally};
use vigil_ledger::Ledger;

use crate::journal::{self, Recorded};

/// What promotion from advisory to autonomous asks of a runbook.
pub const PROMOTION_MIN_PROPOSALS: u32 = 30;
/// At least this share of its proposals approved, in percent.
pub const PROMOTION_MIN_APPROVED_PCT: u32 = 95;

/// A runbook's record with people.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProposalStats {
    /// Steps it proposed.
    pub proposed: u32,
    /// Of which a person approved.
    pub approved: u32,
    /// Of which a person rejected.
    pub rejected: u32,
    /// Runs whose verification failed.
    pub failed_verifications: u32,
}

impl ProposalStats {
    /// Whether it meets the bar for promotion (a person still decides).
    #[must_use]
    pub fn earned_promotion(&self) -> bool {
        self.proposed >= PROMOTION_MIN_PROPOSALS
            && self.approved * 100 >= PROMOTION_MIN_APPROVED_PCT * self.proposed
            && self.failed_verifications == 0
    }
}

/// Everything `vigil trust` reports.
#[derive(Debug, Clone, Default)]
pub struct TrustReport {
    /// Verified and failed runs per runbook and action.
    pub tallies: Vec<TrustTally>,
    /// Per runbook.
    pub proposals: BTreeMap<String, ProposalStats>,
}

#[derive(Default)]
struct IncidentTrack {
    runbook: Option<String>,
    compensating: bool,
    executed: BTreeMap<String, ActionName>,
    succeeded: BTreeSet<ActionName>,
}

/// Reads the whole ledger and tallies outcomes.
pub async fn tally(ledger: &Ledger) -> anyhow::Result<TrustReport> {
    let mut incidents: BTreeMap<String, IncidentTrack> = BTreeMap::new();
    let mut proposal_runbook: BTreeMap<String, String> = BTreeMap::new();
    let mut outcomes: BTreeMap<(String, ActionName), (u32, u32)> = BTreeMap::new();
    let mut people: BTreeMap<String, ProposalStats> = BTreeMap::new();
    let mut entries = journal::Entries::new(ledger, 0, u64::MAX);
    while let Some(entry) = entries.next().await? {
        // An entry this build cannot read counts for nothing (a tally, not a verification).
        match journal::decode(&entry) {
            Ok(Recorded::Command(record)) => note_command(
                record.command,
                &mut incidents,
                &mut proposal_runbook,
                &mut outcomes,
                &mut people,
            ),
            Ok(Recorded::Event(record)) => {
                if let Event::ActionFinished {
                    action_id,
                    incident_id,
                    outcome,
                } = record.event
                    && outcome.succeeded
                    && let Some(track) = incidents.get_mut(&incident_id)
                    && !track.compensating
                    && let Some(action) = track.executed.get(&action_id).copied()
                {
                    track.succeeded.insert(action);
                }
            }
            // Scrapes (batched or not) count for nothing here.
            Ok(Recorded::Session(_) | Recorded::ScrapeBatch(_)) | Err(_) => {}
        }
    }
    Ok(TrustReport {
        tallies: outcomes
            .into_iter()
            .map(|((runbook, action), (verified, failed))| TrustTally {
                runbook,
                action,
                verified,
                failed,
            })
            .collect(),
        proposals: people,
    })
}

fn note_command(
    command: Command,
    incidents: &mut BTreeMap<String, IncidentTrack>,
    proposal_runbook: &mut BTreeMap<String, String>,
    outcomes: &mut BTreeMap<(String, ActionName), (u32, u32)>,
    people: &mut BTreeMap<String, ProposalStats>,
) {
    match command {
        Command::Execute {
            action_id,
            incident_id,
            action,
            ..
        } => {
            let track = incidents.entry(incident_id).or_default();
            if !track.compensating {
                track.executed.insert(action_id, action.cedar_action());
            }
        }
        Command::Record(record) => match record {
            Record::RunbookSelected {
                incident_id,
                runbook_id,
                ..
            } => {
                let track = incidents.entry(incident_id).or_default();
                track.runbook = Some(runbook_id);
                track.compensating = false;
            }
            Record::CompensationStarted { incident_id, .. } => {
                incidents.entry(incident_id).or_default().compensating = true;
            }
            Record::StepProposed {
                incident_id,
                proposal_id,
                ..
            } => {
                if let Some(runbook) = incidents.get(&incident_id).and_then(|t| t.runbook.clone()) {
                    people.entry(runbook.clone()).or_default().proposed += 1;
                    proposal_runbook.insert(proposal_id, runbook);
                }
            }
            Record::HumanAction {
                command,
                accepted: true,
                ..
            } => match command {
                HumanCommand::Approve { proposal_id, .. } => {
                    if let Some(runbook) = proposal_runbook.get(&proposal_id) {
                        people.entry(runbook.clone()).or_default().approved += 1;
                    }
                }
                HumanCommand::Reject { proposal_id } => {
                    if let Some(runbook) = proposal_runbook.get(&proposal_id) {
                        people.entry(runbook.clone()).or_default().rejected += 1;
                    }
                }
                _ => {}
            },
            Record::VerificationPassed { incident_id, .. } => {
                count(incidents, outcomes, people, &incident_id, true);
            }
            Record::VerificationFailed { incident_id, .. } => {
                count(incidents, outcomes, people, &incident_id, false);
            }
            _ => {}
        },
        Command::Authorize { .. }
        | Command::AuthorizeHuman { .. }
        | Command::Page { .. }
        | Command::ResolvePage { .. }
        | Command::UpdatePage { .. }
        | Command::Investigate { .. }
        | Command::Notify { .. }
        | Command::WakeAt { .. } => {}
    }
}

/// Counts a verified (or failed) run for each distinct action that succeeded in it.
fn count(
    incidents: &mut BTreeMap<String, IncidentTrack>,
    outcomes: &mut BTreeMap<(String, ActionName), (u32, u32)>,
    people: &mut BTreeMap<String, ProposalStats>,
    incident_id: &str,
    verified: bool,
) {
    let Some(track) = incidents.get_mut(incident_id) else {
        return;
    };
    let Some(runbook) = track.runbook.clone() else {
        return;
    };
    if !verified {
        people
            .entry(runbook.clone())
            .or_default()
            .failed_verifications += 1;
    }
    for action in std::mem::take(&mut track.succeeded) {
        let tally = outcomes.entry((runbook.clone(), action)).or_default();
        if verified {
            tally.0 += 1;
        } else {
            tally.1 += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn promotion_needs_volume_approval_and_no_failure() {
        let stats = |proposed, approved, failed_verifications| ProposalStats {
            proposed,
            approved,
            rejected: proposed - approved,
            failed_verifications,
        };
        assert!(stats(30, 29, 0).earned_promotion());
        assert!(!stats(29, 29, 0).earned_promotion());
        assert!(!stats(40, 37, 0).earned_promotion());
        assert!(stats(40, 38, 0).earned_promotion());
        assert!(!stats(40, 40, 1).earned_promotion());
    }
}
