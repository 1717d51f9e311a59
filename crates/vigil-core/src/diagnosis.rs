//! The diagnoser: turns a finding into ranked hypotheses with evidence and a short "why".
//!
//! Its rules so far: when a token spike on one key accounts for most of the excess token
//! rate across all keys, the key is running away (a loop, a leaked key, a batch job gone
//! wrong); otherwise traffic is surging broadly and blocking one key is not the fix. A
//! burn-rate finding is an error budget burning, named with the windows that show it. A
//! proportion drop is a regression of the share (an eval pass rate, a cache hit rate). And
//! whatever the finding, when the same group reported a new version (a prompt, a model)
//! shortly before it, the change is the first suspect: a `recent_change` hypothesis, ranked
//! first, names the version to go back to.

use serde::{Deserialize, Serialize};

use crate::detector::anomaly::AnomalyEvidence;
use crate::detector::change::Change;
use crate::detector::proportion::ProportionEvidence;
use crate::detector::spike::GroupView;
use crate::detector::threshold::{Bound, ThresholdEvidence};
use crate::detector::{BurnRateEvidence, Evidence, Finding, Subject};
use crate::human::{NumberStyle, OriginalUnit};
use crate::signal::float_repr;
use crate::topology::Layer;

pub mod advice;
pub mod demand;
pub mod expected;
pub mod fallback;
pub mod infra;
pub mod rank;

/// Configuration of the diagnoser.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DiagnosisConfig {
    /// The share of the excess rate (0 to 1) one key must account for to be called runaway.
    #[serde(with = "float_repr")]
    pub runaway_min_share: f64,
    /// How long after a version change a finding of the same group blames it, in
    /// milliseconds.
    #[serde(default = "default_change_window_ms")]
    pub change_window_ms: i64,
    /// How a spike is decomposed into requests and tokens per request, where the cache is,
    /// and how expected activity (a rhythm, announced work) is recognised. Absent in sessions
    /// recorded before, which replay without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub demand: Option<demand::DemandConfig>,
    /// How the other keys' rise is counted against a spiking key's (see [`ExcessRule`]).
    /// Absent in sessions recorded before, which replay with [`ExcessRule::Positive`].
    #[serde(default, skip_serializing_if = "ExcessRule::is_positive")]
    pub excess: ExcessRule,
}

/// How the diagnoser counts the excess of the keys other than the one whose spike it
/// explains, when it asks what share of a gateway's excess that key holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExcessRule {
    /// Every other key's rise above its baseline counts, however small. On a gateway of a
    /// thousand keys the sum of their noise outweighs one key at thirty times its rate, so a
    /// runaway reads as a broad surge. Sessions recorded before [`ExcessRule::Net`] use it.
    #[default]
    Positive,
    /// A key that is spiking itself, or that rose more than three times its own noise,
    /// counts with its whole rise. The other keys count together, rises and falls netted,
    /// and only by what their sum exceeds twice its own noise (the keys' spreads added in
    /// quadrature): a broad rise is many small rises that do not cancel; noise cancels.
    Net,
}

impl ExcessRule {
    /// Whether this is the rule of sessions recorded before there was a choice.
    #[must_use]
    pub fn is_positive(&self) -> bool {
        matches!(self, Self::Positive)
    }

    /// The excess of the keys other than the subject: `others` gives each key's rise over
    /// its baseline (negative for a fall), whether it is spiking itself, and its noise (one
    /// standard deviation of that rise when nothing happens).
    #[must_use]
    pub fn others_excess(self, others: impl IntoIterator<Item = (f64, bool, f64)>) -> f64 {
        match self {
            Self::Positive => others.into_iter().map(|(rise, _, _)| rise.max(0.0)).sum(),
            Self::Net => {
                let mut hot = 0.0;
                let mut quiet = 0.0;
                let mut quiet_variance = 0.0;
                for (rise, spiking, noise) in others {
                    if !rise.is_finite() {
                        continue;
                    }
                    if spiking || rise > RISE_NOISE_MULTIPLE * noise {
                        hot += rise.max(0.0);
                    } else {
                        quiet += rise;
                        if noise.is_finite() {
                            quiet_variance += noise * noise;
                        }
                    }
                }
                hot + (quiet - NET_NOISE_MULTIPLE * quiet_variance.sqrt()).max(0.0)
            }
        }
    }
}

/// How many of its own standard deviations a quiet key's rise must reach to count whole,
/// as a spiking key's does: a rise that no key's noise explains, though it stayed under the
/// detector's ratio (one in seven hundred of a gateway's keys by chance).
const RISE_NOISE_MULTIPLE: f64 = 3.0;

/// How many standard deviations of their summed noise the quiet keys' net rise must exceed
/// before it counts as a surge: about one chance in forty of counting noise.
const NET_NOISE_MULTIPLE: f64 = 2.0;

