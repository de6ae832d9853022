package oidc_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/fluxstudio/fluxauth"
	"github.com/fluxstudio/fluxauth/oidc"
	"github.com/fluxstudio/fluxauth/oidc/oidctest"

	"github.com/fluxstudio/fluxauth/internal/testenv"
)

// setup starts an issuer and a verifier named name that trusts it, with the issuer's ClientID and
// both sharing one clock.
func setup(tb testing.TB, name string) (*oidctest.Issuer, *oidc.Verifier, *testenv.Clock) {
	tb.Helper()
	iss := oidctest.NewIssuer(tb)
	clk := testenv.NewClock(time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC))
	iss.Now = clk.Now
	v := oidc.NewVerifier(name, oidc.Config{
		Issuer:    iss.URL(),
		ClientIDs: []string{oidctest.ClientID},
		Clock:     clk,
	})
	return iss, v, clk
}

func verify(tb testing.TB, v *oidc.Verifier, token, nonce string) (*oidc.Claims, error) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return v.Verify(ctx, token, nonce)
}

func mustVerify(tb testing.TB, v *oidc.Verifier, token, nonce string) *oidc.Claims {
	tb.Helper()
	c, err := verify(tb, v, token, nonce)
	if err != nil {
		tb.Fatalf("Verify: %v", err)
	}
	return c
}

// wantRefused checks that err is a *fluxauth.Error with code and Reason reason, and that its safe
// message does not leak the cause.
func wantRefused(tb testing.TB, err error, code, reason string) {
	tb.Helper()
	if err == nil {
		tb.Fatalf("Verify succeeded, want %s (%s)", code, reason)
	}
	var fe *fluxauth.Error
	if !errors.As(err, &fe) {
		tb.Fatalf("error %v is not a *fluxauth.Error", err)
	}
	if fe.Code != code || oidc.Reason(err) != reason {
		tb.Fatalf("got code %q reason %q (%v), want %q %q", fe.Code, oidc.Reason(err), err, code, reason)
	}
	if fe.Err == nil {
		tb.Fatalf("error %v keeps no cause for the logs", err)
	}
	if strings.Contains(fe.Message, fe.Err.Error()) {
		tb.Fatalf("safe message %q contains the cause", fe.Message)
	}
}

func wantInvalid(tb testing.TB, err error, reason string) {
	tb.Helper()
	wantRefused(tb, err, fluxauth.EInvalidIDToken, reason)
}

func wantUnavailable(tb testing.TB, err error) {
	tb.Helper()
	wantRefused(tb, err, fluxauth.EProviderUnavailable, oidc.ReasonUnavailable)
}

func TestValidTokenYieldsItsClaims(t *testing.T) {
	iss, v, _ := setup(t, oidc.Google)
	got := mustVerify(t, v, iss.Sign(t, iss.Claims()), "")
	if len(got.ReplayKey) != 64 {
		t.Fatalf("ReplayKey %q, want a hex SHA-256", got.ReplayKey)
	}
	got.ReplayKey = ""
	want := oidc.Claims{Subject: oidctest.Subject, Email: "user@example.com", EmailVerified: true, HostedDomain: "example.com", Name: "Test User",
		Expiry: iss.Now().Add(time.Hour).Truncate(time.Second)}
	if !got.Expiry.Equal(want.Expiry) {
		t.Fatalf("expiry %v, want %v", got.Expiry, want.Expiry)
	}
	got.Expiry = want.Expiry
	if *got != want {
		t.Fatalf("claims %+v, want %+v", *got, want)
	}
}

func TestNewVerifierDoesNotContactTheProvider(t *testing.T) {
	iss, _, _ := setup(t, oidc.Google)
	if n := iss.DiscoveryRequests() + iss.JWKSRequests(); n != 0 {
		t.Fatalf("%d requests before the first Verify, want 0", n)
	}
}

func TestDiscoveryAndKeysAreFetchedOnceAcrossVerifications(t *testing.T) {
	iss, v, _ := setup(t, oidc.Google)
	for range 5 {
		mustVerify(t, v, iss.Sign(t, iss.Claims()), "")
	}
	if d, k := iss.DiscoveryRequests(), iss.JWKSRequests(); d != 1 || k != 1 {
		t.Fatalf("%d discovery and %d JWKS requests, want 1 and 1", d, k)
	}
}

