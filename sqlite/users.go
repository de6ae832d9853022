package sqlite

import (
	"context"
	"time"

	"github.com/fluxstudio/fluxauth"
)

const userColumns = `id, email, password_hash, name, user_type, created_at, updated_at`

func scanUser(s scanner) (*fluxauth.User, error) {
	var u fluxauth.User
	var created, updated string
	if err := s.Scan(&u.ID, &u.Email, &u.PasswordHash, &u.Name, &u.UserType, &created, &updated); err != nil {
		return nil, mapErr(err)
	}
	var err error
	if u.CreatedAt, err = parseTime(created); err != nil {
		return nil, err
	}
	if u.UpdatedAt, err = parseTime(updated); err != nil {
		return nil, err
	}
	return &u, nil
}

func createUser(ctx context.Context, q querier, u *fluxauth.User) error {
	_, err := q.ExecContext(ctx, `INSERT INTO users (`+userColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		u.ID, u.Email, u.PasswordHash, u.Name, u.UserType, formatTime(u.CreatedAt), formatTime(u.UpdatedAt))
	return mapErr(err)
}

func createIdentity(ctx context.Context, q querier, id *fluxauth.Identity) error {
	_, err := q.ExecContext(ctx,
		`INSERT INTO identities (provider, subject, user_id, email, created_at) VALUES (?, ?, ?, ?, ?)`,
		id.Provider, id.Subject, id.UserID, id.Email, formatTime(id.CreatedAt))
	return mapErr(err)
}

// CreateUser inserts u; fluxauth.ErrConflict when the email is taken in any letter case.
func (db *DB) CreateUser(ctx context.Context, u *fluxauth.User) error {
	return createUser(ctx, db.writer, u)
}

func (t *tx) CreateUser(ctx context.Context, u *fluxauth.User) error { return createUser(ctx, t.q, u) }

// UserByID returns the user with id, or fluxauth.ErrNotFound.
func (db *DB) UserByID(ctx context.Context, id string) (*fluxauth.User, error) {
	return scanUser(db.reader.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE id = ?`, id))
}

// UserByEmail matches email case-insensitively (the column is COLLATE NOCASE).
func (db *DB) UserByEmail(ctx context.Context, email string) (*fluxauth.User, error) {
	return scanUser(db.reader.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE email = ?`, email))
}

// SetPasswordHash replaces the user's password hash; fluxauth.ErrNotFound when there is no such user.
func (db *DB) SetPasswordHash(ctx context.Context, userID, hash string, at time.Time) error {
	res, err := db.writer.ExecContext(ctx, `UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ?`,
		hash, formatTime(at), userID)
	return affectedOne(res, err)
}

// SetUserType changes the type of the user with email; fluxauth.ErrNotFound when there is none.
func (db *DB) SetUserType(ctx context.Context, email, userType string, at time.Time) error {
	res, err := db.writer.ExecContext(ctx, `UPDATE users SET user_type = ?, updated_at = ? WHERE email = ?`,
		userType, formatTime(at), email)
	return affectedOne(res, err)
}

// CreateIdentity inserts id; fluxauth.ErrConflict when (provider, subject) exists.
func (db *DB) CreateIdentity(ctx context.Context, id *fluxauth.Identity) error {
	return createIdentity(ctx, db.writer, id)
}

func (t *tx) CreateIdentity(ctx context.Context, id *fluxauth.Identity) error {
	return createIdentity(ctx, t.q, id)
}

// IdentityBySubject returns the identity, or fluxauth.ErrNotFound.
func (db *DB) IdentityBySubject(ctx context.Context, provider, subject string) (*fluxauth.Identity, error) {
	var id fluxauth.Identity
	var created string
	err := db.reader.QueryRowContext(ctx,
		`SELECT provider, subject, user_id, email, created_at FROM identities WHERE provider = ? AND subject = ?`,
		provider, subject).Scan(&id.Provider, &id.Subject, &id.UserID, &id.Email, &created)
	if err != nil {
		return nil, mapErr(err)
	}
	if id.CreatedAt, err = parseTime(created); err != nil {
		return nil, err
	}
	return &id, nil
}
