//! What people tell vigil: approvals and rejections of proposals, kill switches and
//! silences. Each arrives as [`Event::Human`](super::Event::Human), is in the ledger with who
//! sent it before the engine sees it, and is answered by a [`Record::HumanAction`] that says
//! whether vigil accepted it and why not.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::incident::{Phase, Stage};
use super::{Action, Command, Engine, Record};
use crate::authz::EntityType;
use crate::time::Timestamp;

/// A person's instruction. The set is closed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum HumanCommand {
    /// Carry out a proposed step. `action_hash` binds the approval to exactly the step and
    /// parameters the approver saw; a proposal that changed since is not approved.
    Approve {
        /// The proposal.
        proposal_id: String,
        /// [`action_hash`] of the proposal as shown to the approver.
        action_hash: String,
    },
    /// Do not carry out a proposed step; the incident goes to a human.
    Reject {
        /// The proposal.
        proposal_id: String,
    },
    /// Stop new actions in a scope at once (actions already sent finish).
    Kill {
        /// Where.
        scope: KillScope,
    },
    /// Lift a kill switch.
    Unkill {
        /// Where.
        scope: KillScope,
    },
    /// Mute matching findings until `expires_at`: no runbook acts and nobody is paged.
    Silence {
        /// Unique id, chosen by the client.
        silence_id: String,
        /// Only findings of this detector (any when absent).
        detector: Option<String>,
        /// Only findings about this subject: a key hash, a model, a prompt (any when absent).
        subject: Option<String>,
        /// When the silence ends.
        expires_at: Timestamp,
    },
    /// End a silence early.
    Unsilence {
        /// Which.
        silence_id: String,
    },
}

impl HumanCommand {
    /// A one-line description for people.
    #[must_use]
    pub fn describe(&self) -> String {
        match self {
            HumanCommand::Approve { proposal_id, .. } => format!("approve {proposal_id}"),
            HumanCommand::Reject { proposal_id } => format!("reject {proposal_id}"),
            HumanCommand::Kill { scope } => format!("kill switch on for {}", scope.describe()),
            HumanCommand::Unkill { scope } => format!("kill switch off for {}", scope.describe()),
            HumanCommand::Silence {
                silence_id,
                detector,
                subject,
                expires_at,
            } => format!(
                "silence {silence_id} (detector {}, subject {}) until {}",
                detector.as_deref().unwrap_or("any"),
                subject.as_deref().unwrap_or("any"),
                expires_at.0
            ),
            HumanCommand::Unsilence { silence_id } => format!("end silence {silence_id}"),
        }
    }
}

/// Where a kill switch applies.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "scope", rename_all = "snake_case")]
pub enum KillScope {
    /// Every action of every runbook.
    Global,
    /// Every action of one runbook.
    Runbook {
        /// The runbook.
        id: String,
    },
    /// Every action on one resource (a key, a team, a deployment, a prompt, a service).
    Target {
        /// Its type.
        entity_type: EntityType,
        /// Its id.
        id: String,
    },
}