func TestConcurrentFirstUseSharesOneDiscovery(t *testing.T) {
	iss, v, _ := setup(t, oidc.Apple)
	token := iss.Sign(t, iss.Claims())
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Go(func() {
			_, err := v.Verify(context.Background(), token, "")
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Verify: %v", err)
		}
	}
	if d := iss.DiscoveryRequests(); d != 1 {
		t.Fatalf("%d discovery requests, want 1", d)
	}
}

func TestExpiredTokenIsRefused(t *testing.T) {
	iss, v, _ := setup(t, oidc.Google)
	claims := iss.Claims()
	claims["exp"] = iss.Now().Add(-time.Second).Unix()
	_, err := verify(t, v, iss.Sign(t, claims), "")
	wantInvalid(t, err, oidc.ReasonExpired)
}

func TestTokenExpiresOnTheInjectedClock(t *testing.T) {
	iss, v, clk := setup(t, oidc.Google)
	token := iss.Sign(t, iss.Claims())
	mustVerify(t, v, token, "")
	clk.Advance(time.Hour)
	_, err := verify(t, v, token, "")
	wantInvalid(t, err, oidc.ReasonExpired)
}

func TestTokenWithoutExpIsRefused(t *testing.T) {
	iss, v, _ := setup(t, oidc.Google)
	claims := iss.Claims()
	delete(claims, "exp")
	_, err := verify(t, v, iss.Sign(t, claims), "")
	wantInvalid(t, err, oidc.ReasonExpired)
}

func TestTokenNotYetValidIsRefusedBeyondTheSkewAllowance(t *testing.T) {
	iss, v, _ := setup(t, oidc.Google)
	claims := iss.Claims()
	claims["nbf"] = iss.Now().Add(2 * time.Minute).Unix()
	mustVerify(t, v, iss.Sign(t, claims), "")
	claims["nbf"] = iss.Now().Add(10 * time.Minute).Unix()
	_, err := verify(t, v, iss.Sign(t, claims), "")
	wantInvalid(t, err, oidc.ReasonNotYetValid)
}

func TestWrongAudienceIsRefused(t *testing.T) {
	iss, v, _ := setup(t, oidc.Google)
	claims := iss.Claims()
	claims["aud"] = "someone-elses-app"
	_, err := verify(t, v, iss.Sign(t, claims), "")
	wantInvalid(t, err, oidc.ReasonAudience)
}

func TestAnyConfiguredClientIDIsAnAcceptedAudience(t *testing.T) {
	iss := oidctest.NewIssuer(t)
	v := oidc.NewVerifier(oidc.Google, oidc.Config{
		Issuer:    iss.URL(),
		ClientIDs: []string{"web-client", "ios-client", "android-client"},
	})
	for _, aud := range []any{"web-client", "ios-client", []string{"android-client"}} {
		claims := iss.Claims()
		claims["aud"] = aud
		mustVerify(t, v, iss.Sign(t, claims), "")
	}
}

// OpenID Connect Core 3.1.3.7: a token for several audiences was issued to its azp; it signs in to
// us only when that party is one of our client ids and among the audiences.
func TestSeveralAudiencesNeedAnAuthorizedPartyThatIsOursAndAmongThem(t *testing.T) {
	iss := oidctest.NewIssuer(t)
	v := oidc.NewVerifier(oidc.Google, oidc.Config{Issuer: iss.URL(), ClientIDs: []string{"web-client", "android-client"}})
	for _, c := range []struct {
		name string
		aud  []string
		azp  any
	}{
		{"no azp", []string{"other-app", "android-client"}, nil},
		{"an empty azp", []string{"other-app", "android-client"}, ""},
		{"azp another app, among the audiences", []string{"other-app", "android-client"}, "other-app"},
		{"azp ours but not among the audiences", []string{"other-app", "android-client"}, "web-client"},
		{"azp not a string", []string{"other-app", "android-client"}, []string{"android-client"}},
	} {
		claims := iss.Claims()
		claims["aud"] = c.aud
		if c.azp != nil {
			claims["azp"] = c.azp
		}
		_, err := verify(t, v, iss.Sign(t, claims), "")
		if c.name == "azp not a string" {
			wantInvalid(t, err, oidc.ReasonMalformed)
			continue
		}
		t.Run(c.name, func(t *testing.T) { wantInvalid(t, err, oidc.ReasonAuthorizedParty) })
	}
	for _, c := range []struct {
		aud []string
		azp string
	}{
		{[]string{"other-app", "android-client"}, "android-client"},
		{[]string{"web-client", "android-client"}, "web-client"},
	} {
		claims := iss.Claims()
		claims["aud"], claims["azp"] = c.aud, c.azp
		mustVerify(t, v, iss.Sign(t, claims), "")
	}
	// One audience needs no azp, and an azp of another party does not matter (Google's Android
	// tokens name the Android client there).
	claims := iss.Claims()
	claims["aud"], claims["azp"] = "web-client", "some-android-app"
	mustVerify(t, v, iss.Sign(t, claims), "")
}

