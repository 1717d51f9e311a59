//! `litellm.update_key` and its inverse `litellm.restore_key`: change a key's limits
//! (`max_budget`, `rpm_limit`, `tpm_limit`), and put back the ones an update replaced.
//! Cedar: `throttle` on the `ApiKey`. Both are carried out as [`Action::LitellmUpdateKey`].

use std::collections::BTreeMap;

use super::{
    Action, ActionKind, ActionName, SimulatedAction, Spec, StepParams, Target, no_literal_problem,
    short,
};

/// The limits a key update may set.
const LIMITS: [&str; 3] = ["max_budget", "rpm_limit", "tpm_limit"];

/// `litellm.update_key`: `key` and at least one limit.
pub(super) const UPDATE: Spec = Spec {
    name: "litellm.update_key",
    cedar_action: ActionName::Throttle,
    resource_param: "key",
    target: Target::LitellmAdmin,
    params: &["key"],
    optional_params: &["target", "max_budget", "rpm_limit", "tpm_limit"],
    undoes: None,
    params_problem: needs_a_limit,
    literal_problem: limit_problem,
    build: build_update,
};

/// `litellm.restore_key`: `key`; only as the compensation of `litellm.update_key`.
pub(super) const RESTORE: Spec = Spec {
    name: "litellm.restore_key",
    optional_params: &["target"],
    undoes: Some(ActionKind::LitellmUpdateKey),
    params_problem: super::no_params_problem,
    literal_problem: no_literal_problem,
    build: build_restore,
    ..UPDATE
};

fn needs_a_limit(params: &BTreeMap<String, String>) -> Option<&'static str> {
    (!LIMITS.iter().any(|limit| params.contains_key(*limit))).then_some(
        "`litellm.update_key` needs at least one of `max_budget`, `rpm_limit`, `tpm_limit`",
    )
}

/// A limit is a number of at least 0, or `none`.
fn is_limit(value: &str) -> bool {
    value == "none"
        || value
            .parse::<f64>()
            .is_ok_and(|n| n.is_finite() && n >= 0.0)
}

fn limit_problem(name: &str, value: &str) -> Option<String> {
    (LIMITS.contains(&name) && !is_limit(value))
        .then(|| format!("`{value}` must be a number of at least 0, or `none`"))
}

fn build_update(params: &StepParams<'_>) -> Result<Action, String> {
    let mut limits = BTreeMap::new();
    for name in LIMITS {
        if let Some(value) = params.param(name) {
            let value = value.trim().to_owned();
            if !is_limit(&value) {
                return Err(format!("`{name}` is `{value}`, not a number or `none`"));
            }
            limits.insert(name.to_owned(), value);
        }
    }
    Ok(Action::LitellmUpdateKey {
        source: params.source(),
        key: params.required("key")?,
        limits,
    })
}

fn build_restore(params: &StepParams<'_>) -> Result<Action, String> {
    Ok(Action::LitellmUpdateKey {
        source: params.source(),
        key: params.required("key")?,
        limits: params.prior()?.clone(),
    })
}

/// For people: `set rpm_limit=10 on key sk-1234abcd on litellm`.
pub(super) fn describe(source: &str, key: &str, limits: &BTreeMap<String, String>) -> String {
    let limits: Vec<String> = limits
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect();
    format!(
        "set {} on key {} on {source}",
        limits.join(", "),
        short(key)
    )
}

/// The simulated answer: the limits replaced; a restore when it removes limits vigil set.
pub(super) fn simulate(
    key_limits: &BTreeMap<String, BTreeMap<String, String>>,
    key: &str,
    limits: &BTreeMap<String, String>,
) -> SimulatedAction {
    let current = key_limits.get(key).cloned().unwrap_or_default();
    let prior: BTreeMap<String, String> = limits
        .keys()
        .map(|name| {
            let value = current
                .get(name)
                .cloned()
                .unwrap_or_else(|| "none".to_owned());
            (name.clone(), value)
        })
        .collect();
    let restores = limits.values().all(|value| value == "none") && !current.is_empty();
    SimulatedAction {
        kind: if restores {
            ActionKind::LitellmRestoreKey
        } else {
            ActionKind::LitellmUpdateKey
        },
        target: key.to_owned(),
        version: None,
        prior,
    }
}

/// The simulated key keeps its new limits (`none` removes one).
pub(super) fn apply(
    key_limits: &mut BTreeMap<String, BTreeMap<String, String>>,
    key: &str,
    limits: &BTreeMap<String, String>,
) {
    let entry = key_limits.entry(key.to_owned()).or_default();
    for (name, value) in limits {
        if value == "none" {
            entry.remove(name);
        } else {
            entry.insert(name.clone(), value.clone());
        }
    }
}
