-- +goose Up
-- The live feed's order (package feed). Event ids are UUIDv7s made by several instances and written
-- in batches, so their order is not the order events were committed in; seq is taken from one
-- sequence at insert. A transaction holding a low seq can still commit after one holding a higher
-- one: readers re-read the seqs they have not seen for a short window (feed.Cursor).
ALTER TABLE security_events ADD COLUMN seq BIGINT GENERATED ALWAYS AS IDENTITY;
CREATE UNIQUE INDEX idx_security_events_seq ON security_events (seq);

-- Every instance's feed wakes when any instance commits events. NOTIFY is transactional: it is
-- delivered at commit, never for a rolled-back insert, and only after the rows are visible. One
-- notification per statement (identical payloads within a transaction are folded into one).
-- +goose StatementBegin
CREATE FUNCTION fluxauth_security_events_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('fluxauth_security_events', '');
    RETURN NULL;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER security_events_notify AFTER INSERT ON security_events
    FOR EACH STATEMENT EXECUTE FUNCTION fluxauth_security_events_notify();

-- +goose Down
DROP TRIGGER security_events_notify ON security_events;
DROP FUNCTION fluxauth_security_events_notify();
DROP INDEX idx_security_events_seq;
ALTER TABLE security_events DROP COLUMN seq;
