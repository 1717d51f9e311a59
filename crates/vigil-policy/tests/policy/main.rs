//! Tests of vigil-policy through its public API: loading, deciding, and the shipped corpus.

#![expect(
    clippy::expect_used,
    reason = "a test fails loudly on the first broken assumption"
)]

mod authorize;
mod corpus;
mod load;
mod people;

use std::collections::BTreeMap;

use vigil_core::authz::Mode;
use vigil_core::authz::{
    ActionName, AttrValue, AuthzContext, AuthzRequest, Entity, EntityRef, EntityType,
};
use vigil_policy::{Authorizer, PolicyError, PolicyFile, Problem};

/// The shipped schema, so that tests check policies against what SREs really write against.
const SCHEMA_TEXT: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../policies/vigil.cedarschema"
));

/// The shipped schema as a file.
fn schema() -> PolicyFile {
    file("policies/vigil.cedarschema", SCHEMA_TEXT)
}

/// A file with this path and text.
fn file(path: &str, text: &str) -> PolicyFile {
    PolicyFile {
        path: path.to_owned(),
        text: text.to_owned(),
    }
}

/// An entity with string attributes.
fn entity(
    entity_type: EntityType,
    id: &str,
    attrs: &[(&str, &str)],
    parents: &[EntityRef],
) -> Entity {
    Entity {
        uid: EntityRef {
            entity_type,
            id: id.to_owned(),
        },
        attrs: attrs
            .iter()
            .map(|(name, value)| ((*name).to_owned(), AttrValue::String((*value).to_owned())))
            .collect::<BTreeMap<_, _>>(),
        parents: parents.to_vec(),
    }
}

/// A reviewed runbook blocking one standard key on a confident token-spike diagnosis: the
/// request the shipped policies allow.
fn runaway_key_request() -> AuthzRequest {
    let team = EntityRef {
        entity_type: EntityType::Team,
        id: "search".to_owned(),
    };
    AuthzRequest {
        principal: entity(
            EntityType::Runbook,
            "block-runaway-key",
            &[("mode", "autonomous"), ("trust", "reviewed")],
            &[],
        ),
        action: ActionName::Block,
        resource: entity(
            EntityType::ApiKey,
            "key-search-batch",
            &[
                ("alias", "search-batch"),
                ("team", "search"),
                ("tier", "standard"),
                ("environment", "prod"),
            ],
            &[team],
        ),
        context: AuthzContext {
            mode: Mode::Autonomous,
            severity: "page".to_owned(),
            blast_radius: 1,
            attempt: 1,
            incident_age_secs: 120,
            hour_utc: 14,
            detector: "token-spike".to_owned(),
            confidence_pct: 85,
            is_compensation: false,
            trust_pct: 50,
            failover: None,
            assistant_agrees: None,
        },
    }
}

/// Fails the test with `message`.
#[expect(clippy::panic, reason = "a test reports its failure by panicking")]
fn fail(message: &str) -> ! {
    panic!("{message}")
}

/// The problems of a load that must fail.
fn load_problems(schema: &PolicyFile, policies: &[PolicyFile]) -> Vec<Problem> {
    match Authorizer::load(schema, policies) {
        Ok(authorizer) => fail(&format!(
            "load should have failed, loaded {:?}",
            authorizer.policy_ids()
        )),
        Err(PolicyError::InvalidPolicySet { problems }) => problems,
        Err(other) => fail(&format!("unexpected error {other}")),
    }
}
