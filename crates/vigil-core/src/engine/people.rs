//! People's instructions in sessions that authenticate people: each must carry the principal
//! the admin API authenticated, is checked against the engine's state, and is then put to
//! Cedar as a [`HumanAuthzRequest`] (a `Human` principal with its groups and roles, the
//! proposal, kill switch or silence as the resource). Only an allowed instruction is carried
//! out; every outcome is a [`Record::HumanAction`] with the credential that proved who sent it.

use std::collections::BTreeMap;

use super::human::{Checked, human_action};
use super::incident::{Phase, Stage};
use super::{Command, Engine};
use crate::authz::{
    AttrValue, AuthzDecision, Effect, Entity, EntityRef, EntityType, HumanActionName,
    HumanAuthzRequest, HumanContext,
};
use crate::people::{HumanCommand, KillScope};
use crate::people::{PeopleRules, Principal, name_problem, normalize_name};
use crate::time::Timestamp;

/// Instructions waiting for the policy engine at most; the runtime answers each at once, so
/// more means a runtime that does not answer, and new instructions are refused.
const MAX_PENDING_INSTRUCTIONS: usize = 64;

/// An instruction put to the policy engine, waiting for its decision.
#[derive(Clone, Debug)]
pub(super) struct PendingInstruction {
    by: String,
    reason: String,
    command: HumanCommand,
    credential_id: String,
}

