//! Runbooks: what vigil may do about a diagnosed incident, step by step.
//!
//! A runbook arrives as a [`RunbookSpec`] (raw, as written in `runbooks/*.yaml`, unknown keys
//! rejected) and becomes a [`Runbook`] through [`RunbookSpec::validate`], which reports every
//! problem at once with its key path.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::action::ActionKind;
use crate::authz::Mode;
use crate::diagnosis::HypothesisKind;
use crate::problem::{Problem, Problems};
use crate::signal::float_repr;
use crate::template::Template;

/// The verification checks a runbook can ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VerificationCheck {
    /// The incident key's rate, on the detector that raised the finding, stays under
    /// `threshold_per_sec` for `hold_samples` scrapes in a row (spike detectors only).
    KeyRateBelow,
    /// Every step succeeded, as its target confirmed: for scheduled checks, where the steps
    /// are the check.
    StepsSucceed,
    /// The finding that opened the incident clears: its detector, with its own clear level
    /// and hysteresis, no longer sees the problem. Works for every detector.
    FindingClears,
    /// What users get: at the deadline, the detector named `users_detector` (user-facing
    /// errors, an eval pass rate) has no open finding. For changes such as a failover, which
    /// work for users while the thing that failed still fails.
    UsersServed,
}

impl VerificationCheck {
    /// The name used in runbooks.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            VerificationCheck::KeyRateBelow => "key_rate_below",
            VerificationCheck::FindingClears => "finding_clears",
            VerificationCheck::StepsSucceed => "steps_succeed",
            VerificationCheck::UsersServed => "users_served",
        }
    }
}

/// A runbook as written (raw). Unknown keys are errors.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunbookSpec {
    /// Unique id, kebab-case; it is the Cedar principal `Vigil::Runbook::"<id>"`.
    pub id: String,
    /// What it does and when, for people.
    #[serde(default)]
    pub description: String,
    /// When it applies: a diagnosis it answers...
    #[serde(default)]
    pub trigger: Option<TriggerSpec>,
    /// ...or a schedule it runs on (a cron expression with seconds, as the `cron` crate reads
    /// it: `sec min hour day-of-month month day-of-week [year]`, in UTC), for checks and
    /// drills that must happen regularly.
    #[serde(default)]
    pub schedule: Option<String>,
    /// `advisory` or `autonomous`; the global mode can only make it stricter.
    pub mode: Mode,
    /// The trust level policies see as `principal.trust`: `untrusted`, `reviewed` (the
    /// default) or `trusted`.
    #[serde(default = "default_trust")]
    pub trust: String,
    /// Who answers for the runbook. Its proposals are requested in the owner's name, so the
    /// owner cannot also approve them (four eyes).
    #[serde(default = "default_owner")]
    pub owner: String,
    /// The steps, in order.
    pub steps: Vec<StepSpec>,
    /// How to tell that the steps worked.
    pub verification: VerificationSpec,
    /// Limits on how often it may act.
    #[serde(default)]
    pub guardrails: GuardrailsSpec,
}

fn default_trust() -> String {
    "reviewed".to_owned()
}

fn default_owner() -> String {
    "vigil".to_owned()
}

/// When a runbook applies.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriggerSpec {
    /// The best hypothesis must be of this kind, for example `runaway_key`.
    pub hypothesis: HypothesisKind,
    /// ...with at least this confidence (0 to 1).
    #[serde(default)]
    pub min_confidence: f64,
    /// ...and raised by one of these detectors (any detector when empty).
    #[serde(default)]
    pub detectors: Vec<String>,
}

/// One step as written.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepSpec {
    /// Unique within the runbook.
    pub id: String,
    /// What to do.
    pub action: ActionKind,
    /// Its parameters, as templates.
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    /// How to undo it if verification fails.
    pub compensation: Option<CompensationSpec>,
    /// The rung of the escalation ladder it belongs to (default 1). Rung 1's steps run
    /// first; when verification shows they were not enough, rung 2's run (each authorized
    /// by Cedar like any step), and so on. Rungs go up by one, in step order.
    #[serde(default)]
    pub rung: Option<u32>,
}

/// How to undo a step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompensationSpec {
    /// What to do.
    pub action: ActionKind,
    /// Its parameters, as templates.
    #[serde(default)]
    pub params: BTreeMap<String, String>,
}