func TestWrongIssuerIsRefused(t *testing.T) {
	iss, v, _ := setup(t, oidc.Apple)
	claims := iss.Claims()
	claims["iss"] = "https://evil.example.com"
	_, err := verify(t, v, iss.Sign(t, claims), "")
	wantInvalid(t, err, oidc.ReasonIssuer)
}

func TestGoogleIssuerWithoutSchemeIsAccepted(t *testing.T) {
	iss, v, _ := setup(t, oidc.Google)
	claims := iss.Claims()
	claims["iss"] = strings.TrimPrefix(iss.URL(), "http://")
	mustVerify(t, v, iss.Sign(t, claims), "")
}

func TestAppleIssuerWithoutSchemeIsRefused(t *testing.T) {
	iss, v, _ := setup(t, oidc.Apple)
	claims := iss.Claims()
	claims["iss"] = strings.TrimPrefix(iss.URL(), "http://")
	_, err := verify(t, v, iss.Sign(t, claims), "")
	wantInvalid(t, err, oidc.ReasonIssuer)
}

func TestTokenSignedWithAnUnpublishedKeyIsRefused(t *testing.T) {
	iss, v, _ := setup(t, oidc.Google)
	mustVerify(t, v, iss.Sign(t, iss.Claims()), "") // keys cached: the forgery's kid is known
	_, err := verify(t, v, iss.SignWithForeignKey(t, iss.Claims()), "")
	wantInvalid(t, err, oidc.ReasonSignature)
}

func TestForgedTokenAtFirstUseIsRefusedAsSignature(t *testing.T) {
	iss, v, _ := setup(t, oidc.Google)
	_, err := verify(t, v, iss.SignWithForeignKey(t, iss.Claims()), "")
	wantInvalid(t, err, oidc.ReasonSignature)
}

func TestTamperedPayloadIsRefused(t *testing.T) {
	iss, v, _ := setup(t, oidc.Google)
	parts := strings.Split(iss.Sign(t, iss.Claims()), ".")
	claims := iss.Claims()
	claims["sub"] = "someone-else"
	parts[1] = b64JSON(t, claims)
	_, err := verify(t, v, strings.Join(parts, "."), "")
	wantInvalid(t, err, oidc.ReasonSignature)
}

func TestKeyRotationIsPickedUpByRefetchingTheKeys(t *testing.T) {
	iss, v, _ := setup(t, oidc.Google)
	mustVerify(t, v, iss.Sign(t, iss.Claims()), "")
	iss.RotateKey(t)
	mustVerify(t, v, iss.Sign(t, iss.Claims()), "")
	if k := iss.JWKSRequests(); k != 2 {
		t.Fatalf("%d JWKS requests, want 2 (first use, then the unknown kid)", k)
	}
}

func TestAppleNonceMatchesTheHashOfTheRawNonce(t *testing.T) {
	iss, v, _ := setup(t, oidc.Apple)
	claims := iss.Claims()
	claims["nonce"] = sha256Hex("raw-nonce")
	token := iss.Sign(t, claims)
	mustVerify(t, v, token, "raw-nonce")

	_, err := verify(t, v, token, "other-nonce")
	wantInvalid(t, err, oidc.ReasonNonce)
}

