package sqlite

import (
	"context"
	"database/sql"
)

// QueryContext lets tests inspect the schema through the reader pool.
func (db *DB) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return db.reader.QueryContext(ctx, query, args...)
}

// ExecContext lets tests write what the store would not, through the writer.
func (db *DB) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return db.writer.ExecContext(ctx, query, args...)
}

// WriterWaits counts the times a transaction has waited for the writer connection: in one process,
// that is how a write transaction waits for another's lock.
func (db *DB) WriterWaits() int64 { return db.writer.Stats().WaitCount }
