//! The request context vigil sends Cedar, and its versions: what a policy set of each
//! vocabulary may read, so that replaying an old ledger sends the context it was written for.

use cedar_policy::{Context, RestrictedExpression};
use vigil_core::authz::{AuthzContext, EntityType, FailoverFacts, HumanContext};

use crate::report::error_chain;

/// The vocabulary of the request context a schema declares. The context grew over time; a
/// policy set recorded in a ledger by an older build declares an older vocabulary, and
/// replaying its decisions months later must send it the context it was written for.
///
/// Closed: a context attribute added to [`AuthzContext`], or an entity type or action added
/// to the vocabulary, adds a version here (newest last), and [`Authorizer::load`](crate::Authorizer::load) accepts only
/// the newest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ContextVersion {
    /// The first vocabulary: everything but `trust_pct`.
    V1,
    /// Adds `trust_pct`, the runbook action's verified-success score.
    V2,
    /// Adds people: the `Human`, `Group`, `Role`, `Proposal`, `Control` and `Silence` entity
    /// types and the actions `approve`, `reject`, `kill`, `unkill`, `silence` and
    /// `unsilence` with their `HumanContext`.
    V3,
    /// Adds `failover`, the modality and context window of the models a failover moves
    /// traffic between. It is an optional attribute, sent on the `failover` steps that set
    /// fallbacks.
    V4,
    /// Adds `assistant_agrees` (the current version): whether the assistant's checked best
    /// hypothesis agrees with the diagnosis. Optional, sent once an investigation checked
    /// out.
    V5,
}

impl ContextVersion {
    /// Every version, oldest first.
    pub const ALL: [ContextVersion; 5] = [
        ContextVersion::V1,
        ContextVersion::V2,
        ContextVersion::V3,
        ContextVersion::V4,
        ContextVersion::V5,
    ];

    /// The version this build sends.
    pub const CURRENT: ContextVersion = ContextVersion::V5;

    /// Whether a context of this version has the attribute `name`.
    #[must_use]
    pub fn has_attribute(self, name: &str) -> bool {
        match name {
            "trust_pct" => self >= ContextVersion::V2,
            "failover" => self >= ContextVersion::V4,
            "assistant_agrees" => self >= ContextVersion::V5,
            _ => true,
        }
    }

    /// Whether this vocabulary has people's entity types and actions.
    #[must_use]
    pub fn has_people(self) -> bool {
        self >= ContextVersion::V3
    }

    /// The entity types a schema of this version declares.
    #[must_use]
    pub fn entity_types(self) -> &'static [EntityType] {
        if self.has_people() {
            &EntityType::ALL
        } else {
            &EntityType::REMEDIATION
        }
    }
}

/// The Cedar context record of a person's instruction: every field of [`HumanContext`].
pub(crate) fn human_context(context: &HumanContext) -> Result<Context, String> {
    // Destructured in full so that a field added to `HumanContext` fails to compile here
    // until it is sent to Cedar (and declared in the schema).
    let HumanContext {
        hour_utc,
        duration_secs,
        has_reason,
    } = context;
    let pairs = [
        ("hour_utc", RestrictedExpression::new_long(*hour_utc)),
        (
            "duration_secs",
            RestrictedExpression::new_long(*duration_secs),
        ),
        ("has_reason", RestrictedExpression::new_bool(*has_reason)),
    ];
    Context::from_pairs(
        pairs
            .into_iter()
            .map(|(key, value)| (key.to_owned(), value)),
    )
    .map_err(|error| format!("invalid context: {}", error_chain(&error)))
}

/// The Cedar context record for vigil's context: every field of [`AuthzContext`] that the
/// policy set's [`ContextVersion`] has (all of them for the current version).
pub(crate) fn cedar_context(
    context: &AuthzContext,
    version: ContextVersion,
) -> Result<Context, String> {
    // Destructured in full so that a field added to `AuthzContext` fails to compile here
    // until it is sent to Cedar (and declared in the schema).
    let AuthzContext {
        mode,
        severity,
        blast_radius,
        attempt,
        incident_age_secs,
        hour_utc,
        detector,
        confidence_pct,
        is_compensation,
        trust_pct,
        failover,
        assistant_agrees,
    } = context;
    let mut pairs = vec![
        (
            "mode",
            RestrictedExpression::new_string(mode.as_str().to_owned()),
        ),
        (
            "severity",
            RestrictedExpression::new_string(severity.clone()),
        ),
        (
            "blast_radius",
            RestrictedExpression::new_long(*blast_radius),
        ),
        ("attempt", RestrictedExpression::new_long(*attempt)),
        (
            "incident_age_secs",
            RestrictedExpression::new_long(*incident_age_secs),
        ),
        ("hour_utc", RestrictedExpression::new_long(*hour_utc)),
        (
            "detector",
            RestrictedExpression::new_string(detector.clone()),
        ),
        (
            "confidence_pct",
            RestrictedExpression::new_long(*confidence_pct),
        ),
        (
            "is_compensation",
            RestrictedExpression::new_bool(*is_compensation),
        ),
        ("trust_pct", RestrictedExpression::new_long(*trust_pct)),
    ];
    if let Some(failover) = failover {
        pairs.push(("failover", failover_record(failover)?));
    }
    if let Some(agrees) = assistant_agrees {
        pairs.push(("assistant_agrees", RestrictedExpression::new_bool(*agrees)));
    }
    let pairs = pairs
        .into_iter()
        .filter(|(key, _)| version.has_attribute(key))
        .map(|(key, value)| (key.to_owned(), value));
    Context::from_pairs(pairs).map_err(|error| format!("invalid context: {}", error_chain(&error)))
}

/// The Cedar record of a failover's facts: every field of [`FailoverFacts`].
fn failover_record(facts: &FailoverFacts) -> Result<RestrictedExpression, String> {
    // Destructured in full, as the context is: a field added fails to compile here.
    let FailoverFacts {
        source,
        source_modality,
        source_context_window,
        target,
        target_modality,
        target_context_window,
    } = facts;
    RestrictedExpression::new_record([
        (
            "source".to_owned(),
            RestrictedExpression::new_string(source.clone()),
        ),
        (
            "source_modality".to_owned(),
            RestrictedExpression::new_string(source_modality.clone()),
        ),
        (
            "source_context_window".to_owned(),
            RestrictedExpression::new_long(*source_context_window),
        ),
        (
            "target".to_owned(),
            RestrictedExpression::new_string(target.clone()),
        ),
        (
            "target_modality".to_owned(),
            RestrictedExpression::new_string(target_modality.clone()),
        ),
        (
            "target_context_window".to_owned(),
            RestrictedExpression::new_long(*target_context_window),
        ),
    ])
    .map_err(|error| format!("invalid failover facts: {}", error_chain(&error)))
}