/// How to verify, as written.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerificationSpec {
    /// Which check.
    pub check: VerificationCheck,
    /// The bar the rate must be under, per second (`key_rate_below` only).
    #[serde(default)]
    pub threshold_per_sec: Option<f64>,
    /// How many consecutive observations must be under it (`key_rate_below` only).
    #[serde(default = "default_hold_samples")]
    pub hold_samples: u32,
    /// The deadline after the last step, in seconds (not for `steps_succeed`).
    #[serde(default)]
    pub within_secs: u64,
    /// Judge the fix by its measured effect: when it did not fully work by the deadline but
    /// removed at least this share of the harm (0 to 1; the finding's reading at the finding
    /// against the reading at the deadline), it is kept and the incident escalates as
    /// partly fixed with the numbers; it is undone only when it removed less (did nothing or
    /// made things worse). Without it, a fix that did not fully work is undone.
    #[serde(default)]
    pub keep_if_reduced_by: Option<f64>,
    /// `users_served`: the detector whose findings say users are hurt.
    #[serde(default)]
    pub users_detector: Option<String>,
    /// A temporary change (a failover): once verified it stays in place while the incident's
    /// finding still fires, and is undone (each undo authorized by Cedar) once the finding
    /// has been clear for this many seconds; then the incident resolves.
    #[serde(default)]
    pub hold_until_recovered_secs: Option<u64>,
}

/// Guardrails as written.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuardrailsSpec {
    /// At most this many runs of the steps per incident.
    #[serde(default = "default_max_attempts")]
    pub max_attempts_per_incident: u32,
    /// After acting on a target (for example a key), do not act on it again for this long.
    #[serde(default = "default_cooldown")]
    pub cooldown_per_target_secs: u64,
    /// This runbook starts at most this many runs in any hour (over all incidents).
    #[serde(default = "default_max_runs_per_hour")]
    pub max_runs_per_hour: u32,
}

fn default_hold_samples() -> u32 {
    1
}

fn default_max_attempts() -> u32 {
    1
}

fn default_max_runs_per_hour() -> u32 {
    6
}

fn default_cooldown() -> u64 {
    900
}

impl Default for GuardrailsSpec {
    fn default() -> Self {
        GuardrailsSpec {
            max_attempts_per_incident: default_max_attempts(),
            cooldown_per_target_secs: default_cooldown(),
            max_runs_per_hour: default_max_runs_per_hour(),
        }
    }
}

/// A validated runbook.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Runbook {
    /// Unique id.
    pub id: String,
    /// For people.
    pub description: String,
    /// Best hypothesis kind it answers.
    pub hypothesis: HypothesisKind,
    /// Minimum confidence, 0 to 1.
    #[serde(with = "float_repr")]
    pub min_confidence: f64,
    /// Detectors it answers (any when empty).
    pub detectors: Vec<String>,
    /// The cron expression it runs on, for a scheduled runbook (whose `hypothesis` is
    /// `scheduled`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// Its own mode.
    pub mode: Mode,
    /// `principal.trust` in policies.
    pub trust: String,
    /// Who answers for it; the requester of its proposals.
    #[serde(default = "default_owner")]
    pub owner: String,
    /// The steps.
    pub steps: Vec<Step>,
    /// The verification.
    pub verification: Verification,
    /// The guardrails.
    pub guardrails: Guardrails,
}

/// A validated step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// Unique within the runbook.
    pub id: String,
    /// What to do.
    pub action: ActionKind,
    /// Its parameters.
    pub params: BTreeMap<String, Template>,
    /// How to undo it.
    pub compensation: Option<Compensation>,
    /// Its rung of the escalation ladder (1 unless the runbook says otherwise).
    #[serde(default = "first_rung", skip_serializing_if = "is_first_rung")]
    pub rung: u32,
}

fn first_rung() -> u32 {
    1
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if passes a reference
fn is_first_rung(rung: &u32) -> bool {
    *rung == 1
}

/// A validated compensation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Compensation {
    /// What to do.
    pub action: ActionKind,
    /// Its parameters.
    pub params: BTreeMap<String, Template>,
}

/// A validated verification.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Verification {
    /// Which check.
    pub check: VerificationCheck,
    /// The bar, per second.
    #[serde(with = "float_repr")]
    pub threshold_per_sec: f64,
    /// Consecutive observations under the bar.
    pub hold_samples: u32,
    /// Deadline in milliseconds after the last step.
    pub within_ms: i64,
    /// Keep a fix that removed at least this share of the harm (see `VerificationSpec`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_if_reduced_by: Option<f64>,
    /// `users_served`: the detector whose findings say users are hurt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub users_detector: Option<String>,
    /// Undo the verified change once the finding has been clear this long (milliseconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold_until_recovered_ms: Option<i64>,
}

/// Validated guardrails.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Guardrails {
    /// Runs of the steps per incident.
    pub max_attempts_per_incident: u32,
    /// Cooldown per target in milliseconds.
    pub cooldown_per_target_ms: i64,
    /// Runs started per rolling hour, over all incidents.
    #[serde(default = "default_max_runs_per_hour")]
    pub max_runs_per_hour: u32,
}

