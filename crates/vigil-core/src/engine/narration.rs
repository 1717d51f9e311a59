//! One narration of what the engine records: [`Record::describe`], beside
//! [`Action::describe`](super::Action::describe). The daemon's log, the simulator's timeline
//! and the demo's timeline all say what happened in these words, each with its own labels.
//! They are not recorded (the ledger holds the records), so they always use the readable
//! numbers of [`crate::human`].

use super::Record;
use crate::detector::{Evidence, Finding};
use crate::human::{self, factor, number, percent, rate};

impl Record {
    /// What happened, in one line for people. Text from outside (reasons, outcomes, label
    /// values) is included as it is: a log must escape the line.
    #[must_use]
    pub fn describe(&self) -> String {
        match self {
            Record::FindingRaised { finding } => describe_finding(finding),
            Record::FindingCleared { cleared } => format!(
                "{} cleared on {} at {}/s",
                cleared.detector,
                cleared.fingerprint,
                number(cleared.rate_per_sec)
            ),
            Record::VersionChanged { change } => change.describe(),
            Record::SeriesRefused {
                source,
                n_series,
                example,
                ..
            } => format!(
                "{source} holds {n_series} series, its limit; new ones are refused (e.g. {example})"
            ),
            Record::IncidentOpened {
                incident_id,
                subject,
                ..
            } => format!(
                "incident {incident_id} opened about {}",
                subject.display_name()
            ),
            Record::Diagnosed { diagnosis, .. } => match diagnosis.best() {
                Some(best) => format!(
                    "{} (confidence {})",
                    best.kind.as_str(),
                    percent(best.confidence)
                ),
                None => "no hypothesis".to_owned(),
            },
            Record::RunbookSelected {
                runbook_id, mode, ..
            } => format!("runbook {runbook_id} ({} mode)", mode.as_str()),
            Record::StepDenied {
                step_id,
                determining_policies,
                ..
            } => {
                if determining_policies.is_empty() {
                    format!("step {step_id} was denied: no policy permits it")
                } else {
                    format!(
                        "step {step_id} was denied by {}",
                        determining_policies.join(", ")
                    )
                }
            }
            Record::StepProposed {
                step_id,
                action,
                proposal_id,
                why,
                ..
            } => format!(
                "{step_id}: {} ({why}: nothing changed; `vigil approve {proposal_id}`)",
                action.describe()
            ),
            Record::HumanAction {
                by,
                command,
                accepted,
                outcome,
                ..
            } => format!(
                "{by}'s instruction to {} was {}: {outcome}",
                command.describe(),
                if *accepted { "accepted" } else { "refused" }
            ),
            Record::GuardrailHeld {
                guardrail, detail, ..
            } => format!("guardrail {guardrail} held: {detail}"),
            Record::VerificationStarted { condition, .. } => {
                format!("verification started: {condition}")
            }
            Record::VerificationPassed { observed, .. } => {
                if observed.is_empty() {
                    "verification passed".to_owned()
                } else {
                    let rates: Vec<String> =
                        observed.iter().map(|point| number(point.value)).collect();
                    format!(
                        "verification passed: the rate in each scrape since: {} /s",
                        rates.join(", ")
                    )
                }
            }
            Record::VerificationFailed { reason, .. } => format!("verification failed: {reason}"),
            Record::CompensationStarted { step_ids, .. } => format!(
                "undoing {} (compensation, in reverse order)",
                step_ids.join(", ")
            ),
            Record::IncidentResolved {
                incident_id,
                outcome,
                duration_ms,
            } => format!(
                "incident {incident_id} resolved in {}: {outcome}",
                human::duration_ms(*duration_ms)
            ),
            Record::TopologyGrew {
                source,
                nodes,
                edges,
                n_refused_nodes,
                n_refused_edges,
                n_nodes,
                n_edges,
            } => {
                let mut text = format!(
                    "topology: {source} showed {} new nodes and {} new edges ({n_nodes} nodes, \
                     {n_edges} edges)",
                    nodes.len(),
                    edges.len()
                );
                if let Some(edge) = edges.first() {
                    text.push_str(&format!(", e.g. {edge}"));
                }
                if *n_refused_nodes > 0 || *n_refused_edges > 0 {
                    text.push_str(&format!(
                        "; the graph is full: {n_refused_nodes} nodes and {n_refused_edges} \
                         edges refused"
                    ));
                }
                text
            }
            Record::EffectMeasured {
                incident_id,
                detail,
                verdict,
                ..
            } => {
                let what = match verdict.as_str() {
                    "not_enough" => "not enough, trying the next rung",
                    "partly_fixed" => "partly fixed, the change stays",
                    _ => "no real effect, undoing",
                };
                format!("effect of the fix for incident {incident_id}: {detail}: {what}")
            }
            Record::OwnerNotified { notice, .. } => format!(
                "told {} (owner): {}; why: {}; undo: {}",
                notice.owner, notice.change, notice.why, notice.undo
            ),
            Record::PageResolved {
                incident_id,
                outcome,
            } => format!("incident {incident_id} ended after its page: {outcome}"),
            Record::InvestigationChecked {
                investigation_id,
                checked,
                agrees,
                usage,
                ..
            } => {
                let agreement = match agrees {
                    Some(true) => "agrees with the diagnosis",
                    Some(false) => "disagrees with the diagnosis",
                    None => "no hypothesis checked out",
                };
                let best = checked
                    .hypotheses
                    .first()
                    .map_or("none", |hypothesis| hypothesis.kind_name());
                format!(
                    "assistant answered {investigation_id}: best {best}, {agreement}; {} of {} claims dropped ({} tool calls, {} tokens, {} ms)",
                    checked.dropped.len(),
                    checked.claims,
                    usage.tool_calls,
                    usage.tokens,
                    usage.latency_ms
                )
            }
            Record::InvestigationFailed {
                investigation_id,
                failure,
                detail,
                ..
            } => format!(
                "assistant gave no answer for {investigation_id} ({}): {detail}; the incident goes on without it",
                failure.as_str()
            ),
            Record::FindingJoined {
                incident_id,
                fingerprint,
                via,
                ..
            } => format!("{fingerprint} joined incident {incident_id}: {via}"),
            Record::IncidentEscalated {
                incident_id,
                reason,
                page_delivered,
            } => format!(
                "incident {incident_id} handed to a human: {reason} (page delivered: {page_delivered})"
            ),
        }
    }
}

