package postgres

import (
	"context"
	"time"

	"github.com/fluxstudio/fluxauth"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

const tokenColumns = `id::text, session_id::text, COALESCE(parent_id::text, ''), user_id, token_hash,
	COALESCE(device_name, ''), COALESCE(device_fingerprint, ''), COALESCE(ip_address, ''), COALESCE(user_agent, ''),
	session_created_at, created_at, last_used_at, expires_at, spent_at, revoked_at, COALESCE(revoked_reason, ''), reissued_at`

func scanToken(row pgx.Row) (*fluxauth.RefreshToken, error) {
	var t fluxauth.RefreshToken
	var spent, revoked, reissued *time.Time
	err := row.Scan(&t.ID, &t.SessionID, &t.ParentID, &t.UserID, &t.TokenHash,
		&t.DeviceName, &t.DeviceFingerprint, &t.IPAddress, &t.UserAgent,
		&t.SessionCreatedAt, &t.CreatedAt, &t.LastUsedAt, &t.ExpiresAt, &spent, &revoked, &t.RevokeReason, &reissued)
	if err != nil {
		return nil, mapErr(err)
	}
	t.SessionCreatedAt, t.CreatedAt = t.SessionCreatedAt.UTC(), t.CreatedAt.UTC()
	t.LastUsedAt, t.ExpiresAt = t.LastUsedAt.UTC(), t.ExpiresAt.UTC()
	t.SpentAt, t.RevokedAt, t.ReissuedAt = fromNull(spent), fromNull(revoked), fromNull(reissued)
	return &t, nil
}

func tokenWhere(ctx context.Context, q querier, where string, args ...any) (*fluxauth.RefreshToken, error) {
	return scanToken(q.QueryRow(ctx, `SELECT `+tokenColumns+` FROM refresh_tokens WHERE `+where, args...))
}

func activeSessions(ctx context.Context, q querier, userID string, now time.Time) ([]*fluxauth.RefreshToken, error) {
	rows, err := q.Query(ctx, `SELECT `+tokenColumns+` FROM refresh_tokens
		WHERE user_id = $1 AND revoked_at IS NULL AND spent_at IS NULL AND expires_at > $2
		ORDER BY last_used_at DESC, id DESC`, userID, ts(now))
	if err != nil {
		return nil, mapErr(err)
	}
	defer rows.Close()
	var out []*fluxauth.RefreshToken
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, mapErr(rows.Err())
}

// ActiveSessions returns the live, unexpired tip of each of the user's sessions, most recently used first.
func (db *DB) ActiveSessions(ctx context.Context, userID string, now time.Time) ([]*fluxauth.RefreshToken, error) {
	return activeSessions(ctx, db.pool, userID, now)
}

// SessionRevoked reports whether the session was revoked, by looking at its newest token: revoking a
// session revokes all its tokens, and nothing is added to a revoked session.
func (db *DB) SessionRevoked(ctx context.Context, sessionID string) (revoked bool, userID string, err error) {
	if !isUUID(sessionID) {
		return false, "", fluxauth.ErrNotFound
	}
	err = db.pool.QueryRow(ctx, `SELECT revoked_at IS NOT NULL, user_id FROM refresh_tokens
		WHERE session_id = $1 ORDER BY created_at DESC LIMIT 1`, sessionID).Scan(&revoked, &userID)
	return revoked, userID, mapErr(err)
}

func (t *tx) RefreshTokenByHash(ctx context.Context, tokenHash string) (*fluxauth.RefreshToken, error) {
	return tokenWhere(ctx, t.q, `token_hash = $1`, tokenHash)
}

func (t *tx) SessionTip(ctx context.Context, sessionID string) (*fluxauth.RefreshToken, error) {
	if !isUUID(sessionID) {
		return nil, fluxauth.ErrNotFound
	}
	return tokenWhere(ctx, t.q,
		`session_id = $1 AND spent_at IS NULL AND revoked_at IS NULL ORDER BY created_at DESC LIMIT 1`, sessionID)
}

// InsertRefreshToken inserts rt, giving it a new ID when it has none.
func (t *tx) InsertRefreshToken(ctx context.Context, rt *fluxauth.RefreshToken) error {
	if rt.ID == "" {
		rt.ID = uuid.Must(uuid.NewV7()).String()
	}
	_, err := t.q.Exec(ctx, `INSERT INTO refresh_tokens (id, session_id, parent_id, user_id, token_hash,
		device_name, device_fingerprint, ip_address, user_agent,
		session_created_at, created_at, last_used_at, expires_at, spent_at, revoked_at, revoked_reason, reissued_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)`,
		rt.ID, rt.SessionID, nullString(rt.ParentID), rt.UserID, rt.TokenHash,
		nullString(rt.DeviceName), nullString(rt.DeviceFingerprint), nullString(rt.IPAddress), nullString(rt.UserAgent),
		ts(rt.SessionCreatedAt), ts(rt.CreatedAt), ts(rt.LastUsedAt), ts(rt.ExpiresAt),
		nullTime(rt.SpentAt), nullTime(rt.RevokedAt), nullString(rt.RevokeReason), nullTime(rt.ReissuedAt))
	return mapErr(err)
}

// MarkReissued records that the token was handed out again by a lost-response retry. A token marked
// already keeps its first mark.
func (t *tx) MarkReissued(ctx context.Context, id string, at time.Time) error {
	if !isUUID(id) {
		return fluxauth.ErrNotFound
	}
	tag, err := t.q.Exec(ctx, `UPDATE refresh_tokens SET reissued_at = COALESCE(reissued_at, $1) WHERE id = $2`, ts(at), id)
	if err != nil {
		return mapErr(err)
	}
	if tag.RowsAffected() == 0 {
		return fluxauth.ErrNotFound
	}
	return nil
}

func (t *tx) RevokeSession(ctx context.Context, sessionID string, at time.Time, reason string) (int, error) {
	if !isUUID(sessionID) {
		return 0, nil
	}
	tag, err := t.q.Exec(ctx, `UPDATE refresh_tokens SET revoked_at = $1, revoked_reason = $2
		WHERE session_id = $3 AND revoked_at IS NULL`, ts(at), nullString(reason), sessionID)
	if err != nil {
		return 0, mapErr(err)
	}
	return int(tag.RowsAffected()), nil
}

func (t *tx) ActiveSessions(ctx context.Context, userID string, now time.Time) ([]*fluxauth.RefreshToken, error) {
	return activeSessions(ctx, t.q, userID, now)
}
