package token

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const testLegacySecret = "legacy-secret"

func testLegacyVerifier(tb testing.TB) *LegacyVerifier {
	tb.Helper()
	v, err := NewLegacyVerifier(LegacyConfig{Secret: []byte(testLegacySecret), MaxAge: 30 * 24 * time.Hour})
	if err != nil {
		tb.Fatal(err)
	}
	return v
}

func signLegacy(tb testing.TB, claims jwt.MapClaims) string {
	tb.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(testLegacySecret))
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func legacyReason(err error) string {
	var le *LegacyError
	if errors.As(err, &le) {
		return le.Reason
	}
	return fmt.Sprintf("not a LegacyError: %v", err)
}

// The user claim names one user by its text: strings as they are, integers (also written as a
// whole float, as JavaScript may) as their decimal text; nothing else is guessed at.
func TestTheLegacyUserClaimIsAStringOrAWholeNumber(t *testing.T) {
	v := testLegacyVerifier(t)
	now := time.Unix(1_800_000_000, 0)
	for _, tc := range []struct {
		claim any
		want  string // "" when refused
	}{
		{"usr_9f2", "usr_9f2"}, {123, "123"}, {-7, "-7"}, {123.0, "123"}, {float64(1 << 52), "4503599627370496"},
		{"", ""}, {12.5, ""}, {1e300, ""}, {true, ""}, {nil, ""}, {map[string]any{"id": 1}, ""}, {[]any{1}, ""},
	} {
		claims := jwt.MapClaims{"iat": now.Unix()}
		if tc.claim != nil {
			claims["id"] = tc.claim
		}
		c, err := v.Verify(signLegacy(t, claims), now)
		switch {
		case tc.want == "" && legacyReason(err) != LegacyNoUser:
			t.Errorf("claim %#v: %v, %v; want refused as no_user", tc.claim, c, err)
		case tc.want != "" && (err != nil || c.UserID != tc.want):
			t.Errorf("claim %#v: %+v, %v; want user %q", tc.claim, c, err, tc.want)
		}
	}
}

// The times, with the leeway another machine's clock needs: exp at now is still within it, a minute
// past is not; a future iat or nbf beyond the leeway is refused; Until is exp (plus the leeway) or
// iat plus the max age, and Key names the token without holding it.
func TestLegacyTokenTimes(t *testing.T) {
	v := testLegacyVerifier(t)
	now := time.Unix(1_800_000_000, 0).UTC()
	for _, tc := range []struct {
		name   string
		claims jwt.MapClaims
		reason string
		until  time.Time
	}{
		{"exp now, within the leeway", jwt.MapClaims{"id": 1, "exp": now.Unix()}, "", now.Add(LegacyLeeway)},
		{"exp a minute ago", jwt.MapClaims{"id": 1, "exp": now.Add(-time.Minute).Unix()}, LegacyExpired, time.Time{}},
		{"iat 29 days ago, no exp", jwt.MapClaims{"id": 1, "iat": now.Add(-29 * 24 * time.Hour).Unix()}, "", now.Add(24 * time.Hour)},
		{"iat at the max age, no exp", jwt.MapClaims{"id": 1, "iat": now.Add(-30 * 24 * time.Hour).Unix()}, LegacyTooOld, time.Time{}},
		{"iat 20 s ahead", jwt.MapClaims{"id": 1, "iat": now.Add(20 * time.Second).Unix()}, "", now.Add(20*time.Second + 30*24*time.Hour)},
		{"iat a minute ahead", jwt.MapClaims{"id": 1, "iat": now.Add(time.Minute).Unix()}, LegacyIssuedInFuture, time.Time{}},
		{"nbf a minute ahead", jwt.MapClaims{"id": 1, "exp": now.Add(time.Hour).Unix(), "nbf": now.Add(time.Minute).Unix()}, LegacyIssuedInFuture, time.Time{}},
		{"neither exp nor iat", jwt.MapClaims{"id": 1}, LegacyNoTimes, time.Time{}},
		{"exp as a string", jwt.MapClaims{"id": 1, "exp": "tomorrow"}, LegacyMalformed, time.Time{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := signLegacy(t, tc.claims)
			c, err := v.Verify(raw, now)
			if tc.reason != "" {
				if legacyReason(err) != tc.reason {
					t.Fatalf("Verify = %+v, %v; want refused as %s", c, err, tc.reason)
				}
				return
			}
			if err != nil || !c.Until.Equal(tc.until) {
				t.Fatalf("Verify = %+v, %v; want until %v", c, err, tc.until)
			}
			if len(c.Key) != 64 || strings.Contains(raw, c.Key) || c.Key != legacyKey(raw) {
				t.Fatalf("Key = %q, want the token's hex SHA-256", c.Key)
			}
		})
	}
}

// The verifier's printed forms hold no key material.
func TestTheLegacyVerifierPrintsNoSecret(t *testing.T) {
	v := testLegacyVerifier(t)
	for _, s := range []string{fmt.Sprint(v), fmt.Sprintf("%+v", v), fmt.Sprintf("%#v", v), fmt.Sprintf("%v", *v)} {
		if strings.Contains(s, testLegacySecret) {
			t.Fatalf("printed form holds the secret: %s", s)
		}
	}
}

// FromLegacy derives the same first refresh token from the same legacy token, in the session it is
// given, and another from any other token: what lets racing exchanges on several instances agree.
func TestTheFirstRefreshTokenOfAnExchangeIsDerivedFromTheLegacyToken(t *testing.T) {
	m := testMinter(t, 7)
	const session = "0193a5e4-7b7c-7d1e-9f00-000000000001"
	a1, h1, err := m.FromLegacy("legacy-a", session)
	if err != nil {
		t.Fatal(err)
	}
	a2, h2, _ := m.FromLegacy("legacy-a", session)
	b, _, _ := m.FromLegacy("legacy-b", session)
	s, _, _ := m.Successor("legacy-a", session)
	if a1 != a2 || h1 != h2 || h1 != HashRefreshToken(a1) {
		t.Fatal("the same legacy token derived two first tokens")
	}
	if a1 == b || a1 == s {
		t.Fatal("another legacy token, or a successor of the same text, derived the same first token")
	}
	if got, legacy, err := m.SessionID(a1); err != nil || legacy || got != session {
		t.Fatalf("SessionID = %q, %v, %v; want the session", got, legacy, err)
	}
}
