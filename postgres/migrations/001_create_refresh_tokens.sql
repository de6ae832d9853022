-- +goose Up
CREATE TABLE refresh_tokens (
    id                 UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    session_id         UUID NOT NULL,
    parent_id          UUID,
    user_id            VARCHAR(255) NOT NULL,
    token_hash         VARCHAR(64) NOT NULL,
    device_name        VARCHAR(255),
    device_fingerprint VARCHAR(255),
    ip_address         VARCHAR(45),
    user_agent         TEXT,
    session_created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    created_at         TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    last_used_at       TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    expires_at         TIMESTAMPTZ NOT NULL,
    spent_at           TIMESTAMPTZ,
    revoked_at         TIMESTAMPTZ,
    revoked_reason     VARCHAR(100)
);
CREATE INDEX idx_refresh_tokens_user_id ON refresh_tokens (user_id);
CREATE UNIQUE INDEX idx_refresh_tokens_token ON refresh_tokens (token_hash);
CREATE INDEX idx_refresh_tokens_expires_at ON refresh_tokens (expires_at);
-- Only live tips are listed as sessions; spent and revoked links stay out of the index.
CREATE INDEX idx_refresh_tokens_active_sessions ON refresh_tokens (user_id, last_used_at DESC)
    WHERE revoked_at IS NULL AND spent_at IS NULL;
CREATE INDEX idx_refresh_tokens_session_id ON refresh_tokens (session_id, created_at);

-- +goose Down
DROP TABLE refresh_tokens;
