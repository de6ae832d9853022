package postgres

import (
	"context"
	"time"

	"github.com/fluxstudio/fluxauth"
	"github.com/jackc/pgx/v5"
)

const userColumns = `id::text, email, password_hash, name, user_type, created_at, updated_at`

func scanUser(row pgx.Row) (*fluxauth.User, error) {
	var u fluxauth.User
	if err := row.Scan(&u.ID, &u.Email, &u.PasswordHash, &u.Name, &u.UserType, &u.CreatedAt, &u.UpdatedAt); err != nil {
		return nil, mapErr(err)
	}
	u.CreatedAt, u.UpdatedAt = u.CreatedAt.UTC(), u.UpdatedAt.UTC()
	return &u, nil
}

func createUser(ctx context.Context, q querier, u *fluxauth.User) error {
	_, err := q.Exec(ctx, `INSERT INTO users (id, email, password_hash, name, user_type, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		u.ID, u.Email, u.PasswordHash, u.Name, u.UserType, ts(u.CreatedAt), ts(u.UpdatedAt))
	return mapErr(err)
}

func createIdentity(ctx context.Context, q querier, id *fluxauth.Identity) error {
	_, err := q.Exec(ctx,
		`INSERT INTO identities (provider, subject, user_id, email, created_at) VALUES ($1, $2, $3, $4, $5)`,
		id.Provider, id.Subject, id.UserID, id.Email, ts(id.CreatedAt))
	return mapErr(err)
}

// CreateUser inserts u; fluxauth.ErrConflict when the email is taken in any letter case.
func (db *DB) CreateUser(ctx context.Context, u *fluxauth.User) error {
	return createUser(ctx, db.pool, u)
}

func (t *tx) CreateUser(ctx context.Context, u *fluxauth.User) error { return createUser(ctx, t.q, u) }

// UserByID returns the user with id, or fluxauth.ErrNotFound.
func (db *DB) UserByID(ctx context.Context, id string) (*fluxauth.User, error) {
	if !isUUID(id) {
		return nil, fluxauth.ErrNotFound
	}
	return scanUser(db.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE id = $1`, id))
}

// UserByEmail matches email case-insensitively, through the unique index on lower(email).
func (db *DB) UserByEmail(ctx context.Context, email string) (*fluxauth.User, error) {
	return scanUser(db.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE lower(email) = lower($1)`, email))
}

// SetPasswordHash replaces the user's password hash; fluxauth.ErrNotFound when there is no such user.
func (db *DB) SetPasswordHash(ctx context.Context, userID, hash string, at time.Time) error {
	if !isUUID(userID) {
		return fluxauth.ErrNotFound
	}
	tag, err := db.pool.Exec(ctx, `UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3`,
		hash, ts(at), userID)
	return affectedOne(tag.RowsAffected(), err)
}

// SetUserType changes the type of the user with email; fluxauth.ErrNotFound when there is none.
func (db *DB) SetUserType(ctx context.Context, email, userType string, at time.Time) error {
	tag, err := db.pool.Exec(ctx, `UPDATE users SET user_type = $1, updated_at = $2 WHERE lower(email) = lower($3)`,
		userType, ts(at), email)
	return affectedOne(tag.RowsAffected(), err)
}

// CreateIdentity inserts id; fluxauth.ErrConflict when (provider, subject) exists.
func (db *DB) CreateIdentity(ctx context.Context, id *fluxauth.Identity) error {
	return createIdentity(ctx, db.pool, id)
}

func (t *tx) CreateIdentity(ctx context.Context, id *fluxauth.Identity) error {
	return createIdentity(ctx, t.q, id)
}

// IdentityBySubject returns the identity, or fluxauth.ErrNotFound.
func (db *DB) IdentityBySubject(ctx context.Context, provider, subject string) (*fluxauth.Identity, error) {
	var id fluxauth.Identity
	err := db.pool.QueryRow(ctx,
		`SELECT provider, subject, user_id::text, email, created_at FROM identities WHERE provider = $1 AND subject = $2`,
		provider, subject).Scan(&id.Provider, &id.Subject, &id.UserID, &id.Email, &id.CreatedAt)
	if err != nil {
		return nil, mapErr(err)
	}
	id.CreatedAt = id.CreatedAt.UTC()
	return &id, nil
}

// affectedOne turns an UPDATE that matched no row into fluxauth.ErrNotFound.
func affectedOne(n int64, err error) error {
	if err != nil {
		return mapErr(err)
	}
	if n == 0 {
		return fluxauth.ErrNotFound
	}
	return nil
}