/// A raised finding by its evidence.
fn describe_finding(finding: &Finding) -> String {
    let words = finding_words(finding);
    match &finding.evidence {
        Evidence::Schedule(_) => words,
        _ => format!(
            "{}: {words} [{}]",
            finding.detector,
            finding.severity.as_str()
        ),
    }
}

/// What a finding saw, without its detector's name: `token spike on key batch-job: 8,000
/// tokens/s against a baseline of 200 (40×, z=12)`.
pub(crate) fn finding_words(finding: &Finding) -> String {
    let subject = finding.subject.readable_name();
    match &finding.evidence {
        Evidence::Spike(evidence) => format!(
            "{} on key {subject}: {} against a baseline of {} ({}, z={})",
            evidence.unit.spike(),
            rate(evidence.rate_per_sec, evidence.unit.per_second()),
            number(evidence.baseline_per_sec),
            factor(evidence.ratio),
            number(evidence.z_score),
        ),
        Evidence::BurnRate(evidence) => format!(
            "error budget of {subject} burning against a {} objective",
            percent(evidence.objective),
        ),
        Evidence::Threshold(evidence) => format!(
            "{} of {subject} at {} (limit {})",
            evidence.describe,
            number(evidence.value),
            number(evidence.fire),
        ),
        Evidence::Anomaly(evidence) => format!(
            "{} of {subject} at {}, against an expected {} (p={:.1e})",
            evidence.describe,
            number(evidence.value),
            number(evidence.expected),
            evidence.p_value,
        ),
        Evidence::Schedule(evidence) => format!(
            "runbook {} came due on its schedule `{}`",
            evidence.runbook, evidence.schedule
        ),
        Evidence::ProportionDrop(evidence) => match &evidence.drift {
            Some(drift) if drift.raised_by_drift => format!(
                "{} of {subject} slid to {} ({} since the slide began) against a reference of {} (CUSUM {:.1} over {:.1})",
                evidence.describe,
                percent(evidence.recent_share()),
                percent(drift.since_share()),
                percent(drift.reference_share),
                drift.statistic,
                drift.decision_level,
            ),
            _ => format!(
                "{} of {subject} fell to {} against a baseline of {} (p={:.1e})",
                evidence.describe,
                percent(evidence.recent_share()),
                percent(evidence.baseline_share),
                evidence.p_value,
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detector::FindingCleared;
    use crate::time::Timestamp;

    /// Every timeline and the log show these words, so a change to them is deliberate.
    #[test]
    fn records_are_described_in_one_line_for_people() {
        let cleared = Record::FindingCleared {
            cleared: FindingCleared {
                fingerprint: "spike/hashed_api_key=abc".to_owned(),
                detector: "spike".to_owned(),
                raised_at: Timestamp(0),
                cleared_at: Timestamp(1000),
                rate_per_sec: 12.5,
            },
        };
        assert_eq!(
            cleared.describe(),
            "spike cleared on spike/hashed_api_key=abc at 12.5/s"
        );
        let denied = Record::StepDenied {
            incident_id: "inc-1".to_owned(),
            step_id: "block".to_owned(),
            determining_policies: Vec::new(),
        };
        assert_eq!(
            denied.describe(),
            "step block was denied: no policy permits it"
        );
        let resolved = Record::IncidentResolved {
            incident_id: "inc-1".to_owned(),
            outcome: "the fix worked".to_owned(),
            duration_ms: 61_240,
        };
        assert_eq!(
            resolved.describe(),
            "incident inc-1 resolved in 1 min 1 s: the fix worked"
        );
    }
}