impl RunbookSpec {
    /// Checks everything serde cannot, reporting every problem with its key path.
    pub fn validate(self) -> Result<Runbook, Vec<Problem>> {
        let mut problems = Problems::default();
        if !is_kebab_id(&self.id) {
            problems.push(
                "id",
                format!("`{}` must be kebab-case: a-z, 0-9 and `-`", self.id),
            );
        }
        let trigger = match (self.trigger, &self.schedule) {
            (Some(trigger), None) => {
                if trigger.hypothesis == HypothesisKind::Scheduled {
                    problems.push(
                        "trigger.hypothesis",
                        "`scheduled` is for runbooks with a `schedule`",
                    );
                }
                trigger
            }
            (None, Some(schedule)) => {
                if schedule.split_whitespace().count() < 6 {
                    problems.push(
                        "schedule",
                        "a cron expression with seconds: `sec min hour day-of-month month day-of-week`, for example `0 */10 * * * *`",
                    );
                }
                TriggerSpec {
                    hypothesis: HypothesisKind::Scheduled,
                    min_confidence: 0.0,
                    detectors: Vec::new(),
                }
            }
            (Some(trigger), Some(_)) => {
                problems.push("schedule", "give `trigger` or `schedule`, not both");
                trigger
            }
            (None, None) => {
                problems.push(
                    "trigger",
                    "give `trigger` (a diagnosis it answers) or `schedule`",
                );
                TriggerSpec {
                    hypothesis: HypothesisKind::Scheduled,
                    min_confidence: 0.0,
                    detectors: Vec::new(),
                }
            }
        };
        if !(0.0..=1.0).contains(&trigger.min_confidence) {
            problems.push("trigger.min_confidence", "must be between 0 and 1");
        }
        if self.owner.trim().is_empty() {
            problems.push("owner", "must not be empty");
        }
        if self.trust.trim().is_empty() {
            problems.push("trust", "must not be empty");
        }
        if self.steps.is_empty() {
            problems.push("steps", "a runbook needs at least one step");
        }
        let mut step_ids = BTreeSet::new();
        let mut steps = Vec::new();
        let mut last_rung = 1;
        for (idx, spec) in self.steps.into_iter().enumerate() {
            let path = format!("steps[{idx}]");
            let rung = spec.rung.unwrap_or(last_rung);
            if idx == 0 && rung != 1 {
                problems.push(format!("{path}.rung"), "the first step is on rung 1");
            } else if rung != last_rung && rung != last_rung + 1 {
                problems.push(
                    format!("{path}.rung"),
                    format!(
                        "rungs go up by one in step order: after rung {last_rung} comes rung {last_rung} or {}",
                        last_rung + 1
                    ),
                );
            }
            last_rung = rung;
            if !is_kebab_id(&spec.id) {
                problems.push(
                    format!("{path}.id"),
                    format!("`{}` must be kebab-case", spec.id),
                );
            }
            if !step_ids.insert(spec.id.clone()) {
                problems.push(
                    format!("{path}.id"),
                    format!("duplicate step id `{}`", spec.id),
                );
            }
            if spec.action.is_restore() {
                problems.push(
                    format!("{path}.action"),
                    format!(
                        "`{}` undoes an earlier step and is only valid as a compensation",
                        spec.action.as_str()
                    ),
                );
            }
            let params = validate_params(
                &mut problems,
                &format!("{path}.params"),
                spec.action,
                spec.params,
            );
            if let Some(compensation) = &spec.compensation
                && compensation.action.is_restore()
                && let Some(undoes) = compensation.action.spec().undoes
                && undoes != spec.action
            {
                problems.push(
                    format!("{path}.compensation.action"),
                    format!(
                        "`{}` can only undo `{}`, not `{}`",
                        compensation.action.as_str(),
                        undoes.as_str(),
                        spec.action.as_str()
                    ),
                );
            }
            let compensation = spec.compensation.map(|compensation| Compensation {
                action: compensation.action,
                params: validate_params(
                    &mut problems,
                    &format!("{path}.compensation.params"),
                    compensation.action,
                    compensation.params,
                ),
            });
            steps.push(Step {
                id: spec.id,
                action: spec.action,
                params,
                compensation,
                rung,
            });
        }
        let verification = &self.verification;
        match (verification.check, verification.threshold_per_sec) {
            (VerificationCheck::KeyRateBelow, None) => problems.push(
                "verification.threshold_per_sec",
                "`key_rate_below` needs the rate to stay under, per second",
            ),
            (VerificationCheck::KeyRateBelow, Some(threshold))
                if !threshold.is_finite() || threshold < 0.0 =>
            {
                problems.push(
                    "verification.threshold_per_sec",
                    "must be a number of at least 0",
                );
            }
            (VerificationCheck::FindingClears, Some(_)) => problems.push(
                "verification.threshold_per_sec",
                "`finding_clears` uses the detector's own clear level; remove this key",
            ),
            _ => {}
        }
        if let Some(share) = verification.keep_if_reduced_by
            && !(share > 0.0 && share <= 1.0)
        {
            problems.push(
                "verification.keep_if_reduced_by",
                "must be a share above 0 and at most 1 (0.4 keeps a fix that removed 40 % of the harm)",
            );
        }
        match (verification.check, &verification.users_detector) {
            (VerificationCheck::UsersServed, None) => problems.push(
                "verification.users_detector",
                "`users_served` needs the detector whose findings say users are hurt",
            ),
            (VerificationCheck::UsersServed, Some(_)) | (_, None) => {}
            (_, Some(_)) => problems.push(
                "verification.users_detector",
                "only `users_served` reads a users detector; remove this key",
            ),
        }
        if verification.hold_until_recovered_secs == Some(0) {
            problems.push(
                "verification.hold_until_recovered_secs",
                "must be at least 1",
            );
        }
        if verification.hold_samples == 0 {
            problems.push("verification.hold_samples", "must be at least 1");
        }
        if verification.within_secs == 0 && verification.check != VerificationCheck::StepsSucceed {
            problems.push("verification.within_secs", "must be at least 1");
        }
        if self.guardrails.max_attempts_per_incident == 0 {
            problems.push("guardrails.max_attempts_per_incident", "must be at least 1");
        }
        if self.guardrails.max_runs_per_hour == 0 {
            problems.push("guardrails.max_runs_per_hour", "must be at least 1");
        }
        let runbook = Runbook {
            id: self.id,
            description: self.description,
            hypothesis: trigger.hypothesis,
            min_confidence: trigger.min_confidence,
            detectors: trigger.detectors,
            schedule: self.schedule,
            mode: self.mode,
            trust: self.trust,
            owner: self.owner,
            steps,
            verification: Verification {
                check: verification.check,
                threshold_per_sec: verification.threshold_per_sec.unwrap_or(0.0),
                hold_samples: verification.hold_samples,
                within_ms: secs_to_ms(verification.within_secs),
                keep_if_reduced_by: verification.keep_if_reduced_by,
                users_detector: verification.users_detector.clone(),
                hold_until_recovered_ms: verification.hold_until_recovered_secs.map(secs_to_ms),
            },
            guardrails: Guardrails {
                max_attempts_per_incident: self.guardrails.max_attempts_per_incident,
                cooldown_per_target_ms: secs_to_ms(self.guardrails.cooldown_per_target_secs),
                max_runs_per_hour: self.guardrails.max_runs_per_hour,
            },
        };
        problems.finish(runbook)
    }
}

