package sqlite

import (
	"context"
	"database/sql"
)

// QueryContext lets tests inspect the schema through the reader pool.
func (db *DB) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return db.reader.QueryContext(ctx, query, args...)
}
