//! What people tell vigil: approvals and rejections of proposals, kill switches and
//! silences. Each arrives as [`Event::Human`](super::Event::Human), is in the ledger with who
//! sent it before the engine sees it, and is answered by a [`Record::HumanAction`] that says
//! whether vigil accepted it and why not.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::incident::{Phase, Stage};
use super::packet::Ask;
use super::{Action, Command, Engine, Record};
use crate::authz::EntityType;
use crate::people::{HumanCommand, KillScope, PeopleRules, Principal, normalize_name};
use crate::time::Timestamp;

/// A step waiting for a person, as [`Engine::pending_proposals`] lists it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PendingProposal {
    /// The id to approve or reject it by.
    pub proposal_id: String,
    /// The incident.
    pub incident_id: String,
    /// The runbook step.
    pub step_id: String,
    /// What it would do.
    pub action: Action,
    /// The hash an approval must carry ([`action_hash`]).
    pub action_hash: String,
    /// Who asks for it (who may not approve it).
    pub requested_by: String,
    /// Why it is a proposal rather than an action.
    pub why: String,
}

/// A kill switch that is on: who set it, why and when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct KillSwitch {
    pub(crate) by: String,
    pub(crate) reason: String,
    pub(crate) since: Timestamp,
}

/// The controls in force, as [`Engine::controls`] lists them (the console shows them).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Controls {
    /// The kill switches that are on, in scope order.
    pub kill_switches: Vec<KillSwitchView>,
    /// The silences that have not ended (expired ones are left out), in id order.
    pub silences: Vec<SilenceView>,
}

/// A kill switch that is on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KillSwitchView {
    /// Where no new action runs.
    pub scope: KillScope,
    /// Who set it.
    pub by: String,
    /// Why, in their words.
    pub reason: String,
    /// When.
    pub since: Timestamp,
}

/// A silence in force.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SilenceView {
    /// Its id.
    pub silence_id: String,
    /// Who set it.
    pub by: String,
    /// Why.
    pub reason: String,
    /// Only findings of this detector (any when absent).
    pub detector: Option<String>,
    /// Only findings about this subject (any when absent).
    pub subject: Option<String>,
    /// When it ends.
    pub expires_at: Timestamp,
}

/// An active silence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Silence {
    pub(crate) owner: String,
    pub(crate) reason: String,
    pub(crate) detector: Option<String>,
    pub(crate) subject: Option<String>,
    pub(crate) expires_at: Timestamp,
}

/// The hash that binds an approval to one step: the incident, the step, the phase and the
/// action with every parameter, canonically encoded.
#[must_use]
pub fn action_hash(incident_id: &str, step_id: &str, action: &Action) -> String {
    let action_json = serde_json::to_string(action).unwrap_or_default();
    let digest = Sha256::digest(format!("{incident_id}\n{step_id}\n{action_json}").as_bytes());
    hex::encode(digest)
}

/// What checking an instruction against the engine's state found: what Cedar is asked
/// about (the resource) and what the instruction is about.
#[derive(Clone, Debug)]
pub(super) struct Checked {
    /// The incident an approval or rejection is about.
    pub(super) incident_id: Option<String>,
    /// How long a silence would last, in seconds (0 otherwise).
    pub(super) duration_secs: i64,
}

impl Engine {
    pub(super) fn on_human(
        &mut self,
        by: &str,
        reason: &str,
        command: &HumanCommand,
        principal: Option<&Principal>,
        now: Timestamp,
        out: &mut Vec<Command>,
    ) {
        if let Some(rules) = self.config.people.clone() {
            self.on_authenticated_instruction(&rules, by, reason, command, principal, now, out);
            return;
        }
        // A session recorded before people were authenticated: the name is taken as given
        // and no policy is asked, exactly as such sessions ran (replay depends on it).
        let mut follow = Vec::new();
        let verdict = if by.trim().is_empty() {
            Err("the command names nobody; every human action must say who did it".to_owned())
        } else {
            self.check_instruction(by, reason, command, None, now)
                .and_then(|_| self.carry_out_instruction(by, reason, command, now, &mut follow))
        };
        out.push(human_action(by, reason, command, verdict, None));
        out.extend(follow);
    }

