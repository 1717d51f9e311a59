//! What the ledger stores: entry kinds, entries to append and entries as stored.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::LedgerError;
use crate::hash;

/// What an entry records. Stored as its [`as_str`](EntryKind::as_str) text.
///
/// To add a kind, add a variant, its text in `as_str` and the variant in `ALL`; the database
/// needs no migration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    /// The daemon's configuration and policies at (re)start: where a replay begins.
    Session,
    /// Something the engine was told: a scrape, an action's result, a model's reply.
    Event,
    /// Something the engine decided to do.
    Command,
}

impl EntryKind {
    /// Every kind, in declaration order.
    pub const ALL: [EntryKind; 3] = [EntryKind::Session, EntryKind::Event, EntryKind::Command];

    /// The text stored in the `kind` column and hashed in the entry bytes.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            EntryKind::Session => "session",
            EntryKind::Event => "event",
            EntryKind::Command => "command",
        }
    }

    /// The kind whose [`as_str`](EntryKind::as_str) is `text`, if any.
    #[must_use]
    pub fn from_stored(text: &str) -> Option<EntryKind> {
        EntryKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == text)
    }
}

impl fmt::Display for EntryKind {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// An entry to append; the ledger assigns its seq and hashes.
#[derive(Clone, Debug, PartialEq)]
pub struct NewEntry {
    /// When it happened, in milliseconds since the Unix epoch (UTC), as the caller's clock saw it.
    pub at_ms: i64,
    /// What it records.
    pub kind: EntryKind,
    /// The incident it belongs to, if any.
    pub incident_id: Option<String>,
    /// The content; stored as its [`canonical_json`](crate::canonical_json) text.
    pub payload: serde_json::Value,
}

/// An entry as stored, with its position and hashes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Entry {
    /// Position in the ledger, from 0, without gaps.
    pub seq: u64,
    /// When it happened, in milliseconds since the Unix epoch (UTC).
    pub at_ms: i64,
    /// What it records.
    pub kind: EntryKind,
    /// The incident it belongs to, if any.
    pub incident_id: Option<String>,
    /// The canonical JSON text of the payload, exactly as stored and hashed.
    pub payload: String,
    /// SHA-256(0x00 || [`entry_bytes`](Entry::entry_bytes)).
    pub leaf_hash: [u8; 32],
    /// SHA-256(previous entry's chain hash || `leaf_hash`); 32 zero bytes precede seq 0.
    pub chain_hash: [u8; 32],
}

impl Entry {
    /// The payload parsed back into a JSON value.
    ///
    /// # Errors
    ///
    /// [`LedgerError::Payload`] when the stored text is not JSON, which only a hand-edited
    /// database can cause.
    pub fn payload_value(&self) -> Result<serde_json::Value, LedgerError> {
        serde_json::from_str(&self.payload).map_err(|source| LedgerError::Payload {
            seq: self.seq,
            source,
        })
    }

    /// The bytes covered by the leaf hash, rebuilt from the stored fields.
    #[must_use]
    pub fn entry_bytes(&self) -> String {
        hash::entry_bytes(
            self.seq,
            self.at_ms,
            self.kind.as_str(),
            self.incident_id.as_deref(),
            &self.payload,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::EntryKind;

    #[test]
    fn kinds_round_trip_through_their_stored_text() {
        let expected = [
            (EntryKind::Session, "session"),
            (EntryKind::Event, "event"),
            (EntryKind::Command, "command"),
        ];
        assert_eq!(
            expected.len(),
            EntryKind::ALL.len(),
            "a kind is missing from this test"
        );
        for (kind, text) in expected {
            assert_eq!(kind.as_str(), text);
            assert_eq!(EntryKind::from_stored(text), Some(kind));
            assert_eq!(
                serde_json::to_value(kind).ok(),
                Some(serde_json::json!(text))
            );
        }
        assert_eq!(EntryKind::from_stored("Session"), None);
        assert_eq!(EntryKind::from_stored(""), None);
    }
}
