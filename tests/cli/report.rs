//! `vigil report`: the period report of the demo's ledger and of the simulator's game days
//! (several in one ledger), in its three formats, and its refusals of bad flags.

use std::path::Path;

use vigil_ledger::{Ledger, LedgerLocation};

use crate::archive::append_ledger;
use crate::demo::runaway_demo;
use crate::support::{Finished, TempDir, simulate_scenario, vigil};

fn report(db: &str, extra: &[&str], dir: &Path) -> Finished {
    let mut args = vec!["report", "--db", db];
    args.extend_from_slice(extra);
    vigil(args, dir)
}

fn json_of(db: &str, dir: &Path) -> serde_json::Value {
    let out = report(db, &["--format", "json"], dir);
    out.assert_success("report --format json");
    serde_json::from_str(&out.stdout).unwrap_or_else(|error| panic!("{error}: {out}"))
}

#[test]
fn the_demo_ledger_reports_one_incident_fixed_without_a_page() {
    let run = runaway_demo();
    let dir = TempDir::new("report-demo");
    let db = run.restore_ledger(&dir, "demo.db");
    let db = db.to_str().expect("UTF-8");
    let json = json_of(db, dir.path());
    assert_eq!(json["incidents"], 1, "{json:#}");
    assert_eq!(json["outcomes"]["fixed_by_vigil"], 1, "{json:#}");
    assert_eq!(json["auto_resolved_pct"], 100.0, "{json:#}");
    assert_eq!(json["pages_sent"], 0, "{json:#}");
    assert_eq!(json["pages_avoided"], 1, "{json:#}");
    assert_eq!(json["top_causes"][0]["kind"], "runaway_key", "{json:#}");
    assert_eq!(json["hours_returned"]["hours"], 0.75, "{json:#}");
    // The spike's evidence dates its onset.
    assert_eq!(json["time_to_detect"]["dated"]["n"], 1, "{json:#}");

    let text = report(db, &[], dir.path());
    text.assert_success("report");
    for line in [
        "ending at the ledger's latest entry",
        "incidents opened              1",
        "auto-resolved            100 % of the 1 that ended",
        "engineer-hours returned  0.75 h",
    ] {
        assert!(text.stdout.contains(line), "missing {line:?}: {text}");
    }
    // Other assumptions give other hours, and say so.
    let text = report(db, &["--minutes-per-incident", "90"], dir.path());
    assert!(
        text.stdout.contains("engineer-hours returned  1.5 h")
            && text.stdout.contains("assumptions: 90 min"),
        "{text}"
    );
}

#[test]
fn game_days_in_one_ledger_report_every_outcome() {
    let dir = TempDir::new("report-sim");
    let mut parts = Vec::new();
    for name in [
        "runaway-key",
        "failed-fix",
        "advisory-approval",
        "policy-denial",
        "scheduled-check",
    ] {
        let part = dir.join(&format!("{name}.db"));
        simulate_scenario(name, &part);
        parts.push(part);
    }
    let all = dir.join("all.db");
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(async {
            let mut ledger = Ledger::open(&LedgerLocation::Sqlite { path: all.clone() })
                .await
                .expect("a new ledger");
            for part in &parts {
                append_ledger(&mut ledger, part).await;
            }
            ledger.close().await;
        });
    let db = all.to_str().expect("UTF-8");
    let json = json_of(db, dir.path());
    assert_eq!(json["incidents"], 4, "{json:#}");
    let outcomes = &json["outcomes"];
    assert_eq!(outcomes["fixed_by_vigil"], 1, "{json:#}");
    assert_eq!(outcomes["fixed_with_approval"], 1, "{json:#}");
    assert_eq!(outcomes["paged"], 2, "{json:#}");
    assert_eq!(outcomes["open"], 0, "{json:#}");
    assert_eq!(json["auto_resolved_pct"], 25.0, "{json:#}");
    assert_eq!(json["pages_sent"], 2, "{json:#}");
    assert_eq!(json["pages_avoided"], 2, "{json:#}");
    assert!(json["failed_fixes"].as_u64() >= Some(1), "{json:#}");
    assert!(json["policy_denials"].as_u64() >= Some(1), "{json:#}");
    assert_eq!(json["approvals"], 1, "{json:#}");
    // The scheduled check's five runs are counted apart: not incidents, no pages avoided.
    assert_eq!(json["scheduled"]["runs"], 5, "{json:#}");
    assert_eq!(json["scheduled"]["paged"], 2, "{json:#}");

    let page = report(db, &["--format", "html"], dir.path());
    page.assert_success("report --format html");
    assert!(page.stdout.starts_with("<!DOCTYPE html>"), "{page}");
    assert!(!page.stdout.contains("<script"), "{page}");
    assert!(
        page.stdout.contains("<title>paged a person: 2</title>"),
        "{page}"
    );

    // A period that ends before the game days counts none of them.
    let early = report(db, &["--until", "2020-01-01T00:00:00Z"], dir.path());
    early.assert_success("report --until");
    assert!(
        early.stdout.contains("incidents opened              0"),
        "{early}"
    );
    assert!(early.stdout.contains("none ended"), "{early}");
}

#[test]
fn bad_flags_and_missing_ledgers_are_refused_by_name() {
    let run = runaway_demo();
    let dir = TempDir::new("report-bad");
    let db = run.restore_ledger(&dir, "demo.db");
    let db = db.to_str().expect("UTF-8");
    for (args, expected) in [
        (vec!["--since", "90y"], "--since: `90y` needs a unit"),
        (vec!["--since", "2026-13-01"], "--since:"),
        (vec!["--until", "yesterday"], "--until:"),
        (
            vec!["--minutes-per-incident=-5"],
            "minutes per incident must be between 0",
        ),
        (
            vec!["--minutes-per-decision", "NaN"],
            "minutes per decision must be between 0",
        ),
        (
            vec![
                "--since",
                "2027-01-01T00:00:00Z",
                "--until",
                "2026-01-01T00:00:00Z",
            ],
            "the period is empty",
        ),
    ] {
        let out = report(db, &args, dir.path());
        assert!(!out.status.success(), "{args:?} was accepted: {out}");
        assert!(
            out.stderr.contains(expected),
            "{args:?}: expected {expected:?}: {out}"
        );
        assert!(!out.stderr.contains("panicked"), "{out}");
    }
    let missing = report("missing.db", &[], dir.path());
    assert!(!missing.status.success(), "{missing}");
    assert!(!dir.join("missing.db").exists(), "report created a ledger");
}
