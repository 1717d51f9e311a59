//! `litellm.set_fallbacks` and its inverse `litellm.restore_fallbacks`: route a model group
//! to fallbacks, and put back the ones that replaced. Cedar: `failover` on the `Deployment`.
//! Both are carried out as [`Action::LitellmSetFallbacks`].

use std::collections::BTreeMap;

use super::{
    Action, ActionKind, ActionName, SimulatedAction, Spec, StepParams, Target, no_literal_problem,
    split_list,
};

/// `litellm.set_fallbacks`: `model` and `fallbacks` (comma-separated model names).
pub(super) const SET: Spec = Spec {
    name: "litellm.set_fallbacks",
    cedar_action: ActionName::Failover,
    resource_param: "model",
    target: Target::LitellmAdmin,
    params: &["model", "fallbacks"],
    optional_params: &["target"],
    undoes: None,
    params_problem: super::no_params_problem,
    literal_problem: fallbacks_problem,
    build: build_set,
};

/// `litellm.restore_fallbacks`: `model`; only as the compensation of `litellm.set_fallbacks`.
pub(super) const RESTORE: Spec = Spec {
    name: "litellm.restore_fallbacks",
    params: &["model"],
    undoes: Some(ActionKind::LitellmSetFallbacks),
    literal_problem: no_literal_problem,
    build: build_restore,
    ..SET
};

fn fallbacks_problem(name: &str, value: &str) -> Option<String> {
    (name == "fallbacks" && value.split(',').any(|model| model.trim().is_empty()))
        .then(|| "must list model names separated by commas".to_owned())
}

fn build_set(params: &StepParams<'_>) -> Result<Action, String> {
    Ok(Action::LitellmSetFallbacks {
        source: params.source(),
        model: params.required("model")?,
        fallbacks: split_list(&params.required("fallbacks")?),
    })
}

fn build_restore(params: &StepParams<'_>) -> Result<Action, String> {
    Ok(Action::LitellmSetFallbacks {
        source: params.source(),
        model: params.required("model")?,
        fallbacks: split_list(params.prior()?.get("fallbacks").map_or("", String::as_str)),
    })
}

/// For people: `route gpt-4o to claude, mistral on litellm`.
pub(super) fn describe(source: &str, model: &str, fallbacks: &[String]) -> String {
    if fallbacks.is_empty() {
        format!("remove the fallbacks of {model} on {source}")
    } else {
        format!("route {model} to {} on {source}", fallbacks.join(", "))
    }
}

/// The simulated answer: the fallbacks replaced; a restore when it empties them.
pub(super) fn simulate(
    current: &BTreeMap<String, Vec<String>>,
    model: &str,
    fallbacks: &[String],
) -> SimulatedAction {
    let current = current.get(model).cloned().unwrap_or_default();
    SimulatedAction {
        kind: if fallbacks.is_empty() {
            ActionKind::LitellmRestoreFallbacks
        } else {
            ActionKind::LitellmSetFallbacks
        },
        target: model.to_owned(),
        version: None,
        prior: BTreeMap::from([("fallbacks".to_owned(), current.join(","))]),
    }
}

/// The simulated model keeps its new fallbacks.
pub(super) fn apply(
    current: &mut BTreeMap<String, Vec<String>>,
    model: &str,
    fallbacks: &[String],
) {
    current.insert(model.to_owned(), fallbacks.to_vec());
}