    /// Whether `command` from `by` can be carried out now: the proposal is pending and its
    /// hash matches, the approver is not the requester, the switch or silence exists. With
    /// `rules` (sessions that authenticate people), also what people's instructions must
    /// satisfy before any policy is asked: reasons, scopes and durations.
    pub(super) fn check_instruction(
        &self,
        by: &str,
        reason: &str,
        command: &HumanCommand,
        rules: Option<&PeopleRules>,
        now: Timestamp,
    ) -> Result<Checked, String> {
        let mut checked = Checked {
            incident_id: None,
            duration_secs: 0,
        };
        match command {
            HumanCommand::Approve {
                proposal_id,
                action_hash,
            } => {
                let (incident_id, requested_by) = self.pending_proposal(proposal_id)?;
                let Some(Stage::AwaitingApproval {
                    action_hash: expected,
                    ..
                }) = self
                    .incidents
                    .get(&incident_id)
                    .map(|incident| &incident.stage)
                else {
                    return Err(format!("proposal `{proposal_id}` is not pending"));
                };
                if action_hash != expected {
                    return Err(format!(
                        "the approval is for another version of the step (hash {} does not match {}); show the proposal again and approve what it says now",
                        short_hash(action_hash),
                        short_hash(expected)
                    ));
                }
                // Compared as people read names: `Vigil` and `vigil ` are the requester too.
                if normalize_name(by) == normalize_name(&requested_by) {
                    return Err(format!(
                        "{by} requested this step and cannot also approve it; another person must"
                    ));
                }
                checked.incident_id = Some(incident_id);
            }
            HumanCommand::Reject { proposal_id } => {
                let (incident_id, _) = self.pending_proposal(proposal_id)?;
                if rules.is_some() && reason.trim().is_empty() {
                    return Err(
                        "a rejection needs a reason: the on-call engineer who gets the incident reads it"
                            .to_owned(),
                    );
                }
                checked.incident_id = Some(incident_id);
            }
            HumanCommand::Kill { scope } => {
                if rules.is_some() {
                    self.check_scope(scope)?;
                }
            }
            HumanCommand::Unkill { scope } => {
                if !self.killed.contains_key(scope) {
                    return Err(format!("no kill switch is on for {}", scope.describe()));
                }
            }
            HumanCommand::Silence {
                silence_id,
                detector,
                subject,
                expires_at,
            } => {
                if *expires_at <= now {
                    return Err("the silence would already have expired".to_owned());
                }
                if reason.trim().is_empty() {
                    return Err("a silence needs a reason".to_owned());
                }
                if let Some(rules) = rules {
                    self.check_silence(rules, silence_id, detector.as_deref(), subject.as_deref())?;
                    let lasts_ms = expires_at.millis_since(now);
                    if lasts_ms > rules.max_silence_ms {
                        return Err(format!(
                            "a silence may last at most {} (admin.max_silence_secs); this one would last {}",
                            describe_duration(rules.max_silence_ms),
                            describe_duration(lasts_ms)
                        ));
                    }
                    // Rounded up, so that policies on durations cannot be slipped under.
                    checked.duration_secs = lasts_ms.saturating_add(999) / 1000;
                }
            }
            HumanCommand::Unsilence { silence_id } => {
                if !self.silences.contains_key(silence_id) {
                    return Err(format!("no silence `{silence_id}` is active"));
                }
            }
        }
        Ok(checked)
    }

    /// What a person's kill switch may name: a configured runbook, or a target of a kind
    /// runbooks act on.
    fn check_scope(&self, scope: &KillScope) -> Result<(), String> {
        match scope {
            KillScope::Global => Ok(()),
            KillScope::Runbook { id } => {
                if self.config.runbooks.iter().any(|runbook| runbook.id == *id) {
                    Ok(())
                } else {
                    Err(format!("no runbook `{id}` is configured"))
                }
            }
            KillScope::Target { entity_type, id } => {
                if !EntityType::TARGETS.contains(entity_type) {
                    return Err(format!(
                        "a kill switch's target is a key, team, deployment, prompt or service, not a {}",
                        entity_type.cedar_name()
                    ));
                }
                if id.trim().is_empty() || id.chars().any(char::is_control) {
                    return Err("the target's id must be non-empty text".to_owned());
                }
                Ok(())
            }
        }
    }

    /// A silence must say what it mutes, with names vigil knows.
    fn check_silence(
        &self,
        rules: &PeopleRules,
        silence_id: &str,
        detector: Option<&str>,
        subject: Option<&str>,
    ) -> Result<(), String> {
        let _ = rules;
        if silence_id.trim().is_empty() || silence_id.chars().any(char::is_control) {
            return Err("a silence needs an id of printable text".to_owned());
        }
        if self.silences.contains_key(silence_id) {
            return Err(format!(
                "silence `{silence_id}` is already active; end it first (`vigil unsilence`) or choose another id"
            ));
        }
        let detector = detector.filter(|name| !name.trim().is_empty());
        let subject = subject.filter(|name| !name.trim().is_empty());
        if detector.is_none() && subject.is_none() {
            return Err(
                "a silence needs a scope: a detector, a subject, or both; muting everything is what the kill switch is for"
                    .to_owned(),
            );
        }
        if let Some(detector) = detector
            && !self
                .config
                .detectors
                .iter()
                .any(|configured| configured.name() == detector)
        {
            return Err(format!("no detector `{detector}` is configured"));
        }
        Ok(())
    }

