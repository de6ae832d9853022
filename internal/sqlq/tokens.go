package sqlq

import (
	"context"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/fluxstudio/fluxauth"
)

// TokenColumns are refresh_tokens' columns in the order the token scans read them and TokenValues
// writes them.
const TokenColumns = `id, session_id, parent_id, user_id, token_hash,
	device_name, device_fingerprint, ip_address, user_agent,
	session_created_at, created_at, last_used_at, expires_at, spent_at, revoked_at, revoked_reason, reissued_at, auth_time`

// TokenUserColumns are the columns of the token's user, aliased u, that ScanTokenUser reads after
// the token's; a LEFT JOIN leaves them NULL when the account is gone.
const TokenUserColumns = `u.id, u.email, u.name, u.user_type, u.email_verified_at`

// Qualify prefixes each of columns (a comma-separated list) with alias and a dot.
func Qualify(alias, columns string) string {
	list := strings.Split(columns, ",")
	for i, c := range list {
		list[i] = alias + "." + strings.TrimSpace(c)
	}
	return strings.Join(list, ", ")
}

// scanToken reads a row of TokenColumns, then extra.
func scanToken(row Scanner, extra ...any) (*fluxauth.RefreshToken, error) {
	var t fluxauth.RefreshToken
	dest := append([]any{scanText(&t.ID), scanText(&t.SessionID), scanText(&t.ParentID), &t.UserID, &t.TokenHash,
		scanText(&t.DeviceName), scanText(&t.DeviceFingerprint), scanText(&t.IPAddress), scanText(&t.UserAgent),
		scanTime(&t.SessionCreatedAt), scanTime(&t.CreatedAt), scanTime(&t.LastUsedAt), scanTime(&t.ExpiresAt),
		scanTime(&t.SpentAt), scanTime(&t.RevokedAt), scanText(&t.RevokeReason), scanTime(&t.ReissuedAt), scanTime(&t.AuthTime)}, extra...)
	if err := row.Scan(dest...); err != nil {
		return nil, err
	}
	return &t, nil
}

// ScanTokenUser reads a row of TokenColumns and TokenUserColumns, then extra. The user is nil when
// the token's account is gone.
func ScanTokenUser(row Scanner, extra ...any) (*fluxauth.RefreshToken, *fluxauth.User, error) {
	var u fluxauth.User
	t, err := scanToken(row, append([]any{scanText(&u.ID), scanText(&u.Email), scanText(&u.Name), scanText(&u.UserType),
		scanTime(&u.EmailVerifiedAt)}, extra...)...)
	if err != nil || u.ID == "" {
		return t, nil, err
	}
	return t, &u, nil
}

// TokenValues returns the placeholders of a row of TokenColumns holding rt, and the arguments:
// before (taking the first placeholders, which the caller writes itself), then rt's.
func TokenValues(d Dialect, rt *fluxauth.RefreshToken, before ...any) (string, []any) {
	a := &args{d: d, list: before}
	values := []string{a.add(rt.ID), a.add(rt.SessionID), a.add(nullString(rt.ParentID)), a.add(rt.UserID), a.add(rt.TokenHash),
		a.add(nullString(rt.DeviceName)), a.add(nullString(rt.DeviceFingerprint)), a.add(nullString(rt.IPAddress)), a.add(nullString(rt.UserAgent)),
		a.add(d.Time(rt.SessionCreatedAt)), a.add(d.Time(rt.CreatedAt)), a.add(d.Time(rt.LastUsedAt)), a.add(d.Time(rt.ExpiresAt)),
		a.add(d.nullTime(rt.SpentAt)), a.add(d.nullTime(rt.RevokedAt)), a.add(nullString(rt.RevokeReason)), a.add(d.nullTime(rt.ReissuedAt)),
		a.add(d.nullTime(rt.AuthTime))}
	return strings.Join(values, ", "), a.list
}

// InsertRefreshToken inserts rt, giving it a new ID when it has none.
func (t Tx) InsertRefreshToken(ctx context.Context, rt *fluxauth.RefreshToken) error {
	if rt.ID == "" {
		rt.ID = uuid.Must(uuid.NewV7()).String()
	}
	values, args := TokenValues(t.d, rt)
	_, err := t.q.Exec(ctx, `INSERT INTO refresh_tokens (`+TokenColumns+`) VALUES (`+values+`)`, args...)
	return err
}

// RefreshTokenByHash returns the token with the hash, or fluxauth.ErrNotFound.
func (t Tx) RefreshTokenByHash(ctx context.Context, tokenHash string) (*fluxauth.RefreshToken, error) {
	return scanToken(t.q.QueryRow(ctx, t.d.rebind(`SELECT `+TokenColumns+` FROM refresh_tokens WHERE token_hash = $1`), tokenHash))
}

