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

use std::collections::BTreeMap;

use vigil_connectors::ConnectorError;
use vigil_connectors::http_action::{HttpCaller, HttpMethod, HttpRequestSpec};
use vigil_connectors::langfuse::LangfuseClient;
use vigil_connectors::litellm::{AdminClient, KeyState, KeyUpdate, Limit};
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
    Ok(match action {
        Action::LitellmBlockKey { source, key } | Action::LitellmUnblockKey { source, key } => {
            let block = matches!(action, Action::LitellmBlockKey { .. });
            let admin = litellm(targets, source)?;
            let state = if block {
                admin.block_key(key).await?
            } else {
                admin.unblock_key(key).await?
            };
            if state.blocked == block {
                let done = if block {
                    "key blocked"
                } else {
                    "key unblocked"
                };
                outcome(true, done.to_owned(), BTreeMap::new())
            } else {
                outcome(
                    false,
                    format!(
                        "the gateway answered, but reports the key as blocked={}",
                        state.blocked
                    ),
                    BTreeMap::new(),
                )
            }
        }
        Action::LitellmUpdateKey {
            source,
            key,
            limits,
        } => {
            let admin = litellm(targets, source)?;
            let before = admin.key_info(key).await?;
            let update = key_update(key, limits)?;
            let after = admin.update_key(&update).await?;
            let prior: BTreeMap<String, String> = limits
                .keys()
                .map(|name| (name.clone(), limit_text(&before, name)))
                .collect();
            let mismatched = mismatched_limits(&after, limits);
            if mismatched.is_empty() {
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
            }
        }
        Action::LitellmBlockTeam { source, team } | Action::LitellmUnblockTeam { source, team } => {
            let block = matches!(action, Action::LitellmBlockTeam { .. });
            let admin = litellm(targets, source)?;
            let state = if block {
                admin.block_team(team).await?
            } else {
                admin.unblock_team(team).await?
            };
            let done = if block {
                "team blocked"
            } else {
                "team unblocked"
            };
            if state.blocked == block {
                outcome(true, done.to_owned(), BTreeMap::new())
            } else {
                outcome(
                    false,
                    format!(
                        "the gateway answered, but reports the team as blocked={}",
                        state.blocked
                    ),
                    BTreeMap::new(),
                )
            }
        }
        Action::LitellmSetFallbacks {
            source,
            model,
            fallbacks,
        } => {
            let admin = litellm(targets, source)?;
            let before = admin.fallbacks(model).await?;
            let prior =
                BTreeMap::from([("fallbacks".to_owned(), before.fallback_models.join(","))]);
            if fallbacks.is_empty() {
                admin.remove_fallbacks(model).await?;
                outcome(true, format!("fallbacks of {model} removed"), prior)
            } else {
                let after = admin.set_fallbacks(model, fallbacks).await?;
                if &after.fallback_models == fallbacks {
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
                }
            }
        }
        Action::LangfuseSetLabel {
            target,
            prompt,
            version,
            label,
        } => {
            let client = langfuse(targets, target)?;
            let updated = client
                .set_labels(prompt, *version, std::slice::from_ref(label))
                .await?;
            if updated.version == *version && updated.has_label(label) {
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
            }
        }
        Action::HttpCall {
            method,
            url,
            body,
            expect_status,
            ..
        } => {
            let Some(caller) = &targets.http else {
                return Err(ConnectorError::NotConfigured {
                    what: "`http.call` needs `actions.http` in the config".to_owned(),
                });
            };
            let spec = HttpRequestSpec {
                method: http_method(method)?,
                url: url.clone(),
                headers: Vec::new(),
                body: match body {
                    Some(text) => Some(serde_json::from_str(text).map_err(|error| {
                        ConnectorError::NotConfigured {
                            what: format!("the body is not JSON: {error}"),
                        }
                    })?),
                    None => None,
                },
                expected_statuses: expect_status.clone(),
                idempotency_key: Some(idempotency_key.to_owned()),
            };
            let answer = caller.call(&spec).await?;
            ActionOutcome {
                succeeded: true,
                http_status: Some(answer.status),
                detail: format!("answered {}: {}", answer.status, answer.excerpt),
                prior: BTreeMap::new(),
            }
        }
    })
}

/// Whether the target already shows the action's effect; `None` when it must be made.
async fn already_done(
    targets: &Targets,
    action: &Action,
) -> Result<Option<String>, ConnectorError> {
    Ok(match action {
        Action::LitellmBlockKey { source, key } | Action::LitellmUnblockKey { source, key } => {
            let block = matches!(action, Action::LitellmBlockKey { .. });
            let state = litellm(targets, source)?.key_info(key).await?;
            (state.blocked == block).then(|| format!("the key reads blocked={block}"))
        }
        Action::LitellmUpdateKey {
            source,
            key,
            limits,
        } => {
            let state = litellm(targets, source)?.key_info(key).await?;
            mismatched_limits(&state, limits)
                .is_empty()
                .then(|| format!("the key reads {}", describe_limits(limits)))
        }
        // A team's state cannot be read back through the calls vigil makes, and blocking or
        // unblocking it again is harmless.
        Action::LitellmBlockTeam { .. } | Action::LitellmUnblockTeam { .. } => None,
        Action::LitellmSetFallbacks {
            source,
            model,
            fallbacks,
        } => {
            let current = litellm(targets, source)?.fallbacks(model).await?;
            (&current.fallback_models == fallbacks)
                .then(|| format!("{model} reads fallbacks [{}]", fallbacks.join(", ")))
        }
        Action::LangfuseSetLabel {
            target,
            prompt,
            version,
            label,
        } => {
            let current = langfuse(targets, target)?
                .prompt(prompt, Some(label), None)
                .await;
            match current {
                Ok(current) if current.version == *version => {
                    Some(format!("{label} already serves version {version}"))
                }
                Ok(_) => None,
                Err(error) if error.status() == Some(404) => None,
                Err(error) => return Err(error),
            }
        }
        // Sent again with the same Idempotency-Key: the service recognises the retry.
        Action::HttpCall { .. } => None,
    })
}

fn http_method(method: &str) -> Result<HttpMethod, ConnectorError> {
    Ok(match method {
        "GET" => HttpMethod::Get,
        "POST" => HttpMethod::Post,
        "PUT" => HttpMethod::Put,
        "PATCH" => HttpMethod::Patch,
        "DELETE" => HttpMethod::Delete,
        other => {
            return Err(ConnectorError::NotConfigured {
                what: format!("`{other}` is not an HTTP method vigil uses"),
            });
        }
    })
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
