package postgres

import (
	"context"
)

// TryExclusive runs fn while holding a session-level advisory lock named name, on a connection of its
// own, so that of several instances sharing the database only one runs fn at a time.
func (db *DB) TryExclusive(ctx context.Context, name string, fn func(ctx context.Context) error) (bool, error) {
	held, err := db.pool.Acquire(ctx)
	if err != nil {
		return false, mapErr(err)
	}
	defer held.Release()
	var got bool
	if err := held.QueryRow(ctx, `SELECT pg_try_advisory_lock(hashtextextended($1, 7))`, "fluxauth:"+name).Scan(&got); err != nil {
		return false, mapErr(err)
	}
	if !got {
		return false, nil
	}
	defer func() {
		// Unlock even if ctx ended; a lost connection releases the lock by itself.
		_, _ = held.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock(hashtextextended($1, 7))`, "fluxauth:"+name)
	}()
	return true, fn(ctx)
}
