-- +goose Up
CREATE TABLE users (
    id            UUID PRIMARY KEY,
    email         VARCHAR(320) NOT NULL,
    password_hash TEXT NOT NULL DEFAULT '',
    name          VARCHAR(255) NOT NULL DEFAULT '',
    user_type     VARCHAR(20) NOT NULL DEFAULT 'client',
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL
);
-- Emails are unique and looked up case-insensitively; queries compare lower(email) to use this index.
CREATE UNIQUE INDEX idx_users_email ON users (lower(email));

-- +goose Down
DROP TABLE users;
