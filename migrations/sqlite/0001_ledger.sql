-- vigil-ledger, SQLite dialect: the append-only, hash-linked entry log and its blob store.
-- Keep in step with ../postgres/0001_ledger.sql; the hash definitions live in crates/vigil-ledger/src/lib.rs.
-- STRICT makes SQLite refuse values of the wrong type, as PostgreSQL does.
-- There are deliberately no CHECK constraints on `kind` (new kinds need no migration)
-- nor on hash lengths (verify reports a malformed row instead).

CREATE TABLE ledger_entries (
    seq INTEGER PRIMARY KEY,
    at_ms INTEGER NOT NULL,
    kind TEXT NOT NULL,
    incident_id TEXT,
    payload TEXT NOT NULL,
    leaf_hash BLOB NOT NULL,
    chain_hash BLOB NOT NULL
) STRICT;

CREATE INDEX ledger_entries_incident_id ON ledger_entries (incident_id, seq);
CREATE INDEX ledger_entries_kind_seq ON ledger_entries (kind, seq);

CREATE TABLE ledger_blobs (
    hash TEXT PRIMARY KEY,
    content BLOB NOT NULL
) STRICT;
