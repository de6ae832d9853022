-- +goose Up
-- The live feed's order (package feed): seq is assigned at insert, in commit order, since SQLite
-- writes one transaction at a time. AUTOINCREMENT makes it the rowid and never hands a number out
-- twice, even after the newest events are deleted, so a reader's position stays meaningful. A
-- column cannot become the rowid in place: the table is rebuilt, its rows keeping their order.
CREATE TABLE security_events_seq (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT NOT NULL UNIQUE,
    event_type TEXT NOT NULL,
    severity   TEXT NOT NULL DEFAULT 'info',
    user_id    TEXT,
    token_id   TEXT,
    ip_address TEXT,
    user_agent TEXT,
    metadata   TEXT,
    created_at TEXT NOT NULL
);
INSERT INTO security_events_seq (id, event_type, severity, user_id, token_id, ip_address, user_agent, metadata, created_at)
    SELECT id, event_type, severity, user_id, token_id, ip_address, user_agent, metadata, created_at
    FROM security_events ORDER BY rowid;
DROP TABLE security_events;
ALTER TABLE security_events_seq RENAME TO security_events;
CREATE INDEX idx_security_events_created_at ON security_events (created_at, id);
CREATE INDEX idx_security_events_event_type ON security_events (event_type, created_at, id);
CREATE INDEX idx_security_events_user_id ON security_events (user_id, created_at, id);
CREATE INDEX idx_security_events_ip_address ON security_events (ip_address, created_at, id);
CREATE INDEX idx_security_events_severity ON security_events (severity, created_at, id);

-- +goose Down
CREATE TABLE security_events_noseq (
    id         TEXT PRIMARY KEY,
    event_type TEXT NOT NULL,
    severity   TEXT NOT NULL DEFAULT 'info',
    user_id    TEXT,
    token_id   TEXT,
    ip_address TEXT,
    user_agent TEXT,
    metadata   TEXT,
    created_at TEXT NOT NULL
);
INSERT INTO security_events_noseq SELECT id, event_type, severity, user_id, token_id, ip_address, user_agent, metadata, created_at
    FROM security_events ORDER BY seq;
DROP TABLE security_events;
ALTER TABLE security_events_noseq RENAME TO security_events;
CREATE INDEX idx_security_events_created_at ON security_events (created_at, id);
CREATE INDEX idx_security_events_event_type ON security_events (event_type, created_at, id);
CREATE INDEX idx_security_events_user_id ON security_events (user_id, created_at, id);
CREATE INDEX idx_security_events_ip_address ON security_events (ip_address, created_at, id);
CREATE INDEX idx_security_events_severity ON security_events (severity, created_at, id);
