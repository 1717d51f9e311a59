//! The demand side of a token spike: requests × tokens per request, and the cache.
//!
//! Before anyone is blamed for a token spike, it is decomposed (sessions whose diagnosis has
//! a [`DemandConfig`]): the engine measures the requests of every group (key) at the
//! finding's moment and before the spike began ([`measure`]), and the cache's hit rate at
//! both times; [`decompose`] then reads them:
//! - **more requests** from the key (its request rate grew at least `flat_ratio` times and
//!   grew more than its tokens per request did): a runaway, and its share of the extra
//!   *requests* across keys says whether it is one key or many;
//! - **the same requests, more tokens each**: not a runaway and not a demand surge (both get
//!   that counter-evidence and lose their confidence); when the cache's hit rate fell at the
//!   same time, the cache is the cause (`cache_regression`, about the cache node), else the
//!   requests grew longer (`tokens_per_request_rise`, about the key: a prompt, retrieval or
//!   upstream change that blocking the key would not fix).
//!
//! Only a token spike is decomposed: a request spike already measures demand.
//! Flat request counts across all keys rule out a demand surge. A finding of a detector that
//! watches a cache (its name or description says `cache`) is a `cache_regression` too.
//! [`may_join`] keeps causes that exclude one another out of one incident: a key sending
//! more requests is not explained by a cache that answers fewer of the same requests.

use serde::{Deserialize, Serialize};

use crate::detector::spike::GroupView;
use crate::detector::{Evidence, Finding, Subject};
use crate::human::NumberStyle;
use crate::signal::float_repr;
use crate::store::{Matcher, SOURCE_LABEL, Selector, SeriesStore};
use crate::time::Timestamp;
use crate::topology::Layer;

use super::{Diagnosis, DiagnosisConfig, ExcessRule, Fact, Hypothesis, HypothesisKind};

/// How the diagnoser reads demand and expected activity (new sessions).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DemandConfig {
    /// The request counter per group of a spike detector (summed over its other labels),
    /// for example `litellm_proxy_total_requests_metric_total`.
    pub requests: Selector,
    /// The cache's hit counter, for example `litellm_cache_hits_metric_total`.
    pub cache_hits: Selector,
    /// The cache's miss counter, for example `litellm_cache_misses_metric_total`.
    pub cache_misses: Selector,
    /// Request rates within this factor of their earlier rate are flat (for example 1.5).
    #[serde(with = "float_repr")]
    pub flat_ratio: f64,
    /// The window before a spike began over which the earlier rates are measured.
    pub before_window_ms: i64,
    /// A finding repeats a rhythm when it fired at the same time of day on at least this
    /// many earlier days.
    pub rhythm_min_days: u32,
    /// How far from the same time of day an earlier fire may be and still count.
    pub rhythm_tolerance_ms: i64,
    /// How many days back earlier fires are remembered.
    pub rhythm_lookback_days: u32,
    /// Alert names that announce planned work, compared without case, `_`, `-` and spaces
    /// as substrings (for example `loadtest`, `plannedwork`, `maintenance`).
    pub planned_work_alertnames: Vec<String>,
}

/// The default planned-work alert names.
pub const DEFAULT_PLANNED_WORK_ALERTNAMES: [&str; 5] = [
    "loadtest",
    "plannedwork",
    "maintenance",
    "gameday",
    "stresstest",
];

/// A cache's hit rate must have been at least this before a fall counts.
const MIN_CACHE_HIT_RATIO: f64 = 0.1;

/// A fall to at most this fraction of the earlier hit rate is a collapse.
const CACHE_FALL_FRACTION: f64 = 0.5;

/// What a runaway or a surge keeps when the requests stayed flat.
const FLAT_DEMAND_CONFIDENCE: f64 = 0.2;

/// One group's requests now and before the spike.
#[derive(Clone, Debug, PartialEq)]
pub struct RequestView {
    /// The group's value (a key's hash).
    pub group: String,
    /// Requests per second at the finding's moment.
    pub now_per_sec: f64,
    /// Requests per second before the spike began.
    pub before_per_sec: f64,
}

/// The cache's hit rate now and before the spike.
#[derive(Clone, Debug, PartialEq)]
pub struct CacheView {
    /// The cache's name (its source).
    pub name: String,
    /// Hits over lookups at the finding's moment.
    pub now_ratio: f64,
    /// Hits over lookups before the spike began.
    pub before_ratio: f64,
}

