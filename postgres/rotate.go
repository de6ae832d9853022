package postgres

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/fluxstudio/fluxauth"
	"github.com/fluxstudio/fluxauth/internal/sqlq"
)

// lockTokenQuery reads a token by hash with its user and takes its session's advisory lock (the one
// LockSession takes), whose void result is read as text.
var lockTokenQuery = `SELECT ` + sqlq.Qualify("t", sqlq.TokenColumns) + `, ` + sqlq.TokenUserColumns + `,
	pg_advisory_xact_lock(hashtextextended(t.session_id::text, 0))::text
	FROM refresh_tokens t LEFT JOIN users u ON u.id = t.user_id
	WHERE t.token_hash = $1`

// LockRefreshToken reads the token and its user and takes the session's advisory lock in one
// statement.
func (t *tx) LockRefreshToken(ctx context.Context, tokenHash string) (*fluxauth.RefreshToken, *fluxauth.User, error) {
	var lock string
	return sqlq.ScanTokenUser(conn{t.q}.QueryRow(ctx, lockTokenQuery, tokenHash), &lock)
}

// RotateRefreshToken spends current and inserts next in one statement, only if current is live.
func (t *tx) RotateRefreshToken(ctx context.Context, currentID string, next *fluxauth.RefreshToken, at time.Time) (bool, error) {
	if !isUUID(currentID) {
		return false, nil
	}
	if next.ID == "" {
		next.ID = uuid.Must(uuid.NewV7()).String()
	}
	values, args := sqlq.TokenValues(dialect, next, dialect.Time(at), currentID)
	n, err := conn{t.q}.Exec(ctx, `WITH spent AS (
			UPDATE refresh_tokens SET spent_at = $1, last_used_at = $1
			WHERE id = $2 AND spent_at IS NULL AND revoked_at IS NULL RETURNING id)
		INSERT INTO refresh_tokens (`+sqlq.TokenColumns+`) SELECT `+values+` FROM spent`, args...)
	return n == 1, err
}
