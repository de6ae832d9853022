-- +goose Up
-- One row per device token (OWASP's "device cookie"): its failure budget and its end, shared by
-- every instance. The token itself is an HMAC the service recomputes and is never stored. A token
-- dies for good (dead_at) after too many failures, at log out-all, or when the account is taken
-- over; a password change retires it without a write, since the HMAC covers the password hash.
CREATE TABLE device_tokens (
    id          UUID PRIMARY KEY,
    user_id     UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    failures    INTEGER NOT NULL DEFAULT 0,
    created_at  TIMESTAMPTZ NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL,
    dead_at     TIMESTAMPTZ,
    dead_reason VARCHAR(50)
);
-- Log out-all and takeover end a user's tokens; ON DELETE CASCADE finds them the same way.
CREATE INDEX idx_device_tokens_user_id ON device_tokens (user_id);

-- +goose Down
DROP TABLE device_tokens;
