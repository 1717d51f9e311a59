//! After the last step: verification, and when it fails, compensation and escalation.

use super::incident::{Escalation, Incident, Phase, Stage};
use super::packet::Ask;
use super::{Command, Engine, Page, Record, WhyPacket};
use crate::detector::{Evidence, Severity};
use crate::human::OriginalUnit;
use crate::runbook::VerificationCheck;
use crate::time::Timestamp;

impl Engine {
    pub(super) fn start_verification(
        &self,
        incident: &mut Incident,
        now: Timestamp,
        out: &mut Vec<Command>,
    ) {
        let Some(runbook) = incident
            .runbook_idx
            .and_then(|idx| self.config.runbooks.get(idx))
        else {
            return;
        };
        let verification = &runbook.verification;
        let deadline = now.plus_millis(verification.within_ms);
        let numbers = self.config.numbers;
        let within = numbers.duration_ms(verification.within_ms, OriginalUnit::Seconds);
        let unit = incident.finding.evidence.rate_unit();
        let condition = format!(
            "the {} of key {} stays under {} for {} consecutive scrapes within {within}",
            unit.rate(),
            incident.finding.subject.display_name(),
            numbers.per_second(verification.threshold_per_sec, unit.word()),
            verification.hold_samples,
        );
        let condition = match verification.check {
            VerificationCheck::KeyRateBelow => condition,
            VerificationCheck::FindingClears => format!(
                "detector {} clears its finding on {} within {within}",
                incident.finding.detector,
                incident.finding.subject.display_name(),
            ),
            VerificationCheck::StepsSucceed => {
                "every step succeeded, as its target confirmed".to_owned()
            }
            VerificationCheck::UsersServed => format!(
                "detector {} (what users get) has no open finding {within} from now",
                verification.users_detector.as_deref().unwrap_or("-"),
            ),
        };
        incident.stage = Stage::Verifying {
            started_at: now,
            deadline,
            n_ok: 0,
            observed: Vec::new(),
        };
        out.push(Command::Record(Record::VerificationStarted {
            incident_id: incident.id.clone(),
            condition,
            deadline,
        }));
        out.push(Command::WakeAt { at: deadline });
    }

    /// The check could not decide: its detector saw nothing of the subject since the change
    /// (`why`). Nobody claims the fix worked and nothing is undone on a guess: the change
    /// stays and a person is asked, with what is left in place.
    pub(super) fn verification_undecided(
        &mut self,
        incident_id: &str,
        why: &str,
        out: &mut Vec<Command>,
    ) {
        self.with_incident(
            incident_id,
            observed_while_verifying,
            |engine, incident, observed| {
                let reason = format!("the fix could not be verified: {why}");
                record_failed_verification(incident, &reason, observed, out);
                let ask = format!(
                    "Check what users of {} get (the gateway's failed requests): keep vigil's change if they are served, undo it (see what is left in place) if not.",
                    incident.finding.subject.readable_name()
                );
                engine.escalate(
                    incident,
                    &format!("{reason}; vigil's change is left in place"),
                    Ask::Situation(ask),
                    out,
                );
            },
        );
    }

    /// The deadline passed without the verification holding.
    pub(super) fn verification_failed(
        &mut self,
        incident_id: &str,
        now: Timestamp,
        out: &mut Vec<Command>,
    ) {
        self.count_outcome(incident_id, false);
        self.with_incident(
            incident_id,
            observed_while_verifying,
            |engine, incident, observed| {
                let threshold = incident
                    .runbook_idx
                    .and_then(|idx| engine.config.runbooks.get(idx))
                    .map_or(0.0, |runbook| runbook.verification.threshold_per_sec);
                let check = incident
                    .runbook_idx
                    .and_then(|idx| engine.config.runbooks.get(idx))
                    .map_or(VerificationCheck::KeyRateBelow, |runbook| {
                        runbook.verification.check
                    });
                let unit = incident.finding.evidence.rate_unit().word();
                let reason = match observed.last() {
                    _ if check == VerificationCheck::UsersServed => format!(
                        "the fix did not serve users: detector {} still sees users hurt at the deadline",
                        incident
                            .runbook_idx
                            .and_then(|idx| engine.config.runbooks.get(idx))
                            .and_then(|runbook| runbook.verification.users_detector.clone())
                            .unwrap_or_default()
                    ),
                    _ if check == VerificationCheck::FindingClears => format!(
                        "the fix did not work: detector {} still sees the problem on {} at the deadline",
                        incident.finding.detector,
                        incident.finding.subject.display_name()
                    ),
                    Some(last) => format!(
                        "the fix did not work: key {} still uses {} (must be under {})",
                        incident.finding.subject.display_name(),
                        engine.config.numbers.per_second(last.value, unit),
                        engine.config.numbers.per_second(threshold, unit)
                    ),
                    None => format!(
                        "the fix could not be verified: no fresh rate for key {} arrived before the deadline",
                        incident.finding.subject.display_name()
                    ),
                };
                record_failed_verification(incident, &reason, observed, out);
                // Judged by its measured effect when the runbook asks: the next rung, or kept
                // and escalated as partly fixed; otherwise undone.
                let keeps = incident
                    .runbook_idx
                    .and_then(|idx| engine.config.runbooks.get(idx))
                    .is_some_and(|runbook| runbook.verification.keep_if_reduced_by.is_some());
                if keeps {
                    let effect = engine.measure_effect(incident, now);
                    let verdict = engine.judge_effect(incident, effect.as_ref());
                    if verdict != super::effect::Verdict::NoEffect {
                        engine.act_on_effect(incident, verdict, effect.as_ref(), now, out);
                        return;
                    }
                    engine.act_on_effect(incident, verdict, effect.as_ref(), now, out);
                }
                engine.begin_compensation(incident, &reason, now, out);
            },
        );
    }

