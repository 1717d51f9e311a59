//! Reading NAB's CSVs and windows from text, and a whole folder from a temporary directory.

use std::path::PathBuf;

use super::*;

const FILE: &str = "data/test/series.csv";

/// 2014-04-01 00:00:00 UTC, in milliseconds.
const APRIL_FIRST_MS: i64 = 1_396_310_400_000;
const FIVE_MINUTES_MS: i64 = 300_000;

#[test]
fn reads_rows_and_skips_blank_lines() {
    let text = "\u{feff}timestamp,value\r\n2014-04-01 00:00:00,1.5\r\n\n2014-04-01 00:05:00,-2\n2014-04-01 00:05:00,3e2\n";
    let rows = parse_series_csv(FILE, text).unwrap();
    assert_eq!(
        rows.timestamps_ms,
        [
            APRIL_FIRST_MS,
            APRIL_FIRST_MS + FIVE_MINUTES_MS,
            APRIL_FIRST_MS + FIVE_MINUTES_MS
        ]
    );
    assert_eq!(rows.values, [1.5, -2.0, 300.0]);
}

#[test]
fn reports_every_bad_timestamp_with_its_line() {
    let text = "timestamp,value
2014-04-01 00:00:00,1
2014-04-31 00:15:00,4
yesterday,5
,6
2014-04-01 00:30:00,5
";
    let problems = parse_series_csv(FILE, text).unwrap_err();
    let rendered: Vec<String> = problems.iter().map(ToString::to_string).collect();
    assert_eq!(
        rendered,
        [
            "data/test/series.csv:3: bad timestamp `2014-04-31 00:15:00`: day out of range for its month",
            "data/test/series.csv:4: bad timestamp `yesterday`: expected `YYYY-MM-DD HH:MM:SS` with an optional fraction of a second",
            "data/test/series.csv:5: bad timestamp ``: expected `YYYY-MM-DD HH:MM:SS` with an optional fraction of a second",
        ]
    );
}

#[test]
fn keeps_every_row_whose_value_is_not_a_finite_number_and_says_where() {
    // Regression: a NaN, `inf` or non-numeric cell used to make the whole folder a load
    // error; now the row is kept (value NaN) and listed with its line.
    let text = "timestamp,value
2014-04-01 00:00:00,1
2014-04-01 00:05:00
2014-04-01 00:10:00,2,3
2014-04-01 00:15:00,abc
2014-04-01 00:20:00,inf
2014-04-01 00:25:00,NaN
2014-04-01 00:30:00,
2014-04-01 00:35:00, 7.5 
2014-04-01 00:40:00,-infinity
";
    let rows = parse_series_csv(FILE, text).unwrap();
    assert_eq!(rows.timestamps_ms.len(), 9);
    let finite: Vec<Option<f64>> = rows
        .values
        .iter()
        .map(|value| value.is_finite().then_some(*value))
        .collect();
    assert_eq!(
        finite,
        [
            Some(1.0),
            None,
            Some(2.0),
            None,
            None,
            None,
            None,
            Some(7.5),
            None
        ]
    );
    let bad: Vec<(usize, usize, &str)> = rows
        .bad_values
        .iter()
        .map(|bad| (bad.line, bad.row, bad.reason.as_str()))
        .collect();
    assert_eq!(
        bad,
        [
            (
                3,
                1,
                "no value: the row has 1 field(s), the values are in column 2"
            ),
            (5, 3, "value `abc` is not a number"),
            (6, 4, "value `inf` is not finite"),
            (7, 5, "value `NaN` is not finite"),
            (8, 6, "empty value"),
            (10, 8, "value `-infinity` is not finite"),
        ]
    );
    assert_eq!(rows.columns, None);
}

#[test]
fn other_headers_take_the_first_column_as_time_and_value_by_name_or_position() {
    let cases = [
        (
            "time,count\n2014-04-01 00:00:00,3\n",
            "header `time,count`: timestamps from column 1 `time`, values from column 2 `count` (no column is named `value`, so the second)",
        ),
        (
            "Date,Value\n2014-04-01 00:00:00,3\n",
            "header `Date,Value`: timestamps from column 1 `Date`, values from column 2 `Value` (named `value`)",
        ),
        (
            "\"timestamp\",host,\"value\",note\n2014-04-01 00:00:00,a,3,x\n",
            "header `\"timestamp\",host,\"value\",note`: timestamps from column 1 `timestamp`, values from column 3 `value` (named `value`)",
        ),
    ];
    for (text, expected) in cases {
        let rows = parse_series_csv(FILE, text).unwrap();
        assert_eq!(rows.values, [3.0], "{text:?}");
        assert_eq!(rows.columns.as_deref(), Some(expected));
    }
}

