-- vigil-ledger, SQLite dialect: the archived prefix of the log (crates/vigil-ledger/src/archive.rs).
-- Keep in step with ../postgres/0004_archive.sql.
-- Entries moved to an archive segment leave their leaf hashes here (so the tree head, the
-- checkpoints and every proof still cover them) and, in the one row of
-- `ledger_archived_prefix`, how many entries were moved and the chain hash of the last one,
-- where verification of the live entries carries on.

CREATE TABLE ledger_archived_leaves (
    seq INTEGER PRIMARY KEY,
    leaf_hash BLOB NOT NULL
) STRICT;

CREATE TABLE ledger_archived_prefix (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    n_entries INTEGER NOT NULL,
    chain_hash BLOB NOT NULL,
    at_ms INTEGER NOT NULL
) STRICT;
