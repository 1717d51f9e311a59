//! Detectors: pure state machines over signals that raise and clear findings.
//!
//! Each detector kind is one module pairing its config with its state machine; the set of
//! kinds is closed ([`DetectorConfig`]).

pub mod adaptive;
pub mod anomaly;
pub mod burn_rate;
pub mod change;
pub mod groups;
pub mod increments;
pub mod proportion;
pub mod reading;
pub mod spike;
pub mod threshold;

use serde::{Deserialize, Serialize};

use crate::signal::float_repr;
use crate::time::Timestamp;

/// The configuration of one detector; the variant says which kind it is.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DetectorConfig {
    /// A per-group rate far above its adaptive baseline (token and spend spikes).
    Spike(spike::SpikeConfig),
    /// An SLO's error budget burning, on multiple windows (provider errors, eval failures).
    BurnRate(burn_rate::BurnRateConfig),
    /// A reading per group past a limit, with hysteresis (latency quantiles, error rates,
    /// hit ratios, loop depth, remaining budget).
    Threshold(threshold::ThresholdConfig),
    /// A share of good events that fell significantly below its baseline (eval pass rates of
    /// small suites, cache hit rates).
    ProportionDrop(proportion::ProportionDropConfig),
    /// A marker for the diagnoser: a group reports a version it has not reported before (a
    /// prompt version, a model).
    VersionChange(change::VersionChangeConfig),
    /// A reading per group far outside its own usual range, learnt (latency, tokens per
    /// request, error ratios, queue depth: where a fixed threshold would be a guess).
    Anomaly(anomaly::AnomalyConfig),
}

impl DetectorConfig {
    /// The config with every selector of a detector grouped by a label restricted to the
    /// series that carry that label (`label!=""`): a series that names no group (a LiteLLM
    /// series without `model_id`, an eval without `prompt`) is about no group, and would
    /// otherwise make a group `""` whose findings are about nothing. A spike detector's
    /// `ignore_values` decide that for it. The config loader applies this to new configs;
    /// sessions recorded before keep their selectors, so they replay as they ran.
    #[must_use]
    pub fn reading_only_grouped_series(mut self) -> Self {
        let require = |selector: &mut crate::store::Selector, label: &Option<String>| {
            if let Some(label) = label {
                *selector = selector.requiring_label(label);
            }
        };
        match &mut self {
            DetectorConfig::Spike(_) => {}
            DetectorConfig::BurnRate(config) => {
                require(&mut config.bad, &config.group_by);
                require(&mut config.total, &config.group_by);
            }
            DetectorConfig::Threshold(config) => {
                for selector in config.reading.selectors_mut() {
                    require(selector, &config.group_by);
                }
            }
            DetectorConfig::ProportionDrop(config) => {
                require(&mut config.good, &config.group_by);
                require(&mut config.total, &config.group_by);
            }
            DetectorConfig::VersionChange(config) => {
                require(&mut config.selector, &config.group_by);
            }
            DetectorConfig::Anomaly(config) => {
                for selector in config.reading.selectors_mut() {
                    require(selector, &config.group_by);
                }
            }
        }
        self
    }

    /// The detector's name, unique in a config.
    #[must_use]
    pub fn name(&self) -> &str {
        match self {
            DetectorConfig::Spike(config) => &config.name,
            DetectorConfig::BurnRate(config) => &config.name,
            DetectorConfig::Threshold(config) => &config.name,
            DetectorConfig::ProportionDrop(config) => &config.name,
            DetectorConfig::VersionChange(config) => &config.name,
            DetectorConfig::Anomaly(config) => &config.name,
        }
    }

    /// The source whose scrapes it reads.
    #[must_use]
    pub fn source(&self) -> &str {
        match self {
            DetectorConfig::Spike(config) => &config.source,
            DetectorConfig::BurnRate(config) => &config.source,
            DetectorConfig::Threshold(config) => &config.source,
            DetectorConfig::ProportionDrop(config) => &config.source,
            DetectorConfig::VersionChange(config) => &config.source,
            DetectorConfig::Anomaly(config) => &config.source,
        }
    }

    /// The metric names it reads (what the scraper must keep).
    #[must_use]
    pub fn metrics(&self) -> Vec<String> {
        let selectors = match self {
            DetectorConfig::Spike(config) => return vec![config.metric.clone()],
            DetectorConfig::BurnRate(config) => vec![&config.bad, &config.total],
            DetectorConfig::Threshold(config) => config.reading.selectors(),
            DetectorConfig::ProportionDrop(config) => vec![&config.good, &config.total],
            DetectorConfig::VersionChange(config) => vec![&config.selector],
            DetectorConfig::Anomaly(config) => config.reading.selectors(),
        };
        selectors
            .into_iter()
            .map(|selector| selector.metric_name().to_owned())
            .collect()
    }
}

/// How urgent a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Worth a record, nobody needs to look now.
    Info,
    /// Someone should look during working hours.
    Ticket,
    /// Someone must look now, unless vigil fixes it.
    Page,
}

impl Severity {
    /// The lowercase name used in Cedar contexts and pages.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Ticket => "ticket",
            Severity::Page => "page",
        }
    }
}

/// What a finding is about: one value of the label a detector groups by.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subject {
    /// The label grouped by, for example `hashed_api_key`.
    pub label: String,
    /// Its value, for example the key's SHA-256.
    pub value: String,
    /// A human name for it, for example the key alias, when the source gives one.
    pub alias: Option<String>,
    /// The team that owns it, when the source gives one.
    pub team: Option<String>,
}

impl Subject {
    /// The alias when there is one, else a shortened value.
    #[must_use]
    pub fn display_name(&self) -> String {
        match &self.alias {
            Some(alias) => alias.clone(),
            None => self.value.chars().take(12).collect(),
        }
    }

