//! Backtests on small CSVs whose right answers are known.

use super::*;

fn run_csv(detector: &str, csv: &str) -> (Summary, String) {
    let mut detector = Detector::build(detector, None).unwrap();
    let mut out = Vec::new();
    let summary = stream(csv.as_bytes(), "test.csv", &mut detector, &mut out).unwrap();
    (summary, String::from_utf8(out).unwrap())
}

/// `n` rows a minute apart from 2024-05-01 00:00 UTC, value 100 with a small deterministic
/// wobble, except the rows in `high` which hold `spike`.
fn history(n: usize, high: std::ops::Range<usize>, spike: f64) -> String {
    let mut csv = String::from("timestamp,value\n");
    for index in 0..n {
        let value = if high.contains(&index) {
            spike
        } else {
            100.0 + [0.0, 3.0, -2.0, 1.0, -4.0, 2.0][index % 6]
        };
        let at = 1_714_521_600 + index as i64 * 60;
        csv.push_str(&format!("{at},{value}\n"));
    }
    csv
}

fn alert_rows(out: &str) -> Vec<usize> {
    out.lines()
        .skip(1)
        .enumerate()
        .filter(|(_, line)| line.ends_with(",1,"))
        .map(|(index, _)| index)
        .collect()
}

#[test]
fn timestamps_in_every_supported_form() {
    let cases = [
        ("1714521600", Ok(1_714_521_600_000)),
        ("1714521600.25", Ok(1_714_521_600_250)),
        ("1714521600.250000", Ok(1_714_521_600_250)),
        ("1714521600250", Ok(1_714_521_600_250)),
        ("-60", Ok(-60_000)),
        ("2024-05-01 00:00:00", Ok(1_714_521_600_000)),
        ("2024-05-01T00:00:00.5Z", Ok(1_714_521_600_500)),
    ];
    for (text, expected) in cases {
        assert_eq!(parse_time(text), expected, "{text}");
    }
    for (text, reason) in [
        ("1714521600.0001", "finer than a millisecond"),
        ("99999999999999999999", "out of range"),
        ("yesterday", "bad timestamp"),
        ("2024-05-01 00:00:00+02:00", "bad timestamp"),
    ] {
        let error = parse_time(text).unwrap_err();
        assert!(error.contains(reason), "{text}: {error}");
    }
}

#[test]
fn every_row_gets_an_output_row_and_each_oddity_says_why_it_was_not_scored() {
    let csv = concat!(
        "timestamp,value\n",
        "2024-05-01 00:00:00,1.5\n",
        "2024-05-01 00:01:00,abc\n",
        "just-one-field\n",
        "\n",
        "2024-05-01 00:02:00,\"2\"\r\n",
        "2024-05-01 00:00:30,3\n",
        "2024-05-01 00:03:00,inf\n",
        "2024-05-01 00:04:00,4e0\n",
    );
    let (summary, out) = run_csv("adaptive", csv);
    assert_eq!(
        summary,
        Summary {
            rows: 3,
            alerts: 0,
            skipped: 4
        }
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "timestamp,value,anomaly_score,alert,note");
    // One output row per input row, the blank line aside, in the input's order.
    assert_eq!(lines.len(), 8, "{out}");
    assert!(lines[1].starts_with("2024-05-01 00:00:00,1.5,"), "{out}");
    assert_eq!(
        lines[2],
        "2024-05-01 00:01:00,abc,,0,not scored: value `abc` is not a number"
    );
    // A note holding a comma is quoted.
    assert_eq!(
        lines[3],
        "just-one-field,,,0,\"not scored: expected `timestamp,value`\""
    );
    assert!(lines[4].starts_with("2024-05-01 00:02:00,2,"), "{out}");
    assert!(
        lines[5].starts_with(
            "2024-05-01 00:00:30,3,,0,\"not scored: timestamp `2024-05-01 00:00:30` is earlier"
        ),
        "{out}"
    );
    assert!(
        lines[6].starts_with("2024-05-01 00:03:00,inf,,0,not scored:"),
        "{out}"
    );
    assert!(lines[7].starts_with("2024-05-01 00:04:00,4e0,"), "{out}");
    for line in [lines[1], lines[4], lines[7]] {
        let fields: Vec<&str> = line.split(',').collect();
        let score: f64 = fields[2].parse().unwrap();
        assert!((0.0..=1.0).contains(&score), "{line}");
        assert!(matches!(fields[3], "0" | "1"), "{line}");
        assert_eq!(fields[4], "", "{line}");
    }
}

#[test]
fn a_headerless_file_keeps_its_first_row() {
    let (summary, out) = run_csv("adaptive", "1714521600,5\n1714521660,6\n");
    assert_eq!(summary.rows, 2);
    assert!(out.lines().nth(1).unwrap().starts_with("1714521600,5,"));
}

