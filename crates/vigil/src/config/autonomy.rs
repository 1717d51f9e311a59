//! The config of bounded autonomy beyond runbooks: the resource inventory policies see, the
//! limits over all runbooks, and the action targets besides LiteLLM gateways (Langfuse
//! projects, the generic HTTP allow-list). Raw structs (serde, unknown keys rejected) and their
//! second stage live together here because nothing else reads them; the admin API's are in
//! `admin.rs`.

use std::path::Path;
use std::time::Duration;

use reqwest::Url;
use serde::Deserialize;
use vigil_connectors::secret::SecretSource;
use vigil_core::authz::EntityType;
use vigil_core::engine::{GlobalLimits, ResourceInfo};
use vigil_core::problem::Problems;

use super::raw::RawSecret;
use super::validate::{http_url, secret};

/// One resource vigil may act on, with the facts policies read.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawResource {
    /// `team`, `deployment`, `prompt` or `service`.
    #[serde(rename = "type")]
    pub kind: RawResourceKind,
    /// A team id, a model group, a prompt name or a service name.
    pub id: String,
    /// `resource.tier`: `standard` (the default) or `critical`.
    #[serde(default = "default_tier")]
    pub tier: String,
    /// `resource.owner`: the team that answers for it.
    #[serde(default)]
    pub owner: String,
    /// A deployment's provider (`resource in Vigil::Provider::"..."`).
    pub provider: Option<String>,
    /// A team's number of keys: the blast radius of blocking it (unknown counts as 1000).
    pub members: Option<u32>,
}

fn default_tier() -> String {
    "standard".to_owned()
}

/// The kinds of resource the inventory describes (keys are under `api_keys`).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RawResourceKind {
    /// A team.
    Team,
    /// A model group behind a gateway.
    Deployment,
    /// A managed prompt.
    Prompt,
    /// A service called over HTTP.
    Service,
}

/// Limits over all runbooks together.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    /// At most this many runs act at once; a run past it becomes a proposal.
    #[serde(default = "default_max_concurrent_runs")]
    pub max_concurrent_runs: usize,
    /// The storm brake: more than this many incidents within `storm_window_secs` stops
    /// vigil acting, and pages once.
    #[serde(default = "default_storm_max_incidents")]
    pub storm_max_incidents: usize,
    /// The storm brake's window.
    #[serde(default = "default_storm_window_secs")]
    pub storm_window_secs: u64,
}

fn default_max_concurrent_runs() -> usize {
    GlobalLimits::default().max_concurrent_runs
}

fn default_storm_max_incidents() -> usize {
    GlobalLimits::default().storm_max_incidents
}

fn default_storm_window_secs() -> u64 {
    u64::try_from(GlobalLimits::default().storm_window_ms / 1000).unwrap_or(600)
}

impl Default for RawLimits {
    fn default() -> Self {
        RawLimits {
            max_concurrent_runs: default_max_concurrent_runs(),
            storm_max_incidents: default_storm_max_incidents(),
            storm_window_secs: default_storm_window_secs(),
        }
    }
}

/// Action targets besides the LiteLLM gateways (which are configured on their source).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawActions {
    /// Langfuse projects, for `langfuse.set_label`.
    #[serde(default)]
    pub langfuse: Vec<RawLangfuse>,
    /// The generic HTTP action, `http.call`; off when absent.
    pub http: Option<RawHttpActions>,
}

/// One Langfuse project.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLangfuse {
    /// The name runbooks give as `target` (`langfuse` when they give none).
    pub name: String,
    /// The Langfuse host, for example `https://cloud.langfuse.com`.
    pub url: String,
    /// The project's public key (`pk-lf-...`), the Basic auth user.
    pub public_key: String,
    /// The project's secret key (`sk-lf-...`), the Basic auth password.
    pub secret_key: RawSecret,
    /// Per call.
    #[serde(default = "default_action_timeout")]
    pub timeout_secs: u64,
}

/// The generic HTTP action.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHttpActions {
    /// The only hosts `http.call` may reach (`host` or `host:port`).
    pub allow_hosts: Vec<String>,
    /// Per call.
    #[serde(default = "default_action_timeout")]
    pub timeout_secs: u64,
}

fn default_action_timeout() -> u64 {
    10
}

/// A validated Langfuse project.
#[derive(Debug, Clone)]
pub struct LangfuseConfig {
    /// Its name.
    pub name: String,
    /// Its host.
    pub url: Url,
    /// The public key.
    pub public_key: String,
    /// The secret key.
    pub secret_key: SecretSource,
    /// Per call.
    pub timeout: Duration,
}

/// The validated generic HTTP action.
#[derive(Debug, Clone)]
pub struct HttpActionsConfig {
    /// Allowed hosts, lowercase.
    pub allow_hosts: Vec<String>,
    /// Per call.
    pub timeout: Duration,
}

