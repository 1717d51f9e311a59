//! The synthetic AI stack the `diagnosis` benchmark runs on, and the engine config around it.
//!
//! Keys are spread over teams and call one model group each; a model group routes to one to
//! three deployments, each hosted by one of the providers and served by a model snapshot;
//! every fifth model group falls back to the next one. The gateway's scrape shows all of it
//! in LiteLLM's labels, through the series the engine keeps for the topology
//! ([`DISCOVERY_METRICS`]): one `litellm_deployment_total_requests_total` per key and
//! deployment of its model group, one `litellm_deployment_state` per deployment, one
//! `litellm_deployment_successful_fallbacks_total` per fallback. Apps and eval suites, which no
//! scrape shows, are declared in the topology config. A second, small source carries the
//! readings the threshold detectors watch: errors per key and budget used per team.

use anyhow::Context;
use vigil_core::Timestamp;
use vigil_core::authz::Mode;
use vigil_core::detector::threshold::{Bound, Reading, ThresholdConfig};
use vigil_core::detector::{DetectorConfig, Severity};
use vigil_core::diagnosis::{DEFAULT_CHANGE_WINDOW_MS, DiagnosisConfig};
use vigil_core::engine::{
    EngineConfig, Event, FlapLimits, GlobalLimits, SourceLimits, StoreLimits,
};
use vigil_core::signal::{Labels, Sample};
use vigil_core::store::Selector;
use vigil_core::topology::{DISCOVERY_METRICS, Edge, NodeId, NodeKind, Relation, TopologyConfig};

/// The gateway's source.
pub(super) const GATEWAY: &str = "litellm-gateway";
/// The source of the readings the detectors watch.
pub(super) const ALERTS: &str = "alerts";
/// Errors per key (the threshold detector `key-errors`, grouped by `hashed_api_key`).
const KEY_ERRORS: &str = "key_errors";
/// Budget used per team (the threshold detector `team-budget`, grouped by `team`).
const TEAM_BUDGET: &str = "team_budget_used";
/// A reading at or above this fires its detector; at or below `CALM`, it is clear.
pub(super) const FIRING: f64 = 50.0;
/// A calm reading.
pub(super) const CALM: f64 = 0.0;
/// The first scrape's time; the others follow every 15 s.
const START_MS: i64 = 1_800_000_000_000;
/// Apps, each calling three model groups and reading one of ten retrieval stores.
const N_APPS: usize = 100;
/// Eval suites, each running its own prompt against one model group.
const N_EVAL_SUITES: usize = 250;

/// The shape of the stack.
#[derive(Clone, Copy, Debug)]
pub(super) struct Stack {
    pub(super) n_keys: usize,
    pub(super) n_groups: usize,
    pub(super) n_providers: usize,
    pub(super) n_teams: usize,
}