#[test]
fn reports_a_header_of_one_column_or_no_rows() {
    let cases = [
        (
            "",
            "data/test/series.csv: empty file, expected the header `timestamp,value`",
        ),
        (
            "timestamp\n",
            "data/test/series.csv:1: expected a header of at least two columns (timestamp, then the values, as `timestamp,value`), found `timestamp`",
        ),
        ("timestamp,value\n\n", "data/test/series.csv: no data rows"),
    ];
    for (text, expected) in cases {
        let problems = parse_series_csv(FILE, text).unwrap_err();
        assert_eq!(problems.len(), 1, "{text:?}");
        assert_eq!(problems[0].to_string(), expected);
    }
}

#[test]
fn gaps_and_repeated_timestamps_are_kept_as_they_are() {
    // A day missing between two rows, then the same time twice.
    let text = "timestamp,value
2014-04-01 00:00:00,1
2014-04-03 00:00:00,2
2014-04-03 00:00:00,3
";
    let rows = parse_series_csv(FILE, text).unwrap();
    let day_ms = 86_400_000;
    assert_eq!(
        rows.timestamps_ms,
        [
            APRIL_FIRST_MS,
            APRIL_FIRST_MS + 2 * day_ms,
            APRIL_FIRST_MS + 2 * day_ms
        ]
    );
    assert!(rows.clock_went_back.is_empty());
}

#[test]
fn windows_become_rows_when_their_edges_are_rows() {
    // Rows every five minutes from 00:00 to 00:45, with 00:20 twice.
    let minutes = [0, 5, 10, 15, 20, 20, 25, 30, 35, 40, 45];
    let timestamps_ms: Vec<i64> = minutes
        .iter()
        .map(|minute| APRIL_FIRST_MS + minute * 60_000)
        .collect();
    let window = |start: &str, end: &str| [start.to_owned(), end.to_owned()];

    let labels = label_series(
        "test/series.csv",
        &timestamps_ms,
        &[
            window("2014-04-01 00:05:00.000000", "2014-04-01 00:15:00.000000"),
            window("2014-04-01 00:25:00.000000", "2014-04-01 00:45:00.000000"),
        ],
    )
    .unwrap();
    assert_eq!(
        labels.windows(),
        [
            WindowRows {
                first_row: 1,
                last_row: 3
            },
            WindowRows {
                first_row: 6,
                last_row: 10
            }
        ]
    );

    let cases = [
        (
            window("2014-04-01 00:07:00", "2014-04-01 00:15:00"),
            "combined_windows.json: `test/series.csv`: window 0 start: `2014-04-01 00:07:00` is not the timestamp of any row of the file",
        ),
        (
            window("2014-04-01 00:05:00", "2014-04-01 00:20:00"),
            "combined_windows.json: `test/series.csv`: window 0 end: `2014-04-01 00:20:00` is the timestamp of 2 rows of the file, not one",
        ),
        (
            window("2014-04-01 00:05:00", "yesterday"),
            "combined_windows.json: `test/series.csv`: window 0 end: bad timestamp `yesterday`: expected `YYYY-MM-DD HH:MM:SS` with an optional fraction of a second",
        ),
        (
            window("2014-04-01 00:15:00", "2014-04-01 00:05:00"),
            "combined_windows.json: `test/series.csv`: window 0 ends (row 1) before it starts (row 3)",
        ),
    ];
    for (bad_window, expected) in cases {
        let problems = label_series("test/series.csv", &timestamps_ms, &[bad_window]).unwrap_err();
        let rendered: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(rendered, [expected]);
    }
}