    /// The name people read in pages of sessions with a topology: the alias, else a key's
    /// first 12 characters (a hash says nothing more), else what an alert is about
    /// (`vector_store qdrant`), else the whole value (a model, a store, a prompt), at most
    /// 64 characters. [`Subject::display_name`] stays for older sessions' words.
    #[must_use]
    pub fn readable_name(&self) -> String {
        const MAX_CHARS: usize = 64;
        if let Some(alias) = &self.alias {
            return alias.chars().take(MAX_CHARS).collect();
        }
        if self.label.contains("key") {
            return self.value.chars().take(12).collect();
        }
        let value = match self.value.split_once('=') {
            Some((label, value))
                if self.label == crate::intake::alertmanager::ALERT_SUBJECT_LABEL =>
            {
                format!("{label} {value}")
            }
            _ => self.value.clone(),
        };
        value.chars().take(MAX_CHARS).collect()
    }
}

/// One rate observation kept as evidence.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// When.
    pub at: Timestamp,
    /// The value.
    #[serde(with = "float_repr")]
    pub value: f64,
}

/// The numbers that made a spike detector fire, so that anyone can check the decision.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SpikeEvidence {
    /// The metric read.
    pub metric: String,
    /// What it counts; `tokens`, what a finding recorded before units existed reads as (and
    /// is left out when serialized, so such a finding serializes as it was recorded).
    #[serde(default, skip_serializing_if = "spike::RateUnit::is_tokens")]
    pub unit: spike::RateUnit,
    /// The rate at the moment of firing, per second.
    #[serde(with = "float_repr")]
    pub rate_per_sec: f64,
    /// The adaptive baseline, per second.
    #[serde(with = "float_repr")]
    pub baseline_per_sec: f64,
    /// The baseline's spread used for the score (after the noise floor).
    #[serde(with = "float_repr")]
    pub spread_per_sec: f64,
    /// How many spreads the rate is above the baseline.
    #[serde(with = "float_repr")]
    pub z_score: f64,
    /// The rate divided by the baseline.
    #[serde(with = "float_repr")]
    pub ratio: f64,
    /// The thresholds in force.
    pub thresholds: spike::SpikeThresholds,
    /// The most recent rates, oldest first, including the ones that fired.
    pub recent: Vec<Point>,
}

/// One burn-rate rule's windows at the moment of firing.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WindowBurn {
    /// What the rule means when it holds.
    pub severity: Severity,
    /// The long window, in seconds.
    pub long_secs: i64,
    /// The short window, in seconds.
    pub short_secs: i64,
    /// The burn rate both must reach.
    #[serde(with = "float_repr")]
    pub threshold: f64,
    /// The long window's burn rate; `None` when it saw no traffic.
    #[serde(with = "float_repr::option")]
    pub long_burn: Option<f64>,
    /// The short window's burn rate; `None` when it saw no traffic.
    #[serde(with = "float_repr::option")]
    pub short_burn: Option<f64>,
}

/// The numbers that made a burn-rate detector fire.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BurnRateEvidence {
    /// The objective, for example 0.999.
    #[serde(with = "float_repr")]
    pub objective: f64,
    /// Its period, in seconds.
    pub period_secs: i64,
    /// Every rule's windows, most urgent first.
    pub windows: Vec<WindowBurn>,
}

/// The evidence of a finding, by detector kind.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Evidence {
    /// From a spike detector.
    Spike(SpikeEvidence),
    /// From a burn-rate detector.
    BurnRate(BurnRateEvidence),
    /// From a threshold detector.
    Threshold(threshold::ThresholdEvidence),
    /// From a proportion-drop detector.
    ProportionDrop(proportion::ProportionEvidence),
    /// Not a detector: a runbook's schedule came due.
    Schedule(ScheduleEvidence),
    /// From an anomaly detector (boxed: its reading makes it the largest).
    Anomaly(Box<anomaly::AnomalyEvidence>),
}

impl Evidence {
    /// What a spike's rate counts; `tokens` for every other kind of evidence, whose words
    /// do not depend on it.
    #[must_use]
    pub fn rate_unit(&self) -> spike::RateUnit {
        match self {
            Evidence::Spike(spike) => spike.unit,
            Evidence::BurnRate(_)
            | Evidence::Threshold(_)
            | Evidence::ProportionDrop(_)
            | Evidence::Schedule(_)
            | Evidence::Anomaly(_) => spike::RateUnit::Tokens,
        }
    }
}

/// Why a scheduled runbook runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleEvidence {
    /// The runbook.
    pub runbook: String,
    /// Its cron expression.
    pub schedule: String,
}

/// A detector's claim that something is wrong.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// Stable identity of what is wrong: the detector and the subject. Findings with the
    /// same fingerprint are the same problem.
    pub fingerprint: String,
    /// The detector's name.
    pub detector: String,
    /// The source the signal came from.
    pub source: String,
    /// What it is about.
    pub subject: Subject,
    /// How urgent.
    pub severity: Severity,
    /// When the detector fired.
    pub raised_at: Timestamp,
    /// Why.
    pub evidence: Evidence,
}

/// A detector's statement that a finding no longer holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FindingCleared {
    /// The finding's fingerprint.
    pub fingerprint: String,
    /// The detector's name.
    pub detector: String,
    /// When it fired.
    pub raised_at: Timestamp,
    /// When it cleared.
    pub cleared_at: Timestamp,
    /// The rate when it cleared, per second.
    #[serde(with = "float_repr")]
    pub rate_per_sec: f64,
}

/// A change in a detector's state.
#[derive(Clone, Debug, PartialEq)]
pub enum Transition {
    /// A finding was raised.
    Fired(Box<Finding>),
    /// A finding was cleared.
    Cleared(FindingCleared),
}