func TestAppleNonceClaimEqualToTheRawNonceIsRefused(t *testing.T) {
	// Whoever saw the token knows its nonce claim; only the app knows the preimage.
	iss, v, _ := setup(t, oidc.Apple)
	claims := iss.Claims()
	claims["nonce"] = "raw-nonce"
	_, err := verify(t, v, iss.Sign(t, claims), "raw-nonce")
	wantInvalid(t, err, oidc.ReasonNonce)
}

func TestGoogleNonceMatchesAsGiven(t *testing.T) {
	iss, v, _ := setup(t, oidc.Google)
	claims := iss.Claims()
	claims["nonce"] = "raw-nonce"
	token := iss.Sign(t, claims)
	mustVerify(t, v, token, "raw-nonce")
	_, err := verify(t, v, token, "other-nonce")
	wantInvalid(t, err, oidc.ReasonNonce)
}

func TestMissingNonceClaimIsRefusedWhenANonceIsGiven(t *testing.T) {
	for _, name := range []string{oidc.Google, oidc.Apple} {
		t.Run(name, func(t *testing.T) {
			iss, v, _ := setup(t, name)
			_, err := verify(t, v, iss.Sign(t, iss.Claims()), "raw-nonce")
			wantInvalid(t, err, oidc.ReasonNonce)
		})
	}
}

func TestNonceClaimIsRefusedWhenNoNonceIsGiven(t *testing.T) {
	// A token captured from a sign-in that used a nonce must not sign in by leaving the nonce out.
	for _, tc := range []struct{ name, claim string }{
		{oidc.Apple, sha256Hex("raw-nonce")},
		{oidc.Google, "raw-nonce"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			iss, v, _ := setup(t, tc.name)
			claims := iss.Claims()
			claims["nonce"] = tc.claim
			token := iss.Sign(t, claims)
			_, err := verify(t, v, token, "")
			wantInvalid(t, err, oidc.ReasonNonce)
			mustVerify(t, v, token, "raw-nonce")
		})
	}
}

func TestTokenWithoutNonceNeedsNoNonce(t *testing.T) {
	iss, v, _ := setup(t, oidc.Apple)
	mustVerify(t, v, iss.Sign(t, iss.Claims()), "")
}

func TestReplayKeyIsTheJTIWhenThereIsOne(t *testing.T) {
	iss, v, clk := setup(t, oidc.Google)
	claims := iss.Claims()
	first := mustVerify(t, v, iss.Sign(t, claims), "")
	// The same jti in a token that differs otherwise is the same token to the provider.
	clk.Advance(time.Second)
	claims["iat"] = iss.Now().Unix()
	if again := mustVerify(t, v, iss.Sign(t, claims), ""); again.ReplayKey != first.ReplayKey {
		t.Fatalf("same jti, ReplayKey %s then %s", first.ReplayKey, again.ReplayKey)
	}
	if other := mustVerify(t, v, iss.Sign(t, iss.Claims()), ""); other.ReplayKey == first.ReplayKey {
		t.Fatal("tokens with different jti share a ReplayKey")
	}
}

func TestReplayKeyWithoutJTIIsTheSignedContent(t *testing.T) {
	iss, v, clk := setup(t, oidc.Apple)
	claims := iss.Claims()
	delete(claims, "jti")
	token := iss.Sign(t, claims)
	first := mustVerify(t, v, token, "")
	if again := mustVerify(t, v, token, ""); again.ReplayKey != first.ReplayKey {
		t.Fatal("the same token got two ReplayKeys")
	}
	clk.Advance(time.Second)
	claims["iat"] = iss.Now().Unix()
	if other := mustVerify(t, v, iss.Sign(t, claims), ""); other.ReplayKey == first.ReplayKey {
		t.Fatal("tokens of different content share a ReplayKey")
	}
}

