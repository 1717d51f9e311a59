//! What a person reads about a cause: its name in words ([`cause_line`]) and the one thing to
//! do about it ([`next_step`]). Each kind gets its own advice: a provider incident is never
//! told to look at a key, a cache regression is never told to block one.
//!
//! Pure: the same hypothesis always gives the same words (they are recorded in pages).

use super::{Hypothesis, HypothesisKind};
use crate::human::percent;
use crate::topology::NodeKind;
use crate::topology::discover::kind_of_label;

/// What a kind of cause is, in words.
#[must_use]
pub fn kind_words(kind: HypothesisKind) -> &'static str {
    match kind {
        HypothesisKind::RunawayKey => "a runaway key",
        HypothesisKind::BroadSurge => "a broad surge of demand",
        HypothesisKind::ErrorBudgetBurn => "an error budget burning",
        HypothesisKind::ThresholdBreach => "a reading past its limit",
        HypothesisKind::ProportionDrop => "a share of good results falling",
        HypothesisKind::RecentChange => "a recent change",
        HypothesisKind::ProviderDegradation => "a degraded provider",
        HypothesisKind::ModelChange => "a change of the model answering",
        HypothesisKind::Scheduled => "a scheduled check",
        HypothesisKind::CacheRegression => "a cache that stopped answering",
        HypothesisKind::TokensPerRequestRise => "more tokens per request (not more requests)",
        HypothesisKind::ExpectedActivity => "expected activity",
        HypothesisKind::FallbackQualityLoss => "a fallback model that answers worse",
        HypothesisKind::QuotaExhaustionByKey => "one of our keys using up a shared provider quota",
        HypothesisKind::ServingSaturation => "self-hosted serving out of room",
        HypothesisKind::RetrievalDegradation => "a degraded retrieval store",
        HypothesisKind::ContextOverflow => "prompts outgrowing the context window",
        HypothesisKind::UnusualReading => "a reading far outside its usual range",
    }
}

/// The subject a hypothesis blames, for people: `gpt-4o-mini`, `key batch-job`; empty when
/// it blames none.
fn blamed(hypothesis: &Hypothesis) -> String {
    let Some(subject) = &hypothesis.subject else {
        return String::new();
    };
    // Names of models, stores and prompts are read whole (a hashed key is cut short).
    let name = subject.readable_name();
    match kind_of_label(&subject.label) {
        Some(NodeKind::Key) => format!("key {name}"),
        Some(NodeKind::Deployment) => format!("deployment {name}"),
        _ => name,
    }
}

/// The root cause in one line: `a fallback model that answers worse: gpt-4o-mini (gateway
/// layer; fallback_quality_loss, 90 %)`.
#[must_use]
pub fn cause_line(hypothesis: &Hypothesis) -> String {
    let blamed = blamed(hypothesis);
    let subject = if blamed.is_empty() {
        String::new()
    } else {
        format!(": {blamed}")
    };
    let layer = hypothesis
        .layer
        .map_or_else(String::new, |layer| format!("{} layer; ", layer.as_str()));
    format!(
        "{}{subject} ({layer}{}, {})",
        kind_words(hypothesis.kind),
        hypothesis.kind.as_str(),
        percent(hypothesis.confidence)
    )
}

