//! `litellm.block_team` and its inverse `litellm.unblock_team`: refuse (or allow again) every
//! key of a team on a LiteLLM gateway. Cedar: `block_team` / `unblock_team` on the `Team`.

use std::collections::BTreeMap;

use super::{
    Action, ActionKind, ActionName, SimulatedAction, Spec, StepParams, Target, no_literal_problem,
    no_params_problem,
};

/// `litellm.block_team`: param `team`.
pub(super) const BLOCK: Spec = Spec {
    name: "litellm.block_team",
    cedar_action: ActionName::BlockTeam,
    resource_param: "team",
    target: Target::LitellmAdmin,
    params: &["team"],
    optional_params: &["target"],
    undoes: None,
    params_problem: no_params_problem,
    literal_problem: no_literal_problem,
    build: build_block,
};

/// `litellm.unblock_team`: param `team`.
pub(super) const UNBLOCK: Spec = Spec {
    name: "litellm.unblock_team",
    cedar_action: ActionName::UnblockTeam,
    build: build_unblock,
    ..BLOCK
};

fn build_block(params: &StepParams<'_>) -> Result<Action, String> {
    Ok(Action::LitellmBlockTeam {
        source: params.source(),
        team: params.required("team")?,
    })
}

fn build_unblock(params: &StepParams<'_>) -> Result<Action, String> {
    Ok(Action::LitellmUnblockTeam {
        source: params.source(),
        team: params.required("team")?,
    })
}

/// For people: `block team search on litellm`.
pub(super) fn describe(block: bool, source: &str, team: &str) -> String {
    let verb = if block { "block" } else { "unblock" };
    format!("{verb} team {team} on {source}")
}

/// The simulated answer: nothing replaced.
pub(super) fn simulate(block: bool, team: &str) -> SimulatedAction {
    SimulatedAction {
        kind: if block {
            ActionKind::LitellmBlockTeam
        } else {
            ActionKind::LitellmUnblockTeam
        },
        target: team.to_owned(),
        version: None,
        prior: BTreeMap::new(),
    }
}
