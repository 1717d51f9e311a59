//! Loading a NAB folder: `data/<category>/<series>.csv` (header `timestamp,value`) and
//! `combined_windows.json` (each series' anomaly windows as pairs of timestamps).
//!
//! Other headers are accepted: the first column holds the timestamps whatever its name, and
//! the values come from the column named `value` (any case) if there is one, else from the
//! second column; extra columns are ignored, and the choice is reported
//! ([`SeriesRows::columns`]). Every row with a good timestamp is kept: a value cell that is
//! not a finite number (`NaN`, `inf`, `abc`, empty or missing) keeps its row, with the value
//! `NaN`, and is listed with its line ([`SeriesRows::bad_values`]); the runner never feeds
//! such a row to the detector and never counts it as an alert. A bad timestamp is a problem:
//! its row cannot be placed, and windows are found by timestamp.
//!
//! Parsing takes text and returns every problem found, each with its file and, for CSV rows,
//! its line; only [`load_corpus`] touches the file system. As NAB's labeler
//! (`CorpusLabel.getWindows`) demands, each window edge must be the timestamp of exactly one
//! row of its file. Timestamps may repeat and may go backwards (exported clocks go back an
//! hour at a daylight-saving change and repeat it): every row is kept in file order, as
//! NAB's scorer keeps it, and each row whose timestamp is earlier than the row before is
//! listed with its line (`clock_went_back`); blank lines are skipped, as pandas skips them.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use super::score::{Labels, WindowRows};
use vigil_core::datetime::parse_timestamp_ms;

/// The windows file at the root of a NAB folder.
pub const WINDOWS_FILE: &str = "combined_windows.json";

/// The folder, under a NAB folder, that holds one folder of CSVs per category.
pub const DATA_FOLDER: &str = "data";

const CSV_HEADER: &str = "timestamp,value";

/// How many problems an error message lists before it only counts the rest.
const MAX_PROBLEMS_SHOWN: usize = 20;

/// A NAB folder, loaded: every series with its labels, ordered by category and file name.
#[derive(Debug, Clone, PartialEq)]
pub struct Corpus {
    /// The series, ordered by category then file name.
    pub series: Vec<LabelledSeries>,
}

/// One series of a NAB folder and its labelled windows.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelledSeries {
    /// The folder under `data/` (`realKnownCause`).
    pub category: String,
    /// The file name (`nyc_taxi.csv`).
    pub file_name: String,
    /// Each row's timestamp, in milliseconds since the Unix epoch, UTC.
    pub timestamps_ms: Vec<i64>,
    /// Each row's value.
    pub values: Vec<f64>,
    /// The windows, as rows.
    pub labels: Labels,
    /// The lines whose timestamp is earlier than the row before (a clock that went back).
    pub clock_went_back: Vec<usize>,
    /// The rows whose value is not a finite number: kept, with the value `NaN`.
    pub bad_values: Vec<BadValue>,
    /// Which columns were read, when the header is not `timestamp,value`.
    pub columns: Option<String>,
}

/// A row whose value cell is not a finite number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadValue {
    /// The line, from 1.
    pub line: usize,
    /// The row, from 0 (blank lines and the header are not rows).
    pub row: usize,
    /// What the cell held, and why it is not a value.
    pub reason: String,
}

impl LabelledSeries {
    /// The key of this series in `combined_windows.json`: `<category>/<file name>`.
    #[must_use]
    pub fn key(&self) -> String {
        format!("{}/{}", self.category, self.file_name)
    }
}

/// One series' rows, as read from its CSV.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SeriesRows {
    /// Each row's timestamp, in milliseconds since the Unix epoch, UTC.
    pub timestamps_ms: Vec<i64>,
    /// Each row's value.
    pub values: Vec<f64>,
    /// The lines whose timestamp is earlier than the row before (a clock that went back):
    /// kept, in file order, and reported.
    pub clock_went_back: Vec<usize>,
    /// The rows whose value is not a finite number: kept, with the value `NaN`.
    pub bad_values: Vec<BadValue>,
    /// Which columns were read, when the header is not `timestamp,value`.
    pub columns: Option<String>,
}