/// Validated action targets.
#[derive(Debug, Clone, Default)]
pub struct ActionsConfig {
    /// Langfuse projects.
    pub langfuse: Vec<LangfuseConfig>,
    /// The generic HTTP action, when enabled.
    pub http: Option<HttpActionsConfig>,
}

pub(super) fn validate_resources(
    problems: &mut Problems,
    raw: Vec<RawResource>,
) -> Vec<ResourceInfo> {
    let mut seen = std::collections::BTreeSet::new();
    raw.into_iter()
        .enumerate()
        .map(|(idx, resource)| {
            let path = format!("resources[{idx}]");
            let entity_type = match resource.kind {
                RawResourceKind::Team => EntityType::Team,
                RawResourceKind::Deployment => EntityType::Deployment,
                RawResourceKind::Prompt => EntityType::Prompt,
                RawResourceKind::Service => EntityType::Service,
            };
            if resource.id.trim().is_empty() {
                problems.push(format!("{path}.id"), "must not be empty");
            }
            if !seen.insert((entity_type, resource.id.clone())) {
                problems.push(
                    format!("{path}.id"),
                    format!(
                        "{} `{}` is described twice",
                        entity_type.cedar_name(),
                        resource.id
                    ),
                );
            }
            if resource.tier.trim().is_empty() {
                problems.push(format!("{path}.tier"), "must not be empty");
            }
            if resource.provider.is_some() && entity_type != EntityType::Deployment {
                problems.push(
                    format!("{path}.provider"),
                    "only a deployment has a provider",
                );
            }
            if resource.members.is_some() && entity_type != EntityType::Team {
                problems.push(format!("{path}.members"), "only a team has members");
            }
            ResourceInfo {
                entity_type,
                id: resource.id,
                tier: resource.tier,
                owner: resource.owner,
                provider: resource.provider,
                members: resource.members,
            }
        })
        .collect()
}

pub(super) fn validate_limits(problems: &mut Problems, raw: &RawLimits) -> GlobalLimits {
    if raw.max_concurrent_runs == 0 {
        problems.push("limits.max_concurrent_runs", "must be at least 1");
    }
    if raw.storm_window_secs == 0 {
        problems.push("limits.storm_window_secs", "must be at least 1");
    }
    GlobalLimits {
        max_concurrent_runs: raw.max_concurrent_runs,
        storm_max_incidents: raw.storm_max_incidents,
        storm_window_ms: i64::try_from(raw.storm_window_secs.saturating_mul(1000))
            .unwrap_or(i64::MAX),
    }
}

pub(super) fn validate_actions(
    problems: &mut Problems,
    raw: RawActions,
    base_dir: &Path,
) -> ActionsConfig {
    let mut names = std::collections::BTreeSet::new();
    let langfuse = raw
        .langfuse
        .into_iter()
        .enumerate()
        .filter_map(|(idx, project)| {
            let path = format!("actions.langfuse[{idx}]");
            if project.name.trim().is_empty() {
                problems.push(format!("{path}.name"), "must not be empty");
            }
            if !names.insert(project.name.clone()) {
                problems.push(
                    format!("{path}.name"),
                    format!("another Langfuse project is called `{}`", project.name),
                );
            }
            if project.public_key.trim().is_empty() {
                problems.push(format!("{path}.public_key"), "must not be empty");
            }
            if project.timeout_secs == 0 {
                problems.push(format!("{path}.timeout_secs"), "must be at least 1");
            }
            let secret_key = secret(
                problems,
                &format!("{path}.secret_key"),
                project.secret_key,
                base_dir,
            );
            let url = http_url(problems, &format!("{path}.url"), &project.url)?;
            Some(LangfuseConfig {
                name: project.name,
                url,
                public_key: project.public_key,
                secret_key,
                timeout: Duration::from_secs(project.timeout_secs),
            })
        })
        .collect();
    let http = raw.http.map(|http| {
        if http.allow_hosts.is_empty() {
            problems.push(
                "actions.http.allow_hosts",
                "list at least one host; `http.call` reaches nothing else",
            );
        }
        for (idx, host) in http.allow_hosts.iter().enumerate() {
            let ok = !host.is_empty()
                && !host.contains(['/', '@', '?', '#', ' ', '*'])
                && !host.starts_with(':');
            if !ok {
                problems.push(
                    format!("actions.http.allow_hosts[{idx}]"),
                    format!("`{host}` must be a host name or `host:port`, without scheme, path or wildcard"),
                );
            }
        }
        if http.timeout_secs == 0 {
            problems.push("actions.http.timeout_secs", "must be at least 1");
        }
        HttpActionsConfig {
            allow_hosts: http
                .allow_hosts
                .into_iter()
                .map(|host| host.to_ascii_lowercase())
                .collect(),
            timeout: Duration::from_secs(http.timeout_secs),
        }
    });
    ActionsConfig { langfuse, http }
}
