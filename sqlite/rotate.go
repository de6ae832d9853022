package sqlite

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/fluxstudio/fluxauth"
	"github.com/fluxstudio/fluxauth/internal/sqlq"
)

// lockTokenQuery reads a token by hash with its user.
var lockTokenQuery = `SELECT ` + sqlq.Qualify("t", sqlq.TokenColumns) + `, ` + sqlq.TokenUserColumns + `
	FROM refresh_tokens t LEFT JOIN users u ON u.id = t.user_id
	WHERE t.token_hash = ?1`

// LockRefreshToken reads the token and its user. The writer is serial, so the session is already
// locked and the row is current.
func (t *tx) LockRefreshToken(ctx context.Context, tokenHash string) (*fluxauth.RefreshToken, *fluxauth.User, error) {
	return sqlq.ScanTokenUser(conn{t.q}.QueryRow(ctx, lockTokenQuery, tokenHash))
}

// RotateRefreshToken spends current and inserts next, only if current is live.
func (t *tx) RotateRefreshToken(ctx context.Context, currentID string, next *fluxauth.RefreshToken, at time.Time) (bool, error) {
	n, err := conn{t.q}.Exec(ctx, `UPDATE refresh_tokens SET spent_at = ?1, last_used_at = ?1
		WHERE id = ?2 AND spent_at IS NULL AND revoked_at IS NULL`, dialect.Time(at), currentID)
	if err != nil || n != 1 {
		return false, err
	}
	if next.ID == "" {
		next.ID = uuid.Must(uuid.NewV7()).String()
	}
	return true, t.InsertRefreshToken(ctx, next)
}
