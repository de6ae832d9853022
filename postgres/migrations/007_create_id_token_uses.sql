-- +goose Up
-- One row per Google or Apple ID token accepted, so that none is accepted twice. The key is a
-- SHA-256 (never the token, which is a credential until it expires); rows go once the token has
-- expired, when the verifier refuses it anyway.
CREATE TABLE id_token_uses (
    provider   VARCHAR(20) NOT NULL,
    token_key  CHAR(64) NOT NULL,
    used_at    TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (provider, token_key)
);
CREATE INDEX idx_id_token_uses_expires_at ON id_token_uses (expires_at);

-- +goose Down
DROP TABLE id_token_uses;
