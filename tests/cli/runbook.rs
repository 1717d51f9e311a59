//! `vigil runbook lint` on the shipped runbooks and on copies of one: valid (exit 0), every problem of
//! every file with its file, line and key (exit 1), an unreadable folder (exit 2).

use crate::support::{TempDir, repo_root, vigil};

fn shipped_runbook() -> String {
    std::fs::read_to_string(repo_root().join("runbooks/block-runaway-key.yaml")).unwrap()
}

#[test]
fn the_shipped_runbooks_lint_clean() {
    let run = vigil(["runbook", "lint", "--dir", "runbooks"], &repo_root());
    assert_eq!(run.code(), 0, "{run}");
    assert!(
        run.stdout
            .starts_with("runbooks: ok (11 runbooks: block-looping-agent-key, block-runaway-key-calls, block-runaway-key, failover-provider-errors, failover-serving-saturation, gateway-readiness-check, rollback-prompt-after-eval-regression, rollback-prompt-after-size-growth, slow-key-before-budget-runs-out, throttle-key-exhausting-provider-quota, throttle-runaway-key)"),
        "{run}"
    );
}

#[test]
fn every_problem_of_every_runbook_is_listed_with_its_file_and_line() {
    let dir = TempDir::new("runbook-lint");
    std::fs::create_dir_all(dir.join("runbooks")).unwrap();
    let text = shipped_runbook();
    let bad_template = text.replacen("{{ incident.key }}", "{{ incident.kee }}", 1);
    assert_ne!(bad_template, text);
    std::fs::write(dir.join("runbooks/a.yaml"), &bad_template).unwrap();
    // A valid file, the same runbook again (a duplicate id), and one with a misspelt key.
    std::fs::write(dir.join("runbooks/b.yaml"), &text).unwrap();
    std::fs::write(dir.join("runbooks/b2.yaml"), &text).unwrap();
    std::fs::write(
        dir.join("runbooks/c.yml"),
        text.replacen("\nsteps:", "\nstepz:", 1),
    )
    .unwrap();
    let run = vigil(["runbook", "lint", "--dir", "runbooks"], dir.path());
    assert_eq!(run.code(), 1, "{run}");
    assert!(
        run.stderr.contains("unknown variable `incident.kee`"),
        "{run}"
    );
    assert!(run.stderr.contains("runbooks/a.yaml:"), "{run}");
    assert!(run.stderr.contains("runbooks/c.yml:"), "{run}");
    assert!(run.stderr.contains("stepz"), "{run}");
    assert!(
        run.stderr.contains(
            "runbooks/b2.yaml:13: `id`: another runbook already has the id `block-runaway-key`"
        ),
        "{run}"
    );
    let n_problems = run
        .stderr
        .lines()
        .filter(|line| line.starts_with("  "))
        .count();
    assert_eq!(n_problems, 3, "{run}");
}

#[test]
fn an_unreadable_folder_exits_2() {
    let dir = TempDir::new("runbook-missing");
    let run = vigil(["runbook", "lint", "--dir", "nowhere"], dir.path());
    assert_eq!(run.code(), 2, "{run}");
    assert!(run.stderr.contains("nowhere"), "{run}");
}
