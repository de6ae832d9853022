package sqlite

import (
	"context"
	"database/sql"
	"time"

	"github.com/fluxstudio/fluxauth"
	"github.com/google/uuid"
)

const tokenColumns = `id, session_id, COALESCE(parent_id, ''), user_id, token_hash,
	COALESCE(device_name, ''), COALESCE(device_fingerprint, ''), COALESCE(ip_address, ''), COALESCE(user_agent, ''),
	session_created_at, created_at, last_used_at, expires_at,
	COALESCE(spent_at, ''), COALESCE(revoked_at, ''), COALESCE(revoked_reason, ''), COALESCE(reissued_at, '')`

func scanToken(s scanner) (*fluxauth.RefreshToken, error) {
	var t fluxauth.RefreshToken
	var sessionCreated, created, lastUsed, expires, spent, revoked, reissued string
	err := s.Scan(&t.ID, &t.SessionID, &t.ParentID, &t.UserID, &t.TokenHash,
		&t.DeviceName, &t.DeviceFingerprint, &t.IPAddress, &t.UserAgent,
		&sessionCreated, &created, &lastUsed, &expires, &spent, &revoked, &t.RevokeReason, &reissued)
	if err != nil {
		return nil, mapErr(err)
	}
	for _, f := range []struct {
		dst *time.Time
		src string
	}{
		{&t.SessionCreatedAt, sessionCreated}, {&t.CreatedAt, created}, {&t.LastUsedAt, lastUsed},
		{&t.ExpiresAt, expires}, {&t.SpentAt, spent}, {&t.RevokedAt, revoked}, {&t.ReissuedAt, reissued},
	} {
		if *f.dst, err = parseTime(f.src); err != nil {
			return nil, err
		}
	}
	return &t, nil
}

func tokenWhere(ctx context.Context, q querier, where string, args ...any) (*fluxauth.RefreshToken, error) {
	return scanToken(q.QueryRowContext(ctx, `SELECT `+tokenColumns+` FROM refresh_tokens WHERE `+where, args...))
}

func activeSessions(ctx context.Context, q querier, userID string, now time.Time) ([]*fluxauth.RefreshToken, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+tokenColumns+` FROM refresh_tokens
		WHERE user_id = ? AND revoked_at IS NULL AND spent_at IS NULL AND expires_at > ?
		ORDER BY last_used_at DESC, id DESC`, userID, formatTime(now))
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
	return activeSessions(ctx, db.reader, userID, now)
}

// SessionRevoked reports whether the session was revoked, by looking at its newest token: revoking a
// session revokes all its tokens, and nothing is added to a revoked session.
func (db *DB) SessionRevoked(ctx context.Context, sessionID string) (revoked bool, userID string, err error) {
	err = db.reader.QueryRowContext(ctx, `SELECT revoked_at IS NOT NULL, user_id FROM refresh_tokens
		WHERE session_id = ? ORDER BY created_at DESC LIMIT 1`, sessionID).Scan(&revoked, &userID)
	return revoked, userID, mapErr(err)
}

func (t *tx) RefreshTokenByHash(ctx context.Context, tokenHash string) (*fluxauth.RefreshToken, error) {
	return tokenWhere(ctx, t.q, `token_hash = ?`, tokenHash)
}

func (t *tx) SessionTip(ctx context.Context, sessionID string) (*fluxauth.RefreshToken, error) {
	return tokenWhere(ctx, t.q,
		`session_id = ? AND spent_at IS NULL AND revoked_at IS NULL ORDER BY created_at DESC LIMIT 1`, sessionID)
}

// InsertRefreshToken inserts rt, giving it a new ID when it has none.
func (t *tx) InsertRefreshToken(ctx context.Context, rt *fluxauth.RefreshToken) error {
	if rt.ID == "" {
		rt.ID = uuid.Must(uuid.NewV7()).String()
	}
	_, err := t.q.ExecContext(ctx, `INSERT INTO refresh_tokens (id, session_id, parent_id, user_id, token_hash,
		device_name, device_fingerprint, ip_address, user_agent,
		session_created_at, created_at, last_used_at, expires_at, spent_at, revoked_at, revoked_reason, reissued_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		rt.ID, rt.SessionID, nullString(rt.ParentID), rt.UserID, rt.TokenHash,
		nullString(rt.DeviceName), nullString(rt.DeviceFingerprint), nullString(rt.IPAddress), nullString(rt.UserAgent),
		formatTime(rt.SessionCreatedAt), formatTime(rt.CreatedAt), formatTime(rt.LastUsedAt), formatTime(rt.ExpiresAt),
		nullTime(rt.SpentAt), nullTime(rt.RevokedAt), nullString(rt.RevokeReason), nullTime(rt.ReissuedAt))
	return mapErr(err)
}

// MarkReissued records that the token was handed out again by a lost-response retry. A token marked
// already keeps its first mark.
func (t *tx) MarkReissued(ctx context.Context, id string, at time.Time) error {
	return affectedOne(t.q.ExecContext(ctx, `UPDATE refresh_tokens SET reissued_at = COALESCE(reissued_at, ?) WHERE id = ?`,
		formatTime(at), id))
}

func (t *tx) RevokeSession(ctx context.Context, sessionID string, at time.Time, reason string) (int, error) {
	res, err := t.q.ExecContext(ctx, `UPDATE refresh_tokens SET revoked_at = ?, revoked_reason = ?
		WHERE session_id = ? AND revoked_at IS NULL`, formatTime(at), nullString(reason), sessionID)
	if err != nil {
		return 0, mapErr(err)
	}
	n, err := res.RowsAffected()
	return int(n), mapErr(err)
}

func (t *tx) ActiveSessions(ctx context.Context, userID string, now time.Time) ([]*fluxauth.RefreshToken, error) {
	return activeSessions(ctx, t.q, userID, now)
}

// affectedOne turns an UPDATE that matched no row into fluxauth.ErrNotFound.
func affectedOne(res sql.Result, err error) error {
	if err != nil {
		return mapErr(err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return mapErr(err)
	}
	if n == 0 {
		return fluxauth.ErrNotFound
	}
	return nil
}
