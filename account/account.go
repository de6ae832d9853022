// Package account owns fluxauth's authentication rules: signup, login, refresh-token rotation with
// reuse detection, sessions and their revocation, sign-in with external identity providers. It is the
// one place that decides which security events happen.
package account

import (
	"context"
	"io"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"github.com/fluxstudio/fluxauth"
	"github.com/fluxstudio/fluxauth/oidc"
	"github.com/fluxstudio/fluxauth/ratelimit"
	"github.com/fluxstudio/fluxauth/token"
)

// Config holds the rules' tunables. Their defaults and validation live in internal/config.
type Config struct {
	RefreshTTL      time.Duration // lifetime of one refresh token, extended on each use
	SessionMaxAge   time.Duration // absolute limit of a session, counted from its start
	RefreshGrace    time.Duration // how long a spent token may still be presented (concurrent tabs)
	SignupUserTypes []string      // the user types a client may choose at signup
	// FingerprintRevoke ends a session whose refresh presents a different device fingerprint; when
	// false the mismatch is only recorded.
	FingerprintRevoke bool
	// SuspiciousRefreshRate: a refresh that comes sooner after the session's previous refresh than
	// one interval of this rate is recorded as suspicious_token_usage (not refused); zero disables it.
	SuspiciousRefreshRate ratelimit.Limit
	// WatchGraceClients records suspicious_token_usage when a spent token's grace hit or reissue
	// comes from another client than the one that rotated it (once per session and client).
	WatchGraceClients bool
	// CheckSessionOwner refuses an access token whose session belongs to another user than its sub.
	// Required with HS256, where every service holding the shared secret can mint any sub and sid;
	// with ES256 only fluxauth signs, so it may be turned off to spare the lookup.
	CheckSessionOwner bool
	// DeviceTokenTTL is how long a device token lives after it was issued or last let its device
	// sign in.
	DeviceTokenTTL time.Duration
	// RequireVerifiedEmail refuses a password login with the right password (403
	// email_not_verified) while the account's address is not proven.
	RequireVerifiedEmail bool
	// LegacyUntil ends the legacy token exchange (Service.Legacy): from then on it answers
	// not_found, as when it is off.
	LegacyUntil time.Time
}

// Notifier is told that a mail was queued in the outbox: the mail sender, which then sends it.
type Notifier interface{ Notify() }

// Revocations tells every instance which sessions have ended, so their access tokens stop working
// before they expire.
type Revocations interface {
	// Announce tells every instance that the session has ended; its access tokens live at most
	// until until. The database already records the revocation; this makes it seen sooner.
	Announce(ctx context.Context, sessionID string, until time.Time) error
	// IsRevoked reports whether the session was ended.
	IsRevoked(ctx context.Context, sessionID string) (bool, error)
	// Owner returns the ID of the user the session belongs to; fluxauth.ErrNotFound if it never
	// existed.
	Owner(ctx context.Context, sessionID string) (string, error)
}

// Recorder keeps security events and passes them on to live subscribers.
type Recorder interface {
	// Record keeps events that are not part of a write transaction.
	Record(ctx context.Context, events ...*fluxauth.SecurityEvent) error
	// Committed passes on events already written inside a committed transaction.
	Committed(events ...*fluxauth.SecurityEvent)
}

// Hasher is what the rules need of password hashing (password.Hasher). Each call of Hash and Verify
// costs one hash computation, the work an unauthenticated caller must not get before the cheap
// checks; Pad costs none.
type Hasher interface {
	Hash(ctx context.Context, pw string) (string, error)
	Verify(ctx context.Context, encodedHash, pw string) (ok, needsRehash bool, err error)
	// Pad waits until start plus the slowest verification a stored hash can need, so that every
	// login answer takes as long whatever the account's hash, or if there is no account; it returns
	// ctx.Err() when ctx ends first.
	Pad(ctx context.Context, start time.Time) error
}

// Service applies the rules. Build it with every field set but those documented as optional
// (Limiter and Mail may be nil).
type Service struct {
	Store fluxauth.Store
	// Admin answers the admin API's questions (the same backend as Store).
	Admin     fluxauth.AdminStore
	Passwords Hasher
	Tokens    *token.Issuer
	// Refreshes mints and derives refresh tokens with the secret every instance shares.
	Refreshes *token.RefreshMinter
	// Devices mints and checks device tokens, with a key every instance derives alike.
	Devices     *token.DeviceMinter
	Revocations Revocations
	Events      Recorder
	Clock       fluxauth.Clock
	Rand        io.Reader
	Logger      *slog.Logger
	Config      Config
	// Providers verify Google and Apple ID tokens, keyed by oidc.Google and oidc.Apple.
	Providers map[string]*oidc.Verifier
	// Limiter enforces Rules; nil disables rate limiting.
	Limiter ratelimit.Limiter
	Rules   ratelimit.Rules
	// Legacy verifies the legacy server's tokens for their exchange (ExchangeLegacyToken); nil turns
	// the exchange off.
	Legacy *token.LegacyVerifier
	// Mail is the outbox's sender; nil when no mail transport is configured, which disables the
	// flows that need mail (mail_unavailable) and queues no verification mail at signup.
	Mail Notifier
}

// Result is what a successful signup, login, refresh or external sign-in returns.
type Result struct {
	User         *fluxauth.User
	AccessToken  string
	RefreshToken string
	ExpiresIn    int // seconds
	SessionID    string
	Created      bool // a new account was made
	// DeviceToken is set by password sign-ins (signup, login): the client sends it back with later
	// logins from this device, which are then counted on its own budget rather than the lockout.
	DeviceToken string
}

// Principal is the caller proven by a valid access token.
type Principal struct {
	UserID    string
	SessionID string
	Email     string
	UserType  string
	// ExpiresAt is when the access token the caller presented expires: a response that outlives the
	// request (the admin event stream) ends there.
	ExpiresAt time.Time
	// AuthTime is the access token's auth_time: when the user last proved a credential.
	AuthTime time.Time
}

// JWKS returns the public keys access tokens are verified with, as a JSON Web Key Set.
func (s *Service) JWKS() []byte { return s.Tokens.JWKS() }

func (s *Service) newID() string {
	id, err := uuid.NewV7FromReader(s.Rand)
	if err != nil {
		// The reader is crypto/rand in production; failing it is not recoverable.
		panic("account: random source failed: " + err.Error())
	}
	return id.String()
}