    pub(super) fn begin_compensation(
        &self,
        incident: &mut Incident,
        reason: &str,
        now: Timestamp,
        out: &mut Vec<Command>,
    ) {
        incident.escalation = Some(Escalation {
            reason: reason.to_owned(),
            ask: Ask::cause(
                "vigil's fix did not hold and was undone; the problem is still live. Look at the key's traffic and decide whether to block or revoke it by hand.",
            ),
        });
        // Undo in reverse order; steps without a compensation are skipped. `to_compensate`
        // is a stack, so the step to undo first goes last.
        let to_undo: Vec<usize> = incident
            .completed
            .iter()
            .copied()
            .filter(|idx| {
                self.step_parts(incident, *idx, Phase::Compensation)
                    .is_some()
            })
            .collect();
        if to_undo.is_empty() {
            self.escalate_with_current(incident, out);
            return;
        }
        let step_ids = to_undo
            .iter()
            .rev()
            .map(|idx| self.step_id(incident, *idx))
            .collect();
        out.push(Command::Record(Record::CompensationStarted {
            incident_id: incident.id.clone(),
            step_ids,
        }));
        incident.to_compensate = to_undo;
        self.continue_compensation(incident, now, out);
    }

    pub(super) fn continue_compensation(
        &self,
        incident: &mut Incident,
        now: Timestamp,
        out: &mut Vec<Command>,
    ) {
        match incident.to_compensate.pop() {
            Some(step_idx) => self.start_step(incident, step_idx, Phase::Compensation, now, out),
            None if incident.undo_on_recovery => {
                out.push(Command::Record(Record::IncidentResolved {
                    incident_id: incident.id.clone(),
                    outcome: "the failing side recovered and stayed clear; vigil undid its temporary change"
                        .to_owned(),
                    duration_ms: now.millis_since(incident.opened_at),
                }));
                incident.stage = Stage::Done;
            }
            None => self.escalate_with_current(incident, out),
        }
    }

    /// A held change's finding has been clear for the hold: undo the change, each step
    /// authorized by Cedar, and resolve when done.
    pub(super) fn undo_after_recovery(
        &self,
        incident: &mut Incident,
        now: Timestamp,
        out: &mut Vec<Command>,
    ) {
        let to_undo: Vec<usize> = incident
            .completed
            .iter()
            .copied()
            .filter(|idx| {
                self.step_parts(incident, *idx, Phase::Compensation)
                    .is_some()
            })
            .collect();
        incident.undo_on_recovery = true;
        incident
            .history
            .push("the failing side recovered; undoing vigil's temporary change".to_owned());
        if !to_undo.is_empty() {
            let step_ids = to_undo
                .iter()
                .rev()
                .map(|idx| self.step_id(incident, *idx))
                .collect();
            out.push(Command::Record(Record::CompensationStarted {
                incident_id: incident.id.clone(),
                step_ids,
            }));
        }
        incident.to_compensate = to_undo;
        self.continue_compensation(incident, now, out);
    }

