-- +goose Up
-- User IDs are text in every table here since 001 (SQLite has no uuid type), so imported IDs such
-- as "123" fit as they are. What this adds is PostgreSQL's users_id_format check: an ID is 1 to
-- 128 of A-Z a-z 0-9 . _ ~ : @ -, compared byte for byte (the column's BINARY collation). Text
-- functions stop at a NUL byte, so the length and the NUL are checked on the bytes.
-- +goose StatementBegin
CREATE TRIGGER users_id_format_insert BEFORE INSERT ON users
WHEN typeof(NEW.id) <> 'text' OR length(CAST(NEW.id AS BLOB)) NOT BETWEEN 1 AND 128
    OR instr(CAST(NEW.id AS BLOB), x'00') > 0 OR NEW.id GLOB '*[^A-Za-z0-9._~:@-]*'
BEGIN
    SELECT RAISE(ABORT, 'CHECK constraint failed: users_id_format');
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER users_id_format_update BEFORE UPDATE OF id ON users
WHEN typeof(NEW.id) <> 'text' OR length(CAST(NEW.id AS BLOB)) NOT BETWEEN 1 AND 128
    OR instr(CAST(NEW.id AS BLOB), x'00') > 0 OR NEW.id GLOB '*[^A-Za-z0-9._~:@-]*'
BEGIN
    SELECT RAISE(ABORT, 'CHECK constraint failed: users_id_format');
END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER users_id_format_update;
DROP TRIGGER users_id_format_insert;
