//! Authorization requests about people's instructions: may this authenticated person approve
//! this proposal, turn this kill switch on, set this silence?
//!
//! The engine asks one for every instruction of a session that authorizes people
//! ([`PeopleRules`](crate::people::PeopleRules) in its config); `vigil-policy` decides it with
//! the same policy set as remediation steps, and the decision is recorded and replayed the
//! same way.

use serde::{Deserialize, Serialize};

use super::{Entity, EntityType};

/// The instructions a person may give. Each maps to a Cedar action id in the schema.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HumanActionName {
    /// Carry out a proposed step (`Vigil::Action::"approve"`).
    Approve,
    /// Refuse a proposed step (`reject`).
    Reject,
    /// Turn a kill switch on (`kill`).
    Kill,
    /// Turn a kill switch off (`unkill`).
    Unkill,
    /// Mute matching findings for a while (`silence`).
    Silence,
    /// End a silence early (`unsilence`).
    Unsilence,
}

impl HumanActionName {
    /// Every human action, in declaration order.
    pub const ALL: [HumanActionName; 6] = [
        HumanActionName::Approve,
        HumanActionName::Reject,
        HumanActionName::Kill,
        HumanActionName::Unkill,
        HumanActionName::Silence,
        HumanActionName::Unsilence,
    ];

    /// The Cedar action id, for example `approve`.
    #[must_use]
    pub fn cedar_id(self) -> &'static str {
        match self {
            HumanActionName::Approve => "approve",
            HumanActionName::Reject => "reject",
            HumanActionName::Kill => "kill",
            HumanActionName::Unkill => "unkill",
            HumanActionName::Silence => "silence",
            HumanActionName::Unsilence => "unsilence",
        }
    }

    /// The action whose Cedar id is `id`.
    #[must_use]
    pub fn from_cedar_id(id: &str) -> Option<HumanActionName> {
        HumanActionName::ALL
            .into_iter()
            .find(|action| action.cedar_id() == id)
    }

    /// The kind of resource the action is about.
    #[must_use]
    pub fn resource_type(self) -> EntityType {
        match self {
            HumanActionName::Approve | HumanActionName::Reject => EntityType::Proposal,
            HumanActionName::Kill | HumanActionName::Unkill => EntityType::Control,
            HumanActionName::Silence | HumanActionName::Unsilence => EntityType::Silence,
        }
    }
}

/// The facts about a person's instruction that policies may look at.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HumanContext {
    /// The hour of the day in UTC, 0 to 23.
    pub hour_utc: i64,
    /// How long a silence would last, in seconds (0 for every other instruction).
    pub duration_secs: i64,
    /// Whether the person said why.
    pub has_reason: bool,
}

/// One question about a person's instruction: may `principal` (a `Human`) do `action` to
/// `resource` (a `Proposal`, `Control` or `Silence`) now?
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HumanAuthzRequest {
    /// The person, with their groups and roles as parents.
    pub principal: Entity,
    /// What they want to do.
    pub action: HumanActionName,
    /// To what.
    pub resource: Entity,
    /// In which situation.
    pub context: HumanContext,
}
