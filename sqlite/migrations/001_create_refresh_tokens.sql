-- +goose Up
-- Times are TEXT in the fixed-width UTC form 2006-01-02T15:04:05.000000Z, so string order is time order.
CREATE TABLE refresh_tokens (
    id                 TEXT PRIMARY KEY,
    session_id         TEXT NOT NULL,
    parent_id          TEXT,
    user_id            TEXT NOT NULL,
    token_hash         TEXT NOT NULL,
    device_name        TEXT,
    device_fingerprint TEXT,
    ip_address         TEXT,
    user_agent         TEXT,
    session_created_at TEXT NOT NULL,
    created_at         TEXT NOT NULL,
    last_used_at       TEXT NOT NULL,
    expires_at         TEXT NOT NULL,
    spent_at           TEXT,
    revoked_at         TEXT,
    revoked_reason     TEXT
);
CREATE INDEX idx_refresh_tokens_user_id ON refresh_tokens (user_id);
CREATE UNIQUE INDEX idx_refresh_tokens_token ON refresh_tokens (token_hash);
CREATE INDEX idx_refresh_tokens_expires_at ON refresh_tokens (expires_at);
-- Only live tips are listed as sessions; spent and revoked links stay out of the index.
CREATE INDEX idx_refresh_tokens_active_sessions ON refresh_tokens (user_id, last_used_at)
    WHERE revoked_at IS NULL AND spent_at IS NULL;
CREATE INDEX idx_refresh_tokens_session_id ON refresh_tokens (session_id, created_at);

-- +goose Down
DROP TABLE refresh_tokens;
