package postgres

import (
	"context"
	"time"

	"github.com/fluxstudio/fluxauth"
	"github.com/fluxstudio/fluxauth/internal/sqlq"
)

// UserByEmail matches email case-insensitively, through the unique index on lower(email).
func (db *DB) UserByEmail(ctx context.Context, email string) (*fluxauth.User, error) {
	return sqlq.ScanUser(conn{db.pool}.QueryRow(ctx, `SELECT `+sqlq.UserColumns+` FROM users WHERE lower(email) = lower($1)`, email))
}

// SetUserType changes the type of the user with email, compared as UserByEmail does;
// fluxauth.ErrNotFound when there is none.
func (db *DB) SetUserType(ctx context.Context, email, userType string, at time.Time) error {
	return sqlq.AffectedOne(conn{db.pool}.Exec(ctx, `UPDATE users SET user_type = $1, updated_at = $2 WHERE lower(email) = lower($3)`,
		userType, dialect.Time(at), email))
}
