//! Loading: every problem reported at once with its place, ids from `@id`, and the hash.

use expect_test::{Expect, expect};
use vigil_core::authz::Effect;
use vigil_policy::{Authorizer, ContextVersion, PolicyError, PolicyFile, Problem, SourceLocation};

use crate::{SCHEMA_TEXT, file, load_problems, runaway_key_request, schema};

/// A policy that validates against the shipped schema.
const BLOCK_ALL: &str = r#"@id("block-anything")
permit (principal, action == Vigil::Action::"block", resource);
"#;

/// `(path, line)` of each problem.
fn places(problems: &[Problem]) -> Vec<(String, Option<usize>)> {
    problems
        .iter()
        .map(|problem| {
            (
                problem.path.clone(),
                problem.location.map(|location| location.line),
            )
        })
        .collect()
}

/// Checks the rendered problems, one per line.
fn check_problems(problems: &[Problem], expected: &Expect) {
    expected.assert_eq(
        &problems
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n"),
    );
}

#[test]
fn rejects_syntax_error_missing_id_and_schema_violation_all_at_once() {
    let policies = [
        file(
            "c-schema.cedar",
            "@id(\"reads-unknown-attribute\")\npermit (principal, action, resource is Vigil::ApiKey)\nwhen { resource.no_such_attr == \"x\" };\n",
        ),
        file(
            "a-syntax.cedar",
            "// a comma is missing\n@id(\"broken\")\npermit (principal, action resource);\n",
        ),
        file(
            "b-no-id.cedar",
            "\n\npermit (principal, action == Vigil::Action::\"block\", resource);\n",
        ),
    ];
    let error = Authorizer::load(&schema(), &policies).expect_err("three broken files");
    let problems = load_problems(&schema(), &policies);
    assert_eq!(
        places(&problems),
        [
            ("a-syntax.cedar".to_owned(), Some(3)),
            ("b-no-id.cedar".to_owned(), Some(3)),
            ("c-schema.cedar".to_owned(), Some(3)),
        ]
    );
    expect![[r#"
        policy set rejected with 3 problem(s):
          `a-syntax.cedar:3:27`: unexpected token `resource`
          `b-no-id.cedar:3:1`: policy has no `@id("...")` annotation
          `c-schema.cedar:3:8`: for policy `reads-unknown-attribute`, attribute `no_such_attr` on entity type `Vigil::ApiKey` not found (help: did you mean `alias`?)"#]].assert_eq(&error.to_string());
}

#[test]
fn rejects_a_duplicate_id_across_files_naming_both_places() {
    let problems = load_problems(
        &schema(),
        &[
            file("a.cedar", BLOCK_ALL),
            file("b.cedar", &format!("// copy\n{BLOCK_ALL}")),
        ],
    );
    assert_eq!(places(&problems), [("b.cedar".to_owned(), Some(2))]);
    check_problems(
        &problems,
        &expect![
            "`b.cedar:2:1`: duplicate policy id `block-anything`, first used at `a.cedar:1:1`"
        ],
    );
}

#[test]
fn rejects_ids_that_are_not_kebab_case_and_templates() {
    let problems = load_problems(
        &schema(),
        &[
            file(
                "ids.cedar",
                "@id(\"\")\npermit (principal, action, resource);\n@id(\"Block Keys\")\npermit (principal, action, resource);\n",
            ),
            file(
                "template.cedar",
                "@id(\"a-template\")\npermit (principal == ?principal, action, resource);\n",
            ),
        ],
    );
    check_problems(
        &problems,
        &expect![[r#"
        `ids.cedar:1:1`: policy id `` is not kebab-case (like `block-single-runaway-key`)
        `ids.cedar:3:1`: policy id `Block Keys` is not kebab-case (like `block-single-runaway-key`)
        `template.cedar:1:1`: templates (policies with `?principal` or `?resource`) are not supported"#]],
    );
}

#[test]
fn rejects_a_schema_with_a_syntax_error_at_its_line() {
    let broken = file(
        "vigil.cedarschema",
        "namespace Vigil {\n  entity Team;\n  entity ApiKey in [Team] {\n    alias String,\n  };\n}\n",
    );
    let problems = load_problems(&broken, &[file("a.cedar", BLOCK_ALL)]);
    assert_eq!(
        places(&problems),
        [("vigil.cedarschema".to_owned(), Some(4))]
    );
}

#[test]
fn rejects_a_schema_that_does_not_fit_vigils_requests() {
    // Valid Cedar, but `block` takes no context and there is no `Team`: every real request
    // would be an error, so the load must fail instead.
    let narrow = file(
        "narrow.cedarschema",
        "namespace Vigil {\n  entity Runbook;\n  entity ApiKey;\n  action block, unblock appliesTo { principal: [Runbook], resource: [ApiKey] };\n}\n",
    );
    let problems = load_problems(&narrow, &[file("a.cedar", BLOCK_ALL)]);
    check_problems(
        &problems,
        &expect![[r#"
            `narrow.cedarschema`: the schema does not accept vigil's `approve` requests (a `Human` acting on a resource of type `Proposal` with vigil's `HumanContext`): principal type `Vigil::Human` is not declared in the schema
            `narrow.cedarschema`: the schema does not accept vigil's `block_team` requests (a `Runbook` acting on a resource of type `Team` with vigil's context): resource type `Vigil::Team` is not declared in the schema
            `narrow.cedarschema`: the schema does not accept vigil's `block` requests (a `Runbook` acting on a resource of type `ApiKey` with vigil's context): context `{assistant_agrees: true, attempt: 1, blast_radius: 1, confidence_pct: 100, detector: "token-spike", .. }` is not valid for `Vigil::Action::"block"`
            `narrow.cedarschema`: the schema does not accept vigil's `call` requests (a `Runbook` acting on a resource of type `Service` with vigil's context): resource type `Vigil::Service` is not declared in the schema
            `narrow.cedarschema`: the schema does not accept vigil's `failover` requests (a `Runbook` acting on a resource of type `Deployment` with vigil's context): resource type `Vigil::Deployment` is not declared in the schema
            `narrow.cedarschema`: the schema does not accept vigil's `kill` requests (a `Human` acting on a resource of type `Control` with vigil's `HumanContext`): principal type `Vigil::Human` is not declared in the schema
            `narrow.cedarschema`: the schema does not accept vigil's `notify` requests (a `Runbook` acting on a resource of type `Team` with vigil's context): resource type `Vigil::Team` is not declared in the schema
            `narrow.cedarschema`: the schema does not accept vigil's `reject` requests (a `Human` acting on a resource of type `Proposal` with vigil's `HumanContext`): principal type `Vigil::Human` is not declared in the schema
            `narrow.cedarschema`: the schema does not accept vigil's `rollback` requests (a `Runbook` acting on a resource of type `Prompt` with vigil's context): resource type `Vigil::Prompt` is not declared in the schema
            `narrow.cedarschema`: the schema does not accept vigil's `silence` requests (a `Human` acting on a resource of type `Silence` with vigil's `HumanContext`): principal type `Vigil::Human` is not declared in the schema
            `narrow.cedarschema`: the schema does not accept vigil's `throttle` requests (a `Runbook` acting on a resource of type `ApiKey` with vigil's context): request's action `Vigil::Action::"throttle"` is not declared in the schema
            `narrow.cedarschema`: the schema does not accept vigil's `unblock_team` requests (a `Runbook` acting on a resource of type `Team` with vigil's context): resource type `Vigil::Team` is not declared in the schema
            `narrow.cedarschema`: the schema does not accept vigil's `unblock` requests (a `Runbook` acting on a resource of type `ApiKey` with vigil's context): context `{assistant_agrees: true, attempt: 1, blast_radius: 1, confidence_pct: 100, detector: "token-spike", .. }` is not valid for `Vigil::Action::"unblock"`
            `narrow.cedarschema`: the schema does not accept vigil's `unkill` requests (a `Human` acting on a resource of type `Control` with vigil's `HumanContext`): principal type `Vigil::Human` is not declared in the schema
            `narrow.cedarschema`: the schema does not accept vigil's `unsilence` requests (a `Human` acting on a resource of type `Silence` with vigil's `HumanContext`): principal type `Vigil::Human` is not declared in the schema
            `narrow.cedarschema`: the schema does not declare entity type `Vigil::Control`
            `narrow.cedarschema`: the schema does not declare entity type `Vigil::Deployment`
            `narrow.cedarschema`: the schema does not declare entity type `Vigil::Group`
            `narrow.cedarschema`: the schema does not declare entity type `Vigil::Human`
            `narrow.cedarschema`: the schema does not declare entity type `Vigil::Prompt`
            `narrow.cedarschema`: the schema does not declare entity type `Vigil::Proposal`
            `narrow.cedarschema`: the schema does not declare entity type `Vigil::Provider`
            `narrow.cedarschema`: the schema does not declare entity type `Vigil::Role`
            `narrow.cedarschema`: the schema does not declare entity type `Vigil::Service`
            `narrow.cedarschema`: the schema does not declare entity type `Vigil::Silence`
            `narrow.cedarschema`: the schema does not declare entity type `Vigil::Team`"#]],
    );
}

