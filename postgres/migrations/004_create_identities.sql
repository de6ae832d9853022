-- +goose Up
CREATE TABLE identities (
    provider   VARCHAR(20) NOT NULL,
    subject    VARCHAR(255) NOT NULL,
    user_id    UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    email      VARCHAR(320) NOT NULL DEFAULT '',
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (provider, subject)
);
CREATE INDEX idx_identities_user_id ON identities (user_id);

-- +goose Down
DROP TABLE identities;
