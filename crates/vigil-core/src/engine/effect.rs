//! Fixes judged by their measured effect, and the escalation ladder.
//!
//! The harm is the reading that made the finding fire: a spike's rate, a threshold's value
//! (when above is bad), an error budget's fastest short-window burn. When a runbook's
//! verification has `keep_if_reduced_by` and the fix did not fully work by the deadline,
//! the harm now is measured against the harm at the finding:
//! - a higher rung of the runbook's ladder remains: the fix was not enough, the next rung's
//!   steps run (each authorized by Cedar), and verification starts again;
//! - it removed at least the configured share: the change is kept and the incident
//!   escalates as partly fixed, with the numbers before and after;
//! - it removed less, or made things worse: the change is undone, as without the setting.
//!
//! The measurement is recorded (`Record::EffectMeasured`) whatever the verdict.

use super::incident::{Incident, Phase};
use super::packet::Ask;
use super::{Command, DetectorState, Engine, Record};
use crate::detector::Evidence;
use crate::detector::threshold::Bound;
use crate::human;
use crate::time::Timestamp;

/// What the measurement says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Verdict {
    /// A stronger rung is left: run it.
    NotEnough {
        /// The first step of the next rung.
        next_step: usize,
    },
    /// Keep the change, and escalate with the numbers.
    PartlyFixed,
    /// Undo it.
    NoEffect,
}

/// One measurement of the harm before and after.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Effect {
    pub(super) before: f64,
    pub(super) after: f64,
    pub(super) unit: String,
}

impl Effect {
    /// The share of the harm removed (negative when it grew).
    pub(super) fn reduction(&self) -> f64 {
        if self.before <= 0.0 {
            return 0.0;
        }
        (self.before - self.after) / self.before
    }

    pub(super) fn describe(&self) -> String {
        human::change(self.before, self.after, &self.unit)
    }
}

impl Engine {
    /// The harm the incident's finding measured when it fired, and what it measures now.
    pub(super) fn measure_effect(&self, incident: &Incident, now: Timestamp) -> Option<Effect> {
        let finding = &incident.finding;
        let detector = self.detectors.iter().find(|detector| match detector {
            DetectorState::Spike(spike) => spike.config().name == finding.detector,
            DetectorState::Threshold(threshold) => threshold.config().name == finding.detector,
            DetectorState::BurnRate(burn) => burn.config().name == finding.detector,
            DetectorState::Anomaly(anomaly) => anomaly.config().name == finding.detector,
            DetectorState::ProportionDrop(_) | DetectorState::VersionChange(_) => false,
        })?;
        let group = &finding.subject.value;
        match (&finding.evidence, detector) {
            (Evidence::Spike(evidence), DetectorState::Spike(spike)) => {
                let view = spike.view(group)?;
                Some(Effect {
                    before: evidence.rate_per_sec,
                    after: view.rate_per_sec,
                    unit: evidence.unit.per_second().to_owned(),
                })
            }
            (Evidence::Threshold(evidence), DetectorState::Threshold(threshold))
                if evidence.bound == Bound::Above =>
            {
                let after = *threshold.read(now, &self.store).get(group)?;
                Some(Effect {
                    before: evidence.value,
                    after,
                    unit: evidence.describe.clone(),
                })
            }
            (Evidence::Anomaly(evidence), DetectorState::Anomaly(anomaly))
                if evidence.is_high() =>
            {
                let after = *anomaly.read(now, &self.store).get(group)?;
                Some(Effect {
                    before: evidence.value,
                    after,
                    unit: evidence.describe.clone(),
                })
            }
            (Evidence::BurnRate(evidence), DetectorState::BurnRate(burn)) => {
                let before = evidence
                    .windows
                    .iter()
                    .filter_map(|window| window.short_burn)
                    .fold(0.0_f64, f64::max);
                let view = burn
                    .views(now)
                    .into_iter()
                    .find(|view| view.subject.value == *group)?;
                let after = view
                    .burns
                    .iter()
                    .filter_map(|(_, short)| *short)
                    .fold(0.0_f64, f64::max);
                Some(Effect {
                    before,
                    after,
                    unit: "× the error budget's rate".to_owned(),
                })
            }
            _ => None,
        }
    }

    /// What to do with a fix whose verification failed, by its measured effect.
    pub(super) fn judge_effect(&self, incident: &Incident, effect: Option<&Effect>) -> Verdict {
        let Some(runbook) = incident
            .runbook_idx
            .and_then(|idx| self.config.runbooks.get(idx))
        else {
            return Verdict::NoEffect;
        };
        let Some(keep_share) = runbook.verification.keep_if_reduced_by else {
            return Verdict::NoEffect;
        };
        let next_step = runbook
            .steps
            .iter()
            .position(|step| step.rung == incident.rung + 1);
        if let Some(next_step) = next_step {
            return Verdict::NotEnough { next_step };
        }
        match effect {
            Some(effect) if effect.reduction() >= keep_share => Verdict::PartlyFixed,
            _ => Verdict::NoEffect,
        }
    }

    /// Records the measurement and acts on the verdict: the next rung, or escalate with the
    /// change kept. (The caller undoes the change on `NoEffect`.)
    pub(super) fn act_on_effect(
        &self,
        incident: &mut Incident,
        verdict: Verdict,
        effect: Option<&Effect>,
        now: Timestamp,
        out: &mut Vec<Command>,
    ) {
        let measured = effect.map_or_else(
            || "its effect could not be measured".to_owned(),
            |effect| {
                format!(
                    "{} removed {} of the harm",
                    effect.describe(),
                    human::percent(effect.reduction().max(0.0))
                )
            },
        );
        let verdict_name = match verdict {
            Verdict::NotEnough { .. } => "not_enough",
            Verdict::PartlyFixed => "partly_fixed",
            Verdict::NoEffect => "no_effect",
        };
        out.push(Command::Record(Record::EffectMeasured {
            incident_id: incident.id.clone(),
            before: effect
                .map(|effect| effect.before)
                .filter(|value| value.is_finite()),
            after: effect
                .map(|effect| effect.after)
                .filter(|value| value.is_finite()),
            detail: measured.clone(),
            verdict: verdict_name.to_owned(),
        }));
        match verdict {
            Verdict::NotEnough { next_step } => {
                incident.rung += 1;
                incident.history.push(format!(
                    "rung {} was not enough ({measured}); trying rung {}",
                    incident.rung - 1,
                    incident.rung
                ));
                self.start_step(incident, next_step, Phase::Forward, now, out);
            }
            Verdict::PartlyFixed => {
                let kept: Vec<String> = incident
                    .completed
                    .iter()
                    .filter_map(|idx| self.build_action(incident, *idx, Phase::Forward).ok())
                    .map(|action| action.describe())
                    .collect();
                let reason = format!(
                    "partly fixed: vigil's change worked only in part: {measured}; it is left in place ({})",
                    kept.join("; ")
                );
                incident.history.push(reason.clone());
                self.escalate(
                    incident,
                    &reason,
                    Ask::situation("vigil's change helped and stays in place. Find what still drives the rest (another replica, another route), and undo vigil's change only once that is fixed."),
                    out,
                );
            }
            Verdict::NoEffect => {}
        }
    }
}
