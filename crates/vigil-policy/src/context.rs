//! The request context vigil sends Cedar, and its versions: what a policy set of each
//! vocabulary may read, so that replaying an old ledger sends the context it was written for.

use cedar_policy::{Context, RestrictedExpression};
use vigil_core::authz::{AuthzContext, EntityType, HumanContext};

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
    /// `unsilence` with their `HumanContext` (the current version).
    V3,
}

impl ContextVersion {
    /// Every version, oldest first.
    pub const ALL: [ContextVersion; 3] =
        [ContextVersion::V1, ContextVersion::V2, ContextVersion::V3];

    /// The version this build sends.
    pub const CURRENT: ContextVersion = ContextVersion::V3;

    /// Whether a context of this version has the attribute `name`.
    #[must_use]
    pub fn has_attribute(self, name: &str) -> bool {
        match name {
            "trust_pct" => self >= ContextVersion::V2,
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
    } = context;
    let pairs = [
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
    let pairs = pairs
        .into_iter()
        .filter(|(key, _)| version.has_attribute(key))
        .map(|(key, value)| (key.to_owned(), value));
    Context::from_pairs(pairs).map_err(|error| format!("invalid context: {}", error_chain(&error)))
}
