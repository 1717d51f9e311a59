//! The engine's validated configuration. The binary builds it from YAML; the ledger keeps a
//! copy with every session so that replay runs the engine exactly as it was configured.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::authz::{EntityType, Mode, TrustTally};
use crate::detector::{DetectorConfig, Subject};
use crate::diagnosis::DiagnosisConfig;
use crate::human::NumberStyle;
use crate::people::PeopleRules;
use crate::runbook::Runbook;
use crate::topology::discover::Facts;
use crate::topology::{
    DISCOVERY_METRICS, Edge, NodeFacts, NodeId, NodeKind, Relation, TopologyConfig,
};

/// Everything the engine needs to decide.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EngineConfig {
    /// The global mode; it can only make a runbook stricter.
    pub mode: Mode,
    /// The environment name policies see as `resource.environment` (for example `production`).
    pub environment: String,
    /// The sources the engine reads, with their series limits.
    pub sources: Vec<SourceLimits>,
    /// The detectors.
    pub detectors: Vec<DetectorConfig>,
    /// The diagnoser.
    pub diagnosis: DiagnosisConfig,
    /// The runbooks, in the order they are considered.
    pub runbooks: Vec<Runbook>,
    /// What vigil knows about particular keys (for example which are critical).
    pub api_keys: Vec<ApiKeyInfo>,
    /// How much history the series store keeps.
    #[serde(default)]
    pub store: StoreLimits,
    /// When a finding that keeps firing and clearing counts as flapping.
    #[serde(default)]
    pub flapping: FlapLimits,
    /// What vigil knows about deployments, prompts, services and teams, for policies.
    #[serde(default)]
    pub resources: Vec<ResourceInfo>,
    /// Limits over all runbooks: concurrency and the storm brake.
    #[serde(default)]
    pub limits: GlobalLimits,
    /// Verified outcomes per runbook and action from earlier sessions (read from the ledger
    /// when the session starts, so that replay sees the same trust).
    #[serde(default)]
    pub trust: Vec<TrustTally>,
    /// The rules for people's instructions: when present, every instruction must carry an
    /// authenticated principal and is authorized by Cedar. Absent in sessions recorded
    /// before people were authenticated, which replay as they ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub people: Option<PeopleRules>,
    /// The topology of the stack and how findings group by it. When present, the engine
    /// learns the topology from the signals, records what it learns, and lets connected
    /// findings join one incident. Absent in sessions recorded before the topology existed,
    /// which replay as they ran: one incident per finding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topology: Option<TopologyConfig>,
    /// How numbers read in what the engine records for people (why-packets, reasons,
    /// outcomes): `94.8 %`, `12 min`. Absent in sessions recorded before, which replay with
    /// the words they recorded (`94.7853%`, `0.2 h`), since replay compares them.
    #[serde(default, skip_serializing_if = "NumberStyle::is_original")]
    pub numbers: NumberStyle,
    /// The LLM assistant that investigates incidents (`diagnosis.assistant` in the config):
    /// which incidents and the bounds of one investigation. Absent when it is off, and in
    /// sessions recorded before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assistant: Option<crate::investigation::AssistantConfig>,
}

/// Inventory facts about a resource that is not an API key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceInfo {
    /// `Team`, `Deployment`, `Prompt` or `Service`.
    pub entity_type: EntityType,
    /// Its id: a team id, a model group, a prompt name, a service name.
    pub id: String,
    /// `resource.tier` (default `standard`).
    pub tier: String,
    /// `resource.owner`: the team that answers for it.
    pub owner: String,
    /// A deployment's provider (its Cedar parent).
    pub provider: Option<String>,
    /// A team's number of keys (the blast radius of blocking it), when known.
    pub members: Option<u32>,
}

/// Limits that hold over all runbooks together.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GlobalLimits {
    /// At most this many runbook runs act at once; a run past it is proposed, not acted.
    pub max_concurrent_runs: usize,
    /// More than this many incidents opened within `storm_window_ms` trips the storm brake:
    /// vigil stops acting and pages once.
    pub storm_max_incidents: usize,
    /// The storm brake's window, in milliseconds.
    pub storm_window_ms: i64,
}

impl Default for GlobalLimits {
    /// Three runs at once; more than ten incidents in ten minutes is a storm.
    fn default() -> Self {
        GlobalLimits {
            max_concurrent_runs: 3,
            storm_max_incidents: 10,
            storm_window_ms: 600_000,
        }
    }
}

/// A finding that fires `max_fires` times within `window_ms` is flapping: its incident pages
/// and no runbook acts, since a fix would be chasing noise.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlapLimits {
    /// Fires of one fingerprint, counting the new one, that make it flapping.
    pub max_fires: usize,
    /// The window they are counted in, in milliseconds.
    pub window_ms: i64,
}

