package fluxauth

import (
	"context"
	"time"
)

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
	// EventUsersExported: an operator exported every account, password hashes included (fluxauth
	// users export); metadata says how many and by whom.
	EventUsersExported = "users_exported"
	// EventUsersImported: an operator imported accounts (fluxauth users import), one event a run;
	// metadata has the file's name, who ran it and the counts of lines created, unchanged, updated
	// and refused.
	EventUsersImported = "users_imported"
	// EventAccountUnlocked: an admin cleared an account's failed-login lockout. Every instance's
	// live feed reacts to it by clearing the lockout in its own in-process limiter.
	EventAccountUnlocked = "account_unlocked"
	// EventIdentityLinked: a Google or Apple identity was linked to the account, automatically at a
	// sign-in (metadata by "sign_in") or by the signed-in owner (by "owner").
	EventIdentityLinked = "identity_linked"
	// EventIdentityUnlinked: the signed-in owner removed the account's identities of a provider.
	EventIdentityUnlinked = "identity_unlinked"
	// EventLegacyTokenExchanged: a token of the legacy server was exchanged for a session (once per
	// token); metadata has the session and the legacy token's iat. Counted on the dashboard, so the
	// team sees when the old tokens are gone.
	EventLegacyTokenExchanged = "legacy_token_exchanged"
	// EventMFAEnrolled: a second factor was confirmed (metadata: factorId, type).
	EventMFAEnrolled = "mfa_enrolled"
	// EventMFARemoved: a second factor was removed (metadata: factorId, type, by).
	EventMFARemoved = "mfa_removed"
	// EventMFAChallengeFailed (warning): a wrong TOTP or recovery code at a sign-in's second step
	// or a reauthentication; the failed-login alert counts it.
	EventMFAChallengeFailed = "mfa_challenge_failed"
	// EventRecoveryCodeUsed (warning): a recovery code stood in for the authenticator (metadata:
	// recoveryCodesLeft); the owner is mailed a notice.
	EventRecoveryCodeUsed = "recovery_code_used"
	// EventRecoveryCodesRegenerated: the owner replaced their recovery codes.
	EventRecoveryCodesRegenerated = "recovery_codes_regenerated"
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

// EventStore keeps the audit log.
type EventStore interface {
	InsertEvents(ctx context.Context, events ...*SecurityEvent) error
	// ListEvents returns the events matching f, newest first (by CreatedAt, then ID).
	ListEvents(ctx context.Context, f EventFilter) ([]*SecurityEvent, error)
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
