//! The ledger's hash definitions: entry bytes, RFC 6962 leaf hashes and the hash chain.
//!
//! These functions are the specification; the crate docs restate it for readers of the
//! database who do not read Rust.

use sha2::{Digest, Sha256};

use crate::canonical::write_json_string;

/// The chain hash before the first entry (`chain_hash[-1]`): 32 zero bytes.
pub const GENESIS_CHAIN_HASH: [u8; 32] = [0; 32];

/// The bytes that an entry's leaf hash covers: the canonical JSON of the entry.
///
/// `{"at_ms":<at_ms>,"incident_id":<string or null>,"kind":"<kind>","payload":<payload>,"seq":<seq>}`
/// where `payload` is inserted verbatim: it must already be canonical JSON (the ledger stores
/// it that way), so verification hashes the stored text and never re-canonicalizes it.
#[must_use]
pub fn entry_bytes(
    seq: u64,
    at_ms: i64,
    kind: &str,
    incident_id: Option<&str>,
    canonical_payload: &str,
) -> String {
    let (prefix, suffix) = entry_bytes_around_payload(seq, at_ms, kind, incident_id);
    let mut out = String::with_capacity(prefix.len() + canonical_payload.len() + suffix.len());
    out.push_str(&prefix);
    out.push_str(canonical_payload);
    out.push_str(&suffix);
    out
}

/// `leaf_hash(entry_bytes(..).as_bytes())`, computed without copying the payload: the hash
/// is fed the entry bytes in three pieces, so verifying a multi-megabyte entry holds it once.
#[must_use]
pub fn entry_leaf_hash(
    seq: u64,
    at_ms: i64,
    kind: &str,
    incident_id: Option<&str>,
    canonical_payload: &str,
) -> [u8; 32] {
    let (prefix, suffix) = entry_bytes_around_payload(seq, at_ms, kind, incident_id);
    let mut hasher = Sha256::new();
    hasher.update([0x00]);
    hasher.update(prefix.as_bytes());
    hasher.update(canonical_payload.as_bytes());
    hasher.update(suffix.as_bytes());
    hasher.finalize().into()
}

/// The entry bytes before and after the payload (the one definition both functions above use).
fn entry_bytes_around_payload(
    seq: u64,
    at_ms: i64,
    kind: &str,
    incident_id: Option<&str>,
) -> (String, String) {
    let mut prefix = String::with_capacity(96);
    prefix.push_str("{\"at_ms\":");
    prefix.push_str(&at_ms.to_string());
    prefix.push_str(",\"incident_id\":");
    match incident_id {
        Some(incident_id) => write_json_string(&mut prefix, incident_id),
        None => prefix.push_str("null"),
    }
    prefix.push_str(",\"kind\":");
    write_json_string(&mut prefix, kind);
    prefix.push_str(",\"payload\":");
    let suffix = format!(",\"seq\":{seq}}}");
    (prefix, suffix)
}

/// The RFC 6962 leaf hash of `entry_bytes`: SHA-256(0x00 || entry_bytes).
#[must_use]
pub fn leaf_hash(entry_bytes: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update([0x00]);
    hasher.update(entry_bytes);
    hasher.finalize().into()
}

/// The chain hash of an entry: SHA-256(previous chain hash || leaf hash).
#[must_use]
pub fn chain_hash(previous_chain_hash: &[u8; 32], leaf_hash: &[u8; 32]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(previous_chain_hash);
    hasher.update(leaf_hash);
    hasher.finalize().into()
}

/// The lowercase hex SHA-256 of `content`: the key of a blob.
#[must_use]
pub fn blob_hash(content: &[u8]) -> String {
    hex::encode(Sha256::digest(content))
}

/// The blob hashes a payload refers to: the 64 lowercase hex digits that follow a
/// `"..._blob":"` key, by the ledger's naming convention for content-addressed references.
pub(crate) fn blob_references(payload: &str) -> impl Iterator<Item = &str> {
    payload
        .match_indices("_blob\":\"")
        .filter_map(move |(at, marker)| {
            let start = at + marker.len();
            let hash = payload.get(start..start + 64)?;
            let is_hash = hash
                .bytes()
                .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte))
                && payload.get(start + 64..start + 65) == Some("\"");
            is_hash.then_some(hash)
        })
}

#[cfg(test)]
mod tests {
    use super::{
        GENESIS_CHAIN_HASH, blob_hash, chain_hash, entry_bytes, entry_leaf_hash, leaf_hash,
    };

    // The expected hashes below were computed independently of this crate, with Python's
    // hashlib, from the byte strings spelled out in the test.

    /// One entry's columns and the entry bytes expected for them.
    struct Case {
        seq: u64,
        at_ms: i64,
        kind: &'static str,
        incident_id: Option<&'static str>,
        payload: &'static str,
        expected: &'static str,
    }

    #[test]
    fn entry_bytes_are_the_canonical_json_of_the_entry() {
        let cases = [
            Case {
                seq: 0,
                at_ms: 1_700_000_000_000,
                kind: "session",
                incident_id: None,
                payload: r#"{"a":1}"#,
                expected: r#"{"at_ms":1700000000000,"incident_id":null,"kind":"session","payload":{"a":1},"seq":0}"#,
            },
            Case {
                seq: 42,
                at_ms: -5,
                kind: "event",
                incident_id: Some("inc-\"7\"\n"),
                payload: "[]",
                expected: r#"{"at_ms":-5,"incident_id":"inc-\"7\"\n","kind":"event","payload":[],"seq":42}"#,
            },
        ];
        for case in cases {
            let actual = entry_bytes(
                case.seq,
                case.at_ms,
                case.kind,
                case.incident_id,
                case.payload,
            );
            assert_eq!(actual, case.expected);
            assert_eq!(
                entry_leaf_hash(
                    case.seq,
                    case.at_ms,
                    case.kind,
                    case.incident_id,
                    case.payload
                ),
                leaf_hash(case.expected.as_bytes()),
                "the leaf hash of the pieces is the leaf hash of the whole"
            );
        }
    }

    #[test]
    fn hashes_match_independently_computed_values() {
        let bytes = entry_bytes(0, 1_700_000_000_000, "session", None, r#"{"a":1}"#);
        let leaf = leaf_hash(bytes.as_bytes());
        assert_eq!(
            hex::encode(leaf),
            "88d147cc3daad0143265b81a1bb9cb4052516e52941ccc819f71a80a048b31bb"
        );
        assert_eq!(
            hex::encode(chain_hash(&GENESIS_CHAIN_HASH, &leaf)),
            "d57d36ce66f7efd93a79d77cd79d498553d7b07a42cb7ac88b71574b2fff4b66"
        );
        // The RFC 6962 hash of the empty leaf.
        assert_eq!(
            hex::encode(leaf_hash(b"")),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        );
        assert_eq!(
            blob_hash(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