    fn escalate_with_current(&self, incident: &mut Incident, out: &mut Vec<Command>) {
        let escalation = incident.escalation.clone().unwrap_or(Escalation {
            reason: "vigil could not fix the incident".to_owned(),
            ask: Ask::cause("Look at the evidence."),
        });
        self.escalate(incident, &escalation.reason, escalation.ask, out);
    }

    /// Pages a human, once per incident. Sessions with a topology get the cross-layer packet
    /// ([`super::packet`]); sessions recorded before it keep the packet they ran with.
    pub(super) fn escalate(
        &self,
        incident: &mut Incident,
        reason: &str,
        ask: Ask,
        out: &mut Vec<Command>,
    ) {
        if matches!(incident.stage, Stage::Paging { .. }) {
            return;
        }
        let page_id = incident.next_id("page");
        let subject = if self.config.topology.is_some() {
            incident.finding.subject.readable_name()
        } else {
            incident.finding.subject.display_name()
        };
        // A spike that vigil cannot fix pages; an SLO rule keeps its own severity (the
        // Workbook's slow-burn rule is a ticket, not a page).
        let (severity, what) = match &incident.finding.evidence {
            Evidence::Spike(evidence) => (
                incident.finding.severity.max(Severity::Page),
                format!("{} on key {subject}", evidence.unit.spike()),
            ),
            Evidence::BurnRate(_) => (
                incident.finding.severity,
                format!("error budget burning for {subject}"),
            ),
            Evidence::Threshold(evidence) => (
                incident.finding.severity,
                format!("{} of {subject} past its limit", evidence.describe),
            ),
            Evidence::ProportionDrop(evidence) => (
                incident.finding.severity,
                format!("{} of {subject} dropped", evidence.describe),
            ),
            Evidence::Anomaly(evidence) => (
                incident.finding.severity,
                format!(
                    "{} of {subject} far outside its usual range",
                    evidence.describe
                ),
            ),
            Evidence::Schedule(evidence) => (
                incident.finding.severity,
                format!("scheduled check {} did not pass", evidence.runbook),
            ),
        };
        let why = if self.config.topology.is_some() {
            self.why_packet(incident, reason, &ask)
        } else {
            legacy_packet(incident, reason, ask.legacy())
        };
        incident.escalation = Some(Escalation {
            reason: reason.to_owned(),
            ask,
        });
        let page = Page {
            severity,
            title: format!("vigil needs a human: {what} ({})", incident.finding.source),
            why,
        };
        incident.page_title = Some(page.title.clone());
        incident.stage = Stage::Paging {
            page_id: page_id.clone(),
        };
        out.push(Command::Page {
            page_id,
            incident_id: incident.id.clone(),
            page,
        });
    }
}

/// The packet of sessions recorded before the cross-layer packet, word for word.
fn legacy_packet(incident: &Incident, reason: &str, ask: &str) -> WhyPacket {
    let diagnosis = incident.ranked.as_ref().unwrap_or(&incident.diagnosis);
    let evidence = diagnosis.best().map_or_else(Vec::new, |best| {
        let mut evidence = best.evidence.clone();
        evidence.extend(
            best.support
                .iter()
                .map(|fact| format!("[{}] {}", fact.layer.as_str(), fact.text)),
        );
        evidence.extend(
            best.against
                .iter()
                .map(|fact| format!("[{}] against: {}", fact.layer.as_str(), fact.text)),
        );
        evidence
    });
    WhyPacket {
        incident_id: incident.id.clone(),
        summary: diagnosis.why.clone(),
        evidence,
        actions: incident.history.clone(),
        reason: reason.to_owned(),
        ask: ask.to_owned(),
        cause: String::new(),
        chain: Vec::new(),
        against: Vec::new(),
        left_in_place: Vec::new(),
        commands: Vec::new(),
        assistant: incident.assistant.note.clone(),
    }
}

/// What a verifying incident observed, for the handlers that end its verification.
fn observed_while_verifying(incident: &Incident) -> Option<Vec<crate::detector::Point>> {
    match &incident.stage {
        Stage::Verifying { observed, .. } => Some(observed.clone()),
        _ => None,
    }
}

/// A verification that did not hold, in the incident's history and the ledger.
fn record_failed_verification(
    incident: &mut Incident,
    reason: &str,
    observed: Vec<crate::detector::Point>,
    out: &mut Vec<Command>,
) {
    incident
        .history
        .push(format!("verification failed: {reason}"));
    out.push(Command::Record(Record::VerificationFailed {
        incident_id: incident.id.clone(),
        reason: reason.to_owned(),
        observed,
    }));
}
