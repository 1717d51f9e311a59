//! vigil's tamper-evident ledger: an append-only, hash-linked log of JSON entries, stored in
//! SQLite (the default) or PostgreSQL. This is the only crate that knows SQL.
//!
//! # Entries
//!
//! Every decision vigil takes is appended as an [`Entry`]: a `seq` (0, 1, 2, ... without
//! gaps), a time `at_ms` (milliseconds since the Unix epoch), an [`EntryKind`], an optional
//! incident id and a JSON payload, stored as its [`canonical_json`] text. Blobs too large for
//! an entry are stored beside the log under their SHA-256 ([`Ledger::put_blob`]) and referred
//! to by that hash from a payload.
//!
//! A payload refers to a blob by a field whose name ends in `_blob` and whose value is the
//! blob's hash (`"policies_blob":"9f2c…"`). [`Ledger::verify`] follows that convention: every
//! blob referred to must be stored and still have its hash, or the first entry referring to a
//! missing or changed one is reported ([`ProblemReason::MissingBlob`],
//! [`ProblemReason::CorruptBlob`]). So the recorded config, runbooks, policies and HTTP
//! exchanges are as tamper-evident as the entries that name them.
//!
//! # Hashes
//!
//! For the entry with sequence number `seq`:
//!
//! - `entry_bytes` is the UTF-8 text
//!   `{"at_ms":<i64>,"incident_id":<JSON string or null>,"kind":"<kind>","payload":<payload>,"seq":<u64>}`,
//!   that is the canonical JSON of the entry, where `<payload>` is the stored canonical
//!   payload text inserted verbatim (so verification never re-canonicalizes a payload) and
//!   `<kind>` is `session`, `event` or `command`. See [`hash::entry_bytes`].
//! - `leaf_hash = SHA-256(0x00 || entry_bytes)`: the leaf hash of RFC 6962 (Certificate
//!   Transparency), so that a Merkle tree can be built over the same leaves later.
//! - `chain_hash[seq] = SHA-256(chain_hash[seq - 1] || leaf_hash[seq])`, with
//!   `chain_hash[-1]` = 32 zero bytes ([`hash::GENESIS_CHAIN_HASH`]).
//!
//! Canonical JSON sorts object keys by their UTF-8 bytes at every depth, writes no
//! whitespace, and writes strings and numbers as `serde_json` does (shortest round-tripping
//! floats). Blobs are keyed by the lowercase hex SHA-256 of their content.
//!
//! # What verification catches
//!
//! [`Ledger::verify`] re-reads the whole log in pages (see *Memory* below), checks that seqs
//! run from 0 without gaps and recomputes every leaf and chain hash and, in the same pass,
//! the RFC 6962 tree head ([`merkle::Frontier`]). It reports the first bad entry:
//! a changed column (payload, time, kind, incident, or a row moved to another seq) as
//! [`ProblemReason::PayloadModified`]; a deleted entry as [`ProblemReason::SequenceGap`]; an
//! entry inserted or reordered with a recomputed leaf hash as [`ProblemReason::ChainBroken`];
//! an unreadable row as [`ProblemReason::MalformedRow`].
//!
//! The hashes carry no secret, so whoever can write the database can rewrite a suffix of the
//! log together with all its hashes, and whoever can delete rows can cut entries off the end:
//! both leave a log that verifies. A signed checkpoint of the tree head kept elsewhere
//! ([`checkpoint`]) catches both: the log must still hold the checkpoint's entries with the
//! same tree head, and grow from it consistently ([`merkle::verify_consistency`]).
//!
//! # The Merkle tree
//!
//! The leaves are the entries' leaf hashes, in seq order. [`Ledger::tree_head`] gives the
//! size and head at any time: the ledger keeps the tree's right edge (O(log n) hashes),
//! loaded at [`Ledger::open`] from the stored leaf hashes and extended by every append.
//! [`merkle`] builds inclusion and consistency proofs and checks them as RFC 9162 says;
//! [`export`] writes every entry with its inclusion proof for offline checks.

