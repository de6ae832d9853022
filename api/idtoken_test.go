package api_test

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"testing"
	"time"

	"github.com/fluxstudio/fluxauth"
	"github.com/fluxstudio/fluxauth/account"
	"github.com/fluxstudio/fluxauth/oidc"
	"github.com/fluxstudio/fluxauth/oidc/oidctest"
	"github.com/fluxstudio/fluxauth/ratelimit"
)

// providerEnv is a fluxauth server whose Google and Apple are local OIDC issuers on loopback.
type providerEnv struct {
	*env
	google, apple *oidctest.Issuer
}

func newProviderEnv(t *testing.T, opts ...envOption) *providerEnv {
	t.Helper()
	g, a := oidctest.NewIssuer(t), oidctest.NewIssuer(t)
	pe := &providerEnv{google: g, apple: a}
	opts = append(opts, withAccounts(func(acc *account.Service) {
		acc.Providers = map[string]*oidc.Verifier{
			oidc.Google: oidc.NewVerifier(oidc.Google, oidc.Config{Issuer: g.URL(), ClientIDs: []string{"web-client", oidctest.ClientID}, Clock: acc.Clock}),
			oidc.Apple:  oidc.NewVerifier(oidc.Apple, oidc.Config{Issuer: a.URL(), ClientIDs: []string{oidctest.ClientID}, Clock: acc.Clock}),
		}
	}))
	pe.env = newEnv(t, opts...)
	g.Now, a.Now = pe.Clock.Now, pe.Clock.Now
	return pe
}

func (p *providerEnv) googleToken(t *testing.T, mutate func(map[string]any)) string {
	c := p.google.Claims()
	if mutate != nil {
		mutate(c)
	}
	return p.google.Sign(t, c)
}

func TestGoogleSignInCreatesThenSignsIn(t *testing.T) {
	p := newProviderEnv(t)
	tok := p.googleToken(t, func(c map[string]any) { c["email"] = "g@example.com"; c["name"] = "Gee Oogle" })
	res := p.do(t, "POST", "/api/auth/google", map[string]string{"idToken": tok, "deviceName": "Pixel"})
	if res.Status != http.StatusCreated {
		t.Fatalf("first sign-in %d %s", res.Status, res.Body)
	}
	var first authResponse
	res.json(t, &first)
	if first.User.Email != "g@example.com" || first.User.Name != "Gee Oogle" || first.Token != first.AccessToken || first.RefreshToken == "" {
		t.Fatalf("response %+v", first)
	}
	res = p.do(t, "POST", "/api/auth/google", map[string]string{"idToken": tok})
	if res.Status != http.StatusOK {
		t.Fatalf("second sign-in %d %s", res.Status, res.Body)
	}
	var second authResponse
	res.json(t, &second)
	if second.User.ID != first.User.ID {
		t.Fatal("the same subject got a second account")
	}
	// Sessions, refresh and events work exactly as for password login.
	if len(p.sessions(t, second.AccessToken)) != 2 {
		t.Fatal("sessions missing")
	}
	p.mustRefresh(t, second.RefreshToken)
	if ev := p.only(t, fluxauth.EventSignup); ev.Metadata["method"] != "google" {
		t.Fatalf("signup event %+v", ev)
	}
	if ev := p.only(t, fluxauth.EventLoginSuccess); ev.Metadata["method"] != "google" {
		t.Fatalf("login event %+v", ev)
	}
}

func TestIDTokenRejections(t *testing.T) {
	p := newProviderEnv(t)
	cases := map[string]func(map[string]any){
		"expired":   func(c map[string]any) { c["exp"] = p.Clock.Now().Add(-time.Minute).Unix() },
		"wrong aud": func(c map[string]any) { c["aud"] = "someone-else" },
		"wrong iss": func(c map[string]any) { c["iss"] = "https://evil.example" },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			res := p.do(t, "POST", "/api/auth/google", map[string]string{"idToken": p.googleToken(t, mutate)})
			if res.Status != 401 || res.errorCode(t) != "invalid_id_token" {
				t.Fatalf("got %d %s", res.Status, res.Body)
			}
		})
	}
	t.Run("bad signature", func(t *testing.T) {
		res := p.do(t, "POST", "/api/auth/google", map[string]string{"idToken": p.google.SignWithForeignKey(t, p.google.Claims())})
		if res.Status != 401 || res.errorCode(t) != "invalid_id_token" {
			t.Fatalf("got %d %s", res.Status, res.Body)
		}
	})
	evs := p.events(t, fluxauth.EventFailedLogin)
	if len(evs) != 4 {
		t.Fatalf("%d failed_login events, want 4", len(evs))
	}
	for _, ev := range evs {
		if ev.Metadata["reason"] != "invalid_id_token" || ev.Metadata["provider"] != "google" || ev.Metadata["detail"] == "" {
			t.Fatalf("event %+v", ev)
		}
	}
}

func TestAppleNonceAndName(t *testing.T) {
	p := newProviderEnv(t)
	sum := sha256.Sum256([]byte("raw-nonce"))
	c := p.apple.Claims()
	c["nonce"] = hex.EncodeToString(sum[:])
	c["email"] = "relay123@privaterelay.appleid.com"
	tok := p.apple.Sign(t, c)
	if res := p.do(t, "POST", "/api/auth/apple", map[string]string{"idToken": tok, "nonce": "other-nonce"}); res.Status != 401 {
		t.Fatalf("nonce mismatch: %d %s", res.Status, res.Body)
	}
	res := p.do(t, "POST", "/api/auth/apple", map[string]string{"idToken": tok, "nonce": "raw-nonce", "name": "Ann Apple"})
	if res.Status != 201 {
		t.Fatalf("apple: %d %s", res.Status, res.Body)
	}
	var ar authResponse
	res.json(t, &ar)
	if ar.User.Name != "Ann Apple" || ar.User.Email != "relay123@privaterelay.appleid.com" {
		t.Fatalf("user %+v", ar.User)
	}
}

