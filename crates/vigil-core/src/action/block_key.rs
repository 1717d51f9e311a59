//! `litellm.block_key` and its inverse `litellm.unblock_key`: refuse (or allow again) one
//! virtual key on a LiteLLM gateway. Cedar: `block` / `unblock` on the `ApiKey`.

use std::collections::BTreeMap;

use super::{
    Action, ActionKind, ActionName, SimulatedAction, Spec, StepParams, Target, no_literal_problem,
    no_params_problem, short,
};

/// `litellm.block_key`: param `key`.
pub(super) const BLOCK: Spec = Spec {
    name: "litellm.block_key",
    cedar_action: ActionName::Block,
    resource_param: "key",
    target: Target::LitellmAdmin,
    params: &["key"],
    optional_params: &["target"],
    undoes: None,
    params_problem: no_params_problem,
    literal_problem: no_literal_problem,
    build: build_block,
};

/// `litellm.unblock_key`: param `key`.
pub(super) const UNBLOCK: Spec = Spec {
    name: "litellm.unblock_key",
    cedar_action: ActionName::Unblock,
    build: build_unblock,
    ..BLOCK
};

fn build_block(params: &StepParams<'_>) -> Result<Action, String> {
    Ok(Action::LitellmBlockKey {
        source: params.source(),
        key: params.required("key")?,
    })
}

fn build_unblock(params: &StepParams<'_>) -> Result<Action, String> {
    Ok(Action::LitellmUnblockKey {
        source: params.source(),
        key: params.required("key")?,
    })
}

/// For people: `block key sk-1234abcd on litellm`.
pub(super) fn describe(block: bool, source: &str, key: &str) -> String {
    let verb = if block { "block" } else { "unblock" };
    format!("{verb} key {} on {source}", short(key))
}

/// The simulated answer: nothing replaced.
pub(super) fn simulate(block: bool, key: &str) -> SimulatedAction {
    SimulatedAction {
        kind: if block {
            ActionKind::LitellmBlockKey
        } else {
            ActionKind::LitellmUnblockKey
        },
        target: key.to_owned(),
        version: None,
        prior: BTreeMap::new(),
    }
}
