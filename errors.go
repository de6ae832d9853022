// Package fluxauth holds the domain of FluxStudio's authentication service: its types, the contracts
// that storage and other components implement, and the one error type that carries a stable code.
// It imports only the standard library.
package fluxauth

import (
	"errors"
	"fmt"
)

// Error codes. They are part of the API: clients branch on them, so they never change meaning.
// Only the api package maps them to HTTP statuses.
const (
	EInvalidJSON          = "invalid_json"
	EValidation           = "validation_failed"
	EInvalidCredentials   = "invalid_credentials"
	EInvalidToken         = "invalid_token"
	ESessionRevoked       = "session_revoked"
	EInvalidRefreshToken  = "invalid_refresh_token"
	ERefreshTokenExpired  = "refresh_token_expired"
	ERefreshTokenRevoked  = "refresh_token_revoked"
	ERefreshTokenReused   = "refresh_token_reused"
	EInvalidIDToken       = "invalid_id_token"
	EForbidden            = "forbidden"
	ENotFound             = "not_found"
	EMethodNotAllowed     = "method_not_allowed"
	EEmailTaken           = "email_taken"
	EAccountExists        = "account_exists"
	EEmailNotVerified     = "email_not_verified"
	EProviderDisabled     = "provider_disabled"
	ERequestTooLarge      = "request_too_large"
	ERateLimited          = "rate_limited"
	EInternal             = "internal"
	EDatabaseUnavailable  = "database_unavailable"
	EAuditUnavailable     = "audit_unavailable" // the security event log cannot take the request's events
	ECacheUnavailable     = "cache_unavailable" // Redis, where a request cannot proceed without it
	EProviderUnavailable  = "provider_unavailable"
	EServiceUnavailable   = "service_unavailable"
	EUnsupportedMediaType = "unsupported_media_type"
	// EInvalidResetToken and EInvalidVerificationToken answer a link token that is unknown, expired,
	// used or retired, alike: which one is of use only to whoever guesses tokens.
	EInvalidResetToken        = "invalid_reset_token"
	EInvalidVerificationToken = "invalid_verification_token"
	ENoPassword               = "no_password"      // the account signs in only with Google or Apple
	EMailUnavailable          = "mail_unavailable" // no mail transport is configured
	// EIdentityInUse: the provider identity is linked to another account already.
	EIdentityInUse = "identity_in_use"
	// EProviderAlreadyLinked: the account has another identity of that provider linked already.
	EProviderAlreadyLinked = "provider_already_linked"
	// ELastSignInMethod: unlinking would leave the account no way to sign in (no password, no
	// other identity).
	ELastSignInMethod = "last_sign_in_method"
	// EMFARequired: the first factor was right and the account has a second one; the error's MFA
	// says how to complete the sign-in (POST /api/auth/mfa/verify).
	EMFARequired = "mfa_required"
	// EInvalidMFACode: the TOTP or recovery code is wrong, or its time step was used already.
	EInvalidMFACode = "invalid_mfa_code"
	// EInvalidMFAToken: the MFA token is unknown, expired, used, exhausted, or from another device.
	EInvalidMFAToken = "invalid_mfa_token"
	// EReauthenticationRequired: a sensitive action needs a credential proven recently
	// (POST /api/auth/reauthenticate).
	EReauthenticationRequired = "reauthentication_required"
	// EAAL2Required: the action needs a session that passed the second factor.
	EAAL2Required = "aal2_required"
	// EMFANotEnabled: the account has no second factor (for what needs one).
	EMFANotEnabled = "mfa_not_enabled"
)

// MFAPending is the second step a mfa_required answer asks for.
type MFAPending struct {
	Token     string   // the MFA token, for POST /api/auth/mfa/verify
	Methods   []string // "totp", "recovery_code"
	ExpiresIn int      // seconds
}

// Error is an error a client may see: a stable code and a message safe to show. Anything else that
// reaches the HTTP layer is treated as internal and its text is never sent.
type Error struct {
	Code    string
	Message string
	// Fields holds per-field problems for validation_failed, keyed by the JSON field name.
	Fields map[string]string
	// MFA is set on mfa_required: the pending second step.
	MFA *MFAPending
	// Err is the underlying cause, for logs only.
	Err error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Code + ": " + e.Message + ": " + e.Err.Error()
	}
	return e.Code + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the given code and a formatted safe message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Wrap returns an *Error with code and message that keeps cause for the logs.
func Wrap(code, message string, cause error) *Error {
	return &Error{Code: code, Message: message, Err: cause}
}

// ErrorCode returns the code of the first *Error in err's chain, EInternal for any other error, and ""
// for nil.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EInternal
}

// ValidationError collects per-field problems; its Err returns nil when there were none.
type ValidationError struct{ fields map[string]string }

// Add records a problem with field, keeping the first one reported for it.
func (v *ValidationError) Add(field, problem string) {
	if v.fields == nil {
		v.fields = map[string]string{}
	}
	if _, ok := v.fields[field]; !ok {
		v.fields[field] = problem
	}
}

// Err returns a validation_failed *Error listing every field problem, or nil.
func (v *ValidationError) Err() error {
	if len(v.fields) == 0 {
		return nil
	}
	return &Error{Code: EValidation, Message: "The request has invalid fields.", Fields: v.fields}
}
