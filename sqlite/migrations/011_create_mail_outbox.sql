-- +goose Up
-- The durable queue of mails (password reset, address verification). A row says what the mail is
-- for, never what it carries: the sender mints the link token as it sends. user_id is NULL for a
-- reset asked for an address no account has, which the sender settles by sending nothing, so the
-- request did the same work either way. attempts fences each claim's settlement; claimed_until is
-- the running claim's lease; last_error is a class, never an error's text.
CREATE TABLE mail_outbox (
    id              TEXT PRIMARY KEY,
    kind            TEXT NOT NULL,
    user_id         TEXT REFERENCES users (id) ON DELETE SET NULL,
    address         TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    claimed_until   TEXT,
    sent_at         TEXT,
    abandoned_at    TEXT,
    last_error      TEXT
);
CREATE INDEX idx_mail_outbox_due ON mail_outbox (next_attempt_at) WHERE sent_at IS NULL AND abandoned_at IS NULL;

-- +goose Down
DROP TABLE mail_outbox;