/// What the engine measured for one spike.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DemandEvidence {
    /// Per group, in group order.
    pub requests: Vec<RequestView>,
    /// The cache, when its counters have readings at both times.
    pub cache: Option<CacheView>,
}

/// The subject a cache is named by: `cache=<name>`.
#[must_use]
pub fn cache_subject(name: &str) -> Subject {
    Subject {
        label: "cache".to_owned(),
        value: name.to_owned(),
        alias: None,
        team: None,
    }
}

/// When the spike began: the last point before the trailing run of the finding's recent
/// rates above its baseline (the finding's moment when there is none).
fn before_spike(finding: &Finding) -> Timestamp {
    let Evidence::Spike(spike) = &finding.evidence else {
        return finding.raised_at;
    };
    let elevated = |value: f64| value > spike.baseline_per_sec * spike.thresholds.clear_ratio;
    let mut before = finding.raised_at;
    for point in spike.recent.iter().rev() {
        before = point.at;
        if !elevated(point.value) {
            break;
        }
    }
    before
}

/// Sums the rate of every series of `selector` in `source`, per value of `group_by` (`""`
/// for all), now (the last two points) and over the window before `before`.
fn rates(
    store: &SeriesStore,
    selector: &Selector,
    source: &str,
    group_by: Option<&str>,
    now: Timestamp,
    before: Timestamp,
    window_ms: i64,
) -> Vec<(String, f64, f64)> {
    let mut matchers: Vec<Matcher> = selector.matchers().to_vec();
    matchers.push(Matcher::equal(SOURCE_LABEL, source));
    let mut by_group: std::collections::BTreeMap<String, (f64, f64)> =
        std::collections::BTreeMap::new();
    for series in store.select(&matchers) {
        let group = match group_by {
            Some(label) => match store.label_value(series, label) {
                Some(value) => value.to_owned(),
                None => continue,
            },
            None => String::new(),
        };
        let now_rate = store
            .instant_rate(series, window_ms, now)
            .filter(|rate| rate.is_finite())
            .unwrap_or(0.0);
        let before_rate = store
            .rate(series, window_ms, before)
            .filter(|rate| rate.is_finite())
            .unwrap_or(0.0);
        let entry = by_group.entry(group).or_insert((0.0, 0.0));
        entry.0 += now_rate;
        entry.1 += before_rate;
    }
    by_group
        .into_iter()
        .map(|(group, (now_rate, before_rate))| (group, now_rate, before_rate))
        .collect()
}

/// Measures the requests per group and the cache of `source` for a spike `finding`.
#[must_use]
pub fn measure(
    config: &DemandConfig,
    store: &SeriesStore,
    source: &str,
    group_by: &str,
    finding: &Finding,
) -> DemandEvidence {
    let now = finding.raised_at;
    let before = before_spike(finding);
    let window_ms = config.before_window_ms.max(1);
    let requests = rates(
        store,
        &config.requests,
        source,
        Some(group_by),
        now,
        before,
        window_ms,
    )
    .into_iter()
    .map(|(group, now_per_sec, before_per_sec)| RequestView {
        group,
        now_per_sec,
        before_per_sec,
    })
    .collect();
    let hits = rates(
        store,
        &config.cache_hits,
        source,
        None,
        now,
        before,
        window_ms,
    );
    let misses = rates(
        store,
        &config.cache_misses,
        source,
        None,
        now,
        before,
        window_ms,
    );
    let cache = match (hits.first(), misses.first()) {
        (Some((_, hits_now, hits_before)), Some((_, misses_now, misses_before))) => {
            let lookups_now = hits_now + misses_now;
            let lookups_before = hits_before + misses_before;
            (lookups_now > 0.0 && lookups_before > 0.0).then(|| CacheView {
                name: source.to_owned(),
                now_ratio: hits_now / lookups_now,
                before_ratio: hits_before / lookups_before,
            })
        }
        _ => None,
    };
    DemandEvidence { requests, cache }
}

/// Whether a cache collapsed: its hit rate was real and fell to at most half.
fn collapsed(cache: &CacheView) -> bool {
    cache.before_ratio >= MIN_CACHE_HIT_RATIO
        && cache.now_ratio <= cache.before_ratio * CACHE_FALL_FRACTION
}

