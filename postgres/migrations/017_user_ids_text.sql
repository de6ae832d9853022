-- +goose Up
-- User IDs become text: the legacy server's users keep their IDs ("123") when imported, and every
-- table that refers to a user by its ID keeps working. New accounts still get UUIDv7 strings. An ID
-- is 1 to 128 of the characters the API accepts in a path segment unescaped, compared byte for byte
-- (text's equality, whatever the collation, is byte equality for these characters).
--
-- Not readable by the binary before it: that binary's queries cast user IDs to uuid, and PostgreSQL
-- refuses text = uuid. Upgrading means stopping every instance, migrating, then starting this
-- binary (docs/operations.md, "Upgrading").
ALTER TABLE identities DROP CONSTRAINT identities_user_id_fkey;
ALTER TABLE device_tokens DROP CONSTRAINT device_tokens_user_id_fkey;
ALTER TABLE mail_outbox DROP CONSTRAINT mail_outbox_user_id_fkey;
ALTER TABLE link_tokens DROP CONSTRAINT link_tokens_user_id_fkey;

ALTER TABLE users ALTER COLUMN id TYPE TEXT;
ALTER TABLE identities ALTER COLUMN user_id TYPE TEXT;
ALTER TABLE device_tokens ALTER COLUMN user_id TYPE TEXT;
ALTER TABLE mail_outbox ALTER COLUMN user_id TYPE TEXT;
ALTER TABLE link_tokens ALTER COLUMN user_id TYPE TEXT;
ALTER TABLE refresh_tokens ALTER COLUMN user_id TYPE TEXT;
ALTER TABLE security_events ALTER COLUMN user_id TYPE TEXT;

ALTER TABLE users ADD CONSTRAINT users_id_format CHECK (id ~ '^[A-Za-z0-9._~:@-]{1,128}$');
ALTER TABLE identities ADD CONSTRAINT identities_user_id_fkey
    FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE;
ALTER TABLE device_tokens ADD CONSTRAINT device_tokens_user_id_fkey
    FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE;
ALTER TABLE mail_outbox ADD CONSTRAINT mail_outbox_user_id_fkey
    FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE SET NULL;
ALTER TABLE link_tokens ADD CONSTRAINT link_tokens_user_id_fkey
    FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE;

-- +goose Down
-- Back to uuid: refused (the cast fails, nothing changes) while any user has an ID that is not a
-- UUID, such as an imported one; export those users first (fluxauth users export) if the way back
-- is to the legacy server.
ALTER TABLE identities DROP CONSTRAINT identities_user_id_fkey;
ALTER TABLE device_tokens DROP CONSTRAINT device_tokens_user_id_fkey;
ALTER TABLE mail_outbox DROP CONSTRAINT mail_outbox_user_id_fkey;
ALTER TABLE link_tokens DROP CONSTRAINT link_tokens_user_id_fkey;
ALTER TABLE users DROP CONSTRAINT users_id_format;

ALTER TABLE users ALTER COLUMN id TYPE UUID USING id::uuid;
ALTER TABLE identities ALTER COLUMN user_id TYPE UUID USING user_id::uuid;
ALTER TABLE device_tokens ALTER COLUMN user_id TYPE UUID USING user_id::uuid;
ALTER TABLE mail_outbox ALTER COLUMN user_id TYPE UUID USING user_id::uuid;
ALTER TABLE link_tokens ALTER COLUMN user_id TYPE UUID USING user_id::uuid;
ALTER TABLE refresh_tokens ALTER COLUMN user_id TYPE VARCHAR(255);
ALTER TABLE security_events ALTER COLUMN user_id TYPE VARCHAR(255);

ALTER TABLE identities ADD CONSTRAINT identities_user_id_fkey
    FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE;
ALTER TABLE device_tokens ADD CONSTRAINT device_tokens_user_id_fkey
    FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE;
ALTER TABLE mail_outbox ADD CONSTRAINT mail_outbox_user_id_fkey
    FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE SET NULL;
ALTER TABLE link_tokens ADD CONSTRAINT link_tokens_user_id_fkey
    FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE;