#[test]
fn windows_json_must_be_pairs_of_strings() {
    let windows = parse_windows_json(r#"{"a/x.csv": [], "b/y.csv": [["s", "e"]]}"#).unwrap();
    assert_eq!(windows.len(), 2);
    assert_eq!(windows["b/y.csv"], [["s".to_owned(), "e".to_owned()]]);

    let problem = parse_windows_json("{\n \"a/x.csv\": [[\"s\", \"e\", \"f\"]]\n}").unwrap_err();
    assert_eq!(
        (problem.file.as_str(), problem.line),
        (WINDOWS_FILE, Some(2))
    );
}

/// A NAB folder under the system's temporary directory, removed when dropped.
struct TempFolder(PathBuf);

impl TempFolder {
    fn new(name: &str) -> TempFolder {
        let path = std::env::temp_dir().join(format!("vigil-eval-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempFolder(path)
    }

    fn write(&self, relative_path: &str, text: &str) {
        let path = self.0.join(relative_path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
}

impl Drop for TempFolder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const GOOD_CSV: &str = "timestamp,value
2014-04-01 00:00:00,1
2014-04-01 00:05:00,2
2014-04-01 00:10:00,3
2014-04-01 00:15:00,4
";

#[test]
fn loads_a_folder() {
    let folder = TempFolder::new("loads");
    folder.write("data/realThings/b.csv", GOOD_CSV);
    folder.write("data/realThings/a.csv", GOOD_CSV);
    folder.write("data/realThings/README.md", "not a series");
    folder.write("data/artificial/c.csv", GOOD_CSV);
    folder.write(
        WINDOWS_FILE,
        r#"{
            "realThings/a.csv": [["2014-04-01 00:05:00.000000", "2014-04-01 00:10:00.000000"]],
            "realThings/b.csv": [],
            "artificial/c.csv": []
        }"#,
    );

    let corpus = load_corpus(&folder.0).unwrap();
    let keys: Vec<String> = corpus.series.iter().map(LabelledSeries::key).collect();
    assert_eq!(
        keys,
        ["artificial/c.csv", "realThings/a.csv", "realThings/b.csv"]
    );
    let a = &corpus.series[1];
    assert_eq!(a.values, [1.0, 2.0, 3.0, 4.0]);
    assert_eq!(
        a.labels.windows(),
        [WindowRows {
            first_row: 1,
            last_row: 2
        }]
    );
}

#[test]
fn a_bad_row_in_a_folder_is_reported_with_its_file_and_line() {
    let folder = TempFolder::new("bad-row");
    folder.write("data/realThings/a.csv", GOOD_CSV);
    folder.write(
        "data/realThings/b.csv",
        "timestamp,value\n2014-04-01 00:00:00,1\n2014-04-01 00:0x:00,oops\n",
    );
    folder.write("data/realThings/c.csv", GOOD_CSV);
    folder.write(
        WINDOWS_FILE,
        r#"{"realThings/a.csv": [], "realThings/b.csv": [], "realThings/gone.csv": []}"#,
    );

    let error = load_corpus(&folder.0).unwrap_err();
    let LoadError::Invalid { problems } = &error else {
        panic!("expected an invalid folder, got {error}");
    };
    let rendered: Vec<String> = problems.iter().map(ToString::to_string).collect();
    assert_eq!(
        rendered,
        [
            "data/realThings/b.csv:3: bad timestamp `2014-04-01 00:0x:00`: expected `YYYY-MM-DD HH:MM:SS` with an optional fraction of a second",
            "data/realThings/c.csv: has no entry `realThings/c.csv` in `combined_windows.json`",
            "combined_windows.json: `realThings/gone.csv` names no CSV under `data/`",
        ]
    );
    assert!(
        error
            .to_string()
            .starts_with("the NAB folder has 3 problem(s):\n  data/realThings/b.csv:3: ")
    );
}

#[test]
fn a_missing_folder_or_windows_file_is_reported() {
    let folder = TempFolder::new("missing");
    let missing = folder.0.join("nope");
    assert!(
        matches!(load_corpus(&missing), Err(LoadError::NotAFolder { path }) if path == missing)
    );

    let error = load_corpus(&folder.0).unwrap_err();
    assert!(
        matches!(&error, LoadError::Read { path, .. } if path.ends_with(WINDOWS_FILE)),
        "{error}"
    );
}

#[test]
fn a_clock_that_goes_back_keeps_every_row_and_says_where() {
    // A daylight-saving change in an export: an hour repeated after the clock went back.
    let text = "timestamp,value
2014-11-02 01:00:00,1
2014-11-02 01:30:00,2
2014-11-02 01:59:00,3
2014-11-02 01:00:30,4
2014-11-02 01:30:30,5
2014-11-02 02:00:00,6
";
    let rows = parse_series_csv(FILE, text).unwrap();
    assert_eq!(rows.values, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    assert_eq!(rows.clock_went_back, [5]);
    // A window edge is found by position, in file order.
    let windows = [[
        "2014-11-02 01:30:30.000000".to_owned(),
        "2014-11-02 02:00:00.000000".to_owned(),
    ]];
    let labels = label_series("test/series.csv", &rows.timestamps_ms, &windows).unwrap();
    assert_eq!(
        labels
            .windows()
            .first()
            .map(|window| (window.first_row, window.last_row)),
        Some((4, 5))
    );
}
