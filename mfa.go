package fluxauth

import (
	"context"
	"strings"
	"time"
)

// Second factors: an account has MFA once it has a confirmed factor.

// FactorTOTP is an RFC 6238 authenticator app.
const FactorTOTP = "totp"

// Authentication assurance levels (NIST SP 800-63B), the access tokens' aal.
const (
	AAL1 = "aal1" // one factor
	AAL2 = "aal2" // two factors
)

// MFAFactor is one second factor of an account.
type MFAFactor struct {
	ID     string
	UserID string
	Type   string // FactorTOTP
	Name   string
	// Secret is the factor's secret sealed under the key file's encryption key (token.Sealer), naming
	// the key it was sealed with: never the secret in clear.
	Secret    string
	CreatedAt time.Time
	// ConfirmedAt is zero until the owner proved the factor with a code; an unconfirmed factor does
	// not count, and dies (cleanup) a while after CreatedAt.
	ConfirmedAt time.Time
	LastUsedAt  time.Time // zero: never used
	// LastStep is the last TOTP time step accepted, at confirmation or since: a code of that step or
	// an earlier one is refused, so each code works once.
	LastStep int64
}

// Confirmed reports whether the factor counts.
func (f *MFAFactor) Confirmed() bool { return !f.ConfirmedAt.IsZero() }

// MFAChallenge is the pending second step of a sign-in whose first factor succeeded: what an MFA
// token names. Nothing of the sign-in is committed until the second factor completes it.
type MFAChallenge struct {
	ID     string
	UserID string
	// TokenHash is the hex SHA-256 of the MFA token; the token itself is never stored.
	TokenHash string
	// Kind is the first factor: "password", "google", "apple", "reset" or "legacy".
	Kind string
	// Payload is what completing the sign-in needs, encoded by the account package (JSON). It holds
	// no secret in clear.
	Payload string
	// DeviceName and DeviceFingerprint are the first request's: the session gets them, and a verify
	// from another fingerprint is refused.
	DeviceName        string
	DeviceFingerprint string
	// Attempts counts the codes tried, each before it is checked.
	Attempts  int
	CreatedAt time.Time
	ExpiresAt time.Time
	UsedAt    time.Time // zero until the second factor completed the sign-in
}

// JoinAMR is how a session's amr list is stored: RFC 8176 method names, space-separated.
func JoinAMR(amr []string) string { return strings.Join(amr, " ") }

// SplitAMR reads what JoinAMR wrote.
func SplitAMR(s string) []string { return strings.Fields(s) }

// MFAStore reads an account's second factors.
type MFAStore interface {
	// MFAFactors returns every factor of the user, confirmed or not, oldest first.
	MFAFactors(ctx context.Context, userID string) ([]*MFAFactor, error)
	// RecoveryCodesLeft counts the user's unused recovery codes.
	RecoveryCodesLeft(ctx context.Context, userID string) (int, error)
}

// MFATx is what a transaction does with second factors, recovery codes and MFA challenges. Every
// single use (a TOTP step, a recovery code, a challenge) is one conditional statement, so of
// concurrent transactions exactly one wins it.
type MFATx interface {
	MFAStore
	// InsertMFAFactor inserts f as it is.
	InsertMFAFactor(ctx context.Context, f *MFAFactor) error
	// LockMFAFactor returns the factor and holds its row until the transaction ends; ErrNotFound
	// when there is none.
	LockMFAFactor(ctx context.Context, id string) (*MFAFactor, error)
	// UseMFAStep records that the factor accepted TOTP time step step at at, only if step is after
	// its LastStep; with confirm it also confirms an unconfirmed factor. ok is false, and nothing is
	// written, when the step is not after LastStep (a replay) or there is no such factor.
	UseMFAStep(ctx context.Context, factorID string, step int64, at time.Time, confirm bool) (ok bool, err error)
	// ResealMFAFactor replaces the factor's sealed secret (moved to the current encryption key).
	ResealMFAFactor(ctx context.Context, factorID, secret string) error
	// DeleteMFAFactor deletes the user's factor id; false when the user has no such factor.
	DeleteMFAFactor(ctx context.Context, userID, id string) (bool, error)
	// DeleteMFA deletes every factor and recovery code of the user, and returns how many factors.
	DeleteMFA(ctx context.Context, userID string) (int, error)
	// ReplaceRecoveryCodes replaces the user's recovery codes with hashes (hex SHA-256 of each code).
	ReplaceRecoveryCodes(ctx context.Context, userID string, hashes []string, at time.Time) error
	// UseRecoveryCode spends the user's unused code with the hash; false when it is unknown or spent.
	UseRecoveryCode(ctx context.Context, userID, hash string, at time.Time) (bool, error)
	// InsertMFAChallenge inserts c as it is.
	InsertMFAChallenge(ctx context.Context, c *MFAChallenge) error
	// AttemptMFAChallenge counts one more code against the challenge with the token hash and returns
	// it as it is after, only while it is unused, unexpired at at and has had fewer than
	// maxAttempts codes; ErrNotFound otherwise (nothing is counted then).
	AttemptMFAChallenge(ctx context.Context, tokenHash string, at time.Time, maxAttempts int) (*MFAChallenge, error)
	// SpendMFAChallenge marks the challenge used at at; false when it already was.
	SpendMFAChallenge(ctx context.Context, id string, at time.Time) (bool, error)
	// SetSessionAuth records a reauthentication on the session's live token: its auth_time, aal and
	// amr, which its successors carry on. false when the session has no live token.
	SetSessionAuth(ctx context.Context, sessionID string, authTime time.Time, aal string, amr []string) (bool, error)
}
