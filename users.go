package fluxauth

import (
	"context"
	"time"
)

// User types. Admin is never self-assigned.
const (
	UserTypeClient = "client"
	UserTypeAdmin  = "admin"
)

// MaxUserIDLen is the longest user ID.
const MaxUserIDLen = 128

// ValidUserID reports whether id can be a user's ID: 1 to MaxUserIDLen of A–Z, a–z, 0–9 and
// ". _ ~ : @ -" (ASCII only, so that an ID is its own canonical form and travels unescaped in a URL
// path, a JWT's sub and a log line). IDs are compared byte for byte. fluxauth makes UUIDv7 strings;
// imported accounts keep the legacy server's IDs ("123", "usr_9f2"). Both stores refuse any other
// ID (a CHECK constraint in PostgreSQL, triggers in SQLite).
func ValidUserID(id string) bool {
	if len(id) == 0 || len(id) > MaxUserIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		switch c := id[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '.', c == '_', c == '~', c == ':', c == '@', c == '-':
		default:
			return false
		}
	}
	return true
}

// User is an account.
type User struct {
	// ID is the account's ID (see ValidUserID), as given: the JWT's sub and user.id in every answer.
	ID string
	// Email is the address as the user gave it, trimmed: what is shown and written to. Stores compare
	// it in its canonical form (see UserStore).
	Email    string
	Name     string
	UserType string
	// PasswordHash is the PHC-style argon2id string or a legacy bcrypt hash; empty for accounts that
	// only sign in with Google or Apple.
	PasswordHash string
	// EmailVerifiedAt is when the account's owner first proved they own Email (a sign-in with a
	// provider that vouched for it, a verification or password-reset link); zero until then.
	EmailVerifiedAt time.Time
	CreatedAt       time.Time
	UpdatedAt       time.Time
}

// EmailVerified reports whether the owner of the account has proven they own its email address.
func (u *User) EmailVerified() bool { return !u.EmailVerifiedAt.IsZero() }

// Identity links a user to an external provider's subject.
type Identity struct {
	Provider string // "google" or "apple"
	Subject  string
	UserID   string
	Email    string
	// EmailVerified is whether the provider vouched for Email when the identity was linked. Identities
	// linked before fluxauth recorded it read false.
	EmailVerified bool
	CreatedAt     time.Time
}

// UserStore keeps accounts and their external identities. Emails are compared in their canonical
// form (package emailaddr: NFKC and lower-cased local part, IDNA-mapped domain), which every store
// keeps as the account's unique key: "kate@x", "KATE@x" and "\u212Aate@x" (Kelvin sign) are one
// address, as are "élodie@x" and "ÉLODIE@x", in every store.
type UserStore interface {
	// CreateUser inserts u, assigning nothing: the caller sets ID and times. ErrConflict when the email
	// is taken (in any spelling with the same canonical form).
	CreateUser(ctx context.Context, u *User) error
	UserByID(ctx context.Context, id string) (*User, error)
	// UserByEmail matches in canonical form.
	UserByEmail(ctx context.Context, email string) (*User, error)
	SetPasswordHash(ctx context.Context, userID, hash string, at time.Time) error
	// SetUserType changes the type of the user with email; ErrNotFound when there is none.
	SetUserType(ctx context.Context, email, userType string, at time.Time) error
	// CreateIdentity inserts id; ErrConflict when (provider, subject) exists.
	CreateIdentity(ctx context.Context, id *Identity) error
	IdentityBySubject(ctx context.Context, provider, subject string) (*Identity, error)
	// PasswordHashParams returns the distinct parameter keys of the stored password hashes, as
	// password.ParamsKey computes them for valid hashes ("$2b$12$", "$argon2id$v=19$m=65536,t=3,p=4$"),
	// each once, in no particular order; accounts without a password add none. It reads no salt or
	// key. A malformed hash may add a key of no valid hash, which callers skip.
	PasswordHashParams(ctx context.Context) ([]string, error)
}

// RemovedCredentials says what Tx.ClaimUser took from an account.
type RemovedCredentials struct {
	Password   bool // a password hash was cleared
	Identities int  // identities deleted because the provider never vouched for their email
}

// Any reports whether anything was removed: whether anyone but the claimant could have held a way
// into the account.
func (r RemovedCredentials) Any() bool { return r.Password || r.Identities > 0 }

// ExportedUser is an account as `fluxauth users export` writes it: the user and its identities.
type ExportedUser struct {
	User       *User
	Identities []*Identity
}

// UserExporter reads every account, a page at a time, for an export.
type UserExporter interface {
	// UsersAfter returns up to limit users whose ID sorts after after ("" for the first page), in the
	// store's ID order, each with its identities. Pages hold no lock between them: an account created
	// during an export is in it if its ID sorts after the last page read.
	UsersAfter(ctx context.Context, after string, limit int) ([]ExportedUser, error)
}