// SessionTip returns the session's live token (neither spent nor revoked), or fluxauth.ErrNotFound.
func (t Tx) SessionTip(ctx context.Context, sessionID string) (*fluxauth.RefreshToken, error) {
	if t.d.badID(sessionID) {
		return nil, fluxauth.ErrNotFound
	}
	return scanToken(t.q.QueryRow(ctx, t.d.rebind(`SELECT `+TokenColumns+` FROM refresh_tokens
		WHERE session_id = $1 AND spent_at IS NULL AND revoked_at IS NULL ORDER BY created_at DESC LIMIT 1`), sessionID))
}

// activeSessionsQuery lists the live tip of each of the user's ($1) sessions that has not expired
// at $2. A spend changes no indexed column (so that it is a HOT update on PostgreSQL), so no index
// holds only live tokens; rather than filter the user's whole chains, the query steps from one
// session of the user to the next through idx_refresh_tokens_user_id (user_id, session_id,
// created_at, id), one index probe each, and reads each session's newest token, which is its tip
// when the session is live (a rotation inserts the successor after its parent; SessionRevoked
// relies on the same). Its cost grows with the sessions the user has (until cleanup), not with how
// often they were refreshed.
var activeSessionsQuery = `WITH RECURSIVE s(session_id) AS (
		SELECT (SELECT session_id FROM refresh_tokens WHERE user_id = $1 ORDER BY session_id LIMIT 1)
		UNION ALL
		SELECT (SELECT r.session_id FROM refresh_tokens r WHERE r.user_id = $1 AND r.session_id > s.session_id
			ORDER BY r.session_id LIMIT 1)
		FROM s WHERE s.session_id IS NOT NULL)
	SELECT ` + Qualify("t", TokenColumns) + ` FROM s JOIN refresh_tokens t ON t.id = (
		SELECT x.id FROM refresh_tokens x WHERE x.user_id = $1 AND x.session_id = s.session_id
			ORDER BY x.created_at DESC, x.id DESC LIMIT 1)
	WHERE t.revoked_at IS NULL AND t.spent_at IS NULL AND t.expires_at > $2
	ORDER BY t.last_used_at DESC, t.id DESC`

// ActiveSessions returns the live tip of each of the user's sessions whose tip has not expired at
// now, most recently used first.
func (t Tx) ActiveSessions(ctx context.Context, userID string, now time.Time) ([]*fluxauth.RefreshToken, error) {
	var out []*fluxauth.RefreshToken
	err := t.q.Query(ctx, t.d.rebind(activeSessionsQuery), []any{userID, t.d.Time(now)}, func(row Scanner) error {
		rt, err := scanToken(row)
		if err != nil {
			return err
		}
		out = append(out, rt)
		return nil
	})
	return out, err
}

// ActiveSessions returns the live tip of each of the user's sessions whose tip has not expired at
// now, most recently used first.
func (s Store) ActiveSessions(ctx context.Context, userID string, now time.Time) ([]*fluxauth.RefreshToken, error) {
	return s.reader().ActiveSessions(ctx, userID, now)
}

// SessionRevoked reports whether the session was revoked, by looking at its newest token (revoking
// a session revokes all its tokens, and nothing is added to a revoked session), and the user it
// belongs to. fluxauth.ErrNotFound if the session never existed.
func (s Store) SessionRevoked(ctx context.Context, sessionID string) (revoked bool, userID string, err error) {
	if s.d.badID(sessionID) {
		return false, "", fluxauth.ErrNotFound
	}
	err = s.read.QueryRow(ctx, s.d.rebind(`SELECT revoked_at IS NOT NULL, user_id FROM refresh_tokens
		WHERE session_id = $1 ORDER BY created_at DESC LIMIT 1`), sessionID).Scan(&revoked, &userID)
	return revoked, userID, err
}

// MarkReissued records that the token was handed out again by a lost-response retry. A token
// marked already keeps its first mark. fluxauth.ErrNotFound if there is no such token.
func (t Tx) MarkReissued(ctx context.Context, id string, at time.Time) error {
	if t.d.badID(id) {
		return fluxauth.ErrNotFound
	}
	return AffectedOne(t.q.Exec(ctx, t.d.rebind(`UPDATE refresh_tokens SET reissued_at = COALESCE(reissued_at, $1) WHERE id = $2`),
		t.d.Time(at), id))
}

// RevokeSession marks every not yet revoked token of the session revoked and returns how many it
// marked.
func (t Tx) RevokeSession(ctx context.Context, sessionID string, at time.Time, reason string) (int, error) {
	if t.d.badID(sessionID) {
		return 0, nil
	}
	n, err := t.q.Exec(ctx, t.d.rebind(`UPDATE refresh_tokens SET revoked_at = $1, revoked_reason = $2
		WHERE session_id = $3 AND revoked_at IS NULL`), t.d.Time(at), nullString(reason), sessionID)
	return int(n), err
}
