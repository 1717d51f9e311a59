//! People's instructions: decided with the same policy set, refused by policy sets recorded
//! before people were authorized, and a step policy that leaves its action open is told how
//! to scope itself.

use std::collections::BTreeMap;

use vigil_core::authz::{
    AttrValue, Effect, Entity, EntityRef, EntityType, HumanActionName, HumanAuthzRequest,
    HumanContext,
};
use vigil_policy::{Authorizer, ContextVersion, PolicyError};

use crate::{SCHEMA_TEXT, file, schema};

/// The shipped schema as builds before people's authorization wrote it.
fn schema_before_people() -> vigil_policy::PolicyFile {
    let (before, _) = SCHEMA_TEXT
        .split_once("    // ---- People ----")
        .expect("the shipped schema has a People section");
    file("policies/vigil.cedarschema", &format!("{before}}}\n"))
}

fn operator_kills_everything() -> HumanAuthzRequest {
    HumanAuthzRequest {
        principal: Entity {
            uid: EntityRef {
                entity_type: EntityType::Human,
                id: "olga".to_owned(),
            },
            attrs: BTreeMap::from([
                ("name".to_owned(), AttrValue::String("olga".to_owned())),
                (
                    "credential".to_owned(),
                    AttrValue::String("tok-olga".to_owned()),
                ),
                ("via".to_owned(), AttrValue::String("token".to_owned())),
            ]),
            parents: vec![EntityRef {
                entity_type: EntityType::Role,
                id: "operator".to_owned(),
            }],
        },
        action: HumanActionName::Kill,
        resource: Entity {
            uid: EntityRef {
                entity_type: EntityType::Control,
                id: "global".to_owned(),
            },
            attrs: ["scope", "runbook", "target_type", "target"]
                .into_iter()
                .map(|name| {
                    let value = if name == "scope" { "global" } else { "" };
                    (name.to_owned(), AttrValue::String(value.to_owned()))
                })
                .collect(),
            parents: Vec::new(),
        },
        context: HumanContext {
            hour_utc: 3,
            duration_secs: 0,
            has_reason: true,
        },
    }
}

const OPERATORS: &str = "@id(\"operators\")\npermit (principal in Vigil::Role::\"operator\", action in Vigil::Action::\"operate\", resource);\n";

#[test]
fn the_current_policy_set_decides_people_and_an_older_one_refuses_them_saying_why() {
    let current = Authorizer::load(&schema(), &[file("people.cedar", OPERATORS)]).expect("loads");
    let decision = current.authorize_human(&operator_kills_everything());
    assert_eq!(decision.effect, Effect::Allow, "{decision:?}");
    assert_eq!(decision.determining_policies, ["operators"]);

    let old_schema = schema_before_people();
    let permit = file(
        "permit-block.cedar",
        "@id(\"permit-block\")\npermit (principal, action == Vigil::Action::\"block\", resource);\n",
    );
    assert!(
        Authorizer::load(&old_schema, std::slice::from_ref(&permit)).is_err(),
        "new decisions need people in the schema"
    );
    let recorded = Authorizer::load_recorded(&old_schema, &[permit]).expect("a recorded set loads");
    assert_eq!(recorded.context_version(), ContextVersion::V2);
    let decision = recorded.authorize_human(&operator_kills_everything());
    assert_eq!(decision.effect, Effect::Deny);
    assert!(decision.determining_policies.is_empty());
    assert_eq!(
        decision.errors,
        [
            "this policy set's schema predates people's instructions (no `Vigil::Human`); update vigil.cedarschema"
        ]
    );
}

#[test]
fn a_step_policy_that_leaves_its_action_open_is_told_how_to_scope_it() {
    let open =
        "@id(\"no-retries\")\nforbid (principal, action, resource) when { context.attempt > 3 };\n";
    let Err(PolicyError::InvalidPolicySet { problems }) =
        Authorizer::load(&schema(), &[file("open.cedar", open)])
    else {
        panic!("a policy reading a step's context for every action must not load");
    };
    assert!(!problems.is_empty());
    for problem in &problems {
        assert!(
            problem
                .message
                .contains("scope it with `action in Vigil::Action::\"remediate\"`"),
            "{problem:?}"
        );
    }
    // Scoped, it loads; an open action that reads only what both contexts have loads too.
    let scoped = open.replace("action,", "action in Vigil::Action::\"remediate\",");
    assert!(Authorizer::load(&schema(), &[file("open.cedar", &scoped)]).is_ok());
    let night = "@id(\"no-night-changes\")\nforbid (principal, action, resource) when { context.hour_utc < 6 };\n";
    assert!(Authorizer::load(&schema(), &[file("night.cedar", night)]).is_ok());
}