func TestReencodedTokenIsRefusedRatherThanGivenANewReplayKey(t *testing.T) {
	// go-jose decodes base64 leniently: unused low bits of a segment's last character may be set,
	// and whitespace is skipped. Such a copy verifies like the original; had it been accepted
	// under another ReplayKey, it would replay the original.
	iss, v, _ := setup(t, oidc.Apple)
	claims := iss.Claims()
	delete(claims, "jti")
	for pad := ""; ; pad += "x" {
		claims["name"] = "Test User" + pad
		if len(b64JSON(t, claims))%4 != 0 {
			break // the payload's last character has unused bits
		}
	}
	token := iss.Sign(t, claims)
	original := mustVerify(t, v, token, "")
	parts := strings.Split(token, ".")
	payload := []byte(parts[1])
	payload[len(payload)-1] = base64URLAlphabet[strings.IndexByte(base64URLAlphabet, payload[len(payload)-1])^1]
	for name, copy := range map[string]string{
		"unused bits set": parts[0] + "." + string(payload) + "." + parts[2],
		"whitespace":      parts[0] + ".\n" + parts[1] + "." + parts[2],
	} {
		c, err := verify(t, v, copy, "")
		if err == nil {
			t.Errorf("%s: re-encoded token accepted (ReplayKey equal: %v)", name, c.ReplayKey == original.ReplayKey)
			continue
		}
		wantInvalid(t, err, oidc.ReasonMalformed)
	}
}

func TestForgedTokensUnderAKnownKidFetchNoKeys(t *testing.T) {
	iss, v, _ := setup(t, oidc.Google)
	mustVerify(t, v, iss.Sign(t, iss.Claims()), "") // the keys are fetched once, here
	forge := func() string { return iss.SignWithForeignKey(t, iss.Claims()) }
	for _, err := range verifyConcurrently(t, v, 50, forge) {
		wantInvalid(t, err, oidc.ReasonSignature)
	}
	if k := iss.JWKSRequests(); k != 1 {
		t.Fatalf("50 forgeries under a known kid caused %d JWKS requests in all, want the first only", k)
	}
}

func TestUnknownKidsRefetchTheKeysAtMostOnceEvery30Seconds(t *testing.T) {
	iss, v, clk := setup(t, oidc.Google)
	mustVerify(t, v, iss.Sign(t, iss.Claims()), "") // the first fetch
	n := 0
	forge := func() string {
		n++
		return iss.SignWithUnknownKey(t, fmt.Sprintf("unknown-%d", n), iss.Claims())
	}
	wantFetches := func(want int) {
		t.Helper()
		for _, err := range verifyConcurrently(t, v, 50, forge) {
			wantInvalid(t, err, oidc.ReasonSignature)
		}
		if k := iss.JWKSRequests(); k != want {
			t.Fatalf("%d JWKS requests, want %d", k, want)
		}
	}
	wantFetches(2) // one refetch for 50 unknown kids
	clk.Advance(29 * time.Second)
	wantFetches(2)
	clk.Advance(time.Second)
	wantFetches(3)
	clk.Advance(10 * time.Second)
	wantFetches(3)
}

func TestAKeyRotatedInRightAfterARefetchIsPickedUpWithinTheInterval(t *testing.T) {
	// The cost of the refetch bound: a key published after the last refetch, and used at once,
	// is unknown until the interval has passed. Providers publish keys well before using them.
	iss, v, clk := setup(t, oidc.Google)
	mustVerify(t, v, iss.Sign(t, iss.Claims()), "")
	_, err := verify(t, v, iss.SignWithUnknownKey(t, "forged-kid", iss.Claims()), "")
	wantInvalid(t, err, oidc.ReasonSignature)
	iss.RotateKey(t)
	token := iss.Sign(t, iss.Claims())
	_, err = verify(t, v, token, "")
	wantInvalid(t, err, oidc.ReasonSignature)
	clk.Advance(30 * time.Second)
	mustVerify(t, v, token, "")
	if k := iss.JWKSRequests(); k != 3 {
		t.Fatalf("%d JWKS requests, want 3", k)
	}
}

func TestConcurrentVerificationsOfARotatedKeyShareOneRefetch(t *testing.T) {
	iss, v, _ := setup(t, oidc.Apple)
	mustVerify(t, v, iss.Sign(t, iss.Claims()), "")
	iss.RotateKey(t)
	for _, err := range verifyConcurrently(t, v, 20, func() string { return iss.Sign(t, iss.Claims()) }) {
		if err != nil {
			t.Fatalf("Verify: %v", err)
		}
	}
	if k := iss.JWKSRequests(); k != 2 {
		t.Fatalf("%d JWKS requests, want 2", k)
	}
}

