//! `vigil ledger show`: whole payloads with `--full`, an incident the ledger does not hold,
//! and filters that keep nothing.

use crate::ledger::{Row, read_rows};
use crate::support::{TempDir, incident_ids, repo_root, vigil};

/// A copy of the golden ledger of the failed-fix game day (sessions, events, commands, one
/// incident) in `dir`.
fn golden_copy(dir: &TempDir) -> String {
    let db = dir.join("ledger.db");
    std::fs::copy(
        repo_root().join("tests/golden/2026-11-issue5-simulate-failed-fix.db"),
        &db,
    )
    .expect("copying the golden ledger");
    db.to_str().expect("a UTF-8 path").to_owned()
}

/// Every row of the ledger at `db`.
fn rows(db: &str) -> Vec<Row> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(read_rows(std::path::Path::new(db)))
}

// Regression: payloads were cut at about 200 characters with no way to see them whole.
#[test]
fn show_full_prints_every_payload_whole_one_entry_per_line() {
    let dir = TempDir::new("show-full");
    let db = golden_copy(&dir);
    let rows = rows(&db);
    let short = vigil(["ledger", "show", "--db", &db, "--all"], &repo_root());
    short.assert_success("show --all");
    assert!(
        short.stdout.lines().any(|line| line.ends_with('…')),
        "some command is long enough to be cut: {short}"
    );

    let full = vigil(
        ["ledger", "show", "--db", &db, "--all", "--full"],
        &repo_root(),
    );
    full.assert_success("show --all --full");
    let lines: Vec<&str> = full.stdout.lines().collect();
    assert_eq!(lines.len(), rows.len(), "one line per entry: {full}");
    for (line, row) in lines.iter().zip(&rows) {
        let seq: i64 = line
            .split_whitespace()
            .next()
            .and_then(|seq| seq.parse().ok())
            .unwrap_or_else(|| panic!("no seq in `{line}`"));
        assert_eq!(seq, row.seq, "{line}");
        assert!(
            line.ends_with(&format!(" {}", row.payload)),
            "entry {seq} is not followed by its whole payload: {line}"
        );
    }
    let longest = rows.iter().map(|row| row.payload.len()).max().unwrap_or(0);
    assert!(
        longest > 1_000,
        "the ledger holds a long payload ({longest})"
    );
}

// Regression: `show --incident UNKNOWN` printed nothing and exited 0.
#[test]
fn show_refuses_an_incident_the_ledger_does_not_hold() {
    let dir = TempDir::new("show-unknown");
    let db = golden_copy(&dir);
    let run = vigil(
        [
            "ledger",
            "show",
            "--db",
            &db,
            "--incident",
            "inc-000000000000",
        ],
        &repo_root(),
    );
    assert_eq!(run.code(), 1, "{run}");
    assert!(run.stdout.is_empty(), "{run}");
    assert!(
        run.stderr.contains(&format!(
            "ledger `sqlite:{db}` holds no entry of incident `inc-000000000000`"
        )),
        "{run}"
    );
}

#[test]
fn filters_that_keep_nothing_say_so_and_exit_0() {
    let dir = TempDir::new("show-nothing");
    let db = golden_copy(&dir);
    let all = vigil(["ledger", "show", "--db", &db], &repo_root());
    all.assert_success("show");
    let incident = incident_ids(&all.stdout)
        .into_iter()
        .next()
        .expect("the golden ledger has an incident");
    let later = "2100-01-01T00:00:00Z";
    let cases: [(Vec<&str>, String); 2] = [
        (
            vec!["ledger", "show", "--db", &db, "--since", later],
            "no entries since 2100-01-01T00:00:00".to_owned(),
        ),
        (
            vec![
                "ledger",
                "show",
                "--db",
                &db,
                "--incident",
                &incident,
                "--since",
                later,
            ],
            format!("no entries of incident `{incident}` since 2100-01-01T00:00:00"),
        ),
    ];
    for (args, expected) in cases {
        let run = vigil(&args, &repo_root());
        run.assert_success(&args.join(" "));
        assert!(run.stdout.is_empty(), "{run}");
        assert!(run.stderr.contains(&expected), "{run}");
    }
}
