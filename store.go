package fluxauth

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound is returned by stores when a looked-up row does not exist. It is not an *Error: callers
// decide what a missing row means to a client.
var ErrNotFound = errors.New("not found")

// ErrConflict is returned by stores when a unique constraint would be violated.
var ErrConflict = errors.New("conflict")

// ErrUnavailable wraps failures to reach a dependency (the database, Redis), so callers can answer
// 503 instead of 500.
var ErrUnavailable = errors.New("unavailable")

// ErrInvalidData wraps a store's refusal of the values themselves (an encoding it cannot hold, a
// value too long for its column, a check constraint): writing the same values again fails again.
var ErrInvalidData = errors.New("invalid data")

// Tx is the view of the store inside Store.Update: everything in it commits or rolls back together.
type Tx interface {
	CreateUser(ctx context.Context, u *User) error
	// LockUser returns the user and holds its row until the transaction ends, so that transactions
	// that change an account's credentials and those that start its sessions run one after another
	// and each reads what the other committed. ErrNotFound when there is no such user.
	LockUser(ctx context.Context, id string) (*User, error)
	// SetPasswordHash replaces the user's password hash; ErrNotFound when there is no such user.
	SetPasswordHash(ctx context.Context, userID, hash string, at time.Time) error
	// SetUserType changes the user's type; ErrNotFound when there is no such user.
	SetUserType(ctx context.Context, userID, userType string, at time.Time) error
	// ClaimUser hands the account to whoever just proved they own its email address by signing in
	// through the identity (provider, subject): it removes every other credential of the account
	// (its password hash; every other identity whose email was not verified), marks that identity's
	// email verified, and sets the user's EmailVerifiedAt to at. It says what it removed. A store that
	// keeps further credentials of an account removes them here as well. ErrNotFound when there is
	// no such user.
	ClaimUser(ctx context.Context, userID, provider, subject string, at time.Time) (RemovedCredentials, error)
	CreateIdentity(ctx context.Context, id *Identity) error
	IdentityBySubject(ctx context.Context, provider, subject string) (*Identity, error)
	// IdentitiesOf returns the user's identities, oldest first (none for an unknown user).
	IdentitiesOf(ctx context.Context, userID string) ([]*Identity, error)
	// DeleteIdentities deletes the user's identities of provider and returns how many it deleted.
	DeleteIdentities(ctx context.Context, userID, provider string) (int, error)
	// LockSession holds the session's lock until the transaction ends, so operations on one session's
	// chain run one after another across goroutines and instances.
	LockSession(ctx context.Context, sessionID string) error
	// LockRefreshToken finds the token by hash, with its user (nil if the account is gone), and holds
	// its session's lock until the transaction ends: the refresh path in one round trip. The row is
	// as read when the lock was requested, so a rotation or revocation that committed while this
	// waited is not in it; RotateRefreshToken checks again, and anything read after this call is
	// current. ErrNotFound when no token has the hash.
	LockRefreshToken(ctx context.Context, tokenHash string) (*RefreshToken, *User, error)
	// RotateRefreshToken spends current and inserts next, in one round trip, if current is still
	// live (neither spent nor revoked); ok is false, and nothing is written, when it is not.
	RotateRefreshToken(ctx context.Context, currentID string, next *RefreshToken, at time.Time) (ok bool, err error)
	RefreshTokenByHash(ctx context.Context, tokenHash string) (*RefreshToken, error)
	// MarkReissued sets the token's ReissuedAt unless it is set already; ErrNotFound if no such token.
	MarkReissued(ctx context.Context, id string, at time.Time) error
	// SessionTip returns the session's live token (not spent, not revoked); ErrNotFound if none.
	SessionTip(ctx context.Context, sessionID string) (*RefreshToken, error)
	InsertRefreshToken(ctx context.Context, t *RefreshToken) error
	// RevokeSession marks every not yet revoked token of the session revoked; it returns the number of
	// tokens it changed.
	RevokeSession(ctx context.Context, sessionID string, at time.Time, reason string) (int, error)
	// ActiveSessions returns the live tip of each of the user's sessions whose tip has not expired at
	// now, newest activity first.
	ActiveSessions(ctx context.Context, userID string, now time.Time) ([]*RefreshToken, error)
	InsertEvents(ctx context.Context, events ...*SecurityEvent) error
	// UseIDToken records u unless a use of the same (Provider, Key) is recorded; ok is false, and
	// nothing is written, when one is. A use recorded by a transaction still running makes this wait
	// for its end, so of concurrent transactions presenting one token exactly one gets true.
	UseIDToken(ctx context.Context, u *IDTokenUse) (ok bool, err error)
	// IDTokenUse returns the recorded use of (provider, key), ErrNotFound if there is none. After a
	// UseIDToken that found a use recorded by a concurrent transaction, it reads the committed use.
	IDTokenUse(ctx context.Context, provider, key string) (*IDTokenUse, error)
	// InsertDeviceToken inserts t as it is.
	InsertDeviceToken(ctx context.Context, t *DeviceToken) error
	// ResetDeviceToken records a successful login through the device token id: its failure count
	// goes back to zero and it expires at expiresAt, unless it is dead; live reports whether it is not.
	ResetDeviceToken(ctx context.Context, id string, expiresAt time.Time) (live bool, err error)
	// RevokeDeviceTokens ends every device token of the user that is not dead yet, at at for reason,
	// and returns how many it ended.
	RevokeDeviceTokens(ctx context.Context, userID string, at time.Time, reason string) (int, error)
	// EnqueueMail puts m in the outbox, due at m.NextAttemptAt: it is sent if and only if the
	// transaction commits.
	EnqueueMail(ctx context.Context, m *OutboxMail) error
	// UseLinkToken spends the token with the hash for purpose if it is unused and unexpired at now,
	// and returns it; ErrNotFound otherwise (unknown, expired, used or retired alike). Of concurrent
	// transactions spending one token exactly one gets it.
	UseLinkToken(ctx context.Context, tokenHash, purpose string, now time.Time) (*LinkToken, error)
	// RetireLinkTokens is LinkTokenStore's, inside the transaction.
	RetireLinkTokens(ctx context.Context, userID, purpose string, keep *LinkToken, at time.Time) (int, error)
	// SetEmailVerified records that the owner of the user's address proved it at at, unless that was
	// recorded before; ErrNotFound when there is no such user.
	SetEmailVerified(ctx context.Context, userID string, at time.Time) error
}