func TestUnknownKidsWhileTheKeysCannotBeFetchedAreUnavailableAndFetchAtMostOnceEvery30Seconds(t *testing.T) {
	iss, v, clk := setup(t, oidc.Google)
	mustVerify(t, v, iss.Sign(t, iss.Claims()), "")
	iss.Fail(http.StatusServiceUnavailable)
	for i := range 5 {
		_, err := verify(t, v, iss.SignWithUnknownKey(t, fmt.Sprintf("unknown-%d", i), iss.Claims()), "")
		wantUnavailable(t, err)
	}
	if k := iss.JWKSRequests(); k != 2 {
		t.Fatalf("%d JWKS requests, want 2", k)
	}
	// The cached keys still verify, and the next refetch after the interval recovers.
	mustVerify(t, v, iss.Sign(t, iss.Claims()), "")
	iss.Fail(0)
	iss.RotateKey(t)
	token := iss.Sign(t, iss.Claims())
	_, err := verify(t, v, token, "")
	wantUnavailable(t, err)
	clk.Advance(30 * time.Second)
	mustVerify(t, v, token, "")
}

func TestUnusableKeysInTheKeySetAreSkipped(t *testing.T) {
	// A key of a type go-jose does not know and an encryption key beside the signing key: the
	// signing key still verifies, and the encryption key verifies nothing.
	key := ecKey(t)
	url := servedIssuer(t, []string{"ES256"}, map[string]any{"keys": []any{
		map[string]any{"kty": "OKP", "crv": "X448", "kid": "x448", "x": "AA"},
		jose.JSONWebKey{Key: &key.PublicKey, KeyID: "enc", Algorithm: "ES256", Use: "enc"},
		jose.JSONWebKey{Key: &key.PublicKey, KeyID: "sig", Algorithm: "ES256", Use: "sig"},
	}})
	clk := testenv.NewClock(time.Now())
	v := oidc.NewVerifier(oidc.Google, oidc.Config{Issuer: url, ClientIDs: []string{oidctest.ClientID}, Clock: clk})
	mustVerify(t, v, signES256(t, key, "sig", url, clk), "")
	_, err := verify(t, v, signES256(t, key, "enc", url, clk), "")
	wantInvalid(t, err, oidc.ReasonSignature)
}

func TestECDSASignatureTwinHasTheSameReplayKey(t *testing.T) {
	// (r, s) and (r, n-s) are both valid ECDSA signatures of one message, so anyone holding a
	// token signed with ES256 can make a second, different string that verifies: the ReplayKey of
	// a token without jti must not depend on the signature.
	key := ecKey(t)
	url := servedIssuer(t, []string{"ES256"}, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "ec", Algorithm: "ES256", Use: "sig"}}})
	clk := testenv.NewClock(time.Now())
	v := oidc.NewVerifier(oidc.Apple, oidc.Config{Issuer: url, ClientIDs: []string{oidctest.ClientID}, Clock: clk})
	token := signES256(t, key, "ec", url, clk)
	parts := strings.Split(token, ".")
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || len(sig) != 64 {
		t.Fatalf("signature %d bytes, %v", len(sig), err)
	}
	s := new(big.Int).SetBytes(sig[32:])
	s.Sub(elliptic.P256().Params().N, s)
	twinSig := append(sig[:32:32], s.FillBytes(make([]byte, 32))...)
	twin := parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(twinSig)

	a := mustVerify(t, v, token, "")
	b := mustVerify(t, v, twin, "")
	if twin == token || a.ReplayKey != b.ReplayKey {
		t.Fatalf("the twin of a token got ReplayKey %s, the token %s", b.ReplayKey, a.ReplayKey)
	}
}

func ecKey(tb testing.TB) *ecdsa.PrivateKey {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return key
}

// signES256 returns a valid token without jti of the issuer at url, signed with key under kid.
func signES256(tb testing.TB, key *ecdsa.PrivateKey, kid, url string, clk *testenv.Clock) string {
	tb.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key, KeyID: kid}}, nil)
	if err != nil {
		tb.Fatal(err)
	}
	payload, err := json.Marshal(map[string]any{"iss": url, "aud": oidctest.ClientID, "sub": "s", "exp": clk.Now().Add(time.Hour).Unix()})
	if err != nil {
		tb.Fatal(err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		tb.Fatal(err)
	}
	token, err := jws.CompactSerialize()
	if err != nil {
		tb.Fatal(err)
	}
	return token
}

