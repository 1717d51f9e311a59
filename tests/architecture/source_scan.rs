//! The sources, scanned outside their tests: the pure crates' for I/O (file system,
//! environment, network, clocks and the async runtime), and every other crate's for an event
//! handed to the engine anywhere but the one step.

use std::path::{Path, PathBuf};

use super::{EDGE_CRATES, PURE_CRATES, TOOL_CRATES, workspace_root};

/// The one step (`vigil::journal::step`): the only non-test code outside the engine that
/// hands the engine an event, so that the rule "event → engine → answers inline → fed back"
/// is written once for the daemon, the simulator, replay and recovery.
const THE_ONE_STEP: &str = "crates/vigil/src/journal/step.rs";

/// How handing the engine an event reads (`Engine::handle`).
const ENGINE_HANDLE: &str = ".handle(";

/// What a pure crate's non-test source must not mention: file system, environment, network,
/// the wall clock, a monotonic clock read, or the async runtime.
const IO_PATTERNS: [&str; 6] = [
    "std::fs",
    "std::env",
    "std::net",
    "SystemTime",
    "Instant::now",
    "tokio::",
];

/// One line of non-test code that mentions I/O.
#[derive(Debug, PartialEq, Eq)]
struct IoHit {
    file: String,
    line: usize,
    pattern: String,
}

/// The text of `source` with comments removed and the contents of string and character
/// literals blanked, line for line, so that a doc comment or a message mentioning `std::fs`
/// is not a hit and braces inside literals do not confuse the item boundaries.
pub(crate) fn code_only(source: &str) -> Vec<String> {
    #[derive(Clone, Copy, PartialEq)]
    enum State {
        Code,
        LineComment,
        BlockComment(usize),
        Str,
        RawStr(usize),
    }
    let chars: Vec<char> = source.chars().collect();
    let mut out = String::with_capacity(source.len());
    let mut state = State::Code;
    let mut idx = 0;
    while idx < chars.len() {
        let current = chars[idx];
        let next = chars.get(idx + 1).copied();
        if current == '\n' {
            if state == State::LineComment {
                state = State::Code;
            }
            out.push('\n');
            idx += 1;
            continue;
        }
        match state {
            State::Code => {
                let previous_is_ident =
                    idx > 0 && (chars[idx - 1].is_alphanumeric() || chars[idx - 1] == '_');
                if current == '/' && next == Some('/') {
                    state = State::LineComment;
                    idx += 2;
                } else if current == '/' && next == Some('*') {
                    state = State::BlockComment(1);
                    idx += 2;
                } else if current == '"' {
                    out.push('"');
                    state = State::Str;
                    idx += 1;
                } else if (current == 'r' || (current == 'b' && next == Some('r')))
                    && !previous_is_ident
                {
                    // A raw string `r#"..."#` (or `br"..."`), else an identifier.
                    let start = if current == 'b' { idx + 2 } else { idx + 1 };
                    let hashes = chars[start..].iter().take_while(|c| **c == '#').count();
                    if chars.get(start + hashes) == Some(&'"') {
                        out.push('"');
                        state = State::RawStr(hashes);
                        idx = start + hashes + 1;
                    } else {
                        out.push(current);
                        idx += 1;
                    }
                } else if current == '\'' {
                    // A character literal, or else a lifetime or label.
                    if next == Some('\\') {
                        // The escaped character is at idx + 2; the closing quote follows.
                        let close = chars
                            .get(idx + 3..)
                            .and_then(|rest| rest.iter().position(|c| *c == '\''))
                            .map_or(chars.len(), |offset| idx + 3 + offset);
                        out.push_str("' '");
                        idx = close + 1;
                    } else if chars.get(idx + 2) == Some(&'\'') {
                        out.push_str("' '");
                        idx += 3;
                    } else {
                        out.push(current);
                        idx += 1;
                    }
                } else {
                    out.push(current);
                    idx += 1;
                }
            }
            State::LineComment => idx += 1,
            State::BlockComment(depth) => {
                if current == '*' && next == Some('/') {
                    state = if depth == 1 {
                        State::Code
                    } else {
                        State::BlockComment(depth - 1)
                    };
                    idx += 2;
                } else if current == '/' && next == Some('*') {
                    state = State::BlockComment(depth + 1);
                    idx += 2;
                } else {
                    idx += 1;
                }
            }
            State::Str => {
                if current == '\\' {
                    // Keep an escaped newline's line break so line numbers stay right.
                    idx += if next == Some('\n') { 1 } else { 2 };
                } else {
                    if current == '"' {
                        out.push('"');
                        state = State::Code;
                    }
                    idx += 1;
                }
            }
            State::RawStr(hashes) => {
                let closes = current == '"'
                    && chars[idx + 1..]
                        .iter()
                        .take(hashes)
                        .filter(|c| **c == '#')
                        .count()
                        == hashes;
                if closes {
                    out.push('"');
                    state = State::Code;
                    idx += 1 + hashes;
                } else {
                    idx += 1;
                }
            }
        }
    }
    out.split('\n').map(str::to_owned).collect()
}

