package sqlite

import (
	"context"
	"time"

	"github.com/fluxstudio/fluxauth"
	"github.com/fluxstudio/fluxauth/internal/sqlq"
)

// UserByEmail matches email ignoring the case of ASCII letters only: the column is COLLATE NOCASE,
// which folds nothing else. The PostgreSQL store compares the same way.
func (db *DB) UserByEmail(ctx context.Context, email string) (*fluxauth.User, error) {
	return sqlq.ScanUser(conn{db.reader}.QueryRow(ctx, `SELECT `+sqlq.UserColumns+` FROM users WHERE email = ?1`, email))
}

// SetUserType changes the type of the user with email, compared as UserByEmail does;
// fluxauth.ErrNotFound when there is none.
func (db *DB) SetUserType(ctx context.Context, email, userType string, at time.Time) error {
	return sqlq.AffectedOne(conn{db.writer}.Exec(ctx, `UPDATE users SET user_type = ?1, updated_at = ?2 WHERE email = ?3`,
		userType, dialect.Time(at), email))
}