    /// Carries out an instruction that [`check_instruction`](Engine::check_instruction)
    /// accepted; what it sets off goes to `follow`.
    pub(super) fn carry_out_instruction(
        &mut self,
        by: &str,
        reason: &str,
        command: &HumanCommand,
        now: Timestamp,
        follow: &mut Vec<Command>,
    ) -> Result<String, String> {
        match command {
            HumanCommand::Approve { proposal_id, .. } => {
                let (incident_id, _) = self.pending_proposal(proposal_id)?;
                let approved = self.with_incident(
                    &incident_id,
                    |incident| match &incident.stage {
                        Stage::AwaitingApproval {
                            step_idx, action, ..
                        } => Some((*step_idx, action.clone())),
                        _ => None,
                    },
                    |engine, incident, (step_idx, action)| {
                        incident
                            .history
                            .push(format!("{by} approved: {}", action.describe()));
                        engine.act(incident, step_idx, Phase::Forward, action, follow);
                    },
                );
                match approved {
                    Some(()) => Ok("approved; the step runs now".to_owned()),
                    None => Err(format!("proposal `{proposal_id}` is not pending")),
                }
            }
            HumanCommand::Reject { proposal_id } => {
                let (incident_id, _) = self.pending_proposal(proposal_id)?;
                let rejected = self.with_incident(
                    &incident_id,
                    |_| Some(()),
                    |engine, incident, ()| {
                        incident
                            .history
                            .push(format!("{by} rejected the proposal: {reason}"));
                        let why = format!("{by} rejected vigil's proposal ({reason})");
                        if incident.completed.is_empty() {
                            // A person said no and nothing was changed: the incident is theirs now.
                            engine.escalate(
                                incident,
                                &why,
                                Ask::cause("Decide what to do instead."),
                                follow,
                            );
                        } else {
                            engine.begin_compensation(incident, &why, now, follow);
                        }
                    },
                );
                match rejected {
                    Some(()) => Ok("rejected".to_owned()),
                    None => Err(format!("proposal `{proposal_id}` is not pending")),
                }
            }
            HumanCommand::Kill { scope } => {
                self.killed.insert(
                    scope.clone(),
                    KillSwitch {
                        by: by.to_owned(),
                        reason: reason.to_owned(),
                        since: now,
                    },
                );
                Ok(format!("no new action will run for {}", scope.describe()))
            }
            HumanCommand::Unkill { scope } => match self.killed.remove(scope) {
                Some(_) => Ok(format!("actions may run again for {}", scope.describe())),
                None => Err(format!("no kill switch is on for {}", scope.describe())),
            },
            HumanCommand::Silence {
                silence_id,
                detector,
                subject,
                expires_at,
            } => {
                self.silences.insert(
                    silence_id.clone(),
                    Silence {
                        owner: by.to_owned(),
                        reason: reason.to_owned(),
                        detector: detector.clone(),
                        subject: subject.clone(),
                        expires_at: *expires_at,
                    },
                );
                Ok(format!(
                    "matching findings are muted for {} min",
                    expires_at.millis_since(now) / 60_000
                ))
            }
            HumanCommand::Unsilence { silence_id } => match self.silences.remove(silence_id) {
                Some(_) => Ok("the silence ended".to_owned()),
                None => Err(format!("no silence `{silence_id}` is active")),
            },
        }
    }

    /// The kill switches on and the silences in force at `now` (expired silences, which the
    /// engine drops when it next meets them, are left out).
    #[must_use]
    pub fn controls(&self, now: Timestamp) -> Controls {
        Controls {
            kill_switches: self
                .killed
                .iter()
                .map(|(scope, switch)| KillSwitchView {
                    scope: scope.clone(),
                    by: switch.by.clone(),
                    reason: switch.reason.clone(),
                    since: switch.since,
                })
                .collect(),
            silences: self
                .silences
                .iter()
                .filter(|(_, silence)| silence.expires_at > now)
                .map(|(silence_id, silence)| SilenceView {
                    silence_id: silence_id.clone(),
                    by: silence.owner.clone(),
                    reason: silence.reason.clone(),
                    detector: silence.detector.clone(),
                    subject: silence.subject.clone(),
                    expires_at: silence.expires_at,
                })
                .collect(),
        }
    }