#[test]
fn the_adaptive_detector_alerts_once_on_a_burst_and_not_on_the_steady_part() {
    let (summary, out) = run_csv("adaptive", &history(600, 400..405, 400.0));
    assert_eq!(alert_rows(&out), [400], "{out}");
    assert_eq!(summary.alerts, 1);
    let steady = run_csv("adaptive", &history(600, 0..0, 0.0)).0;
    assert_eq!(steady.alerts, 0);
}

#[test]
fn the_spike_detector_fires_after_its_consecutive_hot_rows_and_scores_them() {
    // Defaults: 20 warm-up rows, then fire at 3x and 6 spreads above the baseline for 2 rows.
    let (summary, out) = run_csv("spike", &history(120, 100..110, 1000.0));
    assert_eq!(alert_rows(&out), [101], "{out}");
    assert_eq!(summary.alerts, 1);
    let scores: Vec<f64> = out
        .lines()
        .skip(1)
        .map(|line| line.split(',').nth(2).unwrap().parse().unwrap())
        .collect();
    assert!(scores[50] < 0.1, "steady rows score low: {}", scores[50]);
    assert_eq!(
        scores[100], 1.0,
        "a row at 10x the baseline is past the fire ratio"
    );
    assert_eq!(scores[105], 1.0, "a firing spike scores 1");
}

#[test]
fn a_detector_can_be_named_from_a_config_and_unknown_names_are_refused() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/vigil.yaml");
    let from_config = Detector::build("token-spike", Some(&example)).unwrap();
    assert!(matches!(from_config, Detector::Spike { .. }));
    let builtin = Detector::build("adaptive", Some(&example)).unwrap();
    assert!(matches!(builtin, Detector::Adaptive(_)));
    let error = Detector::build("nope", Some(&example)).unwrap_err();
    assert!(
        error.contains("no detector named `nope`") && error.contains("token-spike"),
        "{error}"
    );
    let error = Detector::build("nope", None).unwrap_err();
    assert!(error.contains("unknown detector `nope`"), "{error}");
    let error = Detector::build("spike", Some(Path::new("no/such/vigil.yaml"))).unwrap_err();
    assert!(
        error.contains("cannot read `no/such/vigil.yaml`"),
        "{error}"
    );
}

#[test]
fn a_configured_threshold_detector_reads_each_value_as_its_reading() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/vigil.yaml");
    // p95 latency: fires at 20 s after 4 readings in a row, clears under 12 s after 4.
    let mut detector = Detector::build("p95-latency", Some(&example)).unwrap();
    let values = [
        5.0, 12.0, 16.0, 21.0, 25.0, 22.0, 30.0, 18.0, 15.0, 11.0, 10.0, 9.0, 8.0, 21.0,
    ];
    let mut csv = String::from("timestamp,value\n");
    for (index, value) in values.iter().enumerate() {
        csv.push_str(&format!("{},{value}\n", 1_714_521_600 + index as i64 * 15));
    }
    let mut out = Vec::new();
    let summary = stream(csv.as_bytes(), "test.csv", &mut detector, &mut out).unwrap();
    assert_eq!(summary.skipped, 0);
    let out = String::from_utf8(out).unwrap();
    // The fourth reading at or above 20 s alerts; nothing else does.
    assert_eq!(alert_rows(&out), vec![6]);
    let scores: Vec<f64> = out
        .lines()
        .skip(1)
        .map(|line| line.split(',').nth(2).unwrap().parse().unwrap())
        .collect();
    // Under the clear level 0; halfway between 12 and 20 s, 0.5; firing (rows 6 to 11:
    // it clears on the fourth reading under 12 s), 1.
    assert_eq!(scores[0], 0.0);
    assert_eq!(scores[2], 0.5);
    assert_eq!(&scores[6..12], &[1.0; 6]);
    assert_eq!(scores[12], 0.0);
    assert_eq!(scores[13], 1.0, "a reading past the firing level scores 1");
}

#[test]
fn detectors_of_two_counters_are_refused_with_the_reason() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/vigil.yaml");
    let error = Detector::build("provider-errors", Some(&example)).unwrap_err();
    assert!(error.contains("reads two counters"), "{error}");
}

