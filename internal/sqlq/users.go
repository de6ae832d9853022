package sqlq

import (
	"context"
	"fmt"
	"time"

	"github.com/fluxstudio/fluxauth"
	"github.com/fluxstudio/fluxauth/emailaddr"
)

// UserColumns are users' columns in the order ScanUser reads them. The email's canonical form,
// email_key, is written by CreateUser and compared by the lookups, never read back: it is derived.
const UserColumns = `id, email, password_hash, name, user_type, email_verified_at, created_at, updated_at`

// ScanUser reads a row of UserColumns.
func ScanUser(row Scanner) (*fluxauth.User, error) {
	var u fluxauth.User
	if err := row.Scan(scanText(&u.ID), &u.Email, &u.PasswordHash, &u.Name, &u.UserType,
		scanTime(&u.EmailVerifiedAt), scanTime(&u.CreatedAt), scanTime(&u.UpdatedAt)); err != nil {
		return nil, err
	}
	return &u, nil
}

// CreateUser inserts u as it is, keyed by its email's canonical form; fluxauth.ErrConflict when its
// ID or that key is taken.
func (t Tx) CreateUser(ctx context.Context, u *fluxauth.User) error {
	_, err := t.q.Exec(ctx, t.d.rebind(`INSERT INTO users (`+UserColumns+`, email_key) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`),
		u.ID, u.Email, u.PasswordHash, u.Name, u.UserType, t.d.nullTime(u.EmailVerifiedAt), t.d.Time(u.CreatedAt), t.d.Time(u.UpdatedAt),
		emailaddr.Canonical(u.Email))
	return err
}

// CreateUser inserts u as it is; fluxauth.ErrConflict when its ID or email is taken.
func (s Store) CreateUser(ctx context.Context, u *fluxauth.User) error {
	return s.writer().CreateUser(ctx, u)
}

// UserByID returns the user with id, or fluxauth.ErrNotFound.
func (s Store) UserByID(ctx context.Context, id string) (*fluxauth.User, error) {
	return ScanUser(s.read.QueryRow(ctx, s.d.rebind(`SELECT `+UserColumns+` FROM users WHERE id = $1`), id))
}

// UserByEmail returns the user whose email has the canonical form of email, or
// fluxauth.ErrNotFound. The unique index idx_users_email on email_key answers it.
func (s Store) UserByEmail(ctx context.Context, email string) (*fluxauth.User, error) {
	return ScanUser(s.read.QueryRow(ctx, s.d.rebind(`SELECT `+UserColumns+` FROM users WHERE email_key = $1`),
		emailaddr.Canonical(email)))
}

// SetUserType changes the type of the user with email, compared as UserByEmail does;
// fluxauth.ErrNotFound when there is none.
func (s Store) SetUserType(ctx context.Context, email, userType string, at time.Time) error {
	return AffectedOne(s.write.Exec(ctx, s.d.rebind(`UPDATE users SET user_type = $1, updated_at = $2 WHERE email_key = $3`),
		userType, s.d.Time(at), emailaddr.Canonical(email)))
}

// SetUserType changes the type of the user with id; fluxauth.ErrNotFound when there is none.
func (t Tx) SetUserType(ctx context.Context, userID, userType string, at time.Time) error {
	return AffectedOne(t.q.Exec(ctx, t.d.rebind(`UPDATE users SET user_type = $1, updated_at = $2 WHERE id = $3`),
		userType, t.d.Time(at), userID))
}

// LockUser returns the user with id and holds its row until the transaction ends (the dialect's
// ForUpdate); fluxauth.ErrNotFound when there is none.
func (t Tx) LockUser(ctx context.Context, id string) (*fluxauth.User, error) {
	return ScanUser(t.q.QueryRow(ctx, t.d.rebind(`SELECT `+UserColumns+` FROM users WHERE id = $1`+t.d.ForUpdate), id))
}

// SetPasswordHash replaces the user's password hash; fluxauth.ErrNotFound when there is no such user.
func (t Tx) SetPasswordHash(ctx context.Context, userID, hash string, at time.Time) error {
	return AffectedOne(t.q.Exec(ctx, t.d.rebind(`UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3`),
		hash, t.d.Time(at), userID))
}

// SetPasswordHash replaces the user's password hash; fluxauth.ErrNotFound when there is no such user.
func (s Store) SetPasswordHash(ctx context.Context, userID, hash string, at time.Time) error {
	return s.writer().SetPasswordHash(ctx, userID, hash, at)
}

// ClaimUser removes the account's password hash and every identity but (provider, subject) whose
// email was not verified, marks that identity verified, and records the email verified at at.
func (t Tx) ClaimUser(ctx context.Context, userID, provider, subject string, at time.Time) (fluxauth.RemovedCredentials, error) {
	var r fluxauth.RemovedCredentials
	err := AffectedOne(t.q.Exec(ctx, t.d.rebind(`UPDATE users SET email_verified_at = $1, updated_at = $1 WHERE id = $2`),
		t.d.Time(at), userID))
	if err != nil {
		return r, err
	}
	n, err := t.q.Exec(ctx, t.d.rebind(`UPDATE users SET password_hash = '' WHERE id = $1 AND password_hash <> ''`), userID)
	if err != nil {
		return r, err
	}
	r.Password = n > 0
	n, err = t.q.Exec(ctx, t.d.rebind(`DELETE FROM identities
		WHERE user_id = $1 AND NOT email_verified AND NOT (provider = $2 AND subject = $3)`), userID, provider, subject)
	if err != nil {
		return r, err
	}
	r.Identities = int(n)
	_, err = t.q.Exec(ctx, t.d.rebind(`UPDATE identities SET email_verified = TRUE
		WHERE provider = $1 AND subject = $2 AND user_id = $3`), provider, subject, userID)
	return r, err
}

