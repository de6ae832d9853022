package token

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/fluxstudio/fluxauth"
	"github.com/golang-jwt/jwt/v5"
)

func TestSignedTokenRoundTripsEveryClaim(t *testing.T) {
	clock := newClock()
	ks := mustKeySet(t, clock)
	iss := mustIssuer(t, Config{Keys: ks, Clock: clock})

	tok, signed, err := iss.Sign(testClaims())
	if err != nil {
		t.Fatal(err)
	}
	want := testClaims()
	want.ID = signed.ID
	want.IssuedAt = epoch
	want.ExpiresAt = epoch.Add(DefaultTTL)
	if !reflect.DeepEqual(signed, want) {
		t.Fatalf("Sign returned %+v; want %+v", signed, want)
	}
	if got := mustVerify(t, iss, tok); !reflect.DeepEqual(*got, want) {
		t.Fatalf("Verify returned %+v; want %+v", *got, want)
	}

	header := decodeSegment(t, tok, 0)
	if header["alg"] != "ES256" || header["kid"] != ks.CurrentKID() || header["typ"] != "JWT" {
		t.Errorf("header %v; want alg ES256, kid %s, typ JWT", header, ks.CurrentKID())
	}
	payload := decodeSegment(t, tok, 1)
	for name, want := range map[string]any{
		"iss": testIssuer, "sub": "user-1", "sid": "session-1", "email": "user@example.com",
		"userType": "client", "jti": signed.ID,
		"iat": float64(epoch.Unix()), "exp": float64(epoch.Add(DefaultTTL).Unix()),
	} {
		if payload[name] != want {
			t.Errorf("claim %s = %v; want %v", name, payload[name], want)
		}
	}
	if aud, _ := payload["aud"].([]any); len(aud) != 1 || aud[0] != testAudience {
		t.Errorf("claim aud = %v; want [%s]", payload["aud"], testAudience)
	}
}

func TestEveryTokenGetsAUniqueJTI(t *testing.T) {
	// jti generation does not depend on the algorithm; HS256 keeps the race-detector run fast.
	iss := mustIssuer(t, Config{HMACSecret: testSecret})
	seen := map[string]bool{}
	for range 1000 {
		_, c, err := iss.Sign(testClaims())
		if err != nil {
			t.Fatal(err)
		}
		if len(c.ID) != 32 || seen[c.ID] {
			t.Fatalf("jti %q is short or repeated", c.ID)
		}
		seen[c.ID] = true
	}
}

func TestSignRequiresUserAndSession(t *testing.T) {
	iss := mustIssuer(t, Config{Keys: mustKeySet(t, nil)})
	for _, c := range []Claims{{SessionID: "s"}, {UserID: "u"}} {
		if _, _, err := iss.Sign(c); err == nil {
			t.Errorf("Sign(%+v) succeeded; want an error", c)
		}
	}
}

func TestTokenLifetimeAndLeewayAreConfigurable(t *testing.T) {
	clock := newClock()
	iss := mustIssuer(t, Config{Keys: mustKeySet(t, clock), Clock: clock, TTL: 5 * time.Minute, Leeway: 10 * time.Second})
	tok, c, err := iss.Sign(testClaims())
	if err != nil {
		t.Fatal(err)
	}
	if c.ExpiresAt != epoch.Add(5*time.Minute) {
		t.Fatalf("expires at %v; want TTL 5m", c.ExpiresAt)
	}
	clock.Advance(5*time.Minute + 9*time.Second)
	mustVerify(t, iss, tok)
	clock.Advance(time.Second)
	_, err = iss.Verify(tok)
	wantInvalidToken(t, err, jwt.ErrTokenExpired)
}

func TestDefaultLifetimeIs15MinutesWith30SecondsLeeway(t *testing.T) {
	clock := newClock()
	iss := mustIssuer(t, Config{Keys: mustKeySet(t, clock), Clock: clock})
	if iss.TTL() != 15*time.Minute || iss.KeyRetention() != 15*time.Minute+30*time.Second {
		t.Fatalf("TTL %v retention %v", iss.TTL(), iss.KeyRetention())
	}
	tok := mustSign(t, iss, testClaims())
	clock.Advance(15*time.Minute + 29*time.Second)
	mustVerify(t, iss, tok)
	clock.Advance(time.Second)
	_, err := iss.Verify(tok)
	wantInvalidToken(t, err, jwt.ErrTokenExpired)
}