/// The 0-based index of the last line of the item that starts at `start`: up to the `;` that
/// ends it, or the `}` that closes its first `{`.
fn item_end(lines: &[String], start: usize) -> usize {
    let mut depth = 0usize;
    for (line_idx, line) in lines.iter().enumerate().skip(start) {
        for character in line.chars() {
            match character {
                '{' => depth += 1,
                '}' => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        return line_idx;
                    }
                }
                ';' if depth == 0 => return line_idx,
                _ => {}
            }
        }
    }
    lines.len().saturating_sub(1)
}

/// Where the file of module `name`, declared in `declared_in`, lives (without extension for
/// the folder form): `dir/name` next to `lib.rs`, `main.rs` and `mod.rs`, else `dir/file/name`.
fn module_path(declared_in: &Path, name: &str) -> PathBuf {
    let dir = declared_in.parent().unwrap_or(Path::new(""));
    let stem = declared_in
        .file_stem()
        .and_then(|stem| stem.to_str())
        .unwrap_or("");
    if matches!(stem, "lib" | "main" | "mod") {
        dir.join(name)
    } else {
        dir.join(stem).join(name)
    }
}

/// The non-test code of `files` (path and text), line for line: items under `#[cfg(test)]`
/// blanked, and the files of modules declared under `#[cfg(test)]` left out.
fn non_test_code(files: &[(PathBuf, String)]) -> Vec<(&Path, Vec<String>)> {
    // First pass: the lines of every file with its test-only items blanked, and the paths of
    // test-only module files.
    let mut test_modules: Vec<PathBuf> = Vec::new();
    let mut code: Vec<(&Path, Vec<String>)> = Vec::new();
    for (path, text) in files {
        let mut lines = code_only(text);
        let mut line_idx = 0;
        while line_idx < lines.len() {
            if lines[line_idx].trim() != "#[cfg(test)]" {
                line_idx += 1;
                continue;
            }
            let mut start = line_idx + 1;
            while start < lines.len()
                && (lines[start].trim().is_empty() || lines[start].trim().starts_with("#["))
            {
                start += 1;
            }
            let end = item_end(&lines, start);
            let item = lines[start..=end].join(" ");
            let declaration = item
                .trim()
                .trim_start_matches("pub ")
                .strip_prefix("mod ")
                .and_then(|rest| rest.trim().strip_suffix(';'));
            if let Some(name) = declaration {
                test_modules.push(module_path(path, name.trim()));
            }
            for line in &mut lines[line_idx..=end] {
                line.clear();
            }
            line_idx = end + 1;
        }
        code.push((path, lines));
    }
    code.retain(|(path, _)| {
        !test_modules
            .iter()
            .any(|module| path.with_extension("") == *module || path.starts_with(module))
    });
    code
}

/// Where `files` (path and text) hand the engine an event in non-test code, as
/// `file:line`, outside [`THE_ONE_STEP`].
fn engine_handled_outside_the_step(files: &[(PathBuf, String)]) -> Vec<String> {
    let mut hits = Vec::new();
    for (path, lines) in non_test_code(files) {
        let file = path.strip_prefix(workspace_root()).unwrap_or(path);
        if file == Path::new(THE_ONE_STEP) {
            continue;
        }
        for (line_idx, line) in lines.iter().enumerate() {
            if line.contains(ENGINE_HANDLE) {
                hits.push(format!("{}:{}", file.display(), line_idx + 1));
            }
        }
    }
    hits
}

/// Scans `files` (path and text) for I/O in non-test code: items under `#[cfg(test)]` and
/// the files of modules declared under `#[cfg(test)]` are skipped.
fn scan_for_io(files: &[(PathBuf, String)]) -> Vec<IoHit> {
    let mut hits = Vec::new();
    for (path, lines) in non_test_code(files) {
        for (line_idx, line) in lines.iter().enumerate() {
            let mut patterns: Vec<String> = IO_PATTERNS
                .iter()
                .filter(|pattern| line.contains(**pattern))
                .map(|pattern| (*pattern).to_owned())
                .collect();
            // `use std::{fs, env}` names the same modules without the `std::fs` spelling.
            if let Some(group) = line.split("std::{").nth(1) {
                for module in ["fs", "env", "net"] {
                    let named = group
                        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                        .any(|word| word == module);
                    if named {
                        patterns.push(format!("std::{{{module}}}"));
                    }
                }
            }
            hits.extend(patterns.into_iter().map(|pattern| {
                IoHit {
                    file: path
                        .strip_prefix(workspace_root())
                        .unwrap_or(path)
                        .display()
                        .to_string(),
                    line: line_idx + 1,
                    pattern,
                }
            }));
        }
    }
    hits
}

