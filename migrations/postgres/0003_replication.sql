-- vigil-ledger, PostgreSQL dialect: replicas with a fenced leader (crates/vigil-ledger/src/replication.rs).
-- Keep the `epoch` column in step with ../sqlite/0003_replication.sql; the lease, the inbox and
-- the fence exist only here (several replicas need a shared database).
--
-- One replica leads at a time: it holds the row `leader` of `ledger_lease` until `expires_at`,
-- read and written with the database's clock only (clock_timestamp()), so replicas' clocks
-- never matter. Each new holder bumps `epoch`. Every appended entry carries its writer's
-- epoch, and the trigger below refuses, in the appending transaction, an entry whose epoch is
-- not the current one or whose lease has expired: a leader that was paused or partitioned
-- cannot write once its lease is gone. The trigger takes the lease row FOR SHARE, so a
-- takeover (an UPDATE of that row) waits for an append in flight to commit or roll back, and
-- an append that starts after a takeover sees the new epoch.
-- While no lease row exists (a single daemon, never replicated), entries need no epoch.

ALTER TABLE ledger_entries ADD COLUMN epoch BIGINT;

CREATE TABLE ledger_lease (
    name TEXT PRIMARY KEY,
    epoch BIGINT NOT NULL,
    holder TEXT NOT NULL,
    holder_url TEXT NOT NULL,
    acquired_at TIMESTAMPTZ NOT NULL,
    renewed_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);

-- Pushes acknowledged by any replica and not yet in the chain. The leader drains them in `id`
-- order and deletes each in the transaction that appends its event, so a push is in the
-- chain exactly once whatever fails in between.
CREATE TABLE ledger_inbox (
    id BIGSERIAL PRIMARY KEY,
    received_at_ms BIGINT NOT NULL,
    replica TEXT NOT NULL,
    route TEXT NOT NULL,
    content_type TEXT,
    body BYTEA NOT NULL
);

CREATE FUNCTION ledger_fence() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    current_epoch BIGINT;
    live BOOLEAN;
BEGIN
    SELECT epoch, expires_at > clock_timestamp() INTO current_epoch, live
        FROM ledger_lease WHERE name = 'leader' FOR SHARE;
    IF NOT FOUND THEN
        RETURN NEW;
    END IF;
    IF NEW.epoch IS DISTINCT FROM current_epoch THEN
        RAISE EXCEPTION 'fenced: entry % carries epoch %, the current epoch is %',
            NEW.seq, NEW.epoch, current_epoch USING ERRCODE = 'VGF01';
    END IF;
    IF NOT live THEN
        RAISE EXCEPTION 'fenced: the lease of epoch % has expired', current_epoch
            USING ERRCODE = 'VGF01';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER ledger_entries_fence BEFORE INSERT ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION ledger_fence();
