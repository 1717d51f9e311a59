//! `vigil backtest`: the output CSV on stdout and the exit status (0 every row used, 1 some
//! rows not scored, 2 unreadable input or unknown detector).

use crate::support::{TempDir, vigil};

#[test]
fn backtest_writes_one_scored_row_per_input_row_and_reports_bad_rows() {
    let dir = TempDir::new("backtest");
    let mut csv = String::from("timestamp,value\n");
    for minute in 0..300 {
        let value = if (200..203).contains(&minute) {
            900.0
        } else {
            100.0 + f64::from(minute % 5)
        };
        csv.push_str(&format!("{},{value}\n", 1_714_521_600 + minute * 60));
    }
    std::fs::write(dir.join("good.csv"), &csv).unwrap();
    let run = vigil(
        ["backtest", "--detector", "adaptive", "--csv", "good.csv"],
        dir.path(),
    );
    assert_eq!(run.code(), 0, "{run}");
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines[0], "timestamp,value,anomaly_score,alert,note");
    assert_eq!(lines.len(), 301, "{run}");
    let alerts: Vec<usize> = lines[1..]
        .iter()
        .enumerate()
        .filter(|(_, line)| line.ends_with(",1,"))
        .map(|(index, _)| index)
        .collect();
    assert_eq!(alerts, [200], "{run}");
    assert!(
        run.stderr
            .contains("300 rows through `adaptive`, 1 alerts, 0 rows not scored"),
        "{run}"
    );

    csv.push_str("2024-05-01 09:00:00,not-a-number\n");
    std::fs::write(dir.join("bad.csv"), &csv).unwrap();
    let run = vigil(
        ["backtest", "--detector", "spike", "--csv", "bad.csv"],
        dir.path(),
    );
    assert_eq!(run.code(), 1, "{run}");
    assert_eq!(
        run.stdout.lines().count(),
        302,
        "every row is kept, the bad one with why: {run}"
    );
    assert!(
        run.stderr
            .contains("bad.csv:302: value `not-a-number` is not a number"),
        "{run}"
    );

    let missing = vigil(
        ["backtest", "--detector", "adaptive", "--csv", "missing.csv"],
        dir.path(),
    );
    assert_eq!(missing.code(), 2, "{missing}");
    let unknown = vigil(
        ["backtest", "--detector", "prophet", "--csv", "good.csv"],
        dir.path(),
    );
    assert_eq!(unknown.code(), 2, "{unknown}");
    assert!(
        unknown.stderr.contains("unknown detector `prophet`"),
        "{unknown}"
    );
}
