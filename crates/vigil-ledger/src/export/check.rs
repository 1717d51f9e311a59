//! Checking an export offline, a line at a time, in two passes over the file: the first
//! checks every entry's leaf hash and chain link and computes the tree head (a
//! [`Frontier`]), the second checks every inclusion proof against it. Memory: the longest
//! line (about twice the largest entry: its payload is escaped as a JSON string) and
//! O(log n) hashes, whatever the number of lines.

use std::io::{BufRead, Read as _, Seek, SeekFrom};

use super::{ExportHead, ExportProblem, ExportReport, ExportedEntry, problem};
use crate::hash::{GENESIS_CHAIN_HASH, chain_hash, entry_leaf_hash};
use crate::merkle::{Frontier, verify_inclusion};

/// The longest line an export may have: 1 GiB, far beyond any entry vigil records (pushed
/// events are at most 20 MB), so that a file with no line breaks cannot exhaust memory.
pub const MAX_EXPORT_LINE_BYTES: u64 = 1 << 30;

/// Checks the export that `reader` reads (from its start; it is rewound for the second
/// pass), holding one line at a time. Line numbers count the non-blank lines, as they
/// always have.
///
/// # Errors
///
/// The outer error when the export cannot be read; the inner one is the first line found
/// wrong.
pub fn verify_export_from<R: BufRead + Seek>(
    reader: &mut R,
) -> std::io::Result<Result<ExportReport, ExportProblem>> {
    reader.seek(SeekFrom::Start(0))?;
    let first = match first_pass(reader)? {
        Ok(first) => first,
        Err(problem) => return Ok(Err(problem)),
    };
    reader.seek(SeekFrom::Start(0))?;
    if let Err(problem) = second_pass(reader, &first)? {
        return Ok(Err(problem));
    }
    Ok(Ok(ExportReport {
        n_entries: first.head.tree_size,
        tree_head: first.head.tree_head,
    }))
}

/// What the first pass established: the head line, and the tree head the entries form.
struct FirstPass {
    head: ExportHead,
    tree_head: [u8; 32],
}

/// Reads the non-blank lines of an export one at a time.
struct Lines<'a, R> {
    reader: &'a mut R,
    buffer: Vec<u8>,
    /// Non-blank lines read so far: the number of the current one.
    line_no: usize,
}

/// One non-blank line: its text, or why it has none.
enum Line {
    Text(String),
    TooLong,
    NotUtf8,
}

impl<'a, R: BufRead> Lines<'a, R> {
    fn new(reader: &'a mut R) -> Self {
        Lines {
            reader,
            buffer: Vec::new(),
            line_no: 0,
        }
    }

    /// The next non-blank line, `None` at the end.
    fn next_line(&mut self) -> std::io::Result<Option<Line>> {
        // Bounded by the file: every turn reads at least one byte, or ends.
        loop {
            self.buffer.clear();
            let n_read = (&mut *self.reader)
                .take(MAX_EXPORT_LINE_BYTES + 1)
                .read_until(b'\n', &mut self.buffer)?;
            if n_read == 0 {
                return Ok(None);
            }
            let line = if self.buffer.len() as u64 > MAX_EXPORT_LINE_BYTES {
                Line::TooLong
            } else {
                match std::str::from_utf8(&self.buffer) {
                    Ok(text) if text.trim().is_empty() => continue,
                    Ok(text) => Line::Text(text.to_owned()),
                    Err(_) => Line::NotUtf8,
                }
            };
            self.line_no += 1;
            return Ok(Some(line));
        }
    }
}

impl Line {
    /// The line as `T`, or why it is not one (`what` names `T` in the message).
    fn parse<T: serde::de::DeserializeOwned>(&self, what: &str) -> Result<T, String> {
        match self {
            Line::Text(text) => {
                serde_json::from_str(text).map_err(|error| format!("{what}: {error}"))
            }
            Line::TooLong => Err(format!(
                "{what}: the line is longer than {MAX_EXPORT_LINE_BYTES} bytes"
            )),
            Line::NotUtf8 => Err(format!("{what}: the line is not UTF-8 text")),
        }
    }
}

/// The running state of the first pass over the entry lines.
struct Chain {
    n_entries: u64,
    previous_chain: [u8; 32],
    tree: Frontier,
}

