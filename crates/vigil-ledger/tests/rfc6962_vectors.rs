//! The Merkle proofs against the RFC 6962 test vectors of the transparency-dev/merkle
//! project, in `../shared/data/rfc6962` beside the repository: every happy path must verify
//! and every mutation (`wantErr`) must be rejected. Without the folder the test says it was
//! skipped, unless `CI` is set, where a missing folder fails it.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests fail loudly at the first broken assumption"
)]

use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde_json::Value;
use vigil_ledger::merkle::{verify_consistency, verify_inclusion};

fn vectors_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/rfc6962");
    if dir.is_dir() {
        return Some(dir);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI is set but {} is missing",
        dir.display()
    );
    eprintln!("skipped: {} is not beside the repository", dir.display());
    None
}

fn json_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|ext| ext == "json") {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

fn bytes(value: &Value) -> Vec<u8> {
    match value {
        Value::Null => Vec::new(),
        Value::String(text) => base64::engine::general_purpose::STANDARD
            .decode(text)
            .unwrap_or_else(|error| panic!("bad base64 `{text}`: {error}")),
        other => panic!("not a base64 string: {other}"),
    }
}

fn proof(value: &Value) -> Vec<Vec<u8>> {
    match value {
        Value::Null => Vec::new(),
        Value::Array(items) => items.iter().map(bytes).collect(),
        other => panic!("not a proof: {other}"),
    }
}

/// Runs every vector of one kind; returns (accepted, rejected) counts.
fn run(kind: &str, check: impl Fn(&Value) -> bool) -> (usize, usize) {
    let Some(dir) = vectors_dir() else {
        return (0, 0);
    };
    let files = json_files(&dir.join(kind));
    assert!(files.len() > 50, "too few {kind} vectors: {}", files.len());
    let mut wrong = Vec::new();
    let (mut accepted, mut rejected) = (0, 0);
    for file in &files {
        let vector: Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
        let want_err = vector["wantErr"].as_bool().unwrap();
        let ok = check(&vector);
        if ok == want_err {
            wrong.push(format!(
                "{}: {} ({})",
                file.strip_prefix(&dir).unwrap().display(),
                if ok {
                    "accepted a mutation"
                } else {
                    "rejected a happy path"
                },
                vector["desc"]
            ));
        }
        if ok {
            accepted += 1;
        } else {
            rejected += 1;
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {}:\n{}",
        wrong.len(),
        files.len(),
        wrong.join("\n")
    );
    (accepted, rejected)
}

#[test]
fn every_inclusion_vector_is_decided_as_expected() {
    let (accepted, rejected) = run("inclusion", |vector| {
        let proof = proof(&vector["proof"]);
        let proof: Vec<&[u8]> = proof.iter().map(Vec::as_slice).collect();
        verify_inclusion(
            vector["leafIdx"].as_u64().unwrap(),
            vector["treeSize"].as_u64().unwrap(),
            &bytes(&vector["leafHash"]),
            &proof,
            &bytes(&vector["root"]),
        )
        .is_ok()
    });
    eprintln!("inclusion vectors: {accepted} accepted, {rejected} rejected");
}

#[test]
fn every_consistency_vector_is_decided_as_expected() {
    let (accepted, rejected) = run("consistency", |vector| {
        let proof = proof(&vector["proof"]);
        let proof: Vec<&[u8]> = proof.iter().map(Vec::as_slice).collect();
        verify_consistency(
            vector["size1"].as_u64().unwrap(),
            vector["size2"].as_u64().unwrap(),
            &bytes(&vector["root1"]),
            &bytes(&vector["root2"]),
            &proof,
        )
        .is_ok()
    });
    eprintln!("consistency vectors: {accepted} accepted, {rejected} rejected");
}