/// A clock that repeats an hour and then goes back (a daylight-saving change in an export):
/// repeated timestamps are scored, earlier ones are kept and said, and every detector takes
/// the rest without a hitch.
#[test]
fn a_clock_that_repeats_and_goes_back_keeps_every_row() {
    let mut csv = String::from("time,reading\n");
    for minute in 0..120_i64 {
        csv.push_str(&format!(
            "{},{}\n",
            1_714_521_600 + minute * 60,
            100 + minute % 7
        ));
    }
    // The same minute twice, then the clock back an hour, then on again.
    csv.push_str(&format!("{},101\n", 1_714_521_600 + 119 * 60));
    for minute in 60..70_i64 {
        csv.push_str(&format!("{},102\n", 1_714_521_600 + minute * 60));
    }
    for minute in 120..130_i64 {
        csv.push_str(&format!("{},103\n", 1_714_521_600 + minute * 60));
    }
    for detector in ["adaptive", "spike"] {
        let (summary, out) = run_csv(detector, &csv);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 1 + 120 + 1 + 10 + 10, "{detector}");
        assert_eq!(summary.rows, 131, "{detector}");
        assert_eq!(summary.skipped, 10, "{detector}");
        let went_back = lines
            .iter()
            .filter(|line| line.contains("the clock went back"))
            .count();
        assert_eq!(went_back, 10, "{detector}");
        for line in lines.iter().skip(1).filter(|line| line.ends_with(',')) {
            let score: f64 = line.split(',').nth(2).unwrap().parse().unwrap();
            assert!(
                score.is_finite() && (0.0..=1.0).contains(&score),
                "{detector}: {line}"
            );
        }
    }
}

#[test]
fn a_configured_anomaly_detector_reads_each_value_with_its_settings() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/vigil.yaml");
    // Tokens per request, rises only, at least 200 more than expected: a steady 1000 with a
    // small wobble, then 1150 (too small to matter), then 3000.
    let mut detector = Detector::build("tokens-per-request", Some(&example)).unwrap();
    let mut csv = String::from("timestamp,value\n");
    let value_at = |index: usize| -> f64 {
        let wobble = [0.0, 8.0, -5.0, 3.0, -7.0, 6.0][index % 6];
        match index {
            0..400 => 1000.0 + wobble,
            400..430 => 1150.0 + wobble,
            430..440 => 1000.0 + wobble,
            440..450 => 3000.0 + wobble,
            _ => 1000.0 + wobble,
        }
    };
    for index in 0..470 {
        csv.push_str(&format!(
            "{},{}\n",
            1_714_521_600 + index as i64 * 15,
            value_at(index)
        ));
    }
    let mut out = Vec::new();
    let summary = stream(csv.as_bytes(), "test.csv", &mut detector, &mut out).unwrap();
    assert_eq!(summary.skipped, 0);
    let out = String::from_utf8(out).unwrap();
    let alerts = alert_rows(&out);
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert!((440..443).contains(&alerts[0]), "{alerts:?}");
    let scores: Vec<f64> = out
        .lines()
        .skip(1)
        .map(|line| line.split(',').nth(2).unwrap().parse().unwrap())
        .collect();
    assert!(scores.iter().all(|score| (0.0..=1.0).contains(score)));
    assert!(scores[alerts[0]] > 0.999_99, "{}", scores[alerts[0]]);
    // The same history through a detector that also counts falls, with no minimum change,
    // alerts on the 1150 plateau too: the configured settings are the ones used.
    let mut loose = Detector::anomaly(&vigil_core::detector::anomaly::AnomalyConfig {
        min_change: 0.0,
        ..match config::parse(
            &std::fs::read_to_string(&example).unwrap(),
            "vigil.yaml",
            example.parent().unwrap(),
        )
        .unwrap()
        .detectors
        .into_iter()
        .find(|detector| detector.name() == "tokens-per-request")
        {
            Some(DetectorConfig::Anomaly(anomaly)) => anomaly,
            other => panic!("{other:?}"),
        }
    })
    .unwrap();
    let mut out = Vec::new();
    stream(csv.as_bytes(), "test.csv", &mut loose, &mut out).unwrap();
    let loose_alerts = alert_rows(&String::from_utf8(out).unwrap());
    assert!(
        loose_alerts
            .first()
            .is_some_and(|row| (400..430).contains(row)),
        "{loose_alerts:?}"
    );
}

#[test]
fn a_header_with_other_columns_reads_the_one_named_value() {
    // An export with a host column before the value, a gap of an hour, and a bad cell.
    let csv = "Time,host,Value,unit\n\
               1714521600,a,100,ms\n\
               1714521660,a,101,ms\n\
               1714525260,a,n/a,ms\n\
               1714525320,a,99,ms\n";
    let (summary, out) = run_csv("adaptive", csv);
    assert_eq!(summary.rows, 3);
    assert_eq!(summary.skipped, 1);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 5, "{out}");
    assert!(lines[1].starts_with("1714521600,100,"), "{out}");
    assert!(lines[4].starts_with("1714525320,99,"), "{out}");
    assert!(
        lines[3].starts_with("1714525260,n/a,,0,not scored: value `n/a` is not a number"),
        "{out}"
    );
    // Without a column named `value`, the second column is read.
    let (summary, out) = run_csv("adaptive", "when,count\n1714521600,5\n1714521660,6\n");
    assert_eq!((summary.rows, summary.skipped), (2, 0));
    assert!(out.lines().nth(2).unwrap().starts_with("1714521660,6,"));
}
