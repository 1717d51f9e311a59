//! Running a runbook for an incident: choose it, authorize each step, act on the answer.

use std::collections::BTreeMap;

use super::config::DEFAULT_KEY_TIER;
use super::human::action_hash;
use super::incident::{Incident, Phase, Stage, idempotency_key};
use super::packet::Ask;
use super::{Action, ActionOutcome, Command, Engine, Record};
use crate::action::{ActionKind, StepParams};
use crate::authz::{
    ActionName, AttrValue, AuthzContext, AuthzDecision, AuthzRequest, Effect, Entity, EntityRef,
    EntityType, FailoverFacts, Mode, TrustTally,
};
use crate::runbook::Runbook;
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
                Ask::situation("Look at the finding's evidence."),
                out,
            );
            return;
        };
        let chosen = self.config.runbooks.iter().position(|runbook| {
            runbook.hypothesis == best.kind
                && (runbook.schedule.is_none() || runbook.id == incident.finding.subject.value)
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
                Ask::cause("Read the diagnosis and decide what to change."),
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
        let runbook_id = runbook.id.clone();
        let guardrails = runbook.guardrails.clone();
        let target = self.step_resource(incident, 0, Phase::Forward);
        if let Some(kill) = self.kill_switch(
            &runbook_id,
            target.as_ref().map(|t| (t.entity_type, t.id.as_str())),
        ) {
            self.hold(incident, "kill_switch", &kill, out);
            let reason = format!("vigil did not act: {kill}");
            self.escalate(
                incident,
                &reason,
                Ask::cause("Decide by hand; vigil is switched off here."),
                out,
            );
            return;
        }
        // A schedule bounds how often a scheduled runbook runs; the cooldown is for fixes.
        let cooldown_applies = incident.diagnosis.best().map(|best| best.kind)
            != Some(crate::diagnosis::HypothesisKind::Scheduled);
        if let Some(last) = target
            .as_ref()
            .filter(|_| cooldown_applies)
            .and_then(|target| {
                self.last_acted
                    .get(&(target.entity_type, target.id.clone()))
            })
            .copied()
        {
            let elapsed_ms = now.millis_since(last);
            if elapsed_ms < guardrails.cooldown_per_target_ms {
                let numbers = self.config.numbers;
                let detail = format!(
                    "vigil changed this target {} ago; the cooldown is {}",
                    numbers.duration_ms(elapsed_ms, crate::human::OriginalUnit::Seconds),
                    numbers.duration_ms(
                        guardrails.cooldown_per_target_ms,
                        crate::human::OriginalUnit::Seconds
                    )
                );
                self.hold(incident, "cooldown_per_target", &detail, out);
                let reason = format!("the cooldown guardrail held: {detail}");
                self.escalate(incident, &reason, Ask::situation("The problem came back soon after vigil's last change; find out why before acting again."), out);
                return;
            }
        }
        if incident.attempt >= guardrails.max_attempts_per_incident {
            let detail = format!("{} attempts made", incident.attempt);
            self.hold(incident, "max_attempts_per_incident", &detail, out);
            self.escalate(
                incident,
                "the attempts guardrail held",
                Ask::cause("Decide by hand."),
                out,
            );
            return;
        }
        // Rate and concurrency limits do not page: the run becomes a proposal for a human.
        let runs = self.runs_started.entry(runbook_id.clone()).or_default();
        while runs
            .front()
            .is_some_and(|at| now.millis_since(*at) >= 3_600_000)
        {
            runs.pop_front();
        }
        let n_runs_last_hour = runs.len();
        let n_active = self.n_active_runs();
        if n_runs_last_hour >= guardrails.max_runs_per_hour as usize {
            let detail = format!(
                "runbook {runbook_id} started {n_runs_last_hour} runs in the last hour (limit {})",
                guardrails.max_runs_per_hour
            );
            self.hold(incident, "max_runs_per_hour", &detail, out);
            incident.mode = Mode::Advisory;
            incident.advisory_why = Some(detail);
        } else if n_active >= self.config.limits.max_concurrent_runs {
            let detail = format!(
                "{n_active} runs are acting already (limit {})",
                self.config.limits.max_concurrent_runs
            );
            self.hold(incident, "max_concurrent_runs", &detail, out);
            incident.mode = Mode::Advisory;
            incident.advisory_why = Some(detail);
        }
        if let Some(runs) = self.runs_started.get_mut(&runbook_id) {
            runs.push_back(now);
        }
        incident.attempt += 1;
        self.start_step(incident, 0, Phase::Forward, now, out);
    }

    /// Records that a guardrail held.
    /// Expected activity (a rhythm, announced work): noted, not acted on, nobody paged; it
    /// ends when the finding clears.
    pub(super) fn hold_expected(&self, incident: &mut Incident, out: &mut Vec<Command>) {
        let detail = incident
            .diagnosis
            .best()
            .and_then(|best| best.evidence.first().cloned())
            .unwrap_or_default();
        self.hold(incident, "expected_activity", &detail, out);
    }

    pub(super) fn hold(
        &self,
        incident: &mut Incident,
        guardrail: &str,
        detail: &str,
        out: &mut Vec<Command>,
    ) {
        incident
            .history
            .push(format!("guardrail {guardrail} held: {detail}"));
        out.push(Command::Record(Record::GuardrailHeld {
            incident_id: incident.id.clone(),
            guardrail: guardrail.to_owned(),
            detail: detail.to_owned(),
        }));
    }

    /// Runs that are asking, acting or verifying right now.
    fn n_active_runs(&self) -> usize {
        self.incidents
            .values()
            .filter(|incident| {
                matches!(
                    incident.stage,
                    Stage::Authorizing { .. } | Stage::Acting { .. } | Stage::Verifying { .. }
                )
            })
            .count()
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
        let Some(resource) = self.step_resource(incident, step_idx, phase) else {
            return;
        };
        let mut request = self.authz_request(
            incident,
            runbook,
            action_kind.cedar_action(),
            resource,
            phase,
            now,
        );
        if action_kind == ActionKind::LitellmSetFallbacks {
            request.context.failover = self.failover_facts(incident, step_idx, phase);
        }
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

    /// The resource a step acts on, from its rendered resource parameter.
    pub(super) fn step_resource(
        &self,
        incident: &Incident,
        step_idx: usize,
        phase: Phase,
    ) -> Option<EntityRef> {
        let (_, kind, params) = self.step_parts(incident, step_idx, phase)?;
        let id = params
            .get(kind.resource_param())?
            .render(&self.template_context(incident));
        Some(EntityRef {
            entity_type: kind.cedar_action().resource_type(),
            id,
        })
    }

    /// What a step that sets fallbacks moves traffic between, from the topology (sessions
    /// with one; the others send Cedar no failover facts, as they always did).
    fn failover_facts(
        &self,
        incident: &Incident,
        step_idx: usize,
        phase: Phase,
    ) -> Option<FailoverFacts> {
        let grouping = self.grouping.as_ref()?;
        let (_, _, params) = self.step_parts(incident, step_idx, phase)?;
        let context = self.template_context(incident);
        let model = params.get("model")?.render(&context);
        let targets: Vec<String> = params
            .get("fallbacks")?
            .render(&context)
            .split(',')
            .map(str::trim)
            .filter(|target| !target.is_empty())
            .map(str::to_owned)
            .collect();
        Some(crate::topology::compat::failover_facts(
            &grouping.topology,
            &model,
            &targets,
        ))
    }

    fn template_context(&self, incident: &Incident) -> TemplateContext {
        let subject = &incident.finding.subject;
        let change = incident
            .diagnosis
            .best()
            .and_then(|best| best.change.as_ref());
        TemplateContext {
            incident_id: incident.id.clone(),
            key: subject.value.clone(),
            key_alias: subject.display_name(),
            team: subject.team.clone().unwrap_or_default(),
            source: incident.finding.source.clone(),
            change_from: change.map(|c| c.from.clone()).unwrap_or_default(),
            change_to: change.map(|c| c.to.clone()).unwrap_or_default(),
            cause: incident
                .diagnosis
                .best()
                .and_then(|best| best.subject.as_ref())
                .map_or_else(|| subject.value.clone(), |cause| cause.value.clone()),
        }
    }

    fn authz_request(
        &self,
        incident: &Incident,
        runbook: &Runbook,
        action: ActionName,
        resource: EntityRef,
        phase: Phase,
        now: Timestamp,
    ) -> AuthzRequest {
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
        let (resource, blast_radius) = self.resource_entity(incident, resource);
        let confidence = incident
            .diagnosis
            .best()
            .map_or(0.0, |best| best.confidence);
        let context = AuthzContext {
            mode: incident.mode,
            severity: incident.finding.severity.as_str().to_owned(),
            blast_radius,
            attempt: i64::from(incident.attempt),
            incident_age_secs: now.millis_since(incident.opened_at) / 1000,
            hour_utc: i64::from(now.hour_utc()),
            detector: incident.finding.detector.clone(),
            confidence_pct: (confidence * 100.0).round() as i64,
            is_compensation: phase == Phase::Compensation,
            trust_pct: self.trust_pct(&runbook.id, action),
            failover: None,
            assistant_agrees: incident.assistant.agrees,
        };
        AuthzRequest {
            principal,
            action,
            resource,
            context,
        }
    }

    /// The entity a step acts on, with the attributes and parents policies see, and how many
    /// keys, teams or users acting on it touches (its blast radius).
    pub(super) fn resource_entity(
        &self,
        incident: &Incident,
        resource: EntityRef,
    ) -> (Entity, i64) {
        // The key a step acts on is the finding's, or the one the best hypothesis blames
        // (a key using up a provider's shared quota): either way policies see its alias,
        // team and tier.
        let blamed = incident
            .diagnosis
            .best()
            .and_then(|best| best.subject.as_ref())
            .filter(|blamed| {
                blamed.value == resource.id && blamed.value != incident.finding.subject.value
            });
        let subject = blamed.unwrap_or(&incident.finding.subject);
        let environment = AttrValue::String(self.config.environment.clone());
        let info = self.config.resource(resource.entity_type, &resource.id);
        let tier = AttrValue::String(
            info.map_or(DEFAULT_KEY_TIER, |info| info.tier.as_str())
                .to_owned(),
        );
        let owner = AttrValue::String(info.map_or_else(String::new, |info| info.owner.clone()));
        let mut blast_radius = 1;
        let (attrs, parents) = match resource.entity_type {
            EntityType::ApiKey => {
                // The incident's own key carries its alias and team; another key only its id.
                let same = resource.id == subject.value;
                let team = if same {
                    subject.team.clone().unwrap_or_default()
                } else {
                    String::new()
                };
                let tier = if same {
                    self.config.key_tier(subject).to_owned()
                } else {
                    DEFAULT_KEY_TIER.to_owned()
                };
                let alias = if same {
                    subject.alias.clone().unwrap_or_default()
                } else {
                    String::new()
                };
                let parents = if team.is_empty() {
                    Vec::new()
                } else {
                    vec![EntityRef {
                        entity_type: EntityType::Team,
                        id: team.clone(),
                    }]
                };
                (
                    BTreeMap::from([
                        ("alias".to_owned(), AttrValue::String(alias)),
                        ("team".to_owned(), AttrValue::String(team)),
                        ("tier".to_owned(), AttrValue::String(tier)),
                        ("environment".to_owned(), environment),
                    ]),
                    parents,
                )
            }
            EntityType::Team => {
                // A team touches all of its keys; unknown counts as many.
                blast_radius = info
                    .and_then(|info| info.members)
                    .map_or(UNKNOWN_TEAM_SIZE, i64::from);
                (BTreeMap::from([("tier".to_owned(), tier)]), Vec::new())
            }
            EntityType::Deployment => (
                BTreeMap::from([
                    ("tier".to_owned(), tier),
                    ("owner".to_owned(), owner),
                    ("environment".to_owned(), environment),
                    ("model".to_owned(), AttrValue::String(resource.id.clone())),
                ]),
                info.and_then(|info| info.provider.clone())
                    .map(|provider| EntityRef {
                        entity_type: EntityType::Provider,
                        id: provider,
                    })
                    .into_iter()
                    .collect(),
            ),
            // Steps act only on remediation resources (`ActionName::resource_type`); the
            // people's types share the plain shape so that the match stays exhaustive.
            EntityType::Prompt
            | EntityType::Service
            | EntityType::Provider
            | EntityType::Runbook
            | EntityType::Human
            | EntityType::Group
            | EntityType::Role
            | EntityType::Proposal
            | EntityType::Control
            | EntityType::Silence => (
                BTreeMap::from([
                    ("tier".to_owned(), tier),
                    ("owner".to_owned(), owner),
                    ("environment".to_owned(), environment),
                ]),
                Vec::new(),
            ),
        };
        (
            Entity {
                uid: resource,
                attrs,
                parents,
            },
            blast_radius,
        )
    }

    /// The trust score of a runbook's action, in percent.
    pub(super) fn trust_pct(&self, runbook_id: &str, action: ActionName) -> i64 {
        let (verified, failed) = self
            .trust
            .get(&(runbook_id.to_owned(), action))
            .copied()
            .unwrap_or((0, 0));
        TrustTally::score_pct(verified, failed)
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
        self.with_incident(
            incident_id,
            |incident| match &incident.stage {
                Stage::Authorizing {
                    step_idx,
                    phase,
                    request_id: expected,
                } if expected == request_id => Some((*step_idx, *phase)),
                _ => None,
            },
            |engine, incident, (step_idx, phase)| {
                engine.decided(incident, step_idx, phase, decision, now, out);
            },
        );
    }

    /// Moves a step on after Cedar's answer: act (or propose) when allowed; compensate or
    /// escalate when denied.
    fn decided(
        &mut self,
        incident: &mut Incident,
        step_idx: usize,
        phase: Phase,
        decision: &AuthzDecision,
        now: Timestamp,
        out: &mut Vec<Command>,
    ) {
        let step_id = self.step_id(incident, step_idx);
        match decision.effect {
            Effect::Allow => match self.build_action(incident, step_idx, phase) {
                Err(problem) => {
                    let outcome = ActionOutcome {
                        succeeded: false,
                        http_status: None,
                        detail: format!("the step's parameters are not valid: {problem}"),
                        prior: BTreeMap::new(),
                    };
                    self.step_finished(incident, step_idx, phase, &outcome, now, out);
                }
                Ok(action) if phase == Phase::Forward && incident.mode == Mode::Advisory => {
                    self.propose(incident, step_idx, &step_id, action, out);
                }
                Ok(action) => self.act(incident, step_idx, phase, action, out),
            },
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
                        self.begin_compensation(incident, &reason, now, out);
                    }
                    Phase::Forward => {
                        // A refused failover says what it would have moved between.
                        let moved = self
                            .step_parts(incident, step_idx, phase)
                            .filter(|(_, kind, _)| *kind == ActionKind::LitellmSetFallbacks)
                            .and_then(|_| self.failover_facts(incident, step_idx, phase))
                            .map_or_else(String::new, |facts| {
                                format!(" ({})", describe_failover(&facts))
                            });
                        let reason = format!(
                            "policy refused the fix `{step_id}`{moved}: {policies}; vigil has no \
                             safe fix"
                        );
                        self.escalate(
                            incident,
                            &reason,
                            Ask::cause("Decide by hand whether to apply the fix."),
                            out,
                        );
                    }
                    Phase::Compensation => {
                        let reason = format!(
                            "policy refused to undo `{step_id}`: {policies}; the change is still in place"
                        );
                        self.escalate(
                            incident,
                            &reason,
                            Ask::undo(
                                "Check the key's state and undo the change by hand if needed.",
                            ),
                            out,
                        );
                    }
                }
            }
        }
    }

    pub(super) fn step_id(&self, incident: &Incident, step_idx: usize) -> String {
        incident
            .runbook_idx
            .and_then(|idx| self.config.runbooks.get(idx))
            .and_then(|runbook| runbook.steps.get(step_idx))
            .map_or_else(|| format!("step-{step_idx}"), |step| step.id.clone())
    }

    /// Records a proposal and waits for a person.
    fn propose(
        &self,
        incident: &mut Incident,
        step_idx: usize,
        step_id: &str,
        action: Action,
        out: &mut Vec<Command>,
    ) {
        let Some(runbook) = incident
            .runbook_idx
            .and_then(|idx| self.config.runbooks.get(idx))
        else {
            return;
        };
        let why = incident
            .advisory_why
            .clone()
            .unwrap_or_else(|| "advisory mode".to_owned());
        let proposal_id = incident.next_id("proposal");
        let action_hash = action_hash(&incident.id, step_id, &action);
        let requested_by = runbook.owner.clone();
        incident
            .history
            .push(format!("proposed ({why}): {}", action.describe()));
        out.push(Command::Record(Record::StepProposed {
            incident_id: incident.id.clone(),
            step_id: step_id.to_owned(),
            action: action.clone(),
            proposal_id: proposal_id.clone(),
            action_hash: action_hash.clone(),
            requested_by: requested_by.clone(),
            why,
        }));
        incident.stage = Stage::AwaitingApproval {
            step_idx,
            proposal_id,
            action_hash,
            action,
            requested_by,
        };
    }

    /// Carries out an authorized (or approved) step, unless a kill switch is on.
    pub(super) fn act(
        &mut self,
        incident: &mut Incident,
        step_idx: usize,
        phase: Phase,
        action: Action,
        out: &mut Vec<Command>,
    ) {
        let step_id = self.step_id(incident, step_idx);
        let runbook_id = incident
            .runbook_idx
            .and_then(|idx| self.config.runbooks.get(idx))
            .map(|runbook| runbook.id.clone())
            .unwrap_or_default();
        let target = self.step_resource(incident, step_idx, phase);
        if let Some(kill) = self.kill_switch(
            &runbook_id,
            target.as_ref().map(|t| (t.entity_type, t.id.as_str())),
        ) {
            self.hold(incident, "kill_switch", &kill, out);
            let reason = match phase {
                Phase::Forward if incident.completed.is_empty() => {
                    format!("vigil did not act: {kill}")
                }
                Phase::Forward | Phase::Compensation => format!(
                    "vigil stopped part-way: {kill}; the steps done so far are still in place"
                ),
            };
            self.escalate(
                incident,
                &reason,
                Ask::cause("Decide by hand; vigil is switched off here."),
                out,
            );
            return;
        }
        let action_id = incident.next_id("act");
        let idempotency_key = idempotency_key(&incident.id, &step_id, phase, incident.attempt);
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

    /// The action of one step, with its parameters rendered and checked.
    pub(super) fn build_action(
        &self,
        incident: &Incident,
        step_idx: usize,
        phase: Phase,
    ) -> Result<Action, String> {
        let Some((_, kind, params)) = self.step_parts(incident, step_idx, phase) else {
            return Err(format!("step {step_idx} has no {} action", phase.as_str()));
        };
        let context = self.template_context(incident);
        kind.build(&StepParams {
            rendered: params
                .iter()
                .map(|(name, template)| (name.clone(), template.render(&context)))
                .collect(),
            default_source: &incident.finding.source,
            prior: incident.priors.get(&step_idx),
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
        self.with_incident(
            incident_id,
            |incident| match &incident.stage {
                Stage::Acting {
                    step_idx,
                    phase,
                    action_id: expected,
                } if expected == action_id => Some((*step_idx, *phase)),
                _ => None,
            },
            |engine, incident, (step_idx, phase)| {
                engine.step_finished(incident, step_idx, phase, outcome, now, out);
            },
        );
    }

    /// Moves the run on after a step's answer (or a step that could not be built).
    fn step_finished(
        &mut self,
        incident: &mut Incident,
        step_idx: usize,
        phase: Phase,
        outcome: &ActionOutcome,
        now: Timestamp,
        out: &mut Vec<Command>,
    ) {
        let step_id = self.step_id(incident, step_idx);
        let status = outcome
            .http_status
            .map_or_else(String::new, |status| format!(" (HTTP {status})"));
        let described = self
            .build_action(incident, step_idx, phase)
            .map_or_else(|_| step_id.clone(), |action| action.describe());
        incident
            .history
            .push(format!("{described}: {}{status}", outcome.detail));
        let target = self
            .step_resource(incident, step_idx, phase)
            .map(|target| (target.entity_type, target.id));
        match (phase, outcome.succeeded) {
            (Phase::Forward, true) => {
                if let Some(target) = target {
                    self.last_acted.insert(target, now);
                }
                if !outcome.prior.is_empty() {
                    incident.priors.insert(step_idx, outcome.prior.clone());
                }
                incident.completed.push(step_idx);
                self.notify_owner(incident, step_idx, out);
                // The next step of the rung running now; a higher rung waits for verification
                // to show that this one was not enough.
                let next_on_rung = incident
                    .runbook_idx
                    .and_then(|idx| self.config.runbooks.get(idx))
                    .and_then(|runbook| runbook.steps.get(step_idx + 1))
                    .is_some_and(|next| next.rung == incident.rung);
                if next_on_rung {
                    self.start_step(incident, step_idx + 1, Phase::Forward, now, out);
                } else {
                    self.start_verification(incident, now, out);
                }
            }
            (Phase::Forward, false) => {
                let reason = format!("step `{step_id}` failed: {}{status}", outcome.detail);
                if incident.completed.is_empty() {
                    let scheduled = incident.diagnosis.best().map(|best| best.kind)
                        == Some(crate::diagnosis::HypothesisKind::Scheduled);
                    let ask = if scheduled {
                        Ask::cause("The scheduled check failed: look at the service it checks.")
                    } else {
                        Ask::situation(
                            "The fix could not be applied; apply it by hand or find out why the target refused.",
                        )
                    };
                    self.escalate(incident, &reason, ask, out);
                } else {
                    self.begin_compensation(incident, &reason, now, out);
                }
            }
            (Phase::Compensation, true) => {
                if let Some(target) = target {
                    self.last_acted.insert(target, now);
                }
                incident.undone.push(step_idx);
                self.continue_compensation(incident, now, out);
            }
            (Phase::Compensation, false) => {
                let reason = format!(
                    "undoing `{step_id}` failed: {}{status}; the change may still be in place",
                    outcome.detail
                );
                self.escalate(
                    incident,
                    &reason,
                    Ask::undo("Check the key's state on the gateway and undo the change by hand."),
                    out,
                );
            }
        }
    }
}

/// The blast radius of a team whose size the inventory does not give: assume many.
const UNKNOWN_TEAM_SIZE: i64 = 1000;

/// A failover's facts for people: `it would move text-embedding-3-small (embedding, 8191
/// tokens) to gpt-4o (chat, 128000 tokens)`.
fn describe_failover(facts: &FailoverFacts) -> String {
    let side = |modality: &str, window: i64| {
        if window > 0 {
            format!("{modality}, {window} tokens")
        } else {
            format!("{modality}, context window unknown")
        }
    };
    format!(
        "it would move {} ({}) to {} ({})",
        facts.source,
        side(&facts.source_modality, facts.source_context_window),
        facts.target,
        side(&facts.target_modality, facts.target_context_window)
    )
}
