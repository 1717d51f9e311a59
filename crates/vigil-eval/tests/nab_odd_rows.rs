//! `vigil-eval nab` on small NAB-shaped folders whose rows are odd: values that are not
//! numbers, repeated and backward timestamps, gaps, other headers. Every row must get an
//! output row, the odd ones must never alert, and each oddity must be reported with its file
//! and line.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "tests fail loudly by design"
)]

use std::path::{Path, PathBuf};
use std::process::Command;

use vigil_core::detector::adaptive::{AdaptiveConfig, AdaptiveDetector};
use vigil_eval::nab::cv::AdaptiveStream;
use vigil_eval::nab::data::load_corpus;
use vigil_eval::nab::run::{RowOutput, run_corpus};

/// A folder under the system's temporary directory, removed when dropped.
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

/// `n` rows five minutes apart from 2014-04-01, with a level of 10 and a wiggle, and a jump
/// to 60 from row `jump` on.
fn rows(n: usize, jump: usize) -> Vec<(String, String)> {
    (0..n)
        .map(|row| {
            let minutes = row * 5;
            let timestamp = format!(
                "2014-04-{:02} {:02}:{:02}:00",
                1 + minutes / 1440,
                minutes % 1440 / 60,
                minutes % 60
            );
            let level = if row >= jump { 60.0 } else { 10.0 };
            let value = level + (row % 7) as f64 * 0.3;
            (timestamp, format!("{value}"))
        })
        .collect()
}

fn csv(header: &str, rows: &[(String, String)]) -> String {
    let mut text = format!("{header}\n");
    for (timestamp, value) in rows {
        text.push_str(&format!("{timestamp},{value}\n"));
    }
    text
}

/// A folder with one series full of odd rows and one with another header and a gap.
fn odd_folder(name: &str) -> TempFolder {
    let folder = TempFolder::new(name);
    let mut odd = rows(400, 300);
    // Lines are rows + 2 (the header is line 1).
    odd[100].1 = "NaN".to_owned(); // line 102
    odd[120].1 = "inf".to_owned(); // line 122
    odd[140].1 = "abc".to_owned(); // line 142
    odd[160].1 = String::new(); // line 162
    odd[300].1 = "NaN".to_owned(); // line 302, inside the window
    // A repeated timestamp and one that goes back ten minutes.
    odd[200].0 = odd[199].0.clone(); // line 202
    odd[250].0 = odd[248].0.clone(); // line 252
    folder.write("data/realOdd/odd.csv", &csv("timestamp,value", &odd));

    let mut gappy = rows(300, 250);
    // A gap of a day: every row from 150 on moves a day later.
    for row in &mut gappy[150..] {
        let day: usize = row.0[8..10].parse().unwrap();
        row.0 = format!("{}{:02}{}", &row.0[..8], day + 1, &row.0[10..]);
    }
    folder.write("data/realOther/counts.csv", &csv("Date,count", &gappy));
    folder.write(
        "combined_windows.json",
        &format!(
            r#"{{"realOdd/odd.csv": [["{}.000000", "{}.000000"]], "realOther/counts.csv": [["{}.000000", "{}.000000"]]}}"#,
            odd[295].0, odd[330].0, gappy[245].0, gappy[270].0
        ),
    );
    folder
}

#[test]
fn every_row_gets_an_output_and_odd_values_never_alert() {
    let folder = odd_folder("nab-odd-lib");
    let corpus = load_corpus(&folder.0).unwrap();
    let odd = corpus
        .series
        .iter()
        .find(|series| series.file_name == "odd.csv")
        .unwrap();
    let bad_lines: Vec<usize> = odd.bad_values.iter().map(|bad| bad.line).collect();
    assert_eq!(bad_lines, [102, 122, 142, 162, 302]);
    assert_eq!(odd.clock_went_back, [252]);
    let other = corpus
        .series
        .iter()
        .find(|series| series.file_name == "counts.csv")
        .unwrap();
    assert!(
        other
            .columns
            .as_deref()
            .unwrap()
            .contains("column 2 `count`")
    );

    let report = run_corpus(&corpus, "adaptive", || {
        Ok(AdaptiveStream(AdaptiveDetector::new(
            AdaptiveConfig::default(),
        )))
    })
    .unwrap();
    for (series, result) in corpus.series.iter().zip(&report.series) {
        assert_eq!(
            result.rows.len(),
            series.values.len(),
            "{}",
            series.file_name
        );
        for (row, output) in result.rows.iter().enumerate() {
            let finite = series.values[row].is_finite();
            assert_eq!(
                matches!(output, RowOutput::Scored(_)),
                finite,
                "{} row {row}",
                series.file_name
            );
        }
    }
    // The jump is found in both series despite the odd rows and the gap.
    assert!(
        report
            .series
            .iter()
            .all(|result| result.scores[0].n_windows_detected == 1)
    );
}

fn run_nab(folder: &Path) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_vigil-eval"))
        .arg("nab")
        .arg(folder)
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

#[test]
fn the_command_reports_each_odd_row_with_its_file_and_line() {
    let folder = odd_folder("nab-odd-cli");
    let (success, stdout, stderr) = run_nab(&folder.0);
    assert!(success, "{stderr}");
    assert!(stdout.contains("NAB: 2 series, 2 windows"), "{stdout}");
    for expected in [
        "realOdd/odd.csv:102: value `NaN` is not finite; the row is kept",
        "realOdd/odd.csv:122: value `inf` is not finite; the row is kept",
        "realOdd/odd.csv:142: value `abc` is not a number; the row is kept",
        "realOdd/odd.csv:162: empty value; the row is kept",
        "realOdd/odd.csv:302: value `NaN` is not finite; the row is kept",
        "realOdd/odd.csv: the clock goes back at 1 line(s), first at line 252",
        "realOther/counts.csv: header `Date,count`: timestamps from column 1 `Date`, values from column 2 `count`",
    ] {
        assert!(
            stderr.contains(expected),
            "missing {expected:?} in:\n{stderr}"
        );
    }
}
