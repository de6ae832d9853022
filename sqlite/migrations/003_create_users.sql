-- +goose Up
CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    -- NOCASE makes the unique index and equality case-insensitive (ASCII letters only).
    email         TEXT NOT NULL COLLATE NOCASE,
    password_hash TEXT NOT NULL DEFAULT '',
    name          TEXT NOT NULL DEFAULT '',
    user_type     TEXT NOT NULL DEFAULT 'client',
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);
CREATE UNIQUE INDEX idx_users_email ON users (email);

-- +goose Down
DROP TABLE users;
