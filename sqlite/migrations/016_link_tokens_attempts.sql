-- +goose Up
-- Tries of a link token (AttemptLinkToken counts each before it is checked): a token dies after a
-- few refused ones. Nullable, so the binary before this one, which never writes it, keeps working;
-- NULL counts as no tries.
ALTER TABLE link_tokens ADD COLUMN attempts INTEGER;

-- +goose Down
ALTER TABLE link_tokens DROP COLUMN attempts;