/// Six hours: an eval suite or a pass-rate window usually reports within that.
pub const DEFAULT_CHANGE_WINDOW_MS: i64 = 6 * 3600 * 1000;

fn default_change_window_ms() -> i64 {
    DEFAULT_CHANGE_WINDOW_MS
}

/// The kinds of explanation the diagnoser knows. Runbooks trigger on these.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HypothesisKind {
    /// One key drives the spike.
    RunawayKey,
    /// Many keys grew together: real demand or an upstream change, not one bad actor.
    BroadSurge,
    /// An SLO's error budget is burning fast (provider errors, a falling eval pass rate).
    ErrorBudgetBurn,
    /// A reading is past its limit (latency, error rate, hit ratio, loop depth, budget).
    ThresholdBreach,
    /// A share of good events (eval pass rate, cache hit rate) fell below its baseline.
    ProportionDrop,
    /// The group changed version (prompt, model) shortly before the finding.
    RecentChange,
    /// A provider or one of its deployments is failing or slow (errors, 429s, timeouts,
    /// latency), seen at the provider or deployment itself.
    ProviderDegradation,
    /// The model answering changed (a provider snapshot, an alias moved): seen from the
    /// response model, the gateway's labels or span attributes. Going back means a model,
    /// never a prompt version.
    ModelChange,
    /// Not a problem: a runbook's schedule came due (regular checks and drills).
    Scheduled,
    /// A cache stopped answering (its hit rate fell): requests it used to answer reach the
    /// models, so tokens rise on every key that uses it while request counts stay flat.
    CacheRegression,
    /// The same requests carry more tokens each (a longer prompt, more retrieved context):
    /// not more demand, and not a runaway key.
    TokensPerRequestRise,
    /// Activity that is expected: a rhythm seen at the same time on earlier days (a nightly
    /// batch), or work announced beforehand (a load test). Noted, not acted on, not paged.
    ExpectedActivity,
    /// Quality fell while the gateway sends traffic to a fallback model: the fallback answers
    /// worse than the model it stands in for (`diagnosis/fallback.rs`).
    FallbackQualityLoss,
    /// A provider's 429s come mostly from one of our own keys using up a shared quota: the
    /// fix is that key, not a failover (`diagnosis/fallback.rs`).
    QuotaExhaustionByKey,
    /// Self-hosted inference (vLLM, TGI) is out of room: requests waiting, the KV cache
    /// near full, preemptions, time to first token rising.
    ServingSaturation,
    /// A retrieval store (a vector database, a search index) is slow, failing or recalls
    /// less: seen from its metrics, its alerts or database spans.
    RetrievalDegradation,
    /// Prompts outgrow the model's context window: context-window errors, answers cut at
    /// the length limit, prompt sizes past their limit.
    ContextOverflow,
    /// A reading is far outside its own usual range, learnt rather than set (an anomaly
    /// detector's finding that nothing more specific explains).
    UnusualReading,
}

impl HypothesisKind {
    /// Every kind, in declaration order.
    pub const ALL: [HypothesisKind; 18] = [
        HypothesisKind::RunawayKey,
        HypothesisKind::BroadSurge,
        HypothesisKind::ErrorBudgetBurn,
        HypothesisKind::ThresholdBreach,
        HypothesisKind::ProportionDrop,
        HypothesisKind::RecentChange,
        HypothesisKind::ProviderDegradation,
        HypothesisKind::ModelChange,
        HypothesisKind::Scheduled,
        HypothesisKind::CacheRegression,
        HypothesisKind::TokensPerRequestRise,
        HypothesisKind::ExpectedActivity,
        HypothesisKind::FallbackQualityLoss,
        HypothesisKind::QuotaExhaustionByKey,
        HypothesisKind::ServingSaturation,
        HypothesisKind::RetrievalDegradation,
        HypothesisKind::ContextOverflow,
        HypothesisKind::UnusualReading,
    ];

    /// The kind a snake_case name names, if any.
    #[must_use]
    pub fn parse(name: &str) -> Option<HypothesisKind> {
        HypothesisKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == name)
    }

    /// The snake_case name used in runbooks.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            HypothesisKind::RunawayKey => "runaway_key",
            HypothesisKind::BroadSurge => "broad_surge",
            HypothesisKind::ErrorBudgetBurn => "error_budget_burn",
            HypothesisKind::ThresholdBreach => "threshold_breach",
            HypothesisKind::ProportionDrop => "proportion_drop",
            HypothesisKind::RecentChange => "recent_change",
            HypothesisKind::ProviderDegradation => "provider_degradation",
            HypothesisKind::ModelChange => "model_change",
            HypothesisKind::Scheduled => "scheduled",
            HypothesisKind::CacheRegression => "cache_regression",
            HypothesisKind::TokensPerRequestRise => "tokens_per_request_rise",
            HypothesisKind::ExpectedActivity => "expected_activity",
            HypothesisKind::FallbackQualityLoss => "fallback_quality_loss",
            HypothesisKind::QuotaExhaustionByKey => "quota_exhaustion_by_key",
            HypothesisKind::ServingSaturation => "serving_saturation",
            HypothesisKind::RetrievalDegradation => "retrieval_degradation",
            HypothesisKind::ContextOverflow => "context_overflow",
            HypothesisKind::UnusualReading => "unusual_reading",
        }
    }
}

