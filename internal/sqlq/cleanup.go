package sqlq

import (
	"context"
	"time"
)

// deadTokens is the condition on refresh_tokens that selects what retention no longer needs, with
// the cutoff as $1: tokens revoked before the cutoff, or expired before it in a session that has no
// live token left at the cutoff. A live session keeps its whole chain (fluxauth.CleanupStore says
// why).
const deadTokens = `(revoked_at IS NOT NULL AND revoked_at < $1) OR (expires_at < $1 AND NOT EXISTS (
	SELECT 1 FROM refresh_tokens live WHERE live.session_id = refresh_tokens.session_id
	AND live.revoked_at IS NULL AND live.spent_at IS NULL AND live.expires_at >= $1))`

// DeleteDeadTokens deletes, in one short statement, up to limit refresh tokens revoked before
// cutoff, or expired before it in a session with no live token left; it returns how many.
func (s Store) DeleteDeadTokens(ctx context.Context, cutoff time.Time, limit int) (int, error) {
	n, err := s.write.Exec(ctx, s.d.rebind(`DELETE FROM refresh_tokens WHERE id IN (
		SELECT id FROM refresh_tokens WHERE `+deadTokens+` LIMIT $2`+s.d.SkipLocked+`)`), s.d.Time(cutoff), limit)
	return int(n), err
}

// CountDeadTokens counts what DeleteDeadTokens would delete.
func (s Store) CountDeadTokens(ctx context.Context, cutoff time.Time) (int, error) {
	var n int
	err := s.read.QueryRow(ctx, s.d.rebind(`SELECT COUNT(*) FROM refresh_tokens WHERE `+deadTokens), s.d.Time(cutoff)).Scan(&n)
	return n, err
}

// DeleteEventsBefore deletes, in one short statement, up to limit security events created before
// cutoff; it returns how many.
func (s Store) DeleteEventsBefore(ctx context.Context, cutoff time.Time, limit int) (int, error) {
	n, err := s.write.Exec(ctx, s.d.rebind(`DELETE FROM security_events WHERE id IN (
		SELECT id FROM security_events WHERE created_at < $1 LIMIT $2`+s.d.SkipLocked+`)`), s.d.Time(cutoff), limit)
	return int(n), err
}

// CountEventsBefore counts security events created before cutoff.
func (s Store) CountEventsBefore(ctx context.Context, cutoff time.Time) (int, error) {
	var n int
	err := s.read.QueryRow(ctx, s.d.rebind(`SELECT COUNT(*) FROM security_events WHERE created_at < $1`), s.d.Time(cutoff)).Scan(&n)
	return n, err
}
