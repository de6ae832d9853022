package sqlite

import (
	"context"
	"time"

	"github.com/fluxstudio/fluxauth"
)

var _ fluxauth.CleanupStore = (*DB)(nil)

// deadTokens selects refresh tokens retention no longer needs: revoked before the cutoff, or expired
// before it in a session that has no live token left at the cutoff.
const deadTokens = `(revoked_at IS NOT NULL AND revoked_at < ?1) OR (expires_at < ?1 AND NOT EXISTS (
	SELECT 1 FROM refresh_tokens live WHERE live.session_id = refresh_tokens.session_id
	AND live.revoked_at IS NULL AND live.spent_at IS NULL AND live.expires_at >= ?1))`

// DeleteDeadTokens deletes up to limit dead refresh tokens.
func (db *DB) DeleteDeadTokens(ctx context.Context, cutoff time.Time, limit int) (int, error) {
	return db.deleteBatch(ctx, `DELETE FROM refresh_tokens WHERE id IN (SELECT id FROM refresh_tokens WHERE `+deadTokens+` LIMIT ?2)`,
		formatTime(cutoff), limit)
}

// CountDeadTokens counts what DeleteDeadTokens would delete.
func (db *DB) CountDeadTokens(ctx context.Context, cutoff time.Time) (int, error) {
	var n int
	err := db.reader.QueryRowContext(ctx, `SELECT COUNT(*) FROM refresh_tokens WHERE `+deadTokens, formatTime(cutoff)).Scan(&n)
	return n, mapErr(err)
}

// DeleteEventsBefore deletes up to limit security events created before cutoff.
func (db *DB) DeleteEventsBefore(ctx context.Context, cutoff time.Time, limit int) (int, error) {
	return db.deleteBatch(ctx, `DELETE FROM security_events WHERE id IN (SELECT id FROM security_events WHERE created_at < ?1 LIMIT ?2)`,
		formatTime(cutoff), limit)
}

// CountEventsBefore counts security events created before cutoff.
func (db *DB) CountEventsBefore(ctx context.Context, cutoff time.Time) (int, error) {
	var n int
	err := db.reader.QueryRowContext(ctx, `SELECT COUNT(*) FROM security_events WHERE created_at < ?`, formatTime(cutoff)).Scan(&n)
	return n, mapErr(err)
}

func (db *DB) deleteBatch(ctx context.Context, query string, cutoff string, limit int) (int, error) {
	res, err := db.writer.ExecContext(ctx, query, cutoff, limit)
	if err != nil {
		return 0, mapErr(err)
	}
	n, err := res.RowsAffected()
	return int(n), mapErr(err)
}

// TryExclusive runs fn unless this DB is already running the named job. An embedded database has one
// server process; a CLI run beside it would at worst delete the same rows, which is harmless.
func (db *DB) TryExclusive(ctx context.Context, name string, fn func(ctx context.Context) error) (bool, error) {
	if _, busy := db.exclusive.LoadOrStore(name, struct{}{}); busy {
		return false, nil
	}
	defer db.exclusive.Delete(name)
	return true, fn(ctx)
}
