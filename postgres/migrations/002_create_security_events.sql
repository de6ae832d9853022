-- +goose Up
CREATE TABLE security_events (
    id         UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    event_type VARCHAR(100) NOT NULL,
    severity   VARCHAR(20) NOT NULL DEFAULT 'info',
    user_id    VARCHAR(255),
    token_id   UUID,
    ip_address VARCHAR(45),
    user_agent TEXT,
    metadata   JSONB,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
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