impl Engine {
    /// Checks an instruction of a session that authenticates people and, when it passes, asks
    /// the policy engine about it; otherwise records the refusal.
    #[expect(
        clippy::too_many_arguments,
        reason = "the fields of `Event::Human`, the rules and the output"
    )]
    pub(super) fn on_authenticated_instruction(
        &mut self,
        rules: &PeopleRules,
        by: &str,
        reason: &str,
        command: &HumanCommand,
        principal: Option<&Principal>,
        now: Timestamp,
        out: &mut Vec<Command>,
    ) {
        let credential_id = principal.map(|principal| principal.credential_id.clone());
        let checked = (|| {
            let Some(principal) = principal else {
                return Err(
                    "the instruction carries no authenticated principal; vigil takes instructions only from people its admin API authenticated"
                        .to_owned(),
                );
            };
            if let Some(problem) = name_problem(&principal.name) {
                return Err(format!("the authenticated name is not usable: {problem}"));
            }
            // The edge records the principal's name as `by`; anything else is a forgery.
            if normalize_name(by) != principal.name {
                return Err(format!(
                    "the instruction names `{by}`, but its credential belongs to `{}`",
                    principal.name
                ));
            }
            if reason.chars().count() > rules.max_reason_chars {
                return Err(format!(
                    "the reason is longer than {} characters",
                    rules.max_reason_chars
                ));
            }
            if self.pending_instructions.len() >= MAX_PENDING_INSTRUCTIONS {
                return Err("too many instructions are waiting for the policy engine".to_owned());
            }
            let checked =
                self.check_instruction(&principal.name, reason, command, Some(rules), now)?;
            Ok((principal, checked))
        })();
        let (principal, checked) = match checked {
            Ok(found) => found,
            Err(refusal) => {
                out.push(human_action(
                    by,
                    reason,
                    command,
                    Err(refusal),
                    credential_id,
                ));
                return;
            }
        };
        let request = self.human_request(rules, principal, reason, command, &checked, now);
        self.n_instructions += 1;
        let request_id = format!("human-{}", self.n_instructions);
        self.pending_instructions.insert(
            request_id.clone(),
            PendingInstruction {
                by: principal.name.clone(),
                reason: reason.to_owned(),
                command: command.clone(),
                credential_id: principal.credential_id.clone(),
            },
        );
        out.push(Command::AuthorizeHuman {
            request_id,
            incident_id: checked.incident_id,
            request,
        });
    }

    /// Carries out an instruction the policy engine allowed (checked again: it is the state
    /// now that counts), or records why it did not.
    pub(super) fn on_human_decided(
        &mut self,
        request_id: &str,
        decision: &AuthzDecision,
        now: Timestamp,
        out: &mut Vec<Command>,
    ) {
        let Some(pending) = self.pending_instructions.remove(request_id) else {
            return;
        };
        let Some(rules) = self.config.people.clone() else {
            return;
        };
        let PendingInstruction {
            by,
            reason,
            command,
            credential_id,
        } = pending;
        let mut follow = Vec::new();
        let verdict = match decision.effect {
            Effect::Deny => Err(denial(&command, decision)),
            Effect::Allow => self
                .check_instruction(&by, &reason, &command, Some(&rules), now)
                .and_then(|_| self.carry_out_instruction(&by, &reason, &command, now, &mut follow)),
        };
        out.push(human_action(
            &by,
            &reason,
            &command,
            verdict,
            Some(credential_id),
        ));
        out.extend(follow);
    }

    /// The question for Cedar: the person, the instruction, and what it is about.
    fn human_request(
        &self,
        rules: &PeopleRules,
        principal: &Principal,
        reason: &str,
        command: &HumanCommand,
        checked: &Checked,
        now: Timestamp,
    ) -> HumanAuthzRequest {
        let (action, resource) = match command {
            HumanCommand::Approve { proposal_id, .. } => (
                HumanActionName::Approve,
                self.proposal_entity(rules, proposal_id, checked),
            ),
            HumanCommand::Reject { proposal_id } => (
                HumanActionName::Reject,
                self.proposal_entity(rules, proposal_id, checked),
            ),
            HumanCommand::Kill { scope } => (HumanActionName::Kill, control_entity(scope)),
            HumanCommand::Unkill { scope } => (HumanActionName::Unkill, control_entity(scope)),
            HumanCommand::Silence {
                silence_id,
                detector,
                subject,
                ..
            } => (
                HumanActionName::Silence,
                silence_entity(silence_id, detector.as_deref(), subject.as_deref()),
            ),
            HumanCommand::Unsilence { silence_id } => {
                let active = self.silences.get(silence_id);
                (
                    HumanActionName::Unsilence,
                    silence_entity(
                        silence_id,
                        active.and_then(|silence| silence.detector.as_deref()),
                        active.and_then(|silence| silence.subject.as_deref()),
                    ),
                )
            }
        };
        HumanAuthzRequest {
            principal: human_entity(principal),
            action,
            resource,
            context: HumanContext {
                hour_utc: i64::from(now.hour_utc()),
                duration_secs: checked.duration_secs,
                has_reason: !reason.trim().is_empty(),
            },
        }
    }

    /// A pending proposal as Cedar sees it: `Vigil::Proposal::"<id>"` in the target's owning
    /// team, with the runbook, the step, the target, the owner's on-call group and the
    /// requester as attributes.
    fn proposal_entity(&self, rules: &PeopleRules, proposal_id: &str, checked: &Checked) -> Entity {
        let mut attrs = BTreeMap::from([
            ("runbook".to_owned(), string("")),
            ("action".to_owned(), string("")),
            ("target_type".to_owned(), string("")),
            ("target".to_owned(), string("")),
            ("owner".to_owned(), string("")),
            ("tier".to_owned(), string("")),
            ("severity".to_owned(), string("")),
            ("requested_by".to_owned(), string("")),
        ]);
        let mut parents = Vec::new();
        let mut owner = String::new();
        let found = checked
            .incident_id
            .as_ref()
            .and_then(|incident_id| self.incidents.get(incident_id));
        if let Some(incident) = found
            && let Stage::AwaitingApproval {
                step_idx,
                requested_by,
                ..
            } = &incident.stage
        {
            attrs.insert(
                "requested_by".to_owned(),
                string(&normalize_name(requested_by)),
            );
            attrs.insert(
                "severity".to_owned(),
                string(incident.finding.severity.as_str()),
            );
            if let Some((runbook, kind, _)) = self.step_parts(incident, *step_idx, Phase::Forward) {
                attrs.insert("runbook".to_owned(), string(&runbook.id));
                attrs.insert("action".to_owned(), string(kind.cedar_action().cedar_id()));
            }
            if let Some(target) = self.step_resource(incident, *step_idx, Phase::Forward) {
                let (entity, _) = self.resource_entity(incident, target.clone());
                owner = owning_team(&entity);
                let tier = match entity.attrs.get("tier") {
                    Some(AttrValue::String(tier)) => tier.clone(),
                    _ => String::new(),
                };
                attrs.insert("tier".to_owned(), string(&tier));
                attrs.insert(
                    "target_type".to_owned(),
                    string(target.entity_type.cedar_name()),
                );
                attrs.insert("target".to_owned(), string(&target.id));
                if !owner.is_empty() {
                    parents.push(EntityRef {
                        entity_type: EntityType::Team,
                        id: owner.clone(),
                    });
                }
            }
        }
        attrs.insert("owner".to_owned(), string(&owner));
        attrs.insert(
            "owner_oncall".to_owned(),
            AttrValue::Entity(EntityRef {
                entity_type: EntityType::Group,
                id: rules.oncall_group_of(&owner),
            }),
        );
        Entity {
            uid: EntityRef {
                entity_type: EntityType::Proposal,
                id: proposal_id.to_owned(),
            },
            attrs,
            parents,
        }
    }
}

