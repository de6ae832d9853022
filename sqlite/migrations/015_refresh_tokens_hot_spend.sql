-- +goose Up
-- The same indexes as PostgreSQL's (see its 015): a spend (spent_at, last_used_at) changes no indexed
-- column, so it rewrites only the table row, and the sessions listing steps through the user's
-- sessions by (user_id, session_id) and reads each one's newest live token.
DROP INDEX idx_refresh_tokens_active_sessions;
DROP INDEX idx_refresh_tokens_user_id;
CREATE INDEX idx_refresh_tokens_user_id ON refresh_tokens (user_id, session_id, created_at, id);

-- +goose Down
DROP INDEX idx_refresh_tokens_user_id;
CREATE INDEX idx_refresh_tokens_user_id ON refresh_tokens (user_id);
CREATE INDEX idx_refresh_tokens_active_sessions ON refresh_tokens (user_id, last_used_at)
    WHERE revoked_at IS NULL AND spent_at IS NULL;