// IdentityColumns are identities' columns in the order scanIdentity reads them.
const IdentityColumns = `provider, subject, user_id, email, email_verified, created_at`

func scanIdentity(row Scanner) (*fluxauth.Identity, error) {
	var id fluxauth.Identity
	if err := row.Scan(&id.Provider, &id.Subject, scanText(&id.UserID), &id.Email, &id.EmailVerified, scanTime(&id.CreatedAt)); err != nil {
		return nil, err
	}
	return &id, nil
}

// CreateIdentity inserts id; fluxauth.ErrConflict when (provider, subject) exists.
func (t Tx) CreateIdentity(ctx context.Context, id *fluxauth.Identity) error {
	_, err := t.q.Exec(ctx, t.d.rebind(`INSERT INTO identities (`+IdentityColumns+`) VALUES ($1, $2, $3, $4, $5, $6)`),
		id.Provider, id.Subject, id.UserID, id.Email, id.EmailVerified, t.d.Time(id.CreatedAt))
	return err
}

// CreateIdentity inserts id; fluxauth.ErrConflict when (provider, subject) exists.
func (s Store) CreateIdentity(ctx context.Context, id *fluxauth.Identity) error {
	return s.writer().CreateIdentity(ctx, id)
}

// IdentityBySubject returns the identity, or fluxauth.ErrNotFound.
func (t Tx) IdentityBySubject(ctx context.Context, provider, subject string) (*fluxauth.Identity, error) {
	return scanIdentity(t.q.QueryRow(ctx, t.d.rebind(`SELECT `+IdentityColumns+` FROM identities
		WHERE provider = $1 AND subject = $2`), provider, subject))
}

// IdentityBySubject returns the identity, or fluxauth.ErrNotFound.
func (s Store) IdentityBySubject(ctx context.Context, provider, subject string) (*fluxauth.Identity, error) {
	return s.reader().IdentityBySubject(ctx, provider, subject)
}

// SetEmailVerified records the user's address proven at at, unless it was before.
func (t Tx) SetEmailVerified(ctx context.Context, userID string, at time.Time) error {
	var one int
	return t.q.QueryRow(ctx, t.d.rebind(`UPDATE users SET email_verified_at = COALESCE(email_verified_at, $1), updated_at = $1
		WHERE id = $2 RETURNING 1`), t.d.Time(at), userID).Scan(&one)
}

// IdentitiesOf returns the user's identities, oldest first, read inside the transaction.
func (t Tx) IdentitiesOf(ctx context.Context, userID string) ([]*fluxauth.Identity, error) {
	var out []*fluxauth.Identity
	err := t.q.Query(ctx, t.d.rebind(`SELECT `+IdentityColumns+` FROM identities WHERE user_id = $1 ORDER BY created_at, provider`),
		[]any{userID}, func(row Scanner) error {
			id, err := scanIdentity(row)
			if err != nil {
				return err
			}
			out = append(out, id)
			return nil
		})
	return out, err
}

// DeleteIdentities deletes the user's identities of provider and returns how many it deleted.
func (t Tx) DeleteIdentities(ctx context.Context, userID, provider string) (int, error) {
	n, err := t.q.Exec(ctx, t.d.rebind(`DELETE FROM identities WHERE user_id = $1 AND provider = $2`), userID, provider)
	return int(n), err
}

// PasswordHashParams returns the distinct parameter keys (password.ParamsKey) of the stored password
// hashes, computed and grouped in SQL so that no salt or key leaves the database: the first 7
// characters of a bcrypt hash ("$2b$12$"), and an argon2id or argon2i PHC string up to and including
// the '$' after its parameters. Anything else yields its first 7 characters, the key of no valid
// hash.
func (s Store) PasswordHashParams(ctx context.Context) ([]string, error) {
	key := fmt.Sprintf(`CASE
		WHEN substr(password_hash, 1, 15) = '$argon2id$v=19$' THEN substr(password_hash, 1, 15 + %[1]s(substr(password_hash, 16), '$'))
		WHEN substr(password_hash, 1, 14) = '$argon2i$v=19$' THEN substr(password_hash, 1, 14 + %[1]s(substr(password_hash, 15), '$'))
		ELSE substr(password_hash, 1, 7) END`, s.d.Strpos)
	var keys []string
	err := s.read.Query(ctx, `SELECT `+key+` AS params FROM users WHERE password_hash <> '' GROUP BY params`, nil,
		func(row Scanner) error {
			var k string
			if err := row.Scan(&k); err != nil {
				return err
			}
			keys = append(keys, k)
			return nil
		})
	return keys, err
}
