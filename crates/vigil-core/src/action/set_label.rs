//! `langfuse.set_label`: move a Langfuse prompt's label (default `production`) to a version.
//! Cedar: `rollback` on the `Prompt`.

use std::collections::BTreeMap;

use super::{
    Action, ActionKind, ActionName, SimulatedAction, Spec, StepParams, Target, no_literal_problem,
    no_params_problem,
};

/// `langfuse.set_label`: `prompt`, `version`, optional `label`; `target` names the project.
pub(super) const SET_LABEL: Spec = Spec {
    name: "langfuse.set_label",
    cedar_action: ActionName::Rollback,
    resource_param: "prompt",
    target: Target::LangfuseProject,
    params: &["prompt", "version"],
    optional_params: &["target", "label"],
    undoes: None,
    params_problem: no_params_problem,
    literal_problem: no_literal_problem,
    build,
};

fn build(params: &StepParams<'_>) -> Result<Action, String> {
    let version = params.required("version")?;
    Ok(Action::LangfuseSetLabel {
        target: params
            .param("target")
            .unwrap_or_else(|| "langfuse".to_owned()),
        prompt: params.required("prompt")?,
        version: version
            .trim()
            .parse()
            .map_err(|_| format!("`version` is `{version}`, not a version number"))?,
        label: params
            .param("label")
            .unwrap_or_else(|| "production".to_owned()),
    })
}

/// For people: `move label production of prompt support to version 3 on langfuse`.
pub(super) fn describe(target: &str, prompt: &str, version: u32, label: &str) -> String {
    format!("move label {label} of prompt {prompt} to version {version} on {target}")
}

/// The simulated answer: about the prompt and its version; nothing replaced.
pub(super) fn simulate(prompt: &str, version: u32) -> SimulatedAction {
    SimulatedAction {
        kind: ActionKind::LangfuseSetLabel,
        target: prompt.to_owned(),
        version: Some(version),
        prior: BTreeMap::new(),
    }
}
