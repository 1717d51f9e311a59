//! Which hypothesis kinds a config's detectors can produce, so that `vigil check` can warn
//! about a runbook that triggers on a kind none of them ever raises: that runbook would
//! never run, and the operator would believe vigil fixes something it does not.
//!
//! The rules are deliberately generous: a kind is reachable when some detector of a shape
//! that can lead to it exists (a version change for `recent_change`, a spike for a runaway
//! key, a burn rate or a threshold grouped by a provider or deployment label for
//! `provider_degradation`, ...). A warning therefore means the runbook certainly cannot
//! trigger; its absence does not prove that it will.

use super::Runbook;
use crate::detector::DetectorConfig;
use crate::diagnosis::HypothesisKind;
use crate::diagnosis::rank::is_model_version;
use crate::topology::NodeKind;
use crate::topology::discover::kind_of_label;

/// The kind of node a detector's groups are about, if its `group_by` names one.
fn group_kind(detector: &DetectorConfig) -> Option<NodeKind> {
    let label = match detector {
        DetectorConfig::Spike(config) => Some(config.group_by.as_str()),
        DetectorConfig::BurnRate(config) => config.group_by.as_deref(),
        DetectorConfig::Threshold(config) => config.group_by.as_deref(),
        DetectorConfig::ProportionDrop(config) => config.group_by.as_deref(),
        DetectorConfig::VersionChange(config) => config.group_by.as_deref(),
        DetectorConfig::Anomaly(config) => config.group_by.as_deref(),
    }?;
    kind_of_label(label)
}

/// Whether a config has a version-change detector of models (`true`) or of anything else
/// (`false`): what a change the diagnoser blames comes from.
fn has_version_change(all: &[DetectorConfig], of_models: bool) -> bool {
    all.iter().any(|detector| {
        matches!(detector, DetectorConfig::VersionChange(config)
            if is_model_version(&config.version_label) == of_models)
    })
}

/// Whether a finding of `detector` can lead the diagnoser to `kind`, in a config whose
/// detectors are `all` (a blamed change comes from any version-change detector of it).
#[must_use]
pub fn can_produce(
    detector: &DetectorConfig,
    kind: HypothesisKind,
    all: &[DetectorConfig],
) -> bool {
    let spike = matches!(detector, DetectorConfig::Spike(_));
    let burn = matches!(detector, DetectorConfig::BurnRate(_));
    let threshold = matches!(detector, DetectorConfig::Threshold(_));
    // An anomaly detector reads what a threshold reads, with a learnt limit.
    let anomaly = matches!(detector, DetectorConfig::Anomaly(_));
    let proportion = matches!(detector, DetectorConfig::ProportionDrop(_));
    // Version changes are markers: they raise no finding of their own.
    let raises_findings = !matches!(detector, DetectorConfig::VersionChange(_));
    match kind {
        HypothesisKind::RunawayKey
        | HypothesisKind::BroadSurge
        | HypothesisKind::TokensPerRequestRise
        | HypothesisKind::CacheRegression => spike,
        HypothesisKind::ErrorBudgetBurn | HypothesisKind::QuotaExhaustionByKey => burn,
        HypothesisKind::ThresholdBreach => threshold,
        HypothesisKind::UnusualReading => anomaly,
        HypothesisKind::ServingSaturation | HypothesisKind::ContextOverflow => threshold || anomaly,
        HypothesisKind::ProportionDrop => proportion,
        // An eval drop, as a share or as an SLO, while a fallback carries traffic.
        HypothesisKind::FallbackQualityLoss => proportion || burn,
        HypothesisKind::RecentChange => raises_findings && has_version_change(all, false),
        HypothesisKind::ModelChange => raises_findings && has_version_change(all, true),
        HypothesisKind::ProviderDegradation => {
            (burn || threshold || anomaly)
                && matches!(
                    group_kind(detector),
                    Some(NodeKind::Provider | NodeKind::Deployment)
                )
        }
        // A store's own readings, its alerts (grouped by what they are about) or its spans.
        HypothesisKind::RetrievalDegradation => threshold || anomaly || burn || proportion,
        // Any finding can repeat a rhythm or be announced; a schedule needs no detector.
        HypothesisKind::ExpectedActivity => raises_findings,
        HypothesisKind::Scheduled => true,
    }
}

