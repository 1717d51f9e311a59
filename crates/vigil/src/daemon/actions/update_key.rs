//! `litellm.update_key` (and `litellm.restore_key`, which the engine turns into the same
//! action) against a LiteLLM gateway: the limits it replaced are reported in `prior`, the
//! answer must show the limits asked, and after a crash the key's limits are read back first.

use std::collections::BTreeMap;

use vigil_connectors::ConnectorError;
use vigil_connectors::litellm::{KeyState, KeyUpdate, Limit};
use vigil_core::engine::ActionOutcome;

use super::{Targets, litellm, outcome};

/// Sets `limits` on `key`, reporting the ones replaced.
pub(super) async fn act(
    targets: &Targets,
    source: &str,
    key: &str,
    limits: &BTreeMap<String, String>,
) -> Result<ActionOutcome, ConnectorError> {
    let admin = litellm(targets, source)?;
    let before = admin.key_info(key).await?;
    let update = key_update(key, limits)?;
    let after = admin.update_key(&update).await?;
    let prior: BTreeMap<String, String> = limits
        .keys()
        .map(|name| (name.clone(), limit_text(&before, name)))
        .collect();
    let mismatched = mismatched_limits(&after, limits);
    Ok(if mismatched.is_empty() {
        outcome(
            true,
            format!("limits set ({})", describe_limits(limits)),
            prior,
        )
    } else {
        outcome(
            false,
            format!(
                "the gateway answered, but reports {}",
                mismatched.join(", ")
            ),
            prior,
        )
    })
}

/// Whether the key already reads the limits asked.
pub(super) async fn already_done(
    targets: &Targets,
    source: &str,
    key: &str,
    limits: &BTreeMap<String, String>,
) -> Result<Option<String>, ConnectorError> {
    let state = litellm(targets, source)?.key_info(key).await?;
    Ok(mismatched_limits(&state, limits)
        .is_empty()
        .then(|| format!("the key reads {}", describe_limits(limits))))
}

/// The update for `limits` (`none` removes a limit).
fn key_update(key: &str, limits: &BTreeMap<String, String>) -> Result<KeyUpdate, ConnectorError> {
    let parse = |name: &str| -> Result<Option<Limit>, ConnectorError> {
        let Some(text) = limits.get(name) else {
            return Ok(None);
        };
        if text == "none" {
            return Ok(Some(Limit::Unlimited));
        }
        text.parse::<f64>()
            .ok()
            .filter(|value| value.is_finite() && *value >= 0.0)
            .map(|value| Some(Limit::At(value)))
            .ok_or_else(|| ConnectorError::NotConfigured {
                what: format!("`{name}` is `{text}`, not a number or `none`"),
            })
    };
    Ok(KeyUpdate {
        key: key.to_owned(),
        max_budget: parse("max_budget")?,
        rpm_limit: parse("rpm_limit")?,
        tpm_limit: parse("tpm_limit")?,
        blocked: None,
    })
}

/// A key's current limit in the form runbooks write: a number, or `none`.
fn limit_text(state: &KeyState, name: &str) -> String {
    let value = match name {
        "max_budget" => state.max_budget,
        "rpm_limit" => state.rpm_limit,
        "tpm_limit" => state.tpm_limit,
        _ => None,
    };
    value.map_or_else(|| "none".to_owned(), format_limit)
}

fn format_limit(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{value:.0}")
    } else {
        format!("{value}")
    }
}

/// The limits the key does not show as asked, described.
fn mismatched_limits(state: &KeyState, limits: &BTreeMap<String, String>) -> Vec<String> {
    limits
        .iter()
        .filter_map(|(name, wanted)| {
            let actual = limit_text(state, name);
            let same = actual == *wanted
                || matches!((actual.parse::<f64>(), wanted.parse::<f64>()), (Ok(a), Ok(b)) if a == b);
            (!same).then(|| format!("{name}={actual} (asked {wanted})"))
        })
        .collect()
}

fn describe_limits(limits: &BTreeMap<String, String>) -> String {
    limits
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect::<Vec<_>>()
        .join(", ")
}