/// Whether a detector watches a cache: its name or its description says so.
fn watches_cache(finding: &Finding) -> bool {
    let describe = match &finding.evidence {
        Evidence::ProportionDrop(evidence) => evidence.describe.as_str(),
        Evidence::Threshold(evidence) => evidence.describe.as_str(),
        Evidence::Anomaly(evidence) => evidence.describe.as_str(),
        Evidence::Spike(_) | Evidence::BurnRate(_) | Evidence::Schedule(_) => "",
    };
    finding.detector.to_ascii_lowercase().contains("cache")
        || describe.to_ascii_lowercase().contains("cache")
}

/// Where a new hypothesis goes: after the leading version changes that are still first
/// suspects (no counter-evidence), before the finding's own explanations.
fn front(diagnosis: &Diagnosis) -> usize {
    diagnosis
        .hypotheses
        .iter()
        .take_while(|hypothesis| hypothesis.change.is_some() && hypothesis.against.is_empty())
        .count()
}

fn hypothesis(
    kind: HypothesisKind,
    subject: Subject,
    confidence: f64,
    evidence: Vec<String>,
) -> Hypothesis {
    Hypothesis {
        kind,
        subject: Some(subject),
        confidence,
        evidence,
        change: None,
        layer: Some(Layer::Gateway),
        support: Vec::new(),
        against: Vec::new(),
    }
}