// forgery builds a token at now against ks; the cases below forge every kind of bad token by hand.
type forgery func(t *testing.T, ks *KeySet, now time.Time) string

func es256(header, payload map[string]any) forgery {
	return func(t *testing.T, ks *KeySet, now time.Time) string {
		return handSign(t, jwt.SigningMethodES256, currentPrivateKey(ks), header, payload)
	}
}

func goodHeader(ks *KeySet) map[string]any {
	return map[string]any{"alg": "ES256", "typ": "JWT", "kid": ks.CurrentKID()}
}

// publicKeyEncodings are the byte strings an attacker could take from the JWKS or a certificate and
// use as an HMAC secret in an algorithm-confusion attack.
func publicKeyEncodings(t *testing.T, ks *KeySet) map[string][]byte {
	pub := &currentPrivateKey(ks).PublicKey
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := pub.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return map[string][]byte{
		"PEM":                pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}),
		"DER":                der,
		"uncompressed point": raw,
		"JWKS document":      ks.JWKS(),
	}
}

func TestVerifyRejectsForgedAndInvalidTokens(t *testing.T) {
	type tc struct {
		name  string
		forge forgery
		cause error
	}
	cases := []tc{
		{"alg none with an empty signature", func(t *testing.T, ks *KeySet, now time.Time) string {
			return segment(t, map[string]any{"alg": "none", "typ": "JWT", "kid": ks.CurrentKID()}) + "." + segment(t, validPayload(now)) + "."
		}, jwt.ErrTokenSignatureInvalid},
		{"alg none signed with jwt's none method", func(t *testing.T, ks *KeySet, now time.Time) string {
			return handSign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType,
				map[string]any{"alg": "none", "kid": ks.CurrentKID()}, validPayload(now))
		}, jwt.ErrTokenSignatureInvalid},
		{"alg NONE in capitals", func(t *testing.T, ks *KeySet, now time.Time) string {
			return segment(t, map[string]any{"alg": "NONE", "kid": ks.CurrentKID()}) + "." + segment(t, validPayload(now)) + "."
		}, jwt.ErrTokenUnverifiable},
		{"no alg header", func(t *testing.T, ks *KeySet, now time.Time) string {
			tok := es256(goodHeader(ks), validPayload(now))(t, ks, now)
			parts := strings.Split(tok, ".")
			return segment(t, map[string]any{"kid": ks.CurrentKID()}) + "." + parts[1] + "." + parts[2]
		}, jwt.ErrTokenUnverifiable},
		{"ES384 signed by a P-384 key under the current kid", func(t *testing.T, ks *KeySet, now time.Time) string {
			k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			return handSign(t, jwt.SigningMethodES384, k, map[string]any{"alg": "ES384", "kid": ks.CurrentKID()}, validPayload(now))
		}, jwt.ErrTokenSignatureInvalid},
		{"wrong issuer", es256Case(func(ks *KeySet, now time.Time) (map[string]any, map[string]any) {
			return goodHeader(ks), with(validPayload(now), "iss", "https://evil.test")
		}), jwt.ErrTokenInvalidIssuer},
		{"missing issuer", es256Case(func(ks *KeySet, now time.Time) (map[string]any, map[string]any) {
			return goodHeader(ks), with(validPayload(now), "iss", nil)
		}), jwt.ErrTokenRequiredClaimMissing},
		{"wrong audience", es256Case(func(ks *KeySet, now time.Time) (map[string]any, map[string]any) {
			return goodHeader(ks), with(validPayload(now), "aud", "another-service")
		}), jwt.ErrTokenInvalidAudience},
		{"audience list without ours", es256Case(func(ks *KeySet, now time.Time) (map[string]any, map[string]any) {
			return goodHeader(ks), with(validPayload(now), "aud", []string{"a", "b"})
		}), jwt.ErrTokenInvalidAudience},
		{"missing audience", es256Case(func(ks *KeySet, now time.Time) (map[string]any, map[string]any) {
			return goodHeader(ks), with(validPayload(now), "aud", nil)
		}), jwt.ErrTokenRequiredClaimMissing},
		{"expired 31s ago, beyond the 30s leeway", es256Case(func(ks *KeySet, now time.Time) (map[string]any, map[string]any) {
			return goodHeader(ks), with(validPayload(now), "iat", now.Add(-time.Hour).Unix(), "exp", now.Add(-31*time.Second).Unix())
		}), jwt.ErrTokenExpired},
		{"no exp claim", es256Case(func(ks *KeySet, now time.Time) (map[string]any, map[string]any) {
			return goodHeader(ks), with(validPayload(now), "exp", nil)
		}), jwt.ErrTokenRequiredClaimMissing},
		{"exp not a number", es256Case(func(ks *KeySet, now time.Time) (map[string]any, map[string]any) {
			return goodHeader(ks), with(validPayload(now), "exp", "tomorrow")
		}), jwt.ErrTokenMalformed},
		{"not valid for another 31s", es256Case(func(ks *KeySet, now time.Time) (map[string]any, map[string]any) {
			return goodHeader(ks), with(validPayload(now), "nbf", now.Add(31*time.Second).Unix())
		}), jwt.ErrTokenNotValidYet},
		{"issued 31s in the future", es256Case(func(ks *KeySet, now time.Time) (map[string]any, map[string]any) {
			return goodHeader(ks), with(validPayload(now), "iat", now.Add(31*time.Second).Unix())
		}), jwt.ErrTokenUsedBeforeIssued},
		{"no sid", es256Case(func(ks *KeySet, now time.Time) (map[string]any, map[string]any) {
			return goodHeader(ks), with(validPayload(now), "sid", nil)
		}), jwt.ErrTokenInvalidClaims},
		{"no sub", es256Case(func(ks *KeySet, now time.Time) (map[string]any, map[string]any) {
			return goodHeader(ks), with(validPayload(now), "sub", nil)
		}), jwt.ErrTokenInvalidClaims},
		{"unknown kid", es256Case(func(ks *KeySet, now time.Time) (map[string]any, map[string]any) {
			return with(goodHeader(ks), "kid", "no-such-key"), validPayload(now)
		}), errUnknownKID},
		{"no kid", es256Case(func(ks *KeySet, now time.Time) (map[string]any, map[string]any) {
			return with(goodHeader(ks), "kid", nil), validPayload(now)
		}), jwt.ErrTokenUnverifiable},
		{"kid not a string", es256Case(func(ks *KeySet, now time.Time) (map[string]any, map[string]any) {
			return with(goodHeader(ks), "kid", 7), validPayload(now)
		}), jwt.ErrTokenUnverifiable},
		{"signed by another P-256 key under the current kid", func(t *testing.T, ks *KeySet, now time.Time) string {
			other := mustKeySet(t, nil)
			return handSign(t, jwt.SigningMethodES256, currentPrivateKey(other), goodHeader(ks), validPayload(now))
		}, jwt.ErrTokenSignatureInvalid},
		{"payload tampered after signing", func(t *testing.T, ks *KeySet, now time.Time) string {
			parts := strings.Split(es256(goodHeader(ks), validPayload(now))(t, ks, now), ".")
			return parts[0] + "." + segment(t, with(validPayload(now), "userType", "admin")) + "." + parts[2]
		}, jwt.ErrTokenSignatureInvalid},
		{"header tampered after signing", func(t *testing.T, ks *KeySet, now time.Time) string {
			parts := strings.Split(es256(goodHeader(ks), validPayload(now))(t, ks, now), ".")
			return segment(t, with(goodHeader(ks), "typ", "at+jwt")) + "." + parts[1] + "." + parts[2]
		}, jwt.ErrTokenSignatureInvalid},
		{"signature byte flipped", func(t *testing.T, ks *KeySet, now time.Time) string {
			parts := strings.Split(es256(goodHeader(ks), validPayload(now))(t, ks, now), ".")
			sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
			sig[10] ^= 1
			return parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(sig)
		}, jwt.ErrTokenSignatureInvalid},
		{"signature truncated", func(t *testing.T, ks *KeySet, now time.Time) string {
			parts := strings.Split(es256(goodHeader(ks), validPayload(now))(t, ks, now), ".")
			sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
			return parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(sig[:60])
		}, jwt.ErrTokenSignatureInvalid},
		{"signature removed", func(t *testing.T, ks *KeySet, now time.Time) string {
			tok := es256(goodHeader(ks), validPayload(now))(t, ks, now)
			return tok[:strings.LastIndexByte(tok, '.')+1]
		}, jwt.ErrTokenSignatureInvalid},
		{"HS256 signed with the HMAC secret of the legacy mode", func(t *testing.T, ks *KeySet, now time.Time) string {
			return handSign(t, jwt.SigningMethodHS256, testSecret, map[string]any{"alg": "HS256", "kid": ks.CurrentKID()}, validPayload(now))
		}, jwt.ErrTokenSignatureInvalid},
		{"empty string", constant(""), jwt.ErrTokenMalformed},
		{"one segment", constant("garbage"), jwt.ErrTokenMalformed},
		{"two segments", constant("a.b"), jwt.ErrTokenMalformed},
		{"four segments", constant("a.b.c.d"), jwt.ErrTokenMalformed},
		{"header not base64url", constant("!!!.e30.e30"), jwt.ErrTokenMalformed},
		{"header not JSON", constant(base64.RawURLEncoding.EncodeToString([]byte("not json")) + ".e30.sig"), jwt.ErrTokenMalformed},
		{"payload not JSON", func(t *testing.T, ks *KeySet, now time.Time) string {
			return segment(t, goodHeader(ks)) + "." + base64.RawURLEncoding.EncodeToString([]byte("{")) + ".c2ln"
		}, jwt.ErrTokenMalformed},
		{"signature with non-canonical trailing bits", func(t *testing.T, ks *KeySet, now time.Time) string {
			// 64 bytes take 86 base64 characters, the last carrying 2 bits and 4 zero bits; setting one
			// of those makes a second spelling of the same signature, which strict decoding refuses.
			tok := es256(goodHeader(ks), validPayload(now))(t, ks, now)
			const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
			last := strings.IndexByte(alphabet, tok[len(tok)-1])
			return tok[:len(tok)-1] + string(alphabet[last|1])
		}, jwt.ErrTokenMalformed},
		{"padded base64", func(t *testing.T, ks *KeySet, now time.Time) string {
			parts := strings.Split(es256(goodHeader(ks), validPayload(now))(t, ks, now), ".")
			return parts[0] + "." + base64.URLEncoding.EncodeToString([]byte(`{"sub":"x"}`)) + "." + parts[2]
		}, jwt.ErrTokenMalformed},
		{"longer than 8 KiB", func(t *testing.T, ks *KeySet, now time.Time) string {
			return es256(goodHeader(ks), with(validPayload(now), "pad", strings.Repeat("x", 9000)))(t, ks, now)
		}, jwt.ErrTokenMalformed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			clock := newClock()
			ks := mustKeySet(t, clock)
			iss := mustIssuer(t, Config{Keys: ks, Clock: clock})
			_, err := iss.Verify(c.forge(t, ks, clock.Now()))
			wantInvalidToken(t, err, c.cause)
		})
	}

	// The hand-built tokens are valid when nothing is wrong with them, so each case above fails for
	// its own reason and not for a flaw in the forging.
	t.Run("control: the hand-built good token verifies", func(t *testing.T) {
		clock := newClock()
		ks := mustKeySet(t, clock)
		iss := mustIssuer(t, Config{Keys: ks, Clock: clock})
		mustVerify(t, iss, es256(goodHeader(ks), validPayload(clock.Now()))(t, ks, clock.Now()))
	})
}

