//! Running a runbook for an incident: choose it, authorize each step, act on the answer.

use std::collections::BTreeMap;

use super::incident::{Incident, Phase, Stage, idempotency_key};
use super::{Action, ActionOutcome, Command, Engine, Record};
use crate::authz::{
    ActionName, AttrValue, AuthzContext, AuthzDecision, AuthzRequest, Effect, Entity, EntityRef,
    EntityType,
};
use crate::runbook::{ActionKind, Mode, Runbook};
use crate::template::{Template, TemplateContext};
use crate::time::Timestamp;

impl Engine {
    /// Picks the first runbook that answers the incident's best hypothesis and starts it, or
    /// escalates when none does or a guardrail holds.
    pub(super) fn choose_runbook(
        &mut self,
        incident: &mut Incident,
        now: Timestamp,
        out: &mut Vec<Command>,
    ) {
        let Some(best) = incident.diagnosis.best().cloned() else {
            self.escalate(
                incident,
                "the diagnoser had no hypothesis",
                "Look at the finding's evidence.",
                out,
            );
            return;
        };
        let chosen = self.config.runbooks.iter().position(|runbook| {
            runbook.hypothesis == best.kind
                && best.confidence >= runbook.min_confidence
                && (runbook.detectors.is_empty()
                    || runbook.detectors.contains(&incident.finding.detector))
        });
        let Some(runbook_idx) = chosen else {
            let reason = format!(
                "no runbook answers `{}` at {:.0}% confidence, so vigil has no safe fix",
                best.kind.as_str(),
                best.confidence * 100.0
            );
            self.escalate(
                incident,
                &reason,
                "Read the diagnosis and decide what to change.",
                out,
            );
            return;
        };
        let Some(runbook) = self.config.runbooks.get(runbook_idx) else {
            return;
        };
        incident.runbook_idx = Some(runbook_idx);
        incident.mode = self.config.mode.stricter(runbook.mode);
        out.push(Command::Record(Record::RunbookSelected {
            incident_id: incident.id.clone(),
            runbook_id: runbook.id.clone(),
            mode: incident.mode,
        }));
        let target = (
            incident.finding.source.clone(),
            incident.finding.subject.value.clone(),
        );
        if let Some(last) = self.last_acted.get(&target).copied() {
            let elapsed_ms = now.millis_since(last);
            if elapsed_ms < runbook.guardrails.cooldown_per_target_ms {
                let detail = format!(
                    "vigil changed this key {}s ago; the cooldown is {}s",
                    elapsed_ms / 1000,
                    runbook.guardrails.cooldown_per_target_ms / 1000
                );
                out.push(Command::Record(Record::GuardrailHeld {
                    incident_id: incident.id.clone(),
                    guardrail: "cooldown_per_target".to_owned(),
                    detail: detail.clone(),
                }));
                let reason = format!("the cooldown guardrail held: {detail}");
                self.escalate(incident, &reason, "The key ran away again soon after vigil's last change; find out why before acting again.", out);
                return;
            }
        }
        if incident.attempt >= runbook.guardrails.max_attempts_per_incident {
            out.push(Command::Record(Record::GuardrailHeld {
                incident_id: incident.id.clone(),
                guardrail: "max_attempts_per_incident".to_owned(),
                detail: format!("{} attempts made", incident.attempt),
            }));
            self.escalate(
                incident,
                "the attempts guardrail held",
                "Decide by hand.",
                out,
            );
            return;
        }
        incident.attempt += 1;
        self.start_step(incident, 0, Phase::Forward, now, out);
    }

    /// Asks the policy engine whether step `step_idx` may run.
    pub(super) fn start_step(
        &self,
        incident: &mut Incident,
        step_idx: usize,
        phase: Phase,
        now: Timestamp,
        out: &mut Vec<Command>,
    ) {
        let Some((runbook, action_kind, _)) = self.step_parts(incident, step_idx, phase) else {
            return;
        };
        let request = self.authz_request(incident, runbook, action_kind.cedar_action(), phase, now);
        let request_id = incident.next_id("authz");
        incident.stage = Stage::Authorizing {
            step_idx,
            phase,
            request_id: request_id.clone(),
        };
        out.push(Command::Authorize {
            request_id,
            incident_id: incident.id.clone(),
            request,
        });
    }

    /// The runbook, action and parameters of one step in one phase.
    pub(super) fn step_parts(
        &self,
        incident: &Incident,
        step_idx: usize,
        phase: Phase,
    ) -> Option<(&Runbook, ActionKind, &BTreeMap<String, Template>)> {
        let runbook = self.config.runbooks.get(incident.runbook_idx?)?;
        let step = runbook.steps.get(step_idx)?;
        match phase {
            Phase::Forward => Some((runbook, step.action, &step.params)),
            Phase::Compensation => {
                let compensation = step.compensation.as_ref()?;
                Some((runbook, compensation.action, &compensation.params))
            }
        }
    }

