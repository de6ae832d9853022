-- +goose Up
-- The legacy token exchange. A session's auth_time is when its user last proved a credential: for a
-- session opened with the legacy server's token, that token's iat, not the exchange. NULL (a session
-- begun before this migration, or by the binary before it) means the session's start.
ALTER TABLE refresh_tokens ADD COLUMN auth_time TEXT;
-- The session an exchanged legacy token opened, so that presenting the token again within the grace
-- window returns that session on every instance. NULL for ID tokens and the other single uses.
ALTER TABLE id_token_uses ADD COLUMN session_id TEXT;

-- +goose Down
ALTER TABLE id_token_uses DROP COLUMN session_id;
ALTER TABLE refresh_tokens DROP COLUMN auth_time;