/// A 64-character hex name derived from `seed`, as LiteLLM's hashed keys and model ids are.
fn hex_name(seed: u64) -> String {
    // splitmix64: four well-mixed words from one seed.
    let mut state = seed;
    let mut next = || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut mixed = state;
        mixed = (mixed ^ (mixed >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        mixed = (mixed ^ (mixed >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        mixed ^ (mixed >> 31)
    };
    format!(
        "{:016x}{:016x}{:016x}{:016x}",
        next(),
        next(),
        next(),
        next()
    )
}

impl Stack {
    /// How many deployments model group `group` has: one to three.
    pub(super) fn n_deployments(&self, group: usize) -> usize {
        1 + group % 3
    }

    /// The provider index of deployment `deployment` of model group `group`.
    pub(super) fn provider_of(&self, group: usize, deployment: usize) -> usize {
        (group + deployment * 7) % self.n_providers
    }

    /// The model group key `key` calls.
    pub(super) fn group_of_key(&self, key: usize) -> usize {
        key % self.n_groups
    }

    /// Key `key`'s hash.
    pub(super) fn key_hash(&self, key: usize) -> String {
        hex_name(key as u64)
    }

    /// Team `team`'s name.
    pub(super) fn team_name(&self, team: usize) -> String {
        format!("team-{team:03}")
    }

    fn team_of_key(&self, key: usize) -> usize {
        (key / 50) % self.n_teams
    }

    fn group_name(&self, group: usize) -> String {
        format!("model-group-{group:03}")
    }

    /// Provider `provider`'s name.
    pub(super) fn provider_name(&self, provider: usize) -> String {
        format!("provider-{provider:02}")
    }

    fn deployment_id(&self, group: usize, deployment: usize) -> String {
        hex_name(1 << 40 | (group as u64) << 8 | deployment as u64)
    }

    fn snapshot_name(&self, group: usize, deployment: usize) -> String {
        format!(
            "{}-snapshot-{:02}",
            self.provider_name(self.provider_of(group, deployment)),
            group % 25
        )
    }

    /// The model group `group` falls back to, if any: every fifth group, to the next one.
    fn fallback_of(&self, group: usize) -> Option<usize> {
        (group.is_multiple_of(5) && self.n_groups > 1).then(|| (group + 1) % self.n_groups)
    }

    /// How many deployments in all.
    pub(super) fn n_all_deployments(&self) -> usize {
        (0..self.n_groups)
            .map(|group| self.n_deployments(group))
            .sum()
    }

    /// How many fallbacks.
    pub(super) fn n_fallbacks(&self) -> usize {
        (0..self.n_groups)
            .filter(|&group| self.fallback_of(group).is_some())
            .count()
    }

    /// The keys whose model group has a deployment hosted by `provider`.
    pub(super) fn keys_hosted_by(&self, provider: usize) -> Vec<usize> {
        (0..self.n_keys)
            .filter(|&key| {
                let group = self.group_of_key(key);
                (0..self.n_deployments(group)).any(|idx| self.provider_of(group, idx) == provider)
            })
            .collect()
    }

    /// The time of scrape `idx`.
    pub(super) fn at(&self, idx: i64) -> Timestamp {
        Timestamp(START_MS + idx * 15_000)
    }

    /// The gateway's scrape number `idx` (counters grow with it).
    pub(super) fn gateway_scrape(&self, idx: i64) -> Event {
        let count = (idx + 1) as f64;
        let mut samples = Vec::new();
        for key in 0..self.n_keys {
            let group = self.group_of_key(key);
            let (hash, team) = (self.key_hash(key), self.team_name(self.team_of_key(key)));
            let alias = format!("service-{key:05}");
            for deployment in 0..self.n_deployments(group) {
                let labels: Labels = [
                    ("hashed_api_key", hash.clone()),
                    ("api_key_alias", alias.clone()),
                    ("team", team.clone()),
                    ("model_group", self.group_name(group)),
                    ("model_id", self.deployment_id(group, deployment)),
                    (
                        "api_provider",
                        self.provider_name(self.provider_of(group, deployment)),
                    ),
                    ("litellm_model_name", self.snapshot_name(group, deployment)),
                ]
                .into_iter()
                .collect();
                samples.push(sample(
                    DISCOVERY_METRICS[0],
                    labels,
                    count * (1 + key % 7) as f64,
                ));
            }
        }
        for group in 0..self.n_groups {
            for deployment in 0..self.n_deployments(group) {
                let labels: Labels = [
                    ("model_group", self.group_name(group)),
                    ("model_id", self.deployment_id(group, deployment)),
                    (
                        "api_provider",
                        self.provider_name(self.provider_of(group, deployment)),
                    ),
                    ("litellm_model_name", self.snapshot_name(group, deployment)),
                ]
                .into_iter()
                .collect();
                samples.push(sample(DISCOVERY_METRICS[1], labels, 0.0));
            }
            if let Some(fallback) = self.fallback_of(group) {
                let labels: Labels = [
                    ("requested_model", self.group_name(group)),
                    ("fallback_model", self.group_name(fallback)),
                ]
                .into_iter()
                .collect();
                samples.push(sample(DISCOVERY_METRICS[2], labels, count));
            }
        }
        Event::Scraped {
            source: GATEWAY.to_owned(),
            scraped_at: self.at(idx),
            samples,
        }
    }

    /// The alerts source's scrape number `idx`: errors per key and budget used per team.
    pub(super) fn alerts_scrape(
        &self,
        idx: i64,
        keys: &[(usize, f64)],
        teams: &[(usize, f64)],
    ) -> Event {
        let key_samples = keys.iter().map(|&(key, value)| {
            sample(
                KEY_ERRORS,
                [("hashed_api_key", self.key_hash(key))]
                    .into_iter()
                    .collect(),
                value,
            )
        });
        let team_samples = teams.iter().map(|&(team, value)| {
            sample(
                TEAM_BUDGET,
                [("team", self.team_name(team))].into_iter().collect(),
                value,
            )
        });
        Event::Scraped {
            source: ALERTS.to_owned(),
            scraped_at: self.at(idx),
            samples: key_samples.chain(team_samples).collect(),
        }
    }

    /// What the config declares: apps calling model groups and reading retrieval stores,
    /// eval suites running prompts against model groups.
    fn declared_edges(&self) -> Vec<Edge> {
        let edge = |from: NodeId, relation, to: NodeId| Edge { from, relation, to };
        let group = |idx: usize| NodeId::new(NodeKind::ModelGroup, self.group_name(idx));
        let mut edges = Vec::new();
        for app_idx in 0..N_APPS {
            let app = NodeId::new(NodeKind::App, format!("app-{app_idx:03}"));
            for offset in 0..3 {
                let called = group((app_idx * 5 + offset) % self.n_groups);
                edges.push(edge(app.clone(), Relation::Calls, called));
            }
            let store = NodeId::new(
                NodeKind::Retrieval,
                format!("vector-store-{}", app_idx % 10),
            );
            edges.push(edge(app, Relation::Reads, store));
        }
        for suite_idx in 0..N_EVAL_SUITES {
            let suite = NodeId::new(NodeKind::EvalSuite, format!("eval-suite-{suite_idx:03}"));
            let prompt = NodeId::new(NodeKind::Prompt, format!("prompt-{suite_idx:03}"));
            let called = group((suite_idx * 2) % self.n_groups);
            edges.push(edge(suite.clone(), Relation::Calls, called.clone()));
            edges.push(edge(suite, Relation::Uses, prompt.clone()));
            edges.push(edge(prompt, Relation::Calls, called));
        }
        edges
    }

    /// The engine's config: both sources, a threshold detector per key and per team on the
    /// alerts source, no runbooks (an incident is diagnosed and pages), and the storm brake
    /// out of the way so every opening takes the ordinary path. With `topology`, the default
    /// topology config plus the declared apps and eval suites.
    pub(super) fn engine_config(&self, topology: bool) -> anyhow::Result<EngineConfig> {
        Ok(EngineConfig {
            mode: Mode::Autonomous,
            environment: "production".to_owned(),
            sources: vec![
                SourceLimits {
                    name: GATEWAY.to_owned(),
                    max_series: 10 * self.n_keys + 10 * self.n_groups,
                },
                SourceLimits {
                    name: ALERTS.to_owned(),
                    max_series: self.n_keys + self.n_teams,
                },
            ],
            detectors: vec![
                threshold("key-errors", KEY_ERRORS, "hashed_api_key", self.n_keys)?,
                threshold("team-budget", TEAM_BUDGET, "team", self.n_teams)?,
            ],
            diagnosis: DiagnosisConfig {
                runaway_min_share: 0.7,
                change_window_ms: DEFAULT_CHANGE_WINDOW_MS,
                demand: None,
                excess: vigil_core::diagnosis::ExcessRule::Net,
            },
            runbooks: Vec::new(),
            api_keys: Vec::new(),
            store: StoreLimits::default(),
            flapping: FlapLimits::default(),
            resources: Vec::new(),
            limits: GlobalLimits {
                storm_max_incidents: usize::MAX,
                ..GlobalLimits::default()
            },
            trust: Vec::new(),
            people: None,
            numbers: vigil_core::human::NumberStyle::Readable,
            assistant: None,
            topology: topology.then(|| TopologyConfig {
                edges: self.declared_edges(),
                ..TopologyConfig::default()
            }),
        })
    }
}

fn sample(name: &str, labels: Labels, value: f64) -> Sample {
    Sample {
        name: name.to_owned(),
        labels,
        value,
        timestamp_ms: None,
    }
}

fn threshold(
    name: &str,
    metric: &str,
    group_by: &str,
    max_groups: usize,
) -> anyhow::Result<DetectorConfig> {
    Ok(DetectorConfig::Threshold(ThresholdConfig {
        name: name.to_owned(),
        source: ALERTS.to_owned(),
        reading: Reading::Value {
            selector: Selector::parse(metric).context("a benchmark selector")?,
        },
        describe: format!("{metric} reading"),
        group_by: Some(group_by.to_owned()),
        bound: Bound::Above,
        fire: 10.0,
        clear: 5.0,
        fire_after_samples: 1,
        clear_after_samples: 1,
        severity: Severity::Page,
        max_groups,
    }))
}
