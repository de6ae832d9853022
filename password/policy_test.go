package password

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/fluxstudio/fluxauth"
)

// policyProblemOf returns the problem CheckPolicy reports for pw ("" when it passes), failing tb if the
// error is not a validation_failed *fluxauth.Error about the password field alone, or if any part of it
// repeats the password.
func policyProblemOf(tb testing.TB, pw string) string {
	tb.Helper()
	err := CheckPolicy(pw)
	if err == nil {
		return ""
	}
	var e *fluxauth.Error
	if !errors.As(err, &e) || e.Code != fluxauth.EValidation || fluxauth.ErrorCode(err) != fluxauth.EValidation {
		tb.Fatalf("CheckPolicy error %#v is not a validation_failed *fluxauth.Error", err)
	}
	if len(e.Fields) != 1 || e.Fields["password"] == "" {
		tb.Fatalf("CheckPolicy fields = %v, want one problem under \"password\"", e.Fields)
	}
	for _, text := range []string{e.Error(), e.Message, e.Fields["password"]} {
		if pw != "" && strings.Contains(strings.ToLower(text), strings.ToLower(pw)) {
			tb.Fatalf("CheckPolicy message %q contains the password", text)
		}
	}
	return e.Fields["password"]
}

func TestCheckPolicyCountsCharactersNotBytes(t *testing.T) {
	for _, tc := range []struct {
		name, pw, problem string
	}{
		{"empty", "", problemTooShort},
		{"7 characters", "tq8vz2m", problemTooShort},
		{"8 characters", "tq8vz2mx", ""},
		{"128 characters", strings.Repeat("tq8vz2mx", 16), ""},
		{"129 characters", strings.Repeat("tq8vz2mx", 16) + "a", problemTooLong},
		{"7 two-byte characters (14 bytes)", "ééééééé", problemTooShort},
		{"8 two-byte characters", "éééééééé", ""},
		{"7 three-byte characters (21 bytes)", "日本語のパスワ", problemTooShort},
		{"128 four-byte characters (512 bytes)", strings.Repeat("🔑", 128), ""},
		{"129 four-byte characters", strings.Repeat("🔑", 129), problemTooLong},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := policyProblemOf(t, tc.pw); got != tc.problem {
				t.Fatalf("CheckPolicy(%d characters, %d bytes) = %q, want %q",
					utf8.RuneCountInString(tc.pw), len(tc.pw), got, tc.problem)
			}
		})
	}
}

func TestCheckPolicyHasNoCompositionRules(t *testing.T) {
	for _, pw := range []string{
		"correct horse battery staple", // spaces, lowercase only
		"alllowercaseletters",
		"84620197351",  // digits only
		"ЖЖЖЖЖЖЖЖЖЖ",   // one letter, repeated, not Latin
		"        x   ", // mostly spaces
	} {
		if problem := policyProblemOf(t, pw); problem != "" {
			t.Errorf("CheckPolicy(%q) = %q, want no problem", pw, problem)
		}
	}
}

func TestCheckPolicyRejectsCommonPasswordsWhateverTheirCase(t *testing.T) {
	for _, pw := range []string{
		"password", "PASSWORD", "Password", "Password1", "password1", "12345678", "iloveyou", "ILoveYou",
		"qwertyuiop", "QwErTyUiOp", "trustno1", "TrustNo1",
	} {
		if problem := policyProblemOf(t, pw); problem != problemTooCommon {
			t.Errorf("CheckPolicy(%q) = %q, want %q", pw, problem, problemTooCommon)
		}
	}
	// Every listed password long enough to reach the check is refused, in upper case too.
	for line := range strings.SplitSeq(strings.TrimSuffix(commonPasswordsFile, "\n"), "\n") {
		if utf8.RuneCountInString(line) < MinLength {
			continue
		}
		if CheckPolicy(strings.ToUpper(line)) == nil {
			t.Fatalf("CheckPolicy accepted %q from the common list", strings.ToUpper(line))
		}
	}
}

func TestCommonPasswordListHasExactly10000DistinctLowercaseEntries(t *testing.T) {
	if !strings.HasSuffix(commonPasswordsFile, "\n") {
		t.Fatal("common-passwords.txt does not end with a newline")
	}
	lines := strings.Split(strings.TrimSuffix(commonPasswordsFile, "\n"), "\n")
	if len(lines) != 10000 {
		t.Fatalf("the list has %d entries, want 10000", len(lines))
	}
	seen := make(map[string]bool, len(lines))
	for i, l := range lines {
		switch {
		case l == "" || strings.TrimSpace(l) != l || strings.ContainsAny(l, "\r\t"):
			t.Fatalf("line %d, %q, is blank or carries whitespace", i+1, l)
		case l != strings.ToLower(l):
			t.Fatalf("line %d, %q, is not lowercase", i+1, l)
		case seen[l]:
			t.Fatalf("line %d, %q, is a duplicate", i+1, l)
		}
		seen[l] = true
	}
	if lines[0] != "123456" || lines[1] != "password" {
		t.Errorf("the list starts %q, %q; want the frequency order of zxcvbn's list (123456, password)", lines[0], lines[1])
	}
	if len(commonPasswords()) != 10000 {
		t.Errorf("the lookup set has %d entries, want 10000", len(commonPasswords()))
	}
}