/// Checks the entry line `line`, number `line_no`, as the next entry of `chain`.
fn check_entry(line: &Line, line_no: usize, chain: &mut Chain) -> Result<(), ExportProblem> {
    let entry: ExportedEntry = line
        .parse("not an entry")
        .map_err(|reason| problem(line_no, reason))?;
    let expected_seq = chain.n_entries;
    if entry.seq != expected_seq {
        return Err(problem(
            line_no,
            format!(
                "entry {} where entry {expected_seq} should be: entries were removed, reordered or inserted",
                entry.seq
            ),
        ));
    }
    let leaf = leaf_of(&entry);
    if hex::encode(leaf) != entry.leaf_hash {
        return Err(problem(
            line_no,
            format!(
                "entry {} was modified: its leaf hash does not match its columns",
                entry.seq
            ),
        ));
    }
    let chained = chain_hash(&chain.previous_chain, &leaf);
    if hex::encode(chained) != entry.chain_hash {
        return Err(problem(
            line_no,
            format!("the chain breaks at entry {}", entry.seq),
        ));
    }
    chain.previous_chain = chained;
    chain.tree.push(leaf);
    chain.n_entries += 1;
    Ok(())
}

/// The leaf hash of an exported entry's columns.
fn leaf_of(entry: &ExportedEntry) -> [u8; 32] {
    entry_leaf_hash(
        entry.seq,
        entry.at_ms,
        &entry.kind,
        entry.incident_id.as_deref(),
        &entry.payload,
    )
}

/// Checks every entry line's hashes and links, then the head line against them.
fn first_pass<R: BufRead>(reader: &mut R) -> std::io::Result<Result<FirstPass, ExportProblem>> {
    let mut lines = Lines::new(reader);
    let mut chain = Chain {
        n_entries: 0,
        previous_chain: GENESIS_CHAIN_HASH,
        tree: Frontier::new(),
    };
    let mut first_problem: Option<ExportProblem> = None;
    // The line read last: an entry once another follows it, the head at the end.
    let mut held: Option<Line> = None;
    while let Some(line) = lines.next_line()? {
        if let Some(entry_line) = held.replace(line)
            && first_problem.is_none()
        {
            // The entry before the current line, which is number `line_no`.
            let entry_line_no = lines.line_no - 1;
            first_problem = check_entry(&entry_line, entry_line_no, &mut chain).err();
        }
    }
    let n_lines = lines.line_no;
    let Some(head_line) = held else {
        return Ok(Err(problem(1, "the export is empty: not even a head line")));
    };
    // The head line is judged first, as it always was, then the entries.
    let head: ExportHead = match head_line.parse("not the head line") {
        Ok(head) => head,
        Err(reason) => return Ok(Err(problem(n_lines, reason))),
    };
    if let Some(problem) = first_problem {
        return Ok(Err(problem));
    }
    if head.tree_size != chain.n_entries {
        return Ok(Err(problem(
            n_lines,
            format!(
                "the head says {} entries, the export holds {}",
                head.tree_size, chain.n_entries
            ),
        )));
    }
    if hex::encode(chain.previous_chain) != head.chain_head {
        return Ok(Err(problem(
            n_lines,
            "the chain head does not match the last entry",
        )));
    }
    let tree_head = chain.tree.root();
    if hex::encode(tree_head) != head.tree_head {
        return Ok(Err(problem(
            n_lines,
            "the tree head does not match the entries",
        )));
    }
    Ok(Ok(FirstPass { head, tree_head }))
}

/// Checks every entry's inclusion proof against the tree head of the first pass.
fn second_pass<R: BufRead>(
    reader: &mut R,
    first: &FirstPass,
) -> std::io::Result<Result<(), ExportProblem>> {
    let mut lines = Lines::new(reader);
    for seq in 0..first.head.tree_size {
        let Some(line) = lines.next_line()? else {
            return Ok(Err(problem(
                lines.line_no + 1,
                "the export changed while it was checked: lines are missing",
            )));
        };
        let line_no = lines.line_no;
        let entry = match line.parse::<ExportedEntry>("not an entry") {
            Ok(entry) if entry.seq == seq => entry,
            Ok(_) | Err(_) => {
                return Ok(Err(problem(
                    line_no,
                    "the export changed while it was checked",
                )));
            }
        };
        let components: Vec<Vec<u8>> = entry
            .inclusion
            .iter()
            .map(|hash| hex::decode(hash).unwrap_or_default())
            .collect();
        let components: Vec<&[u8]> = components.iter().map(Vec::as_slice).collect();
        let leaf = leaf_of(&entry);
        if let Err(error) = verify_inclusion(
            entry.seq,
            first.head.tree_size,
            &leaf,
            &components,
            &first.tree_head,
        ) {
            return Ok(Err(problem(
                line_no,
                format!("entry {}: its inclusion proof fails: {error}", entry.seq),
            )));
        }
    }
    Ok(Ok(()))
}
