-- +goose Up
-- Tokens sent in mails' links (password reset, address verification), stored as their SHA-256
-- only. used_at ends a token: spent, retired by a newer one of its purpose, or by a password change.
CREATE TABLE link_tokens (
    id         UUID PRIMARY KEY,
    user_id    UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose    VARCHAR(32) NOT NULL,
    token_hash CHAR(64) NOT NULL UNIQUE,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    used_at    TIMESTAMPTZ
);
-- Retiring a user's tokens of one purpose.
CREATE INDEX idx_link_tokens_user_purpose ON link_tokens (user_id, purpose);

-- +goose Down
DROP TABLE link_tokens;
