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

// User types. Admin is never self-assigned.
const (
	UserTypeClient = "client"
	UserTypeAdmin  = "admin"
)

// User is an account.
type User struct {
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
}

// Spent reports whether the token has been rotated.
func (t *RefreshToken) Spent() bool { return !t.SpentAt.IsZero() }

// Revoked reports whether the token's session was ended.
func (t *RefreshToken) Revoked() bool { return !t.RevokedAt.IsZero() }

// IDTokenUse records that a provider's ID token was accepted, so that it is never accepted again.
type IDTokenUse struct {
	Provider string // "google" or "apple"; keys are unique per provider
	Key      string // what names the token: the hex SHA-256 of its jti, else of its signed content
	UsedAt   time.Time
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

// Severity levels of security events.
const (
	SeverityInfo     = "info"
	SeverityWarning  = "warning"
	SeverityCritical = "critical"
)

// Security event types.
const (
	EventSignup                    = "signup"
	EventLoginSuccess              = "login_success"
	EventFailedLogin               = "failed_login"
	EventMultipleDeviceLogin       = "multiple_device_login"
	EventDeviceFingerprintMismatch = "device_fingerprint_mismatch"
	EventSuspiciousTokenUsage      = "suspicious_token_usage"
	EventSessionHijackAttempt      = "session_hijack_attempt"
	EventRateLimitExceeded         = "rate_limit_exceeded"
	EventTokenRevoked              = "token_revoked"
	// EventAccountClaimed: a provider sign-in proved the account's address for the first time and
	// took the account over from whoever else held a credential of it (see account's claim).
	EventAccountClaimed = "account_claimed"
	// EventPasswordResetRequested: someone asked for a reset mail, for an account or for an address
	// no account has (UserID empty).
	EventPasswordResetRequested = "password_reset_requested"
	// EventPasswordReset: a reset link set a new password and signed its user in.
	EventPasswordReset = "password_reset"
	// EventPasswordChanged: a signed-in user changed their password.
	EventPasswordChanged = "password_changed"
	// EventEmailVerified: a verification link proved the account's address.
	EventEmailVerified = "email_verified"
	// EventUserTypeChanged: an operator changed an account's type (fluxauth users set-type);
	// metadata says from what, to what and by whom.
	EventUserTypeChanged = "user_type_changed"
	// EventAccountUnlocked: an admin cleared an account's failed-login lockout. Every instance's
	// live feed reacts to it by clearing the lockout in its own in-process limiter.
	EventAccountUnlocked = "account_unlocked"
)

// SecurityEvent is one row of the audit log.
type SecurityEvent struct {
	ID string
	// Seq is the event's place in the order the database took events in, assigned at insert (and set
	// on the event by InsertEvents). It only grows, but a transaction that took a lower Seq may
	// commit after one that took a higher one: see package feed for how readers cope.
	Seq       int64
	Type      string
	Severity  string
	UserID    string
	TokenID   string
	IPAddress string
	UserAgent string
	Metadata  map[string]any
	CreatedAt time.Time
}

// EventFilter selects security events, newest first. Zero fields do not filter.
type EventFilter struct {
	Type     string
	Severity string
	UserID   string
	IP       string
	Since    time.Time // inclusive
	Until    time.Time // exclusive
	// Before is the keyset cursor: only events strictly older than (CreatedAt, ID) are returned.
	BeforeTime time.Time
	BeforeID   string
	Limit      int
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
}

// RemovedCredentials says what Tx.ClaimUser took from an account.
type RemovedCredentials struct {
	Password   bool // a password hash was cleared
	Identities int  // identities deleted because the provider never vouched for their email
}

// Any reports whether anything was removed: whether anyone but the claimant could have held a way
// into the account.
func (r RemovedCredentials) Any() bool { return r.Password || r.Identities > 0 }

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

// SessionStore reads sessions outside a transaction.
type SessionStore interface {
	ActiveSessions(ctx context.Context, userID string, now time.Time) ([]*RefreshToken, error)
	// SessionRevoked reports whether the session has been revoked, and the user it belongs to (which
	// never changes, so callers may cache it). ErrNotFound if it never existed.
	SessionRevoked(ctx context.Context, sessionID string) (revoked bool, userID string, err error)
}

// EventStore keeps the audit log.
type EventStore interface {
	InsertEvents(ctx context.Context, events ...*SecurityEvent) error
	// ListEvents returns the events matching f, newest first (by CreatedAt, then ID).
	ListEvents(ctx context.Context, f EventFilter) ([]*SecurityEvent, error)
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

type requestIDKey struct{}

// WithRequestID returns ctx carrying the request's ID, which every log line of the request includes.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// RequestID returns the ID WithRequestID stored, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// EventSummary counts the audit log over a window.
type EventSummary struct {
	Since      time.Time
	ByType     map[string]int
	BySeverity map[string]int
	// TopFailedLoginIPs are the addresses with the most failed_login events, most first.
	TopFailedLoginIPs []IPCount
	ActiveSessions    int
}

// IPCount is one row of a top-addresses table.
type IPCount struct {
	IP    string
	Count int
}

// UserCount is one row of a top-accounts table. Email is "" when the account no longer exists.
type UserCount struct {
	UserID string
	Email  string
	Count  int
}

// EventSeries counts the audit log per step, for charts.
type EventSeries struct {
	Start   time.Time
	Step    time.Duration
	Buckets int
	// Counts holds, for each event type seen, one count per bucket: Counts[t][i] counts the events
	// of type t created in [Start+i*Step, Start+(i+1)*Step).
	Counts map[string][]int
	// TopFailedLoginIPs and TopTargetedUsers rank failed_login events over the whole series by
	// address and by account, most first.
	TopFailedLoginIPs []IPCount
	TopTargetedUsers  []UserCount
	ActiveSessions    int
}

// AdminStore answers the admin API's questions.
type AdminStore interface {
	// SummarizeEvents counts events created at or after since, and the sessions live at now.
	SummarizeEvents(ctx context.Context, since, now time.Time, topIPs int) (*EventSummary, error)
	// EventSeries counts events per type over buckets steps of step from start, ranks the failed
	// logins of that span (at most top rows each), and counts the sessions live at now.
	EventSeries(ctx context.Context, start time.Time, step time.Duration, buckets int, now time.Time, top int) (*EventSeries, error)
	// SearchUsers returns up to limit users whose email contains query, compared case-insensitively
	// and literally (no wildcards), ordered by email.
	SearchUsers(ctx context.Context, query string, limit int) ([]*User, error)
	// IdentitiesOf returns the user's external identities, oldest first.
	IdentitiesOf(ctx context.Context, userID string) ([]*Identity, error)
}

// EventFeedStore reads the audit log in the order events were inserted, for the live feed.
type EventFeedStore interface {
	// EventsAfterSeq returns up to limit events whose Seq is above after or is one of also, by Seq.
	EventsAfterSeq(ctx context.Context, after int64, also []int64, limit int) ([]*SecurityEvent, error)
	// LastEventSeq returns the highest Seq of the events committed so far (0 for none).
	LastEventSeq(ctx context.Context) (int64, error)
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
}