// servedIssuer serves a discovery document naming algs and the key set jwks on loopback, for the
// key sets oidctest does not make, and returns its issuer URL.
func servedIssuer(tb testing.TB, algs []string, jwks any) string {
	tb.Helper()
	mux := http.NewServeMux()
	var url string
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"issuer": url, "jwks_uri": url + "/jwks", "id_token_signing_alg_values_supported": algs})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) { json.NewEncoder(w).Encode(jwks) })
	srv := httptest.NewServer(mux)
	tb.Cleanup(srv.Close)
	url = srv.URL
	return url
}

// verifyConcurrently verifies n tokens made by token, all at once, and returns their errors.
func verifyConcurrently(tb testing.TB, v *oidc.Verifier, n int, token func() string) []error {
	tb.Helper()
	tokens := make([]string, n)
	for i := range tokens {
		tokens[i] = token()
	}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range tokens {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, errs[i] = v.Verify(ctx, tokens[i], "")
		})
	}
	wg.Wait()
	return errs
}

const base64URLAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

func TestEmailVerifiedIsReadFromBoolOrString(t *testing.T) {
	iss, v, _ := setup(t, oidc.Apple)
	for _, tc := range []struct {
		claim any // nil: absent
		want  bool
	}{
		{true, true},
		{false, false},
		{"true", true},
		{"false", false},
		{"yes", false},
		{nil, false},
	} {
		claims := iss.Claims()
		if tc.claim == nil {
			delete(claims, "email_verified")
		} else {
			claims["email_verified"] = tc.claim
		}
		if got := mustVerify(t, v, iss.Sign(t, claims), "").EmailVerified; got != tc.want {
			t.Errorf("email_verified %#v read as %v, want %v", tc.claim, got, tc.want)
		}
	}
}

func TestTokenWithoutSubjectIsRefused(t *testing.T) {
	iss, v, _ := setup(t, oidc.Google)
	claims := iss.Claims()
	delete(claims, "sub")
	_, err := verify(t, v, iss.Sign(t, claims), "")
	wantInvalid(t, err, oidc.ReasonSubject)
}

func TestUnsignedTokenIsRefused(t *testing.T) {
	iss, v, _ := setup(t, oidc.Google)
	token := b64JSON(t, map[string]any{"alg": "none", "typ": "JWT", "kid": "oidctest-key-1"}) + "." + b64JSON(t, iss.Claims()) + "."
	_, err := verify(t, v, token, "")
	wantInvalid(t, err, oidc.ReasonAlgorithm)
}

func TestHS256TokenKeyedWithThePublicKeyIsRefused(t *testing.T) {
	iss, v, _ := setup(t, oidc.Google)
	// The classic confusion attack: HMAC keyed with the provider's public key, which anyone has.
	pub := publicKeyMaterial(t, iss)
	signing := b64JSON(t, map[string]any{"alg": "HS256", "typ": "JWT", "kid": "oidctest-key-1"}) + "." + b64JSON(t, iss.Claims())
	mac := hmac.New(sha256.New, pub)
	mac.Write([]byte(signing))
	token := signing + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
	_, err := verify(t, v, token, "")
	wantInvalid(t, err, oidc.ReasonAlgorithm)
}

func TestGarbageIsRefusedAsMalformed(t *testing.T) {
	iss, v, _ := setup(t, oidc.Google)
	for _, token := range []string{"", "not-a-jwt", "a.b.c", b64JSON(t, map[string]any{"alg": "RS256"}) + ".!!.sig"} {
		_, err := verify(t, v, token, "")
		wantInvalid(t, err, oidc.ReasonMalformed)
	}
	if k := iss.JWKSRequests(); k != 0 {
		t.Fatalf("garbage caused %d JWKS requests, want 0", k)
	}
}

