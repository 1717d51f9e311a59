-- vigil-ledger, PostgreSQL dialect: signed checkpoints of the Merkle tree head.
-- Keep in step with ../sqlite/0002_checkpoints.sql. `checkpoint` is the signed checkpoint as
-- JSON (crates/vigil-ledger/src/checkpoint.rs); the other columns repeat two of its fields for
-- lookups. A checkpoint kept here catches a log cut or rewritten by someone who could not also
-- forge the key's signature; one published outside the database also survives its deletion.

CREATE TABLE ledger_checkpoints (
    tree_size BIGINT PRIMARY KEY,
    at_ms BIGINT NOT NULL,
    checkpoint TEXT NOT NULL
);
