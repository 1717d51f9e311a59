//! An inclusion proof as a file: what `vigil ledger prove` prints and the console's ledger
//! page downloads, and `vigil ledger verify --proof FILE` checks offline.

use anyhow::Context as _;

/// An inclusion proof as `vigil ledger verify --proof FILE` reads it, checked first (the
/// console's download is the same file).
///
/// # Errors
/// When the proof does not verify against its own tree head.
pub fn checked_inclusion_json(
    proof: &vigil_ledger::InclusionProof,
) -> anyhow::Result<serde_json::Value> {
    let components: Vec<&[u8]> = proof.proof.iter().map(<[u8; 32]>::as_slice).collect();
    vigil_ledger::merkle::verify_inclusion(
        proof.seq,
        proof.tree_size,
        &proof.leaf_hash,
        &components,
        &proof.tree_head,
    )
    .context("the proof this ledger produced does not verify")?;
    Ok(serde_json::json!({
        "seq": proof.seq,
        "tree_size": proof.tree_size,
        "tree_head": hex::encode(proof.tree_head),
        "leaf_hash": hex::encode(proof.leaf_hash),
        "proof": proof.proof.iter().map(hex::encode).collect::<Vec<_>>(),
    }))
}