/// The one thing a person should do about this cause.
#[must_use]
pub fn next_step(hypothesis: &Hypothesis) -> String {
    let subject = blamed(hypothesis);
    let it = if subject.is_empty() {
        "it".to_owned()
    } else {
        subject.clone()
    };
    match hypothesis.kind {
        HypothesisKind::RunawayKey => format!(
            "Find who runs {it} and stop the job or loop behind it; revoke the key if it leaked."
        ),
        HypothesisKind::BroadSurge => "Check whether the demand is real (a launch, a retry storm \
             upstream) before limiting anyone; if it is, raise capacity or budgets."
            .to_owned(),
        HypothesisKind::ErrorBudgetBurn => format!(
            "Check the provider and deployments behind {it} (status page, the error codes) and \
             move its traffic to a healthy deployment if one is down."
        ),
        HypothesisKind::ThresholdBreach => {
            format!("Look at what changed for {it} just before the reading passed its limit.")
        }
        HypothesisKind::ProportionDrop => format!(
            "Compare the recent failures of {it} with passes from before the drop: what differs \
             (model, prompt version, retrieved context)?"
        ),
        HypothesisKind::RecentChange => match &hypothesis.change {
            Some(change) => format!(
                "Confirm the change of {it} is the cause (the results since it), then go back to \
                 {} {}.",
                change.version_label, change.from
            ),
            None => format!("Confirm the recent change of {it} is the cause, then undo it."),
        },
        HypothesisKind::ProviderDegradation => format!(
            "Check {it}'s status and the error codes it returns; move traffic to another \
             provider or deployment until it recovers. No key of ours is at fault."
        ),
        HypothesisKind::ModelChange => match &hypothesis.change {
            Some(change) => format!(
                "Pin {it} to the model that answered before ({}) in the gateway's model list and \
                 re-run the evals; do not roll a prompt back for it.",
                change.from
            ),
            None => {
                format!("Pin {it} to the model snapshot that answered before and re-run the evals.")
            }
        },
        HypothesisKind::Scheduled => {
            "The scheduled check failed: look at the service it checks.".to_owned()
        }
        HypothesisKind::CacheRegression => format!(
            "Look at the cache {it} (its backend, TTLs, a key-format change in a deploy): tokens \
             rose because it stopped answering, not because of demand; do not limit keys for it."
        ),
        HypothesisKind::TokensPerRequestRise => format!(
            "Find what made the requests of {it} longer (a prompt or retrieval change, more \
             history): it is not more demand, so do not block the key."
        ),
        HypothesisKind::ExpectedActivity => {
            format!("Nothing now: {it} is expected activity; check that it ends when it should.")
        }
        HypothesisKind::FallbackQualityLoss => format!(
            "Decide whether {it} is an acceptable stand-in: fix or replace the fallback, or get \
             the primary healthy so traffic leaves it."
        ),
        HypothesisKind::QuotaExhaustionByKey => format!(
            "Give {it} its own quota or a lower rate limit: it uses up the provider quota the \
             other keys share. A failover would not help."
        ),
        HypothesisKind::ServingSaturation => format!(
            "Add serving capacity for {it} (replicas, GPU memory, a smaller max batch) or keep \
             its overflow on a hosted model."
        ),
        HypothesisKind::RetrievalDegradation => format!(
            "Ask the owner of the retrieval store {it} to look at its load, indexes and recent \
             changes; the models are not at fault."
        ),
        HypothesisKind::ContextOverflow => format!(
            "Shorten what is sent to {it} (trim history or retrieved context) or route long \
             requests to a model with a larger context window."
        ),
        HypothesisKind::UnusualReading => format!(
            "Compare {it} now with the same hour on earlier days and look at what changed in \
             the layer it measures just before it left its usual range."
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detector::Subject;

    fn hypothesis(kind: HypothesisKind, label: &str, value: &str) -> Hypothesis {
        Hypothesis {
            kind,
            subject: Some(Subject {
                label: label.to_owned(),
                value: value.to_owned(),
                alias: None,
                team: None,
            }),
            confidence: 0.9,
            evidence: Vec::new(),
            change: None,
            layer: Some(crate::topology::Layer::Provider),
            support: Vec::new(),
            against: Vec::new(),
        }
    }

    const ALL: [HypothesisKind; 18] = HypothesisKind::ALL;

    // Only the kinds that blame a key of ours may tell a person to act on a key.
    #[test]
    fn only_key_causes_get_key_advice() {
        let key_kinds = [
            HypothesisKind::RunawayKey,
            HypothesisKind::QuotaExhaustionByKey,
        ];
        for kind in ALL {
            let advice = next_step(&hypothesis(kind, "model_group", "gpt-4o"));
            let acts_on_key = advice.contains("revoke")
                || advice.contains("its own quota")
                || advice.contains("who runs");
            assert_eq!(acts_on_key, key_kinds.contains(&kind), "{kind:?}: {advice}");
        }
    }

    #[test]
    fn every_kind_names_its_subject_and_differs_from_the_others() {
        let mut seen = std::collections::BTreeSet::new();
        for kind in ALL {
            let advice = next_step(&hypothesis(kind, "model_group", "gpt-4o"));
            if !matches!(kind, HypothesisKind::BroadSurge | HypothesisKind::Scheduled) {
                assert!(advice.contains("gpt-4o"), "{kind:?}: {advice}");
            }
            assert!(seen.insert(advice.clone()), "{kind:?} repeats: {advice}");
        }
    }

    #[test]
    fn a_model_change_goes_back_to_a_model_not_a_prompt() {
        let mut change = hypothesis(HypothesisKind::ModelChange, "model_group", "gpt-4o");
        change.change = Some(crate::detector::change::Change {
            subject: Subject {
                label: "model_group".to_owned(),
                value: "gpt-4o".to_owned(),
                alias: None,
                team: None,
            },
            version_label: "response_model".to_owned(),
            from: "gpt-4o-2024-08-06".to_owned(),
            to: "gpt-4o-2024-11-20".to_owned(),
            at: crate::time::Timestamp(0),
            detector: "model-versions".to_owned(),
            source: "push:spans".to_owned(),
        });
        let advice = next_step(&change);
        assert!(advice.contains("gpt-4o-2024-08-06"), "{advice}");
        assert!(advice.contains("do not roll a prompt back"), "{advice}");
    }

    #[test]
    fn the_cause_line_names_kind_subject_layer_and_confidence() {
        let line = cause_line(&hypothesis(
            HypothesisKind::ProviderDegradation,
            "api_provider",
            "openai",
        ));
        assert_eq!(
            line,
            "a degraded provider: openai (provider layer; provider_degradation, 90 %)"
        );
        let key = cause_line(&hypothesis(
            HypothesisKind::RunawayKey,
            "hashed_api_key",
            "k-batch",
        ));
        assert!(key.starts_with("a runaway key: key k-batch"), "{key}");
    }
}
