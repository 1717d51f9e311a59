//! `vigil policy check` and `vigil policy test` on a copy of the shipped policies: the
//! shipped set is valid and its cases pass, a broken policy is named with its file and line
//! (exit 2), and a case whose expectation is wrong fails with what differed (exit 1).

use std::path::Path;

use crate::support::{TempDir, repo_root, vigil};

/// A copy of `policies/` (schema, policies and tests) in a fresh folder.
fn copy_of_policies(label: &str) -> TempDir {
    let dir = TempDir::new(label);
    let source = repo_root().join("policies");
    std::fs::create_dir_all(dir.join("policies/tests")).unwrap();
    for sub in ["", "tests"] {
        for entry in std::fs::read_dir(source.join(sub)).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() {
                let target = dir
                    .join("policies")
                    .join(sub)
                    .join(path.file_name().unwrap());
                std::fs::copy(&path, target).unwrap();
            }
        }
    }
    dir
}

fn edit(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert_eq!(
        text.matches(from).count(),
        1,
        "`{from}` in {}",
        path.display()
    );
    std::fs::write(path, text.replacen(from, to, 1)).unwrap();
}

#[test]
fn the_shipped_policies_check_and_every_case_passes() {
    let dir = copy_of_policies("policy-ok");
    let check = vigil(["policy", "check", "--dir", "policies"], dir.path());
    assert_eq!(check.code(), 0, "{check}");
    assert!(check.stdout.starts_with("policies: ok ("), "{check}");
    let test = vigil(["policy", "test", "--dir", "policies"], dir.path());
    assert_eq!(test.code(), 0, "{test}");
    assert!(
        test.stdout.contains(" passed, 0 failed (5 test files"),
        "{test}"
    );
    assert!(!test.stdout.contains("FAILED"), "{test}");
}

#[test]
fn a_policy_naming_an_unknown_attribute_is_refused_with_its_file_and_line() {
    let dir = copy_of_policies("policy-bad");
    edit(
        &dir.join("policies/runaway-keys.cedar"),
        "context.blast_radius == 1",
        "context.blast_radios == 1",
    );
    for command in ["check", "test"] {
        let run = vigil(["policy", command, "--dir", "policies"], dir.path());
        assert_eq!(run.code(), 2, "{run}");
        assert!(run.stderr.contains("runaway-keys.cedar:"), "{run}");
        assert!(run.stderr.contains("blast_radios"), "{run}");
    }
}

#[test]
fn a_case_whose_expectation_is_wrong_fails_and_says_what_differed() {
    let dir = copy_of_policies("policy-wrong");
    edit(
        &dir.join("policies/tests/guardrails.json"),
        r#""expect": {"effect": "deny", "determining_policies": ["untrusted-runbooks-never-act"]}"#,
        r#""expect": {"effect": "allow", "determining_policies": ["untrusted-runbooks-never-act"]}"#,
    );
    let run = vigil(["policy", "test", "--dir", "policies"], dir.path());
    assert_eq!(run.code(), 1, "{run}");
    assert!(
        run.stdout
            .contains("FAILED  policies/tests/guardrails.json: an untrusted runbook never blocks"),
        "{run}"
    );
    assert!(
        run.stdout.contains("effect: expected `allow`, got `deny`"),
        "{run}"
    );
    assert!(run.stdout.contains(" passed, 1 failed"), "{run}");
}
