package postgres

import (
	"context"
	"time"

	"github.com/fluxstudio/fluxauth"
	"github.com/fluxstudio/fluxauth/internal/sqlq"
)

// Emails are compared ignoring the case of ASCII letters only, as the SQLite store's NOCASE column
// compares them: under the "C" collation lower() folds A-Z and nothing else, whatever the locale
// the database was created with. lower(email COLLATE "C") is the expression of the unique index
// idx_users_email, which these lookups use.

// UserByEmail matches email ignoring the case of ASCII letters.
func (db *DB) UserByEmail(ctx context.Context, email string) (*fluxauth.User, error) {
	return sqlq.ScanUser(conn{db.pool}.QueryRow(ctx, `SELECT `+sqlq.UserColumns+` FROM users
		WHERE lower(email COLLATE "C") = lower($1 COLLATE "C")`, email))
}

// SetUserType changes the type of the user with email, compared as UserByEmail does;
// fluxauth.ErrNotFound when there is none.
func (db *DB) SetUserType(ctx context.Context, email, userType string, at time.Time) error {
	return sqlq.AffectedOne(conn{db.pool}.Exec(ctx, `UPDATE users SET user_type = $1, updated_at = $2
		WHERE lower(email COLLATE "C") = lower($3 COLLATE "C")`, userType, dialect.Time(at), email))
}
