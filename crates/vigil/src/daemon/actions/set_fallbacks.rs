//! `litellm.set_fallbacks` (and `litellm.restore_fallbacks`, which the engine turns into the
//! same action) against a LiteLLM gateway: the fallbacks it replaced are reported in `prior`,
//! the answer must show the fallbacks asked, and after a crash they are read back first.

use std::collections::BTreeMap;

use vigil_connectors::ConnectorError;
use vigil_core::engine::ActionOutcome;

use super::{Targets, litellm, outcome};

/// Sets (or, when empty, removes) `model`'s fallbacks, reporting the ones replaced.
pub(super) async fn act(
    targets: &Targets,
    source: &str,
    model: &str,
    fallbacks: &[String],
) -> Result<ActionOutcome, ConnectorError> {
    let admin = litellm(targets, source)?;
    let before = admin.fallbacks(model).await?;
    let prior = BTreeMap::from([("fallbacks".to_owned(), before.fallback_models.join(","))]);
    if fallbacks.is_empty() {
        admin.remove_fallbacks(model).await?;
        return Ok(outcome(
            true,
            format!("fallbacks of {model} removed"),
            prior,
        ));
    }
    let after = admin.set_fallbacks(model, fallbacks).await?;
    Ok(if after.fallback_models == fallbacks {
        outcome(
            true,
            format!("{model} falls back to {}", fallbacks.join(", ")),
            prior,
        )
    } else {
        outcome(
            false,
            format!(
                "the gateway answered, but reports fallbacks [{}]",
                after.fallback_models.join(", ")
            ),
            prior,
        )
    })
}

/// Whether `model` already reads the fallbacks asked.
pub(super) async fn already_done(
    targets: &Targets,
    source: &str,
    model: &str,
    fallbacks: &[String],
) -> Result<Option<String>, ConnectorError> {
    let current = litellm(targets, source)?.fallbacks(model).await?;
    Ok((current.fallback_models == fallbacks)
        .then(|| format!("{model} reads fallbacks [{}]", fallbacks.join(", "))))
}