/// Something wrong in a NAB folder, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file, relative to the NAB folder (`data/realTweets/Twitter_volume_FB.csv`).
    pub file: String,
    /// The line, from 1, when the problem is on one line.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(formatter, "{}:{line}: {}", self.file, self.message),
            None => write!(formatter, "{}: {}", self.file, self.message),
        }
    }
}

/// Why a NAB folder could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The path is not a folder.
    #[error("`{}` is not a folder (expected a NAB folder with `{WINDOWS_FILE}` and `{DATA_FOLDER}/`)", path.display())]
    NotAFolder {
        /// The path given.
        path: PathBuf,
    },
    /// A file or folder could not be read.
    #[error("cannot read `{}`", path.display())]
    Read {
        /// What could not be read.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The files were read but are malformed or do not match each other.
    #[error("{}", describe_problems(problems))]
    Invalid {
        /// Every problem found, in file order.
        problems: Vec<Problem>,
    },
}

fn describe_problems(problems: &[Problem]) -> String {
    let mut text = format!("the NAB folder has {} problem(s):", problems.len());
    for problem in problems.iter().take(MAX_PROBLEMS_SHOWN) {
        text.push_str(&format!("\n  {problem}"));
    }
    if problems.len() > MAX_PROBLEMS_SHOWN {
        text.push_str(&format!(
            "\n  ... and {} more",
            problems.len() - MAX_PROBLEMS_SHOWN
        ));
    }
    text
}

/// Reads one series' CSV text. `file` names it in problems.
///
/// # Errors
///
/// Every row whose timestamp is missing or bad, a header with fewer than two columns, or no
/// rows at all. A value that is not a finite number is not a problem (the row is kept and
/// listed in `bad_values`), nor is a timestamp earlier than the row before (the row is kept
/// and its line listed in `clock_went_back`).
pub fn parse_series_csv(file: &str, text: &str) -> Result<SeriesRows, Vec<Problem>> {
    let problem = |line: Option<usize>, message: String| Problem {
        file: file.to_owned(),
        line,
        message,
    };
    let mut lines = text
        .strip_prefix('\u{feff}')
        .unwrap_or(text)
        .lines()
        .enumerate()
        .map(|(line_idx, line)| (line_idx + 1, line));
    let mut rows = SeriesRows::default();
    let value_column = match lines.next() {
        Some((line, header)) => {
            let names: Vec<&str> = header.split(',').map(column_name).collect();
            if names.len() < 2 {
                let message = format!(
                    "expected a header of at least two columns (timestamp, then the values, as `{CSV_HEADER}`), found `{header}`"
                );
                return Err(vec![problem(Some(line), message)]);
            }
            let named_value = names
                .iter()
                .skip(1)
                .position(|name| name.eq_ignore_ascii_case("value"))
                .map(|position| position + 1);
            let value_column = named_value.unwrap_or(1);
            if header != CSV_HEADER {
                let timestamp_name = names.first().copied().unwrap_or_default();
                let value_name = names.get(value_column).copied().unwrap_or_default();
                let why = if named_value.is_some() {
                    "named `value`"
                } else {
                    "no column is named `value`, so the second"
                };
                rows.columns = Some(format!(
                    "header `{header}`: timestamps from column 1 `{timestamp_name}`, values from column {} `{value_name}` ({why})",
                    value_column + 1
                ));
            }
            value_column
        }
        None => {
            return Err(vec![problem(
                None,
                format!("empty file, expected the header `{CSV_HEADER}`"),
            )]);
        }
    };

    let mut problems = Vec::new();
    let mut previous_timestamp: Option<i64> = None;
    for (line, row) in lines {
        if row.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = row.split(',').collect();
        let timestamp_text = fields.first().copied().unwrap_or_default().trim();
        let timestamp_ms = match parse_timestamp_ms(column_name(timestamp_text)) {
            Ok(timestamp_ms) => timestamp_ms,
            Err(error) => {
                problems.push(problem(Some(line), error.to_string()));
                continue;
            }
        };
        let value = match fields.get(value_column).map(|cell| column_name(cell)) {
            None => Err(format!(
                "no value: the row has {} field(s), the values are in column {}",
                fields.len(),
                value_column + 1
            )),
            Some("") => Err("empty value".to_owned()),
            Some(cell) => match cell.parse::<f64>() {
                Ok(value) if value.is_finite() => Ok(value),
                Ok(_) => Err(format!("value `{cell}` is not finite")),
                Err(_) => Err(format!("value `{cell}` is not a number")),
            },
        };
        let value = value.unwrap_or_else(|reason| {
            rows.bad_values.push(BadValue {
                line,
                row: rows.values.len(),
                reason,
            });
            f64::NAN
        });
        if previous_timestamp.is_some_and(|previous_ms| timestamp_ms < previous_ms) {
            rows.clock_went_back.push(line);
        }
        previous_timestamp = Some(timestamp_ms);
        rows.timestamps_ms.push(timestamp_ms);
        rows.values.push(value);
    }
    if problems.is_empty() && rows.timestamps_ms.is_empty() {
        problems.push(problem(None, "no data rows".to_owned()));
    }
    if problems.is_empty() {
        Ok(rows)
    } else {
        Err(problems)
    }
}

