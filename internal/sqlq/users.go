package sqlq

import (
	"context"
	"time"

	"github.com/fluxstudio/fluxauth"
)

// UserColumns are users' columns in the order ScanUser reads them.
const UserColumns = `id, email, password_hash, name, user_type, created_at, updated_at`

// ScanUser reads a row of UserColumns.
func ScanUser(row Scanner) (*fluxauth.User, error) {
	var u fluxauth.User
	if err := row.Scan(scanText(&u.ID), &u.Email, &u.PasswordHash, &u.Name, &u.UserType, scanTime(&u.CreatedAt), scanTime(&u.UpdatedAt)); err != nil {
		return nil, err
	}
	return &u, nil
}

// CreateUser inserts u as it is; fluxauth.ErrConflict when its ID or email is taken.
func (t Tx) CreateUser(ctx context.Context, u *fluxauth.User) error {
	_, err := t.q.Exec(ctx, t.d.rebind(`INSERT INTO users (`+UserColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7)`),
		u.ID, u.Email, u.PasswordHash, u.Name, u.UserType, t.d.Time(u.CreatedAt), t.d.Time(u.UpdatedAt))
	return err
}

// CreateUser inserts u as it is; fluxauth.ErrConflict when its ID or email is taken.
func (s Store) CreateUser(ctx context.Context, u *fluxauth.User) error {
	return s.writer().CreateUser(ctx, u)
}

// UserByID returns the user with id, or fluxauth.ErrNotFound.
func (s Store) UserByID(ctx context.Context, id string) (*fluxauth.User, error) {
	if s.d.badID(id) {
		return nil, fluxauth.ErrNotFound
	}
	return ScanUser(s.read.QueryRow(ctx, s.d.rebind(`SELECT `+UserColumns+` FROM users WHERE id = $1`), id))
}

// SetPasswordHash replaces the user's password hash; fluxauth.ErrNotFound when there is no such user.
func (s Store) SetPasswordHash(ctx context.Context, userID, hash string, at time.Time) error {
	if s.d.badID(userID) {
		return fluxauth.ErrNotFound
	}
	return AffectedOne(s.write.Exec(ctx, s.d.rebind(`UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3`),
		hash, s.d.Time(at), userID))
}

// CreateIdentity inserts id; fluxauth.ErrConflict when (provider, subject) exists.
func (t Tx) CreateIdentity(ctx context.Context, id *fluxauth.Identity) error {
	_, err := t.q.Exec(ctx, t.d.rebind(`INSERT INTO identities (provider, subject, user_id, email, created_at) VALUES ($1, $2, $3, $4, $5)`),
		id.Provider, id.Subject, id.UserID, id.Email, t.d.Time(id.CreatedAt))
	return err
}

// CreateIdentity inserts id; fluxauth.ErrConflict when (provider, subject) exists.
func (s Store) CreateIdentity(ctx context.Context, id *fluxauth.Identity) error {
	return s.writer().CreateIdentity(ctx, id)
}

// IdentityBySubject returns the identity, or fluxauth.ErrNotFound.
func (s Store) IdentityBySubject(ctx context.Context, provider, subject string) (*fluxauth.Identity, error) {
	var id fluxauth.Identity
	err := s.read.QueryRow(ctx, s.d.rebind(`SELECT provider, subject, user_id, email, created_at FROM identities
		WHERE provider = $1 AND subject = $2`), provider, subject).Scan(&id.Provider, &id.Subject, scanText(&id.UserID), &id.Email, scanTime(&id.CreatedAt))
	if err != nil {
		return nil, err
	}
	return &id, nil
}
