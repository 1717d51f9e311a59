//! `vigil simulate`: every shipped scenario in `tests/scenarios/` meets its expected outcome
//! (`--check`), the JSON timeline has the documented shape, a scenario whose outcome differs
//! fails the check and says how, and a broken scenario is refused with its file and line.

use std::path::PathBuf;

use crate::support::{TempDir, incident_ids, repo_root, vigil};

const KINDS: [&str; 12] = [
    "topology",
    "notification",
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

/// Each scenario meets its `expect`, and the ledger it writes verifies and replays: every
/// incident, alone and with the whole ledger, with every command matching.
#[test]
fn every_shipped_scenario_meets_its_expected_outcome_and_every_incident_replays() {
    let scenarios = scenarios();
    assert!(scenarios.len() >= 10, "{scenarios:?}");
    let dir = TempDir::new("simulate-ledgers");
    let mut failures = Vec::new();
    let mut n_incidents = 0;
    for scenario in &scenarios {
        let shown = scenario.to_str().expect("a UTF-8 path");
        let name = scenario.file_stem().expect("a name").to_string_lossy();
        let db = dir.join(&format!("{name}.db"));
        let db = db.to_str().expect("a UTF-8 path");
        let run = vigil(["simulate", shown, "--check", "--ledger", db], &repo_root());
        if run.code() != 0 {
            failures.push(format!("{shown}:\n{run}"));
            continue;
        }
        let verify = vigil(["ledger", "verify", "--db", db], &repo_root());
        if verify.code() != 0 {
            failures.push(format!("{shown}: the ledger does not verify:\n{verify}"));
        }
        let all = vigil(["replay", "--db", db, "--all"], &repo_root());
        if all.code() != 0 || !all.stdout.contains("result: every command matches") {
            failures.push(format!("{shown}: replay --all:\n{all}"));
        }
        let incidents = incident_ids(&run.stdout);
        if incidents.is_empty() {
            failures.push(format!("{shown}: no incident in the timeline:\n{run}"));
        }
        for incident in incidents {
            n_incidents += 1;
            if !all.stdout.contains(&format!("incident {incident}: ")) {
                failures.push(format!("{shown}: replay --all does not list {incident}"));
            }
            let one = vigil(
                ["replay", "--db", db, "--incident", &incident],
                &repo_root(),
            );
            if one.code() != 0 || !one.stdout.contains("result: every command matches") {
                failures.push(format!("{shown}: replay --incident {incident}:\n{one}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert!(n_incidents >= scenarios.len(), "{n_incidents} incidents");
}

/// Another policy set's decisions are shown as a diff against the recorded ones; the replay
/// itself still matches, so the exit code is 0.
#[test]
fn replay_with_other_policies_shows_each_decision_that_would_differ() {
    let dir = TempDir::new("simulate-policy-diff");
    let db = dir.join("runaway.db");
    let db = db.to_str().expect("UTF-8");
    let scenario = repo_root().join("tests/scenarios/runaway-key.yaml");
    vigil(
        [
            "simulate",
            scenario.to_str().expect("UTF-8"),
            "--ledger",
            db,
        ],
        &repo_root(),
    )
    .assert_success("simulate --ledger");
    // The shipped policies without the file that permits blocking a runaway key.
    let policies = dir.join("policies");
    std::fs::create_dir(&policies).expect("a policies folder");
    for file in [
        "vigil.cedarschema",
        "guardrails.cedar",
        "ai-incidents.cedar",
    ] {
        std::fs::copy(repo_root().join("policies").join(file), policies.join(file))
            .expect("copying a policy file");
    }
    let diff = vigil(
        [
            "replay",
            "--db",
            db,
            "--all",
            "--policies",
            policies.to_str().expect("UTF-8"),
        ],
        &repo_root(),
    );
    diff.assert_success("replay --policies");
    assert!(
        diff.stdout.contains("result: every command matches"),
        "{diff}"
    );
    assert!(
        diff.stdout
            .contains("authorize block-runaway-key block on ApiKey"),
        "{diff}"
    );
    assert!(
        diff.stdout
            .contains("    - allow by block-single-runaway-key"),
        "{diff}"
    );
    assert!(diff.stdout.contains("    + deny by no policy"), "{diff}");
    assert!(
        diff.stdout.contains("1 of 1 decisions would differ"),
        "{diff}"
    );

    let config = repo_root().join("tests/scenarios/config/vigil.yaml");
    let same = vigil(
        [
            "replay",
            "--db",
            db,
            "--all",
            "--with-current-policies",
            "--config",
            config.to_str().expect("UTF-8"),
        ],
        &repo_root(),
    );
    same.assert_success("replay --with-current-policies");
    assert!(
        same.stdout.contains("0 of 1 decisions would differ"),
        "{same}"
    );

    let broken = vigil(
        [
            "replay",
            "--db",
            db,
            "--all",
            "--policies",
            dir.path().to_str().expect("UTF-8"),
        ],
        &repo_root(),
    );
    assert_ne!(broken.code(), 0, "{broken}");
    assert!(broken.stderr.contains("vigil.cedarschema"), "{broken}");
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
            "topology",
            "finding",
            "incident",
            "diagnosis",
            "decision",
            "action",
            "notification",
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
