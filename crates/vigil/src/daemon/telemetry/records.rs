//! `vigil_records_total{record}`: the engine's decisions by kind (findings raised and cleared,
//! incidents opened, resolved and escalated, steps denied and proposed, ...), so that a
//! dashboard shows the incidents vigil handles without reading the ledger.

use vigil_core::engine::{Command, Record};

use super::Telemetry;

/// Every record kind, as the ledger spells it (`record` in its JSON), in the order shown.
pub(super) const RECORD_KINDS: &[&str] = &[
    "finding_raised",
    "finding_cleared",
    "finding_joined",
    "incident_opened",
    "incident_resolved",
    "incident_escalated",
    "diagnosed",
    "runbook_selected",
    "step_denied",
    "step_proposed",
    "guardrail_held",
    "human_action",
    "verification_started",
    "verification_passed",
    "verification_failed",
    "compensation_started",
    "effect_measured",
    "owner_notified",
    "page_resolved",
    "investigation_checked",
    "investigation_failed",
    "version_changed",
    "series_refused",
    "topology_grew",
];

/// The record's kind; matched exhaustively, so a new kind must be named here.
fn kind(record: &Record) -> &'static str {
    match record {
        Record::FindingRaised { .. } => "finding_raised",
        Record::FindingCleared { .. } => "finding_cleared",
        Record::FindingJoined { .. } => "finding_joined",
        Record::IncidentOpened { .. } => "incident_opened",
        Record::IncidentResolved { .. } => "incident_resolved",
        Record::IncidentEscalated { .. } => "incident_escalated",
        Record::Diagnosed { .. } => "diagnosed",
        Record::RunbookSelected { .. } => "runbook_selected",
        Record::StepDenied { .. } => "step_denied",
        Record::StepProposed { .. } => "step_proposed",
        Record::GuardrailHeld { .. } => "guardrail_held",
        Record::HumanAction { .. } => "human_action",
        Record::VerificationStarted { .. } => "verification_started",
        Record::VerificationPassed { .. } => "verification_passed",
        Record::VerificationFailed { .. } => "verification_failed",
        Record::CompensationStarted { .. } => "compensation_started",
        Record::EffectMeasured { .. } => "effect_measured",
        Record::OwnerNotified { .. } => "owner_notified",
        Record::PageResolved { .. } => "page_resolved",
        Record::InvestigationChecked { .. } => "investigation_checked",
        Record::InvestigationFailed { .. } => "investigation_failed",
        Record::VersionChanged { .. } => "version_changed",
        Record::SeriesRefused { .. } => "series_refused",
        Record::TopologyGrew { .. } => "topology_grew",
    }
}

impl Telemetry {
    /// Counts `command` by its record's kind, when it is a record.
    pub fn recorded(&self, command: &Command) {
        if let Command::Record(record) = command {
            let kind = kind(record);
            self.with(|state| *state.records.entry(kind).or_default() += 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kinds are the ledger's own spelling: serde's tag of each record.
    #[test]
    fn kinds_are_the_ledgers_tags() {
        let record = Record::IncidentResolved {
            incident_id: "inc-1".to_owned(),
            outcome: "verified".to_owned(),
            duration_ms: 1,
        };
        let tag = serde_json::to_value(&record).unwrap()["record"].clone();
        assert_eq!(tag, kind(&record));
        assert!(RECORD_KINDS.contains(&kind(&record)));
        let unique: std::collections::BTreeSet<_> = RECORD_KINDS.iter().collect();
        assert_eq!(unique.len(), RECORD_KINDS.len());
    }
}