func es256Case(build func(ks *KeySet, now time.Time) (header, payload map[string]any)) forgery {
	return func(t *testing.T, ks *KeySet, now time.Time) string {
		h, p := build(ks, now)
		return handSign(t, jwt.SigningMethodES256, currentPrivateKey(ks), h, p)
	}
}

func constant(s string) forgery { return func(*testing.T, *KeySet, time.Time) string { return s } }

func TestVerifyRejectsHS256TokensMACedWithThePublicKey(t *testing.T) {
	clock := newClock()
	ks := mustKeySet(t, clock)
	iss := mustIssuer(t, Config{Keys: ks, Clock: clock})
	for name, secret := range publicKeyEncodings(t, ks) {
		t.Run(name, func(t *testing.T) {
			tok := handSign(t, jwt.SigningMethodHS256, secret,
				map[string]any{"alg": "HS256", "typ": "JWT", "kid": ks.CurrentKID()}, validPayload(clock.Now()))
			_, err := iss.Verify(tok)
			wantInvalidToken(t, err, jwt.ErrTokenSignatureInvalid)
		})
	}
}

func TestVerifyAcceptsClockSkewWithinLeeway(t *testing.T) {
	cases := []struct {
		name    string
		payload func(now time.Time) map[string]any
	}{
		{"expired 29s ago", func(now time.Time) map[string]any {
			return with(validPayload(now), "iat", now.Add(-time.Hour).Unix(), "exp", now.Add(-29*time.Second).Unix())
		}},
		{"valid from 29s ahead", func(now time.Time) map[string]any {
			return with(validPayload(now), "nbf", now.Add(29*time.Second).Unix())
		}},
		{"issued 29s ahead", func(now time.Time) map[string]any {
			return with(validPayload(now), "iat", now.Add(29*time.Second).Unix())
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			clock := newClock()
			ks := mustKeySet(t, clock)
			iss := mustIssuer(t, Config{Keys: ks, Clock: clock})
			mustVerify(t, iss, es256(goodHeader(ks), c.payload(clock.Now()))(t, ks, clock.Now()))
		})
	}
}

