//! `vigil simulate`: every shipped scenario in `tests/scenarios/` meets its expected outcome
//! (`--check`), the JSON timeline has the documented shape, a scenario whose outcome differs
//! fails the check and says how, and a broken scenario is refused with its file and line.

use std::path::PathBuf;

use crate::support::{TempDir, repo_root, vigil};

const KINDS: [&str; 10] = [
    "finding",
    "incident",
    "diagnosis",
    "decision",
    "proposal",
    "action",
    "verification",
    "compensation",
    "page",
    "resolved",
];

fn scenarios() -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(repo_root().join("tests/scenarios"))
        .expect("reading tests/scenarios")
        .map(|entry| entry.expect("an entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    found.sort();
    found
}

#[test]
fn every_shipped_scenario_meets_its_expected_outcome() {
    let scenarios = scenarios();
    assert!(scenarios.len() >= 10, "{scenarios:?}");
    let mut failures = Vec::new();
    for scenario in &scenarios {
        let shown = scenario.to_str().expect("a UTF-8 path");
        let run = vigil(["simulate", shown, "--check"], &repo_root());
        if run.code() != 0 {
            failures.push(format!("{shown}:\n{run}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn the_json_timeline_is_one_object_per_line_with_t_and_a_known_kind() {
    let scenario = repo_root().join("tests/scenarios/failed-fix.yaml");
    let run = vigil(
        [
            "simulate",
            scenario.to_str().expect("UTF-8"),
            "--json",
            "--check",
        ],
        &repo_root(),
    );
    run.assert_success("simulate --json");
    let mut kinds = Vec::new();
    let mut last_t = 0.0;
    for line in run.stdout.lines() {
        let object: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|error| panic!("not JSON ({error}): {line}"));
        let t = object["t"].as_f64().expect("a numeric t");
        assert!(t >= last_t, "time went backwards at {line}");
        last_t = t;
        let kind = object["kind"].as_str().expect("a kind").to_owned();
        assert!(KINDS.contains(&kind.as_str()), "unknown kind in {line}");
        if !kinds.contains(&kind) {
            kinds.push(kind);
        }
    }
    assert_eq!(
        kinds,
        [
            "finding",
            "incident",
            "diagnosis",
            "decision",
            "action",
            "verification",
            "compensation",
            "page"
        ]
    );
}

#[test]
fn an_outcome_other_than_expected_fails_the_check_and_says_how() {
    let dir = TempDir::new("simulate-check");
    let original =
        std::fs::read_to_string(repo_root().join("tests/scenarios/runaway-key.yaml")).unwrap();
    let config = repo_root().join("tests/scenarios/config/vigil.yaml");
    let changed = original
        .replace(
            "config: config/vigil.yaml",
            &format!("config: \"{}\"", config.display()),
        )
        .replace("  pages: 0", "  pages: 2");
    let path = dir.join("scenario.yaml");
    std::fs::write(&path, changed).unwrap();
    let run = vigil(["simulate", path.to_str().unwrap(), "--check"], dir.path());
    assert_eq!(run.code(), 1, "{run}");
    assert!(run.stderr.contains("pages: expected 2, got 0"), "{run}");

    let broken = original.replace("per_sec: 8000", "per_sec: -5");
    std::fs::write(&path, broken).unwrap();
    let run = vigil(["simulate", path.to_str().unwrap()], dir.path());
    assert_eq!(run.code(), 2, "{run}");
    assert!(
        run.stderr
            .contains("scenario.yaml:15: `series[0].counter[1]`"),
        "{run}"
    );
}
