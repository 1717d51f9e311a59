//! Carrying out one remediation action against its target, and reconciling one that a crash
//! left unfinished.
//!
//! Every action checks its effect in the target's answer (a block must come back blocked, a
//! label must come back on the version), so `succeeded` means "the target confirms the
//! intended state", not merely "the call returned 2xx". Actions that replace state report what
//! they replaced in `prior` (a key's limits, a model's fallbacks) so that a compensation can
//! put it back.
//!
//! Reconciling (after a restart, for an action whose intent is in the ledger but whose
//! outcome is not) reads the target first: when it already shows the intended state the
//! action is not made again. Generic HTTP calls cannot be read back, so they are sent again
//! with the same `Idempotency-Key`.

//!
//! One module per kind of action (see `vigil_core::action`): each carries its action out
//! against its target and reads it back after a crash; this module dispatches.

mod block_key;
mod block_team;
mod http_call;
mod set_fallbacks;
mod set_label;
mod update_key;

use std::collections::BTreeMap;

use vigil_connectors::ConnectorError;
use vigil_connectors::http_action::HttpCaller;
use vigil_connectors::langfuse::LangfuseClient;
use vigil_connectors::litellm::AdminClient;
use vigil_core::engine::{Action, ActionOutcome};

/// Every configured action target.
#[derive(Debug, Default)]
pub(crate) struct Targets {
    /// LiteLLM admin APIs, by source name.
    pub(crate) litellm: BTreeMap<String, AdminClient>,
    /// Langfuse projects, by name.
    pub(crate) langfuse: BTreeMap<String, LangfuseClient>,
    /// The generic HTTP caller, when `actions.http` is configured.
    pub(crate) http: Option<HttpCaller>,
}

/// Carries out `action`; with `reconcile`, first checks whether it is already done.
pub(crate) async fn run(
    targets: &Targets,
    action: &Action,
    idempotency_key: &str,
    reconcile: bool,
) -> ActionOutcome {
    if reconcile {
        match already_done(targets, action).await {
            Ok(Some(detail)) => {
                return ActionOutcome {
                    succeeded: true,
                    http_status: None,
                    detail: format!(
                        "already done before the restart ({detail}); reconciled, not repeated"
                    ),
                    prior: BTreeMap::new(),
                };
            }
            Ok(None) => {}
            Err(error) => return failed(&error),
        }
    }
    match act(targets, action, idempotency_key).await {
        Ok(outcome) => outcome,
        Err(error) => failed(&error),
    }
}

fn failed(error: &ConnectorError) -> ActionOutcome {
    ActionOutcome {
        succeeded: false,
        http_status: error.status(),
        detail: error.to_string(),
        prior: BTreeMap::new(),
    }
}

fn outcome(succeeded: bool, detail: String, prior: BTreeMap<String, String>) -> ActionOutcome {
    ActionOutcome {
        succeeded,
        http_status: Some(200),
        detail,
        prior,
    }
}

fn litellm<'a>(targets: &'a Targets, source: &str) -> Result<&'a AdminClient, ConnectorError> {
    targets
        .litellm
        .get(source)
        .ok_or_else(|| ConnectorError::NotConfigured {
            what: format!("source `{source}` has no LiteLLM admin API configured"),
        })
}

fn langfuse<'a>(targets: &'a Targets, name: &str) -> Result<&'a LangfuseClient, ConnectorError> {
    targets
        .langfuse
        .get(name)
        .ok_or_else(|| ConnectorError::NotConfigured {
            what: format!("no Langfuse project `{name}` is configured under `actions.langfuse`"),
        })
}

async fn act(
    targets: &Targets,
    action: &Action,
    idempotency_key: &str,
) -> Result<ActionOutcome, ConnectorError> {
    match action {
        Action::LitellmBlockKey { source, key } => block_key::act(targets, source, key, true).await,
        Action::LitellmUnblockKey { source, key } => {
            block_key::act(targets, source, key, false).await
        }
        Action::LitellmUpdateKey {
            source,
            key,
            limits,
        } => update_key::act(targets, source, key, limits).await,
        Action::LitellmBlockTeam { source, team } => {
            block_team::act(targets, source, team, true).await
        }
        Action::LitellmUnblockTeam { source, team } => {
            block_team::act(targets, source, team, false).await
        }
        Action::LitellmSetFallbacks {
            source,
            model,
            fallbacks,
        } => set_fallbacks::act(targets, source, model, fallbacks).await,
        Action::LangfuseSetLabel {
            target,
            prompt,
            version,
            label,
        } => set_label::act(targets, target, prompt, *version, label).await,
        Action::HttpCall {
            method,
            url,
            body,
            expect_status,
            ..
        } => {
            http_call::act(
                targets,
                method,
                url,
                body.as_deref(),
                expect_status,
                idempotency_key,
            )
            .await
        }
    }
}

/// Whether the target already shows the action's effect; `None` when it must be made.
async fn already_done(
    targets: &Targets,
    action: &Action,
) -> Result<Option<String>, ConnectorError> {
    match action {
        Action::LitellmBlockKey { source, key } => {
            block_key::already_done(targets, source, key, true).await
        }
        Action::LitellmUnblockKey { source, key } => {
            block_key::already_done(targets, source, key, false).await
        }
        Action::LitellmUpdateKey {
            source,
            key,
            limits,
        } => update_key::already_done(targets, source, key, limits).await,
        Action::LitellmBlockTeam { .. } | Action::LitellmUnblockTeam { .. } => {
            Ok(block_team::already_done())
        }
        Action::LitellmSetFallbacks {
            source,
            model,
            fallbacks,
        } => set_fallbacks::already_done(targets, source, model, fallbacks).await,
        Action::LangfuseSetLabel {
            target,
            prompt,
            version,
            label,
        } => set_label::already_done(targets, target, prompt, *version, label).await,
        Action::HttpCall { .. } => Ok(http_call::already_done()),
    }
}