func TestLegacyHS256ModeRoundTripsWithTheSharedSecret(t *testing.T) {
	clock := newClock()
	iss := mustIssuer(t, Config{HMACSecret: testSecret, Clock: clock})
	tok, signed, err := iss.Sign(testClaims())
	if err != nil {
		t.Fatal(err)
	}
	if got := mustVerify(t, iss, tok); !reflect.DeepEqual(*got, signed) {
		t.Fatalf("Verify returned %+v; want %+v", *got, signed)
	}
	header := decodeSegment(t, tok, 0)
	if header["alg"] != "HS256" || header["kid"] != nil {
		t.Errorf("header %v; want alg HS256 and no kid", header)
	}
	// A legacy service verifies with nothing but the secret.
	parsed, err := jwt.Parse(tok, func(*jwt.Token) (any, error) { return testSecret, nil },
		jwt.WithValidMethods([]string{"HS256"}), jwt.WithTimeFunc(clock.Now))
	if err != nil || !parsed.Valid {
		t.Fatalf("plain HS256 verification with the shared secret failed: %v", err)
	}
	if got := string(iss.JWKS()); got != `{"keys":[]}` {
		t.Errorf("JWKS in HS256 mode = %s; want an empty set", got)
	}
	if strings.Contains(string(iss.JWKS()), string(testSecret)) {
		t.Error("the shared secret is published")
	}
}

