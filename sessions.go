package fluxauth

import (
	"context"
	"time"
)

// RefreshToken is one link of a session's rotation chain. The session is the chain: every token of
// it shares SessionID, and at most one of them (the tip) is neither spent nor revoked.
type RefreshToken struct {
	ID        string
	SessionID string
	ParentID  string // "" for the first token of a session
	UserID    string
	// TokenHash is the hex SHA-256 of the token; the token itself is never stored.
	TokenHash         string
	DeviceName        string
	DeviceFingerprint string
	IPAddress         string
	UserAgent         string
	// SessionCreatedAt is when the session began; the absolute session limit counts from it.
	SessionCreatedAt time.Time
	CreatedAt        time.Time
	LastUsedAt       time.Time
	ExpiresAt        time.Time
	SpentAt          time.Time // zero while unspent: set when rotated into its successor
	RevokedAt        time.Time // zero while not revoked
	RevokeReason     string
	// ReissuedAt is set when the token was handed out again because its parent was presented after
	// the token had already been issued once (a lost response). Zero for a token issued only once.
	ReissuedAt time.Time
	// AuthTime is when the session's user last proved a credential (the access tokens' auth_time):
	// the sign-in, or for a session exchanged from a legacy token, that token's iat. Every link of a
	// session carries it on. Zero is read as SessionCreatedAt.
	AuthTime time.Time
}

// AuthenticatedAt is the session's auth_time: AuthTime, or the session's start for a token stored
// without one.
func (t *RefreshToken) AuthenticatedAt() time.Time {
	if t.AuthTime.IsZero() {
		return t.SessionCreatedAt
	}
	return t.AuthTime
}

// Spent reports whether the token has been rotated.
func (t *RefreshToken) Spent() bool { return !t.SpentAt.IsZero() }

// Revoked reports whether the token's session was ended.
func (t *RefreshToken) Revoked() bool { return !t.RevokedAt.IsZero() }

// IDTokenUse records that a provider's ID token was accepted, so that it is never accepted again.
// The same single-use record, under the provider "legacy", remembers an exchanged legacy token and
// the session it opened; under the provider "grace-client", it marks a client the refresh rule
// has already reported for a session (account's watchOtherClient), for every instance at once.
type IDTokenUse struct {
	Provider string // "google" or "apple" (or "grace-client", "legacy"); keys are unique per provider
	Key      string // what names the token: the hex SHA-256 of its jti, else of its signed content
	UsedAt   time.Time
	// SessionID is the session the use opened, where one is remembered (a legacy token's exchange).
	SessionID string
	// ExpiresAt is the token's exp: after it the token is refused as expired, so the record can go.
	ExpiresAt time.Time
}

// DeviceToken is the shared state of one device token (OWASP's "device cookie"): a device that
// signed in to an account with its password holds the token, and logins that carry it are counted on
// its own failure budget instead of the account's lockout. The token itself is an HMAC that the
// service recomputes (token.DeviceMinter) and is never stored; this is its budget and its end.
type DeviceToken struct {
	ID     string
	UserID string
	// Failures counts the logins through the token since its last successful one. Each is counted
	// before its password is checked, so parallel guesses cannot pass a check made before any failed.
	Failures  int
	CreatedAt time.Time
	ExpiresAt time.Time // moved on by each successful login through the token
	// DeadAt is zero while the token may be used; a dead token never comes back.
	DeadAt     time.Time
	DeadReason string
}

// DeviceTokenStore keeps device tokens' failure budgets, on every instance alike. The writes of a
// login that fails are single statements outside a transaction; those of a success commit with its
// session (Tx).
type DeviceTokenStore interface {
	// AttemptDeviceToken counts one failure in advance on the device token id, if it is userID's, not
	// dead, not expired at now and has fewer than maxFailures counted; ok reports whether it did. Of
	// concurrent attempts, at most maxFailures get true until a success resets the count.
	AttemptDeviceToken(ctx context.Context, id, userID string, maxFailures int, now time.Time) (ok bool, err error)
	// FailDeviceToken ends the device token at at (reason "failures") if it is not dead and has
	// maxFailures or more counted, and reports whether this call ended it.
	FailDeviceToken(ctx context.Context, id string, maxFailures int, at time.Time) (ended bool, err error)
}

// SessionStore reads sessions outside a transaction.
type SessionStore interface {
	ActiveSessions(ctx context.Context, userID string, now time.Time) ([]*RefreshToken, error)
	// SessionRevoked reports whether the session has been revoked, and the user it belongs to (which
	// never changes, so callers may cache it). ErrNotFound if it never existed.
	SessionRevoked(ctx context.Context, sessionID string) (revoked bool, userID string, err error)
}
