-- vigil-ledger, SQLite dialect: the `epoch` column of ../postgres/0003_replication.sql, so that
-- both dialects share one INSERT. Replicas need PostgreSQL: a SQLite ledger has no lease, no
-- inbox and no fence, and its entries carry no epoch.

ALTER TABLE ledger_entries ADD COLUMN epoch INTEGER;