func TestLegacyHS256ModeRejectsOtherTokens(t *testing.T) {
	clock := newClock()
	iss := mustIssuer(t, Config{HMACSecret: testSecret, Clock: clock})
	ks := mustKeySet(t, clock)
	esIssuer := mustIssuer(t, Config{Keys: ks, Clock: clock})
	otherSecret := []byte(strings.Repeat("z", 32))

	cases := map[string]struct {
		tok   string
		cause error
	}{
		"ES256 token from the key set": {mustSign(t, esIssuer, testClaims()), jwt.ErrTokenSignatureInvalid},
		"HS256 with another secret": {handSign(t, jwt.SigningMethodHS256, otherSecret,
			map[string]any{"alg": "HS256"}, validPayload(clock.Now())), jwt.ErrTokenSignatureInvalid},
		"HS512 with the right secret": {handSign(t, jwt.SigningMethodHS512, testSecret,
			map[string]any{"alg": "HS512"}, validPayload(clock.Now())), jwt.ErrTokenSignatureInvalid},
		"alg none": {segment(t, map[string]any{"alg": "none"}) + "." + segment(t, validPayload(clock.Now())) + ".",
			jwt.ErrTokenSignatureInvalid},
		"wrong audience": {handSign(t, jwt.SigningMethodHS256, testSecret, map[string]any{"alg": "HS256"},
			with(validPayload(clock.Now()), "aud", "x")), jwt.ErrTokenInvalidAudience},
		"payload tampered": {func() string {
			parts := strings.Split(mustSign(t, iss, testClaims()), ".")
			return parts[0] + "." + segment(t, with(validPayload(clock.Now()), "sub", "user-2")) + "." + parts[2]
		}(), jwt.ErrTokenSignatureInvalid},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := iss.Verify(c.tok)
			wantInvalidToken(t, err, c.cause)
		})
	}
	t.Run("expired beyond leeway", func(t *testing.T) {
		tok := mustSign(t, iss, testClaims())
		clock.Advance(DefaultTTL + DefaultLeeway)
		_, err := iss.Verify(tok)
		wantInvalidToken(t, err, jwt.ErrTokenExpired)
	})
}