//! # Durability and writers
//!
//! [`Ledger::append`] writes all its entries in one transaction; when it returns `Ok`, the
//! transaction has committed. On SQLite the database runs in WAL mode with
//! `synchronous=FULL`, so every commit fsyncs the write-ahead log and survives a crash or a
//! power loss; on PostgreSQL a commit is as durable as the server's `synchronous_commit` and
//! `fsync` settings make it (durable with the defaults).
//!
//! A ledger has a single writer: the one [`Ledger`] that appends to it, whose head (next seq,
//! last chain hash) is loaded once by [`Ledger::open`] and kept in memory. A second writer is
//! not supported; if one appends anyway, the other's next append fails with
//! [`LedgerError::Conflict`] and reloads the head, rather than forking the chain. Readers may
//! open the same database at any time. Several replicas of the daemon share one PostgreSQL
//! ledger through [`replication`]: a lease names the one writer, and the database refuses
//! (fences) an append from any other.
//!
//! # Storage
//!
//! The tables (`ledger_entries`, `ledger_blobs`) are created by the migrations in the
//! repository's `migrations/sqlite` and `migrations/postgres`, embedded in this crate and run
//! by [`Ledger::open`] ([`Ledger::open_existing`] for tools that must not create a
//! ledger). On PostgreSQL the ledger lives in the schema named by
//! [`LedgerLocation::Postgres`], created if missing.

//! # Retention
//!
//! A prefix of the log can be moved to an archive segment, a SQLite ledger file that
//! verifies on its own ([`Ledger::write_segment`]), and removed from the live ledger
//! ([`Ledger::archive_prefix`]), which keeps the archived entries' leaf hashes and the chain
//! hash at the cut ([`ArchivedPrefix`]). [`Ledger::verify`] then streams the kept leaf hashes
//! into the tree and checks the live entries from the cut on: the tree head, the heads at the
//! stored checkpoints' sizes and every proof stay those of the whole log. See `archive.rs`.

//! # Memory
//!
//! Whole-ledger reads hold one page of entries at a time, bounded by bytes as well as rows:
//! at most [`VERIFY_PAGE_ROWS`] rows and [`READ_PAGE_BYTES`] of row data, or one entry alone
//! when it is larger ([`PageLimits`]; [`Ledger::read`], [`Ledger::read_page`] and the
//! [`EntryReader`] of [`Ledger::entries`], which filters by incident and time in SQL). A page
//! is sized first (`octet_length` of its rows, which reads no payload) and then read, so the
//! memory of a read is bounded by a constant plus the largest entry, never by the number or
//! the total size of the entries.
//!
//! [`Ledger::verify`] holds, besides one page: the Merkle frontier (O(log n) hashes), one
//! blob at a time while checking it, at most [`CHECKED_BLOBS_REMEMBERED`] hashes of blobs
//! already checked (about 4 MiB; beyond that a blob referred to again is checked again), and
//! the stored checkpoints whose sizes fall within the current page (read a page at a time as
//! the pass reaches them, [`Ledger::verify_with_checkpoints`]).
//!
//! An export ([`Ledger::export_tree`], [`export::ExportTree::write`]) adds two I/O buffers
//! and O(log n) hashes: its Merkle tree is built level by level in a scratch file (about 64
//! bytes per entry on disk, [`merkle::DiskTree`]) and each proof read from there.
//! [`export::verify_export_from`] holds one line of the file and O(log n) hashes;
//! [`Ledger::prove_inclusion`] and [`Ledger::prove_consistency`] one page of leaf hashes and
//! O(log n) hashes ([`merkle::RangeHeads`]). Only [`Ledger::entries_for_incident`] and
//! [`Ledger::checkpoints`] return everything they find at once.
//!
//! In numbers: a page is at most 4 MiB or one entry, and an entry is held in about 2.5
//! copies while it is read (SQLite's value, the driver's copy, the decoded text). On a
//! 367 MB SQLite ledger of 207,954 entries whose largest is 19 MB, `vigil ledger verify`
//! peaks at 113 MB of resident memory (176 MB before pages were bounded by bytes) and
//! `vigil ledger export` at 84 MB (2.1 GB before); on a 1.1 GB ledger with the same largest
//! entry, `verify` peaks at 113 to 121 MB. The `vigil` crate's `commands::ledger` module has every
//! command.

mod archive;
mod backend;
mod canonical;
pub mod checkpoint;
mod entry;
mod error;
pub mod export;
pub mod hash;
mod ledger;
mod location;
pub mod merkle;
mod proofs;
mod read;
pub mod replication;
mod stored_checkpoints;
mod verify;

pub use archive::{ArchivedPrefix, Segment};
pub use canonical::canonical_json;
pub use entry::{Entry, EntryKind, NewEntry};
pub use error::LedgerError;
pub use ledger::{BlobStore, Ledger};
pub use location::LedgerLocation;
pub use proofs::{ConsistencyProof, InclusionProof};
pub use read::{EntryFilter, EntryReader, PageLimits, READ_PAGE_BYTES, VERIFY_PAGE_ROWS};
pub use verify::{
    CHECKED_BLOBS_REMEMBERED, CheckpointHead, ProblemReason, VerifyProblem, VerifyReport,
};