/// One ranked explanation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Hypothesis {
    /// What kind of explanation.
    pub kind: HypothesisKind,
    /// The subject it blames, if it blames one.
    pub subject: Option<Subject>,
    /// How sure the diagnoser is, 0 to 1.
    #[serde(with = "float_repr")]
    pub confidence: f64,
    /// The facts behind it, one sentence each.
    pub evidence: Vec<String>,
    /// The version change it blames (`recent_change` only): what a rollback goes back to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change: Option<Change>,
    /// The layer its own evidence comes from (sessions with a topology).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer: Option<Layer>,
    /// Evidence from the incident's other findings, each with its layer: the chain from the
    /// symptoms to this cause.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub support: Vec<Fact>,
    /// What speaks against it, each with its layer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub against: Vec<Fact>,
}

/// One fact for or against a hypothesis, with the layer of the stack it comes from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fact {
    /// Where it was seen.
    pub layer: Layer,
    /// What, in one sentence.
    pub text: String,
}

/// The diagnoser's answer: hypotheses best first, and a short summary for people.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Diagnosis {
    /// Ranked, best first; never empty.
    pub hypotheses: Vec<Hypothesis>,
    /// Two or three sentences an on-call engineer can read in thirty seconds.
    pub why: String,
}

impl Diagnosis {
    /// The best hypothesis.
    #[must_use]
    pub fn best(&self) -> Option<&Hypothesis> {
        self.hypotheses.first()
    }
}

/// Diagnoses a finding; a spike from the detector's view of every group at the same moment,
/// any finding also from the recent version changes (oldest first). Numbers are written in
/// the session's `numbers` style.
#[must_use]
pub fn diagnose(
    config: &DiagnosisConfig,
    numbers: NumberStyle,
    finding: &Finding,
    views: &[GroupView],
    changes: &[Change],
) -> Diagnosis {
    let mut diagnosis = match &finding.evidence {
        Evidence::Spike(_) => diagnose_spike(config, numbers, finding, views),
        Evidence::BurnRate(evidence) => diagnose_burn(numbers, finding, evidence),
        Evidence::Threshold(evidence) => diagnose_threshold(numbers, finding, evidence),
        Evidence::Anomaly(evidence) => diagnose_anomaly(numbers, finding, evidence),
        Evidence::ProportionDrop(evidence) => diagnose_proportion(numbers, finding, evidence),
        Evidence::Schedule(evidence) => Diagnosis {
            hypotheses: vec![Hypothesis {
                kind: HypothesisKind::Scheduled,
                subject: Some(finding.subject.clone()),
                confidence: 1.0,
                evidence: vec![format!(
                    "runbook {} runs on its schedule `{}`",
                    evidence.runbook, evidence.schedule
                )],
                change: None,
                layer: None,
                support: Vec::new(),
                against: Vec::new(),
            }],
            why: format!(
                "Runbook {} came due on its schedule `{}`; this is a regular check, not a finding.",
                evidence.runbook, evidence.schedule
            ),
        },
    };
    if let Some(change) = suspect_change(config, finding, changes) {
        let age = numbers.duration_ms(
            finding.raised_at.millis_since(change.at),
            OriginalUnit::Minutes,
        );
        let effect = diagnosis.best().map_or_else(String::new, |best| {
            format!(" ({})", best.kind.as_str().replace('_', " "))
        });
        let hypothesis = Hypothesis {
            kind: HypothesisKind::RecentChange,
            subject: Some(change.subject.clone()),
            confidence: 0.8,
            evidence: vec![
                format!("{} {age} before the finding{effect}", change.describe()),
                format!(
                    "going back means restoring {} {}",
                    change.version_label, change.from
                ),
            ],
            change: Some(change.clone()),
            layer: None,
            support: Vec::new(),
            against: Vec::new(),
        };
        diagnosis.why = format!(
            "{age} before this, {}; the change is the first suspect. {}",
            change.describe(),
            diagnosis.why
        );
        diagnosis.hypotheses.insert(0, hypothesis);
    }
    diagnosis
}

/// The latest change of the finding's own group (or an ungrouped change) within the window
/// before the finding.
fn suspect_change<'a>(
    config: &DiagnosisConfig,
    finding: &Finding,
    changes: &'a [Change],
) -> Option<&'a Change> {
    changes.iter().rev().find(|change| {
        let age = finding.raised_at.millis_since(change.at);
        let same_group = change.subject.value.is_empty()
            || (change.subject.label == finding.subject.label
                && change.subject.value == finding.subject.value);
        same_group && (0..=config.change_window_ms).contains(&age)
    })
}