/// Every `.rs` file under `dir`, sorted, with its text.
pub(crate) fn rust_files(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        for entry in std::fs::read_dir(&folder)
            .unwrap_or_else(|error| panic!("cannot list {}: {error}", folder.display()))
        {
            let path = entry.expect("a folder entry").path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                let text = std::fs::read_to_string(&path)
                    .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()));
                files.push((path, text));
            }
        }
    }
    files.sort();
    files
}

#[test]
fn pure_crates_sources_do_no_io_outside_tests() {
    for crate_name in PURE_CRATES {
        let src = workspace_root().join("crates").join(crate_name).join("src");
        let files = rust_files(&src);
        assert!(
            files.len() > 3,
            "found only {} source files in {}",
            files.len(),
            src.display()
        );
        let hits = scan_for_io(&files);
        assert!(
            hits.is_empty(),
            "{crate_name} does I/O outside its tests:\n  {}",
            hits.iter()
                .map(|hit| format!("{}:{}: {}", hit.file, hit.line, hit.pattern))
                .collect::<Vec<_>>()
                .join("\n  ")
        );
    }
}

#[test]
fn the_source_scan_catches_io_and_skips_tests_comments_and_strings() {
    let lib = r##"//! A pure crate; it never calls std::fs or SystemTime.
mod engine;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod helpers;

pub fn clock() -> u64 {
    let now = std::time::SystemTime::now();
    let message = "std::net in a string } is not code";
    let raw = r#"tokio:: "quoted" in a raw string"#;
    let brace = ('}', '\'');
    /* a block comment naming std::env */
    0
}

#[cfg(test)]
mod inline_tests {
    fn braces() -> char { '{' }
    fn reads() { let _ = std::fs::read("x"); }
}

pub fn after_the_tests() {
    let _ = std::env::var("HOME");
}
"##;
    let engine = "use std::{collections::BTreeMap, fs};\n\
                  pub fn tick() { let _ = tokio::time::Instant::now(); }\n\
                  #[cfg(test)]\nfn only_in_tests() { std::net::TcpListener::bind(\"x\"); }\n";
    let files = vec![
        (PathBuf::from("src/lib.rs"), lib.to_owned()),
        (PathBuf::from("src/engine.rs"), engine.to_owned()),
        (PathBuf::from("src/tests.rs"), "use std::fs;".to_owned()),
        (
            PathBuf::from("src/helpers/mod.rs"),
            "use std::net;".to_owned(),
        ),
        (
            PathBuf::from("src/helpers/deep.rs"),
            "use std::env;".to_owned(),
        ),
    ];
    let found: Vec<(String, usize, String)> = scan_for_io(&files)
        .into_iter()
        .map(|hit| (hit.file, hit.line, hit.pattern))
        .collect();
    let expected: Vec<(String, usize, String)> = [
        ("src/lib.rs", 9, "SystemTime"),
        ("src/lib.rs", 24, "std::env"),
        ("src/engine.rs", 1, "std::{fs}"),
        ("src/engine.rs", 2, "Instant::now"),
        ("src/engine.rs", 2, "tokio::"),
    ]
    .into_iter()
    .map(|(file, line, pattern)| (file.to_owned(), line, pattern.to_owned()))
    .collect();
    assert_eq!(found, expected);
}

#[test]
fn only_the_one_step_hands_the_engine_an_event_outside_tests() {
    let step = workspace_root().join(THE_ONE_STEP);
    let step_text = std::fs::read_to_string(&step)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", step.display()));
    assert!(
        non_test_code(&[(step.clone(), step_text)])
            .iter()
            .flat_map(|(_, lines)| lines)
            .any(|line| line.contains(ENGINE_HANDLE)),
        "{THE_ONE_STEP} no longer hands the engine an event: the rule moved"
    );
    for crate_name in EDGE_CRATES.iter().chain(&TOOL_CRATES) {
        let src = workspace_root().join("crates").join(crate_name).join("src");
        let hits = engine_handled_outside_the_step(&rust_files(&src));
        assert!(
            hits.is_empty(),
            "{crate_name} hands the engine an event outside the one step \
             (call vigil::journal::step or step_with):\n  {}",
            hits.join("\n  ")
        );
    }
}

#[test]
fn the_step_scan_catches_a_driver_that_hands_the_engine_an_event_itself() {
    let step = workspace_root().join(THE_ONE_STEP);
    let src = workspace_root().join("crates/vigil/src");
    let driver = "pub fn drive(engine: &mut Engine) {\n\
                  let _ = engine.handle(&Event::Tick, now);\n\
                  }\n\
                  #[cfg(test)]\n\
                  mod tests { fn by_hand() { engine.handle(&Event::Tick, now); } }\n";
    let files = vec![
        (step, "let commands = engine.handle(&event, at);".to_owned()),
        (src.join("journal/replay.rs"), driver.to_owned()),
    ];
    assert_eq!(
        engine_handled_outside_the_step(&files),
        ["crates/vigil/src/journal/replay.rs:2"]
    );
}
