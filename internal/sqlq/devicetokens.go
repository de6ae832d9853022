package sqlq

import (
	"context"
	"time"

	"github.com/fluxstudio/fluxauth"
)

// InsertDeviceToken inserts dt as it is.
func (t Tx) InsertDeviceToken(ctx context.Context, dt *fluxauth.DeviceToken) error {
	_, err := t.q.Exec(ctx, t.d.rebind(`INSERT INTO device_tokens (id, user_id, failures, created_at, expires_at, dead_at, dead_reason)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`),
		dt.ID, dt.UserID, dt.Failures, t.d.Time(dt.CreatedAt), t.d.Time(dt.ExpiresAt), t.d.nullTime(dt.DeadAt), nullString(dt.DeadReason))
	return err
}

// AttemptDeviceToken counts one failure in advance on a usable device token of userID. The check
// and the count are one UPDATE: PostgreSQL re-checks its WHERE against the row as the previous
// writer left it, and SQLite writes one statement at a time, so concurrent attempts never count
// past maxFailures.
func (s Store) AttemptDeviceToken(ctx context.Context, id, userID string, maxFailures int, now time.Time) (bool, error) {
	if s.d.badID(id) {
		return false, nil
	}
	n, err := s.write.Exec(ctx, s.d.rebind(`UPDATE device_tokens SET failures = failures + 1
		WHERE id = $1 AND user_id = $2 AND dead_at IS NULL AND expires_at > $3 AND failures < $4`),
		id, userID, s.d.Time(now), maxFailures)
	return n == 1, err
}

// FailDeviceToken ends the device token once maxFailures failures are counted on it.
func (s Store) FailDeviceToken(ctx context.Context, id string, maxFailures int, at time.Time) (bool, error) {
	if s.d.badID(id) {
		return false, nil
	}
	n, err := s.write.Exec(ctx, s.d.rebind(`UPDATE device_tokens SET dead_at = $1, dead_reason = 'failures'
		WHERE id = $2 AND dead_at IS NULL AND failures >= $3`), s.d.Time(at), id, maxFailures)
	return n == 1, err
}

// ResetDeviceToken clears a live device token's failures and moves its expiry to expiresAt.
func (t Tx) ResetDeviceToken(ctx context.Context, id string, expiresAt time.Time) (bool, error) {
	if t.d.badID(id) {
		return false, nil
	}
	n, err := t.q.Exec(ctx, t.d.rebind(`UPDATE device_tokens SET failures = 0, expires_at = $1
		WHERE id = $2 AND dead_at IS NULL`), t.d.Time(expiresAt), id)
	return n == 1, err
}

// RevokeDeviceTokens ends every device token of the user that is not dead yet.
func (t Tx) RevokeDeviceTokens(ctx context.Context, userID string, at time.Time, reason string) (int, error) {
	n, err := t.q.Exec(ctx, t.d.rebind(`UPDATE device_tokens SET dead_at = $1, dead_reason = $2
		WHERE user_id = $3 AND dead_at IS NULL`), t.d.Time(at), nullString(reason), userID)
	return int(n), err
}

// deadDeviceTokens is the condition on device_tokens, with the cutoff as $1, that selects what
// retention no longer needs: tokens that died, or expired, before the cutoff.
const deadDeviceTokens = `(dead_at IS NOT NULL AND dead_at < $1) OR expires_at < $1`

// DeleteDeadDeviceTokens deletes, in one short statement, up to limit device tokens that died or
// expired before cutoff; it returns how many.
func (s Store) DeleteDeadDeviceTokens(ctx context.Context, cutoff time.Time, limit int) (int, error) {
	n, err := s.write.Exec(ctx, s.d.rebind(`DELETE FROM device_tokens WHERE id IN (
		SELECT id FROM device_tokens WHERE `+deadDeviceTokens+` LIMIT $2`+s.d.SkipLocked+`)`), s.d.Time(cutoff), limit)
	return int(n), err
}

// CountDeadDeviceTokens counts what DeleteDeadDeviceTokens would delete.
func (s Store) CountDeadDeviceTokens(ctx context.Context, cutoff time.Time) (int, error) {
	var n int
	err := s.read.QueryRow(ctx, s.d.rebind(`SELECT COUNT(*) FROM device_tokens WHERE `+deadDeviceTokens), s.d.Time(cutoff)).Scan(&n)
	return n, err
}
