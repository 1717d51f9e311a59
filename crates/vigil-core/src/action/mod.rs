//! The closed set of things a runbook step can do, one module per kind (in the manner of
//! mini-redis' one module per command).
//!
//! A kind's module holds everything vigil-core knows about it: its name in runbooks, its
//! parameters and their checks ([`Spec`]), its Cedar action and the parameter naming the Cedar
//! resource, how a step's rendered parameters become the [`Action`] the engine commands, and
//! how that action is described to people. A kind and the kind that undoes it share a module
//! (`litellm.update_key` and `litellm.restore_key` both become [`Action::LitellmUpdateKey`]).
//!
//! The module also says how the simulator's stand-in for the targets ([`SimulatedTargets`])
//! sees the action: which kind it is, what it is about and the state it replaces. That is
//! pure, so it lives here; what needs I/O lives in the binary, one module per kind likewise:
//! `crates/vigil/src/daemon/actions/<kind>.rs` carries an action out against its target and
//! reads it back after a crash.
//!
//! Adding a kind: a module here with its [`Spec`] (and, when it changes something new, an
//! [`Action`] variant with its `describe` and simulated answer), one arm in
//! [`ActionKind::spec`] (and one in each `match` on [`Action`]), and a module in the binary's
//! `daemon/actions/`.

mod block_key;
mod block_team;
mod http_call;
mod set_fallbacks;
mod set_label;
mod update_key;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::authz::ActionName;

/// The actions a runbook step can take. The set is closed: each has a connector behind it.
///
/// Every action names a *target* (the configured gateway, prompt registry or HTTP allow-list
/// it goes through) with the optional `target` parameter; LiteLLM actions default to the
/// source the finding came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ActionKind {
    /// Block a virtual key on a LiteLLM gateway (`POST /key/block`). Param: `key`.
    #[serde(rename = "litellm.block_key")]
    LitellmBlockKey,
    /// Unblock a virtual key on a LiteLLM gateway (`POST /key/unblock`). Param: `key`.
    #[serde(rename = "litellm.unblock_key")]
    LitellmUnblockKey,
    /// Lower (or raise) a key's limits (`POST /key/update`): `key` and at least one of
    /// `max_budget`, `rpm_limit`, `tpm_limit` (a number, or `none` to remove the limit). The
    /// limits it replaced are remembered for `litellm.restore_key`.
    #[serde(rename = "litellm.update_key")]
    LitellmUpdateKey,
    /// Put back the limits an earlier `litellm.update_key` step of the run replaced. Param:
    /// `key`. Only valid as a compensation.
    #[serde(rename = "litellm.restore_key")]
    LitellmRestoreKey,
    /// Block a team: every key of it is refused (`POST /team/block`). Param: `team`.
    #[serde(rename = "litellm.block_team")]
    LitellmBlockTeam,
    /// Unblock a team (`POST /team/unblock`). Param: `team`.
    #[serde(rename = "litellm.unblock_team")]
    LitellmUnblockTeam,
    /// Route a model group's traffic to fallbacks: `model` and `fallbacks` (comma-separated
    /// model names). The fallbacks it replaced are remembered for `litellm.restore_fallbacks`.
    #[serde(rename = "litellm.set_fallbacks")]
    LitellmSetFallbacks,
    /// Put back the fallbacks an earlier `litellm.set_fallbacks` step replaced. Param:
    /// `model`. Only valid as a compensation.
    #[serde(rename = "litellm.restore_fallbacks")]
    LitellmRestoreFallbacks,
    /// Move a Langfuse prompt's label (default `production`) to a version:
    /// `PATCH /api/public/v2/prompts/{prompt}/versions/{version}`. Params: `prompt`,
    /// `version`, optional `label`; `target` names the Langfuse project in the config.
    #[serde(rename = "langfuse.set_label")]
    LangfuseSetLabel,
    /// Call a service over HTTP: `service` (the Cedar resource), `method`, `url` (its host
    /// must be on the config's allow-list), optional `body` (JSON) and `expect_status`.
    #[serde(rename = "http.call")]
    HttpCall,
}

impl ActionKind {
    /// Every action kind, in declaration order.
    pub const ALL: [ActionKind; 10] = [
        ActionKind::LitellmBlockKey,
        ActionKind::LitellmUnblockKey,
        ActionKind::LitellmUpdateKey,
        ActionKind::LitellmRestoreKey,
        ActionKind::LitellmBlockTeam,
        ActionKind::LitellmUnblockTeam,
        ActionKind::LitellmSetFallbacks,
        ActionKind::LitellmRestoreFallbacks,
        ActionKind::LangfuseSetLabel,
        ActionKind::HttpCall,
    ];

