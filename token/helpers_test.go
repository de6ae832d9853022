package token

import (
	"crypto/ecdsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/fluxstudio/fluxauth"
	"github.com/golang-jwt/jwt/v5"

	"github.com/fluxstudio/fluxauth/internal/testenv"
)

const (
	testIssuer   = "https://auth.fluxstudio.test"
	testAudience = "fluxstudio"
)

// testSecret is 32 bytes, the shortest legal HS256 secret.
var testSecret = []byte("0123456789abcdef0123456789abcdef")

// epoch is the fixed start of every test clock, so expiry is tested without sleeping.
var epoch = time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)

// stepClock is a clock that moves only when told to.
type stepClock = testenv.Clock

func newClock() *stepClock { return testenv.NewClock(epoch) }

// mustKeySet returns an in-memory key set with one key.
func mustKeySet(tb testing.TB, clock fluxauth.Clock) *KeySet {
	tb.Helper()
	ks, err := GenerateKeySet(clock, nil)
	if err != nil {
		tb.Fatalf("GenerateKeySet: %v", err)
	}
	return ks
}

// mustIssuer builds an Issuer from c, filling in the test issuer and audience when unset.
func mustIssuer(tb testing.TB, c Config) *Issuer {
	tb.Helper()
	if c.Issuer == "" {
		c.Issuer = testIssuer
	}
	if c.Audience == "" {
		c.Audience = testAudience
	}
	i, err := NewIssuer(c)
	if err != nil {
		tb.Fatalf("NewIssuer: %v", err)
	}
	return i
}

func testClaims() Claims {
	return Claims{UserID: "user-1", SessionID: "session-1", Email: "user@example.com", UserType: fluxauth.UserTypeClient}
}

func mustSign(tb testing.TB, i *Issuer, c Claims) string {
	tb.Helper()
	s, _, err := i.Sign(c)
	if err != nil {
		tb.Fatalf("Sign: %v", err)
	}
	return s
}

func mustVerify(tb testing.TB, i *Issuer, s string) *Claims {
	tb.Helper()
	c, err := i.Verify(s)
	if err != nil {
		tb.Fatalf("Verify rejected a good token: %v", err)
	}
	return c
}

// segment is the base64url JSON encoding of v, as a JWT header or payload.
func segment(tb testing.TB, v any) string {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// handSign assembles a JWT from header and payload and signs it with method and key, bypassing the
// Issuer so tests can forge any combination.
func handSign(tb testing.TB, method jwt.SigningMethod, key any, header, payload map[string]any) string {
	tb.Helper()
	input := segment(tb, header) + "." + segment(tb, payload)
	sig, err := method.Sign(input, key)
	if err != nil {
		tb.Fatalf("sign with %s: %v", method.Alg(), err)
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// validPayload is what Sign would produce at now.
func validPayload(now time.Time) map[string]any {
	return map[string]any{
		"iss": testIssuer, "aud": testAudience, "sub": "user-1", "sid": "session-1",
		"iat": now.Unix(), "exp": now.Add(DefaultTTL).Unix(), "jti": "j1",
		"email": "user@example.com", "userType": "client",
	}
}

func with(p map[string]any, kv ...any) map[string]any {
	out := make(map[string]any, len(p))
	for k, v := range p {
		out[k] = v
	}
	for n := 0; n < len(kv); n += 2 {
		if kv[n+1] == nil {
			delete(out, kv[n].(string))
		} else {
			out[kv[n].(string)] = kv[n+1]
		}
	}
	return out
}

func currentPrivateKey(ks *KeySet) *ecdsa.PrivateKey { return ks.current().priv }

// wantInvalidToken fails tb unless err is the safe invalid_token error caused by cause.
func wantInvalidToken(tb testing.TB, err, cause error) {
	tb.Helper()
	if err == nil {
		tb.Fatalf("token accepted; want rejection for %v", cause)
	}
	var fe *fluxauth.Error
	if !errors.As(err, &fe) {
		tb.Fatalf("error %T %v is not a *fluxauth.Error", err, err)
	}
	if fe.Code != fluxauth.EInvalidToken || fe.Message != invalidTokenMessage {
		tb.Fatalf("error code %q message %q; want %q %q", fe.Code, fe.Message, fluxauth.EInvalidToken, invalidTokenMessage)
	}
	if fe.Err == nil {
		tb.Fatal("the cause is not kept for the logs")
	}
	if cause != nil && !errors.Is(err, cause) {
		tb.Fatalf("rejected for %v; want %v", fe.Err, cause)
	}
}

// decodeSegment returns the JSON object in segment n of a token.
func decodeSegment(tb testing.TB, tok string, n int) map[string]any {
	tb.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		tb.Fatalf("token has %d segments", len(parts))
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[n])
	if err != nil {
		tb.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		tb.Fatal(err)
	}
	return m
}
