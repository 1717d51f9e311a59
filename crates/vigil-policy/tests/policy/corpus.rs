//! The shipped policies in `policies/`, run against every case in `policies/tests/*.json`.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use vigil_policy::{Authorizer, PolicyFile, TestCaseResult, run_policy_tests};

use crate::fail;

/// The repository's `policies/` folder.
fn policies_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies")
}

/// Every file in `dir` whose name ends in `.extension`, sorted by path.
fn files_with_extension(dir: &Path, extension: &str) -> Vec<PolicyFile> {
    let mut paths: Vec<PathBuf> = fs::read_dir(dir)
        .expect("read policies folder")
        .map(|entry| entry.expect("read folder entry").path())
        .filter(|path| path.extension().is_some_and(|found| found == extension))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let text = fs::read_to_string(&path).expect("read policy file");
            let name = path.file_name().expect("file name").to_string_lossy();
            let parent = path
                .parent()
                .and_then(Path::file_name)
                .expect("parent folder")
                .to_string_lossy();
            PolicyFile {
                path: format!("{parent}/{name}"),
                text,
            }
        })
        .collect()
}

/// The shipped policy set, loaded as the binary loads it.
fn shipped_authorizer() -> Authorizer {
    let dir = policies_dir();
    let schema_path = dir.join("vigil.cedarschema");
    let schema = PolicyFile {
        path: "policies/vigil.cedarschema".to_owned(),
        text: fs::read_to_string(schema_path).expect("read schema"),
    };
    let policies = files_with_extension(&dir, "cedar");
    match Authorizer::load(&schema, &policies) {
        Ok(authorizer) => authorizer,
        Err(error) => fail(&format!("the shipped policies do not load:\n{error}")),
    }
}

/// A readable account of a failed case.
fn describe(file: &str, result: &TestCaseResult) -> String {
    let mut text = format!("case `{}` in `{file}`:", result.name);
    for mismatch in result.mismatches() {
        text.push_str("\n  ");
        text.push_str(&mismatch);
    }
    text
}

#[test]
fn shipped_policies_pass_every_shipped_case() {
    let authorizer = shipped_authorizer();
    let test_files = files_with_extension(&policies_dir().join("tests"), "json");
    assert!(
        !test_files.is_empty(),
        "no policy test files in `policies/tests`"
    );

    let mut n_cases = 0;
    let mut failures = Vec::new();
    let mut determining_seen = BTreeSet::new();
    for test_file in &test_files {
        let results = run_policy_tests(&authorizer, test_file)
            .unwrap_or_else(|error| fail(&error.to_string()));
        n_cases += results.len();
        for result in &results {
            if result.passed() {
                determining_seen.extend(result.decision.determining_policies.iter().cloned());
            } else {
                failures.push(describe(&test_file.path, result));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {n_cases} policy cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );

    // Every shipped policy must decide at least one case, or it is untested.
    let untested: Vec<String> = authorizer
        .policy_ids()
        .into_iter()
        .filter(|id| !determining_seen.contains(id))
        .collect();
    assert!(
        untested.is_empty(),
        "policies that decide no test case: {untested:?}"
    );
}

#[test]
fn shipped_policy_ids_are_the_annotations() {
    let authorizer = shipped_authorizer();
    assert_eq!(
        authorizer.policy_ids(),
        [
            "admins-decide-any-proposal",
            "assistant-disagreement-needs-a-human",
            "block-looping-agent-key",
            "block-single-runaway-key",
            "compensate-own-block",
            "compensate-own-changes",
            "critical-resources-need-a-human",
            "distrusted-runbooks-stop-acting",
            "failover-on-provider-errors",
            "failover-on-serving-saturation",
            "failover-only-to-a-compatible-model",
            "long-silences-need-an-admin",
            "never-block-critical-keys",
            "notify-teams",
            "on-call-approvers-decide",
            "operators-operate-controls",
            "requester-never-approves",
            "rollback-prompt-after-regression",
            "scheduled-checks-call-services",
            "throttle-key-exhausting-provider-quota",
            "throttle-single-key",
            "untrusted-runbooks-never-act",
        ]
    );
}

#[test]
fn a_failing_case_is_a_result_with_readable_mismatches() {
    let authorizer = shipped_authorizer();
    let request = serde_json::to_string(&crate::runaway_key_request()).expect("serialize request");
    let cases = format!(
        r#"[{{"name": "wrongly expects a deny", "request": {request}, "expect": {{"effect": "deny", "determining_policies": ["never-block-critical-keys"]}}}}]"#
    );
    let results = run_policy_tests(&authorizer, &crate::file("tests/wrong.json", &cases))
        .unwrap_or_else(|error| fail(&error.to_string()));
    let result = results.first().unwrap_or_else(|| fail("one case"));
    assert!(!result.passed());
    expect_test::expect![[r#"
        case `wrongly expects a deny` in `tests/wrong.json`:
          effect: expected `deny`, got `allow`
          determining policies: expected [`never-block-critical-keys`], got [`block-single-runaway-key`]"#]].assert_eq(&describe("tests/wrong.json", result));
}

#[test]
fn malformed_test_files_are_errors_with_their_place() {
    let authorizer = shipped_authorizer();
    let missing_expect = "[\n  {\"name\": \"no expectation\",\n   \"request\": {}}\n]\n";
    let duplicate_names = format!(
        "[{case}, {case}]",
        case = format!(
            r#"{{"name": "twice", "request": {}, "expect": {{"effect": "allow", "determining_policies": []}}}}"#,
            serde_json::to_string(&crate::runaway_key_request()).expect("serialize request")
        )
    );
    let errors: Vec<String> = [
        ("missing.json", missing_expect),
        ("twice.json", duplicate_names.as_str()),
    ]
    .into_iter()
    .map(
        |(path, text)| match run_policy_tests(&authorizer, &crate::file(path, text)) {
            Ok(results) => fail(&format!("`{path}` ran {} cases", results.len())),
            Err(error) => error.to_string(),
        },
    )
    .collect();
    expect_test::expect![[r#"
        invalid policy test file `missing.json:3:17`: missing field `principal` at line 3 column 17
        invalid policy test file `twice.json`: two cases are named `twice`"#]]
    .assert_eq(&errors.join("\n"));
}