    /// Everything about the kind, from its module.
    #[must_use]
    pub fn spec(self) -> &'static Spec {
        match self {
            ActionKind::LitellmBlockKey => &block_key::BLOCK,
            ActionKind::LitellmUnblockKey => &block_key::UNBLOCK,
            ActionKind::LitellmUpdateKey => &update_key::UPDATE,
            ActionKind::LitellmRestoreKey => &update_key::RESTORE,
            ActionKind::LitellmBlockTeam => &block_team::BLOCK,
            ActionKind::LitellmUnblockTeam => &block_team::UNBLOCK,
            ActionKind::LitellmSetFallbacks => &set_fallbacks::SET,
            ActionKind::LitellmRestoreFallbacks => &set_fallbacks::RESTORE,
            ActionKind::LangfuseSetLabel => &set_label::SET_LABEL,
            ActionKind::HttpCall => &http_call::CALL,
        }
    }

    /// The name used in runbooks.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        self.spec().name
    }

    /// The Cedar action that authorizes it.
    #[must_use]
    pub fn cedar_action(self) -> ActionName {
        self.spec().cedar_action
    }

    /// The parameter that names the Cedar resource (its id).
    #[must_use]
    pub fn resource_param(self) -> &'static str {
        self.spec().resource_param
    }

    /// The parameters it requires.
    #[must_use]
    pub fn params(self) -> &'static [&'static str] {
        self.spec().params
    }

    /// The parameters it accepts besides the required ones.
    #[must_use]
    pub fn optional_params(self) -> &'static [&'static str] {
        self.spec().optional_params
    }

    /// Whether it only undoes an earlier step, from state the earlier step recorded.
    #[must_use]
    pub fn is_restore(self) -> bool {
        self.spec().undoes.is_some()
    }

    /// Whether it goes through a LiteLLM gateway's admin API.
    #[must_use]
    pub fn is_litellm(self) -> bool {
        self.spec().target == Target::LitellmAdmin
    }

    /// The action a step of this kind commands, from its rendered parameters.
    ///
    /// # Errors
    /// A parameter that is missing, empty or malformed, or (for a restore) no recorded state.
    pub fn build(self, params: &StepParams<'_>) -> Result<Action, String> {
        (self.spec().build)(params)
    }
}

/// What one action kind is, as data: its module's answer to every question vigil-core asks.
#[derive(Clone, Copy, Debug)]
pub struct Spec {
    /// The name used in runbooks, for example `litellm.block_key`.
    pub name: &'static str,
    /// The Cedar action that authorizes it.
    pub cedar_action: ActionName,
    /// The parameter that names the Cedar resource (its id).
    pub resource_param: &'static str,
    /// What it goes through, which the config must provide.
    pub target: Target,
    /// The parameters it requires.
    pub params: &'static [&'static str],
    /// The parameters it accepts besides the required ones.
    pub optional_params: &'static [&'static str],
    /// The kind whose step it undoes, for a kind that is only valid as a compensation.
    pub undoes: Option<ActionKind>,
    /// What is wrong with the set of parameters as written, beyond the required ones.
    pub params_problem: fn(&BTreeMap<String, String>) -> Option<&'static str>,
    /// What is wrong with one parameter written without variables (`name`, trimmed value).
    /// Templated values are checked when they are rendered, and a bad one fails the step.
    pub literal_problem: fn(&str, &str) -> Option<String>,
    /// How a step's rendered parameters become its action.
    pub build: fn(&StepParams<'_>) -> Result<Action, String>,
}

/// What an action goes through: the configured target the binary checks a runbook's step
/// has somewhere to go to. Closed; a kind with a new kind of target adds a variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// A LiteLLM source with an `admin` section: `target`, else the finding's source.
    LitellmAdmin,
    /// A Langfuse project under `actions.langfuse`: `target`, else `langfuse`.
    LangfuseProject,
    /// A host on `actions.http.allow_hosts`, given by the `url` parameter.
    HttpAllowList,
}

fn no_params_problem(_: &BTreeMap<String, String>) -> Option<&'static str> {
    None
}

fn no_literal_problem(_: &str, _: &str) -> Option<String> {
    None
}