impl Default for FlapLimits {
    /// Three fires within an hour.
    fn default() -> Self {
        FlapLimits {
            max_fires: 3,
            window_ms: 3_600_000,
        }
    }
}

/// The series store's bounds that are not per source.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreLimits {
    /// Points older than this are dropped.
    pub retention_ms: i64,
    /// A series keeps at most this many points.
    pub max_points_per_series: usize,
    /// Series of pushed signals (evals, agent runs, alerts, spans) at most, per kind; new
    /// ones past it are refused until series no push updated for the retention are dropped.
    pub max_pushed_series: usize,
}

impl Default for StoreLimits {
    /// One hour, 720 points (one hour at 5 s scrapes), 10,000 pushed series per kind.
    fn default() -> Self {
        StoreLimits {
            retention_ms: 3_600_000,
            max_points_per_series: 720,
            max_pushed_series: 10_000,
        }
    }
}

/// A source and how many series of it the engine tracks at most.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceLimits {
    /// The source's name.
    pub name: String,
    /// Series past this count are refused.
    pub max_series: usize,
}

/// Inventory facts about one API key, matched by hash or by alias.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyInfo {
    /// The key's SHA-256 as the gateway reports it in `hashed_api_key`.
    pub hashed_key: Option<String>,
    /// The key's alias.
    pub alias: Option<String>,
    /// Its tier, seen by policies as `resource.tier` (for example `critical`).
    pub tier: String,
}

/// The tier of keys the inventory does not mention.
pub const DEFAULT_KEY_TIER: &str = "standard";

impl EngineConfig {
    /// The metric names the engine reads from `source`; the runtime drops the rest before
    /// they reach the engine (and the ledger).
    #[must_use]
    pub fn metrics_for_source(&self, source: &str) -> BTreeSet<String> {
        let mut metrics: BTreeSet<String> = self
            .detectors
            .iter()
            .filter(|detector| detector.source() == source)
            .flat_map(DetectorConfig::metrics)
            .collect();
        // The topology learns from the gateway's deployment and fallback series too.
        if self.topology.is_some() {
            metrics.extend(DISCOVERY_METRICS.iter().map(|&metric| metric.to_owned()));
            // The diagnoser reads the requests and the cache behind a token spike.
            if let Some(demand) = &self.diagnosis.demand {
                for selector in [&demand.requests, &demand.cache_hits, &demand.cache_misses] {
                    metrics.insert(selector.metric_name().to_owned());
                }
            }
        }
        metrics
    }

    /// The inventory entry of a resource, if the config has one.
    #[must_use]
    pub fn resource(&self, entity_type: EntityType, id: &str) -> Option<&ResourceInfo> {
        self.resources
            .iter()
            .find(|info| info.entity_type == entity_type && info.id == id)
    }

    /// The tier of the key a subject names.
    #[must_use]
    pub fn key_tier(&self, subject: &Subject) -> &str {
        self.api_keys
            .iter()
            .find(|info| {
                info.hashed_key.as_deref() == Some(subject.value.as_str())
                    || (info.alias.is_some() && info.alias == subject.alias)
            })
            .map_or(DEFAULT_KEY_TIER, |info| info.tier.as_str())
    }
}

/// What an inventory entry says about the topology: a deployment (a model group) is hosted by
/// its provider; every resource has its owner.
pub(super) fn resource_facts(info: &ResourceInfo) -> Facts {
    let kind = match info.entity_type {
        EntityType::Deployment => NodeKind::ModelGroup,
        EntityType::Team => NodeKind::Team,
        EntityType::Prompt => NodeKind::Prompt,
        EntityType::Service => NodeKind::App,
        EntityType::ApiKey => NodeKind::Key,
        EntityType::Provider => NodeKind::Provider,
        EntityType::Runbook
        | EntityType::Human
        | EntityType::Group
        | EntityType::Role
        | EntityType::Proposal
        | EntityType::Control
        | EntityType::Silence => return Facts::default(),
    };
    let id = NodeId::new(kind, info.id.clone());
    let mut facts = Facts::default();
    facts.nodes.push((
        id.clone(),
        NodeFacts {
            owner: Some(info.owner.clone()).filter(|owner| !owner.is_empty()),
            ..NodeFacts::default()
        },
    ));
    if let Some(provider) = &info.provider {
        facts.edges.push(Edge {
            from: id,
            relation: Relation::HostedBy,
            to: NodeId::new(NodeKind::Provider, provider.clone()),
        });
    }
    facts
}
