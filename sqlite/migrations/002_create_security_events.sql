-- +goose Up
CREATE TABLE security_events (
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
-- Every listing is newest first by (created_at, id); each filter index ends with that key so a
-- filtered page is one index range scan.
CREATE INDEX idx_security_events_created_at ON security_events (created_at, id);
CREATE INDEX idx_security_events_event_type ON security_events (event_type, created_at, id);
CREATE INDEX idx_security_events_user_id ON security_events (user_id, created_at, id);
CREATE INDEX idx_security_events_ip_address ON security_events (ip_address, created_at, id);
CREATE INDEX idx_security_events_severity ON security_events (severity, created_at, id);

-- +goose Down
DROP TABLE security_events;
