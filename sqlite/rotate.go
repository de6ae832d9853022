package sqlite

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/fluxstudio/fluxauth"
)

// The token's columns as tokenColumns lists them, from the alias t, then its user's.
const lockTokenQuery = `SELECT t.id, t.session_id, COALESCE(t.parent_id, ''), t.user_id, t.token_hash,
	COALESCE(t.device_name, ''), COALESCE(t.device_fingerprint, ''), COALESCE(t.ip_address, ''), COALESCE(t.user_agent, ''),
	t.session_created_at, t.created_at, t.last_used_at, t.expires_at,
	COALESCE(t.spent_at, ''), COALESCE(t.revoked_at, ''), COALESCE(t.revoked_reason, ''), COALESCE(t.reissued_at, ''),
	COALESCE(u.id, ''), COALESCE(u.email, ''), COALESCE(u.name, ''), COALESCE(u.user_type, '')
	FROM refresh_tokens t LEFT JOIN users u ON u.id = t.user_id
	WHERE t.token_hash = ?`

// LockRefreshToken reads the token and its user. The writer is serial, so the session is already
// locked and the row is current.
func (t *tx) LockRefreshToken(ctx context.Context, tokenHash string) (*fluxauth.RefreshToken, *fluxauth.User, error) {
	var u fluxauth.User
	rt, err := scanToken(withExtra{t.q.QueryRowContext(ctx, lockTokenQuery, tokenHash), []any{&u.ID, &u.Email, &u.Name, &u.UserType}})
	if err != nil {
		return nil, nil, err
	}
	if u.ID == "" {
		return rt, nil, nil
	}
	return rt, &u, nil
}

// RotateRefreshToken spends current and inserts next, only if current is live.
func (t *tx) RotateRefreshToken(ctx context.Context, currentID string, next *fluxauth.RefreshToken, at time.Time) (bool, error) {
	res, err := t.q.ExecContext(ctx, `UPDATE refresh_tokens SET spent_at = ?, last_used_at = ?
		WHERE id = ? AND spent_at IS NULL AND revoked_at IS NULL`, formatTime(at), formatTime(at), currentID)
	if err != nil {
		return false, mapErr(err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return false, mapErr(err)
	}
	if next.ID == "" {
		next.ID = uuid.Must(uuid.NewV7()).String()
	}
	return true, t.InsertRefreshToken(ctx, next)
}

// withExtra scans a row whose leading columns are a token's and whose trailing ones go to extra.
type withExtra struct {
	row   scanner
	extra []any
}

func (w withExtra) Scan(dest ...any) error { return w.row.Scan(append(dest, w.extra...)...) }
