//! Signed checkpoints: a tree size, its RFC 6962 tree head and a time, signed with Ed25519.
//!
//! Kept outside the database (a file, a webhook), a checkpoint lets anyone later check that
//! the ledger still holds those entries unchanged: the first `tree_size` leaves must form the
//! same head (a rewrite or a truncation does not), and the current log must be consistent with
//! it. The signature says which key vouched for it; pin the expected public key to know the
//! checkpoint is vigil's and not a forger's.

use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier as _, VerifyingKey};
use serde::{Deserialize, Serialize};

/// A signed checkpoint, as written to a file (JSON; hashes and keys in hex).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// How many entries the tree holds.
    pub tree_size: u64,
    /// Its RFC 6962 tree head.
    pub tree_head: String,
    /// When it was taken, in milliseconds since the Unix epoch.
    pub at_ms: i64,
    /// The Ed25519 public key that signed it.
    pub public_key: String,
    /// The signature of [`Checkpoint::signed_text`].
    pub signature: String,
}

/// Why a checkpoint does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    /// A field is not the hex it should be.
    #[error("the checkpoint's {field} is not valid hex of the right length")]
    Malformed {
        /// Which field.
        field: &'static str,
    },
    /// The signature does not verify with the checkpoint's key.
    #[error("the signature does not verify: the checkpoint was altered or not signed by its key")]
    BadSignature,
    /// Signed by another key than the one expected.
    #[error("signed by key {found}, not the expected {expected}")]
    UnexpectedKey {
        /// The key in the checkpoint.
        found: String,
        /// The pinned key.
        expected: String,
    },
}

impl Checkpoint {
    /// The exact bytes signed.
    #[must_use]
    pub fn signed_text(tree_size: u64, tree_head: &str, at_ms: i64) -> String {
        format!("vigil-checkpoint-v1\n{tree_size}\n{tree_head}\n{at_ms}\n")
    }

    /// Signs a checkpoint of `tree_size` entries with head `tree_head`.
    #[must_use]
    pub fn sign(key: &SigningKey, tree_size: u64, tree_head: [u8; 32], at_ms: i64) -> Checkpoint {
        let head = hex::encode(tree_head);
        let signature = key.sign(Self::signed_text(tree_size, &head, at_ms).as_bytes());
        Checkpoint {
            tree_size,
            tree_head: head,
            at_ms,
            public_key: hex::encode(key.verifying_key().to_bytes()),
            signature: hex::encode(signature.to_bytes()),
        }
    }

    /// Checks the signature, and the key against `expected_key` (hex) when one is pinned.
    ///
    /// # Errors
    ///
    /// Why it does not hold.
    pub fn verify_signature(&self, expected_key: Option<&str>) -> Result<(), CheckpointError> {
        if let Some(expected) = expected_key
            && !expected.eq_ignore_ascii_case(&self.public_key)
        {
            return Err(CheckpointError::UnexpectedKey {
                found: self.public_key.clone(),
                expected: expected.to_owned(),
            });
        }
        let key: [u8; 32] = hex::decode(&self.public_key)
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or(CheckpointError::Malformed {
                field: "public_key",
            })?;
        let key = VerifyingKey::from_bytes(&key).map_err(|_| CheckpointError::Malformed {
            field: "public_key",
        })?;
        let signature: [u8; 64] = hex::decode(&self.signature)
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or(CheckpointError::Malformed { field: "signature" })?;
        key.verify(
            Self::signed_text(self.tree_size, &self.tree_head, self.at_ms).as_bytes(),
            &Signature::from_bytes(&signature),
        )
        .map_err(|_| CheckpointError::BadSignature)
    }

    /// The tree head as bytes.
    ///
    /// # Errors
    ///
    /// When it is not 32 bytes of hex.
    pub fn head_bytes(&self) -> Result<[u8; 32], CheckpointError> {
        hex::decode(&self.tree_head)
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or(CheckpointError::Malformed { field: "tree_head" })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_checkpoint_verifies_and_any_change_or_another_key_does_not() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let checkpoint = Checkpoint::sign(&key, 42, [9; 32], 1_767_225_600_000);
        checkpoint.verify_signature(None).unwrap();
        checkpoint
            .verify_signature(Some(&checkpoint.public_key.to_uppercase()))
            .unwrap();
        let mut bigger = checkpoint.clone();
        bigger.tree_size = 43;
        assert_eq!(
            bigger.verify_signature(None),
            Err(CheckpointError::BadSignature)
        );
        let other = Checkpoint::sign(&SigningKey::from_bytes(&[8; 32]), 42, [9; 32], 0);
        assert!(matches!(
            other.verify_signature(Some(&checkpoint.public_key)),
            Err(CheckpointError::UnexpectedKey { .. })
        ));
        let mut garbled = checkpoint;
        garbled.signature = "zz".to_owned();
        assert_eq!(
            garbled.verify_signature(None),
            Err(CheckpointError::Malformed { field: "signature" })
        );
    }
}