    fn authz_request(
        &self,
        incident: &Incident,
        runbook: &Runbook,
        action: ActionName,
        phase: Phase,
        now: Timestamp,
    ) -> AuthzRequest {
        let subject = &incident.finding.subject;
        let team = subject.team.clone().unwrap_or_default();
        let principal = Entity {
            uid: EntityRef {
                entity_type: EntityType::Runbook,
                id: runbook.id.clone(),
            },
            attrs: BTreeMap::from([
                (
                    "mode".to_owned(),
                    AttrValue::String(runbook.mode.as_str().to_owned()),
                ),
                ("trust".to_owned(), AttrValue::String(runbook.trust.clone())),
            ]),
            parents: Vec::new(),
        };
        let resource = Entity {
            uid: EntityRef {
                entity_type: EntityType::ApiKey,
                id: subject.value.clone(),
            },
            attrs: BTreeMap::from([
                (
                    "alias".to_owned(),
                    AttrValue::String(subject.alias.clone().unwrap_or_default()),
                ),
                ("team".to_owned(), AttrValue::String(team.clone())),
                (
                    "tier".to_owned(),
                    AttrValue::String(self.config.key_tier(subject).to_owned()),
                ),
                (
                    "environment".to_owned(),
                    AttrValue::String(self.config.environment.clone()),
                ),
            ]),
            parents: if team.is_empty() {
                Vec::new()
            } else {
                vec![EntityRef {
                    entity_type: EntityType::Team,
                    id: team,
                }]
            },
        };
        let confidence = incident
            .diagnosis
            .best()
            .map_or(0.0, |best| best.confidence);
        let context = AuthzContext {
            mode: incident.mode,
            severity: incident.finding.severity.as_str().to_owned(),
            blast_radius: 1,
            attempt: i64::from(incident.attempt),
            incident_age_secs: now.millis_since(incident.opened_at) / 1000,
            hour_utc: i64::from(now.hour_utc()),
            detector: incident.finding.detector.clone(),
            confidence_pct: (confidence * 100.0).round() as i64,
            is_compensation: phase == Phase::Compensation,
        };
        AuthzRequest {
            principal,
            action,
            resource,
            context,
        }
    }

    /// Handles the policy engine's answer.
    pub(super) fn on_decision(
        &mut self,
        incident_id: &str,
        request_id: &str,
        decision: &AuthzDecision,
        now: Timestamp,
        out: &mut Vec<Command>,
    ) {
        let Some(mut incident) = self.incidents.remove(incident_id) else {
            return;
        };
        let Stage::Authorizing {
            step_idx,
            phase,
            request_id: expected,
        } = &incident.stage
        else {
            self.incidents.insert(incident.id.clone(), incident);
            return;
        };
        if expected != request_id {
            self.incidents.insert(incident.id.clone(), incident);
            return;
        }
        let (step_idx, phase) = (*step_idx, *phase);
        let step_id = self.step_id(&incident, step_idx);
        match decision.effect {
            Effect::Allow => {
                let Some(action) = self.build_action(&incident, step_idx, phase) else {
                    self.incidents.insert(incident.id.clone(), incident);
                    return;
                };
                if phase == Phase::Forward && incident.mode == Mode::Advisory {
                    incident
                        .history
                        .push(format!("proposed (advisory mode): {}", action.describe()));
                    out.push(Command::Record(Record::StepProposed {
                        incident_id: incident.id.clone(),
                        step_id,
                        action,
                    }));
                    incident.stage = Stage::Proposed;
                } else {
                    let action_id = incident.next_id("act");
                    let idempotency_key =
                        idempotency_key(&incident.id, &step_id, phase, incident.attempt);
                    incident.stage = Stage::Acting {
                        step_idx,
                        phase,
                        action_id: action_id.clone(),
                    };
                    out.push(Command::Execute {
                        action_id,
                        incident_id: incident.id.clone(),
                        idempotency_key,
                        action,
                    });
                }
            }
            Effect::Deny => {
                let policies = if decision.determining_policies.is_empty() {
                    "no policy permits it (default deny)".to_owned()
                } else {
                    format!("denied by {}", decision.determining_policies.join(", "))
                };
                incident
                    .history
                    .push(format!("step `{step_id}` ({}): {policies}", phase.as_str()));
                out.push(Command::Record(Record::StepDenied {
                    incident_id: incident.id.clone(),
                    step_id: step_id.clone(),
                    determining_policies: decision.determining_policies.clone(),
                }));
                match phase {
                    Phase::Forward if !incident.completed.is_empty() => {
                        let reason = format!("policy refused step `{step_id}`: {policies}");
                        self.begin_compensation(&mut incident, &reason, now, out);
                    }
                    Phase::Forward => {
                        let reason = format!(
                            "policy refused the fix `{step_id}`: {policies}; vigil has no safe fix"
                        );
                        self.escalate(
                            &mut incident,
                            &reason,
                            "Decide by hand whether to apply the fix.",
                            out,
                        );
                    }
                    Phase::Compensation => {
                        let reason = format!(
                            "policy refused to undo `{step_id}`: {policies}; the change is still in place"
                        );
                        self.escalate(
                            &mut incident,
                            &reason,
                            "Check the key's state and undo the change by hand if needed.",
                            out,
                        );
                    }
                }
            }
        }
        self.incidents.insert(incident.id.clone(), incident);
    }

