//! Authorization requests and decisions as plain data.
//!
//! The engine builds an [`AuthzRequest`] for every step it wants to take and waits for an
//! [`AuthzDecision`]; `vigil-policy` evaluates the request with Cedar. Keeping both sides as
//! data means a decision can be recorded, replayed, and re-evaluated under other policies.
//! People's instructions are asked about in the same way, as [`HumanAuthzRequest`]s
//! (`people.rs`).

mod people;
mod trust;

pub use people::{HumanActionName, HumanAuthzRequest, HumanContext};
pub use trust::TrustTally;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The kinds of entity that appear in a request. Each maps to a Cedar entity type in the
/// `Vigil` namespace of `policies/vigil.cedarschema`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum EntityType {
    /// A runbook acting on vigil's behalf (the principal of every remediation step).
    Runbook,
    /// A virtual API key on an LLM gateway.
    ApiKey,
    /// A team that owns keys.
    Team,
    /// A model deployment behind a gateway (one provider, model and endpoint).
    Deployment,
    /// A model provider (OpenAI, Anthropic, a self-hosted vLLM).
    Provider,
    /// A managed prompt (for example in Langfuse), whose `production` label picks a version.
    Prompt,
    /// Any other service vigil may call over HTTP.
    Service,
    /// An authenticated person (the principal of every human instruction).
    Human,
    /// A group a person is in, as their credential says (for example `search-oncall`).
    Group,
    /// A role a person holds: `viewer`, `approver`, `operator` or `admin`.
    Role,
    /// A step vigil proposed and a person may approve or reject.
    Proposal,
    /// A kill switch: global, for a runbook, or for a target.
    Control,
    /// A silence of matching findings.
    Silence,
}

impl EntityType {
    /// Every entity type, in declaration order.
    pub const ALL: [EntityType; 13] = [
        EntityType::Runbook,
        EntityType::ApiKey,
        EntityType::Team,
        EntityType::Deployment,
        EntityType::Provider,
        EntityType::Prompt,
        EntityType::Service,
        EntityType::Human,
        EntityType::Group,
        EntityType::Role,
        EntityType::Proposal,
        EntityType::Control,
        EntityType::Silence,
    ];

    /// The entity types of remediation: runbooks and what they act on. Policy sets recorded
    /// before people were authorized declare only these.
    pub const REMEDIATION: [EntityType; 7] = [
        EntityType::Runbook,
        EntityType::ApiKey,
        EntityType::Team,
        EntityType::Deployment,
        EntityType::Provider,
        EntityType::Prompt,
        EntityType::Service,
    ];

    /// The entity types a kill switch may name as its target.
    pub const TARGETS: [EntityType; 5] = [
        EntityType::ApiKey,
        EntityType::Team,
        EntityType::Deployment,
        EntityType::Prompt,
        EntityType::Service,
    ];

    /// The unqualified Cedar type name, for example `ApiKey`.
    #[must_use]
    pub fn cedar_name(self) -> &'static str {
        match self {
            EntityType::Runbook => "Runbook",
            EntityType::ApiKey => "ApiKey",
            EntityType::Team => "Team",
            EntityType::Deployment => "Deployment",
            EntityType::Provider => "Provider",
            EntityType::Prompt => "Prompt",
            EntityType::Service => "Service",
            EntityType::Human => "Human",
            EntityType::Group => "Group",
            EntityType::Role => "Role",
            EntityType::Proposal => "Proposal",
            EntityType::Control => "Control",
            EntityType::Silence => "Silence",
        }
    }
}

/// The identity of one entity.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct EntityRef {
    /// Its type.
    pub entity_type: EntityType,
    /// Its id within the type, for example a runbook id or a hashed API key.
    pub id: String,
}

/// An attribute value. Cedar's schema decides which attribute has which type.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AttrValue {
    /// A Cedar `Bool`.
    Bool(bool),
    /// A Cedar `Long`.
    Long(i64),
    /// A Cedar `String`.
    String(String),
    /// A reference to another entity (for example a proposal's `owner_oncall` group).
    Entity(EntityRef),
}

/// An entity with its attributes and parents, as Cedar should see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entity {
    /// Its identity.
    pub uid: EntityRef,
    /// Its attributes, by name.
    pub attrs: BTreeMap<String, AttrValue>,
    /// The entities it is `in` (for example the team of a key).
    pub parents: Vec<EntityRef>,
}

/// The remediation actions a step may ask for. Each maps to a Cedar action id; the schema
/// groups them (`remediate` holds every action that changes something; `contain`, `reroute`
/// and `revert` the kinds of change).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionName {
    /// Block a key (Cedar `Vigil::Action::"block"`).
    Block,
    /// Unblock a key (Cedar `Vigil::Action::"unblock"`).
    Unblock,
    /// Change a key's budget, rpm or tpm limits, to lower or restore them (`throttle`).
    Throttle,
    /// Block every key of a team (`block_team`).
    BlockTeam,
    /// Unblock a team (`unblock_team`).
    UnblockTeam,
    /// Set a deployment's fallbacks, to route around it or to restore them (`failover`).
    Failover,
    /// Move a prompt's `production` label to another version (`rollback`).
    Rollback,
    /// Tell a team something, changing nothing (`notify`).
    Notify,
    /// Call another service over HTTP (`call`).
    Call,
}

impl ActionName {
    /// Every action, in declaration order.
    pub const ALL: [ActionName; 9] = [
        ActionName::Block,
        ActionName::Unblock,
        ActionName::Throttle,
        ActionName::BlockTeam,
        ActionName::UnblockTeam,
        ActionName::Failover,
        ActionName::Rollback,
        ActionName::Notify,
        ActionName::Call,
    ];