    /// The proposals waiting for a person's approval or rejection, in incident order: what
    /// the admin API lists. They are read from the incidents' state, so a proposal is listed
    /// exactly while an approval of it could be carried out.
    #[must_use]
    pub fn pending_proposals(&self) -> Vec<PendingProposal> {
        self.incidents
            .values()
            .filter_map(|incident| match &incident.stage {
                Stage::AwaitingApproval {
                    step_idx,
                    proposal_id,
                    action_hash,
                    action,
                    requested_by,
                } => Some(PendingProposal {
                    proposal_id: proposal_id.clone(),
                    incident_id: incident.id.clone(),
                    step_id: self.step_id(incident, *step_idx),
                    action: action.clone(),
                    action_hash: action_hash.clone(),
                    requested_by: requested_by.clone(),
                    // As `propose` recorded it in `Record::StepProposed`.
                    why: incident
                        .advisory_why
                        .clone()
                        .unwrap_or_else(|| "advisory mode".to_owned()),
                }),
                _ => None,
            })
            .collect()
    }

    /// The incident of a pending proposal and who requested it.
    fn pending_proposal(&self, proposal_id: &str) -> Result<(String, String), String> {
        let incident_id = proposal_id
            .split_once('/')
            .map_or(proposal_id, |(incident, _)| incident);
        let Some(incident) = self.incidents.get(incident_id) else {
            return Err(format!(
                "no open incident has proposal `{proposal_id}` (it may have ended)"
            ));
        };
        match &incident.stage {
            Stage::AwaitingApproval {
                proposal_id: pending,
                requested_by,
                ..
            } if pending == proposal_id || pending.is_empty() => {
                Ok((incident.id.clone(), requested_by.clone()))
            }
            _ => Err(format!("proposal `{proposal_id}` is not pending")),
        }
    }

    /// The kill switch that stops an action, if one is on.
    pub(super) fn kill_switch(
        &self,
        runbook_id: &str,
        target: Option<(EntityType, &str)>,
    ) -> Option<String> {
        let scopes = [
            Some(KillScope::Global),
            Some(KillScope::Runbook {
                id: runbook_id.to_owned(),
            }),
            target.map(|(entity_type, id)| KillScope::Target {
                entity_type,
                id: id.to_owned(),
            }),
        ];
        scopes.into_iter().flatten().find_map(|scope| {
            self.killed.get(&scope).map(|switch| {
                format!(
                    "the kill switch for {} is on (set by {})",
                    scope.describe(),
                    switch.by
                )
            })
        })
    }

    /// The active silence that mutes a finding, if any; expired silences are dropped.
    pub(super) fn silenced(
        &mut self,
        detector: &str,
        subject: &str,
        now: Timestamp,
    ) -> Option<String> {
        self.silences.retain(|_, silence| silence.expires_at > now);
        self.silences.iter().find_map(|(id, silence)| {
            let matches = silence.detector.as_deref().is_none_or(|d| d == detector)
                && silence.subject.as_deref().is_none_or(|s| s == subject);
            matches.then(|| {
                format!(
                    "silence {id} by {} ({}) until {}",
                    silence.owner, silence.reason, silence.expires_at.0
                )
            })
        })
    }
}

fn short_hash(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

/// The record that answers a person's instruction.
pub(super) fn human_action(
    by: &str,
    reason: &str,
    command: &HumanCommand,
    verdict: Result<String, String>,
    credential_id: Option<String>,
) -> Command {
    let (accepted, outcome) = match verdict {
        Ok(outcome) => (true, outcome),
        Err(refusal) => (false, refusal),
    };
    Command::Record(Record::HumanAction {
        by: by.to_owned(),
        reason: reason.to_owned(),
        command: command.clone(),
        accepted,
        outcome,
        credential_id,
    })
}

/// A duration for people: `7 d`, `36 h`, `90 min`, `45 s` (whole units when exact, else
/// days with two decimals for durations of days).
fn describe_duration(millis: i64) -> String {
    let secs = millis / 1000;
    if secs % 86_400 == 0 && secs >= 86_400 {
        format!("{} d", secs / 86_400)
    } else if secs >= 4 * 86_400 {
        format!("{:.2} d", secs as f64 / 86_400.0)
    } else if secs % 3600 == 0 && secs >= 3600 {
        format!("{} h", secs / 3600)
    } else if secs >= 60 {
        format!("{} min", secs / 60)
    } else {
        format!("{secs} s")
    }
}
