//! Runbooks: what vigil may do about a diagnosed incident, step by step.
//!
//! A runbook arrives as a [`RunbookSpec`] (raw, as written in `runbooks/*.yaml`, unknown keys
//! rejected) and becomes a [`Runbook`] through [`RunbookSpec::validate`], which reports every
//! problem at once with its key path.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::authz::ActionName;
use crate::diagnosis::HypothesisKind;
use crate::problem::{Problem, Problems};
use crate::signal::float_repr;
use crate::template::Template;

/// Whether vigil acts or only proposes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Record a proposal for a human; change nothing.
    Advisory,
    /// Act, verify, and compensate when the change did not work.
    Autonomous,
}

impl Mode {
    /// The stricter of two modes: advisory wins over autonomous.
    #[must_use]
    pub fn stricter(self, other: Mode) -> Mode {
        match (self, other) {
            (Mode::Autonomous, Mode::Autonomous) => Mode::Autonomous,
            (Mode::Advisory, _) | (_, Mode::Advisory) => Mode::Advisory,
        }
    }

    /// The lowercase name used in config files and Cedar contexts.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Advisory => "advisory",
            Mode::Autonomous => "autonomous",
        }
    }
}

/// The actions a runbook step can take. The set is closed: each has a connector behind it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ActionKind {
    /// Block a virtual key on a LiteLLM gateway (`POST /key/block`). Param: `key`.
    #[serde(rename = "litellm.block_key")]
    LitellmBlockKey,
    /// Unblock a virtual key on a LiteLLM gateway (`POST /key/unblock`). Param: `key`.
    #[serde(rename = "litellm.unblock_key")]
    LitellmUnblockKey,
}

impl ActionKind {
    /// The name used in runbooks.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::LitellmBlockKey => "litellm.block_key",
            ActionKind::LitellmUnblockKey => "litellm.unblock_key",
        }
    }

    /// The Cedar action that authorizes it.
    #[must_use]
    pub fn cedar_action(self) -> ActionName {
        match self {
            ActionKind::LitellmBlockKey => ActionName::Block,
            ActionKind::LitellmUnblockKey => ActionName::Unblock,
        }
    }

    /// The parameters it requires; no others are accepted.
    #[must_use]
    pub fn params(self) -> &'static [&'static str] {
        match self {
            ActionKind::LitellmBlockKey | ActionKind::LitellmUnblockKey => &["key"],
        }
    }
}

/// The verification checks a runbook can ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VerificationCheck {
    /// The incident key's rate, on the detector that raised the finding, stays under
    /// `threshold_per_sec`.
    KeyRateBelow,
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
    /// When it applies.
    pub trigger: TriggerSpec,
    /// `advisory` or `autonomous`; the global mode can only make it stricter.
    pub mode: Mode,
    /// The trust level policies see as `principal.trust`: `untrusted`, `reviewed` (the
    /// default) or `trusted`.
    #[serde(default = "default_trust")]
    pub trust: String,
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
    /// The bar the rate must be under, per second.
    pub threshold_per_sec: f64,
    /// How many consecutive observations must be under it.
    pub hold_samples: u32,
    /// The deadline after the last step, in seconds.
    pub within_secs: u64,
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
}

fn default_max_attempts() -> u32 {
    1
}

fn default_cooldown() -> u64 {
    900
}

impl Default for GuardrailsSpec {
    fn default() -> Self {
        GuardrailsSpec {
            max_attempts_per_incident: default_max_attempts(),
            cooldown_per_target_secs: default_cooldown(),
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
    /// Its own mode.
    pub mode: Mode,
    /// `principal.trust` in policies.
    pub trust: String,
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
}

/// Validated guardrails.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Guardrails {
    /// Runs of the steps per incident.
    pub max_attempts_per_incident: u32,
    /// Cooldown per target in milliseconds.
    pub cooldown_per_target_ms: i64,
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
        if !(0.0..=1.0).contains(&self.trigger.min_confidence) {
            problems.push("trigger.min_confidence", "must be between 0 and 1");
        }
        if self.trust.trim().is_empty() {
            problems.push("trust", "must not be empty");
        }
        if self.steps.is_empty() {
            problems.push("steps", "a runbook needs at least one step");
        }
        let mut step_ids = BTreeSet::new();
        let mut steps = Vec::new();
        for (idx, spec) in self.steps.into_iter().enumerate() {
            let path = format!("steps[{idx}]");
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
            let params = validate_params(
                &mut problems,
                &format!("{path}.params"),
                spec.action,
                spec.params,
            );
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
            });
        }
        let verification = &self.verification;
        if !verification.threshold_per_sec.is_finite() || verification.threshold_per_sec < 0.0 {
            problems.push(
                "verification.threshold_per_sec",
                "must be a number of at least 0",
            );
        }
        if verification.hold_samples == 0 {
            problems.push("verification.hold_samples", "must be at least 1");
        }
        if verification.within_secs == 0 {
            problems.push("verification.within_secs", "must be at least 1");
        }
        if self.guardrails.max_attempts_per_incident == 0 {
            problems.push("guardrails.max_attempts_per_incident", "must be at least 1");
        }
        let runbook = Runbook {
            id: self.id,
            description: self.description,
            hypothesis: self.trigger.hypothesis,
            min_confidence: self.trigger.min_confidence,
            detectors: self.trigger.detectors,
            mode: self.mode,
            trust: self.trust,
            steps,
            verification: Verification {
                check: verification.check,
                threshold_per_sec: verification.threshold_per_sec,
                hold_samples: verification.hold_samples,
                within_ms: secs_to_ms(verification.within_secs),
            },
            guardrails: Guardrails {
                max_attempts_per_incident: self.guardrails.max_attempts_per_incident,
                cooldown_per_target_ms: secs_to_ms(self.guardrails.cooldown_per_target_secs),
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
    for (name, source) in params {
        if !action.params().contains(&name.as_str()) {
            problems.push(
                format!("{path}.{name}"),
                format!("`{}` takes no parameter `{name}`", action.as_str()),
            );
            continue;
        }
        match Template::parse(&source) {
            Ok(template) => {
                parsed.insert(name, template);
            }
            Err(message) => problems.push(format!("{path}.{name}"), message),
        }
    }
    parsed
}

#[cfg(test)]
mod tests;
