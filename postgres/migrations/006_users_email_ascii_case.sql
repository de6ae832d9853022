-- +goose Up
-- Emails are compared ignoring the case of ASCII letters only, as SQLite's NOCASE does. lower() under
-- the database's locale (e.g. en_US.UTF-8 or C.UTF-8) also folds É to é, so the two stores disagreed
-- on which addresses are one account; under the "C" collation lower() folds A-Z and nothing else,
-- whatever locale the database was created with. Queries compare lower(email COLLATE "C") to use
-- this index.
DROP INDEX idx_users_email;
CREATE UNIQUE INDEX idx_users_email ON users (lower(email COLLATE "C"));

-- +goose Down
-- Fails if two accounts now differ only in the case of non-ASCII letters.
DROP INDEX idx_users_email;
CREATE UNIQUE INDEX idx_users_email ON users (lower(email));
