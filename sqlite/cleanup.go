package sqlite

import (
	"context"
)

// TryExclusive runs fn unless this DB is already running the named job. An embedded database has one
// server process; a CLI run beside it would at worst delete the same rows, which is harmless.
func (db *DB) TryExclusive(ctx context.Context, name string, fn func(ctx context.Context) error) (bool, error) {
	if _, busy := db.exclusive.LoadOrStore(name, struct{}{}); busy {
		return false, nil
	}
	defer db.exclusive.Delete(name)
	return true, fn(ctx)
}