/// A step's parameters when its action is built: rendered, with the gateway to use when the
/// step names none and the state the step it undoes recorded.
#[derive(Clone, Debug)]
pub struct StepParams<'a> {
    /// The rendered parameters, by name.
    pub rendered: BTreeMap<String, String>,
    /// The source the finding came from: LiteLLM actions go to it unless `target` says.
    pub default_source: &'a str,
    /// What the step this one undoes replaced, if it recorded anything.
    pub prior: Option<&'a BTreeMap<String, String>>,
}

impl StepParams<'_> {
    /// A parameter, if given.
    #[must_use]
    pub fn param(&self, name: &str) -> Option<String> {
        self.rendered.get(name).cloned()
    }

    /// A parameter that must be given and not blank.
    ///
    /// # Errors
    /// When it is missing or blank.
    pub fn required(&self, name: &str) -> Result<String, String> {
        self.param(name)
            .filter(|value| !value.trim().is_empty())
            .ok_or_else(|| format!("`{name}` is empty"))
    }

    /// The gateway: `target`, else the finding's source.
    #[must_use]
    pub fn source(&self) -> String {
        self.param("target")
            .unwrap_or_else(|| self.default_source.to_owned())
    }

    /// The state the undone step replaced.
    ///
    /// # Errors
    /// When it recorded none.
    pub fn prior(&self) -> Result<&BTreeMap<String, String>, String> {
        self.prior
            .filter(|prior| !prior.is_empty())
            .ok_or_else(|| "the step it undoes recorded no earlier state to restore".to_owned())
    }
}

/// A change in the world a runbook step makes. The set is closed; each has a connector.
///
/// `source` of the LiteLLM actions names the gateway (a configured source with an admin
/// section); `target` of a Langfuse action names a configured Langfuse project.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Action {
    /// Block a virtual key on the LiteLLM gateway behind `source`.
    LitellmBlockKey {
        /// The source (gateway) whose admin API to call.
        source: String,
        /// The key, raw or hashed.
        key: String,
    },
    /// Unblock a virtual key on the LiteLLM gateway behind `source`.
    LitellmUnblockKey {
        /// The source (gateway) whose admin API to call.
        source: String,
        /// The key, raw or hashed.
        key: String,
    },
    /// Change a key's limits. The answer reports the limits it replaced.
    LitellmUpdateKey {
        /// The source (gateway) whose admin API to call.
        source: String,
        /// The key, raw or hashed.
        key: String,
        /// `max_budget`, `rpm_limit`, `tpm_limit`: a number, or `none` for no limit.
        limits: BTreeMap<String, String>,
    },
    /// Block a team on the gateway.
    LitellmBlockTeam {
        /// The source (gateway) whose admin API to call.
        source: String,
        /// The team id.
        team: String,
    },
    /// Unblock a team on the gateway.
    LitellmUnblockTeam {
        /// The source (gateway) whose admin API to call.
        source: String,
        /// The team id.
        team: String,
    },
    /// Set a model group's fallbacks (empty: none). The answer reports the ones replaced.
    LitellmSetFallbacks {
        /// The source (gateway) whose admin API to call.
        source: String,
        /// The model group.
        model: String,
        /// The models to fall back to, in order.
        fallbacks: Vec<String>,
    },
    /// Move a Langfuse prompt's label to a version.
    LangfuseSetLabel {
        /// The configured Langfuse project.
        target: String,
        /// The prompt's name.
        prompt: String,
        /// The version to label.
        version: u32,
        /// The label, usually `production`.
        label: String,
    },
    /// Call a service over HTTP (its host must be on the config's allow-list).
    HttpCall {
        /// The service, as policies see it.
        service: String,
        /// GET, POST, PUT, PATCH or DELETE.
        method: String,
        /// The URL.
        url: String,
        /// A JSON body, if any.
        body: Option<String>,
        /// The statuses that count as success (any 2xx when empty).
        expect_status: Vec<u16>,
    },
}