/// A diagnosis of one hypothesis about the finding's own subject, from the finding alone.
fn one_hypothesis(
    kind: HypothesisKind,
    finding: &Finding,
    confidence: f64,
    facts: Vec<String>,
    why: String,
) -> Diagnosis {
    Diagnosis {
        hypotheses: vec![Hypothesis {
            kind,
            subject: Some(finding.subject.clone()),
            confidence,
            evidence: facts,
            change: None,
            layer: None,
            support: Vec::new(),
            against: Vec::new(),
        }],
        why,
    }
}

/// A share below its baseline: the counts on both sides and how unlikely the drop is.
fn diagnose_proportion(
    numbers: NumberStyle,
    finding: &Finding,
    evidence: &ProportionEvidence,
) -> Diagnosis {
    let subject = subject_phrase(finding);
    if let Some(drift) = evidence
        .drift
        .as_ref()
        .filter(|drift| drift.raised_by_drift)
    {
        return diagnose_proportion_drift(numbers, finding, evidence, drift, &subject);
    }
    let facts = vec![
        format!(
            "{} of {subject}: {} of {} in the last {} ({}), against {} before",
            evidence.describe,
            numbers.number(evidence.recent_good),
            numbers.number(evidence.recent_total),
            numbers.duration_ms(
                evidence.window_secs.saturating_mul(1000),
                OriginalUnit::Minutes
            ),
            numbers.percent(evidence.recent_share()),
            numbers.percent(evidence.baseline_share),
        ),
        format!(
            "so few under the usual rate has a chance of {:.1e} (fires at {:.1e})",
            evidence.p_value, evidence.alert_probability
        ),
        format!(
            "baseline: {} of {} (decayed)",
            numbers.number(evidence.baseline_good),
            numbers.number(evidence.baseline_total)
        ),
    ];
    let why = format!(
        "{} of {subject} fell to {} from {} ({} of {} recently); a drop this large is \
         unlikely to be noise.",
        evidence.describe,
        numbers.percent(evidence.recent_share()),
        numbers.percent(evidence.baseline_share),
        numbers.number(evidence.recent_good),
        numbers.number(evidence.recent_total),
    );
    one_hypothesis(
        HypothesisKind::ProportionDrop,
        finding,
        1.0 - evidence.p_value,
        facts,
        why,
    )
}

/// A share that slid slowly below its frozen reference: the drift test's numbers.
fn diagnose_proportion_drift(
    numbers: NumberStyle,
    finding: &Finding,
    evidence: &ProportionEvidence,
    drift: &crate::detector::proportion::DriftEvidence,
    subject: &str,
) -> Diagnosis {
    let began = drift.slide_began_at.map_or_else(
        || "recently".to_owned(),
        |began| {
            format!(
                "{} ago",
                numbers.duration_ms(finding.raised_at.0 - began.0, OriginalUnit::Minutes)
            )
        },
    );
    let reference = if drift.reference_cases > 0.0 {
        format!(
            "learnt from its first {} cases",
            numbers.number(drift.reference_cases)
        )
    } else {
        "stated in the config".to_owned()
    };
    let facts = vec![
        format!(
            "{} of {subject}: {} of {} since the slide began {began} ({}), against a reference of {} {reference}",
            evidence.describe,
            numbers.number(drift.since_good),
            numbers.number(drift.since_total),
            numbers.percent(drift.since_share()),
            numbers.percent(drift.reference_share),
        ),
        format!(
            "the CUSUM for a drop of {} reached {:.1} (fires at {:.1})",
            numbers.percent(drift.min_drop),
            drift.statistic,
            drift.decision_level,
        ),
        format!(
            "last {}: {} of {} ({}); decayed baseline {}",
            numbers.duration_ms(
                evidence.window_secs.saturating_mul(1000),
                OriginalUnit::Minutes
            ),
            numbers.number(evidence.recent_good),
            numbers.number(evidence.recent_total),
            numbers.percent(evidence.recent_share()),
            numbers.percent(evidence.baseline_share),
        ),
    ];
    let why = format!(
        "{} of {subject} slid to {} since {began} from a reference of {} ({} of {}); a slow \
         slide that a decaying baseline would have followed.",
        evidence.describe,
        numbers.percent(drift.since_share()),
        numbers.percent(drift.reference_share),
        numbers.number(drift.since_good),
        numbers.number(drift.since_total),
    );
    Diagnosis {
        hypotheses: vec![Hypothesis {
            kind: HypothesisKind::ProportionDrop,
            subject: Some(finding.subject.clone()),
            // The slide's likelihood ratio against the reference is e^statistic: a group at
            // its reference reaches it with a chance of at most e^-statistic.
            confidence: 1.0 - crate::numeric::half_pow(drift.statistic / std::f64::consts::LN_2),
            evidence: facts,
            change: None,
            layer: None,
            support: Vec::new(),
            against: Vec::new(),
        }],
        why,
    }
}

