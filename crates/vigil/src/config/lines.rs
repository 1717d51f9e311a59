//! Maps key paths (`sources[0].url`) to line numbers in block-style YAML.
//!
//! serde reports a line only for errors it meets while parsing; the semantic checks of the
//! second validation stage know just a key path. This index gives those problems a line too.
//! It understands block mappings, block sequences (indented or not) and block scalars; a path
//! inside flow style (`{a: 1}`) simply has no line.

use std::collections::BTreeMap;

#[derive(Debug)]
struct Frame {
    column: usize,
    segment: Segment,
    n_items: usize,
}

#[derive(Debug)]
enum Segment {
    Key(String),
    Index(usize),
}

/// Key path to 1-based line.
#[derive(Debug, Default)]
pub struct LineIndex {
    lines: BTreeMap<String, usize>,
}

impl LineIndex {
    /// Indexes `text`.
    pub fn new(text: &str) -> Self {
        let mut lines = BTreeMap::new();
        let mut stack: Vec<Frame> = Vec::new();
        let mut block_scalar_column: Option<usize> = None;
        // Items of a sequence at the top level (a file that is a list, like a tokens file).
        let mut n_root_items = 0;
        for (idx, raw) in text.lines().enumerate() {
            let line_no = idx + 1;
            let content = raw.trim_start_matches(' ');
            let mut column = raw.len() - content.len();
            if content.trim().is_empty() || content.starts_with('#') {
                continue;
            }
            if let Some(owner) = block_scalar_column {
                if column > owner {
                    continue;
                }
                block_scalar_column = None;
            }
            if content == "---" || content.starts_with("--- ") {
                stack.clear();
                continue;
            }
            let mut rest = content;
            // Each `- ` opens a sequence item one level deeper.
            while let Some(after) = rest
                .strip_prefix("- ")
                .or_else(|| (rest == "-").then_some(""))
            {
                while stack.last().is_some_and(|frame| {
                    frame.column > column
                        || (frame.column == column && matches!(frame.segment, Segment::Index(_)))
                }) {
                    stack.pop();
                }
                let index = match stack.last_mut() {
                    Some(parent) => {
                        parent.n_items += 1;
                        parent.n_items - 1
                    }
                    None => {
                        n_root_items += 1;
                        n_root_items - 1
                    }
                };
                stack.push(Frame {
                    column,
                    segment: Segment::Index(index),
                    n_items: 0,
                });
                lines.entry(path_of(&stack)).or_insert(line_no);
                let trimmed = after.trim_start_matches(' ');
                column += rest.len() - trimmed.len();
                rest = trimmed;
            }
            let Some((key, value)) = split_key(rest) else {
                continue;
            };
            while stack.last().is_some_and(|frame| frame.column >= column) {
                stack.pop();
            }
            stack.push(Frame {
                column,
                segment: Segment::Key(key),
                n_items: 0,
            });
            lines.entry(path_of(&stack)).or_insert(line_no);
            let value = value.split(" #").next().unwrap_or("").trim();
            if value.starts_with('|') || value.starts_with('>') {
                block_scalar_column = Some(column);
            }
        }
        LineIndex { lines }
    }

    /// The line of `path`, or of its closest indexed ancestor.
    pub fn line_of(&self, path: &str) -> Option<usize> {
        let mut current = path;
        loop {
            if let Some(line) = self.lines.get(current) {
                return Some(*line);
            }
            let cut = current.rfind(['.', '['])?;
            current = current.get(..cut)?;
        }
    }
}

fn path_of(stack: &[Frame]) -> String {
    let mut path = String::new();
    for frame in stack {
        match &frame.segment {
            Segment::Key(key) => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
            }
            Segment::Index(index) => path.push_str(&format!("[{index}]")),
        }
    }
    path
}

/// Splits `key: value` (the key possibly quoted); `None` when the line is not a mapping entry.
fn split_key(text: &str) -> Option<(String, &str)> {
    if let Some(quote) = text.chars().next().filter(|ch| *ch == '"' || *ch == '\'') {
        let inner = text.get(1..)?;
        let end = inner.find(quote)?;
        let key = inner.get(..end)?.to_owned();
        let after = inner.get(end + 1..)?.trim_start_matches(' ');
        let value = after.strip_prefix(':')?;
        return Some((key, value));
    }
    if text.starts_with(['{', '[']) {
        return None;
    }
    let end = text
        .find(": ")
        .or_else(|| text.strip_suffix(':').map(str::len))?;
    let key = text.get(..end)?.trim_end().to_owned();
    let value = text.get(end + 1..).unwrap_or("");
    Some((key, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    const YAML: &str = r#"# comment
mode: autonomous
sources:
  - name: gateway
    url: http://127.0.0.1:4000/metrics/
    admin:
      master_key: { env: KEY }
  - name: other
    "quoted key": 1
detectors:
- name: spike
  description: |
    text: that looks like a key
    - and a list
  metric: m
"#;

    #[test]
    fn finds_lines_of_nested_keys_and_items() {
        let index = LineIndex::new(YAML);
        assert_eq!(index.line_of("mode"), Some(2));
        assert_eq!(index.line_of("sources[0]"), Some(4));
        assert_eq!(index.line_of("sources[0].url"), Some(5));
        assert_eq!(index.line_of("sources[0].admin.master_key"), Some(7));
        assert_eq!(index.line_of("sources[1].name"), Some(8));
        assert_eq!(index.line_of("sources[1].quoted key"), Some(9));
        assert_eq!(index.line_of("detectors[0].name"), Some(11));
        assert_eq!(index.line_of("detectors[0].metric"), Some(15));
    }

    #[test]
    fn falls_back_to_the_closest_ancestor() {
        let index = LineIndex::new(YAML);
        assert_eq!(index.line_of("sources[0].admin.master_key.env"), Some(7));
        assert_eq!(index.line_of("sources[1].missing"), Some(8));
        assert_eq!(index.line_of("nowhere"), None);
    }
}