/// A header name or cell without surrounding blanks and double quotes.
fn column_name(cell: &str) -> &str {
    let cell = cell.trim();
    cell.strip_prefix('"')
        .and_then(|inner| inner.strip_suffix('"'))
        .unwrap_or(cell)
        .trim()
}

/// The windows of `combined_windows.json`: for each `<category>/<file>.csv`, its windows as
/// pairs of timestamp texts.
pub type WindowsByKey = BTreeMap<String, Vec<[String; 2]>>;

/// Reads the text of `combined_windows.json`.
///
/// # Errors
///
/// When it is not a JSON object mapping names to lists of `[start, end]` string pairs.
pub fn parse_windows_json(text: &str) -> Result<WindowsByKey, Problem> {
    serde_json::from_str(text).map_err(|error| Problem {
        file: WINDOWS_FILE.to_owned(),
        line: Some(error.line()),
        message: format!("expected an object of `[start, end]` timestamp pairs: {error}"),
    })
}

/// Turns a series' windows (timestamp texts, from `combined_windows.json` under `key`) into
/// rows of that series.
///
/// # Errors
///
/// Every window edge that is not a timestamp, or not the timestamp of exactly one row, and
/// windows out of order or overlapping.
pub fn label_series(
    key: &str,
    timestamps_ms: &[i64],
    windows: &[[String; 2]],
) -> Result<Labels, Vec<Problem>> {
    let problem = |message: String| Problem {
        file: WINDOWS_FILE.to_owned(),
        line: None,
        message: format!("`{key}`: {message}"),
    };
    let mut problems = Vec::new();
    let mut window_rows = Vec::with_capacity(windows.len());
    for (window_idx, [start, end]) in windows.iter().enumerate() {
        let mut row_of = |edge: &str, text: &str| match row_of_timestamp(timestamps_ms, text) {
            Ok(row) => Some(row),
            Err(message) => {
                problems.push(problem(format!("window {window_idx} {edge}: {message}")));
                None
            }
        };
        let first_row = row_of("start", start);
        let last_row = row_of("end", end);
        if let (Some(first_row), Some(last_row)) = (first_row, last_row) {
            window_rows.push(WindowRows {
                first_row,
                last_row,
            });
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Labels::new(timestamps_ms.len(), window_rows).map_err(|error| vec![problem(error.to_string())])
}

/// The row whose timestamp is `text`, which must be exactly one row (NAB's labeler rejects a
/// window edge that matches no row or several). Rows are searched in file order, since a
/// clock may go back: NAB's sweeper finds an edge by position too (`timestamps.index`).
fn row_of_timestamp(timestamps_ms: &[i64], text: &str) -> Result<usize, String> {
    let timestamp_ms = parse_timestamp_ms(text).map_err(|error| error.to_string())?;
    let mut matching = timestamps_ms
        .iter()
        .enumerate()
        .filter(|(_, row_ms)| **row_ms == timestamp_ms)
        .map(|(row, _)| row);
    let first = matching.next();
    match (first, 1 + matching.count()) {
        (Some(first), 1) => Ok(first),
        (None, _) => Err(format!(
            "`{text}` is not the timestamp of any row of the file"
        )),
        (Some(_), n_rows) => Err(format!(
            "`{text}` is the timestamp of {n_rows} rows of the file, not one"
        )),
    }
}

/// Loads the NAB folder at `folder`: every CSV under `data/<category>/` and the windows of
/// `combined_windows.json`, which must name exactly those files.
///
/// # Errors
///
/// [`LoadError::NotAFolder`], [`LoadError::Read`] for the first file or folder that cannot be
/// read, and [`LoadError::Invalid`] with every problem in every file otherwise.
pub fn load_corpus(folder: &Path) -> Result<Corpus, LoadError> {
    if !folder.is_dir() {
        return Err(LoadError::NotAFolder {
            path: folder.to_owned(),
        });
    }
    let windows_text = read_text(&folder.join(WINDOWS_FILE))?;
    let mut windows_by_key =
        parse_windows_json(&windows_text).map_err(|problem| LoadError::Invalid {
            problems: vec![problem],
        })?;

    let mut series = Vec::new();
    let mut problems = Vec::new();
    let data_folder = folder.join(DATA_FOLDER);
    for category_path in sorted_entries(&data_folder)? {
        if !category_path.is_dir() {
            continue;
        }
        for csv_path in sorted_entries(&category_path)? {
            if csv_path
                .extension()
                .is_none_or(|extension| extension != "csv")
            {
                continue;
            }
            let (Some(category), Some(file_name)) =
                (file_name_of(&category_path), file_name_of(&csv_path))
            else {
                continue;
            };
            let key = format!("{category}/{file_name}");
            let file = format!("{DATA_FOLDER}/{key}");
            let text = read_text(&csv_path)?;
            let rows = match parse_series_csv(&file, &text) {
                Ok(rows) => rows,
                Err(csv_problems) => {
                    problems.extend(csv_problems);
                    windows_by_key.remove(&key);
                    continue;
                }
            };
            let Some(windows) = windows_by_key.remove(&key) else {
                problems.push(Problem {
                    file,
                    line: None,
                    message: format!("has no entry `{key}` in `{WINDOWS_FILE}`"),
                });
                continue;
            };
            match label_series(&key, &rows.timestamps_ms, &windows) {
                Ok(labels) => series.push(LabelledSeries {
                    category,
                    file_name,
                    timestamps_ms: rows.timestamps_ms,
                    values: rows.values,
                    labels,
                    clock_went_back: rows.clock_went_back,
                    bad_values: rows.bad_values,
                    columns: rows.columns,
                }),
                Err(label_problems) => problems.extend(label_problems),
            }
        }
    }
    for key in windows_by_key.keys() {
        problems.push(Problem {
            file: WINDOWS_FILE.to_owned(),
            line: None,
            message: format!("`{key}` names no CSV under `{DATA_FOLDER}/`"),
        });
    }
    if series.is_empty() && problems.is_empty() {
        problems.push(Problem {
            file: DATA_FOLDER.to_owned(),
            line: None,
            message: "no `<category>/<series>.csv` files".to_owned(),
        });
    }
    if problems.is_empty() {
        Ok(Corpus { series })
    } else {
        Err(LoadError::Invalid { problems })
    }
}

fn read_text(path: &Path) -> Result<String, LoadError> {
    std::fs::read_to_string(path).map_err(|source| LoadError::Read {
        path: path.to_owned(),
        source,
    })
}

/// The entries of a folder, sorted by name so that every run reads them in the same order.
fn sorted_entries(folder: &Path) -> Result<Vec<PathBuf>, LoadError> {
    let read_error = |source| LoadError::Read {
        path: folder.to_owned(),
        source,
    };
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(folder).map_err(read_error)? {
        paths.push(entry.map_err(read_error)?.path());
    }
    paths.sort();
    Ok(paths)
}

fn file_name_of(path: &Path) -> Option<String> {
    path.file_name()?.to_str().map(str::to_owned)
}

#[cfg(test)]
mod tests;