/// A finding's diagnosis with its demand read (see the module docs).
#[must_use]
pub fn decompose(
    config: &DemandConfig,
    diagnosis_config: &DiagnosisConfig,
    numbers: NumberStyle,
    mut diagnosis: Diagnosis,
    finding: &Finding,
    evidence: &DemandEvidence,
    views: &[GroupView],
) -> Diagnosis {
    let spike = match &finding.evidence {
        Evidence::Spike(spike) => spike,
        Evidence::ProportionDrop(_) | Evidence::Threshold(_) | Evidence::Anomaly(_)
            if watches_cache(finding) =>
        {
            let facts = diagnosis
                .best()
                .map(|best| best.evidence.clone())
                .unwrap_or_default();
            let cache = hypothesis(
                HypothesisKind::CacheRegression,
                finding.subject.clone(),
                diagnosis.best().map_or(1.0, |best| best.confidence),
                facts,
            );
            let at = front(&diagnosis);
            diagnosis.hypotheses.insert(at, cache);
            diagnosis.why = format!(
                "A cache answers less than it did: requests it used to answer reach the models. {}",
                diagnosis.why
            );
            return diagnosis;
        }
        Evidence::ProportionDrop(_)
        | Evidence::Threshold(_)
        | Evidence::Anomaly(_)
        | Evidence::BurnRate(_)
        | Evidence::Schedule(_) => return diagnosis,
    };
    // Requests × tokens per request reads a token spike; a spike of requests (or spend)
    // already says who sends more, through its own share of the excess.
    if !spike.unit.is_tokens() {
        return diagnosis;
    }
    let runaway_min_share = diagnosis_config.runaway_min_share;
    let key = &finding.subject.value;
    let Some(requests) = evidence.requests.iter().find(|view| &view.group == key) else {
        return diagnosis;
    };
    let tiny = f64::MIN_POSITIVE;
    let name = finding.subject.display_name();
    let token_ratio = spike.rate_per_sec / spike.baseline_per_sec.max(tiny);
    let request_ratio = if requests.before_per_sec > 0.0 {
        requests.now_per_sec / requests.before_per_sec
    } else if requests.now_per_sec > 0.0 {
        f64::INFINITY
    } else {
        1.0
    };
    let per_request_before = spike.baseline_per_sec / requests.before_per_sec.max(tiny);
    let per_request_now = spike.rate_per_sec / requests.now_per_sec.max(tiny);
    let per_request_ratio = per_request_now / per_request_before.max(tiny);
    let request_fact = format!(
        "key {name}: {} against {} before the spike",
        numbers.per_second(requests.now_per_sec, "requests"),
        numbers.per_second(requests.before_per_sec, "requests"),
    );
    let per_request_fact = format!(
        "key {name}: {} tokens per request against {} before ({})",
        numbers.number(per_request_now),
        numbers.number(per_request_before),
        numbers.factor_one_decimal(per_request_ratio),
    );
    let total_now: f64 = evidence.requests.iter().map(|view| view.now_per_sec).sum();
    let total_before: f64 = evidence
        .requests
        .iter()
        .map(|view| view.before_per_sec)
        .sum();
    let all_flat = total_now < total_before * config.flat_ratio && total_before > 0.0;
    let more_requests = request_ratio >= config.flat_ratio && request_ratio >= per_request_ratio;

    if more_requests {
        // The spike is demand: who sends the extra requests?
        let excess = |view: &RequestView| (view.now_per_sec - view.before_per_sec).max(0.0);
        let total_excess: f64 = match diagnosis_config.excess {
            ExcessRule::Positive => evidence.requests.iter().map(excess).sum(),
            // A key's request rate has no learnt spread here: each quiet key's own change
            // stands for its noise, so the quiet keys count only by what their net change
            // exceeds twice the root of their summed squares.
            ExcessRule::Net => {
                let spiking = |group: &str| {
                    views
                        .iter()
                        .any(|view| view.firing && view.subject.value == group)
                };
                excess(requests)
                    + ExcessRule::Net.others_excess(
                        evidence
                            .requests
                            .iter()
                            .filter(|view| &view.group != key)
                            .map(|view| {
                                let rise = view.now_per_sec - view.before_per_sec;
                                (rise, spiking(&view.group), rise.abs())
                            }),
                    )
            }
        };
        let share = if total_excess > 0.0 {
            (excess(requests) / total_excess).clamp(0.0, 1.0)
        } else {
            0.0
        };
        let share_fact = format!(
            "key {name} sends {} of the extra requests across {} keys ({})",
            numbers.share(share),
            evidence.requests.len(),
            numbers.factor_one_decimal(token_ratio),
        );
        for hypothesis in &mut diagnosis.hypotheses {
            match hypothesis.kind {
                HypothesisKind::RunawayKey => {
                    hypothesis.support.push(Fact {
                        layer: Layer::Gateway,
                        text: format!("{request_fact}: more calls, not longer ones"),
                    });
                    hypothesis.support.push(Fact {
                        layer: Layer::Gateway,
                        text: share_fact.clone(),
                    });
                    if share >= runaway_min_share {
                        hypothesis.confidence = hypothesis.confidence.max(share);
                    }
                }
                HypothesisKind::BroadSurge if share >= runaway_min_share => {
                    hypothesis.against.push(Fact {
                        layer: Layer::Gateway,
                        text: format!(
                            "the other keys' requests stayed flat; key {name} sends {} of \
                             the extra ones",
                            numbers.share(share)
                        ),
                    });
                    hypothesis.confidence = hypothesis.confidence.min(1.0 - share);
                }
                _ => {}
            }
        }
        sort_own(&mut diagnosis);
        if diagnosis
            .hypotheses
            .get(front(&diagnosis))
            .is_some_and(|best| best.kind == HypothesisKind::RunawayKey)
            && !diagnosis.why.contains("runaway key")
        {
            diagnosis.why = format!(
                "Key {name} sends {} more requests than before the spike ({} of the extra \
                 requests on the gateway), and its token usage followed. A single runaway key \
                 (a loop, a leaked key or a job gone wrong) is the likely cause.",
                numbers.factor_one_decimal(request_ratio),
                numbers.share(share)
            );
        }
        return diagnosis;
    }
    if request_ratio >= config.flat_ratio {
        // Requests and tokens per request both grew, the latter more: no clear reading.
        return diagnosis;
    }

    // The same requests, more tokens each: not a runaway, not a demand surge.
    for hypothesis in &mut diagnosis.hypotheses {
        match hypothesis.kind {
            HypothesisKind::RunawayKey => {
                hypothesis.against.push(Fact {
                    layer: Layer::Gateway,
                    text: format!(
                        "{request_fact}: the extra tokens come with the same requests, not \
                         more of them"
                    ),
                });
                hypothesis.confidence = hypothesis.confidence.min(FLAT_DEMAND_CONFIDENCE);
            }
            HypothesisKind::BroadSurge if all_flat => {
                hypothesis.against.push(Fact {
                    layer: Layer::Gateway,
                    text: format!(
                        "requests across all keys are flat ({} against {}): not a demand surge",
                        numbers.per_second(total_now, "requests"),
                        numbers.per_second(total_before, "requests"),
                    ),
                });
                hypothesis.confidence = hypothesis.confidence.min(FLAT_DEMAND_CONFIDENCE);
            }
            _ => {}
        }
    }
    sort_own(&mut diagnosis);
    let cause = match &evidence.cache {
        Some(cache) if collapsed(cache) => {
            let fall = format!(
                "the cache {}'s hit rate fell to {} from {}",
                cache.name,
                numbers.percent(cache.now_ratio),
                numbers.percent(cache.before_ratio)
            );
            let mut cause = hypothesis(
                HypothesisKind::CacheRegression,
                cache_subject(&cache.name),
                1.0 - cache.now_ratio / cache.before_ratio.max(tiny),
                vec![
                    fall.clone(),
                    format!(
                        "requests stayed flat while tokens rose {}: requests the cache used to \
                         answer reach the models",
                        numbers.factor_one_decimal(token_ratio)
                    ),
                ],
            );
            cause.support.push(Fact {
                layer: Layer::Gateway,
                text: request_fact.clone(),
            });
            cause.support.push(Fact {
                layer: Layer::Gateway,
                text: per_request_fact.clone(),
            });
            diagnosis.why = format!(
                "{}. Token usage rose on key {name} ({}) with its requests flat ({}): requests \
                 the cache used to answer now reach the models. The cache is the cause, not the \
                 keys; blocking a key would not fix it. Look at the cache (a restart, an \
                 eviction, a changed key or TTL).",
                capitalised(&fall),
                numbers.factor_one_decimal(token_ratio),
                numbers.per_second(requests.now_per_sec, "requests"),
            );
            cause
        }
        Some(_) | None => {
            let mut cause = hypothesis(
                HypothesisKind::TokensPerRequestRise,
                finding.subject.clone(),
                1.0 - 1.0 / per_request_ratio.max(1.0),
                vec![
                    per_request_fact.clone(),
                    format!("{request_fact}: the same requests, longer ones"),
                ],
            );
            if let Some(cache) = &evidence.cache {
                cause.support.push(Fact {
                    layer: Layer::Gateway,
                    text: format!(
                        "the cache {}'s hit rate held ({} against {} before)",
                        cache.name,
                        numbers.percent(cache.now_ratio),
                        numbers.percent(cache.before_ratio)
                    ),
                });
            }
            diagnosis.why = format!(
                "Token usage on key {name} rose {} while its requests stayed flat ({}): each \
                 request carries {} the tokens it did ({} tokens per request). Longer prompts, \
                 more retrieved context or a change upstream of the key did this, not a runaway \
                 key; blocking the key would cut legitimate traffic. Look at what changed in the \
                 prompts or the retrieval behind it.",
                numbers.factor_one_decimal(token_ratio),
                numbers.per_second(requests.now_per_sec, "requests"),
                numbers.factor_one_decimal(per_request_ratio),
                numbers.number(per_request_now),
            );
            cause
        }
    };
    let at = front(&diagnosis);
    diagnosis.hypotheses.insert(at, cause);
    diagnosis
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Sorts the finding's own hypotheses (after the leading changes) by confidence, best first;
/// equal ones keep their order.
fn sort_own(diagnosis: &mut Diagnosis) {
    let at = front(diagnosis);
    if let Some(own) = diagnosis.hypotheses.get_mut(at..) {
        own.sort_by(|a, b| b.confidence.total_cmp(&a.confidence));
    }
}

/// Whether a finding whose best explanation is `finding_best` may join an incident whose
/// best is `incident_best`: causes that exclude one another do not (a key sending more
/// requests, against a cache or longer prompts behind the same requests), and expected
/// activity joins only expected activity.
#[must_use]
pub fn may_join(
    finding_best: Option<HypothesisKind>,
    incident_best: Option<HypothesisKind>,
) -> bool {
    let per_request = |kind: Option<HypothesisKind>| {
        matches!(
            kind,
            Some(HypothesisKind::CacheRegression | HypothesisKind::TokensPerRequestRise)
        )
    };
    let runaway = |kind: Option<HypothesisKind>| kind == Some(HypothesisKind::RunawayKey);
    let expected = |kind: Option<HypothesisKind>| kind == Some(HypothesisKind::ExpectedActivity);
    if (runaway(finding_best) && per_request(incident_best))
        || (per_request(finding_best) && runaway(incident_best))
    {
        return false;
    }
    expected(finding_best) == expected(incident_best)
}

#[cfg(test)]
mod tests;