#[test]
fn rejects_a_policy_that_can_never_apply() {
    // Strict validation warns that no request can match; vigil rejects warnings, because a
    // forbid that never applies is a guardrail that silently does nothing.
    let problems = load_problems(
        &schema(),
        &[file(
            "dead.cedar",
            "@id(\"dead-guardrail\")\nforbid (principal is Vigil::ApiKey, action, resource);\n",
        )],
    );
    check_problems(
        &problems,
        &expect![[r#"
        `dead.cedar:1:1`: warning: for policy `dead-guardrail`, policy is impossible: the policy expression evaluates to false for all valid requests
        `dead.cedar:1:1`: warning: for policy `dead-guardrail`, unable to find an applicable action given the policy scope constraints"#]],
    );
}

#[test]
fn policy_ids_are_the_id_annotations_and_decisions_report_them() {
    let text = format!(
        "{BLOCK_ALL}\n@id(\"second-policy\")\nforbid (principal, action in Vigil::Action::\"remediate\", resource) when {{ context.attempt > 5 }};\n"
    );
    let authorizer =
        Authorizer::load(&schema(), &[file("a.cedar", &text)]).expect("valid policies load");
    assert_eq!(authorizer.policy_ids(), ["block-anything", "second-policy"]);
    let decision = authorizer.authorize(&runaway_key_request());
    assert_eq!(decision.determining_policies, ["block-anything"]);
}

#[test]
fn hash_changes_with_any_policy_text_and_ignores_file_order() {
    let first = file("a.cedar", BLOCK_ALL);
    let second = file(
        "b.cedar",
        "@id(\"unblock-anything\")\npermit (principal, action == Vigil::Action::\"unblock\", resource);\n",
    );
    let hash_of = |policies: &[PolicyFile]| {
        Authorizer::load(&schema(), policies)
            .expect("valid policies load")
            .policy_set_hash()
            .to_owned()
    };

    let original = hash_of(&[first.clone(), second.clone()]);
    assert_eq!(original.len(), 64);
    assert!(
        original
            .chars()
            .all(|character| matches!(character, '0'..='9' | 'a'..='f')),
        "{original}"
    );
    assert_eq!(
        hash_of(&[second.clone(), first.clone()]),
        original,
        "file order changed the hash"
    );

    let edited = file("b.cedar", &format!("// tightened\n{}", second.text));
    assert_ne!(
        hash_of(&[first.clone(), edited]),
        original,
        "a changed policy kept the hash"
    );
    let renamed = file("c.cedar", &second.text);
    assert_ne!(
        hash_of(&[first.clone(), renamed]),
        original,
        "a renamed file kept the hash"
    );

    let authorizer = Authorizer::load(&schema(), &[first, second]).expect("valid policies load");
    let decision = authorizer.authorize(&runaway_key_request());
    assert_eq!(
        decision.policy_set_hash, original,
        "decisions carry the hash"
    );
}

#[test]
fn a_location_counts_characters_not_bytes() {
    let text = "// é\n@id(\"x\")";
    assert_eq!(
        SourceLocation::of_offset(text, text.len()),
        SourceLocation { line: 2, column: 9 }
    );
}

/// The shipped schema as an older build wrote it: without `trust_pct` in the context.
fn schema_before_trust_scores() -> PolicyFile {
    let text = SCHEMA_TEXT.replace("        trust_pct: Long,\n", "");
    assert_ne!(text, SCHEMA_TEXT, "the shipped schema declares trust_pct");
    file("policies/vigil.cedarschema", &text)
}

#[test]
fn a_recorded_policy_set_from_before_trust_scores_loads_with_the_first_context_version() {
    let permit = file(
        "permit-block.cedar",
        "@id(\"permit-block\")\npermit (principal, action == Vigil::Action::\"block\", resource);\n",
    );
    let old_schema = schema_before_trust_scores();
    // Today's loader refuses it: the schema does not accept today's requests.
    let Err(PolicyError::InvalidPolicySet { problems }) =
        Authorizer::load(&old_schema, std::slice::from_ref(&permit))
    else {
        panic!("a schema without trust_pct must not load for new decisions");
    };
    assert!(
        problems
            .iter()
            .any(|problem| problem.message.contains("does not accept vigil's")),
        "{problems:?}"
    );
    // Replay's loader takes the vocabulary it was written for, and decides as it did then.
    let recorded = Authorizer::load_recorded(&old_schema, std::slice::from_ref(&permit))
        .expect("a recorded policy set loads");
    assert_eq!(recorded.context_version(), ContextVersion::V1);
    let decision = recorded.authorize(&runaway_key_request());
    assert_eq!(decision.effect, Effect::Allow, "{decision:?}");
    assert!(decision.errors.is_empty(), "{:?}", decision.errors);
    // Today's schema loads with today's vocabulary either way.
    let current = Authorizer::load_recorded(&schema(), &[permit]).expect("loads");
    assert_eq!(current.context_version(), ContextVersion::CURRENT);
}

/// The shipped schema as a build before failover facts wrote it: no `failover` in the
/// context, no `FailoverFacts` type.
fn schema_before_failover_facts() -> PolicyFile {
    let start = SCHEMA_TEXT
        .find("        // What a failover moves traffic between")
        .expect("the shipped schema declares the failover facts");
    let end = SCHEMA_TEXT
        .find("    // Every remediation action")
        .expect("the schema goes on to the actions");
    let text = format!(
        "{}    }};\n\n{}",
        &SCHEMA_TEXT[..start],
        &SCHEMA_TEXT[end..]
    );
    file("policies/vigil.cedarschema", &text)
}

#[test]
fn a_recorded_policy_set_from_before_failover_facts_loads_with_its_vocabulary() {
    // Guards replay: ledgers written before failover facts keep deciding as they did.
    let permit = file(
        "permit-failover.cedar",
        "@id(\"permit-failover\")\npermit (principal, action == Vigil::Action::\"failover\", resource);\n",
    );
    let old_schema = schema_before_failover_facts();
    let Err(PolicyError::InvalidPolicySet { problems }) =
        Authorizer::load(&old_schema, std::slice::from_ref(&permit))
    else {
        panic!("a schema without failover facts must not load for new decisions");
    };
    assert!(
        problems
            .iter()
            .any(|problem| problem.message.contains("`failover` requests")),
        "{problems:?}"
    );
    let recorded = Authorizer::load_recorded(&old_schema, std::slice::from_ref(&permit))
        .expect("a recorded policy set loads");
    assert_eq!(recorded.context_version(), ContextVersion::V3);
    let current = Authorizer::load_recorded(&schema(), &[permit]).expect("loads");
    assert_eq!(current.context_version(), ContextVersion::CURRENT);
}

/// The shipped schema as a build before the assistant wrote it: no `assistant_agrees` in the
/// context.
fn schema_before_assistant_agrees() -> PolicyFile {
    let start = SCHEMA_TEXT
        .find("        // Whether the assistant (an LLM")
        .expect("the shipped schema declares assistant_agrees");
    let end = SCHEMA_TEXT[start..]
        .find("assistant_agrees?: Bool,\n")
        .map(|at| start + at + "assistant_agrees?: Bool,\n".len())
        .expect("the attribute's line");
    let text = format!("{}{}", &SCHEMA_TEXT[..start], &SCHEMA_TEXT[end..]);
    file("policies/vigil.cedarschema", &text)
}

#[test]
fn a_recorded_policy_set_from_before_the_assistant_loads_with_its_vocabulary() {
    // Guards replay: ledgers written before `assistant_agrees` keep deciding as they did, and
    // a new decision needs the current vocabulary.
    let permit = file(
        "permit-block.cedar",
        "@id(\"permit-block\")\npermit (principal, action == Vigil::Action::\"block\", resource);\n",
    );
    let old_schema = schema_before_assistant_agrees();
    assert!(
        Authorizer::load(&old_schema, std::slice::from_ref(&permit)).is_err(),
        "a schema without assistant_agrees must not load for new decisions"
    );
    let recorded = Authorizer::load_recorded(&old_schema, std::slice::from_ref(&permit))
        .expect("a recorded policy set loads");
    assert_eq!(recorded.context_version(), ContextVersion::V4);
    let decision = recorded.authorize(&runaway_key_request());
    assert_eq!(decision.effect, Effect::Allow, "{decision:?}");
    assert!(decision.errors.is_empty(), "{:?}", decision.errors);
}
