-- +goose Up
-- reissued_at marks a token handed out again by a lost-response retry of its parent: such a token
-- earns no retry of its own, which is what stops a thief and a victim from alternating forever.
-- Not indexed, so setting it keeps the row's update HOT.
ALTER TABLE refresh_tokens ADD COLUMN reissued_at TIMESTAMPTZ;

-- +goose Down
ALTER TABLE refresh_tokens DROP COLUMN reissued_at;
