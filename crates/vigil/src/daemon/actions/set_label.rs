//! `langfuse.set_label` against a Langfuse project: the answer must show the label on the
//! version; after a crash, the labelled version is read back first.

use std::collections::BTreeMap;

use vigil_connectors::ConnectorError;
use vigil_core::engine::ActionOutcome;

use super::{Targets, langfuse, outcome};

/// Moves `label` of `prompt` to `version`, checked in Langfuse's answer.
pub(super) async fn act(
    targets: &Targets,
    target: &str,
    prompt: &str,
    version: u32,
    label: &str,
) -> Result<ActionOutcome, ConnectorError> {
    let client = langfuse(targets, target)?;
    let updated = client
        .set_labels(prompt, version, &[label.to_owned()])
        .await?;
    Ok(if updated.version == version && updated.has_label(label) {
        outcome(
            true,
            format!("{label} now serves version {version} of {prompt}"),
            BTreeMap::new(),
        )
    } else {
        outcome(
            false,
            format!(
                "Langfuse answered, but version {} has labels [{}]",
                updated.version,
                updated.labels.join(", ")
            ),
            BTreeMap::new(),
        )
    })
}

/// Whether `label` already serves `version`.
pub(super) async fn already_done(
    targets: &Targets,
    target: &str,
    prompt: &str,
    version: u32,
    label: &str,
) -> Result<Option<String>, ConnectorError> {
    let current = langfuse(targets, target)?
        .prompt(prompt, Some(label), None)
        .await;
    match current {
        Ok(current) if current.version == version => {
            Ok(Some(format!("{label} already serves version {version}")))
        }
        Ok(_) => Ok(None),
        Err(error) if error.status() == Some(404) => Ok(None),
        Err(error) => Err(error),
    }
}
