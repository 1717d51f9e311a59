//! Ledgers written by earlier builds (`tests/golden/`, see its README) stay readable,
//! verifiable and replayable by this one.

use crate::support::{TempDir, incident_ids, repo_root, vigil};

/// A golden ledger: its file, its number of entries and its RFC 6962 tree head.
struct Golden {
    file: &'static str,
    n_entries: u64,
    tree_head: &'static str,
    n_incidents: usize,
}

const GOLDEN: [Golden; 6] = [
    Golden {
        file: "2026-11-issue4-demo-runaway-key.db",
        n_entries: 30,
        tree_head: "e87ed2dd90c0259645cf6ee978c2f4c40b4d10cd8eb1d93eeaf5dccd2925038b",
        n_incidents: 1,
    },
    Golden {
        file: "2026-11-issue4-demo-failed-fix.db",
        n_entries: 46,
        tree_head: "994f4554b1747e396f4a1d18b7646bc9565690bd4b4d768c86b2949b97c42f8a",
        n_incidents: 1,
    },
    Golden {
        file: "2026-11-issue5-simulate-failed-fix.db",
        n_entries: 82,
        tree_head: "3f50a44b05356e80b61d3dbd3a9eb415a2ba1e5985e071a85e0e590d5b48d0f6",
        n_incidents: 1,
    },
    Golden {
        file: "2026-11-issue5-simulate-scheduled-check.db",
        n_entries: 63,
        tree_head: "c403b28184ca6c7eafc26e91bd923115d429f849cdfe758cc46eab6691bafc97",
        n_incidents: 5,
    },
    Golden {
        file: "2026-11-issue6-demo-runaway-key.db",
        n_entries: 30,
        tree_head: "70e6d27e05def8061cc7287b6def3e943ebc5a01315600dfe34cd1f500cd553d",
        n_incidents: 1,
    },
    Golden {
        file: "2026-12-issue12-simulate-advisory-approval.db",
        n_entries: 87,
        tree_head: "e4404071d3fc4c8e0fd5df82fd977f5342b90458070b79c0eaa68d1b497f560f",
        n_incidents: 1,
    },
];

