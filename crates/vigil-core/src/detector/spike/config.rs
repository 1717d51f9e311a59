//! The spike detector's settings: what it reads and the thresholds it judges a rate by.

use serde::{Deserialize, Serialize};

use crate::signal::float_repr;

/// Configuration of one spike detector (validated by the binary's config loader).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SpikeConfig {
    /// The detector's name, unique in a config, for example `token-spike`.
    pub name: String,
    /// The source whose scrapes it reads.
    pub source: String,
    /// The metric to read, for example the counter `litellm_total_tokens_metric_total`.
    pub metric: String,
    /// How to read it: the per-scrape rate of a counter, or the value itself (for a gauge,
    /// or a query that already computes a rate).
    #[serde(default)]
    pub read: SeriesRead,
    /// What the metric counts, for the words of its findings, checks and pages; `tokens`,
    /// what a config recorded before units existed reads as (and is left out when
    /// serialized, so that such a config serializes as it was recorded).
    #[serde(default, skip_serializing_if = "RateUnit::is_tokens")]
    pub unit: RateUnit,
    /// The label to group by, for example `hashed_api_key`.
    pub group_by: String,
    /// A label that names the group for people, for example `api_key_alias`.
    pub alias_label: Option<String>,
    /// A label that gives the owning team, for example `team`.
    pub team_label: Option<String>,
    /// Group values that are not a real subject (LiteLLM writes `None` or an empty string).
    pub ignore_values: Vec<String>,
    /// At most this many groups are tracked; more are ignored.
    pub max_groups: usize,
    /// The thresholds.
    pub thresholds: SpikeThresholds,
}

/// How a detector turns a series into the number it watches.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SeriesRead {
    /// The counter's increase per second between its last two points (`irate`).
    #[default]
    CounterRate,
    /// The series' latest value.
    Value,
}

/// What a spike detector's metric counts: the words its rates are written in, and whether
/// the diagnoser may read the spike as requests × tokens per request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RateUnit {
    /// Tokens (`litellm_total_tokens_metric_total`): `8,000 tokens/s`, a `token spike`.
    #[default]
    Tokens,
    /// Requests (`litellm_requests_metric_total`): `4 requests/s`, a `request spike`.
    Requests,
    /// Spend in US dollars (`litellm_spend_metric_total`): `0.5 USD/s`, a `spend spike`.
    Usd,
}

impl RateUnit {
    /// Whether it is tokens (the unit of every spike recorded before units existed).
    #[must_use]
    pub fn is_tokens(&self) -> bool {
        *self == RateUnit::Tokens
    }

    /// The word a rate per second is written with: `tokens` in `8,000 tokens/s`.
    #[must_use]
    pub fn word(self) -> &'static str {
        match self {
            RateUnit::Tokens => "tokens",
            RateUnit::Requests => "requests",
            RateUnit::Usd => "USD",
        }
    }

    /// The rate's unit: `tokens/s`.
    #[must_use]
    pub fn per_second(self) -> &'static str {
        match self {
            RateUnit::Tokens => "tokens/s",
            RateUnit::Requests => "requests/s",
            RateUnit::Usd => "USD/s",
        }
    }

    /// What a spike of it is called: `token spike`.
    #[must_use]
    pub fn spike(self) -> &'static str {
        match self {
            RateUnit::Tokens => "token spike",
            RateUnit::Requests => "request spike",
            RateUnit::Usd => "spend spike",
        }
    }

    /// What the spike is in, at the start of a sentence: `Token usage`.
    #[must_use]
    pub fn usage(self) -> &'static str {
        match self {
            RateUnit::Tokens => "Token usage",
            RateUnit::Requests => "Request traffic",
            RateUnit::Usd => "Spend",
        }
    }

    /// What the rate is called after `the`: `token rate`.
    #[must_use]
    pub fn rate(self) -> &'static str {
        match self {
            RateUnit::Tokens => "token rate",
            RateUnit::Requests => "request rate",
            RateUnit::Usd => "spend rate",
        }
    }
}