fn secs_to_ms(secs: u64) -> i64 {
    i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX)
}

fn is_kebab_id(id: &str) -> bool {
    !id.is_empty()
        && !id.starts_with('-')
        && id
            .chars()
            .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-')
}

fn validate_params(
    problems: &mut Problems,
    path: &str,
    action: ActionKind,
    params: BTreeMap<String, String>,
) -> BTreeMap<String, Template> {
    let mut parsed = BTreeMap::new();
    for required in action.params() {
        if !params.contains_key(*required) {
            problems.push(
                path,
                format!("`{}` needs the parameter `{required}`", action.as_str()),
            );
        }
    }
    if let Some(problem) = (action.spec().params_problem)(&params) {
        problems.push(path, problem);
    }
    for (name, source) in params {
        let known = action.params().contains(&name.as_str())
            || action.optional_params().contains(&name.as_str());
        if !known {
            let mut accepted: Vec<&str> = action.params().to_vec();
            accepted.extend(action.optional_params());
            problems.push(
                format!("{path}.{name}"),
                format!(
                    "`{}` takes no parameter `{name}`; it takes {}",
                    action.as_str(),
                    accepted.join(", ")
                ),
            );
            continue;
        }
        let template = match Template::parse(&source) {
            Ok(template) => template,
            Err(message) => {
                problems.push(format!("{path}.{name}"), message);
                continue;
            }
        };
        if template.is_literal()
            && let Some(message) = (action.spec().literal_problem)(&name, source.trim())
        {
            problems.push(format!("{path}.{name}"), message);
        }
        parsed.insert(name, template);
    }
    parsed
}

pub mod reach;

#[cfg(test)]
mod tests;