#[test]
fn every_golden_ledger_verifies_decodes_and_replays_with_every_command_matching() {
    let dir = TempDir::new("golden");
    let mut failures = Vec::new();
    for golden in &GOLDEN {
        // A copy: opening a ledger applies this build's migrations to it.
        let db = dir.join(golden.file);
        std::fs::copy(repo_root().join("tests/golden").join(golden.file), &db)
            .unwrap_or_else(|error| panic!("copying {}: {error}", golden.file));
        let db = db.to_str().expect("a UTF-8 path");

        let verify = vigil(["ledger", "verify", "--db", db], &repo_root());
        if verify.code() != 0
            || !verify
                .stdout
                .contains(&format!("{} entries", golden.n_entries))
            || !verify.stdout.contains(golden.tree_head)
        {
            failures.push(format!("{}: verify:\n{verify}", golden.file));
        }

        let show = vigil(["ledger", "show", "--db", db, "--all"], &repo_root());
        let n_lines = show.stdout.lines().count() as u64;
        if show.code() != 0 || show.stdout.contains("unreadable") || n_lines != golden.n_entries {
            failures.push(format!("{}: show ({n_lines} lines):\n{show}", golden.file));
        }

        let all = vigil(["replay", "--db", db, "--all"], &repo_root());
        if all.code() != 0 || !all.stdout.contains("result: every command matches") {
            failures.push(format!("{}: replay --all:\n{all}", golden.file));
        }
        let incidents = incident_ids(&all.stdout);
        if incidents.len() != golden.n_incidents {
            failures.push(format!(
                "{}: expected {} incidents, replay --all lists {incidents:?}",
                golden.file, golden.n_incidents
            ));
        }
        for incident in incidents {
            let one = vigil(
                ["replay", "--db", db, "--incident", &incident],
                &repo_root(),
            );
            if one.code() != 0 || !one.stdout.contains("result: every command matches") {
                failures.push(format!(
                    "{}: replay --incident {incident}:\n{one}",
                    golden.file
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// The issue-6 ledger carries what that format added: signed checkpoints in the ledger, and
/// an action's HTTP exchanges as a blob its answer names.
#[test]
fn the_issue_6_ledger_keeps_its_checkpoints_and_exchanges_readable() {
    let dir = TempDir::new("golden-issue6");
    let db = dir.join("ledger.db");
    std::fs::copy(
        repo_root().join("tests/golden/2026-11-issue6-demo-runaway-key.db"),
        &db,
    )
    .expect("copying the golden ledger");
    let db = db.to_str().expect("UTF-8");
    let verify = vigil(["ledger", "verify", "--db", db], &repo_root());
    verify.assert_success("verify");
    assert!(
        verify
            .stdout
            .contains("consistent with its 2 stored checkpoint(s), the newest of 30 entries"),
        "{verify}"
    );
    let show = vigil(["ledger", "show", "--db", db], &repo_root());
    show.assert_success("show");
    assert!(
        show.stdout.lines().any(|line| line
            .contains("event action_finished [POST http://127.0.0.1:")
            && line.contains("/key/block → 200 (")),
        "{show}"
    );
}

/// The oldest golden ledger predates `trust_pct`: today's policies, which read it, are given
/// the neutral score for the recorded request, and the diff says the request predates it.
#[test]
fn a_ledger_from_before_trust_scores_is_decided_by_todays_policies_with_the_neutral_score() {
    let dir = TempDir::new("golden-diff");
    let db = dir.join("old.db");
    std::fs::copy(
        repo_root().join("tests/golden/2026-11-issue4-demo-runaway-key.db"),
        &db,
    )
    .expect("copying the golden ledger");
    let config = repo_root().join("tests/scenarios/config/vigil.yaml");
    let run = vigil(
        [
            "replay",
            "--db",
            db.to_str().expect("UTF-8"),
            "--all",
            "--with-current-policies",
            "--config",
            config.to_str().expect("UTF-8"),
        ],
        &repo_root(),
    );
    run.assert_success("replay --with-current-policies");
    assert!(
        run.stdout.contains("0 of 1 decisions would differ"),
        "{run}"
    );
    assert!(
        run.stdout.contains("result: every command matches"),
        "{run}"
    );
}

/// `vigil ledger show --since` keeps exactly the entries from that time on, and refuses a
/// time it cannot read.
#[test]
fn show_since_keeps_the_entries_from_that_time_on() {
    let dir = TempDir::new("golden-since");
    let db = dir.join("ledger.db");
    std::fs::copy(
        repo_root().join("tests/golden/2026-11-issue5-simulate-failed-fix.db"),
        &db,
    )
    .expect("copying the golden ledger");
    let db = db.to_str().expect("UTF-8");
    let since = "2026-01-01T00:05:30.000Z";
    let all = vigil(["ledger", "show", "--db", db, "--all"], &repo_root());
    all.assert_success("show --all");
    let expected: Vec<&str> = all
        .stdout
        .lines()
        .filter(|line| line.split_whitespace().nth(1).is_some_and(|at| at >= since))
        .collect();
    assert!(
        !expected.is_empty() && expected.len() < all.stdout.lines().count(),
        "{all}"
    );
    let shown = vigil(
        ["ledger", "show", "--db", db, "--all", "--since", since],
        &repo_root(),
    );
    shown.assert_success("show --since");
    assert_eq!(shown.stdout.lines().collect::<Vec<_>>(), expected);

    let bad = vigil(
        ["ledger", "show", "--db", db, "--since", "yesterday"],
        &repo_root(),
    );
    assert_ne!(bad.code(), 0, "{bad}");
    assert!(bad.stderr.contains("--since `yesterday`"), "{bad}");
}

/// Proofs printed by `vigil ledger prove` check offline with `vigil ledger verify --proof`,
/// and a changed head or size is refused.
#[test]
fn inclusion_and_consistency_proofs_check_offline_and_refuse_changes() {
    let dir = TempDir::new("golden-proofs");
    let db = dir.join("ledger.db");
    std::fs::copy(
        repo_root().join("tests/golden/2026-11-issue5-simulate-scheduled-check.db"),
        &db,
    )
    .expect("copying the golden ledger");
    let db = db.to_str().expect("UTF-8");
    let golden = &GOLDEN[3];
    for (args, name) in [
        (
            vec!["ledger", "prove", "--db", db, "--consistency", "17"],
            "consistency.json",
        ),
        (
            vec![
                "ledger",
                "prove",
                "--db",
                db,
                "--consistency",
                "1",
                "--to",
                "40",
            ],
            "consistency-40.json",
        ),
        (vec!["ledger", "prove", "--db", db, "33"], "inclusion.json"),
    ] {
        let proved = vigil(args, &repo_root());
        proved.assert_success("ledger prove");
        let file = dir.join(name);
        std::fs::write(&file, &proved.stdout).expect("writing the proof");
        let file = file.to_str().expect("UTF-8");
        let checked = vigil(["ledger", "verify", "--proof", file], &repo_root());
        checked.assert_success("verify --proof");
        if name != "consistency-40.json" {
            assert!(checked.stdout.contains(golden.tree_head), "{checked}");
        }
        // Any changed head is refused.
        let value: serde_json::Value = serde_json::from_str(&proved.stdout).expect("JSON");
        let head_field = if value.get("seq").is_some() {
            "tree_head"
        } else {
            "from_head"
        };
        let mut changed = value.clone();
        changed[head_field] = serde_json::Value::String("00".repeat(32));
        std::fs::write(dir.join("changed.json"), changed.to_string()).expect("writing");
        let refused = vigil(
            [
                "ledger",
                "verify",
                "--proof",
                dir.join("changed.json").to_str().expect("UTF-8"),
            ],
            &repo_root(),
        );
        assert_eq!(refused.code(), 1, "{refused}");
        assert!(refused.stdout.contains("REFUSED"), "{refused}");
    }
    let out_of_range = vigil(
        ["ledger", "prove", "--db", db, "--consistency", "0"],
        &repo_root(),
    );
    assert_ne!(out_of_range.code(), 0, "{out_of_range}");
    assert!(
        out_of_range.stderr.contains("0 < FROM <= TO"),
        "{out_of_range}"
    );
}

/// An export written by the build that held the whole ledger in memory (`b9362b7`) still
/// verifies offline, and today's streamed export of the same ledger is the same bytes.
#[test]
fn an_export_from_before_still_verifies_and_is_written_the_same_today() {
    let dir = TempDir::new("golden-export");
    let golden = &GOLDEN[4];
    let kept = repo_root().join("tests/golden/2026-11-issue6-demo-runaway-key.export");
    let kept_text = kept.to_str().expect("UTF-8");
    let offline = vigil(["ledger", "verify", "--export", kept_text], &repo_root());
    offline.assert_success("verify --export");
    assert!(
        offline
            .stdout
            .contains(&format!("{} entries", golden.n_entries))
            && offline.stdout.contains(golden.tree_head),
        "{offline}"
    );

    let db = dir.join("ledger.db");
    std::fs::copy(repo_root().join("tests/golden").join(golden.file), &db)
        .expect("copying the golden ledger");
    let out = dir.join("today.export");
    vigil(
        [
            "ledger",
            "export",
            "--db",
            db.to_str().expect("UTF-8"),
            "--out",
            out.to_str().expect("UTF-8"),
        ],
        &repo_root(),
    )
    .assert_success("ledger export");
    let today = std::fs::read(&out).expect("reading today's export");
    let before = std::fs::read(&kept).expect("reading the kept export");
    assert!(today == before, "today's export differs from the kept one");
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .expect("listing the folder")
        .map(|entry| entry.expect("an entry").file_name())
        .collect();
    assert!(
        !left.iter().any(|name| {
            let name = name.to_string_lossy();
            name.ends_with(".tree") || name.ends_with(".partial")
        }),
        "the export left its scratch files: {left:?}"
    );
}