func TestTokenWithANonceClaimIsRefusedWithoutTheNonce(t *testing.T) {
	// Someone who captured a token from a sign-in that used a nonce does not know the nonce.
	p := newProviderEnv(t)
	sum := sha256.Sum256([]byte("raw-nonce"))
	apple := p.apple.Claims()
	apple["nonce"] = hex.EncodeToString(sum[:])
	google := p.google.Claims()
	google["nonce"] = "raw-nonce"
	for path, tok := range map[string]string{"/api/auth/apple": p.apple.Sign(t, apple), "/api/auth/google": p.google.Sign(t, google)} {
		if res := p.do(t, "POST", path, map[string]string{"idToken": tok}); res.Status != 401 || res.errorCode(t) != "invalid_id_token" {
			t.Fatalf("%s without the nonce: %d %s", path, res.Status, res.Body)
		}
		if res := p.do(t, "POST", path, map[string]string{"idToken": tok, "nonce": "raw-nonce"}); res.Status >= 300 {
			t.Fatalf("%s with the nonce: %d %s", path, res.Status, res.Body)
		}
	}
	evs := p.events(t, fluxauth.EventFailedLogin)
	if len(evs) != 2 || evs[0].Metadata["detail"] != oidc.ReasonNonce || evs[1].Metadata["detail"] != oidc.ReasonNonce {
		t.Fatalf("failed_login events %+v, want two with detail nonce", evs)
	}
}

func TestIdentityLinksToExistingAccountOnlyWithVerifiedEmail(t *testing.T) {
	p := newProviderEnv(t)
	owner := p.signup(t, "owner@example.com")
	unverified := p.googleToken(t, func(c map[string]any) {
		c["email"] = "OWNER@example.com"
		c["email_verified"] = false
		c["sub"] = "attacker"
	})
	res := p.do(t, "POST", "/api/auth/google", map[string]string{"idToken": unverified})
	if res.Status != 409 || res.errorCode(t) != "account_exists" {
		t.Fatalf("unverified link: %d %s", res.Status, res.Body)
	}
	if _, err := p.Store.IdentityBySubject(t.Context(), "google", "attacker"); err == nil {
		t.Fatal("an unverified email was linked")
	}
	verified := p.googleToken(t, func(c map[string]any) {
		c["email"] = "owner@example.com"
		c["email_verified"] = true
		c["sub"] = "owner-sub"
	})
	res = p.do(t, "POST", "/api/auth/google", map[string]string{"idToken": verified})
	if res.Status != 200 {
		t.Fatalf("verified link: %d %s", res.Status, res.Body)
	}
	var ar authResponse
	res.json(t, &ar)
	if ar.User.ID != owner.User.ID {
		t.Fatal("linked to the wrong account")
	}
	// The password still works too.
	if r := p.do(t, "POST", "/api/auth/login", map[string]string{"email": "owner@example.com", "password": "correct horse battery"}); r.Status != 200 {
		t.Fatalf("password login after linking: %d", r.Status)
	}
}

func TestProviderDownIs503AndDisabledIs404(t *testing.T) {
	p := newProviderEnv(t)
	tok := p.googleToken(t, nil)
	p.google.Stop(t)
	res := p.do(t, "POST", "/api/auth/google", map[string]string{"idToken": tok})
	if res.Status != 503 || res.errorCode(t) != "provider_unavailable" {
		t.Fatalf("provider down: %d %s", res.Status, res.Body)
	}
	p.google.Start(t)
	if res := p.do(t, "POST", "/api/auth/google", map[string]string{"idToken": tok}); res.Status != 201 {
		t.Fatalf("after recovery: %d %s", res.Status, res.Body)
	}

	e := newEnv(t) // no client ids configured
	res = e.do(t, "POST", "/api/auth/apple", map[string]string{"idToken": "x"})
	if res.Status != 404 || res.errorCode(t) != "provider_disabled" {
		t.Fatalf("disabled: %d %s", res.Status, res.Body)
	}
}

func TestKeyRotationAtTheIssuer(t *testing.T) {
	p := newProviderEnv(t)
	if res := p.do(t, "POST", "/api/auth/google", map[string]string{"idToken": p.googleToken(t, nil)}); res.Status != 201 {
		t.Fatalf("%d %s", res.Status, res.Body)
	}
	p.google.RotateKey(t)
	if res := p.do(t, "POST", "/api/auth/google", map[string]string{"idToken": p.googleToken(t, nil)}); res.Status != 200 {
		t.Fatalf("after rotation: %d %s", res.Status, res.Body)
	}
}

func TestIDTokenSignInIsRateLimitedPerIP(t *testing.T) {
	p := newProviderEnv(t, withAccounts(func(a *account.Service) {
		a.Rules.IDTokenIP = ratelimit.Limit{Rate: 2, Period: time.Minute}
	}))
	tok := p.googleToken(t, nil)
	for i := 0; i < 2; i++ {
		if res := p.do(t, "POST", "/api/auth/google", map[string]string{"idToken": tok}); res.Status >= 300 {
			t.Fatalf("sign-in %d: %d %s", i, res.Status, res.Body)
		}
	}
	res := p.do(t, "POST", "/api/auth/apple", map[string]string{"idToken": tok})
	if res.Status != 429 || res.Header.Get("Retry-After") == "" {
		t.Fatalf("third sign-in from one IP: %d %s", res.Status, res.Body)
	}
}
