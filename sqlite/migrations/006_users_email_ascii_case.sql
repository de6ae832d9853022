-- +goose Up
-- Nothing to change: the email column is COLLATE NOCASE, which already folds ASCII letters only, the
-- comparison PostgreSQL's migration 006 adopts. The version exists so both stores number their
-- schemas alike.

-- +goose Down