    pub(super) fn step_id(&self, incident: &Incident, step_idx: usize) -> String {
        incident
            .runbook_idx
            .and_then(|idx| self.config.runbooks.get(idx))
            .and_then(|runbook| runbook.steps.get(step_idx))
            .map_or_else(|| format!("step-{step_idx}"), |step| step.id.clone())
    }

    fn build_action(&self, incident: &Incident, step_idx: usize, phase: Phase) -> Option<Action> {
        let (_, kind, params) = self.step_parts(incident, step_idx, phase)?;
        let subject = &incident.finding.subject;
        let context = TemplateContext {
            incident_id: incident.id.clone(),
            key: subject.value.clone(),
            key_alias: subject.display_name(),
            team: subject.team.clone().unwrap_or_default(),
            source: incident.finding.source.clone(),
        };
        let key = params.get("key")?.render(&context);
        let source = incident.finding.source.clone();
        Some(match kind {
            ActionKind::LitellmBlockKey => Action::LitellmBlockKey { source, key },
            ActionKind::LitellmUnblockKey => Action::LitellmUnblockKey { source, key },
        })
    }

    /// Handles an action target's answer.
    pub(super) fn on_action_finished(
        &mut self,
        incident_id: &str,
        action_id: &str,
        outcome: &ActionOutcome,
        now: Timestamp,
        out: &mut Vec<Command>,
    ) {
        let Some(mut incident) = self.incidents.remove(incident_id) else {
            return;
        };
        let Stage::Acting {
            step_idx,
            phase,
            action_id: expected,
        } = &incident.stage
        else {
            self.incidents.insert(incident.id.clone(), incident);
            return;
        };
        if expected != action_id {
            self.incidents.insert(incident.id.clone(), incident);
            return;
        }
        let (step_idx, phase) = (*step_idx, *phase);
        let step_id = self.step_id(&incident, step_idx);
        let status = outcome
            .http_status
            .map_or_else(String::new, |status| format!(" (HTTP {status})"));
        let described = self
            .build_action(&incident, step_idx, phase)
            .map_or_else(|| step_id.clone(), |action| action.describe());
        incident
            .history
            .push(format!("{described}: {}{status}", outcome.detail));
        let target = (
            incident.finding.source.clone(),
            incident.finding.subject.value.clone(),
        );
        match (phase, outcome.succeeded) {
            (Phase::Forward, true) => {
                self.last_acted.insert(target, now);
                incident.completed.push(step_idx);
                let n_steps = incident
                    .runbook_idx
                    .and_then(|idx| self.config.runbooks.get(idx))
                    .map_or(0, |runbook| runbook.steps.len());
                if step_idx + 1 < n_steps {
                    self.start_step(&mut incident, step_idx + 1, Phase::Forward, now, out);
                } else {
                    self.start_verification(&mut incident, now, out);
                }
            }
            (Phase::Forward, false) => {
                let reason = format!("step `{step_id}` failed: {}{status}", outcome.detail);
                if incident.completed.is_empty() {
                    self.escalate(&mut incident, &reason, "The fix could not be applied; apply it by hand or find out why the target refused.", out);
                } else {
                    self.begin_compensation(&mut incident, &reason, now, out);
                }
            }
            (Phase::Compensation, true) => {
                self.last_acted.insert(target, now);
                self.continue_compensation(&mut incident, now, out);
            }
            (Phase::Compensation, false) => {
                let reason = format!(
                    "undoing `{step_id}` failed: {}{status}; the change may still be in place",
                    outcome.detail
                );
                self.escalate(
                    &mut incident,
                    &reason,
                    "Check the key's state on the gateway and undo the change by hand.",
                    out,
                );
            }
        }
        self.incidents.insert(incident.id.clone(), incident);
    }
}
