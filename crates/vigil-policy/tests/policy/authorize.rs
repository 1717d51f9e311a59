//! Deciding: requests map to Cedar as the schema says, and every doubt denies.

use expect_test::expect;
use vigil_core::authz::{ActionName, AttrValue, Effect, EntityRef, EntityType};
use vigil_policy::Authorizer;

use crate::{file, runaway_key_request, schema};

/// Allows every action on anything: only a failure of vigil's own can deny under it.
const PERMIT_ALL: &str = "@id(\"permit-all\")\npermit (principal, action, resource);\n";

/// An authorizer with only [`PERMIT_ALL`].
fn permit_all() -> Authorizer {
    Authorizer::load(&schema(), &[file("permit-all.cedar", PERMIT_ALL)])
        .expect("valid policies load")
}

#[test]
fn allows_a_request_that_matches_the_schema() {
    let decision = permit_all().authorize(&runaway_key_request());
    assert_eq!(decision.effect, Effect::Allow);
    assert_eq!(decision.determining_policies, ["permit-all"]);
    assert!(decision.errors.is_empty(), "{:?}", decision.errors);
}

#[test]
fn an_entity_missing_a_required_attribute_is_denied_with_an_error() {
    let mut request = runaway_key_request();
    request.resource.attrs.remove("tier");
    let decision = permit_all().authorize(&request);
    assert_eq!(decision.effect, Effect::Deny);
    assert!(decision.determining_policies.is_empty());
    expect![[r#"entities do not match the schema: entity does not conform to the schema: expected entity `Vigil::ApiKey::"key-search-batch"` to have attribute `tier`, but it does not"#]].assert_eq(&decision.errors.join("\n"));
}

#[test]
fn an_attribute_of_the_wrong_type_is_denied_with_an_error() {
    let mut request = runaway_key_request();
    request
        .principal
        .attrs
        .insert("trust".to_owned(), AttrValue::Long(3));
    let decision = permit_all().authorize(&request);
    assert_eq!(decision.effect, Effect::Deny);
    expect![[r#"entities do not match the schema: entity does not conform to the schema: in attribute `trust` on `Vigil::Runbook::"block-runaway-key"`, type mismatch: value was expected to have type string, but it actually has type long: `3`"#]].assert_eq(&decision.errors.join("\n"));
}

#[test]
fn an_undeclared_attribute_is_denied_with_an_error() {
    let mut request = runaway_key_request();
    request
        .resource
        .attrs
        .insert("owner".to_owned(), AttrValue::String("alice".to_owned()));
    let decision = permit_all().authorize(&request);
    assert_eq!(decision.effect, Effect::Deny);
    assert!(!decision.errors.is_empty());
}

#[test]
fn a_principal_of_the_wrong_type_is_denied_with_an_error() {
    // Only runbooks act; a key asking to unblock itself does not fit the schema.
    let mut request = runaway_key_request();
    request.action = ActionName::Unblock;
    request.principal = request.resource.clone();
    request.principal.uid.id = "key-other".to_owned();
    let decision = permit_all().authorize(&request);
    assert_eq!(decision.effect, Effect::Deny);
    expect![[r#"request does not match the schema: principal type `Vigil::ApiKey` is not valid for `Vigil::Action::"unblock"`"#]].assert_eq(&decision.errors.join("\n"));
}

#[test]
fn a_parent_of_a_type_the_schema_does_not_allow_is_denied_with_an_error() {
    let mut request = runaway_key_request();
    request.resource.parents.push(EntityRef {
        entity_type: EntityType::Runbook,
        id: "block-runaway-key-2".to_owned(),
    });
    let decision = permit_all().authorize(&request);
    assert_eq!(decision.effect, Effect::Deny);
    assert!(!decision.errors.is_empty());
}

#[test]
fn an_evaluation_error_in_a_forbid_denies_what_cedar_would_allow() {
    // Cedar skips a policy whose evaluation errors, so on its own it would allow here; vigil
    // must not, because the forbid that errored might have applied.
    let overflowing_forbid = "@id(\"overflowing-forbid\")\nforbid (principal, action in Vigil::Action::\"remediate\", resource)\nwhen { context.attempt + 9223372036854775807 > 0 };\n";
    let authorizer = Authorizer::load(
        &schema(),
        &[
            file("permit-all.cedar", PERMIT_ALL),
            file("overflow.cedar", overflowing_forbid),
        ],
    )
    .expect("valid policies load");
    let decision = authorizer.authorize(&runaway_key_request());
    assert_eq!(decision.effect, Effect::Deny);
    assert!(
        decision.determining_policies.is_empty(),
        "{:?}",
        decision.determining_policies
    );
    expect!["error while evaluating policy `overflowing-forbid`: integer overflow while attempting to add the values `1` and `9223372036854775807`"].assert_eq(&decision.errors.join("\n"));
}

#[test]
fn parents_are_in_the_entity_store_so_team_scoped_policies_apply() {
    let search_only = "@id(\"search-team-keys\")\npermit (principal, action, resource in Vigil::Team::\"search\");\n";
    let authorizer = Authorizer::load(&schema(), &[file("team.cedar", search_only)])
        .expect("valid policies load");
    assert_eq!(
        authorizer.authorize(&runaway_key_request()).effect,
        Effect::Allow
    );

    let mut other_team = runaway_key_request();
    other_team.resource.parents = vec![EntityRef {
        entity_type: EntityType::Team,
        id: "payments".to_owned(),
    }];
    let decision = authorizer.authorize(&other_team);
    assert_eq!(decision.effect, Effect::Deny);
    assert!(decision.errors.is_empty(), "{:?}", decision.errors);
}