func TestHMACSecretShorterThan32BytesIsRejected(t *testing.T) {
	short := []byte("this-secret-is-31-bytes-long!!!")
	if len(short) != 31 {
		t.Fatalf("test secret is %d bytes", len(short))
	}
	_, err := NewIssuer(Config{Issuer: testIssuer, Audience: testAudience, HMACSecret: short})
	if err == nil {
		t.Fatal("a 31-byte secret was accepted")
	}
	msg := err.Error()
	if !strings.Contains(msg, "FLUXAUTH_JWT_SECRET") || !strings.Contains(msg, "at least 32") {
		t.Errorf("error %q does not say the secret must be at least 32 bytes", msg)
	}
	if strings.Contains(msg, string(short)) {
		t.Error("error quotes the secret")
	}
	mustIssuer(t, Config{HMACSecret: testSecret})
}

func TestNewIssuerReportsEveryConfigProblemAtOnce(t *testing.T) {
	_, err := NewIssuer(Config{Leeway: 31 * time.Second, TTL: -time.Minute})
	if err == nil {
		t.Fatal("an empty config was accepted")
	}
	for _, want := range []string{"issuer", "audience", "TTL", "leeway", "neither"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
	cases := map[string]Config{
		"leeway above 30s":     {Keys: mustKeySet(t, nil), Leeway: MaxLeeway + time.Second},
		"negative leeway":      {Keys: mustKeySet(t, nil), Leeway: -time.Second},
		"both keys and secret": {Keys: mustKeySet(t, nil), HMACSecret: testSecret},
		"zero KeySet":          {Keys: &KeySet{}},
	}
	for name, c := range cases {
		c.Issuer, c.Audience = testIssuer, testAudience
		if _, err := NewIssuer(c); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestVerifyErrorsAreSafeForClients(t *testing.T) {
	iss := mustIssuer(t, Config{Keys: mustKeySet(t, nil)})
	_, err := iss.Verify("nonsense")
	if fluxauth.ErrorCode(err) != fluxauth.EInvalidToken {
		t.Fatalf("code %q; want %q", fluxauth.ErrorCode(err), fluxauth.EInvalidToken)
	}
	var fe *fluxauth.Error
	if !errors.As(err, &fe) || fe.Message != "The access token is invalid or expired." {
		t.Fatalf("error %v does not carry the safe message", err)
	}
	if !errors.Is(err, jwt.ErrTokenMalformed) {
		t.Fatalf("cause %v is not kept", err)
	}
}

func TestAALAndAMRRoundTrip(t *testing.T) {
	clock := newClock()
	iss := mustIssuer(t, Config{Keys: mustKeySet(t, clock), Clock: clock})
	c := testClaims()
	c.AAL, c.AMR = fluxauth.AAL2, []string{"pwd", "otp"}
	tok, _, err := iss.Sign(c)
	if err != nil {
		t.Fatal(err)
	}
	payload := decodeSegment(t, tok, 1)
	if payload["aal"] != "aal2" || fmt.Sprint(payload["amr"]) != "[pwd otp]" {
		t.Fatalf("payload aal %v amr %v", payload["aal"], payload["amr"])
	}
	got := mustVerify(t, iss, tok)
	if got.AAL != fluxauth.AAL2 || !reflect.DeepEqual(got.AMR, []string{"pwd", "otp"}) {
		t.Fatalf("verified aal %q amr %v", got.AAL, got.AMR)
	}
}
