//! What a person tells vigil, as data: the closed set of instructions ([`HumanCommand`]) and
//! where a kill switch applies ([`KillScope`]). The admin API parses them (`instruction.rs`);
//! the engine checks and carries them out.

use serde::{Deserialize, Serialize};

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
        /// [`action_hash`](crate::engine::action_hash) of the proposal as shown to the approver.
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