    /// The Cedar action id, for example `block`.
    #[must_use]
    pub fn cedar_id(self) -> &'static str {
        match self {
            ActionName::Block => "block",
            ActionName::Unblock => "unblock",
            ActionName::Throttle => "throttle",
            ActionName::BlockTeam => "block_team",
            ActionName::UnblockTeam => "unblock_team",
            ActionName::Failover => "failover",
            ActionName::Rollback => "rollback",
            ActionName::Notify => "notify",
            ActionName::Call => "call",
        }
    }

    /// The kind of resource the action is about (the schema must accept it there).
    #[must_use]
    pub fn resource_type(self) -> EntityType {
        match self {
            ActionName::Block | ActionName::Unblock | ActionName::Throttle => EntityType::ApiKey,
            ActionName::BlockTeam | ActionName::UnblockTeam | ActionName::Notify => {
                EntityType::Team
            }
            ActionName::Failover => EntityType::Deployment,
            ActionName::Rollback => EntityType::Prompt,
            ActionName::Call => EntityType::Service,
        }
    }
}

/// Whether vigil acts or only proposes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Record a proposal for a human; change nothing.
    Advisory,
    /// Act, verify, and compensate when the change did not work.
    Autonomous,
}

impl Mode {
    /// The stricter of two modes: advisory wins over autonomous.
    #[must_use]
    pub fn stricter(self, other: Mode) -> Mode {
        match (self, other) {
            (Mode::Autonomous, Mode::Autonomous) => Mode::Autonomous,
            (Mode::Advisory, _) | (_, Mode::Advisory) => Mode::Advisory,
        }
    }

    /// The lowercase name used in config files and Cedar contexts.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Advisory => "advisory",
            Mode::Autonomous => "autonomous",
        }
    }
}

/// The facts about the situation that policies may look at.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthzContext {
    /// The effective mode of the runbook run (the stricter of the global and runbook modes).
    pub mode: Mode,
    /// The incident's severity: `page`, `ticket` or `info`.
    pub severity: String,
    /// How many keys, teams or users this step touches.
    pub blast_radius: i64,
    /// The attempt number of this step within the incident, starting at 1.
    pub attempt: i64,
    /// Seconds since the incident was opened.
    pub incident_age_secs: i64,
    /// The hour of the day in UTC, 0 to 23.
    pub hour_utc: i64,
    /// The name of the detector whose finding opened the incident.
    pub detector: String,
    /// The diagnoser's confidence in the hypothesis, in percent (0 to 100).
    pub confidence_pct: i64,
    /// Whether this step undoes an earlier step that did not work.
    pub is_compensation: bool,
    /// How often this runbook's action was verified to work, in percent: `(verified + 1) /
    /// (runs + 2)`, so 50 with no history (see `TrustTally::score_pct`). A request recorded
    /// before the field existed reads as 50: no verified outcome is known for it.
    #[serde(default = "no_trust_history")]
    pub trust_pct: i64,
    /// What a failover moves traffic between (`failover` steps that set fallbacks, in
    /// sessions with a topology): the source's and the targets' modality and context window,
    /// so that policies can refuse a move to an incompatible model. Absent elsewhere, and in
    /// requests recorded before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failover: Option<FailoverFacts>,
    /// Whether the assistant's best hypothesis, checked against vigil's store, agrees with
    /// the diagnosis' best (sessions with an assistant whose answer checked out before this
    /// step); absent otherwise, so that a policy asks `context has assistant_agrees` first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assistant_agrees: Option<bool>,
}

/// The models a failover moves traffic between, as the topology knows them. A modality the
/// topology does not know is [`UNKNOWN_MODALITY`], a context window it does not know is 0.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailoverFacts {
    /// The model group whose traffic moves.
    pub source: String,
    /// Its modality (`chat`, `embedding`, `rerank`, `image`, `audio`, or `unknown`).
    pub source_modality: String,
    /// Its context window in tokens (0: unknown).
    pub source_context_window: i64,
    /// Where it moves, comma-separated as the step gives them.
    pub target: String,
    /// The targets' modality: theirs when they all share one, `mixed` when they differ,
    /// `unknown` when any is unknown.
    pub target_modality: String,
    /// The smallest context window among the targets (0: any is unknown).
    pub target_context_window: i64,
}

/// The modality of a model the topology has no modality for.
pub const UNKNOWN_MODALITY: &str = "unknown";

/// The modality of failover targets that do not share one.
pub const MIXED_MODALITY: &str = "mixed";

/// The trust score of a runbook action with no history.
fn no_trust_history() -> i64 {
    TrustTally::score_pct(0, 0)
}

/// One question for the policy engine: may `principal` do `action` to `resource` now?
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthzRequest {
    /// Who asks: the runbook.
    pub principal: Entity,
    /// What it wants to do.
    pub action: ActionName,
    /// To what.
    pub resource: Entity,
    /// In which situation.
    pub context: AuthzContext,
}

/// The outcome of an authorization.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    /// A permit policy applied and no forbid policy did.
    Allow,
    /// Anything else, including errors: decisions fail closed.
    Deny,
}

/// The policy engine's answer, with what is needed to audit it later.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthzDecision {
    /// Allow or deny.
    pub effect: Effect,
    /// The `@id`s of the policies that determined the effect (empty for a default deny).
    pub determining_policies: Vec<String>,
    /// Evaluation errors, each naming its policy; any error counts against allowing.
    pub errors: Vec<String>,
    /// The SHA-256 (hex) of the policy set that decided.
    pub policy_set_hash: String,
}
