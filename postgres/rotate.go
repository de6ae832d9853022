package postgres

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/fluxstudio/fluxauth"
)

// The token's columns as tokenColumns lists them, from the alias t, then its user's.
const lockTokenQuery = `SELECT t.id::text, t.session_id::text, COALESCE(t.parent_id::text, ''), t.user_id, t.token_hash,
	COALESCE(t.device_name, ''), COALESCE(t.device_fingerprint, ''), COALESCE(t.ip_address, ''), COALESCE(t.user_agent, ''),
	t.session_created_at, t.created_at, t.last_used_at, t.expires_at, t.spent_at, t.revoked_at, COALESCE(t.revoked_reason, ''), t.reissued_at,
	COALESCE(u.id::text, ''), COALESCE(u.email, ''), COALESCE(u.name, ''), COALESCE(u.user_type, ''),
	pg_advisory_xact_lock(hashtextextended(t.session_id::text, 0))::text
	FROM refresh_tokens t LEFT JOIN users u ON u.id = t.user_id::uuid
	WHERE t.token_hash = $1`

// LockRefreshToken reads the token and its user and takes the session's advisory lock (the same one
// LockSession takes) in one statement.
func (t *tx) LockRefreshToken(ctx context.Context, tokenHash string) (*fluxauth.RefreshToken, *fluxauth.User, error) {
	var u fluxauth.User
	var lock string
	rt, err := scanToken(withExtra{t.q.QueryRow(ctx, lockTokenQuery, tokenHash), []any{&u.ID, &u.Email, &u.Name, &u.UserType, &lock}})
	if err != nil {
		return nil, nil, err
	}
	if u.ID == "" {
		return rt, nil, nil
	}
	return rt, &u, nil
}

// RotateRefreshToken spends current and inserts next in one statement, only if current is live.
func (t *tx) RotateRefreshToken(ctx context.Context, currentID string, next *fluxauth.RefreshToken, at time.Time) (bool, error) {
	if !isUUID(currentID) {
		return false, nil
	}
	if next.ID == "" {
		next.ID = uuid.Must(uuid.NewV7()).String()
	}
	tag, err := t.q.Exec(ctx, `WITH spent AS (
			UPDATE refresh_tokens SET spent_at = $1, last_used_at = $1
			WHERE id = $2 AND spent_at IS NULL AND revoked_at IS NULL RETURNING id)
		INSERT INTO refresh_tokens (id, session_id, parent_id, user_id, token_hash,
			device_name, device_fingerprint, ip_address, user_agent,
			session_created_at, created_at, last_used_at, expires_at)
		SELECT $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15 FROM spent`,
		ts(at), currentID,
		next.ID, next.SessionID, nullString(next.ParentID), next.UserID, next.TokenHash,
		nullString(next.DeviceName), nullString(next.DeviceFingerprint), nullString(next.IPAddress), nullString(next.UserAgent),
		ts(next.SessionCreatedAt), ts(next.CreatedAt), ts(next.LastUsedAt), ts(next.ExpiresAt))
	if err != nil {
		return false, mapErr(err)
	}
	return tag.RowsAffected() == 1, nil
}

// withExtra scans a row whose leading columns are a token's and whose trailing ones go to extra.
type withExtra struct {
	row   interface{ Scan(dest ...any) error }
	extra []any
}

func (w withExtra) Scan(dest ...any) error { return w.row.Scan(append(dest, w.extra...)...) }