func TestProviderDownAtFirstUseIsUnavailableThenRecovers(t *testing.T) {
	iss, v, _ := setup(t, oidc.Google)
	token := iss.Sign(t, iss.Claims())
	iss.Stop(t)
	_, err := verify(t, v, token, "")
	wantUnavailable(t, err)

	iss.Start(t)
	mustVerify(t, v, token, "")
}

func TestProviderAnswering5xxAtDiscoveryIsUnavailableThenRecovers(t *testing.T) {
	iss, v, _ := setup(t, oidc.Apple)
	token := iss.Sign(t, iss.Claims())
	iss.Fail(http.StatusServiceUnavailable)
	_, err := verify(t, v, token, "")
	wantUnavailable(t, err)

	iss.Fail(0)
	mustVerify(t, v, token, "")
}

func TestKeyFetchFailureIsUnavailableNotInvalid(t *testing.T) {
	for _, tc := range []struct {
		name string
		down func(testing.TB, *oidctest.Issuer)
	}{
		{"refused connection", func(tb testing.TB, iss *oidctest.Issuer) { iss.Stop(tb) }},
		{"503", func(_ testing.TB, iss *oidctest.Issuer) { iss.Fail(http.StatusServiceUnavailable) }},
		{"404", func(_ testing.TB, iss *oidctest.Issuer) { iss.Fail(http.StatusNotFound) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			iss, v, _ := setup(t, oidc.Google)
			mustVerify(t, v, iss.Sign(t, iss.Claims()), "")
			iss.RotateKey(t) // the next token names a kid that is not cached: a fetch is needed
			token := iss.Sign(t, iss.Claims())
			tc.down(t, iss)
			_, err := verify(t, v, token, "")
			wantUnavailable(t, err)
		})
	}
}

func TestCachedKeysVerifyWhileTheProviderIsDown(t *testing.T) {
	iss, v, _ := setup(t, oidc.Google)
	mustVerify(t, v, iss.Sign(t, iss.Claims()), "")
	token := iss.Sign(t, iss.Claims())
	iss.Stop(t)
	mustVerify(t, v, token, "")
}

func TestFirstUseWaitsNoLongerThanTheCallersContext(t *testing.T) {
	// A provider that accepts connections but never answers.
	hung := make(chan struct{})
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hung:
		case <-r.Context().Done():
		}
	})}
	iss := oidctest.NewIssuer(t)
	iss.Stop(t)
	ln := listenAt(t, strings.TrimPrefix(iss.URL(), "http://"))
	go srv.Serve(ln)
	t.Cleanup(func() { close(hung); srv.Close() })

	v := oidc.NewVerifier(oidc.Google, oidc.Config{Issuer: iss.URL(), ClientIDs: []string{oidctest.ClientID}})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := v.Verify(ctx, iss.Sign(t, iss.Claims()), "")
	wantUnavailable(t, err)
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Verify took %v with a 100ms context", d)
	}
}

func TestProviderWithoutClientIDsIsDisabled(t *testing.T) {
	iss := oidctest.NewIssuer(t)
	v := oidc.NewVerifier(oidc.Apple, oidc.Config{Issuer: iss.URL(), ClientIDs: []string{"", "  "}})
	if v.Enabled() {
		t.Fatal("Enabled with no client ids")
	}
	_, err := verify(t, v, iss.Sign(t, iss.Claims()), "")
	wantRefused(t, err, fluxauth.EProviderDisabled, oidc.ReasonDisabled)
	if n := iss.DiscoveryRequests(); n != 0 {
		t.Fatalf("a disabled provider made %d discovery requests", n)
	}
}

func TestReasonOfAForeignErrorIsEmpty(t *testing.T) {
	if r := oidc.Reason(errors.New("boom")); r != "" {
		t.Fatalf("Reason = %q, want empty", r)
	}
	if r := oidc.Reason(nil); r != "" {
		t.Fatalf("Reason(nil) = %q, want empty", r)
	}
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func b64JSON(tb testing.TB, v any) string {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// publicKeyMaterial returns the issuer's published JWKS: public bytes anyone can key an HMAC with.
func publicKeyMaterial(tb testing.TB, iss *oidctest.Issuer) []byte {
	tb.Helper()
	resp, err := http.Get(iss.URL() + oidctest.JWKSPath)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func listenAt(tb testing.TB, addr string) net.Listener {
	tb.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	return ln
}
