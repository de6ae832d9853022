-- +goose Up
-- The durable queue of mails (password reset, address verification). A row says what the mail is
-- for, never what it carries: the sender mints the link token as it sends. user_id is NULL for a
-- reset asked for an address no account has, which the sender settles by sending nothing, so the
-- request did the same work either way. attempts fences each claim's settlement; claimed_until is
-- the running claim's lease; last_error is a class, never an error's text.
CREATE TABLE mail_outbox (
    id              UUID PRIMARY KEY,
    kind            VARCHAR(32) NOT NULL,
    user_id         UUID REFERENCES users (id) ON DELETE SET NULL,
    address         VARCHAR(254) NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL,
    claimed_until   TIMESTAMPTZ,
    sent_at         TIMESTAMPTZ,
    abandoned_at    TIMESTAMPTZ,
    last_error      VARCHAR(50)
);
-- The senders' claim reads the due mails only.
CREATE INDEX idx_mail_outbox_due ON mail_outbox (next_attempt_at) WHERE sent_at IS NULL AND abandoned_at IS NULL;
-- ON DELETE SET NULL finds an account's mails through it.
CREATE INDEX idx_mail_outbox_user_id ON mail_outbox (user_id);

-- +goose Down
DROP TABLE mail_outbox;