/// `label value` of the finding's group, or the detector's name without one.
fn subject_phrase(finding: &Finding) -> String {
    if finding.subject.value.is_empty() {
        finding.detector.clone()
    } else {
        format!("{} {}", finding.subject.label, finding.subject.value)
    }
}

/// Recent readings for people, oldest first: `0.2, 0.21, 1.5`.
fn recent_readings(numbers: NumberStyle, recent: &[crate::detector::Point]) -> String {
    let readings: Vec<String> = recent
        .iter()
        .map(|point| numbers.number(point.value))
        .collect();
    readings.join(", ")
}

/// A reading past its limit: the reading, the limit, how long, and the recent values.
fn diagnose_threshold(
    numbers: NumberStyle,
    finding: &Finding,
    evidence: &ThresholdEvidence,
) -> Diagnosis {
    let subject = subject_phrase(finding);
    let side = match evidence.bound {
        Bound::Above => "above",
        Bound::Below => "below",
    };
    let facts = vec![
        format!(
            "{} of {subject} is {}, {side} the limit of {} for {} observations in a row",
            evidence.describe,
            numbers.number(evidence.value),
            numbers.number(evidence.fire),
            evidence.n_observations
        ),
        format!(
            "recent readings, oldest first: {}",
            recent_readings(numbers, &evidence.recent)
        ),
        format!(
            "it clears once {side} no longer holds past {}",
            numbers.number(evidence.clear)
        ),
    ];
    let why = format!(
        "{} of {subject} is {} ({side} its limit of {}). vigil has no automatic fix for it; \
         look at what changed in the layer it measures.",
        evidence.describe,
        numbers.number(evidence.value),
        numbers.number(evidence.fire)
    );
    one_hypothesis(HypothesisKind::ThresholdBreach, finding, 1.0, facts, why)
}

/// A reading far outside its usual range: the reading against what the baseline expected,
/// how unlikely the run of recent readings is, and where it clears.
fn diagnose_anomaly(
    numbers: NumberStyle,
    finding: &Finding,
    evidence: &AnomalyEvidence,
) -> Diagnosis {
    let subject = subject_phrase(finding);
    let side = if evidence.is_high() { "above" } else { "below" };
    let facts = vec![
        format!(
            "{} of {subject} is {}, {side} the {} its own history led vigil to expect ({} spreads away)",
            evidence.describe,
            numbers.number(evidence.value),
            numbers.number(evidence.expected),
            numbers.number(evidence.surprise),
        ),
        format!(
            "a run of readings this unusual has a chance of {:.1e} (fires at {:.1e}), after {} readings learnt",
            evidence.p_value, evidence.alert_probability, evidence.n_samples
        ),
        format!(
            "recent readings, oldest first: {}",
            recent_readings(numbers, &evidence.recent)
        ),
        format!(
            "it clears once back {} {}",
            if evidence.is_high() { "under" } else { "over" },
            numbers.number(evidence.clear)
        ),
    ];
    let why = format!(
        "{} of {subject} is {}, far {side} its usual {} (a learnt baseline, not a set limit). \
         vigil has no automatic fix for it; look at what changed in the layer it measures.",
        evidence.describe,
        numbers.number(evidence.value),
        numbers.number(evidence.expected)
    );
    one_hypothesis(HypothesisKind::UnusualReading, finding, 1.0, facts, why)
}

/// An error budget burning: which windows burn how fast, and how long the budget lasts.
fn diagnose_burn(
    numbers: NumberStyle,
    finding: &Finding,
    evidence: &BurnRateEvidence,
) -> Diagnosis {
    let subject = if finding.subject.value.is_empty() {
        finding.detector.clone()
    } else {
        format!("{} {}", finding.subject.label, finding.subject.value)
    };
    let window = |secs: i64| numbers.duration_ms(secs.saturating_mul(1000), OriginalUnit::Hours);
    // The original words glued `x` to "no traffic" too; the readable ones do not.
    let shown = |burn: Option<f64>| match (burn, numbers) {
        (Some(burn), _) => numbers.factor(burn),
        (None, NumberStyle::Original) => "no trafficx".to_owned(),
        (None, NumberStyle::Readable) => "no traffic".to_owned(),
    };
    let facts: Vec<String> = evidence
        .windows
        .iter()
        .map(|burn_window| {
            format!(
                "{} rule: burn {} over {} and {} over {} (threshold {})",
                burn_window.severity.as_str(),
                shown(burn_window.long_burn),
                window(burn_window.long_secs),
                shown(burn_window.short_burn),
                window(burn_window.short_secs),
                numbers.factor(burn_window.threshold)
            )
        })
        .collect();
    let fastest = evidence
        .windows
        .iter()
        .filter_map(|window| window.short_burn)
        .fold(0.0_f64, f64::max);
    let budget_days = evidence.period_secs as f64 / 86_400.0;
    let exhaustion = if fastest > 0.0 {
        format!(
            "at {} the {}-day budget lasts {}",
            numbers.factor(fastest),
            numbers.number(budget_days),
            numbers.duration_hours(budget_days * 24.0 / fastest)
        )
    } else {
        "the short windows saw no traffic".to_owned()
    };
    let why = format!(
        "{subject} is failing {} faster than its {} objective allows ({exhaustion}). vigil has \
         no automatic fix for an error budget burn; look at the provider or deployment behind it.",
        numbers.factor(fastest),
        numbers.percent(evidence.objective)
    );
    one_hypothesis(HypothesisKind::ErrorBudgetBurn, finding, 1.0, facts, why)
}