/// One warning per runbook that triggers on a kind none of the detectors it listens to (its
/// `detectors`, else all of them) can produce. Scheduled runbooks need no detector.
#[must_use]
pub fn unreachable_runbooks(detectors: &[DetectorConfig], runbooks: &[Runbook]) -> Vec<String> {
    let mut warnings = Vec::new();
    for runbook in runbooks {
        if runbook.schedule.is_some() {
            continue;
        }
        let listened: Vec<&DetectorConfig> = detectors
            .iter()
            .filter(|detector| {
                runbook.detectors.is_empty()
                    || runbook.detectors.iter().any(|name| name == detector.name())
            })
            .collect();
        if listened
            .iter()
            .any(|detector| can_produce(detector, runbook.hypothesis, detectors))
        {
            continue;
        }
        let scope = if runbook.detectors.is_empty() {
            "no configured detector".to_owned()
        } else {
            format!("none of its detectors ({})", runbook.detectors.join(", "))
        };
        warnings.push(format!(
            "runbook `{}` triggers on `{}`, which {scope} can produce: it will never run",
            runbook.id,
            runbook.hypothesis.as_str()
        ));
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;

    fn burn(name: &str, group_by: &str) -> DetectorConfig {
        serde_json::from_value(serde_json::json!({
            "kind": "burn_rate", "name": name, "source": "gw",
            "bad": "failures_total", "total": "requests_total", "group_by": group_by,
            "objective": 0.99, "period_secs": 2_592_000,
            "rules": [{"severity": "page", "long_secs": 600, "short_secs": 60, "burn_rate": 14.4}],
            "bucket_ms": 6000, "max_groups": 100
        }))
        .expect("a burn-rate config")
    }

    fn versions(name: &str, label: &str) -> DetectorConfig {
        serde_json::from_value(serde_json::json!({
            "kind": "version_change", "name": name, "source": "push:evals",
            "selector": "vigil_eval_cases_total", "version_label": label,
            "group_by": "prompt", "max_versions": 8, "max_groups": 100
        }))
        .expect("a version-change config")
    }

    // (detectors, kind, reachable): the shapes that can and cannot lead to a kind.
    #[test]
    fn each_kind_needs_a_detector_of_its_shape() {
        let cases = [
            (
                vec![burn("errors", "model_group")],
                HypothesisKind::ErrorBudgetBurn,
                true,
            ),
            (
                vec![burn("errors", "model_group")],
                HypothesisKind::RunawayKey,
                false,
            ),
            (
                vec![burn("errors", "model_group")],
                HypothesisKind::ProviderDegradation,
                false,
            ),
            (
                vec![burn("errors", "model_id")],
                HypothesisKind::ProviderDegradation,
                true,
            ),
            (
                vec![burn("errors", "api_provider")],
                HypothesisKind::ProviderDegradation,
                true,
            ),
            (
                vec![burn("errors", "prompt")],
                HypothesisKind::RecentChange,
                false,
            ),
            (
                vec![burn("errors", "prompt"), versions("v", "prompt_version")],
                HypothesisKind::RecentChange,
                true,
            ),
            (
                vec![burn("errors", "prompt"), versions("v", "prompt_version")],
                HypothesisKind::ModelChange,
                false,
            ),
            (
                vec![burn("errors", "prompt"), versions("v", "response_model")],
                HypothesisKind::ModelChange,
                true,
            ),
            // A version change alone raises no finding for anything to answer.
            (
                vec![versions("v", "prompt_version")],
                HypothesisKind::RecentChange,
                false,
            ),
        ];
        for (detectors, kind, reachable) in cases {
            let any = detectors
                .iter()
                .any(|detector| can_produce(detector, kind, &detectors));
            assert_eq!(
                any,
                reachable,
                "{kind:?} from {:?}",
                detectors
                    .iter()
                    .map(DetectorConfig::name)
                    .collect::<Vec<_>>()
            );
        }
    }
}
