package postgres

import (
	"context"
	"time"

	"github.com/fluxstudio/fluxauth"
)

var _ fluxauth.CleanupStore = (*DB)(nil)

// deadTokens selects refresh tokens retention no longer needs: revoked before the cutoff, or expired
// before it in a session that has no live token left at the cutoff.
const deadTokens = `(revoked_at IS NOT NULL AND revoked_at < $1) OR (expires_at < $1 AND NOT EXISTS (
	SELECT 1 FROM refresh_tokens live WHERE live.session_id = refresh_tokens.session_id
	AND live.revoked_at IS NULL AND live.spent_at IS NULL AND live.expires_at >= $1))`

// DeleteDeadTokens deletes up to limit dead refresh tokens in one short statement.
func (db *DB) DeleteDeadTokens(ctx context.Context, cutoff time.Time, limit int) (int, error) {
	// SKIP LOCKED leaves rows a running refresh or revocation holds to the next batch instead of
	// waiting for them.
	tag, err := db.pool.Exec(ctx, `DELETE FROM refresh_tokens WHERE id IN (
		SELECT id FROM refresh_tokens WHERE `+deadTokens+` LIMIT $2 FOR UPDATE SKIP LOCKED)`, cutoff, limit)
	return int(tag.RowsAffected()), mapErr(err)
}

// CountDeadTokens counts what DeleteDeadTokens would delete.
func (db *DB) CountDeadTokens(ctx context.Context, cutoff time.Time) (int, error) {
	var n int
	err := db.pool.QueryRow(ctx, `SELECT COUNT(*) FROM refresh_tokens WHERE `+deadTokens, cutoff).Scan(&n)
	return n, mapErr(err)
}

// DeleteEventsBefore deletes up to limit security events created before cutoff.
func (db *DB) DeleteEventsBefore(ctx context.Context, cutoff time.Time, limit int) (int, error) {
	tag, err := db.pool.Exec(ctx, `DELETE FROM security_events WHERE id IN (
		SELECT id FROM security_events WHERE created_at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)`, cutoff, limit)
	return int(tag.RowsAffected()), mapErr(err)
}

// CountEventsBefore counts security events created before cutoff.
func (db *DB) CountEventsBefore(ctx context.Context, cutoff time.Time) (int, error) {
	var n int
	err := db.pool.QueryRow(ctx, `SELECT COUNT(*) FROM security_events WHERE created_at < $1`, cutoff).Scan(&n)
	return n, mapErr(err)
}

// TryExclusive runs fn while holding a session-level advisory lock named name, on a connection of its
// own, so that of several instances sharing the database only one runs fn at a time.
func (db *DB) TryExclusive(ctx context.Context, name string, fn func(ctx context.Context) error) (bool, error) {
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return false, mapErr(err)
	}
	defer conn.Release()
	var got bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock(hashtextextended($1, 7))`, "fluxauth:"+name).Scan(&got); err != nil {
		return false, mapErr(err)
	}
	if !got {
		return false, nil
	}
	defer func() {
		// Unlock even if ctx ended; a lost connection releases the lock by itself.
		_, _ = conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock(hashtextextended($1, 7))`, "fluxauth:"+name)
	}()
	return true, fn(ctx)
}