// Store is what the account rules need of a storage backend; Backend is the whole of what one
// provides.
type Store interface {
	UserStore
	SessionStore
	EventStore
	DeviceTokenStore
	MailOutbox
	LinkTokenStore
	// Update runs fn in one transaction; it commits when fn returns nil. The implementation
	// serialises or retries conflicting writes, within limits: PostgreSQL runs fn again on a
	// serialization failure or deadlock up to 5 attempts, SQLite waits for the writer lock up to its
	// busy timeout; past them the error is returned.
	Update(ctx context.Context, fn func(tx Tx) error) error
	// Ping reports whether the database answers.
	Ping(ctx context.Context) error
	Close() error
}

// CleanupStore deletes what retention no longer needs. Deletes run in batches of their own
// statements so no lock is held for long.
type CleanupStore interface {
	// DeleteDeadTokens deletes up to limit refresh tokens revoked before cutoff, or expired before
	// cutoff in a session with no live token left; it returns how many it deleted. A live session's
	// rows are never touched: the chain stays whole for investigation, and a client presenting one
	// of its old links is told refresh_token_expired rather than that the token is unknown. (Reuse
	// detection needs only the unexpired links, which no cutoff in the past can reach.)
	DeleteDeadTokens(ctx context.Context, cutoff time.Time, limit int) (int, error)
	// CountDeadTokens counts what DeleteDeadTokens would delete.
	CountDeadTokens(ctx context.Context, cutoff time.Time) (int, error)
	// DeleteEventsBefore deletes up to limit security events created before cutoff.
	DeleteEventsBefore(ctx context.Context, cutoff time.Time, limit int) (int, error)
	CountEventsBefore(ctx context.Context, cutoff time.Time) (int, error)
	// DeleteIDTokenUsesBefore deletes up to limit ID-token uses whose token expired before cutoff.
	DeleteIDTokenUsesBefore(ctx context.Context, cutoff time.Time, limit int) (int, error)
	CountIDTokenUsesBefore(ctx context.Context, cutoff time.Time) (int, error)
	// DeleteDeadDeviceTokens deletes up to limit device tokens that died or expired before cutoff:
	// a device presenting one after that is told nothing different, its login being a plain one.
	DeleteDeadDeviceTokens(ctx context.Context, cutoff time.Time, limit int) (int, error)
	// CountDeadDeviceTokens counts what DeleteDeadDeviceTokens would delete.
	CountDeadDeviceTokens(ctx context.Context, cutoff time.Time) (int, error)
	// DeleteSettledMail deletes up to limit outbox mails sent or abandoned before cutoff.
	DeleteSettledMail(ctx context.Context, cutoff time.Time, limit int) (int, error)
	// CountSettledMail counts what DeleteSettledMail would delete.
	CountSettledMail(ctx context.Context, cutoff time.Time) (int, error)
	// DeleteDeadLinkTokens deletes up to limit link tokens used, retired or expired before cutoff.
	DeleteDeadLinkTokens(ctx context.Context, cutoff time.Time, limit int) (int, error)
	// CountDeadLinkTokens counts what DeleteDeadLinkTokens would delete.
	CountDeadLinkTokens(ctx context.Context, cutoff time.Time) (int, error)
	// TryExclusive runs fn unless another holder (in any instance sharing the database) holds the
	// named lock, in which case it returns false without running fn.
	TryExclusive(ctx context.Context, name string, fn func(ctx context.Context) error) (bool, error)
}

// Backend is everything one storage backend provides: the Store of the account rules and the stores
// of the admin API, the cleanup job and the live feed. The sqlite and postgres packages implement
// it (each asserts so at compile time), and the storetest package is the contract they both pass.
type Backend interface {
	Store
	AdminStore
	CleanupStore
	EventFeedStore
	UserExporter
	UserImporter
}