impl Action {
    /// The Cedar action that authorizes it.
    #[must_use]
    pub fn cedar_action(&self) -> ActionName {
        match self {
            Action::LitellmBlockKey { .. } => block_key::BLOCK.cedar_action,
            Action::LitellmUnblockKey { .. } => block_key::UNBLOCK.cedar_action,
            Action::LitellmUpdateKey { .. } => update_key::UPDATE.cedar_action,
            Action::LitellmBlockTeam { .. } => block_team::BLOCK.cedar_action,
            Action::LitellmUnblockTeam { .. } => block_team::UNBLOCK.cedar_action,
            Action::LitellmSetFallbacks { .. } => set_fallbacks::SET.cedar_action,
            Action::LangfuseSetLabel { .. } => set_label::SET_LABEL.cedar_action,
            Action::HttpCall { .. } => http_call::CALL.cedar_action,
        }
    }

    /// A one-line description for people.
    #[must_use]
    pub fn describe(&self) -> String {
        match self {
            Action::LitellmBlockKey { source, key } => block_key::describe(true, source, key),
            Action::LitellmUnblockKey { source, key } => block_key::describe(false, source, key),
            Action::LitellmUpdateKey {
                source,
                key,
                limits,
            } => update_key::describe(source, key, limits),
            Action::LitellmBlockTeam { source, team } => block_team::describe(true, source, team),
            Action::LitellmUnblockTeam { source, team } => {
                block_team::describe(false, source, team)
            }
            Action::LitellmSetFallbacks {
                source,
                model,
                fallbacks,
            } => set_fallbacks::describe(source, model, fallbacks),
            Action::LangfuseSetLabel {
                target,
                prompt,
                version,
                label,
            } => set_label::describe(target, prompt, *version, label),
            Action::HttpCall {
                service,
                method,
                url,
                ..
            } => http_call::describe(service, method, url),
        }
    }
}

/// The simulator's stand-in for every target: the state actions replace (keys' limits,
/// models' fallbacks), so that each action reports what it replaced as a real target would.
#[derive(Clone, Debug, Default)]
pub struct SimulatedTargets {
    /// Each key's limits as set by actions (absent: `none`).
    key_limits: BTreeMap<String, BTreeMap<String, String>>,
    /// Each model's fallbacks as set by actions.
    fallbacks: BTreeMap<String, Vec<String>>,
}

/// How the simulated targets see one action before it is carried out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimulatedAction {
    /// The kind as runbooks name it (a restore is told from a change by whether it puts back
    /// what the stack had before vigil's first change).
    pub kind: ActionKind,
    /// What it is about: the key, team, model, prompt or service.
    pub target: String,
    /// The version, for labels.
    pub version: Option<u32>,
    /// The state it replaces.
    pub prior: BTreeMap<String, String>,
}

impl SimulatedTargets {
    /// How the targets see `action` now.
    #[must_use]
    pub fn classify(&self, action: &Action) -> SimulatedAction {
        match action {
            Action::LitellmBlockKey { key, .. } => block_key::simulate(true, key),
            Action::LitellmUnblockKey { key, .. } => block_key::simulate(false, key),
            Action::LitellmUpdateKey { key, limits, .. } => {
                update_key::simulate(&self.key_limits, key, limits)
            }
            Action::LitellmBlockTeam { team, .. } => block_team::simulate(true, team),
            Action::LitellmUnblockTeam { team, .. } => block_team::simulate(false, team),
            Action::LitellmSetFallbacks {
                model, fallbacks, ..
            } => set_fallbacks::simulate(&self.fallbacks, model, fallbacks),
            Action::LangfuseSetLabel {
                prompt, version, ..
            } => set_label::simulate(prompt, *version),
            Action::HttpCall { service, .. } => http_call::simulate(service),
        }
    }

    /// Keeps the state `action` sets, once it was carried out.
    pub fn apply(&mut self, action: &Action) {
        match action {
            Action::LitellmUpdateKey { key, limits, .. } => {
                update_key::apply(&mut self.key_limits, key, limits);
            }
            Action::LitellmSetFallbacks {
                model, fallbacks, ..
            } => set_fallbacks::apply(&mut self.fallbacks, model, fallbacks),
            // The simulated stack keeps no other state.
            Action::LitellmBlockKey { .. }
            | Action::LitellmUnblockKey { .. }
            | Action::LitellmBlockTeam { .. }
            | Action::LitellmUnblockTeam { .. }
            | Action::LangfuseSetLabel { .. }
            | Action::HttpCall { .. } => {}
        }
    }
}

/// The first 12 characters, for keys in descriptions.
fn short(text: &str) -> String {
    text.chars().take(12).collect()
}

/// `a, b ,c` → `["a", "b", "c"]`; empty items dropped.
fn split_list(list: &str) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_owned)
        .collect()
}