/// The numbers that decide when a spike fires and clears.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SpikeThresholds {
    /// Observations needed before a group's baseline is trusted.
    pub warmup_samples: u32,
    /// Half-life of the baseline's memory, in seconds.
    #[serde(with = "float_repr")]
    pub baseline_half_life_secs: f64,
    /// Fire when the rate is at least this many spreads above the baseline...
    #[serde(with = "float_repr")]
    pub fire_z: f64,
    /// ...and at least this multiple of the baseline...
    #[serde(with = "float_repr")]
    pub fire_ratio: f64,
    /// ...and at least this many units per second.
    #[serde(with = "float_repr")]
    pub min_rate_per_sec: f64,
    /// ...for this many consecutive observations.
    pub fire_after_samples: u32,
    /// Clear when the rate is at most this multiple of the baseline...
    #[serde(with = "float_repr")]
    pub clear_ratio: f64,
    /// ...for this many consecutive observations.
    pub clear_after_samples: u32,
    /// The spread is at least this fraction of the baseline, so a very steady series does not
    /// fire on a small wobble.
    #[serde(with = "float_repr")]
    pub noise_floor_ratio: f64,
    /// A finding whose ratio reaches this is a `page`; below it a `ticket`.
    #[serde(with = "float_repr")]
    pub page_ratio: f64,
    /// The seasonal period in seconds (a day); 0 turns the per-hour memory off (and is what
    /// a config recorded before seasonality existed reads as, so it replays unchanged).
    #[serde(default)]
    pub season_secs: i64,
    /// Whether the spread test weighs a run of hot observations together (see the module
    /// doc); `false`, what a config recorded before it reads as, tests each one alone.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub run_evidence: bool,
    /// What a slot of the seasonal memory keeps and how it is used; `average`, what a config
    /// recorded before it reads as, is the first design.
    #[serde(default, skip_serializing_if = "SeasonMemory::is_average")]
    pub season_memory: SeasonMemory,
}

/// What each hour of a group's seasonal memory keeps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SeasonMemory {
    /// The hour's average, folded in at the hour's first observation of the next period; a
    /// rate is judged against the larger of it and the short baseline.
    #[default]
    Average,
    /// The hour's busiest quarter hour, folded in as soon as the hour is over; a rise counts
    /// in full on the next period; a rate is judged against the memory alone once there is
    /// one.
    Peak,
}

impl SeasonMemory {
    /// Whether it is the first design (left out when serialized, so that the thresholds of a
    /// session recorded before the peak memory serialize as they were recorded).
    #[must_use]
    pub fn is_average(&self) -> bool {
        *self == SeasonMemory::Average
    }
}

impl SpikeThresholds {
    /// The seasonal period in milliseconds; `None` when seasonality is off.
    #[must_use]
    pub fn season_period_ms(&self) -> Option<i64> {
        (self.season_secs > 0).then(|| self.season_secs.saturating_mul(1000))
    }
}

impl Default for SpikeThresholds {
    /// The shipped settings: for a LiteLLM gateway scraped every 15 s, a key's baseline is
    /// trusted after 20 scrapes and forgets with a half-life of 30 minutes; a key fires at 3x
    /// its expected rate and at least 50 tokens/s for 2 scrapes, when those scrapes are 6
    /// spreads above it (a longer run of 3x needs proportionally less, see the module doc);
    /// it clears under 1.5x for 3 scrapes; 10x or more pages. Each key remembers the busiest
    /// quarter hour of each hour of the day.
    fn default() -> Self {
        SpikeThresholds {
            warmup_samples: 20,
            baseline_half_life_secs: 1800.0,
            fire_z: 6.0,
            fire_ratio: 3.0,
            min_rate_per_sec: 50.0,
            fire_after_samples: 2,
            clear_ratio: 1.5,
            clear_after_samples: 3,
            noise_floor_ratio: 0.1,
            page_ratio: 10.0,
            season_secs: 86_400,
            run_evidence: true,
            season_memory: SeasonMemory::Peak,
        }
    }
}
