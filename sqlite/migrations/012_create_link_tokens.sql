-- +goose Up
-- Tokens sent in mails' links (password reset, address verification), stored as their SHA-256
-- only. used_at ends a token: spent, retired by a newer one of its purpose, or by a password change.
CREATE TABLE link_tokens (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose    TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at    TEXT
);
CREATE INDEX idx_link_tokens_user_purpose ON link_tokens (user_id, purpose);

-- +goose Down
DROP TABLE link_tokens;
