-- +goose Up
-- One row per Google or Apple ID token accepted, so that none is accepted twice. The key is a
-- SHA-256 (never the token, which is a credential until it expires); rows go once the token has
-- expired, when the verifier refuses it anyway.
CREATE TABLE id_token_uses (
    provider   TEXT NOT NULL,
    token_key  TEXT NOT NULL,
    used_at    TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    PRIMARY KEY (provider, token_key)
) WITHOUT ROWID;
CREATE INDEX idx_id_token_uses_expires_at ON id_token_uses (expires_at);

-- +goose Down
DROP TABLE id_token_uses;
