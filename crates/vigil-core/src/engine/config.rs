//! The engine's validated configuration. The binary builds it from YAML; the ledger keeps a
//! copy with every session so that replay runs the engine exactly as it was configured.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::detector::{DetectorConfig, Subject};
use crate::diagnosis::DiagnosisConfig;
use crate::runbook::{Mode, Runbook};

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
    /// Series of pushed signals (evals, agent runs, alerts, spans) at most, per kind.
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

/// The store source that holds the signals of one kind of pushed payload, for example
/// `push:evals`. Detectors name it as their `source`.
#[must_use]
pub fn push_source(kind: &str) -> String {
    format!("push:{kind}")
}

/// The store sources of every kind of pushed payload.
pub const PUSH_SOURCES: [&str; 4] = ["push:evals", "push:agent_runs", "push:alerts", "push:spans"];

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
        self.detectors
            .iter()
            .filter(|detector| detector.source() == source)
            .flat_map(DetectorConfig::metrics)
            .collect()
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