fn diagnose_spike(
    config: &DiagnosisConfig,
    numbers: NumberStyle,
    finding: &Finding,
    views: &[GroupView],
) -> Diagnosis {
    let current: Vec<&GroupView> = views
        .iter()
        .filter(|view| view.observed_at == finding.raised_at)
        .collect();
    let excess_of = |view: &GroupView| (view.rate_per_sec - view.baseline_per_sec).max(0.0);
    let total_rate: f64 = current.iter().map(|view| view.rate_per_sec).sum();
    let total_baseline: f64 = current.iter().map(|view| view.baseline_per_sec).sum();
    let is_subject = |view: &GroupView| view.subject.value == finding.subject.value;
    let subject_view = current.iter().find(|view| is_subject(view));
    let subject_excess = subject_view.map_or(0.0, |view| excess_of(view));
    let total_excess = match config.excess {
        // Summed in the views' order, as recorded sessions were.
        ExcessRule::Positive => current.iter().map(|view| excess_of(view)).sum(),
        ExcessRule::Net => {
            subject_excess
                + ExcessRule::Net.others_excess(
                    current.iter().filter(|view| !is_subject(view)).map(|view| {
                        (
                            view.rate_per_sec - view.baseline_per_sec,
                            view.firing,
                            view.spread_per_sec,
                        )
                    }),
                )
        }
    };
    let share = if total_excess > 0.0 {
        (subject_excess / total_excess).clamp(0.0, 1.0)
    } else {
        0.0
    };
    let n_hot = current.iter().filter(|view| view.firing).count();
    let name = finding.subject.display_name();
    let unit = finding.evidence.rate_unit();

    let mut runaway_evidence = vec![format!(
        "key {name} accounts for {} of the excess {} across {} keys",
        numbers.share(share),
        unit.rate(),
        current.len()
    )];
    if let Some(view) = subject_view {
        runaway_evidence.push(format!(
            "key {name}: {} against a baseline of {} ({})",
            numbers.per_second(view.rate_per_sec, unit.word()),
            numbers.per_second(view.baseline_per_sec, unit.word()),
            numbers.factor_one_decimal(
                view.rate_per_sec / view.baseline_per_sec.max(f64::MIN_POSITIVE)
            ),
        ));
    }
    let surge_evidence = vec![
        format!(
            "all keys together: {} against a baseline of {}",
            numbers.per_second(total_rate, unit.word()),
            numbers.per_second(total_baseline, unit.word())
        ),
        format!("{n_hot} of {} keys are spiking", current.len()),
    ];
    let runaway = Hypothesis {
        kind: HypothesisKind::RunawayKey,
        subject: Some(finding.subject.clone()),
        confidence: share,
        evidence: runaway_evidence,
        change: None,
        layer: None,
        support: Vec::new(),
        against: Vec::new(),
    };
    let surge = Hypothesis {
        kind: HypothesisKind::BroadSurge,
        subject: None,
        confidence: 1.0 - share,
        evidence: surge_evidence,
        change: None,
        layer: None,
        support: Vec::new(),
        against: Vec::new(),
    };
    let (hypotheses, why) = if share >= config.runaway_min_share {
        let why = format!(
            "{} on key {name} jumped to {}, {} of all excess usage on the \
             gateway; the other keys look normal. A single runaway key (a loop, a leaked key or \
             a job gone wrong) is the likely cause.",
            unit.usage(),
            numbers.per_second(
                subject_view.map_or(0.0, |view| view.rate_per_sec),
                unit.word()
            ),
            numbers.share(share)
        );
        (vec![runaway, surge], why)
    } else {
        let why = format!(
            "{} rose across many keys ({} of {} spiking); key {name} holds only {} \
             of the excess. This looks like a broad surge, not one runaway key, so blocking a \
             key would not fix it.",
            unit.usage(),
            n_hot,
            current.len(),
            numbers.share(share)
        );
        (vec![surge, runaway], why)
    };
    Diagnosis { hypotheses, why }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detector::spike::SpikeThresholds;
    use crate::detector::{Evidence, Severity, SpikeEvidence};
    use crate::time::Timestamp;

    fn subject(key: &str) -> Subject {
        Subject {
            label: "key".to_owned(),
            value: key.to_owned(),
            alias: None,
            team: None,
        }
    }

    fn view(key: &str, rate: f64, baseline: f64, firing: bool) -> GroupView {
        GroupView {
            subject: subject(key),
            observed_at: Timestamp(1000),
            rate_per_sec: rate,
            baseline_per_sec: baseline,
            firing,
            spread_per_sec: 0.1 * baseline,
        }
    }

    fn finding(key: &str) -> Finding {
        Finding {
            fingerprint: format!("spike/key={key}"),
            detector: "spike".to_owned(),
            source: "gw".to_owned(),
            subject: subject(key),
            severity: Severity::Page,
            raised_at: Timestamp(1000),
            evidence: Evidence::Spike(SpikeEvidence {
                metric: "m".to_owned(),
                unit: Default::default(),
                rate_per_sec: 0.0,
                baseline_per_sec: 0.0,
                spread_per_sec: 0.0,
                z_score: 0.0,
                ratio: 0.0,
                thresholds: SpikeThresholds {
                    warmup_samples: 1,
                    baseline_half_life_secs: 1.0,
                    fire_z: 1.0,
                    fire_ratio: 1.0,
                    min_rate_per_sec: 1.0,
                    fire_after_samples: 1,
                    clear_ratio: 1.0,
                    clear_after_samples: 1,
                    noise_floor_ratio: 0.1,
                    page_ratio: 1.0,
                    season_secs: 0,
                    run_evidence: false,
                    season_memory: crate::detector::spike::SeasonMemory::Average,
                },
                recent: vec![],
            }),
        }
    }

    const CONFIG: DiagnosisConfig = DiagnosisConfig {
        runaway_min_share: 0.7,
        change_window_ms: crate::diagnosis::DEFAULT_CHANGE_WINDOW_MS,
        demand: None,
        excess: ExcessRule::Positive,
    };

    #[test]
    fn one_dominant_key_is_a_runaway() {
        let views = [
            view("a", 10_000.0, 500.0, true),
            view("b", 520.0, 500.0, false),
            view("c", 480.0, 500.0, false),
        ];
        let diagnosis = diagnose(&CONFIG, NumberStyle::Readable, &finding("a"), &views, &[]);
        let best = diagnosis.best().unwrap();
        assert_eq!(best.kind, HypothesisKind::RunawayKey);
        assert!((best.confidence - 9500.0 / 9520.0).abs() < 1e-9);
        assert!(diagnosis.why.contains("runaway"), "{}", diagnosis.why);
    }

    #[test]
    fn many_keys_rising_together_is_a_surge() {
        let views = [
            view("a", 3000.0, 500.0, true),
            view("b", 2500.0, 500.0, true),
            view("c", 2600.0, 500.0, true),
        ];
        let diagnosis = diagnose(&CONFIG, NumberStyle::Readable, &finding("a"), &views, &[]);
        assert_eq!(diagnosis.best().unwrap().kind, HypothesisKind::BroadSurge);
        assert_eq!(diagnosis.hypotheses.len(), 2);
    }

    /// A gateway of `n_keys` quiet keys, each within ±20 % of its baseline (a fixed,
    /// uneven pattern) and with the noise floor's spread, plus key `hot` at `factor` times.
    fn gateway(n_keys: usize, factor: f64, quiet_rise: f64) -> Vec<GroupView> {
        let mut views = vec![view("hot", 300.0 * factor, 300.0, true)];
        for idx in 0..n_keys {
            let baseline = 20.0 + (idx * 37 % 381) as f64;
            let jitter = ((idx * 7919 % 1000) as f64 / 1000.0 - 0.5) * 0.4;
            let rate = baseline * (1.0 + quiet_rise + jitter);
            views.push(view(&format!("k{idx}"), rate, baseline, false));
        }
        views
    }

    fn best_kind(config: &DiagnosisConfig, views: &[GroupView]) -> (HypothesisKind, f64) {
        let diagnosis = diagnose(config, NumberStyle::Readable, &finding("hot"), views, &[]);
        let best = diagnosis.best().unwrap();
        (best.kind, best.confidence)
    }

    const NET: DiagnosisConfig = DiagnosisConfig {
        excess: ExcessRule::Net,
        ..CONFIG
    };

    #[test]
    fn one_key_at_thirty_times_on_a_gateway_of_thousands_is_a_runaway() {
        for n_keys in [10, 100, 1000, 2000, 5000] {
            let views = gateway(n_keys, 30.0, 0.0);
            let (kind, share) = best_kind(&NET, &views);
            assert_eq!(
                kind,
                HypothesisKind::RunawayKey,
                "{n_keys} keys: share {share}"
            );
            assert!(share > 0.9, "{n_keys} keys: share {share}");
        }
        // What the rule of recorded sessions said: the quiet keys' noise, every rise counted
        // and no fall, outweighs the runaway.
        let (kind, share) = best_kind(&CONFIG, &gateway(2000, 30.0, 0.0));
        assert_eq!(kind, HypothesisKind::BroadSurge, "share {share}");
    }

    #[test]
    fn quiet_keys_that_all_rise_a_little_are_still_a_surge() {
        // Every other key 40 % up, none spiking on its own: the spiking key at 3x holds a
        // small share of what the gateway gained.
        for n_keys in [13, 200, 2000] {
            let views = gateway(n_keys, 3.0, 0.4);
            let (kind, share) = best_kind(&NET, &views);
            assert_eq!(
                kind,
                HypothesisKind::BroadSurge,
                "{n_keys} keys: share {share}"
            );
        }
    }

    #[test]
    fn other_spiking_keys_count_whole_under_the_net_rule() {
        let views = [
            view("hot", 3000.0, 500.0, true),
            view("b", 2500.0, 500.0, true),
            view("c", 2600.0, 500.0, true),
            view("d", 450.0, 500.0, false),
        ];
        let (kind, share) = best_kind(&NET, &views);
        assert_eq!(kind, HypothesisKind::BroadSurge);
        // 2500 of 2500 + 2000 + 2100: the quiet key's fall does not offset the others' rise.
        assert!((share - (1.0 - 2500.0 / 6600.0)).abs() < 1e-9, "{share}");
    }

    #[test]
    fn the_rule_is_recorded_only_when_it_is_not_the_old_one() {
        let old = serde_json::to_value(&CONFIG).unwrap();
        assert!(old.get("excess").is_none(), "{old}");
        let new = serde_json::to_value(&NET).unwrap();
        assert_eq!(new["excess"], "net");
        let mut recorded = new;
        recorded.as_object_mut().unwrap().remove("excess");
        let read: DiagnosisConfig = serde_json::from_value(recorded).unwrap();
        assert_eq!(read.excess, ExcessRule::Positive);
    }

    #[test]
    fn views_from_other_scrapes_are_ignored() {
        let mut stale = view("b", 50_000.0, 500.0, false);
        stale.observed_at = Timestamp(0);
        let views = [view("a", 10_000.0, 500.0, true), stale];
        let best = diagnose(&CONFIG, NumberStyle::Readable, &finding("a"), &views, &[])
            .hypotheses
            .remove(0);
        assert_eq!(best.kind, HypothesisKind::RunawayKey);
        assert!((best.confidence - 1.0).abs() < 1e-9);
    }

    fn change(label: &str, value: &str, at: i64) -> Change {
        Change {
            detector: "versions".to_owned(),
            source: "gw".to_owned(),
            subject: Subject {
                label: label.to_owned(),
                value: value.to_owned(),
                alias: None,
                team: None,
            },
            version_label: "model".to_owned(),
            from: "m1".to_owned(),
            to: "m2".to_owned(),
            at: Timestamp(at),
        }
    }

    #[test]
    fn only_a_change_of_the_same_group_within_the_window_before_the_finding_is_blamed() {
        let views = [view("a", 10_000.0, 500.0, true)];
        let finding = finding("a");
        let raised = finding.raised_at.0;
        let blamed = |changes: &[Change]| {
            diagnose(&CONFIG, NumberStyle::Readable, &finding, &views, changes)
                .best()
                .unwrap()
                .kind
        };
        // Another key, a change after the finding, one older than the window: not blamed.
        assert_eq!(
            blamed(&[change("key", "b", raised - 1000)]),
            HypothesisKind::RunawayKey
        );
        assert_eq!(
            blamed(&[change("key", "a", raised + 1)]),
            HypothesisKind::RunawayKey
        );
        assert_eq!(
            blamed(&[change("key", "a", raised - DEFAULT_CHANGE_WINDOW_MS - 1)]),
            HypothesisKind::RunawayKey
        );
        // The same key, or an ungrouped change (the whole gateway's model), within it: blamed,
        // the latest first, and the detector's own hypotheses follow.
        let diagnosis = diagnose(
            &CONFIG,
            NumberStyle::Readable,
            &finding,
            &views,
            &[
                change("", "", raised - 7_200_000),
                change("key", "a", raised - 600_000),
            ],
        );
        assert_eq!(diagnosis.hypotheses[0].kind, HypothesisKind::RecentChange);
        assert_eq!(
            diagnosis.hypotheses[0].change.as_ref().unwrap().at,
            Timestamp(raised - 600_000)
        );
        assert_eq!(diagnosis.hypotheses[1].kind, HypothesisKind::RunawayKey);
        assert!(
            diagnosis
                .why
                .starts_with("10 min before this, model of key a changed from m1 to m2;"),
            "{}",
            diagnosis.why
        );
    }
}

#[cfg(test)]
#[path = "diagnosis_wording_tests.rs"]
mod wording_tests;
