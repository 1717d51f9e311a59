-- vigil-ledger, PostgreSQL dialect: the append-only, hash-linked entry log and its blob store.
-- Keep in step with ../sqlite/0001_ledger.sql; the hash definitions live in crates/vigil-ledger/src/lib.rs.
-- Tables are created unqualified: the ledger sets `search_path` to its schema on every connection.
-- There are deliberately no CHECK constraints on `kind` (new kinds need no migration)
-- nor on hash lengths (verify reports a malformed row instead).

CREATE TABLE ledger_entries (
    seq BIGINT PRIMARY KEY,
    at_ms BIGINT NOT NULL,
    kind TEXT NOT NULL,
    incident_id TEXT,
    payload TEXT NOT NULL,
    leaf_hash BYTEA NOT NULL,
    chain_hash BYTEA NOT NULL
);

CREATE INDEX ledger_entries_incident_id ON ledger_entries (incident_id, seq);
CREATE INDEX ledger_entries_kind_seq ON ledger_entries (kind, seq);

CREATE TABLE ledger_blobs (
    hash TEXT PRIMARY KEY,
    content BYTEA NOT NULL
);
