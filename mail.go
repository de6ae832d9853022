package fluxauth

import (
	"context"
	"time"
)

// Kinds of mail the outbox sends; each kind's link token has the purpose of the same name.
const (
	MailPasswordReset = "password_reset"
	MailVerifyEmail   = "verify_email"
	// MailIdentityLinkedGoogle and MailIdentityLinkedApple tell the account's owner that a Google or
	// Apple sign-in was linked to the account. They are notices: they carry no link token.
	MailIdentityLinkedGoogle = "identity_linked_google"
	MailIdentityLinkedApple  = "identity_linked_apple"
	// MailRecoveryCodeUsed tells the owner that one of their recovery codes was just used to sign
	// in, with how many are left: a notice.
	MailRecoveryCodeUsed = "recovery_code_used"
)

// MailIdentityLinked is the notice kind for a link of provider ("google", "apple"), or "" for
// another provider.
func MailIdentityLinked(provider string) string {
	switch provider {
	case "google":
		return MailIdentityLinkedGoogle
	case "apple":
		return MailIdentityLinkedApple
	}
	return ""
}

// MailIsNotice reports whether mails of kind only tell the owner something, carrying no link.
func MailIsNotice(kind string) bool {
	return kind == MailIdentityLinkedGoogle || kind == MailIdentityLinkedApple || kind == MailRecoveryCodeUsed
}

// OutboxMail is one mail waiting to be sent, or the record of one sent or given up. It says what the
// mail is for, never its content: the link token a mail carries is minted by the sender as it
// sends, so nothing stored can be replayed.
type OutboxMail struct {
	ID   string
	Kind string // MailPasswordReset, MailVerifyEmail or a notice (MailIsNotice)
	// UserID is the account the mail is for; "" when no account has Address (a reset asked for an
	// unknown address), which the sender settles without sending anything.
	UserID  string
	Address string
	// Attempts counts the claims so far; a claim's count also fences its settlement (SettleMail).
	Attempts      int
	NextAttemptAt time.Time
	// ClaimedUntil is the end of the current claim's lease: until then no other sender takes it.
	ClaimedUntil time.Time
	SentAt       time.Time // zero until a transport accepted the mail
	// AbandonedAt is set when the mail was given up (after MaxAttempts failures) or settled with
	// nothing to send (no account has the address, or the account is gone), with LastError saying
	// which; zero otherwise.
	AbandonedAt time.Time
	// LastError is the class of the last failure ("unreachable", "rejected", …), never its text.
	LastError string
	CreatedAt time.Time
}

// MailOutcome is how a claimed mail's attempt ended: exactly one of SentAt, AbandonedAt and
// RetryAt is set.
type MailOutcome struct {
	SentAt      time.Time
	AbandonedAt time.Time
	RetryAt     time.Time
	// ErrorClass is stored as the mail's LastError.
	ErrorClass string
}

// MailOutbox is the durable queue of mails, shared by every instance: a crash or an SMTP outage
// loses nothing, and each mail has one sender at a time.
type MailOutbox interface {
	// ClaimMail takes the oldest due mail (neither sent nor abandoned, next attempt at or before
	// now, no lease running at now), counts an attempt on it and leases it until now+lease.
	// Concurrent claimers, on any instance, never get the same mail while its lease runs.
	// ErrNotFound when no mail is due.
	ClaimMail(ctx context.Context, now time.Time, lease time.Duration) (*OutboxMail, error)
	// SettleMail records the outcome of the attempt numbered attempt and ends its lease, if that
	// attempt is still the mail's latest and the mail is not settled yet; ok reports whether it was.
	SettleMail(ctx context.Context, id string, attempt int, o MailOutcome) (ok bool, err error)
}

// LinkToken is the stored form of a token sent in a mail's link (a password reset, an address
// verification): its hash, whose account and purpose it is, its end. The token itself is never
// stored.
type LinkToken struct {
	ID        string
	UserID    string
	Purpose   string // MailPasswordReset or MailVerifyEmail
	TokenHash string // hex SHA-256 of the token
	CreatedAt time.Time
	ExpiresAt time.Time
	UsedAt    time.Time // zero while usable; set when used or retired
}

// LinkTokenStore keeps link tokens outside a transaction: the mail sender mints them.
type LinkTokenStore interface {
	// InsertLinkToken inserts t as it is.
	InsertLinkToken(ctx context.Context, t *LinkToken) error
	// DeleteLinkToken deletes the token with id (one whose mail was never delivered); deleting a
	// token that is not there is no error.
	DeleteLinkToken(ctx context.Context, id string) error
	// RetireLinkTokens ends, at at, every unused token of the user and purpose issued before keep
	// (ordered by creation time, then ID), or every one when keep is nil; it returns how many.
	RetireLinkTokens(ctx context.Context, userID, purpose string, keep *LinkToken, at time.Time) (int, error)
	// LinkToken returns the token with the hash for purpose if it is unused and unexpired at now;
	// ErrNotFound otherwise. It spends and counts nothing.
	LinkToken(ctx context.Context, tokenHash, purpose string, now time.Time) (*LinkToken, error)
	// AttemptLinkToken counts one try, in advance, on the token with the hash for purpose if it is
	// unused, unexpired at now and has had fewer than maxAttempts tries, and returns it; ErrNotFound
	// otherwise (unknown, expired, used, retired or out of tries alike). Of concurrent attempts no
	// more than maxAttempts are ever counted.
	AttemptLinkToken(ctx context.Context, tokenHash, purpose string, maxAttempts int, now time.Time) (*LinkToken, error)
}
