-- vigil-ledger, PostgreSQL dialect: the archived prefix of the log (crates/vigil-ledger/src/archive.rs).
-- Keep in step with ../sqlite/0004_archive.sql.
-- Entries moved to an archive segment leave their leaf hashes here (so the tree head, the
-- checkpoints and every proof still cover them) and, in the one row of
-- `ledger_archived_prefix`, how many entries were moved and the chain hash of the last one,
-- where verification of the live entries carries on.

CREATE TABLE ledger_archived_leaves (
    seq BIGINT PRIMARY KEY,
    leaf_hash BYTEA NOT NULL
);

CREATE TABLE ledger_archived_prefix (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    n_entries BIGINT NOT NULL,
    chain_hash BYTEA NOT NULL,
    at_ms BIGINT NOT NULL
);