/// The team that answers for a step's target: a key's team, a team itself, or a resource's
/// configured owner.
fn owning_team(target: &Entity) -> String {
    let attr = |name: &str| match target.attrs.get(name) {
        Some(AttrValue::String(value)) => value.clone(),
        _ => String::new(),
    };
    match target.uid.entity_type {
        EntityType::ApiKey => attr("team"),
        EntityType::Team => target.uid.id.clone(),
        _ => attr("owner"),
    }
}

/// The person as Cedar sees them: `Vigil::Human::"<name>"` in each of their groups and
/// roles (implied roles included), with their name, credential and how it was proved.
fn human_entity(principal: &Principal) -> Entity {
    let groups = principal.groups.iter().map(|group| EntityRef {
        entity_type: EntityType::Group,
        id: group.clone(),
    });
    let roles = principal.all_roles().into_iter().map(|role| EntityRef {
        entity_type: EntityType::Role,
        id: role.as_str().to_owned(),
    });
    let mut parents: Vec<EntityRef> = groups.chain(roles).collect();
    parents.sort();
    parents.dedup();
    Entity {
        uid: EntityRef {
            entity_type: EntityType::Human,
            id: principal.name.clone(),
        },
        attrs: BTreeMap::from([
            ("name".to_owned(), string(&principal.name)),
            ("credential".to_owned(), string(&principal.credential_id)),
            ("via".to_owned(), string(principal.via.as_str())),
        ]),
        parents,
    }
}

/// A kill switch as Cedar sees it: `Vigil::Control::"global"`, `"runbook:<id>"` or
/// `"target:<Type>:<id>"`, with what it names as attributes.
fn control_entity(scope: &KillScope) -> Entity {
    let (id, kind, runbook, target_type, target) = match scope {
        KillScope::Global => (
            "global".to_owned(),
            "global",
            String::new(),
            String::new(),
            String::new(),
        ),
        KillScope::Runbook { id } => (
            format!("runbook:{id}"),
            "runbook",
            id.clone(),
            String::new(),
            String::new(),
        ),
        KillScope::Target { entity_type, id } => (
            format!("target:{}:{id}", entity_type.cedar_name()),
            "target",
            String::new(),
            entity_type.cedar_name().to_owned(),
            id.clone(),
        ),
    };
    Entity {
        uid: EntityRef {
            entity_type: EntityType::Control,
            id,
        },
        attrs: BTreeMap::from([
            ("scope".to_owned(), string(kind)),
            ("runbook".to_owned(), string(&runbook)),
            ("target_type".to_owned(), string(&target_type)),
            ("target".to_owned(), string(&target)),
        ]),
        parents: Vec::new(),
    }
}

/// A silence as Cedar sees it: `Vigil::Silence::"<id>"` with what it mutes (empty: any).
fn silence_entity(silence_id: &str, detector: Option<&str>, subject: Option<&str>) -> Entity {
    Entity {
        uid: EntityRef {
            entity_type: EntityType::Silence,
            id: silence_id.to_owned(),
        },
        attrs: BTreeMap::from([
            ("detector".to_owned(), string(detector.unwrap_or_default())),
            ("subject".to_owned(), string(subject.unwrap_or_default())),
        ]),
        parents: Vec::new(),
    }
}

fn string(value: &str) -> AttrValue {
    AttrValue::String(value.to_owned())
}

/// Why the policy engine said no, for the person and the ledger.
fn denial(command: &HumanCommand, decision: &AuthzDecision) -> String {
    let what = command.describe();
    if !decision.errors.is_empty() {
        format!(
            "the policy engine could not decide `{what}` ({}); denied",
            decision.errors.join("; ")
        )
    } else if decision.determining_policies.is_empty() {
        format!("no policy permits you to {what} (default deny)")
    } else {
        format!(
            "{what}: denied by {}",
            decision.determining_policies.join(", ")
        )
    }
}
