package password

import (
	_ "embed"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/fluxstudio/fluxauth"
)

// Length bounds from NIST SP 800-63B §5.1.1.2: at least 8 characters, and at least 64 allowed; 128
// leaves room for passphrases while keeping a single request's hashing input small.
const (
	MinLength = 8
	MaxLength = 128
)

// Policy problems, as they appear in validation_failed details under "password". They describe the
// rule broken and never echo the password.
const (
	problemTooShort  = "must be at least 8 characters"
	problemTooLong   = "must be at most 128 characters"
	problemTooCommon = "is too common"
)

//go:embed common-passwords.txt
var commonPasswordsFile string

// commonPasswords is built on first use, so that programs that never check a policy (verification
// only, tools) do not pay for a 10,000-entry map.
var commonPasswords = sync.OnceValue(func() map[string]struct{} {
	lines := strings.Split(strings.TrimSuffix(commonPasswordsFile, "\n"), "\n")
	set := make(map[string]struct{}, len(lines))
	for _, l := range lines {
		set[l] = struct{}{}
	}
	return set
})

// CheckPolicy reports whether pw may be set as a new password, following NIST SP 800-63B: between
// MinLength and MaxLength characters (Unicode code points, so a passphrase in any script counts the
// way its owner counts it), no composition rules, and not one of the 10,000 most common passwords,
// compared case-insensitively. A failure is a *fluxauth.Error with code validation_failed and the
// problem under Fields["password"]; callers collecting several fields' problems can merge Fields.
// Policy applies when a password is chosen, never at login: old passwords must keep working.
func CheckPolicy(pw string) error {
	problem := policyProblem(pw)
	if problem == "" {
		return nil
	}
	return &fluxauth.Error{
		Code:    fluxauth.EValidation,
		Message: "The request has invalid fields.",
		Fields:  map[string]string{"password": problem},
	}
}

func policyProblem(pw string) string {
	n := utf8.RuneCountInString(pw)
	switch {
	case n < MinLength:
		return problemTooShort
	case n > MaxLength:
		return problemTooLong
	}
	if _, common := commonPasswords()[strings.ToLower(pw)]; common {
		return problemTooCommon
	}
	return ""
}