impl KillScope {
    /// For people.
    #[must_use]
    pub fn describe(&self) -> String {
        match self {
            KillScope::Global => "everything".to_owned(),
            KillScope::Runbook { id } => format!("runbook {id}"),
            KillScope::Target { entity_type, id } => {
                format!("{} {id}", entity_type.cedar_name())
            }
        }
    }
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

impl Engine {
    pub(super) fn on_human(
        &mut self,
        by: &str,
        reason: &str,
        command: &HumanCommand,
        now: Timestamp,
        out: &mut Vec<Command>,
    ) {
        // What the command sets off comes after the record that explains it.
        let mut follow = Vec::new();
        let verdict = if by.trim().is_empty() {
            Err("the command names nobody; every human action must say who did it".to_owned())
        } else {
            match command {
                HumanCommand::Approve {
                    proposal_id,
                    action_hash,
                } => self.approve(by, proposal_id, action_hash, &mut follow),
                HumanCommand::Reject { proposal_id } => {
                    self.reject(by, reason, proposal_id, now, &mut follow)
                }
                HumanCommand::Kill { scope } => {
                    self.killed.insert(scope.clone(), by.to_owned());
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
                    if *expires_at <= now {
                        Err("the silence would already have expired".to_owned())
                    } else if reason.trim().is_empty() {
                        Err("a silence needs a reason".to_owned())
                    } else {
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
                }
                HumanCommand::Unsilence { silence_id } => match self.silences.remove(silence_id) {
                    Some(_) => Ok("the silence ended".to_owned()),
                    None => Err(format!("no silence `{silence_id}` is active")),
                },
            }
        };
        let (accepted, outcome) = match verdict {
            Ok(outcome) => (true, outcome),
            Err(refusal) => (false, refusal),
        };
        out.push(Command::Record(Record::HumanAction {
            by: by.to_owned(),
            reason: reason.to_owned(),
            command: command.clone(),
            accepted,
            outcome,
        }));
        out.extend(follow);
    }

    fn approve(
        &mut self,
        by: &str,
        proposal_id: &str,
        hash: &str,
        out: &mut Vec<Command>,
    ) -> Result<String, String> {
        let incident_id = self.proposal_incident(proposal_id)?;
        let Some(mut incident) = self.incidents.remove(&incident_id) else {
            return Err(format!("proposal `{proposal_id}` is not pending"));
        };
        let result = (|| {
            let Stage::AwaitingApproval {
                step_idx,
                action_hash,
                action,
                requested_by,
                ..
            } = &incident.stage
            else {
                return Err(format!("proposal `{proposal_id}` is not pending"));
            };
            if hash != action_hash {
                return Err(format!(
                    "the approval is for another version of the step (hash {} does not match {}); show the proposal again and approve what it says now",
                    short_hash(hash),
                    short_hash(action_hash)
                ));
            }
            if by == requested_by {
                return Err(format!(
                    "{by} requested this step and cannot also approve it; another person must"
                ));
            }
            Ok((*step_idx, action.clone()))
        })();
        let outcome = match result {
            Ok((step_idx, action)) => {
                incident
                    .history
                    .push(format!("{by} approved: {}", action.describe()));
                self.act(&mut incident, step_idx, Phase::Forward, action, out);
                Ok("approved; the step runs now".to_owned())
            }
            Err(refusal) => Err(refusal),
        };
        self.incidents.insert(incident.id.clone(), incident);
        outcome
    }

    fn reject(
        &mut self,
        by: &str,
        reason: &str,
        proposal_id: &str,
        now: Timestamp,
        out: &mut Vec<Command>,
    ) -> Result<String, String> {
        let incident_id = self.proposal_incident(proposal_id)?;
        let Some(mut incident) = self.incidents.remove(&incident_id) else {
            return Err(format!("proposal `{proposal_id}` is not pending"));
        };
        if !matches!(incident.stage, Stage::AwaitingApproval { .. }) {
            self.incidents.insert(incident.id.clone(), incident);
            return Err(format!("proposal `{proposal_id}` is not pending"));
        }
        incident
            .history
            .push(format!("{by} rejected the proposal: {reason}"));
        let why = format!("{by} rejected vigil's proposal ({reason})");
        if incident.completed.is_empty() {
            // A person said no and nothing was changed: the incident is theirs now.
            self.escalate(&mut incident, &why, "Decide what to do instead.", out);
        } else {
            self.begin_compensation(&mut incident, &why, now, out);
        }
        self.incidents.insert(incident.id.clone(), incident);
        Ok("rejected".to_owned())
    }

    fn proposal_incident(&self, proposal_id: &str) -> Result<String, String> {
        let incident_id = proposal_id
            .split_once('/')
            .map_or(proposal_id, |(incident, _)| incident);
        if self.incidents.contains_key(incident_id) {
            Ok(incident_id.to_owned())
        } else {
            Err(format!(
                "no open incident has proposal `{proposal_id}` (it may have ended)"
            ))
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
            self.killed.get(&scope).map(|by| {
                format!(
                    "the kill switch for {} is on (set by {by})",
                    scope.describe()
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
